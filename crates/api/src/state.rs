//! What every operation can reach, shared behind an `Arc`.

use std::sync::Arc;

use iam_domain::service::Iam;
use poem::Request;

use crate::metrics::Metrics;
use crate::ratelimit::IpLimiter;

pub struct AppState {
    pub iam: Iam,
    pub metrics: Metrics,
    /// The issuer and base of every discovery URL (SPEC §12): the configured `origin`, in dev
    /// `http://localhost:<port>` when none is; never a request's Host.
    pub origin: String,
    pub rate_limit: Option<Arc<IpLimiter>>,
    /// When set (config `benchEndpoints = true`), `POST /bench/sign` signs with this cert: the
    /// ceiling the load tool compares sign-in against. Off in production.
    pub bench_cert: Option<iam_domain::model::Cert>,
    /// The most users an unpaged `get-users` (or `get-sorted-users`) answers (`userListMax`).
    pub user_list_max: u64,
    /// Whose `X-Forwarded-For` is believed (`trustedProxies`).
    pub trusted_proxies: iam_domain::network::TrustedProxies,
    /// `/metrics` is served on its own address (`metricsAddr`), not beside the API.
    pub metrics_elsewhere: bool,
}

/// The client's address: the peer's, or (from a trusted proxy) the one it forwards.
pub fn client_ip(
    req: &Request,
    trusted: &iam_domain::network::TrustedProxies,
) -> Option<std::net::IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    if trusted.is_empty() {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(trusted.client(peer, &forwarded, req.header("x-real-ip")))
}

impl iam_domain::ports::Events for Metrics {
    fn signin(&self, result: &str) {
        Metrics::signin(self, result);
    }

    fn user_created(&self) {
        Metrics::user_created(self);
    }

    fn purged(&self, table: &str, rows: u64) {
        Metrics::purged(self, table, rows);
    }
}
