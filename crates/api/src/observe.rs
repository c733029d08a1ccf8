//! One access-log line and one metrics sample per request, under a request id.

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::Metrics;

pub const REQUEST_ID: &str = "x-request-id";

/// The request id of this request, for handlers that log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn request_id(req: &Request) -> String {
    req.header(REQUEST_ID)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The route label: our paths are static, so the path is the route; anything unmatched is one
/// label, so a scanner cannot blow up the metric's cardinality.
fn route_label(path: &str, status: u16) -> String {
    if path.starts_with("/swagger") {
        "/swagger".into()
    } else if status == 404 || status == 405 {
        "unmatched".into()
    } else {
        path.to_owned()
    }
}

pub async fn observe<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    metrics: Metrics,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().as_str().to_owned();
    // The path only: query strings can carry access tokens and client secrets.
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    metrics.observe_request(
        &route_label(&path, status),
        &method,
        status,
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        target: "iam::http",
        request_id = %id,
        method = %method,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(resp)
}
