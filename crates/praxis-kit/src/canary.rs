//! A canary judge: compares a canary's error rate and p99 latency with the baseline's over a
//! sliding window and decides a rollback, as a pure state machine (the caller passes the time
//! in milliseconds, never decreasing).
//!
//! Each response of either arm is observed. Once the canary has at least `min_requests`
//! responses in the window (and the baseline at least one), the judge rolls back when
//! - the canary's error rate exceeds the baseline's by more than `max_error_rate_increase`
//!   (absolute: 0.05 is five points), or
//! - `max_p99_ratio` is above zero and the canary's p99 exceeds `max_p99_ratio` times the
//!   baseline's (and `min_p99_gap_ms` more than it, so 2 ms against 1 ms is not a regression).
//!
//! A rollback is final: the judge says so once and then ignores observations. Each arm keeps
//! at most `max_samples` responses (the oldest go first), which bounds memory and work.

use std::collections::VecDeque;

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

#[derive(Debug, Clone, Default)]
struct Window {
    /// `(time, error, latency_ms)`, oldest first.
    samples: VecDeque<(u64, bool, f64)>,
    errors: usize,
}

impl Window {
    fn push(&mut self, now_ms: u64, error: bool, latency_ms: f64, max: usize) {
        self.samples.push_back((now_ms, error, latency_ms));
        self.errors += usize::from(error);
        while self.samples.len() > max.max(1) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, error, _)) = self.samples.pop_front() {
            self.errors -= usize::from(error);
        }
    }

    fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, _, _)| now_ms.saturating_sub(t) >= window_ms)
        {
            self.pop();
        }
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
        let mut l: Vec<f64> = self.samples.iter().map(|s| s.2).collect();
        if l.is_empty() {
            return 0.0;
        }
        l.sort_by(f64::total_cmp);
        let rank = ((0.99 * l.len() as f64).ceil() as usize).clamp(1, l.len());
        l[rank - 1]
    }
}

/// Judges one canary (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CanaryJudge {
    cfg: CanaryConfig,
    baseline: Window,
    canary: Window,
    rolled_back: Option<Rollback>,
}

impl CanaryJudge {
    /// A judge with empty windows.
    pub fn new(cfg: CanaryConfig) -> Self {
        Self {
            cfg,
            baseline: Window::default(),
            canary: Window::default(),
            rolled_back: None,
        }
    }

    /// The rollback decided, if any.
    pub fn rolled_back(&self) -> Option<Rollback> {
        self.rolled_back
    }

    /// Records a response of `arm`; returns the rollback it decides (once).
    pub fn observe(
        &mut self,
        arm: Arm,
        error: bool,
        latency_ms: f64,
        now_ms: u64,
    ) -> Option<Rollback> {
        if self.rolled_back.is_some() {
            return None;
        }
        let max = self.cfg.max_samples;
        match arm {
            Arm::Baseline => self.baseline.push(now_ms, error, latency_ms, max),
            Arm::Canary => self.canary.push(now_ms, error, latency_ms, max),
        }
        self.baseline.expire(now_ms, self.cfg.window_ms);
        self.canary.expire(now_ms, self.cfg.window_ms);
        if self.canary.samples.len() < self.cfg.min_requests.max(1) as usize
            || self.baseline.samples.is_empty()
        {
            return None;
        }
        let (c, b) = (self.canary.error_rate(), self.baseline.error_rate());
        let verdict = if c - b > self.cfg.max_error_rate_increase {
            Some(Rollback::ErrorRate {
                canary: c,
                baseline: b,
            })
        } else if self.cfg.max_p99_ratio > 0.0 {
            let (cp, bp) = (self.canary.p99(), self.baseline.p99());
            (cp > self.cfg.max_p99_ratio * bp && cp - bp > self.cfg.min_p99_gap_ms).then_some(
                Rollback::Latency {
                    canary_p99_ms: cp,
                    baseline_p99_ms: bp,
                },
            )
        } else {
            None
        };
        self.rolled_back = verdict;
        verdict
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> CanaryConfig {
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
        assert_eq!(v.as_str(), "error_rate");
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
            matches!(verdict, Some(Rollback::Latency { .. })),
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
}
