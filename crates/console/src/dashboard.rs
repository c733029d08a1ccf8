//! The dashboard: sign-ins per hour and per day as server-drawn charts, results by reason, new
//! users, WeChat's refusals by errcode and the active sessions (SPEC §10's numbers).

use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Response, handler};

use crate::Console;
use crate::chart;
use crate::page::{self, Admin, Frame};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    frame: Frame,
    hours_chart: String,
    days_chart: String,
    new_users_chart: String,
    signins_24h: u64,
    failures_24h: u64,
    new_users_30d: u64,
    active_sessions: u64,
    by_result: Vec<(String, u64)>,
    wechat_errors: Vec<(i64, String, u64)>,
    hours: Vec<(String, u64, u64)>,
    days: Vec<(String, u64, u64)>,
}

/// What a WeChat errcode means, in a few words.
pub fn errcode_meaning(code: i64) -> &'static str {
    match code {
        -1 => "WeChat busy",
        40029 => "invalid code",
        40163 => "code already used",
        40226 => "user blocked by WeChat",
        45011 | 45009 => "rate limited",
        40013 => "wrong APPID",
        40125 => "wrong APPSECRET",
        40164 => "server IP not whitelisted",
        40001 | 42001 | 40014 => "access token refused",
        _ => "other",
    }
}

#[handler]
pub async fn show(admin: Admin, Data(console): Data<&Arc<Console>>) -> Response {
    let owner = admin.scope().unwrap_or_default();
    let d = match console.iam.dashboard(&admin.principal, &owner).await {
        Ok(d) => d,
        Err(e) => return page::failure(&e),
    };
    let hour = |l: &str| {
        l.get(11..13)
            .map(|h| format!("{h}h"))
            .unwrap_or_else(|| l.to_owned())
    };
    let day = |l: &str| l.get(5..10).unwrap_or(l).to_owned();
    let title = match admin.scope() {
        Some(org) => format!("Dashboard of {org}"),
        None => "Dashboard".into(),
    };
    let t = DashboardPage {
        frame: admin.frame(title, "dashboard"),
        hours_chart: chart::stacked("Sign-ins per hour, last 24 hours", &d.hours, hour, 3),
        days_chart: chart::stacked("Sign-ins per day, last 30 days", &d.days, day, 5),
        new_users_chart: chart::simple("New users per day, last 30 days", &d.new_users, day, 5),
        signins_24h: d.hours.iter().map(|b| b.ok).sum(),
        failures_24h: d.hours.iter().map(|b| b.failed).sum(),
        new_users_30d: d.new_users.iter().map(|(_, n)| n).sum(),
        active_sessions: d.active_sessions,
        by_result: d.by_result.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        wechat_errors: d
            .wechat_errors
            .iter()
            .map(|(k, v)| (*k, errcode_meaning(*k).to_owned(), *v))
            .collect(),
        hours: d
            .hours
            .iter()
            .map(|b| (b.label.clone(), b.ok, b.failed))
            .collect(),
        days: d
            .days
            .iter()
            .map(|b| (b.label.clone(), b.ok, b.failed))
            .collect(),
    };
    page::render(&t)
}
