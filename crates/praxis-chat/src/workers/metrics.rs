//! The chat's metric families and their help text.

use praxis_infra::MetricDoc;

/// Counter of messages stored.
pub const MESSAGES_TOTAL: &str = "praxis_chat_messages_total";
/// Gauge of live connections (WebSockets and event streams) in this process.
pub const CONNECTIONS: &str = "praxis_chat_connections";
/// Counter of live events handed to local connections.
pub const DELIVERIES_TOTAL: &str = "praxis_chat_deliveries_total";
/// Counter of connections closed because their queue filled up.
pub const SLOW_CLOSES_TOTAL: &str = "praxis_chat_slow_closes_total";

/// Every family the chat records.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        MESSAGES_TOTAL,
        "Messages stored (resends of a client id not counted).",
    ),
    MetricDoc::gauge(
        CONNECTIONS,
        "Live connections (WebSockets and event streams) open in this process.",
    ),
    MetricDoc::counter(
        DELIVERIES_TOTAL,
        "Live events (messages, receipts, typing, presence) queued to this process's connections.",
    ),
    MetricDoc::counter(
        SLOW_CLOSES_TOTAL,
        "Connections closed because they read too slowly (their outbound_queue filled up).",
    ),
];
