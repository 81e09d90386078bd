//! A circuit breaker as a pure state machine: the caller passes the time in milliseconds
//! (monotonic or epoch, its choice, but never decreasing for one breaker).
//!
//! ```text
//!            failure_threshold consecutive failures
//!   Closed ───────────────────────────────────────▶ Open (for open_for_ms)
//!     ▲                                               │ the period ends: the next acquire
//!     │ the probe succeeds                            ▼ is the one probe
//!     └──────────────────────────────────────────── HalfOpen
//!                  the probe fails: Open again, for twice the last period (up to max_open_ms)
//! ```
//!
//! Rules:
//! - **Closed**: every [`Breaker::acquire`] is [`Permit::Allowed`]. A success resets the count of
//!   consecutive failures; `failure_threshold` consecutive failures open the breaker.
//! - **Open**: every acquire is [`Permit::Rejected`] with the exact time left. The first acquire
//!   at or after the end of the open period moves to half-open and is the [`Permit::Probe`].
//! - **HalfOpen**: exactly one probe is in flight; other acquires are rejected. The next report
//!   is the probe's result: a success closes the breaker (and resets the open period to
//!   `open_for_ms`), a failure opens it again for twice the previous period, capped at
//!   `max_open_ms`. A probe that reports nothing within the current open period is presumed
//!   lost (its task died or was cancelled) and the next acquire after that is a new probe, so a
//!   lost report can never wedge the breaker.
//! - Reports while **Open** come from calls allowed before the breaker opened; they change
//!   nothing (a late failure does not extend the period, a late success does not close it).
//!   Reports cannot be told apart from the probe's in half-open: the breaker takes the first
//!   one as the probe's result, which is right as long as the open period is longer than a
//!   call's timeout.
//! - Arithmetic is saturating: no input panics or overflows. A `now` smaller than an earlier
//!   one is treated as no time having passed.

/// How a [`Breaker`] trips and recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures (in the closed state) that open the breaker; 0 is treated as 1.
    pub failure_threshold: u32,
    /// The first open period, in milliseconds.
    pub open_for_ms: u64,
    /// The open period doubles on each failed probe, up to this many milliseconds (a value
    /// below `open_for_ms` caps every period at `max_open_ms`).
    pub max_open_ms: u64,
}

impl Default for BreakerConfig {
    /// 5 consecutive failures, open for 1 s, doubling up to 60 s.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for_ms: 1_000,
            max_open_ms: 60_000,
        }
    }
}

/// The answer of [`Breaker::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Closed: go ahead and report the result.
    Allowed,
    /// Half-open: this call is the one probe; report its result.
    Probe,
    /// Open (or a probe is in flight): do not call; ask again in `retry_in_ms` (at least 1).
    Rejected {
        /// Milliseconds until an acquire can be allowed again (when nothing else is reported
        /// in between).
        retry_in_ms: u64,
    },
}

/// The state of a [`Breaker`], for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// One probe decides whether to close or open again.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open` (metric labels), or as a gauge value 0, 1, 2 via
    /// [`BreakerState::as_gauge`].
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until_ms: u64, period_ms: u64 },
    HalfOpen { probe_at_ms: u64, period_ms: u64 },
}

