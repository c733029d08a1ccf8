//! The HTTP API. This crate translates HTTP to use cases and back; rules live in the domain.

pub mod health;
pub mod metrics;
pub mod observe;

use std::sync::Arc;

use iam_domain::ports::Repository;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use metrics::Metrics;

/// What every handler can reach, shared behind an `Arc`.
pub struct AppState {
    pub repo: Arc<dyn Repository>,
    pub metrics: Metrics,
}

fn service() -> OpenApiService<health::HealthApi, ()> {
    OpenApiService::new(health::HealthApi, "Hanzo IAM", env!("CARGO_PKG_VERSION")).description(
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
    let api = service();
    let spec = api.spec_endpoint();
    let ui = api.swagger_ui();
    let metrics = state.metrics.clone();
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/swagger", ui)
        .data(state)
        .around(move |ep, req| observe::observe(ep, req, metrics.clone()))
}
