//! A canary judge: compares a canary's error rate and p99 latency with the baseline's and
//! decides a rollback, or (with a [`Promotion`]) steps the canary's share up and promotes it,
//! as a pure state machine (the caller passes the time in milliseconds, never decreasing).
//!
//! Each response of either arm is observed. Once the canary has at least `min_requests`
//! responses in the sliding window (and the baseline at least one), the judge rolls back when
//! - the canary's error rate exceeds the baseline's by more than `max_error_rate_increase`
//!   (absolute: 0.05 is five points), or
//! - `max_p99_ratio` is above zero and the canary's p99 exceeds `max_p99_ratio` times the
//!   baseline's (and `min_p99_gap_ms` more than it, so 2 ms against 1 ms is not a regression).
//!
//! **Promotion** (optional): the canary's share goes through `steps` (percentages, increasing).
//! Time is cut into *checks*: a check ends once it is at least `window_ms` long *and* holds at
//! least `min_requests` canary responses (so low traffic lengthens a check rather than passing
//! it on no evidence). At its end the check's canary responses are compared with its baseline
//! responses by the same rules; a failure is a rollback, a pass counts. After `checks` passes
//! at a step the canary moves to the next step ([`VerdictKind::Step`]); after the last step's,
//! it is promoted ([`VerdictKind::Promote`]). A check whose baseline had fewer than
//! `min_requests` responses (a step at 100% gives it none) is compared with the last check's
//! baseline that had enough ("recorded"); with none recorded, with what it has; with no
//! baseline response at all, with a perfect baseline (no errors, and no latency rule).
//!
//! A rollback or a promotion is final: the judge says so once and then ignores observations.
//! Each arm keeps at most `max_samples` responses (the oldest go first), which bounds memory
//! and work.

use std::collections::{BTreeMap, VecDeque};

/// When a canary is rolled back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanaryConfig {
    /// How far back responses count, in milliseconds.
    pub window_ms: u64,
    /// Canary responses in the window before any verdict.
    pub min_requests: u32,
    /// The largest acceptable excess of the canary's error rate over the baseline's (0 to 1).
    pub max_error_rate_increase: f64,
    /// The largest acceptable ratio of the canary's p99 to the baseline's (0: no latency rule).
    pub max_p99_ratio: f64,
    /// ...and the canary's p99 must also exceed the baseline's by this much to count.
    pub min_p99_gap_ms: f64,
    /// Responses kept per arm.
    pub max_samples: usize,
}

impl Default for CanaryConfig {
    /// A 60 s window, 50 requests, 5 points of errors, 1.5x the p99 and 20 ms over it.
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            min_requests: 50,
            max_error_rate_increase: 0.05,
            max_p99_ratio: 1.5,
            min_p99_gap_ms: 20.0,
            max_samples: 10_000,
        }
    }
}

/// Which side of the split a response came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The stable pool.
    Baseline,
    /// The new pool.
    Canary,
}

/// Why the canary was rolled back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rollback {
    /// Its error rate was too high.
    ErrorRate {
        /// The canary's error rate in the window.
        canary: f64,
        /// The baseline's.
        baseline: f64,
    },
    /// Its p99 latency was too high.
    Latency {
        /// The canary's p99 in the window, in milliseconds.
        canary_p99_ms: f64,
        /// The baseline's.
        baseline_p99_ms: f64,
    },
}

impl Rollback {
    /// `error_rate` or `latency` (a metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            Rollback::ErrorRate { .. } => "error_rate",
            Rollback::Latency { .. } => "latency",
        }
    }
}

/// What one arm's responses came to.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Responses counted.
    pub requests: usize,
    /// Their share of errors (0 to 1; 0 with no response).
    pub error_rate: f64,
    /// Their nearest-rank p99 latency, in milliseconds (0 with no response).
    pub p99_ms: f64,
}

impl CanaryConfig {
    /// Compares `candidate`'s responses with `baseline`'s by the rules of the
    /// [module docs](self): the rollback they call for, if any. A baseline without responses
    /// is a perfect one: no errors, and no latency rule.
    pub fn compare(&self, candidate: &Summary, baseline: &Summary) -> Option<Rollback> {
        let base_rate = if baseline.requests == 0 {
            0.0
        } else {
            baseline.error_rate
        };
        if candidate.error_rate - base_rate > self.max_error_rate_increase {
            return Some(Rollback::ErrorRate {
                canary: candidate.error_rate,
                baseline: base_rate,
            });
        }
        if self.max_p99_ratio > 0.0 && baseline.requests > 0 {
            let (cp, bp) = (candidate.p99_ms, baseline.p99_ms);
            if cp > self.max_p99_ratio * bp && cp - bp > self.min_p99_gap_ms {
                return Some(Rollback::Latency {
                    canary_p99_ms: cp,
                    baseline_p99_ms: bp,
                });
            }
        }
        None
    }
}

