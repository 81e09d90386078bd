//! The check after a blue/green switch: the side that has just taken the traffic is judged
//! against the other side's responses recorded before the switch, by the canary's rules
//! ([`CanaryConfig::compare`]), as a pure state machine (the caller passes the time in
//! milliseconds, never decreasing).
//!
//! Every response of the new side since the switch counts. Once there are `min_requests` of
//! them, each further response is judged: a regression switches back at once
//! ([`SwitchVerdict::Back`]); when the check is `window_ms` old with no regression, the switch
//! is confirmed ([`SwitchVerdict::Confirmed`]). So a bad side is left as soon as there is
//! evidence, and a good one is confirmed only after a full window. A baseline with no
//! responses (the old side had no traffic in its last window) is a perfect one: any error
//! rate above `max_error_rate_increase` switches back, and there is no latency rule. The
//! verdict is given once; later observations are ignored. At most `max_samples` responses are
//! kept (the oldest go first).

use crate::canary::{CanaryConfig, Responses, Rollback, Summary};

/// What the check decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SwitchVerdict {
    /// The new side does as well as the old: it stays.
    Confirmed,
    /// The new side does worse: switch back.
    Back(Rollback),
}

impl SwitchVerdict {
    /// `switch_confirmed` or `switch_back` (a metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            SwitchVerdict::Confirmed => "switch_confirmed",
            SwitchVerdict::Back(_) => "switch_back",
        }
    }

    /// `healthy`, or `error_rate` / `latency` for a switch back (a metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            SwitchVerdict::Confirmed => "healthy",
            SwitchVerdict::Back(r) => r.as_str(),
        }
    }
}

/// A verdict with the numbers it was taken on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwitchJudgement {
    /// What it decided.
    pub verdict: SwitchVerdict,
    /// The new side's responses since the switch.
    pub new: Summary,
    /// The old side's recorded before it.
    pub baseline: Summary,
}

/// Judges the side a switch moved the traffic to (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SwitchJudge {
    cfg: CanaryConfig,
    baseline: Summary,
    started_ms: u64,
    new: Responses,
    done: Option<SwitchJudgement>,
}

impl SwitchJudge {
    /// A check that starts at `now_ms`, against `baseline`.
    pub fn new(cfg: CanaryConfig, baseline: Summary, now_ms: u64) -> Self {
        Self {
            cfg,
            baseline,
            started_ms: now_ms,
            new: Responses::new(),
            done: None,
        }
    }

    /// The baseline it compares with.
    pub fn baseline(&self) -> Summary {
        self.baseline
    }

    /// The new side's responses so far.
    pub fn new_side(&self) -> Summary {
        self.new.summary()
    }

    /// The verdict, once given.
    pub fn verdict(&self) -> Option<SwitchJudgement> {
        self.done
    }

