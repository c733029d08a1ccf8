//! The Bearer APIs of SPEC §5: update-user, get-account, userinfo, get-user, get-users.

use std::sync::Arc;

use iam_domain::service::Principal;
use iam_domain::users::ApiError;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Value, json};

use crate::AppState;
use crate::http::{
    envelope_error, envelope_ok, issuer, json_object, json_response, principal, query_map,
    read_body,
};

/// `POST /api/update-user`.
#[handler]
pub async fn update_user(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    let result = async {
        let caller = principal(&state, req).await?;
        let bytes = read_body(body).await?;
        let obj = json_object(&bytes)?;
        let q = query_map(req);
        state
            .iam
            .update_user(
                &caller,
                q.get("id").map(String::as_str),
                &obj,
                q.get("columns").map(String::as_str),
            )
            .await
    }
    .await;
    match result {
        Ok(changed) => envelope_ok(
            json!(if changed { "Affected" } else { "Unaffected" }),
            Value::Null,
        ),
        Err(e) => envelope_error(&e),
    }
}

/// `GET /api/get-account`: the caller's user and organization. Mints nothing.
#[handler]
pub async fn get_account(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    let result = async {
        let caller = principal(&state, req).await?;
        state.iam.account(&caller).await
    }
    .await;
    match result {
        Ok((u, org)) => {
            let body = json!({
                "status": "ok",
                "msg": "",
                "sub": u.id,
                "name": u.name,
                "data": crate::json::user(&u),
                "data2": org.as_ref().map(crate::json::organization),
            });
            json_response(StatusCode::OK, &body)
        }
        Err(e) => envelope_error(&e),
    }
}

/// `GET /api/userinfo` and `/oauth/userinfo`: OIDC userinfo of a Bearer token.
#[handler]
pub async fn userinfo(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    let iss = issuer(req, &state.origin);
    let Some(token) = crate::http::bearer_token(req) else {
        return envelope_error(&ApiError::Unauthorized("a Bearer token is required".into()));
    };
    match state.iam.authenticate_bearer(&token, Some(&iss)).await {
        Ok((Principal::User(u), claims)) => json_response(
            StatusCode::OK,
            &json!({
                "sub": u.id,
                "iss": iss,
                "aud": claims.azp,
                "name": u.name,
                "preferred_username": u.name,
                "displayName": u.display_name,
                "picture": u.avatar,
            }),
        ),
        Ok((Principal::Application(_), _)) => envelope_error(&ApiError::BadRequest(
            "an application token has no user information".into(),
        )),
        Err(e) => envelope_error(&e),
    }
}

/// `GET /api/get-user?id=owner/name`: `data: null` when absent.
#[handler]
pub async fn get_user(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    let result = async {
        let caller = principal(&state, req).await?;
        let q = query_map(req);
        let id = q
            .get("id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::BadRequest("id (owner/name) is required".into()))?;
        state.iam.get_user(&caller, id).await
    }
    .await;
    match result {
        Ok(u) => envelope_ok(
            u.as_ref().map(crate::json::user).unwrap_or(Value::Null),
            Value::Null,
        ),
        Err(e) => envelope_error(&e),
    }
}

/// `GET /api/get-users?owner=`.
#[handler]
pub async fn get_users(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    let result = async {
        let caller = principal(&state, req).await?;
        let q = query_map(req);
        let owner = q.get("owner").cloned().unwrap_or_default();
        state.iam.get_users(&caller, &owner).await
    }
    .await;
    match result {
        Ok(users) => {
            let n = users.len();
            envelope_ok(
                Value::Array(users.iter().map(crate::json::user).collect()),
                json!(n),
            )
        }
        Err(e) => envelope_error(&e),
    }
}
