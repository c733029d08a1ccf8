//! Sessions and sign-out (SPEC §9): Casdoor's `get-sessions`, `delete-session`, `sso-logout`
//! and its Token routes (drawn from the sessions, never a token's value), and ours:
//! `get-user-sessions`, `revoke-session`, `revoke-user-sessions`.

use std::sync::Arc;

use iam_domain::Error;
use iam_domain::model::Session;
use iam_domain::sessions::{Page, SessionGroup};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{BearerCaller, Caller, LaxJson, Required};
use crate::params::{Count, ObjectId, SessionId, SessionRef};
use crate::state::AppState;
use crate::tags::Tag;
use iam_wire::time;

type Answer = Result<Reply<Envelope>, Failure>;

/// Casdoor's Session: a user's active sessions in one application. `owner` and `name` name the
/// user, as Casdoor's SDKs send them; a request whose `?id=` names the user may leave them out.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct SessionWire {
    /// The user's organization.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub owner: String,
    /// The user's name.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    /// Only this application's sessions; all of the user's when empty.
    #[oai(validator(max_length = 100))]
    pub application: Option<String>,
    #[oai(read_only)]
    pub created_time: Option<String>,
    #[oai(read_only)]
    pub session_id: Option<Vec<String>>,
}

/// Casdoor's Token, as `delete-token` receives it: only `owner` and `name` (the session id)
/// are read.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct TokenWire {
    #[oai(validator(max_length = 100))]
    pub owner: Option<String>,
    /// The session's id (a UUID).
    #[oai(validator(max_length = 36, pattern = r"^[0-9a-fA-F-]{36}$"))]
    pub name: Option<String>,
}

fn group(g: &SessionGroup) -> Value {
    json!({
        "owner": g.owner,
        "name": g.name,
        "application": g.application,
        "createdTime": time(&g.created_time),
        "sessionId": g.session_ids,
    })
}

/// One sign-in as its user sees it.
fn session(s: &Session) -> Value {
    json!({
        "sid": s.id,
        "owner": s.organization,
        "name": s.user_name,
        "application": s.application,
        "createdTime": time(&s.created_time),
        "lastActiveTime": time(&s.last_active_time),
        "expiresTime": time(&s.expires_time),
        "clientIp": s.client_ip,
        "userAgent": s.user_agent,
    })
}

/// Casdoor's Token shape for a session: its name is the session id; token values and hashes
/// are never shown (they are not stored).
fn token(s: &Session) -> Value {
    json!({
        "owner": iam_domain::model::ADMIN_OWNER,
        "name": s.id,
        "createdTime": time(&s.created_time),
        "application": s.application,
        "organization": s.organization,
        "user": s.user_name,
        "code": "",
        "accessToken": "",
        "refreshToken": "",
        "accessTokenHash": "",
        "refreshTokenHash": "",
        "expiresIn": (s.expires_time - s.created_time).num_seconds().max(0),
        "scope": "",
        "tokenType": "Bearer",
        "codeChallenge": "",
        "codeIsUsed": false,
        "codeExpireIn": 0,
        "sessionId": s.id,
    })
}

/// The session id of a Token's `id` (`admin/<sid>` or `<organization>/<sid>`), or of the body.
fn token_sid(id: Option<SessionRef>, body: &TokenWire) -> Result<String, Failure> {
    id.map(|id| id.sid)
        .or_else(|| body.name.clone().filter(|n| !n.is_empty()))
        .ok_or_else(|| Failure(Error::invalid("id: is required (admin/<session id>)")))
}

fn page(p: Query<Option<Count>>, size: Query<Option<Count>>) -> Result<Option<Page>, Failure> {
    let (p, size) = (Count::text(p.0), Count::text(size.0));
    Ok(Page::parse(p.as_deref(), size.as_deref())?)
}

pub struct SessionsApi;

