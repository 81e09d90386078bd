//! One structured access-log event per request, through `tracing` with target `"access"`.
//! The binary's JSON subscriber turns it into one line; this crate only emits the event.

use std::time::Duration;

/// Tracing target of access-log events (filter with `access=info`).
pub const TARGET: &str = "access";

/// Emits the access-log event: `info` below 500, `warn` for server errors.
pub(crate) fn emit(request_id: &str, method: &str, route: &str, status: u16, latency: Duration) {
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: TARGET, request_id, method, route, status, latency_ms, "request");
    } else {
        tracing::info!(target: TARGET, request_id, method, route, status, latency_ms, "request");
    }
}
