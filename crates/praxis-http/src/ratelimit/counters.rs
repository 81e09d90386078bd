//! Counters of the rate-limit decisions, per policy.

use ::metrics::{Counter, counter};

/// Counter of rate-limit decisions, labelled `policy` and `result`:
/// - `allowed`: allowed with at least 10 % of the limit left;
/// - `near_limit`: allowed with less than 10 % of the limit left;
/// - `limited`: denied and answered 429 (or 503 when failing closed);
/// - `shadow_limited`: denied by a shadow policy, so let through.
///
/// The results partition the decisions: allowed requests are `allowed + near_limit`.
pub const DECISIONS_TOTAL: &str = "praxis_ratelimit_decisions_total";

/// Counter of decisions a shared limiter took without its store, labelled `policy` and `mode`
/// (`open`, `closed`, `local`: the policy's `on_store_failure`).
pub const STORE_FAILURES_TOTAL: &str = "praxis_ratelimit_store_failures_total";

/// The result label of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    NearLimit,
    Limited,
    ShadowLimited,
}

/// Handles of one policy's counters (registered on first use, so with the recorder that is
/// installed by then).
#[derive(Debug)]
pub(crate) struct PolicyMetrics {
    allowed: Counter,
    near_limit: Counter,
    limited: Counter,
    shadow_limited: Counter,
    store_failures: Counter,
}

impl PolicyMetrics {
    pub(crate) fn new(policy: &str, mode: &'static str) -> Self {
        let result = |r: &'static str| counter!(DECISIONS_TOTAL, "policy" => policy.to_owned(), "result" => r);
        Self {
            allowed: result("allowed"),
            near_limit: result("near_limit"),
            limited: result("limited"),
            shadow_limited: result("shadow_limited"),
            store_failures: counter!(STORE_FAILURES_TOTAL, "policy" => policy.to_owned(), "mode" => mode),
        }
    }

    pub(crate) fn record(&self, outcome: Outcome) {
        match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::NearLimit => &self.near_limit,
            Outcome::Limited => &self.limited,
            Outcome::ShadowLimited => &self.shadow_limited,
        }
        .increment(1);
    }

    pub(crate) fn store_failure(&self) {
        self.store_failures.increment(1);
    }
}