    /// Records a response of the new side; returns the verdict it leads to (once).
    pub fn observe(
        &mut self,
        error: bool,
        latency_ms: f64,
        now_ms: u64,
    ) -> Option<SwitchJudgement> {
        if self.done.is_some() {
            return None;
        }
        self.new
            .push(now_ms, error, latency_ms, self.cfg.max_samples);
        if self.new.len() < self.cfg.min_requests.max(1) as usize {
            return None;
        }
        let new = self.new.summary();
        let verdict = match self.cfg.compare(&new, &self.baseline) {
            Some(r) => SwitchVerdict::Back(r),
            None if now_ms.saturating_sub(self.started_ms) >= self.cfg.window_ms => {
                SwitchVerdict::Confirmed
            }
            None => return None,
        };
        self.done = Some(SwitchJudgement {
            verdict,
            new,
            baseline: self.baseline,
        });
        self.done
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canary::tests::cfg;
    use proptest::prelude::*;

    fn recorded(responses: &[(bool, f64)]) -> Summary {
        let mut r = Responses::new();
        for (i, &(error, latency)) in responses.iter().enumerate() {
            r.push(i as u64, error, latency, 1_000);
        }
        r.summary()
    }

    proptest! {
        #[test]
        fn a_side_without_errors_and_no_slower_than_the_baseline_is_confirmed_after_a_window(
            old in prop::collection::vec((any::<bool>(), 0u8..50), 0..300),
            new in prop::collection::vec((0.0f64..=1.0, 1u64..500), 1..300),
        ) {
            // Whatever the old side did, a new side with no errors whose latencies stay at or
            // below the old side's p99 is never switched back, and is confirmed at the first
            // response after `min_requests` once the window has passed.
            let old: Vec<(bool, f64)> = old.iter().map(|&(e, l)| (e, f64::from(l))).collect();
            let baseline = recorded(&old);
            let c = cfg();
            let mut judge = SwitchJudge::new(c, baseline, 0);
            let (mut now, mut verdicts) = (0u64, Vec::new());
            for (i, &(share, gap)) in new.iter().enumerate() {
                now += gap;
                if let Some(v) = judge.observe(false, share * baseline.p99_ms, now) {
                    prop_assert_eq!(v.verdict, SwitchVerdict::Confirmed);
                    prop_assert!(i + 1 >= c.min_requests as usize && now >= c.window_ms);
                    verdicts.push(v);
                }
            }
            prop_assert!(verdicts.len() <= 1);
            let due = new.len() >= c.min_requests as usize && now >= c.window_ms;
            prop_assert_eq!(verdicts.len() == 1, due);
        }

        #[test]
        fn no_verdict_before_min_requests_and_one_at_most(
            errors in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut judge = SwitchJudge::new(cfg(), recorded(&[(false, 1.0); 50]), 0);
            let mut count = 0;
            for (i, error) in errors.iter().enumerate() {
                let v = judge.observe(*error, 1.0, i as u64 * 1_000);
                if i < 19 {
                    prop_assert_eq!(v, None);
                }
                count += usize::from(v.is_some());
            }
            prop_assert!(count <= 1);
            prop_assert_eq!(count == 1, judge.verdict().is_some());
        }
    }

    #[test]
    fn a_failing_side_is_switched_back_at_its_min_requests() {
        let mut judge = SwitchJudge::new(cfg(), recorded(&[(false, 1.0); 100]), 0);
        let mut verdict = None;
        let mut n = 0;
        while verdict.is_none() {
            n += 1;
            verdict = judge.observe(true, 1.0, n);
        }
        assert_eq!(n, 20);
        let v = verdict.unwrap();
        assert_eq!(v.verdict.as_str(), "switch_back");
        assert_eq!(v.verdict.reason(), "error_rate");
        assert_eq!(v.baseline.requests, 100);
        assert_eq!(judge.observe(false, 1.0, 100_000), None, "once");
    }

    #[test]
    fn a_healthy_side_is_confirmed_after_a_full_window() {
        let mut judge = SwitchJudge::new(cfg(), recorded(&[(false, 5.0); 100]), 1_000);
        let mut at = None;
        for t in (1_000..30_000).step_by(100) {
            if let Some(v) = judge.observe(false, 5.0, t) {
                assert_eq!(v.verdict, SwitchVerdict::Confirmed);
                at = Some(t);
                break;
            }
        }
        assert_eq!(at, Some(11_000));
    }

    #[test]
    fn a_slow_side_is_switched_back_on_p99() {
        let mut judge = SwitchJudge::new(cfg(), recorded(&[(false, 5.0); 100]), 0);
        let v = (0..40).find_map(|t| judge.observe(false, 60.0, t)).unwrap();
        assert_eq!(v.verdict.reason(), "latency");
    }

    #[test]
    fn without_a_recorded_baseline_errors_still_switch_back() {
        let mut judge = SwitchJudge::new(cfg(), Summary::default(), 0);
        let v = (0..40u64)
            .find_map(|t| judge.observe(t % 4 == 0, 500.0, t))
            .unwrap();
        assert_eq!(v.verdict.reason(), "error_rate");
        // ...but latency alone does not.
        let mut judge = SwitchJudge::new(cfg(), Summary::default(), 0);
        assert_eq!(
            (0..100u64).find_map(|t| judge.observe(false, 500.0, t)),
            None
        );
    }
}
