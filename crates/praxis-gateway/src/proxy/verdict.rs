//! A rollout verdict as the admin API shows it: what was decided, why, when, and the numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use praxis_kit::canary::Summary;

/// The last verdict of a canary or a blue/green check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRecord {
    /// `step`, `promote`, `rollback`, `switch_confirmed` or `switch_back`.
    pub verdict: &'static str,
    /// `healthy`, `error_rate` or `latency`.
    pub reason: &'static str,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The judged side's responses (the canary's, or the new side's).
    pub candidate: Summary,
    /// Those it was compared with (the baseline's, or the old side's before the switch).
    pub baseline: Summary,
}

impl VerdictRecord {
    /// A verdict taken now.
    pub fn new(
        verdict: &'static str,
        reason: &'static str,
        candidate: Summary,
        baseline: Summary,
    ) -> Self {
        Self {
            verdict,
            reason,
            at: now_rfc3339(),
            candidate,
            baseline,
        }
    }
}

/// The time now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    praxis_kit::text::rfc3339_ms(ms)
}
