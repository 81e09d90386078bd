//! The rate-limit service's metric families and their help text.

use praxis_infra::MetricDoc;

use super::decide::DECISIONS_TOTAL;
use super::reload::{GENERATION, RELOADS_TOTAL};

/// Every family the rate-limit service records.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        DECISIONS_TOTAL,
        "Rate-limit service decisions, by domain, matched descriptor and result (ok, over_limit, shadow_over_limit, unlimited, no_limit).",
    ),
    MetricDoc::counter(
        RELOADS_TOTAL,
        "Reloads of the limits after their files changed, by result (ok, error).",
    ),
    MetricDoc::gauge(
        GENERATION,
        "Versions of the limits this process has loaded (1 at start).",
    ),
];
