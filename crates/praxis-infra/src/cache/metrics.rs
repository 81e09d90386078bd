//! Metric handles of one cache, registered once at build time (install the metrics recorder
//! before building caches).

use metrics::{Counter, Gauge, counter, gauge};

pub(super) struct CacheMetrics {
    pub(super) hit: Counter,
    pub(super) miss: Counter,
    pub(super) negative_hit: Counter,
    pub(super) loads: Counter,
    pub(super) l2_hit: Counter,
    pub(super) l2_miss: Counter,
    pub(super) l2_error: Counter,
    pub(super) entries: Gauge,
}

impl CacheMetrics {
    pub(super) fn new(name: &str) -> Self {
        let requests = |result: &'static str| counter!("praxis_cache_requests_total", "cache" => name.to_string(), "result" => result);
        let l2 = |result: &'static str| counter!("praxis_cache_l2_requests_total", "cache" => name.to_string(), "result" => result);
        CacheMetrics {
            hit: requests("hit"),
            miss: requests("miss"),
            negative_hit: requests("negative_hit"),
            loads: counter!("praxis_cache_loads_total", "cache" => name.to_string()),
            l2_hit: l2("hit"),
            l2_miss: l2("miss"),
            l2_error: l2("error"),
            entries: gauge!("praxis_cache_entries", "cache" => name.to_string()),
        }
    }
}