/// Responses of one arm: `(time, error, latency)`, oldest first, with their error count; the
/// caller expires old ones (a sliding window) or clears them (a check).
/// The latencies are also counted in an ordered multiset, so that the p99, asked for on every
/// response once a window is judged, walks the top 1% instead of sorting the window.
#[derive(Debug, Clone, Default)]
pub struct Responses {
    samples: VecDeque<(u64, bool, f64)>,
    errors: usize,
    latencies: BTreeMap<u64, usize>,
}

/// A latency's key in the ordered multiset: the bits of a non-negative float order as the float
/// does (NaN and negatives count as 0, infinities as the largest).
fn latency_key(latency_ms: f64) -> u64 {
    if latency_ms.is_nan() || latency_ms <= 0.0 {
        0
    } else {
        latency_ms.to_bits()
    }
}

impl Responses {
    /// No responses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one, dropping the oldest beyond `max` (at least one is kept).
    pub fn push(&mut self, now_ms: u64, error: bool, latency_ms: f64, max: usize) {
        self.samples.push_back((now_ms, error, latency_ms));
        self.errors += usize::from(error);
        *self.latencies.entry(latency_key(latency_ms)).or_insert(0) += 1;
        while self.samples.len() > max.max(1) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, error, latency_ms)) = self.samples.pop_front() {
            self.errors -= usize::from(error);
            let key = latency_key(latency_ms);
            if let Some(n) = self.latencies.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.latencies.remove(&key);
                }
            }
        }
    }

    /// Drops those `window_ms` old or older.
    pub fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, _, _)| now_ms.saturating_sub(t) >= window_ms)
        {
            self.pop();
        }
    }

    /// Drops them all.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.errors = 0;
        self.latencies.clear();
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn error_rate(&self) -> f64 {
        if self.samples.is_empty() {
            0.0
        } else {
            self.errors as f64 / self.samples.len() as f64
        }
    }

    /// The nearest-rank p99.
    fn p99(&self) -> f64 {
        let n = self.samples.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
        // The rank-th smallest is the (n - rank + 1)-th largest: walk down from the top.
        let mut from_top = n - rank + 1;
        for (&key, &count) in self.latencies.iter().rev() {
            if count >= from_top {
                return f64::from_bits(key);
            }
            from_top -= count;
        }
        0.0
    }

    /// Their count, error rate and p99.
    pub fn summary(&self) -> Summary {
        Summary {
            requests: self.len(),
            error_rate: self.error_rate(),
            p99_ms: self.p99(),
        }
    }
}

/// How a canary is promoted: its share at each step, and the checks each step must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// The canary's share at each step, in percent (increasing; the first is where it starts).
    pub steps: Vec<f64>,
    /// Checks in a row that must pass at a step before the next (or the promotion); at least 1.
    pub checks: u32,
}

/// Where a judge stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Judging.
    Running,
    /// Rolled back (final).
    RolledBack(Rollback),
    /// Promoted (final).
    Promoted,
}

/// What a verdict decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VerdictKind {
    /// Roll the canary back.
    Rollback(Rollback),
    /// Move to step `step` (from 0), whose share is `percent`.
    Step {
        /// The new step's index.
        step: usize,
        /// Its share, in percent.
        percent: f64,
    },
    /// Send the canary all the traffic.
    Promote,
}

impl VerdictKind {
    /// `rollback`, `step` or `promote` (a metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            VerdictKind::Rollback(_) => "rollback",
            VerdictKind::Step { .. } => "step",
            VerdictKind::Promote => "promote",
        }
    }

    /// Why: `error_rate` or `latency` for a rollback, `healthy` otherwise (a metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            VerdictKind::Rollback(r) => r.as_str(),
            _ => "healthy",
        }
    }
}

