//! A route's canary: which pool a request goes to, and the judge that rolls the canary back
//! or (with a promotion) steps its share up and promotes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use metrics::counter;
use parking_lot::Mutex;
use praxis_kit::canary::{Arm, CanaryJudge, Phase, Rollback, Verdict, VerdictKind};
use rand::RngExt;

use super::verdict::VerdictRecord;
use crate::config::CanarySettings;
use crate::metrics::CANARY_VERDICTS_TOTAL;
use crate::pool::{Clock, Pool};

const RUNNING: u8 = 0;
const ROLLED_BACK: u8 = 1;
const PROMOTED: u8 = 2;

/// A canary split of a route.
#[derive(Debug)]
pub struct Canary {
    /// The new version's pool.
    pub pool: Arc<Pool>,
    /// The current share, as `f64` bits.
    percent: AtomicU64,
    header: Option<String>,
    phase: AtomicU8,
    judged: Mutex<Judged>,
    clock: Clock,
    settings: CanarySettings,
}

#[derive(Debug)]
struct Judged {
    judge: CanaryJudge,
    last: Option<VerdictRecord>,
}

/// Where a canary stands (for the admin API).
#[derive(Debug, Clone)]
pub struct CanaryState {
    /// `running`, `rolled_back` or `promoted`.
    pub state: &'static str,
    /// The share of the route's requests it gets now (100 once promoted, 0 once rolled back).
    pub percent: f64,
    /// The current step (from 0), with a promotion.
    pub step: Option<usize>,
    /// The steps' shares, with a promotion.
    pub steps: Vec<f64>,
    /// Healthy checks at the current step, with a promotion.
    pub checks_passed: Option<u32>,
    /// Healthy checks each step needs, with a promotion.
    pub promote_after: Option<u32>,
    /// The last verdict.
    pub last_verdict: Option<VerdictRecord>,
}

impl Canary {
    /// The canary of `settings` to `pool`.
    pub fn new(settings: &CanarySettings, pool: Arc<Pool>, clock: Clock) -> Self {
        let judge = match settings.promotion() {
            Some(p) => CanaryJudge::with_promotion(settings.to_kit(), p),
            None => CanaryJudge::new(settings.to_kit()),
        };
        let percent = judge.step().map_or(settings.percent, |(_, p)| p);
        Self {
            pool,
            percent: AtomicU64::new(percent.to_bits()),
            header: settings.header.as_ref().map(|h| h.to_ascii_lowercase()),
            phase: AtomicU8::new(RUNNING),
            judged: Mutex::new(Judged { judge, last: None }),
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
        self.phase.load(Ordering::Acquire) == ROLLED_BACK
    }

    /// Whether it has been promoted (every request then goes to the canary).
    pub fn is_promoted(&self) -> bool {
        self.phase.load(Ordering::Acquire) == PROMOTED
    }

    /// The share of the route's requests it gets now, in percent.
    pub fn percent(&self) -> f64 {
        f64::from_bits(self.percent.load(Ordering::Acquire))
    }

    /// Where it stands.
    pub fn state(&self) -> CanaryState {
        let judged = self.judged.lock();
        let promotion = self.settings.promotion();
        let (state, percent) = match judged.judge.phase() {
            Phase::Running => ("running", self.percent()),
            Phase::RolledBack(_) => ("rolled_back", 0.0),
            Phase::Promoted => ("promoted", 100.0),
        };
        CanaryState {
            state,
            percent,
            step: judged.judge.step().map(|(s, _)| s),
            steps: promotion
                .as_ref()
                .map(|p| p.steps.clone())
                .unwrap_or_default(),
            checks_passed: judged.judge.checks_passed(),
            promote_after: promotion.map(|p| p.checks),
            last_verdict: judged.last.clone(),
        }
    }

    /// The arm of a request with these headers.
    pub fn choose(&self, headers: &HeaderMap) -> Arm {
        match self.phase.load(Ordering::Acquire) {
            ROLLED_BACK => return Arm::Baseline,
            PROMOTED => return Arm::Canary,
            _ => {}
        }
        if let Some(h) = &self.header
            && headers.contains_key(h.as_str())
        {
            return Arm::Canary;
        }
        let percent = self.percent();
        if percent > 0.0 && rand::rng().random_range(0.0..100.0) < percent {
            Arm::Canary
        } else {
            Arm::Baseline
        }
    }

    /// Records a response of `arm` (`error`: a 5xx); acts on the judge's verdict (a rollback,
    /// a step up, a promotion) with a log line and a count.
    pub fn observe(&self, route: &str, arm: Arm, error: bool, latency: Duration) {
        if self.phase.load(Ordering::Acquire) != RUNNING {
            return;
        }
        let now = self.clock.now_ms();
        let mut judged = self.judged.lock();
        let Some(verdict) = judged
            .judge
            .observe(arm, error, latency.as_secs_f64() * 1000.0, now)
        else {
            return;
        };
        let from = self.percent();
        match verdict.kind {
            VerdictKind::Rollback(_) => self.phase.store(ROLLED_BACK, Ordering::Release),
            VerdictKind::Promote => self.phase.store(PROMOTED, Ordering::Release),
            VerdictKind::Step { percent, .. } => {
                self.percent.store(percent.to_bits(), Ordering::Release);
            }
        }
        judged.last = Some(VerdictRecord::new(
            verdict.kind.as_str(),
            verdict.kind.reason(),
            verdict.canary,
            verdict.baseline,
        ));
        drop(judged);
        counter!(CANARY_VERDICTS_TOTAL, "route" => route.to_owned(), "verdict" => verdict.kind.as_str(), "reason" => verdict.kind.reason())
            .increment(1);
        self.log(route, from, &verdict);
    }

    fn log(&self, route: &str, from: f64, v: &Verdict) {
        let canary_pool = self.pool.name.as_str();
        let (c, b) = (&v.canary, &v.baseline);
        match v.kind {
            VerdictKind::Rollback(Rollback::ErrorRate { canary, baseline }) => tracing::warn!(
                route,
                canary_pool,
                percent = from,
                canary_requests = c.requests,
                baseline_requests = b.requests,
                canary_error_rate = canary,
                baseline_error_rate = baseline,
                "gateway: canary rolled back (error rate)"
            ),
            VerdictKind::Rollback(Rollback::Latency {
                canary_p99_ms,
                baseline_p99_ms,
            }) => tracing::warn!(
                route,
                canary_pool,
                percent = from,
                canary_requests = c.requests,
                baseline_requests = b.requests,
                canary_p99_ms,
                baseline_p99_ms,
                "gateway: canary rolled back (p99 latency)"
            ),
            VerdictKind::Step { step, percent } => tracing::info!(
                route,
                canary_pool,
                step,
                from_percent = from,
                to_percent = percent,
                canary_requests = c.requests,
                canary_error_rate = c.error_rate,
                canary_p99_ms = c.p99_ms,
                baseline_requests = b.requests,
                baseline_error_rate = b.error_rate,
                baseline_p99_ms = b.p99_ms,
                "gateway: canary healthy, stepped up"
            ),
            VerdictKind::Promote => tracing::info!(
                route,
                canary_pool,
                from_percent = from,
                canary_requests = c.requests,
                canary_error_rate = c.error_rate,
                canary_p99_ms = c.p99_ms,
                baseline_requests = b.requests,
                baseline_error_rate = b.error_rate,
                baseline_p99_ms = b.p99_ms,
                "gateway: canary promoted; it takes all of the route's traffic"
            ),
        }
    }
}
