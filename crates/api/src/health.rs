//! Liveness, readiness and metrics.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi};

use crate::state::AppState;
use crate::tags::Tag;

pub struct HealthApi;

#[derive(ApiResponse)]
enum Ready {
    /// The database answers.
    #[oai(status = 200)]
    Ready(PlainText<String>),
    /// The database does not answer; sign-in would fail.
    #[oai(status = 503)]
    Unavailable(PlainText<String>),
}

#[derive(ApiResponse)]
enum MetricsAnswer {
    #[oai(status = 200)]
    Text(PlainText<String>),
    /// `metricsAddr` is set: the metrics are served there, not here.
    #[oai(status = 404)]
    Elsewhere(PlainText<&'static str>),
}

#[OpenApi]
impl HealthApi {
    /// The process is alive.
    #[oai(path = "/healthz", method = "get", tag = "Tag::Operations")]
    async fn healthz(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The process can serve: its database is reachable.
    #[oai(path = "/readyz", method = "get", tag = "Tag::Operations")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> Ready {
        match state.iam.ready().await {
            Ok(()) => Ready::Ready(PlainText("ready".into())),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                Ready::Unavailable(PlainText("database unavailable".into()))
            }
        }
    }

    /// Prometheus text exposition: requests by route and status with latency histograms,
    /// sign-ins, users created, WeChat calls by errcode.
    #[oai(path = "/metrics", method = "get", tag = "Tag::Operations")]
    async fn metrics(&self, state: Data<&Arc<AppState>>) -> MetricsAnswer {
        if state.metrics_elsewhere {
            return MetricsAnswer::Elsewhere(PlainText("not found"));
        }
        MetricsAnswer::Text(PlainText(state.metrics.render()))
    }
}

/// `/metrics` alone, for its own listen address (`metricsAddr`), so it need not be public.
pub fn metrics_only(metrics: crate::Metrics) -> impl poem::Endpoint {
    poem::Route::new().at(
        "/metrics",
        poem::get(poem::endpoint::make_sync(move |_| {
            poem::Response::builder()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(metrics.render())
        })),
    )
}
