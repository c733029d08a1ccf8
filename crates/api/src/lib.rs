//! The HTTP API. This crate translates HTTP to use cases and back; rules live in the domain.

pub mod docs;
pub mod health;
pub mod http;
pub mod json;
pub mod metrics;
pub mod mgmt_http;
pub mod oauth_http;
pub mod observe;
pub mod ratelimit;
pub mod user_http;

use std::sync::Arc;

use iam_domain::service::Iam;
use poem::{EndpointExt, Route, get, post};
use poem_openapi::OpenApiService;

pub use metrics::Metrics;
pub use ratelimit::IpLimiter;

/// What every handler can reach, shared behind an `Arc`.
pub struct AppState {
    pub iam: Iam,
    pub metrics: Metrics,
    /// The configured issuer; empty: derived from each request's Host.
    pub origin: String,
    pub rate_limit: Option<Arc<IpLimiter>>,
    /// When set (config `benchEndpoints = true`), `POST /bench/sign` signs with this cert: the
    /// ceiling the load tool compares sign-in against. Off in production.
    pub bench_cert: Option<iam_domain::model::Cert>,
}

impl iam_domain::ports::Events for Metrics {
    fn signin(&self, result: &str) {
        Metrics::signin(self, result);
    }

    fn user_created(&self) {
        Metrics::user_created(self);
    }
}

type Documented = (
    health::HealthApi,
    docs::TokenDocs,
    docs::DiscoveryDocs,
    docs::UserDocs,
    docs::OrganizationDocs,
    docs::ApplicationDocs,
    docs::ProviderDocs,
    docs::CertDocs,
);

/// Every route's description. Only `HealthApi` is routed through poem-openapi; the others are
/// served by plain handlers (see `docs`).
fn service() -> OpenApiService<Documented, ()> {
    OpenApiService::new(
        Documented::default(),
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
pub fn app(state: Arc<AppState>) -> impl poem::Endpoint {
    let described = service();
    let spec = described.spec_endpoint();
    let ui = described.swagger_ui();
    let api = OpenApiService::new(health::HealthApi, "Hanzo IAM", env!("CARGO_PKG_VERSION"));
    let metrics = state.metrics.clone();
    Route::new()
        .at("/oauth/token", post(oauth_http::token))
        .at("/oauth/access_token", post(oauth_http::token))
        .at("/login/oauth/access_token", post(oauth_http::token))
        .at("/api/login/oauth/access_token", post(oauth_http::token))
        .at(
            "/api/login/oauth/refresh_token",
            post(oauth_http::refresh_token),
        )
        .at("/oauth/revoke", post(oauth_http::revoke))
        .at("/api/login/oauth/revoke", post(oauth_http::revoke))
        .at("/api/login/oauth/introspect", post(oauth_http::introspect))
        .at(
            "/.well-known/openid-configuration",
            get(oauth_http::openid_configuration),
        )
        .at("/.well-known/jwks", get(oauth_http::jwks))
        .at("/api/userinfo", get(user_http::userinfo))
        .at("/oauth/userinfo", get(user_http::userinfo))
        .at("/api/get-account", get(user_http::get_account))
        .at("/api/update-user", post(user_http::update_user))
        .at("/api/get-user", get(user_http::get_user))
        .at("/api/get-users", get(user_http::get_users))
        .at("/api/get-organizations", get(mgmt_http::get_organizations))
        .at("/api/get-organization", get(mgmt_http::get_organization))
        .at("/api/add-organization", post(mgmt_http::add_organization))
        .at(
            "/api/update-organization",
            post(mgmt_http::update_organization),
        )
        .at(
            "/api/delete-organization",
            post(mgmt_http::delete_organization),
        )
        .at("/api/get-applications", get(mgmt_http::get_applications))
        .at("/api/get-application", get(mgmt_http::get_application))
        .at("/api/add-application", post(mgmt_http::add_application))
        .at(
            "/api/update-application",
            post(mgmt_http::update_application),
        )
        .at(
            "/api/delete-application",
            post(mgmt_http::delete_application),
        )
        .at("/api/get-providers", get(mgmt_http::get_providers))
        .at("/api/get-provider", get(mgmt_http::get_provider))
        .at("/api/add-provider", post(mgmt_http::add_provider))
        .at("/api/update-provider", post(mgmt_http::update_provider))
        .at("/api/delete-provider", post(mgmt_http::delete_provider))
        .at("/api/get-certs", get(mgmt_http::get_certs))
        .at("/api/get-cert", get(mgmt_http::get_cert))
        .at("/api/add-cert", post(mgmt_http::add_cert))
        .at("/api/update-cert", post(mgmt_http::update_cert))
        .at("/api/delete-cert", post(mgmt_http::delete_cert))
        .at("/api/add-user", post(mgmt_http::add_user))
        .at("/api/delete-user", post(mgmt_http::delete_user))
        .at("/bench/sign", post(oauth_http::bench_sign))
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/swagger", ui)
        .data(state)
        .around(move |ep, req| observe::observe(ep, req, metrics.clone()))
}
