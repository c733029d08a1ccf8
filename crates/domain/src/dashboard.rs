//! The dashboard's numbers (SPEC §10, drawn by the console of §11): sign-ins per hour for 24
//! hours and per day for 30 days by result, by grant, new users, WeChat errors by errcode and
//! active sessions. Finished days come from the daily roll-up (a few rows a day), the rest from
//! the records of the last day or two over the (organization, time) index: fast at millions of
//! records.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};

use crate::Error;
use crate::model::{CountRow, SessionQuery};
use crate::service::{Iam, Principal};

/// One bar of a series: its hour (`2026-11-30T09`) or day (`2026-11-30`), and its sign-ins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub ok: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dashboard {
    /// The last 24 hours, oldest first, this hour last.
    pub hours: Vec<Bar>,
    /// The last 30 days, oldest first, today last.
    pub days: Vec<Bar>,
    /// Over the 30 days: sign-ins by response (`ok`, `invalid_grant`, …).
    pub by_result: BTreeMap<String, u64>,
    /// Over the 30 days: sign-ins by action (grant) and response.
    pub by_grant: BTreeMap<String, BTreeMap<String, u64>>,
    /// Users created per day, the same 30 days.
    pub new_users: Vec<(String, u64)>,
    /// Over the 30 days: WeChat's refusals by errcode.
    pub wechat_errors: BTreeMap<i64, u64>,
    pub active_sessions: u64,
}

/// Whether a record's action is a sign-in attempt (of any grant, refreshes included).
fn is_sign_in(action: &str) -> bool {
    action.starts_with("signin") || action.starts_with("refresh-token")
}

fn bars(labels: Vec<String>, rows: &[CountRow]) -> Vec<Bar> {
    labels
        .into_iter()
        .map(|label| {
            let mut bar = Bar {
                label,
                ..Bar::default()
            };
            for r in rows
                .iter()
                .filter(|r| r.bucket == bar.label && is_sign_in(&r.action))
            {
                if r.response == "ok" {
                    bar.ok += r.n;
                } else {
                    bar.failed += r.n;
                }
            }
            bar
        })
        .collect()
}

impl Iam {
    /// Rolls up the days of the last month that ended an hour ago or more (the purge task
    /// calls it; the dashboard too, so a gap never shows). Returns how many it did.
    pub async fn roll_up_finished_days(&self) -> Result<u32, crate::StoreError> {
        let now = Utc::now();
        let first_day = now.date_naive() - Duration::days(30);
        let settled = (now - Duration::hours(1)).date_naive();
        self.repo
            .roll_up_days(&first_day.to_string(), &settled.to_string())
            .await
    }

    /// `GET /api/get-dashboard?owner=`: an administrator's organization, or (global
    /// administrators) `owner`'s or everyone's.
    pub async fn dashboard(&self, caller: &Principal, owner: &str) -> Result<Dashboard, Error> {
        let organization = match owner.trim() {
            "" if caller.is_global_admin() => None,
            "" => match caller {
                Principal::User(u) if u.is_admin => Some(u.owner.to_string()),
                Principal::Application(a) => Some(a.organization.to_string()),
                _ => return Err(Error::forbidden()),
            },
            o if caller.administers(o) => Some(o.to_owned()),
            _ => return Err(Error::forbidden()),
        };
        let org = organization.as_deref();
        let now = Utc::now();
        self.dashboard_at(org, now).await
    }

    async fn dashboard_at(
        &self,
        org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Dashboard, Error> {
        let today = now.date_naive();
        let first_day = today - Duration::days(29);
        // Days that ended an hour ago or more are rolled up (here, if the purge task has not
        // yet); the rest is read from the records themselves.
        let settled = (now - Duration::hours(1)).date_naive();
        self.repo
            .roll_up_days(&first_day.to_string(), &settled.to_string())
            .await?;
        let live_since = settled
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let hour_start = now
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let first_hour = hour_start - Duration::hours(23);
        let hourly = self.repo.record_counts(org, first_hour, false).await?;
        let mut daily = self.repo.rollup_counts(org, &first_day.to_string()).await?;
        daily.retain(|r| r.bucket < settled.to_string());
        if live_since >= first_hour {
            // The hours already read cover the days not rolled up: add them up by day rather
            // than read those records again.
            let since = live_since.format("%Y-%m-%dT%H").to_string();
            daily.extend(
                hourly
                    .iter()
                    .filter(|r| r.bucket >= since)
                    .map(|r| CountRow {
                        bucket: r.bucket.chars().take(10).collect(),
                        ..r.clone()
                    }),
            );
        } else {
            daily.extend(self.repo.record_counts(org, live_since, true).await?);
        }

        let hour_labels = (0..24)
            .map(|i| {
                (first_hour + Duration::hours(i))
                    .format("%Y-%m-%dT%H")
                    .to_string()
            })
            .collect();
        let day_labels: Vec<String> = (0..30)
            .map(|i| (first_day + Duration::days(i)).to_string())
            .collect();
        let mut d = Dashboard {
            hours: bars(hour_labels, &hourly),
            days: bars(day_labels.clone(), &daily),
            ..Dashboard::default()
        };
        let mut new_users: BTreeMap<String, u64> = BTreeMap::new();
        for r in &daily {
            if r.action == "new-user" {
                *new_users.entry(r.bucket.clone()).or_default() += r.n;
                continue;
            }
            if r.errcode != 0 {
                *d.wechat_errors.entry(r.errcode).or_default() += r.n;
            }
            if is_sign_in(&r.action) {
                *d.by_result.entry(r.response.clone()).or_default() += r.n;
                *d.by_grant
                    .entry(r.action.clone())
                    .or_default()
                    .entry(r.response.clone())
                    .or_default() += r.n;
            }
        }
        for (day, n) in self.repo.new_users_since(org, live_since).await? {
            *new_users.entry(day).or_default() += n;
        }
        d.new_users = day_labels
            .into_iter()
            .map(|day| {
                let n = new_users.get(&day).copied().unwrap_or(0);
                (day, n)
            })
            .collect();
        let (_, active) = self
            .repo
            .list_sessions(
                &SessionQuery {
                    organization: org.map(str::to_owned),
                    limit: 1,
                    ..SessionQuery::default()
                },
                now,
            )
            .await?;
        d.active_sessions = active;
        Ok(d)
    }
}
