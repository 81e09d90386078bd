//! Metrics of the feed (Prometheus names, recorded through the `metrics` crate):
//!
//! - `praxis_feed_posts_total{fanout}`: posts created, by `push` / `pull`.
//! - `praxis_feed_fanout_entries_total{kind}`: timeline entries written, by `push` (fan-out
//!   of a new post), `backfill` (a follow) and `rebuild` (a timeline built from the database).
//! - `praxis_feed_fanout_lag_seconds` (histogram): from a post's creation to the last
//!   follower timeline written for it.
//! - `praxis_feed_timeline_reads_total{source}`: home timeline pages answered from the
//!   timeline `store` or the `database`.
//! - `praxis_feed_rebuilds_total`: timelines rebuilt from the database.

/// Counter of created posts.
pub const POSTS_TOTAL: &str = "praxis_feed_posts_total";
/// Counter of timeline entries written.
pub const FANOUT_ENTRIES_TOTAL: &str = "praxis_feed_fanout_entries_total";
/// Histogram of fan-out lag, seconds.
pub const FANOUT_LAG: &str = "praxis_feed_fanout_lag_seconds";
/// Counter of home timeline pages by source.
pub const TIMELINE_READS_TOTAL: &str = "praxis_feed_timeline_reads_total";
/// Counter of timeline rebuilds.
pub const REBUILDS_TOTAL: &str = "praxis_feed_rebuilds_total";

/// Counts `n` timeline entries written by `kind`.
pub fn entries(kind: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(FANOUT_ENTRIES_TOTAL, "kind" => kind).increment(n as u64);
    }
}

/// Every family the feed records, with its help text.
pub const METRICS: &[praxis_infra::MetricDoc] = &[
    praxis_infra::MetricDoc::counter(POSTS_TOTAL, "Posts created, by fanout (push, pull)."),
    praxis_infra::MetricDoc::counter(
        FANOUT_ENTRIES_TOTAL,
        "Home timeline entries written, by kind (push, backfill, rebuild).",
    ),
    praxis_infra::MetricDoc::histogram(
        FANOUT_LAG,
        "Seconds from a post's creation to the last follower timeline written for it.",
    ),
    praxis_infra::MetricDoc::counter(
        TIMELINE_READS_TOTAL,
        "Home timeline pages answered, by source (store, database).",
    ),
    praxis_infra::MetricDoc::counter(REBUILDS_TOTAL, "Timelines rebuilt from the database."),
];
