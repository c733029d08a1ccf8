//! What every operation can reach, shared behind an `Arc`.

use std::sync::Arc;

use iam_domain::service::Iam;
use poem::Request;
use poem::http::header;

use crate::metrics::Metrics;
use crate::ratelimit::IpLimiter;

pub struct AppState {
    pub iam: Iam,
    pub metrics: Metrics,
    /// The configured issuer; empty: derived from each request's Host.
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

/// The issuer of tokens minted for this request: `origin` when configured, else the Host the
/// client used (the domain's rule, [`iam_domain::service::issuer_for_host`]).
pub fn issuer(req: &Request, origin: &str) -> String {
    let host = req
        .header(header::HOST)
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    iam_domain::service::issuer_for_host(origin, &host)
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
}
