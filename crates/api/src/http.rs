//! Shared HTTP plumbing: reading parameters and bodies, the issuer, the `/api` envelope, and who
//! is calling.

use std::collections::HashMap;

use base64::Engine;
use iam_domain::service::Principal;
use iam_domain::users::ApiError;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Request, Response};
use serde_json::{Value, json};

use crate::AppState;

/// Request bodies above this are refused (413): nothing we accept is anywhere near it.
pub const MAX_BODY: usize = 64 * 1024;

pub fn json_response(status: StatusCode, value: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(value.to_string())
}

/// The issuer of tokens minted for this request: `origin` when configured, else the Host the
/// client used (`http://` for an IP or a name without a dot, `https://` otherwise).
pub fn issuer(req: &Request, origin: &str) -> String {
    if !origin.is_empty() {
        return origin.to_owned();
    }
    let host = req
        .header(header::HOST)
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let name = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
            .to_owned()
    } else {
        host.rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_else(|| host.clone())
    };
    let plain = name.parse::<std::net::IpAddr>().is_ok() || !name.contains('.');
    format!("{}://{}", if plain { "http" } else { "https" }, host)
}

pub fn query_map(req: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes.
pub async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    let bytes = body
        .into_bytes_limit(MAX_BODY)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
    Ok(bytes.to_vec())
}

/// HTTP Basic credentials, percent-decoded as RFC 6749 §2.3.1 asks.
pub fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.header(header::AUTHORIZATION)?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
            .unwrap_or_else(|| s.to_owned())
    };
    Some((dec(id), dec(secret)))
}

pub fn bearer_token(req: &Request) -> Option<String> {
    if let Some(v) = req.header(header::AUTHORIZATION)
        && let Some((scheme, rest)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        let t = rest.trim();
        return (!t.is_empty()).then(|| t.to_owned());
    }
    let q = query_map(req);
    q.get("access_token")
        .or_else(|| q.get("accessToken"))
        .filter(|t| !t.is_empty())
        .cloned()
}

/// Who is calling an `/api` route: a Bearer token (header or `access_token`/`accessToken`), or
/// an application's client credentials (HTTP Basic or `clientId`/`clientSecret`).
pub async fn principal(state: &AppState, req: &Request) -> Result<Principal, ApiError> {
    if let Some(token) = bearer_token(req) {
        let iss = issuer(req, &state.origin);
        return state
            .iam
            .authenticate_bearer(&token, Some(&iss))
            .await
            .map(|(p, _)| p);
    }
    if let Some((id, secret)) = basic_credentials(req) {
        return state.iam.authenticate_app(&id, &secret).await;
    }
    let q = query_map(req);
    if let (Some(id), Some(secret)) = (q.get("clientId"), q.get("clientSecret")) {
        return state.iam.authenticate_app(id, secret).await;
    }
    Err(ApiError::Unauthorized("Please sign in first".into()))
}

pub fn status_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Casdoor's envelope for an error, with a real HTTP status.
pub fn envelope_error(e: &ApiError) -> Response {
    let status = status_of(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
    let mut resp = json_response(
        status,
        &json!({"status": "error", "msg": e.to_string(), "data": null, "data2": null}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    resp
}

/// Casdoor's envelope for a success.
pub fn envelope_ok(data: Value, data2: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "ok", "msg": "", "data": data, "data2": data2}),
    )
}

/// A JSON object body, whatever the Content-Type says (Casdoor's Python SDK sends none).
/// Empty bodies are an empty object.
pub fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_from_host() {
        let req = Request::builder().header("host", "127.0.0.1:8000").finish();
        assert_eq!(issuer(&req, ""), "http://127.0.0.1:8000");
        let req = Request::builder().header("host", "localhost:8000").finish();
        assert_eq!(issuer(&req, ""), "http://localhost:8000");
        let req = Request::builder()
            .header("host", "iam.example.com")
            .finish();
        assert_eq!(issuer(&req, ""), "https://iam.example.com");
        let req = Request::builder().header("host", "[::1]:8000").finish();
        assert_eq!(issuer(&req, ""), "http://[::1]:8000");
        assert_eq!(issuer(&req, "https://iam.hanzo.ai"), "https://iam.hanzo.ai");
    }

    #[test]
    fn basic_and_bearer() {
        let creds = base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret");
        let req = Request::builder()
            .header("authorization", format!("Basic {creds}"))
            .finish();
        assert_eq!(
            basic_credentials(&req),
            Some(("my id".into(), "s:cret".into()))
        );
        let req = Request::builder()
            .header("authorization", "Bearer abc")
            .finish();
        assert_eq!(bearer_token(&req).as_deref(), Some("abc"));
        let req = Request::builder()
            .uri("/x?accessToken=t1".parse().unwrap())
            .finish();
        assert_eq!(bearer_token(&req).as_deref(), Some("t1"));
    }
}
