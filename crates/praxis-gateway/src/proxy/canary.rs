//! A route's canary: which pool a request goes to, and the judge that rolls the canary back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderMap;
use metrics::counter;
use parking_lot::Mutex;
use praxis_kit::canary::{Arm, CanaryJudge, Rollback};
use rand::RngExt;

use crate::config::CanarySettings;
use crate::metrics::CANARY_VERDICTS_TOTAL;
use crate::pool::{Clock, Pool};

/// A canary split of a route.
#[derive(Debug)]
pub struct Canary {
    /// The new version's pool.
    pub pool: Arc<Pool>,
    percent: f64,
    header: Option<String>,
    judge: Mutex<CanaryJudge>,
    rolled_back: AtomicBool,
    clock: Clock,
    settings: CanarySettings,
}

impl Canary {
    /// The canary of `settings` to `pool`.
    pub fn new(settings: &CanarySettings, pool: Arc<Pool>, clock: Clock) -> Self {
        Self {
            pool,
            percent: settings.percent,
            header: settings.header.as_ref().map(|h| h.to_ascii_lowercase()),
            judge: Mutex::new(CanaryJudge::new(settings.to_kit())),
            rolled_back: AtomicBool::new(false),
            clock,
            settings: settings.clone(),
        }
    }

    /// The settings it was made from.
    pub fn settings(&self) -> &CanarySettings {
        &self.settings
    }

    /// Whether it has been rolled back (every request then goes to the baseline).
    pub fn is_rolled_back(&self) -> bool {
        self.rolled_back.load(Ordering::Acquire)
    }

    /// The arm of a request with these headers.
    pub fn choose(&self, headers: &HeaderMap) -> Arm {
        if self.is_rolled_back() {
            return Arm::Baseline;
        }
        if let Some(h) = &self.header
            && headers.contains_key(h.as_str())
        {
            return Arm::Canary;
        }
        if self.percent > 0.0 && rand::rng().random_range(0.0..100.0) < self.percent {
            Arm::Canary
        } else {
            Arm::Baseline
        }
    }

    /// Records a response of `arm` (`error`: a 5xx); rolls the canary back when the judge
    /// says so, with a log line and a count.
    pub fn observe(&self, route: &str, arm: Arm, error: bool, latency: Duration) {
        let now = self.clock.now_ms();
        let verdict = self
            .judge
            .lock()
            .observe(arm, error, latency.as_secs_f64() * 1000.0, now);
        let Some(verdict) = verdict else {
            return;
        };
        self.rolled_back.store(true, Ordering::Release);
        counter!(CANARY_VERDICTS_TOTAL, "route" => route.to_owned(), "verdict" => "rollback", "reason" => verdict.as_str())
            .increment(1);
        match verdict {
            Rollback::ErrorRate { canary, baseline } => tracing::warn!(
                route,
                canary_pool = %self.pool.name,
                canary_error_rate = canary,
                baseline_error_rate = baseline,
                "gateway: canary rolled back (error rate)"
            ),
            Rollback::Latency {
                canary_p99_ms,
                baseline_p99_ms,
            } => tracing::warn!(
                route,
                canary_pool = %self.pool.name,
                canary_p99_ms,
                baseline_p99_ms,
                "gateway: canary rolled back (p99 latency)"
            ),
        }
    }
}
