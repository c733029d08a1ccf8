//! Audit records (SPEC §10): what each event records, what may never be in one, and who may
//! read or add them.

use chrono::{DateTime, Utc};

use crate::Error;
use crate::model::{Application, Record, RecordField, RecordQuery, User};
use crate::oauth::OAuthError;
use crate::service::{Iam, Principal};
use crate::sessions::Page;

/// Where a request came from, as the API saw it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_ip: String,
    pub user_agent: String,
    pub method: String,
    pub request_uri: String,
}

/// The most a free-text field of a record holds.
const MAX_TEXT: usize = 500;

/// Makes text fit for a record: runs of 7 or more digits (phone numbers) keep only their first
/// three and last four digits (`138****8000`), and the whole is cut to a bounded length.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 7 {
            out.push_str(&digits[..3]);
            out.push_str("****");
            out.push_str(&digits[digits.len() - 4..]);
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    if out.chars().count() > MAX_TEXT {
        out = out.chars().take(MAX_TEXT).collect::<String>() + "…";
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The audit action of a token request (SPEC §10's names).
pub fn token_action(tag: &str, grant_type: &str) -> &'static str {
    if tag == crate::grants::MINI_PROGRAM_TAG {
        return "signin-wechat-miniprogram";
    }
    if tag == crate::console::CONSOLE_TAG {
        return "signin-console";
    }
    match grant_type {
        "password" => "signin-password",
        "refresh_token" => "refresh-token",
        "client_credentials" => "signin-client-credentials",
        _ => "signin",
    }
}

fn detail(pairs: &[(&str, serde_json::Value)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    if map.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(map).to_string()
    }
}

/// What `get-records` was asked, as sent; parsed (and refused by field) in [`Iam::get_records`].
#[derive(Debug, Clone, Default)]
pub struct RecordParams {
    pub owner: Option<String>,
    pub p: Option<String>,
    pub page_size: Option<String>,
    pub field: Option<String>,
    pub value: Option<String>,
    pub sort_field: Option<String>,
    pub sort_order: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub user: Option<String>,
    pub action: Option<String>,
    pub response: Option<String>,
}

/// A parameter that was sent and is not blank.
pub(crate) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Casdoor's `sortOrder`: `ascend` or `descend` (`asc`/`desc` too); `default` when absent.
pub(crate) fn ascending(v: Option<&str>, default: bool) -> Result<bool, Error> {
    match v {
        None => Ok(default),
        Some("ascend") | Some("asc") => Ok(true),
        Some("descend") | Some("desc") => Ok(false),
        Some(o) => Err(Error::invalid(format!(
            "sortOrder: must be ascend or descend, got {o:?}"
        ))),
    }
}

/// A bound of a time window: an RFC 3339 time, or a day (`2026-12-01`, UTC) — its start for
/// `from`, its end for `to` (exclusive: the next midnight), so `from=D&to=D` is the whole day D.
fn time(
    field: &'static str,
    v: &Option<String>,
    end: bool,
) -> Result<Option<DateTime<Utc>>, Error> {
    given(v)
        .map(|s| {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
            let day = if end {
                day.and_then(|d| d.succ_opt())
            } else {
                day
            };
            day.and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{field}: must be an RFC 3339 time or a day (YYYY-MM-DD), got {s:?}"
                    ))
                })
        })
        .transpose()
}

fn column(field: &'static str, v: &str) -> Result<RecordField, Error> {
    RecordField::parse(v).ok_or_else(|| {
        let known: Vec<&str> = RecordField::ALL.iter().map(|f| f.name()).collect();
        Error::invalid(format!(
            "{field}: {v:?} is not a record column (one of {})",
            known.join(", ")
        ))
    })
}

impl RecordParams {
    pub(crate) fn query(&self) -> Result<RecordQuery, Error> {
        let page = Page::parse(self.p.as_deref(), self.page_size.as_deref())?;
        let field = match (given(&self.field), self.value.as_deref()) {
            (Some(f), Some(v)) if !v.is_empty() => Some((column("field", f)?, v.to_owned())),
            (Some(f), _) => {
                column("field", f)?;
                None
            }
            _ => None,
        };
        let sort = match given(&self.sort_field) {
            Some(f) => Some((
                column("sortField", f)?,
                ascending(given(&self.sort_order), false)?,
            )),
            None => None,
        };
        let (from, to) = (
            time("from", &self.from, false)?,
            time("to", &self.to, true)?,
        );
        // An empty window is a mistake in the request, not an answer.
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(Error::invalid(format!(
                "to: must be after from (from {}, to {})",
                f.to_rfc3339(),
                t.to_rfc3339()
            )));
        }
        Ok(RecordQuery {
            organization: None,
            user_name: given(&self.user).map(str::to_owned),
            action: given(&self.action).map(str::to_owned),
            response: given(&self.response).map(str::to_owned),
            field,
            from,
            to,
            sort,
            offset: page.map(|p| p.offset()).unwrap_or(0),
            limit: page.map(|p| p.size).unwrap_or(Page::MAX_SIZE),
        })
    }
}

