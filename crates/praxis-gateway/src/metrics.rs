//! The gateway's metric families and their help text.

use praxis_infra::MetricDoc;

/// Requests answered, by route, pool and status.
pub const REQUESTS_TOTAL: &str = "praxis_gateway_requests_total";
/// Time from a request's arrival to its response head, by route and pool.
pub const REQUEST_DURATION: &str = "praxis_gateway_request_duration_seconds";
/// Attempts sent to an instance, by pool, upstream and outcome.
pub const UPSTREAM_REQUESTS_TOTAL: &str = "praxis_gateway_upstream_requests_total";
/// Time of one attempt to its response head, by pool and upstream.
pub const UPSTREAM_DURATION: &str = "praxis_gateway_upstream_duration_seconds";
/// Retries sent, by pool.
pub const RETRIES_TOTAL: &str = "praxis_gateway_retries_total";
/// Hedged attempts sent, by pool.
pub const HEDGES_TOTAL: &str = "praxis_gateway_hedges_total";
/// Retries refused by the budget, by pool.
pub const BUDGET_EXHAUSTED_TOTAL: &str = "praxis_gateway_retry_budget_exhausted_total";
/// Requests shed at a pool's concurrency limit, by pool and tier.
pub const SHED_TOTAL: &str = "praxis_gateway_shed_total";
/// Ejections by outlier detection, by pool, upstream and reason.
pub const EJECTIONS_TOTAL: &str = "praxis_gateway_ejections_total";
/// Whether the active checks have an instance up (1) or down (0), by pool and upstream.
pub const UPSTREAM_UP: &str = "praxis_gateway_upstream_up";
/// Active health checks, by pool, upstream and result.
pub const HEALTH_CHECKS_TOTAL: &str = "praxis_gateway_health_checks_total";
/// Requests in flight to a pool, by pool.
pub const POOL_IN_FLIGHT: &str = "praxis_gateway_pool_in_flight";

/// Rollout verdicts (canary and blue/green), by route, verdict and reason.
pub const CANARY_VERDICTS_TOTAL: &str = "praxis_gateway_canary_verdicts_total";
/// Blue/green switches, by route, side switched to and trigger.
pub const SWITCHES_TOTAL: &str = "praxis_gateway_switches_total";

/// Instances skipped because their circuit breaker was open, by pool and upstream.
pub const BREAKER_REJECTIONS_TOTAL: &str = "praxis_gateway_breaker_rejections_total";
/// Reloads of the gateway file, by result.
pub const RELOADS_TOTAL: &str = "praxis_gateway_reloads_total";

/// Every family the gateway records.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        REQUESTS_TOTAL,
        "Requests the gateway answered, by route, pool and status (no_route for unmatched ones).",
    ),
    MetricDoc::histogram(
        REQUEST_DURATION,
        "Seconds from a request's arrival to its response head, retries included, by route and pool.",
    ),
    MetricDoc::counter(
        UPSTREAM_REQUESTS_TOTAL,
        "Attempts sent to upstream instances, by pool, upstream and outcome (success, server_error, gateway_error).",
    ),
    MetricDoc::histogram(
        UPSTREAM_DURATION,
        "Seconds of one attempt to an upstream instance until its response head, by pool and upstream.",
    ),
    MetricDoc::counter(RETRIES_TOTAL, "Retries sent, by pool."),
    MetricDoc::counter(
        HEDGES_TOTAL,
        "Hedged attempts sent (a second attempt when the first is slow), by pool.",
    ),
    MetricDoc::counter(
        BUDGET_EXHAUSTED_TOTAL,
        "Retries not sent because the pool's retry budget was spent, by pool.",
    ),
    MetricDoc::counter(
        SHED_TOTAL,
        "Requests shed with 503 at a pool's concurrency limit, by pool and tier (premium, best_effort).",
    ),
    MetricDoc::counter(
        EJECTIONS_TOTAL,
        "Instances ejected by outlier detection, by pool, upstream and reason (consecutive_5xx, consecutive_gateway_errors, latency).",
    ),
    MetricDoc::gauge(
        UPSTREAM_UP,
        "1 when the active health checks have an instance up, 0 when down, by pool and upstream.",
    ),
    MetricDoc::counter(
        HEALTH_CHECKS_TOTAL,
        "Active health checks, by pool, upstream and result (pass, fail).",
    ),
    MetricDoc::gauge(
        POOL_IN_FLIGHT,
        "Requests in flight to a pool when the last request was admitted, by pool.",
    ),
    MetricDoc::counter(
        BREAKER_REJECTIONS_TOTAL,
        "Instances skipped because their circuit breaker was open, by pool and upstream.",
    ),
    MetricDoc::counter(
        RELOADS_TOTAL,
        "Reloads of the gateway file after it changed, by result (ok, error).",
    ),
    MetricDoc::counter(
        CANARY_VERDICTS_TOTAL,
        "Rollout verdicts, by route, verdict (canaries: step, promote, rollback; blue/green: switch_confirmed, switch_back) and reason (healthy, error_rate, latency).",
    ),
    MetricDoc::counter(
        SWITCHES_TOTAL,
        "Blue/green switches, by route, side switched to (blue, green) and trigger (admin, file, switch_back).",
    ),
];