/// A verdict with the numbers it was taken on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// What it decided.
    pub kind: VerdictKind,
    /// The canary's responses it judged (the sliding window's, or the check's).
    pub canary: Summary,
    /// The baseline's it compared them with.
    pub baseline: Summary,
}

#[derive(Debug, Clone)]
struct Plan {
    promotion: Promotion,
    step: usize,
    passed: u32,
    check_started_ms: Option<u64>,
    canary: Responses,
    baseline: Responses,
    recorded: Option<Summary>,
}

/// Judges one canary (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CanaryJudge {
    cfg: CanaryConfig,
    baseline: Responses,
    canary: Responses,
    phase: Phase,
    plan: Option<Plan>,
}

impl CanaryJudge {
    /// A judge with empty windows that only rolls back.
    pub fn new(cfg: CanaryConfig) -> Self {
        Self {
            cfg,
            baseline: Responses::new(),
            canary: Responses::new(),
            phase: Phase::Running,
            plan: None,
        }
    }

    /// A judge that also steps the canary up and promotes it. Steps that are empty are one
    /// step at 0% (header traffic only); `checks` of 0 counts as 1.
    pub fn with_promotion(cfg: CanaryConfig, mut promotion: Promotion) -> Self {
        if promotion.steps.is_empty() {
            promotion.steps.push(0.0);
        }
        promotion.checks = promotion.checks.max(1);
        Self {
            plan: Some(Plan {
                promotion,
                step: 0,
                passed: 0,
                check_started_ms: None,
                canary: Responses::new(),
                baseline: Responses::new(),
                recorded: None,
            }),
            ..Self::new(cfg)
        }
    }

    /// The rollback decided, if any.
    pub fn rolled_back(&self) -> Option<Rollback> {
        match self.phase {
            Phase::RolledBack(r) => Some(r),
            _ => None,
        }
    }

    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The current step (from 0) and its share in percent, with a promotion.
    pub fn step(&self) -> Option<(usize, f64)> {
        let plan = self.plan.as_ref()?;
        Some((plan.step, plan.promotion.steps[plan.step]))
    }

    /// Checks passed at the current step, with a promotion.
    pub fn checks_passed(&self) -> Option<u32> {
        self.plan.as_ref().map(|p| p.passed)
    }

    /// The sliding window's canary and baseline responses.
    pub fn window(&self) -> (Summary, Summary) {
        (self.canary.summary(), self.baseline.summary())
    }

    /// Records a response of `arm`; returns the verdict it leads to (at most one per call, and
    /// none after a rollback or a promotion).
    pub fn observe(
        &mut self,
        arm: Arm,
        error: bool,
        latency_ms: f64,
        now_ms: u64,
    ) -> Option<Verdict> {
        if self.phase != Phase::Running {
            return None;
        }
        let max = self.cfg.max_samples;
        match arm {
            Arm::Baseline => self.baseline.push(now_ms, error, latency_ms, max),
            Arm::Canary => self.canary.push(now_ms, error, latency_ms, max),
        }
        self.baseline.expire(now_ms, self.cfg.window_ms);
        self.canary.expire(now_ms, self.cfg.window_ms);
        let min = self.cfg.min_requests.max(1) as usize;
        if self.canary.len() >= min && !self.baseline.is_empty() {
            let (c, b) = (self.canary.summary(), self.baseline.summary());
            if let Some(r) = self.cfg.compare(&c, &b) {
                return Some(self.decide(VerdictKind::Rollback(r), c, b));
            }
        }
        let cfg = self.cfg;
        let plan = self.plan.as_mut()?;
        let started = *plan.check_started_ms.get_or_insert(now_ms);
        match arm {
            Arm::Baseline => plan.baseline.push(now_ms, error, latency_ms, max),
            Arm::Canary => plan.canary.push(now_ms, error, latency_ms, max),
        }
        if now_ms.saturating_sub(started) < cfg.window_ms || plan.canary.len() < min {
            return None;
        }
        // The check ends.
        let c = plan.canary.summary();
        let own = plan.baseline.summary();
        let b = if own.requests >= min {
            plan.recorded = Some(own);
            own
        } else {
            plan.recorded.unwrap_or(own)
        };
        plan.canary.clear();
        plan.baseline.clear();
        plan.check_started_ms = Some(now_ms);
        if let Some(r) = cfg.compare(&c, &b) {
            return Some(self.decide(VerdictKind::Rollback(r), c, b));
        }
        plan.passed += 1;
        if plan.passed < plan.promotion.checks {
            return None;
        }
        plan.passed = 0;
        let kind = if plan.step + 1 < plan.promotion.steps.len() {
            plan.step += 1;
            VerdictKind::Step {
                step: plan.step,
                percent: plan.promotion.steps[plan.step],
            }
        } else {
            VerdictKind::Promote
        };
        Some(self.decide(kind, c, b))
    }

