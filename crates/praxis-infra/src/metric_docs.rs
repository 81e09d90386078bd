//! The `# HELP` text of every metric family: each crate lists its families once, as
//! [`MetricDoc`]s beside the code that records them, and describes them to the recorder when
//! it starts ([`describe`]). This module lists the platform's own (bus, cache, shared
//! limiter store).

/// What kind of family a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down (a sampled value).
    Gauge,
    /// A distribution (buckets, sum, count).
    Histogram,
}

/// One metric family: its name, kind and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDoc {
    /// The Prometheus name (`praxis_bus_consumed_total`).
    pub name: &'static str,
    /// Its kind.
    pub kind: MetricKind,
    /// One sentence: what it counts or measures, and its labels.
    pub help: &'static str,
}

impl MetricDoc {
    /// A counter.
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            help,
        }
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            help,
        }
    }

    /// A histogram.
    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Histogram,
            help,
        }
    }
}

/// Gives the installed recorder the help text of `docs` (nothing happens without one).
pub fn describe(docs: &[MetricDoc]) {
    for d in docs {
        match d.kind {
            MetricKind::Counter => metrics::describe_counter!(d.name, d.help),
            MetricKind::Gauge => metrics::describe_gauge!(d.name, d.help),
            MetricKind::Histogram => metrics::describe_histogram!(d.name, d.help),
        }
    }
}

/// The platform's families.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        "praxis_bus_published_total",
        "Events written to the bus outbox, by topic.",
    ),
    MetricDoc::counter(
        "praxis_bus_relayed_total",
        "Outbox events relayed to NATS JetStream, by topic.",
    ),
    MetricDoc::counter(
        "praxis_bus_consumed_total",
        "Events handled by a consumer group, by topic, group and result (ok, transient: retried, permanent: dead-lettered).",
    ),
    MetricDoc::gauge(
        "praxis_bus_lag",
        "Events of a topic not yet handled by a consumer group, sampled every 5 s.",
    ),
    MetricDoc::counter(
        "praxis_cache_requests_total",
        "Cache lookups, by cache and result (hit, miss, negative_hit).",
    ),
    MetricDoc::counter(
        "praxis_cache_l2_requests_total",
        "Lookups in the shared (Redis) cache tier, by cache and result (hit, miss, error).",
    ),
    MetricDoc::counter(
        "praxis_cache_loads_total",
        "Values loaded from the source of truth after a miss, by cache (concurrent misses of one key load once).",
    ),
    MetricDoc::gauge(
        "praxis_cache_entries",
        "Entries held in the in-process cache tier, by cache.",
    ),
    MetricDoc::counter(
        crate::ratelimit::STORE_ERRORS_TOTAL,
        "Failed calls of a shared rate limiter to its store, by kind (error, timeout).",
    ),
    MetricDoc::counter(
        crate::ratelimit::STORE_FALLBACKS_TOTAL,
        "Rate-limit decisions taken without the shared store, by mode (open, closed, local).",
    ),
];
