//! The shortener's metric families and their help text.

use praxis_infra::MetricDoc;

/// Every family the shortener records.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        "praxis_shortener_redirects_total",
        "Short-code resolutions, by result (redirect, not_found, gone, error).",
    ),
    MetricDoc::counter(
        "praxis_shortener_bloom_rejections_total",
        "Unknown codes answered 404 by the Bloom filter without a cache or database lookup.",
    ),
    MetricDoc::counter(
        "praxis_shortener_links_created_total",
        "Short links created.",
    ),
    MetricDoc::counter(
        "praxis_shortener_visit_batches_total",
        "Batches of visit counts flushed to the bus.",
    ),
    MetricDoc::counter(
        "praxis_shortener_visits_dropped_total",
        "Visits not counted, by reason (buffer full, encode, publish failures).",
    ),
    MetricDoc::gauge(
        "praxis_shortener_bloom_capacity",
        "Codes the Bloom filter is sized for.",
    ),
    MetricDoc::gauge(
        "praxis_shortener_bloom_codes",
        "Codes loaded into the Bloom filter.",
    ),
];
