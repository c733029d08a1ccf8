//! Prometheus metrics. Labels are bounded: routes are our own static paths, statuses are numbers,
//! errcodes come from a small set. Nothing user-supplied becomes a label.

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    signins: IntCounterVec,
    users_created: IntCounter,
    wechat_calls: IntCounterVec,
    purged: IntCounterVec,
    records_dropped: IntCounter,
    db_statements: IntCounter,
    /// Where the statement count comes from (the store keeps it): read at each render.
    statement_source: std::sync::OnceLock<StatementSource>,
}

/// Reads the number of statements sent to the database so far.
pub type StatementSource = Box<dyn Fn() -> u64 + Send + Sync>;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // The metric definitions are constants: if one were malformed every start would fail the
        // same way, which the tests catch; nothing from a request reaches these calls.
        let requests = IntCounterVec::new(
            Opts::new(
                "iam_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("iam_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let signins = IntCounterVec::new(
            Opts::new("iam_signins_total", "Mini program sign-ins by result"),
            &["result"],
        )
        .expect("valid metric");
        let users_created = IntCounter::new("iam_users_created_total", "Users created by sign-in")
            .expect("valid metric");
        let wechat_calls = IntCounterVec::new(
            Opts::new(
                "iam_wechat_calls_total",
                "Calls to the WeChat server API by api and errcode",
            ),
            &["api", "errcode"],
        )
        .expect("valid metric");
        let purged = IntCounterVec::new(
            Opts::new(
                "iam_purged_rows_total",
                "Expired rows deleted by the background purge, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let records_dropped = IntCounter::new(
            "iam_audit_records_dropped_total",
            "Audit records dropped because the writer's queue was full",
        )
        .expect("valid metric");
        let db_statements = IntCounter::new(
            "iam_db_statements_total",
            "Statements sent to the database (round trips; BEGIN and COMMIT count)",
        )
        .expect("valid metric");
        for c in [
            Box::new(records_dropped.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(db_statements.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(signins.clone()),
            Box::new(users_created.clone()),
            Box::new(wechat_calls.clone()),
            Box::new(purged.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                signins,
                users_created,
                wechat_calls,
                purged,
                records_dropped,
                db_statements,
                statement_source: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.inner
            .requests
            .with_label_values(&[route, method, &status])
            .inc();
        self.inner
            .latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn signin(&self, result: &str) {
        self.inner.signins.with_label_values(&[result]).inc();
    }

    pub fn user_created(&self) {
        self.inner.users_created.inc();
    }

    pub fn wechat_call(&self, api: &str, errcode: &str) {
        self.inner
            .wechat_calls
            .with_label_values(&[api, errcode])
            .inc();
    }

    pub fn purged(&self, table: &str, rows: u64) {
        self.inner.purged.with_label_values(&[table]).inc_by(rows);
    }

    pub fn record_dropped(&self) {
        self.inner.records_dropped.inc();
    }

    /// Counts the database's statements from `source` (set once, at start).
    pub fn count_statements(&self, source: StatementSource) {
        let _ = self.inner.statement_source.set(source);
    }

    pub fn render(&self) -> String {
        if let Some(source) = self.inner.statement_source.get() {
            let (now, shown) = (source(), self.inner.db_statements.get());
            self.inner.db_statements.inc_by(now.saturating_sub(shown));
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_stores_statements_at_each_render() {
        let m = Metrics::new();
        let n = Arc::new(std::sync::atomic::AtomicU64::new(7));
        let source = n.clone();
        m.count_statements(Box::new(move || {
            source.load(std::sync::atomic::Ordering::Relaxed)
        }));
        assert!(m.render().contains("iam_db_statements_total 7"));
        n.store(12, std::sync::atomic::Ordering::Relaxed);
        assert!(m.render().contains("iam_db_statements_total 12"));
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.observe_request("/healthz", "GET", 200, 0.002);
        m.wechat_call("jscode2session", "40029");
        let text = m.render();
        assert!(
            text.contains(
                r#"iam_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("iam_http_request_duration_seconds_bucket"));
        assert!(text.contains(r#"iam_wechat_calls_total{api="jscode2session",errcode="40029"} 1"#));
    }
}
