//! Audit records (SPEC §10): `get-records`, `add-record`, and the middleware that records every
//! write through the API with who made it and how it ended.

use std::sync::{Arc, Mutex};

use iam_domain::model::Record;
use iam_domain::records::{RecordInput, RecordParams, RequestMeta};
use iam_domain::service::Principal;
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::param::Query;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{Caller, Required};
use crate::params::Count;
use crate::state::AppState;
use crate::tags::Tag;
use iam_wire::time;

/// Casdoor's Record, as `add-record` receives it (`id`, `name`, `createdTime` and who added it
/// are the server's).
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct RecordWire {
    #[oai(read_only)]
    pub id: Option<i64>,
    #[oai(validator(max_length = 100))]
    pub owner: Option<String>,
    #[oai(read_only)]
    pub name: Option<String>,
    #[oai(read_only)]
    pub created_time: Option<String>,
    #[oai(validator(max_length = 100))]
    pub organization: Option<String>,
    #[oai(validator(max_length = 64))]
    pub client_ip: Option<String>,
    #[oai(validator(max_length = 100))]
    pub user: Option<String>,
    #[oai(validator(max_length = 16))]
    pub method: Option<String>,
    #[oai(validator(max_length = 300))]
    pub request_uri: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub action: String,
    #[oai(validator(max_length = 16))]
    pub language: Option<String>,
    #[oai(validator(max_length = 300))]
    pub object: Option<String>,
    #[oai(validator(max_length = 100))]
    pub response: Option<String>,
    pub status_code: Option<i32>,
    #[oai(validator(max_length = 2000))]
    pub detail: Option<String>,
    pub is_triggered: Option<bool>,
}

pub fn record(r: &Record) -> Value {
    json!({
        "id": r.id,
        "owner": r.organization,
        "name": r.name,
        "createdTime": time(&r.created_time),
        "organization": r.organization,
        "clientIp": r.client_ip,
        "user": r.user_name,
        "method": r.method,
        "requestUri": r.request_uri,
        "action": r.action,
        "language": r.language,
        "object": r.object,
        "response": r.response,
        "statusCode": r.status_code,
        "detail": r.detail,
        "isTriggered": r.is_triggered,
        "userAgent": r.user_agent,
        "addedBy": r.added_by,
    })
}

/// Where a request came from (the peer's address, or what a trusted proxy says it forwards)
/// and what it said about itself.
pub fn meta(req: &Request, trusted: &iam_domain::network::TrustedProxies) -> RequestMeta {
    RequestMeta {
        client_ip: crate::state::client_ip(req, trusted)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        user_agent: req
            .header(poem::http::header::USER_AGENT)
            .unwrap_or_default()
            .to_owned(),
        method: req.method().as_str().to_owned(),
        request_uri: req.uri().path().to_owned(),
    }
}

pub struct RecordsApi;

