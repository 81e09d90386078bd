//! Metrics of the notification service (Prometheus names, recorded through the `metrics`
//! crate):
//!
//! - `praxis_notify_accepted_total`: messages accepted (duplicates not counted).
//! - `praxis_notify_attempts_total{channel, provider, result}`: attempts by outcome
//!   (`delivered`, `retry`, `failed`, `unrecorded`); the success rate per provider is
//!   `delivered / sum`.
//! - `praxis_notify_rescheduled_total{channel, reason}`: deliveries put back without an
//!   attempt (`breaker`, `rate_limit`, `shutdown`).
//! - `praxis_notify_delivery_latency_seconds{channel}` (histogram): from when a delivery was
//!   due (accept, or `send_at`) to when the provider accepted it.
//! - `praxis_notify_queue_pending{channel}`, `praxis_notify_queue_due{channel}`,
//!   `praxis_notify_oldest_due_age_seconds{channel}`: queue depth (queued or in flight,
//!   including scheduled ones), due now, and age of the oldest due delivery; sampled every
//!   `metrics_interval` (database-wide, so every process reports the same values).
//! - `praxis_notify_dead_letters`: failed deliveries (sampled).
//! - `praxis_notify_breakers_open{provider}`: breakers of that provider not closed (open or
//!   half-open) in this process.
//! - `praxis_notify_lease_lost_total{channel}`: attempts whose lease expired before they were
//!   recorded (a slow send, or a stalled process): their delivery may be sent twice.
//! - `praxis_notify_order_events_total{type, outcome}`: commerce order events handled by the
//!   order-email consumer, by type (`other` for an unknown or unreadable one) and outcome
//!   (`accepted`, `duplicate`, `ignored`, `malformed`, `refused`; see
//!   [`crate::workers::order_events`]).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::channel::Channel;
use crate::domain::model::now_ms;
use crate::store::queue::Queue;

/// Counter of accepted messages.
pub const ACCEPTED_TOTAL: &str = "praxis_notify_accepted_total";
/// Histogram of the send requests committed together in one accept transaction.
pub const ACCEPT_BATCH: &str = "praxis_notify_accept_batch_requests";
/// Counter of attempts by channel, provider and result.
pub const ATTEMPTS_TOTAL: &str = "praxis_notify_attempts_total";
/// Counter of deliveries put back without an attempt.
pub const RESCHEDULED_TOTAL: &str = "praxis_notify_rescheduled_total";
/// Histogram of delivery latency, seconds.
pub const DELIVERY_LATENCY: &str = "praxis_notify_delivery_latency_seconds";
/// Gauge of pending deliveries per channel.
pub const QUEUE_PENDING: &str = "praxis_notify_queue_pending";
/// Gauge of due deliveries per channel.
pub const QUEUE_DUE: &str = "praxis_notify_queue_due";
/// Gauge of the oldest due delivery's age per channel, seconds.
pub const OLDEST_DUE_AGE: &str = "praxis_notify_oldest_due_age_seconds";
/// Gauge of failed deliveries.
pub const DEAD_LETTERS: &str = "praxis_notify_dead_letters";
/// Gauge of breakers not closed per provider.
pub const BREAKERS_OPEN: &str = "praxis_notify_breakers_open";
/// Counter of attempts whose lease was lost.
pub const LEASE_LOST_TOTAL: &str = "praxis_notify_lease_lost_total";

/// Counter of order events by type and outcome.
pub const ORDER_EVENTS_TOTAL: &str = "praxis_notify_order_events_total";

/// Counts one attempt.
pub fn attempt(channel: Channel, provider: &str, result: &'static str) {
    metrics::counter!(ATTEMPTS_TOTAL, "channel" => channel.as_str(), "provider" => provider.to_owned(), "result" => result)
        .increment(1);
}

/// Samples queue depth, age and dead letters every `every` until `shutdown`.
pub async fn run_sampler(queue: Queue, every: Duration, shutdown: CancellationToken) {
    loop {
        let now = now_ms();
        match queue.depth(now).await {
            Ok(depths) => {
                for channel in Channel::ALL {
                    let d = depths.iter().find(|d| d.channel == channel);
                    let (pending, due, age) = d.map_or((0, 0, 0.0), |d| {
                        (
                            d.pending,
                            d.due,
                            d.oldest_due_at
                                .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0),
                        )
                    });
                    let label = channel.as_str();
                    metrics::gauge!(QUEUE_PENDING, "channel" => label).set(pending as f64);
                    metrics::gauge!(QUEUE_DUE, "channel" => label).set(due as f64);
                    metrics::gauge!(OLDEST_DUE_AGE, "channel" => label).set(age);
                }
            }
            Err(e) => tracing::debug!(error = %e, "sampling the notify queue failed"),
        }
        match queue.dead_letter_count().await {
            Ok(n) => metrics::gauge!(DEAD_LETTERS).set(n as f64),
            Err(e) => tracing::debug!(error = %e, "counting dead letters failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Every family the notification service records, with its help text.
pub const METRICS: &[praxis_infra::MetricDoc] = &[
    praxis_infra::MetricDoc::counter(
        ACCEPTED_TOTAL,
        "Messages accepted (duplicates not counted).",
    ),
    praxis_infra::MetricDoc::histogram(
        ACCEPT_BATCH,
        "Send requests committed together in one accept transaction (group commit).",
    ),
    praxis_infra::MetricDoc::counter(
        ATTEMPTS_TOTAL,
        "Delivery attempts, by channel, provider and result (delivered, retry, failed, unrecorded).",
    ),
    praxis_infra::MetricDoc::counter(
        RESCHEDULED_TOTAL,
        "Deliveries put back without an attempt, by channel and reason (breaker, rate_limit, shutdown).",
    ),
    praxis_infra::MetricDoc::histogram(
        DELIVERY_LATENCY,
        "Seconds from when a delivery was due to when its provider accepted it, by channel.",
    ),
    praxis_infra::MetricDoc::gauge(
        QUEUE_PENDING,
        "Deliveries queued or in flight (scheduled ones included), by channel; sampled.",
    ),
    praxis_infra::MetricDoc::gauge(QUEUE_DUE, "Deliveries due now, by channel; sampled."),
    praxis_infra::MetricDoc::gauge(
        OLDEST_DUE_AGE,
        "Age in seconds of the oldest due delivery, by channel; sampled.",
    ),
    praxis_infra::MetricDoc::gauge(DEAD_LETTERS, "Failed deliveries (dead letters); sampled."),
    praxis_infra::MetricDoc::gauge(
        BREAKERS_OPEN,
        "Circuit breakers not closed (open or half-open) in this process, by provider.",
    ),
    praxis_infra::MetricDoc::counter(
        LEASE_LOST_TOTAL,
        "Attempts whose lease expired before they were recorded (their delivery may be sent twice), by channel.",
    ),
    praxis_infra::MetricDoc::counter(
        ORDER_EVENTS_TOTAL,
        "Commerce order events handled by the order-email consumer, by type and outcome (accepted, duplicate, ignored, malformed, refused).",
    ),
    praxis_infra::MetricDoc::counter(
        crate::workers::retention::PRUNED_TOTAL,
        "Messages deleted by the retention.",
    ),
];