/// What an administrator sends to `add-record`.
#[derive(Debug, Clone, Default)]
pub struct RecordInput {
    pub organization: String,
    pub client_ip: String,
    pub user: String,
    pub method: String,
    pub request_uri: String,
    pub action: String,
    pub language: String,
    pub object: String,
    pub response: String,
    pub status_code: i32,
    pub detail: String,
    pub is_triggered: bool,
}

impl Iam {
    /// Writes what the audit queue holds; for a graceful stop.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    fn new_record(&self, meta: &RequestMeta, action: &str) -> Record {
        Record {
            name: uuid::Uuid::new_v4().to_string(),
            created_time: Utc::now(),
            client_ip: clip(&meta.client_ip, 64),
            user_agent: clip(&meta.user_agent, 300),
            method: clip(&meta.method, 16),
            request_uri: clip(&meta.request_uri, 300),
            action: action.to_owned(),
            ..Record::default()
        }
    }

    /// The record of a user's successful sign-in, written with it.
    pub(crate) fn sign_in_record(
        &self,
        req: &crate::grants::TokenRequest,
        app: &Application,
        user: &User,
        sid: &str,
    ) -> Record {
        let mut r = self.new_record(&req.meta(), token_action(&req.tag, &req.grant_type));
        r.organization = user.owner.to_string();
        r.user_name = user.name.to_string();
        r.user_id = user.id.clone();
        r.object = format!("{}/{}", crate::model::ADMIN_OWNER, app.name);
        r.response = "ok".into();
        r.status_code = 200;
        r.detail = detail(&[("session", serde_json::json!(sid))]);
        r
    }

    /// Any other outcome of a token request: a failure of any grant, or a refresh or client
    /// credentials success. Sent to the audit queue.
    pub(crate) async fn record_token_attempt(
        &self,
        req: &crate::grants::TokenRequest,
        error: Option<&OAuthError>,
    ) {
        let action = error
            .and_then(|e| e.event)
            .unwrap_or_else(|| token_action(&req.tag, &req.grant_type));
        let mut r = self.new_record(&req.meta(), action);
        let app = self
            .application_by_client_id(&req.client_id)
            .await
            .ok()
            .flatten();
        r.organization = app
            .as_ref()
            .map(|a| a.organization.to_string())
            .unwrap_or_default();
        if let Some(a) = &app {
            r.object = format!("{}/{}", crate::model::ADMIN_OWNER, a.name);
        }
        if req.grant_type == "password" && req.tag != crate::grants::MINI_PROGRAM_TAG {
            r.user_name = scrub(&clip(&req.username, 100));
        }
        match error {
            None => {
                r.response = "ok".into();
                r.status_code = 200;
            }
            Some(e) => {
                r.response = e.kind.code().to_owned();
                r.status_code = e.kind.status();
                r.wechat_errcode = e.wechat_errcode.unwrap_or(0);
                r.detail = detail(&[
                    ("error", serde_json::json!(scrub(&e.description))),
                    ("errcode", serde_json::json!(e.wechat_errcode)),
                ]);
            }
        }
        self.audit.record(r);
    }

    /// A write through the API (management, §8, §9): recorded through the audit queue with who
    /// did it and how it ended.
    pub fn record_request(
        &self,
        caller: Option<&Principal>,
        meta: &RequestMeta,
        action: &str,
        status: u16,
        error: Option<&str>,
    ) {
        let mut r = self.new_record(meta, action);
        match caller {
            Some(Principal::User(u)) => {
                r.organization = u.owner.to_string();
                r.user_name = u.name.to_string();
                r.user_id = u.id.clone();
            }
            Some(Principal::Application(a)) => {
                r.organization = a.organization.to_string();
                r.user_name = a.name.to_string();
            }
            None => {}
        }
        r.status_code = i32::from(status);
        r.response = match error {
            None if status < 400 => "ok".into(),
            Some(code) => code.to_owned(),
            None => status.to_string(),
        };
        self.audit.record(r);
    }

    /// `GET /api/get-records`: administrators see their organization's records, global
    /// administrators everyone's (or `owner`'s).
    pub async fn get_records(
        &self,
        caller: &Principal,
        params: &RecordParams,
    ) -> Result<(Vec<Record>, u64), Error> {
        let mut query = params.query()?;
        let owner = given(&params.owner).map(str::to_owned);
        query.organization = if caller.is_global_admin() {
            owner
        } else {
            let own = match caller {
                Principal::User(u) if u.is_admin => u.owner.to_string(),
                Principal::Application(a) => a.organization.to_string(),
                _ => return Err(Error::forbidden()),
            };
            if owner.as_ref().is_some_and(|o| *o != own) {
                return Err(Error::forbidden());
            }
            Some(own)
        };
        Ok(self.repo.list_records(&query).await?)
    }

    /// `POST /api/add-record` (Casdoor's SDK adds records): an administrator of the record's
    /// organization, marked as added by them.
    pub async fn add_record(
        &self,
        caller: &Principal,
        input: RecordInput,
        meta: &RequestMeta,
    ) -> Result<Record, Error> {
        let organization = if input.organization.trim().is_empty() {
            match caller {
                Principal::User(u) => u.owner.to_string(),
                Principal::Application(a) => a.organization.to_string(),
            }
        } else {
            input.organization.trim().to_owned()
        };
        if !caller.administers(&organization) {
            return Err(Error::forbidden());
        }
        if input.action.trim().is_empty() {
            return Err(Error::invalid("action: is required"));
        }
        let by = match caller {
            Principal::User(u) => u.id_path(),
            Principal::Application(a) => format!("{}/{}", crate::model::ADMIN_OWNER, a.name),
        };
        let mut r = self.new_record(meta, &clip(input.action.trim(), 100));
        r.organization = organization;
        if !input.client_ip.is_empty() {
            r.client_ip = clip(&input.client_ip, 64);
        }
        if !input.method.is_empty() {
            r.method = clip(&input.method, 16);
        }
        if !input.request_uri.is_empty() {
            r.request_uri = clip(&input.request_uri, 300);
        }
        r.user_name = scrub(&clip(&input.user, 100));
        r.language = clip(&input.language, 16);
        r.object = scrub(&clip(&input.object, 300));
        r.response = if input.response.is_empty() {
            "ok".into()
        } else {
            scrub(&clip(&input.response, 100))
        };
        r.status_code = input.status_code;
        r.detail = scrub(&input.detail);
        r.is_triggered = input.is_triggered;
        r.added_by = by;
        self.repo.insert_records(std::slice::from_ref(&r)).await?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_masked_and_text_is_bounded() {
        assert_eq!(
            scrub("\"13800138000\" is not a valid phone number"),
            "\"138****8000\" is not a valid phone number"
        );
        assert_eq!(scrub("+8613800138000"), "+861****8000");
        assert_eq!(
            scrub("errcode 40029, rid: 6b0d"),
            "errcode 40029, rid: 6b0d"
        );
        assert!(scrub(&"x".repeat(2000)).chars().count() <= MAX_TEXT + 1);
    }

    #[test]
    fn sort_and_filter_columns_are_a_closed_list() {
        let p = RecordParams {
            sort_field: Some("created_time; DROP TABLE users".into()),
            ..Default::default()
        };
        let e = p.query().unwrap_err().to_string();
        assert!(e.starts_with("sortField: "), "{e}");
        let p = RecordParams {
            sort_field: Some("createdTime".into()),
            sort_order: Some("ascend".into()),
            field: Some("action".into()),
            value: Some("signin-password".into()),
            from: Some("2026-11-30T00:00:00Z".into()),
            ..Default::default()
        };
        let q = p.query().unwrap();
        assert_eq!(q.sort, Some((RecordField::CreatedTime, true)));
        assert_eq!(
            q.field,
            Some((RecordField::Action, "signin-password".into()))
        );
        assert!(q.from.is_some());
        let bad = RecordParams {
            to: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(bad.query().unwrap_err().to_string().starts_with("to: "));
    }

    #[test]
    fn a_day_is_a_whole_day() {
        let p = RecordParams {
            from: Some("2026-12-01".into()),
            to: Some("2026-12-01".into()),
            ..Default::default()
        };
        let q = p.query().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(q.from, Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(q.to, Some(at("2026-12-02T00:00:00Z")), "to is exclusive");
        let inverted = RecordParams {
            from: Some("2026-12-02".into()),
            to: Some("2026-12-01T23:00:00Z".into()),
            ..Default::default()
        };
        let e = inverted.query().unwrap_err().to_string();
        assert!(e.starts_with("to: must be after from"), "{e}");
        for bad in ["2026-13-01", "2026-12-1x", "12/01/2026"] {
            let p = RecordParams {
                from: Some(bad.into()),
                ..Default::default()
            };
            let e = p.query().unwrap_err().to_string();
            assert!(
                e.starts_with("from: must be an RFC 3339 time or a day"),
                "{e}"
            );
        }
    }
}
