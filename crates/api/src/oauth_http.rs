//! The token endpoint and its neighbours: parameters from the query string, a form body, a JSON
//! body or HTTP Basic; RFC 6749 errors with their statuses; revocation; introspection.

use std::collections::HashMap;
use std::sync::Arc;

use iam_domain::grants::TokenRequest;
use iam_domain::oauth::{OAuthError, OAuthErrorKind};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Value, json};

use crate::AppState;
use crate::http::{MAX_BODY, basic_credentials, issuer, json_response, query_map};

/// Every token-endpoint answer, success or error, must not be cached (RFC 6749 §5.1).
fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub fn oauth_error(e: &OAuthError) -> Response {
    let status = match e.kind {
        OAuthErrorKind::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthErrorKind::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    if status.is_server_error() {
        tracing::warn!(error = e.kind.code(), description = %e.description, "token request failed");
    }
    let mut resp = json_response(
        status,
        &json!({"error": e.kind.code(), "error_description": e.description}),
    );
    let h = resp.headers_mut();
    if e.kind == OAuthErrorKind::InvalidClient {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OAuth2\""),
        );
    }
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    no_store(resp)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The parameters of a token-style request: query string, then a form body; a JSON body fills
/// only what is still missing; HTTP Basic supplies client credentials when none were sent.
pub async fn params(req: &Request, body: Body) -> Result<HashMap<String, String>, OAuthError> {
    let mut p = query_map(req);
    let bytes = body
        .into_bytes_limit(MAX_BODY)
        .await
        .map_err(|e| OAuthError::invalid_request(format!("cannot read the request body: {e}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?
        .trim();
    if !text.is_empty() {
        if text.starts_with('{') {
            let v: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
                OAuthError::invalid_request(format!("the request body is not valid JSON: {e}"))
            })?;
            for (k, v) in v {
                if let Some(s) = value_text(&v)
                    && p.get(&k).is_none_or(String::is_empty)
                {
                    p.insert(k, s);
                }
            }
        } else {
            let form: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|e| {
                OAuthError::invalid_request(format!("the request body is not form-encoded: {e}"))
            })?;
            for (k, v) in form {
                p.insert(k, v);
            }
        }
    }
    let missing = |k: &str| p.get(k).is_none_or(String::is_empty);
    if missing("client_id")
        && missing("client_secret")
        && let Some((id, secret)) = basic_credentials(req)
    {
        p.insert("client_id".into(), id);
        p.insert("client_secret".into(), secret);
    }
    Ok(p)
}

fn token_request(p: &HashMap<String, String>) -> TokenRequest {
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    TokenRequest {
        grant_type: get("grant_type"),
        client_id: get("client_id"),
        client_secret: get("client_secret"),
        code: get("code"),
        username: get("username"),
        password: get("password"),
        avatar: get("avatar"),
        tag: get("tag"),
        scope: get("scope"),
        nonce: get("nonce"),
        refresh_token: get("refresh_token"),
        provider: get("provider"),
    }
}

async fn run_token(state: &AppState, req: &Request, body: Body, force_refresh: bool) -> Response {
    if let Some(resp) = crate::ratelimit::check(state, req) {
        return resp;
    }
    let p = match params(req, body).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let mut tr = token_request(&p);
    if force_refresh {
        tr.grant_type = "refresh_token".into();
        tr.tag.clear();
    }
    let iss = issuer(req, &state.origin);
    match state.iam.token(&tr, &iss).await {
        Ok(t) => no_store(json_response(
            StatusCode::OK,
            &serde_json::to_value(&t).unwrap_or(Value::Null),
        )),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /oauth/token` (and `/api/login/oauth/access_token`, `/login/oauth/access_token`,
/// `/oauth/access_token`).
#[handler]
pub async fn token(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    run_token(&state, req, body, false).await
}

/// `POST /api/login/oauth/refresh_token`: Casdoor's refresh route.
#[handler]
pub async fn refresh_token(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    run_token(&state, req, body, true).await
}

/// `POST /oauth/revoke` and `/api/login/oauth/revoke` (RFC 7009).
#[handler]
pub async fn revoke(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    if let Some(resp) = crate::ratelimit::check(&state, req) {
        return resp;
    }
    let p = match params(req, body).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    match state
        .iam
        .revoke(get("client_id"), get("client_secret"), get("token"))
        .await
    {
        Ok(()) => no_store(json_response(StatusCode::OK, &json!({}))),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /api/login/oauth/introspect` (RFC 7662), for authenticated clients.
#[handler]
pub async fn introspect(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    let p = match params(req, body).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let iss = issuer(req, &state.origin);
    match state
        .iam
        .introspect(get("client_id"), get("client_secret"), get("token"), &iss)
        .await
    {
        Ok(i) => no_store(json_response(
            StatusCode::OK,
            &serde_json::to_value(&i).unwrap_or(Value::Null),
        )),
        Err(e) => oauth_error(&e),
    }
}

/// `GET /.well-known/openid-configuration`.
#[handler]
pub async fn openid_configuration(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    let iss = issuer(req, &state.origin);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/login/oauth/authorize"),
            "token_endpoint": format!("{iss}/api/login/oauth/access_token"),
            "userinfo_endpoint": format!("{iss}/api/userinfo"),
            "jwks_uri": format!("{iss}/.well-known/jwks"),
            "introspection_endpoint": format!("{iss}/api/login/oauth/introspect"),
            "revocation_endpoint": format!("{iss}/api/login/oauth/revoke"),
            "response_types_supported": ["code", "token", "id_token"],
            "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone", "offline_access"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "name", "preferred_username", "picture", "nonce"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "request_parameter_supported": false,
        }),
    )
}

/// `GET /.well-known/jwks`: every cert's public key.
#[handler]
pub async fn jwks(state: Data<&Arc<AppState>>) -> Response {
    let certs = match state.iam.repo.list_certs().await {
        Ok(c) => c,
        Err(e) => return crate::http::envelope_error(&e.into()),
    };
    let keys: Vec<Value> = certs
        .iter()
        .filter_map(|c| match state.iam.codec.jwk(c) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(cert = %c.name, error = %e, "cert left out of the JWKS");
                None
            }
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

/// `POST /bench/sign`, only with `benchEndpoints = true` (404 otherwise): the same stack as the
/// token endpoint — rate limit, parameter parsing, one RS256 signature — without WeChat or the
/// database. The load tool's ceiling for sign-in throughput.
#[handler]
pub async fn bench_sign(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    let Some(cert) = &state.bench_cert else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    if let Some(resp) = crate::ratelimit::check(&state, req) {
        return resp;
    }
    let p = match params(req, body).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let now = chrono::Utc::now().timestamp();
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let claims = iam_domain::ports::Claims {
        iss: issuer(req, &state.origin),
        sub: uuid::Uuid::new_v4().to_string(),
        aud: json!([client_id]),
        azp: client_id,
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: uuid::Uuid::new_v4().to_string(),
        token_type: "access-token".into(),
        scope: String::new(),
        nonce: String::new(),
        owner: "bench".into(),
        name: p.get("code").cloned().unwrap_or_default(),
        display_name: p.get("username").cloned().unwrap_or_default(),
        avatar: p.get("avatar").cloned().unwrap_or_default(),
        preferred_username: String::new(),
        picture: String::new(),
    };
    match state.iam.codec.sign(cert, &claims) {
        Ok(t) => no_store(json_response(
            StatusCode::OK,
            &json!({"access_token": t, "token_type": "Bearer", "expires_in": 3600}),
        )),
        Err(e) => oauth_error(&OAuthError::server_error(e.to_string())),
    }
}