#[OpenApi(tag = "Tag::Sessions")]
impl SessionsApi {
    /// Casdoor's session list: per user and application, the active session ids. `owner` is
    /// an organization you administer (your own when empty or `admin`); `p` and `pageSize`
    /// page through sessions; `data2` is how many there are.
    #[oai(
        path = "/api/get-sessions",
        method = "get",
        operation_id = "get-sessions"
    )]
    async fn get_sessions(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
        p: Query<Option<Count>>,
        #[oai(name = "pageSize")] page_size: Query<Option<Count>>,
    ) -> Answer {
        let (groups, total) = state
            .iam
            .session_groups(
                &caller.principal,
                owner.0.as_deref().unwrap_or_default(),
                page(p, page_size)?,
            )
            .await?;
        Ok(Reply::list(&groups, group, total))
    }

    /// Casdoor's session removal: ends the sessions of the body's user (`owner`, `name`) in
    /// its `application` (all of them when none is named). `?id=owner/name` names the user
    /// when the body does not.
    #[oai(
        path = "/api/delete-session",
        method = "post",
        operation_id = "delete-session"
    )]
    async fn delete_session(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/name` of the user, when the body does not name one.
        id: Query<Option<ObjectId>>,
        body: Required<SessionWire>,
    ) -> Answer {
        let w = body.parse()?;
        let from_id =
            id.0.as_ref()
                .map(|id| (id.owner.as_str(), id.name.as_str()));
        let (owner, name) = match (w.owner.as_str(), w.name.as_str(), from_id) {
            (o, n, _) if !o.is_empty() && !n.is_empty() => (o, n),
            (_, _, Some(user)) => user,
            _ => {
                return Err(Failure(Error::invalid(
                    "owner, name: the user whose sessions end is required",
                )));
            }
        };
        let ended = state
            .iam
            .delete_user_app_sessions(
                &caller.principal,
                owner,
                name,
                w.application.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(Reply::affected(ended > 0))
    }

    /// A user's active sessions, newest first: yourself, or a user you administer.
    #[oai(
        path = "/api/get-user-sessions",
        method = "get",
        operation_id = "get-user-sessions"
    )]
    async fn get_user_sessions(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/name`.
        id: Query<ObjectId>,
    ) -> Answer {
        let sessions = state.iam.user_sessions(&caller.principal, &id.0).await?;
        let n = sessions.len();
        Ok(Reply::list(&sessions, session, n))
    }

    /// Ends one session: yours, or one of an organization you administer. Its tokens are
    /// refused at once here and within a second on every node; ending it twice is
    /// `Unaffected`.
    #[oai(
        path = "/api/revoke-session",
        method = "post",
        operation_id = "revoke-session"
    )]
    async fn revoke_session(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The session id (the `sid` claim of its tokens).
        sid: Query<SessionId>,
    ) -> Answer {
        let changed = state.iam.revoke_session(&caller.principal, &sid.0).await?;
        Ok(Reply::affected(changed))
    }

    /// "Sign out everywhere": ends every session of the user (`owner/name`), yourself or a
    /// user you administer. `data2` is how many were active.
    #[oai(
        path = "/api/revoke-user-sessions",
        method = "post",
        operation_id = "revoke-user-sessions"
    )]
    async fn revoke_user_sessions(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        id: Query<ObjectId>,
    ) -> Answer {
        let n = state
            .iam
            .revoke_user_sessions(&caller.principal, &id.0)
            .await?;
        Ok(Reply::affected_count(n))
    }

    /// Casdoor's sign-out: ends the session of the Bearer token, or with `logoutAll=true`
    /// every session of its user.
    #[oai(path = "/api/sso-logout", method = "post", operation_id = "sso-logout")]
    async fn sso_logout(
        &self,
        state: Data<&Arc<AppState>>,
        caller: BearerCaller,
        #[oai(name = "logoutAll", validator(pattern = r"^(true|false|1|0)?$"))] logout_all: Query<
            Option<String>,
        >,
    ) -> Answer {
        let all = match logout_all.0.as_deref().map(str::trim).unwrap_or_default() {
            "" | "false" | "0" => false,
            "true" | "1" => true,
            other => {
                return Err(Failure(Error::invalid(format!(
                    "logoutAll: must be true or false, got {other:?}"
                ))));
            }
        };
        let sid = caller
            .claims
            .as_ref()
            .map(|c| c.sid.as_str())
            .unwrap_or_default();
        let n = state.iam.sso_logout(&caller.principal, sid, all).await?;
        Ok(Reply::affected_count(n))
    }

    /// Casdoor's token list, drawn from the active sessions of the organizations you
    /// administer (`owner` as in `get-sessions`): one Token per session, named by its id,
    /// without any token value.
    #[oai(path = "/api/get-tokens", method = "get", operation_id = "get-tokens")]
    async fn get_tokens(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
        p: Query<Option<Count>>,
        #[oai(name = "pageSize")] page_size: Query<Option<Count>>,
    ) -> Answer {
        let (sessions, total) = state
            .iam
            .list_sessions(
                &caller.principal,
                owner.0.as_deref().unwrap_or_default(),
                page(p, page_size)?,
            )
            .await?;
        Ok(Reply::list(&sessions, token, total))
    }

    /// One Token (`id=admin/<session id>`); `data: null` when there is no such session.
    #[oai(path = "/api/get-token", method = "get", operation_id = "get-token")]
    async fn get_token(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/<session id>`: a session id is a UUID.
        id: Query<SessionRef>,
    ) -> Answer {
        let sid = id.0.sid;
        let s = state.iam.get_session(&caller.principal, &sid).await?;
        Ok(Reply::ok(
            s.as_ref().map(token).unwrap_or(Value::Null),
            Value::Null,
        ))
    }

    /// Ends the session a Token names (`id=admin/<session id>`, else the body's `name`).
    #[oai(
        path = "/api/delete-token",
        method = "post",
        operation_id = "delete-token"
    )]
    async fn delete_token(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/<session id>`: a session id is a UUID.
        id: Query<Option<SessionRef>>,
        body: LaxJson<TokenWire>,
    ) -> Answer {
        let sid = token_sid(id.0, &body.parse()?)?;
        let changed = state.iam.revoke_session(&caller.principal, &sid).await?;
        Ok(Reply::affected(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_name_a_session() {
        use poem_openapi::types::ParseFromParameter;
        let none = TokenWire::default();
        let sid = "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f";
        let id = SessionRef::parse_from_parameter(&format!("admin/{sid}")).ok();
        assert_eq!(token_sid(id, &none).ok(), Some(sid.into()));
        assert!(token_sid(None, &none).is_err());
        let body = TokenWire {
            owner: None,
            name: Some("xyz".into()),
        };
        assert_eq!(token_sid(None, &body).ok(), Some("xyz".into()));
    }
}