/// A circuit breaker (see the [module docs](self) for the rules).
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    inner: Inner,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            inner: Inner::Closed { failures: 0 },
        }
    }

    /// The configuration.
    pub fn config(&self) -> BreakerConfig {
        self.cfg
    }

    /// The current state. An open breaker whose period has ended still says `Open` until the
    /// next [`acquire`](Self::acquire) turns it half-open.
    pub fn state(&self) -> BreakerState {
        match self.inner {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures counted in the closed state (0 in the other states).
    pub fn consecutive_failures(&self) -> u32 {
        match self.inner {
            Inner::Closed { failures } => failures,
            _ => 0,
        }
    }

    fn first_period(&self) -> u64 {
        self.cfg.open_for_ms.min(self.cfg.max_open_ms)
    }

    /// Asks whether a call may go ahead at `now_ms`.
    pub fn acquire(&mut self, now_ms: u64) -> Permit {
        match self.inner {
            Inner::Closed { .. } => Permit::Allowed,
            Inner::Open {
                until_ms,
                period_ms,
            } => {
                if now_ms >= until_ms {
                    self.inner = Inner::HalfOpen {
                        probe_at_ms: now_ms,
                        period_ms,
                    };
                    Permit::Probe
                } else {
                    Permit::Rejected {
                        retry_in_ms: until_ms - now_ms,
                    }
                }
            }
            Inner::HalfOpen {
                probe_at_ms,
                period_ms,
            } => {
                let lost_at = probe_at_ms.saturating_add(period_ms);
                if now_ms >= lost_at {
                    // The probe never reported: presume it lost and let another one in.
                    self.inner = Inner::HalfOpen {
                        probe_at_ms: now_ms,
                        period_ms,
                    };
                    Permit::Probe
                } else {
                    Permit::Rejected {
                        retry_in_ms: lost_at.saturating_sub(now_ms.max(probe_at_ms)).max(1),
                    }
                }
            }
        }
    }

    /// Reports a successful call.
    pub fn record_success(&mut self, _now_ms: u64) {
        match self.inner {
            Inner::Closed { .. } | Inner::HalfOpen { .. } => {
                self.inner = Inner::Closed { failures: 0 };
            }
            Inner::Open { .. } => {}
        }
    }

    /// Reports a failed call (one that should count against the receiver: a timeout, a refused
    /// connection, a 5xx; not a permanent rejection of one message).
    pub fn record_failure(&mut self, now_ms: u64) {
        match self.inner {
            Inner::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.cfg.failure_threshold.max(1) {
                    let period_ms = self.first_period();
                    self.inner = Inner::Open {
                        until_ms: now_ms.saturating_add(period_ms),
                        period_ms,
                    };
                } else {
                    self.inner = Inner::Closed { failures };
                }
            }
            Inner::HalfOpen {
                probe_at_ms,
                period_ms,
            } => {
                let period_ms = period_ms.saturating_mul(2).min(self.cfg.max_open_ms);
                self.inner = Inner::Open {
                    until_ms: now_ms.max(probe_at_ms).saturating_add(period_ms),
                    period_ms,
                };
            }
            Inner::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(threshold: u32, open: u64, max: u64) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            open_for_ms: open,
            max_open_ms: max,
        }
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let mut b = Breaker::new(cfg(3, 100, 1_000));
        assert_eq!(b.acquire(0), Permit::Allowed);
        b.record_failure(0);
        b.record_failure(1);
        assert_eq!(b.consecutive_failures(), 2);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure(2);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.acquire(2), Permit::Rejected { retry_in_ms: 100 });
        assert_eq!(b.acquire(101), Permit::Rejected { retry_in_ms: 1 });
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut b = Breaker::new(cfg(3, 100, 1_000));
        b.record_failure(0);
        b.record_failure(0);
        b.record_success(0);
        assert_eq!(b.consecutive_failures(), 0);
        b.record_failure(0);
        b.record_failure(0);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure(0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn half_open_lets_exactly_one_probe_in() {
        let mut b = Breaker::new(cfg(1, 100, 1_000));
        b.record_failure(0);
        assert_eq!(b.acquire(100), Permit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.acquire(100), Permit::Rejected { retry_in_ms: 100 });
        assert_eq!(b.acquire(150), Permit::Rejected { retry_in_ms: 50 });
        b.record_success(160);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.acquire(160), Permit::Allowed);
        assert_eq!(b.acquire(160), Permit::Allowed);
    }

    #[test]
    fn failed_probes_double_the_period_up_to_the_max() {
        let mut b = Breaker::new(cfg(1, 100, 350));
        b.record_failure(0);
        let mut now = 0;
        for expected in [100, 200, 350, 350] {
            assert_eq!(
                b.acquire(now),
                Permit::Rejected {
                    retry_in_ms: expected
                }
            );
            now += expected;
            assert_eq!(b.acquire(now), Permit::Probe);
            b.record_failure(now);
        }
        // A successful probe resets the period to the first one.
        now += 350;
        assert_eq!(b.acquire(now), Permit::Probe);
        b.record_success(now);
        b.record_failure(now);
        assert_eq!(b.acquire(now), Permit::Rejected { retry_in_ms: 100 });
    }

    #[test]
    fn a_lost_probe_is_replaced_after_one_period() {
        let mut b = Breaker::new(cfg(1, 100, 1_000));
        b.record_failure(0);
        assert_eq!(b.acquire(100), Permit::Probe);
        assert_eq!(b.acquire(199), Permit::Rejected { retry_in_ms: 1 });
        assert_eq!(b.acquire(200), Permit::Probe);
        assert_eq!(b.acquire(200), Permit::Rejected { retry_in_ms: 100 });
    }

    #[test]
    fn reports_while_open_change_nothing() {
        let mut b = Breaker::new(cfg(1, 100, 1_000));
        b.record_failure(0);
        b.record_failure(50);
        b.record_success(60);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.acquire(60), Permit::Rejected { retry_in_ms: 40 });
    }

    #[test]
    fn edge_configs_do_not_panic() {
        let mut b = Breaker::new(cfg(0, 0, 0));
        b.record_failure(5);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.acquire(5), Permit::Probe);
        assert_eq!(
            b.acquire(5),
            Permit::Probe,
            "a zero period presumes the probe lost at once"
        );
        b.record_failure(5);
        let mut b = Breaker::new(cfg(1, u64::MAX, u64::MAX));
        b.record_failure(u64::MAX);
        assert_eq!(b.acquire(u64::MAX), Permit::Probe);
        b.record_failure(u64::MAX);
        assert_eq!(b.acquire(u64::MAX - 1), Permit::Rejected { retry_in_ms: 1 });
        let mut inverted = Breaker::new(cfg(1, 500, 200));
        inverted.record_failure(0);
        assert_eq!(inverted.acquire(0), Permit::Rejected { retry_in_ms: 200 });
    }

    #[test]
    fn state_labels() {
        assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
        assert_eq!(BreakerState::Open.as_gauge(), 1.0);
        assert_eq!(BreakerConfig::default().failure_threshold, 5);
    }

    /// A deliberately naive reference: flat fields, the open period recomputed from the number
    /// of failed probes in u128 rather than doubled in place.
    #[derive(Debug, Default)]
    struct Model {
        failures: u64,
        open_since: Option<u128>,
        failed_probes: u32,
        probe_since: Option<u128>,
    }

    impl Model {
        fn period(&self, c: &BreakerConfig) -> u128 {
            let p = u128::from(c.open_for_ms) << self.failed_probes.min(64);
            p.min(u128::from(c.max_open_ms))
        }

        fn acquire(&mut self, c: &BreakerConfig, now: u64) -> Permit {
            let now = u128::from(now);
            let period = self.period(c);
            if let Some(since) = self.probe_since {
                let lost = since + period;
                if now >= lost {
                    self.probe_since = Some(now);
                    return Permit::Probe;
                }
                return Permit::Rejected {
                    retry_in_ms: (lost - now.max(since)).max(1) as u64,
                };
            }
            match self.open_since {
                None => Permit::Allowed,
                Some(since) => {
                    let until = (since + period).min(u128::from(u64::MAX));
                    if now >= until {
                        self.probe_since = Some(now);
                        Permit::Probe
                    } else {
                        Permit::Rejected {
                            retry_in_ms: (until - now) as u64,
                        }
                    }
                }
            }
        }

        fn success(&mut self) {
            if self.probe_since.is_some() || self.open_since.is_none() {
                *self = Model::default();
            }
        }

        fn failure(&mut self, c: &BreakerConfig, now: u64) {
            let now = u128::from(now);
            if let Some(since) = self.probe_since.take() {
                self.failed_probes += 1;
                self.open_since = Some(now.max(since));
            } else if self.open_since.is_none() {
                self.failures += 1;
                if self.failures >= u64::from(c.failure_threshold.max(1)) {
                    self.open_since = Some(now);
                    self.failures = 0;
                }
            }
        }

        fn state(&self) -> BreakerState {
            match (self.probe_since, self.open_since) {
                (Some(_), _) => BreakerState::HalfOpen,
                (None, Some(_)) => BreakerState::Open,
                (None, None) => BreakerState::Closed,
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        Acquire,
        Success,
        Failure,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..400).prop_map(Op::Advance),
            3 => Just(Op::Acquire),
            1 => Just(Op::Success),
            3 => Just(Op::Failure),
        ]
    }

    proptest! {
        #[test]
        fn matches_the_naive_model(
            threshold in 0u32..5,
            open in 0u64..300,
            max in 0u64..3_000,
            start in 0u64..1_000,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let c = cfg(threshold, open, max);
            let mut b = Breaker::new(c);
            let mut m = Model::default();
            let mut now = start;
            for op in ops {
                match op {
                    Op::Advance(d) => now += d,
                    Op::Acquire => prop_assert_eq!(b.acquire(now), m.acquire(&c, now)),
                    Op::Success => { b.record_success(now); m.success(); }
                    Op::Failure => { b.record_failure(now); m.failure(&c, now); }
                }
                prop_assert_eq!(b.state(), m.state());
            }
        }

        #[test]
        fn a_rejection_is_exact_and_at_most_one_probe_is_out(
            threshold in 1u32..4,
            open in 1u64..300,
            max in 1u64..3_000,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut b = Breaker::new(cfg(threshold, open, max));
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Advance(d) => now += d,
                    Op::Acquire => match b.acquire(now) {
                        Permit::Rejected { retry_in_ms } => {
                            prop_assert!(retry_in_ms >= 1);
                            prop_assert!(retry_in_ms <= max.max(1));
                            // One millisecond early it is still rejected; on time it is a probe.
                            let mut early = b.clone();
                            let is_rejected = matches!(early.acquire(now + retry_in_ms - 1), Permit::Rejected { .. });
                            prop_assert!(is_rejected);
                            let mut on_time = b.clone();
                            prop_assert_eq!(on_time.acquire(now + retry_in_ms), Permit::Probe);
                        }
                        Permit::Probe => {
                            // The probe is the only one until it reports or is presumed lost.
                            let is_rejected = matches!(b.clone().acquire(now), Permit::Rejected { .. });
                            prop_assert!(is_rejected || max.min(open) == 0);
                        }
                        Permit::Allowed => prop_assert_eq!(b.state(), BreakerState::Closed),
                    },
                    Op::Success => b.record_success(now),
                    Op::Failure => b.record_failure(now),
                }
            }
        }
    }
}