    fn decide(&mut self, kind: VerdictKind, canary: Summary, baseline: Summary) -> Verdict {
        match kind {
            VerdictKind::Rollback(r) => self.phase = Phase::RolledBack(r),
            VerdictKind::Promote => self.phase = Phase::Promoted,
            VerdictKind::Step { .. } => {}
        }
        Verdict {
            kind,
            canary,
            baseline,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The judge's settings in the tests of this module and of `canary_switch`: a 10 s window,
    /// 20 requests, 5 points of errors, 1.5x the p99 and 10 ms over it.
    pub(crate) fn cfg() -> CanaryConfig {
        CanaryConfig {
            window_ms: 10_000,
            min_requests: 20,
            max_error_rate_increase: 0.05,
            max_p99_ratio: 1.5,
            min_p99_gap_ms: 10.0,
            max_samples: 1_000,
        }
    }

    proptest! {
        #[test]
        fn the_p99_is_the_nearest_rank_of_the_responses_kept(
            events in prop::collection::vec((0u64..30, 0u16..500, 0u8..4), 1..600),
            max in 1usize..200,
        ) {
            let mut r = Responses::new();
            let mut now = 0;
            for (step, tenths, kind) in events {
                now += step;
                let latency = f64::from(tenths) / 10.0;
                match kind {
                    0 => r.expire(now, 200),
                    1 if now % 97 == 0 => r.clear(),
                    _ => r.push(now, tenths % 7 == 0, latency, max),
                }
                let mut kept: Vec<f64> = r.samples.iter().map(|s| s.2).collect();
                kept.sort_by(f64::total_cmp);
                let want = if kept.is_empty() {
                    0.0
                } else {
                    let rank = ((0.99 * kept.len() as f64).ceil() as usize).clamp(1, kept.len());
                    kept[rank - 1]
                };
                prop_assert_eq!(r.p99(), want);
                prop_assert_eq!(r.latencies.values().sum::<usize>(), r.len());
            }
        }
    }

    proptest! {
        #[test]
        fn a_canary_like_the_baseline_is_never_rolled_back(events in prop::collection::vec((any::<bool>(), 0u8..20, 1u64..50), 1..400)) {
            // Both arms see exactly the same responses.
            let mut judge = CanaryJudge::new(cfg());
            let mut now = 0;
            for (error, latency, gap) in events {
                now += gap;
                prop_assert_eq!(judge.observe(Arm::Baseline, error, f64::from(latency), now), None);
                prop_assert_eq!(judge.observe(Arm::Canary, error, f64::from(latency), now), None);
            }
        }

        #[test]
        fn no_verdict_before_min_requests(errors in 0u32..19) {
            let mut judge = CanaryJudge::new(cfg());
            judge.observe(Arm::Baseline, false, 1.0, 0);
            for i in 0..errors {
                prop_assert_eq!(judge.observe(Arm::Canary, true, 1.0, u64::from(i)), None);
            }
        }
    }

    #[test]
    fn injected_errors_roll_back_once() {
        let mut judge = CanaryJudge::new(cfg());
        let mut verdicts = Vec::new();
        for t in 0..100u64 {
            judge.observe(Arm::Baseline, false, 1.0, t);
            if let Some(v) = judge.observe(Arm::Canary, t % 5 == 0, 1.0, t) {
                verdicts.push((t, v));
            }
        }
        assert_eq!(verdicts.len(), 1);
        let (t, v) = verdicts[0];
        assert_eq!(t, 19, "decided at the 20th canary response");
        assert_eq!(v.kind.as_str(), "rollback");
        assert_eq!(v.kind.reason(), "error_rate");
        assert_eq!(v.canary.requests, 20);
        assert!((v.canary.error_rate - 0.2).abs() < 1e-9, "{v:?}");
        assert!(judge.rolled_back().is_some());
    }

    #[test]
    fn a_slow_canary_rolls_back_on_p99() {
        let mut judge = CanaryJudge::new(cfg());
        let mut verdict = None;
        for t in 0..40u64 {
            judge.observe(Arm::Baseline, false, 5.0, t);
            verdict = verdict.or(judge.observe(Arm::Canary, false, 40.0, t));
        }
        assert!(
            matches!(
                verdict.map(|v| v.kind),
                Some(VerdictKind::Rollback(Rollback::Latency { .. }))
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn old_responses_leave_the_window() {
        let mut judge = CanaryJudge::new(cfg());
        // Early errors, then a long quiet time, then healthy traffic: no rollback.
        for t in 0..10u64 {
            judge.observe(Arm::Canary, true, 1.0, t);
        }
        for t in 0..40u64 {
            let now = 20_000 + t;
            assert_eq!(judge.observe(Arm::Baseline, false, 1.0, now), None);
            assert_eq!(judge.observe(Arm::Canary, false, 1.0, now), None);
        }
    }
    fn promoting(steps: &[f64], checks: u32) -> CanaryJudge {
        CanaryJudge::with_promotion(
            cfg(),
            Promotion {
                steps: steps.to_vec(),
                checks,
            },
        )
    }

    /// Both arms answer (the baseline without errors), one response each every `gap` ms from
    /// `from`, until the first verdict (on either arm's response) or `until`.
    fn drive(
        judge: &mut CanaryJudge,
        from: u64,
        until: u64,
        gap: u64,
        canary_error: impl Fn(u64) -> bool,
    ) -> Vec<(u64, Verdict)> {
        let mut now = from;
        while now < until {
            let verdict = judge
                .observe(Arm::Baseline, false, 1.0, now)
                .or_else(|| judge.observe(Arm::Canary, canary_error(now), 1.0, now));
            if let Some(v) = verdict {
                return vec![(now, v)];
            }
            now += gap;
        }
        Vec::new()
    }

    proptest! {
        #[test]
        fn a_canary_like_the_baseline_steps_up_in_order_and_then_is_promoted(
            events in prop::collection::vec((any::<bool>(), 1u64..200), 1..600),
            checks in 1u32..3,
        ) {
            // One latency for all: a check may end on a baseline response, one more than the
            // canary's, and a p99 over sets one apart is covered by the sliding-window test.
            let steps = [5.0, 25.0, 50.0, 100.0];
            let mut judge = promoting(&steps, checks);
            let mut now = 0;
            let mut seen = Vec::new();
            for (error, gap) in events {
                now += gap;
                for arm in [Arm::Baseline, Arm::Canary] {
                    if let Some(v) = judge.observe(arm, error, 5.0, now) {
                        seen.push(v.kind);
                    }
                }
            }
            let expected = [
                VerdictKind::Step { step: 1, percent: 25.0 },
                VerdictKind::Step { step: 2, percent: 50.0 },
                VerdictKind::Step { step: 3, percent: 100.0 },
                VerdictKind::Promote,
            ];
            prop_assert!(seen.len() <= expected.len());
            prop_assert_eq!(&seen[..], &expected[..seen.len()]);
            prop_assert_eq!(judge.phase() == Phase::Promoted, seen.len() == expected.len());
        }

        #[test]
        fn each_step_lasts_its_checks_in_time_and_in_canary_responses(
            gaps in prop::collection::vec(1u64..3_000, 50..800),
            checks in 1u32..4,
        ) {
            // Only the canary's responses count towards a check: baseline responses are sent
            // too, alike, but a step needs `checks` x `min_requests` canary responses and
            // `checks` x `window_ms`.
            let c = cfg();
            let mut judge = promoting(&[10.0, 50.0], checks);
            let (mut now, mut since_ms, mut since_n) = (0u64, None::<u64>, 0u64);
            for gap in gaps {
                now += gap;
                judge.observe(Arm::Baseline, false, 1.0, now);
                let start = *since_ms.get_or_insert(now);
                since_n += 1;
                if let Some(v) = judge.observe(Arm::Canary, false, 1.0, now) {
                    prop_assert!(!matches!(v.kind, VerdictKind::Rollback(_)));
                    prop_assert!(now - start >= u64::from(checks) * c.window_ms);
                    prop_assert!(since_n >= u64::from(checks * c.min_requests));
                    since_ms = Some(now);
                    since_n = 0;
                }
            }
        }

        #[test]
        fn a_worse_candidate_is_never_judged_better(
            requests in 1usize..500,
            c_rate in 0.0f64..1.0, b_rate in 0.0f64..1.0, more in 0.0f64..1.0,
            c_p99 in 0.0f64..500.0, b_p99 in 0.0f64..500.0, slower in 0.0f64..500.0,
        ) {
            let c = cfg();
            let base = Summary { requests, error_rate: b_rate, p99_ms: b_p99 };
            let cand = Summary { requests, error_rate: c_rate, p99_ms: c_p99 };
            let worse = Summary { requests, error_rate: (c_rate + more).min(1.0), p99_ms: c_p99 + slower };
            if c.compare(&cand, &base).is_some() {
                prop_assert!(c.compare(&worse, &base).is_some());
            }
            // The same responses as the baseline always pass.
            prop_assert_eq!(c.compare(&base, &base), None);
        }
    }

    #[test]
    fn errors_at_the_second_step_roll_back_for_good() {
        let mut judge = promoting(&[10.0, 50.0, 100.0], 1);
        let first = drive(&mut judge, 0, 100_000, 100, |_| false);
        // A response of each arm every 100 ms: the first check ends at 10 s (at a baseline
        // response), with 100 canary responses in it.
        assert_eq!(first.len(), 1, "{first:?}");
        let (at, v) = first[0];
        assert_eq!(
            v.kind,
            VerdictKind::Step {
                step: 1,
                percent: 50.0
            }
        );
        assert_eq!(at, 10_000);
        assert_eq!(judge.step(), Some((1, 50.0)));
        // Errors from here: rolled back, and nothing more is decided.
        let second = drive(&mut judge, at + 100, 200_000, 100, |t| t % 300 == 0);
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(second[0].1.kind.as_str(), "rollback");
        assert_eq!(judge.step(), Some((1, 50.0)));
        assert!(judge.rolled_back().is_some());
        assert_eq!(judge.observe(Arm::Canary, false, 1.0, 300_000), None);
    }

    #[test]
    fn a_step_at_100_percent_is_judged_against_the_recorded_baseline() {
        // Healthy at 100%: promoted though the baseline has had no response in that check.
        let mut judge = promoting(&[50.0, 100.0], 1);
        let steps = drive(&mut judge, 0, 100_000, 100, |_| false);
        assert_eq!(steps.len(), 1);
        let mut now = steps[0].0;
        let mut promoted = None;
        while promoted.is_none() && now < 100_000 {
            now += 100;
            promoted = judge.observe(Arm::Canary, false, 1.0, now);
        }
        let v = promoted.expect("promoted");
        assert_eq!(v.kind, VerdictKind::Promote);
        assert!(v.baseline.requests >= 20, "the recorded baseline: {v:?}");
        assert_eq!(judge.phase(), Phase::Promoted);

        // Failing at 100%: the recorded baseline rolls it back at the check's end.
        let mut judge = promoting(&[50.0, 100.0], 1);
        let steps = drive(&mut judge, 0, 100_000, 100, |_| false);
        let mut now = steps[0].0;
        let mut verdict = None;
        while verdict.is_none() && now < 100_000 {
            now += 100;
            verdict = judge.observe(Arm::Canary, now % 500 == 0, 1.0, now);
        }
        let v = verdict.expect("a verdict");
        assert_eq!(v.kind.as_str(), "rollback");
        assert!(judge.rolled_back().is_some());
    }

    #[test]
    fn low_traffic_lengthens_a_check_instead_of_passing_it() {
        let mut judge = promoting(&[10.0, 50.0], 1);
        // One canary response a second: the 10 s window passes long before the 20th.
        let mut verdict = None;
        let mut t = 0;
        while verdict.is_none() {
            judge.observe(Arm::Baseline, false, 1.0, t);
            verdict = judge.observe(Arm::Canary, false, 1.0, t).map(|v| (t, v));
            t += 1_000;
        }
        let (at, v) = verdict.expect("a verdict");
        assert_eq!(at, 19_000, "at the 20th canary response");
        assert_eq!(v.canary.requests, 20);
    }

    #[test]
    fn without_steps_promote_after_promotes_at_the_one_share() {
        let mut judge = promoting(&[], 2);
        assert_eq!(judge.step(), Some((0, 0.0)));
        let seen = drive(&mut judge, 0, 100_000, 100, |_| false);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.kind, VerdictKind::Promote);
        assert_eq!(seen[0].0, 20_000, "two checks of 10 s");
    }
}