#[OpenApi(tag = "Tag::Records")]
impl RecordsApi {
    /// Audit records, newest first: an administrator's organization's, or (global
    /// administrators) everyone's or `owner`'s. Casdoor's pagination (`p`, `pageSize`,
    /// `field`/`value`, `sortField`/`sortOrder`; `data2` = the total), plus `from`/`to` (RFC 3339
    /// times, or days in UTC: `from=2026-12-01&to=2026-12-01` is that whole day; `to` must be
    /// after `from`) and `user`, `action`, `response`.
    #[oai(
        path = "/api/get-records",
        method = "get",
        operation_id = "get-records"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn get_records(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
        p: Query<Option<Count>>,
        #[oai(name = "pageSize")] page_size: Query<Option<Count>>,
        #[oai(validator(max_length = 50))] field: Query<Option<String>>,
        #[oai(validator(max_length = 300))] value: Query<Option<String>>,
        #[oai(name = "sortField", validator(max_length = 50))] sort_field: Query<Option<String>>,
        #[oai(name = "sortOrder", validator(max_length = 20))] sort_order: Query<Option<String>>,
        #[oai(validator(max_length = 40))] from: Query<Option<String>>,
        #[oai(validator(max_length = 40))] to: Query<Option<String>>,
        #[oai(validator(max_length = 100))] user: Query<Option<String>>,
        #[oai(validator(max_length = 100))] action: Query<Option<String>>,
        #[oai(validator(max_length = 100))] response: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let params = RecordParams {
            owner: owner.0,
            p: Count::text(p.0),
            page_size: Count::text(page_size.0),
            field: field.0,
            value: value.0,
            sort_field: sort_field.0,
            sort_order: sort_order.0,
            from: from.0,
            to: to.0,
            user: user.0,
            action: action.0,
            response: response.0,
        };
        let (records, total) = state.iam.get_records(&caller.principal, &params).await?;
        Ok(Reply::list(&records, record, total))
    }

    /// The dashboard's numbers: sign-ins per hour (24 h) and per day (30 days) split into
    /// successes and failures, by result and by grant, new users per day, WeChat errors by
    /// errcode and active sessions. An administrator's organization; a global administrator's
    /// `owner`, or everyone's.
    #[oai(
        path = "/api/get-dashboard",
        method = "get",
        operation_id = "get-dashboard"
    )]
    async fn get_dashboard(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let d = state
            .iam
            .dashboard(&caller.principal, owner.0.as_deref().unwrap_or_default())
            .await?;
        let bars = |b: &[iam_domain::dashboard::Bar]| {
            Value::Array(
                b.iter()
                    .map(|b| json!({"time": b.label, "ok": b.ok, "failed": b.failed}))
                    .collect(),
            )
        };
        Ok(Reply::ok(
            json!({
                "signinsPerHour": bars(&d.hours),
                "signinsPerDay": bars(&d.days),
                "signinsByResult": d.by_result,
                "signinsByGrant": d.by_grant,
                "newUsersPerDay": d.new_users.iter().map(|(day, n)| json!({"time": day, "count": n})).collect::<Vec<_>>(),
                "wechatErrorsByErrcode": d.wechat_errors.iter().map(|(e, n)| (e.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "activeSessions": d.active_sessions,
            }),
            Value::Null,
        ))
    }

    /// Adds a record (Casdoor's SDK does), marked as added by the caller: an administrator of
    /// its organization.
    #[oai(path = "/api/add-record", method = "post", operation_id = "add-record")]
    async fn add_record(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        caller: Caller,
        body: Required<RecordWire>,
    ) -> Result<Reply<Envelope>, Failure> {
        let b = body.parse()?;
        let text = |v: Option<String>| v.unwrap_or_default();
        let input = RecordInput {
            organization: b.organization.or(b.owner).unwrap_or_default(),
            client_ip: text(b.client_ip),
            user: text(b.user),
            method: text(b.method),
            request_uri: text(b.request_uri),
            action: b.action,
            language: text(b.language),
            object: text(b.object),
            response: text(b.response),
            status_code: b.status_code.unwrap_or(0),
            detail: text(b.detail),
            is_triggered: b.is_triggered.unwrap_or(false),
        };
        let r = state
            .iam
            .add_record(&caller.principal, input, &meta(req, &state.trusted_proxies))
            .await?;
        Ok(Reply::ok(json!("Affected"), record(&r)))
    }
}

/// Filled by the authentication extractor: who made the request, for its record.
#[derive(Clone, Default)]
pub struct CallerSlot(pub Arc<Mutex<Option<Principal>>>);

/// The audit action of a write through the API, or `None` for what is not one (reads, the
/// token endpoint, whose use cases record themselves, and unknown routes).
fn action_of(method: &poem::http::Method, path: &str) -> Option<&'static str> {
    if method != poem::http::Method::POST {
        return None;
    }
    const WRITES: &[&str] = &[
        "add-organization",
        "update-organization",
        "delete-organization",
        "add-application",
        "update-application",
        "delete-application",
        "add-provider",
        "update-provider",
        "delete-provider",
        "add-cert",
        "update-cert",
        "delete-cert",
        "add-user",
        "update-user",
        "delete-user",
        "revoke-session",
        "revoke-user-sessions",
        "sso-logout",
        "delete-session",
        "delete-token",
    ];
    match path {
        "/api/wechat/bind-phone" => Some("bind-phone"),
        "/api/wechat/bind" => Some("bind-wechat"),
        "/api/wechat/unbind" => Some("unbind-wechat"),
        "/oauth/revoke" | "/api/login/oauth/revoke" => Some("revoke-token"),
        p => p
            .strip_prefix("/api/")
            .and_then(|name| WRITES.iter().find(|w| **w == name).copied()),
    }
}

fn error_code(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        429 => "slow_down",
        503 => "temporarily_unavailable",
        _ => "server_error",
    }
}

/// Records every write through the API after it is answered (through the audit queue: it never
/// holds the answer up).
pub async fn audit<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    state: Arc<AppState>,
) -> poem::Result<Response> {
    let Some(action) = action_of(req.method(), req.uri().path()) else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let meta = meta(&req, &state.trusted_proxies);
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let caller = slot.0.lock().ok().and_then(|g| g.clone());
    let error = (status >= 400).then(|| error_code(status));
    state
        .iam
        .record_request(caller.as_ref(), &meta, action, status, error);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::Method;

    #[test]
    fn only_known_writes_are_actions() {
        assert_eq!(
            action_of(&Method::POST, "/api/add-provider"),
            Some("add-provider")
        );
        assert_eq!(
            action_of(&Method::POST, "/api/wechat/bind"),
            Some("bind-wechat")
        );
        assert_eq!(action_of(&Method::GET, "/api/get-users"), None);
        assert_eq!(
            action_of(&Method::POST, "/api/login/oauth/access_token"),
            None
        );
        assert_eq!(action_of(&Method::POST, "/api/made-up-route"), None);
    }
}
