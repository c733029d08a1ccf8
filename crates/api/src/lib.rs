//! The HTTP API. This crate translates HTTP to use cases and back; rules live in the domain.
//!
//! Every route is one poem-openapi operation, routed and described at once:
//! [`oauth`] (the token endpoint), [`users`] (Bearer APIs), [`sessions`], [`management`], [`discovery`] and
//! [`health`]. Casdoor's lax inputs are read by the extractors of [`extract`]; errors become
//! HTTP only in [`errors`]; Casdoor's JSON shapes are the `iam_wire` crate's.

pub mod discovery;
pub mod errors;
pub mod extract;
pub mod health;
pub mod management;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod params;
pub mod ratelimit;
pub mod records;
pub mod sessions;
pub mod state;
mod tags;
pub mod users;
pub mod wechat;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use metrics::Metrics;
pub use ratelimit::IpLimiter;
pub use state::AppState;

type Api = (
    health::HealthApi,
    oauth::OAuthApi,
    oauth::OAuthAliases,
    discovery::DiscoveryApi,
    users::UsersApi,
    sessions::SessionsApi,
    wechat::MiniProgramApi,
    records::RecordsApi,
    (
        management::OrganizationApi,
        management::ApplicationApi,
        management::ProviderApi,
        management::CertApi,
        management::ManagementApi,
    ),
);

fn service() -> OpenApiService<Api, ()> {
    use management::*;
    OpenApiService::new(
        (
            health::HealthApi,
            oauth::OAuthApi,
            oauth::OAuthAliases,
            discovery::DiscoveryApi,
            users::UsersApi,
            sessions::SessionsApi,
            wechat::MiniProgramApi,
            records::RecordsApi,
            (
                OrganizationApi,
                ApplicationApi,
                ProviderApi,
                CertApi,
                ManagementApi,
            ),
        ),
        "Hanzo IAM",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Identity server whose headline job is WeChat Mini Program sign-in without an OAuth \
             redirect; wire-compatible with Hanzo IAM / Casdoor for every route it implements.",
    )
}

/// The OpenAPI document, as `GET /openapi.json` serves it and `openapi/openapi.json` holds it.
pub fn openapi_json() -> String {
    service().spec()
}

/// Every route, with request ids, access logs and metrics around them.
pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let api = service();
    let spec = api.spec_endpoint();
    let ui = api.swagger_ui();
    let metrics = state.metrics.clone();
    let audited = state.clone();
    let allowed = Arc::new(allowed_methods());
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/swagger", ui.with(poem::middleware::Compression::new()))
        .data(state)
        .around(move |ep, req| unrouted(ep, req, allowed.clone()))
        .around(headers)
        .around(move |ep, req| records::audit(ep, req, audited.clone()))
        .around(move |ep, req| observe::observe(ep, req, metrics.clone()))
}

/// The Swagger UI page is poem-openapi's: its script and styles are inline, so its policy allows
/// inline (and only inline) script and style; nothing may frame it.
const SWAGGER_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Headers of every answer: never sniffed; never cached when it may carry personal data or a
/// secret (every `/api` and `/oauth` answer); an HTML page is never framed.
async fn headers<E: Endpoint>(ep: Arc<E>, req: poem::Request) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    use poem::http::{HeaderValue, header};
    let path = req.uri().path();
    let private = path.starts_with("/api/") || path.starts_with("/oauth/");
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if private {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SWAGGER_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(resp)
}

/// The methods each described path takes, from the one OpenAPI service: what a 405 names in its
/// `Allow` header (RFC 9110 §15.5.6), which poem's router leaves out.
fn allowed_methods() -> std::collections::HashMap<String, String> {
    let spec: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap_or_default();
    let paths = spec["paths"].as_object().cloned().unwrap_or_default();
    paths
        .into_iter()
        .map(|(path, ops)| {
            let methods = ops.as_object().map(|o| {
                o.keys()
                    .map(|m| m.to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            (path, methods.unwrap_or_default())
        })
        .collect()
}

/// What the router answers by itself, in the words of the route's family: an unknown `/api/...`
/// route is Casdoor's envelope with 404, as Casdoor answers (its SDKs decode every `/api` answer
/// as JSON); a known route called with the wrong method is 405 with `Allow`, in the envelope on
/// `/api`, as RFC 6749's `invalid_request` on the token endpoints.
async fn unrouted<E: Endpoint>(
    ep: Arc<E>,
    req: poem::Request,
    allowed: Arc<std::collections::HashMap<String, String>>,
) -> poem::Result<poem::Response> {
    use iam_domain::oauth::OAuthError;
    use poem::IntoResponse;
    use poem::http::{HeaderValue, StatusCode, header};
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let from_router = !resp
        .content_type()
        .is_some_and(|t| t.starts_with("application/json"));
    let is_api = path.starts_with("/api/");
    match resp.status() {
        StatusCode::NOT_FOUND if from_router && is_api => {
            Ok(errors::Failure(iam_domain::Error::NotFound("not found".into())).into_response())
        }
        StatusCode::METHOD_NOT_ALLOWED if from_router => {
            let Some(allow) = allowed.get(&path) else {
                return Ok(resp);
            };
            let message = format!("{method} is not allowed here: this route takes {allow}");
            let mut resp = if is_api {
                errors::Failure(iam_domain::Error::Invalid(message)).into_response()
            } else if path.contains("/oauth/") && allow == "POST" {
                errors::OAuthFailure(OAuthError::invalid_request(message)).into_response()
            } else {
                resp
            };
            resp.set_status(StatusCode::METHOD_NOT_ALLOWED);
            if let Ok(v) = HeaderValue::from_str(allow) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            Ok(resp)
        }
        _ => Ok(resp),
    }
}
