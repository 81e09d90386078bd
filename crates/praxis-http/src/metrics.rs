//! Prometheus metrics: the process-wide recorder, RED metrics per matched route, and the
//! `/metrics` handler (which also refreshes the database pool gauge at scrape time).
//!
//! Metric handles are cached per (route, method, status), so recording a request is a read
//! lock, three short lookups and two atomic updates: no allocation and no label formatting on
//! the hot path. Labels are bounded: routes are matched path templates (or `unmatched`),
//! methods outside the standard set are `OTHER`.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use praxis_infra::{MetricDoc, describe_metrics};

/// Counter of finished requests, labelled `method`, `route`, `status`.
pub const REQUESTS_TOTAL: &str = "praxis_http_requests_total";
/// Histogram of request latency in seconds, labelled `method`, `route`.
pub const REQUEST_DURATION: &str = "praxis_http_request_duration_seconds";
/// Gauge of database pool connections, labelled `state` (`idle` | `in_use`).
pub const DB_POOL_CONNECTIONS: &str = "praxis_db_pool_connections";
/// Gauge per dependency (`db`, `redis`, `nats`, `blobs`): 1 when its last `/readyz` check passed, 0
/// when it failed.
pub const DEPENDENCY_UP: &str = "praxis_dependency_up";
/// Gauge set to 1, labelled `version`: which build runs.
pub const BUILD_INFO: &str = "praxis_build_info";

/// The HTTP layer's families (the platform's are in [`praxis_infra::metric_docs::METRICS`]).
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        REQUESTS_TOTAL,
        "Finished HTTP requests, by method, route template (or unmatched) and status.",
    ),
    MetricDoc::histogram(
        REQUEST_DURATION,
        "HTTP request latency in seconds, by method and route template.",
    ),
    MetricDoc::gauge(
        DB_POOL_CONNECTIONS,
        "Database pool connections, by state (idle, in_use), read at scrape time.",
    ),
    MetricDoc::gauge(
        DEPENDENCY_UP,
        "1 when the dependency (db, redis, nats, blobs) answered the last /readyz check, 0 when it did not.",
    ),
    MetricDoc::gauge(
        BUILD_INFO,
        "Always 1; the version label says which praxis build runs.",
    ),
    MetricDoc::counter(
        crate::ratelimit::counters::DECISIONS_TOTAL,
        "HTTP rate-limit decisions, by policy and result (allowed, near_limit, limited, shadow_limited).",
    ),
    MetricDoc::counter(
        crate::ratelimit::counters::STORE_FAILURES_TOTAL,
        "HTTP rate-limit decisions taken without the shared store, by policy and mode (open, closed, local).",
    ),
];

/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Buckets (seconds) of every `*_seconds` histogram: 100µs to 10s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histogram samples are drained into buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder on first call and returns its handle; later
/// calls return the same handle.
///
/// `*_seconds` histograms get [`LATENCY_BUCKETS`]. A background thread runs the exporter's
/// upkeep. If another recorder was installed first, the returned handle renders only what is
/// recorded through it (a warning is logged).
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = builder();
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "a metrics recorder was already installed; /metrics will miss its metrics");
            }
            describe_metrics(praxis_infra::metric_docs::METRICS);
            describe_metrics(METRICS);
            process().describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("praxis-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain at scrape only");
            }
            handle
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    let plain = PrometheusBuilder::new();
    match PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "latency buckets rejected; histograms render as summaries");
            plain
        }
    }
}

/// Low-cardinality method label.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// RED metric handles cached per route, method and status.
#[derive(Default)]
pub(crate) struct RedMetrics {
    routes: RwLock<HashMap<Box<str>, Vec<MethodEntry>>>,
}

struct MethodEntry {
    method: &'static str,
    duration: Histogram,
    statuses: Vec<(u16, Counter)>,
}

impl RedMetrics {
    /// Records one finished request.
    pub(crate) fn record(
        &self,
        method: &'static str,
        route: &str,
        status: StatusCode,
        took: Duration,
    ) {
        let code = status.as_u16();
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = routes
                .get(route)
                .and_then(|ms| ms.iter().find(|e| e.method == method))
                && let Some((_, counter)) = entry.statuses.iter().find(|(s, _)| *s == code)
            {
                counter.increment(1);
                entry.duration.record(took.as_secs_f64());
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let methods = routes.entry(route.into()).or_default();
        let idx = match methods.iter().position(|e| e.method == method) {
            Some(i) => i,
            None => {
                methods.push(MethodEntry {
                    method,
                    duration: metrics::histogram!(REQUEST_DURATION, "method" => method, "route" => route.to_owned()),
                    statuses: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let entry = &mut methods[idx];
        let counter = match entry.statuses.iter().find(|(s, _)| *s == code) {
            Some((_, c)) => c.clone(),
            None => {
                let c = metrics::counter!(REQUESTS_TOTAL, "method" => method, "route" => route.to_owned(), "status" => code.to_string());
                entry.statuses.push((code, c.clone()));
                c
            }
        };
        counter.increment(1);
        entry.duration.record(took.as_secs_f64());
    }
}

/// The process metrics collector (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, ...: the Prometheus client libraries' names).
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Samples the process metrics (called at scrape time).
pub(crate) fn record_process() {
    process().collect();
}

/// Records a dependency's last readiness check.
pub(crate) fn record_dependency(name: &str, ok: bool) {
    metrics::gauge!(DEPENDENCY_UP, "dependency" => name.to_owned()).set(if ok { 1.0 } else { 0.0 });
}

/// Sets the pool gauge from a live pool (called at scrape time).
pub(crate) fn record_pool(size: u32, idle: usize) {
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size - idle));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"BREW").expect("extension method");
        assert_eq!(method_label(&odd), "OTHER");
    }

    #[test]
    fn records_and_renders() {
        let handle = install_metrics_recorder();
        let red = RedMetrics::default();
        for _ in 0..3 {
            red.record(
                "GET",
                "/unit/{id}",
                StatusCode::OK,
                Duration::from_millis(2),
            );
        }
        red.record(
            "GET",
            "/unit/{id}",
            StatusCode::NOT_FOUND,
            Duration::from_millis(1),
        );
        record_pool(5, 2);
        let text = handle.render();
        assert!(
            text.contains(
                r#"praxis_http_requests_total{method="GET",route="/unit/{id}",status="200"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"status="404"} 1"#), "{text}");
        assert!(
            text.contains("praxis_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains(r#"praxis_db_pool_connections{state="in_use"} 3"#),
            "{text}"
        );
        // Idempotent: the same recorder.
        let again = install_metrics_recorder();
        assert!(again.render().contains("/unit/{id}"));
    }
}
