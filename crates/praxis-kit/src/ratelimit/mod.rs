//! Rate-limit algorithms as pure state machines: token bucket, GCRA, fixed window, sliding-window
//! log and sliding-window counter.
//!
//! Nothing here reads a clock: the caller passes `now` in nanoseconds (monotonic or epoch, its
//! choice) together with a small per-key [`State`], and [`check`] returns a [`Decision`] and
//! updates the state. The same logic can therefore be kept per key in an in-process map or
//! mirrored in a Redis script.
//!
//! Common rules of every algorithm:
//! - A request of `hits` is all or nothing: a denied request consumes nothing. `hits == 0` is a
//!   peek: it is always allowed and consumes nothing.
//! - [`Decision::remaining`] is exact: it is the largest `hits` the same check would allow now.
//! - [`Decision::retry_after`] is exact: a denied request retried `retry_after` later (with
//!   nothing else in between) is allowed, and one nanosecond earlier it is still denied.
//! - [`Decision::reset_after`] is when the state is back to fresh: from then on
//!   [`State::is_idle`] is true and the state can be dropped (a fresh [`State::new`] decides the
//!   same), which is also the TTL a shared store should put on the key.
//! - `now` must not decrease per key. A smaller value never panics and never allows more than
//!   the last seen time would: token bucket, fixed window and sliding log treat it as the last
//!   seen time; GCRA and the sliding-window counter evaluate it as given, which is only stricter.
//! - Arithmetic is integer and saturating: no panic and no overflow for any input, no
//!   floating-point drift. Windows are aligned on multiples of the period since `now == 0`.

mod fixed_window;
mod gcra;
#[cfg(test)]
mod model;
mod sliding_log;
mod sliding_window;
mod token_bucket;

pub use fixed_window::FixedWindowState;
pub use gcra::GcraState;
pub use sliding_log::SlidingLogState;
pub use sliding_window::SlidingWindowState;
pub use token_bucket::TokenBucketState;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

/// A rate-limit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Token bucket: `burst` tokens, refilled at `limit` per `period`.
    TokenBucket,
    /// Generic cell rate algorithm: the token bucket's decisions from one stored time (TAT).
    Gcra,
    /// Fixed window: at most `limit` per aligned window of `period`.
    FixedWindow,
    /// Sliding-window log: at most `limit` within any `period` ending now (exact, costs memory).
    SlidingLog,
    /// Sliding-window counter: the previous window's count weighted by its overlap with the
    /// sliding window, plus the current window's count (Cloudflare's approximation).
    SlidingWindow,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
    ];

    /// The kebab-case name used in configuration: `token-bucket`, `gcra`, `fixed-window`,
    /// `sliding-log`, `sliding-window`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token-bucket",
            Algorithm::Gcra => "gcra",
            Algorithm::FixedWindow => "fixed-window",
            Algorithm::SlidingLog => "sliding-log",
            Algorithm::SlidingWindow => "sliding-window",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Algorithm::name`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown rate-limit algorithm {0:?}; expected one of token-bucket, gcra, fixed-window, \
     sliding-log, sliding-window"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses a kebab-case name, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// Why a [`Quota`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QuotaError {
    /// `limit` was 0.
    #[error("rate limit must be at least 1 per period")]
    ZeroLimit,
    /// `period` was zero.
    #[error("rate-limit period must be positive")]
    ZeroPeriod,
    /// `burst` was 0.
    #[error("rate-limit burst must be at least 1")]
    ZeroBurst,
}

/// A limit of `limit` hits per `period`, with a `burst` for token bucket and GCRA.
///
/// The window algorithms ignore `burst`. For token bucket and GCRA, `burst` is the bucket
/// capacity (the most hits allowed at one instant) and `limit / period` the refill rate; it
/// defaults to `limit`. Periods longer than `u64::MAX` nanoseconds (about 584 years) are
/// clamped to that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: Duration,
    burst: u64,
    /// `period` in nanoseconds, at least 1.
    period_ns: u64,
}

impl Quota {
    /// `limit` hits per `period`, burst `limit`. Both must be positive.
    pub fn new(limit: u64, period: Duration) -> Result<Self, QuotaError> {
        if limit == 0 {
            return Err(QuotaError::ZeroLimit);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        Ok(Self {
            limit,
            period,
            burst: limit,
            period_ns,
        })
    }

    /// The same quota with another burst (token bucket and GCRA only); it must be positive.
    pub fn with_burst(self, burst: u64) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        Ok(Self { burst, ..self })
    }

    /// Hits allowed per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period, as given.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Most hits allowed at one instant by token bucket and GCRA.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The period in nanoseconds (at least 1, at most `u64::MAX`).
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// The most hits `algorithm` can ever allow at one instant: `burst` for token bucket and
    /// GCRA, `limit` for the window algorithms. A larger request is never allowed.
    pub fn capacity(&self, algorithm: Algorithm) -> u64 {
        match algorithm {
            Algorithm::TokenBucket | Algorithm::Gcra => self.burst,
            _ => self.limit,
        }
    }
}

/// The answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed (and was counted).
    pub allowed: bool,
    /// The quota's `limit` (for `RateLimit` headers).
    pub limit: u64,
    /// The largest number of hits a check at the same time would allow, after this decision.
    pub remaining: u64,
    /// Time until the quota is fully available again and the state is fresh (the `RateLimit`
    /// header's `t`, and the TTL of the key in a shared store). Zero when already fresh.
    pub reset_after: Duration,
    /// When denied: the earliest delay after which the same request would be allowed if nothing
    /// else happened. `None` when allowed, and when the request can never be allowed (`hits`
    /// above [`Quota::capacity`]).
    pub retry_after: Option<Duration>,
}

impl Decision {
    fn new(quota: &Quota, allowed: bool, remaining: u64, reset_ns: u128) -> Self {
        Self {
            allowed,
            limit: quota.limit,
            remaining,
            reset_after: duration_from_nanos(reset_ns),
            retry_after: None,
        }
    }

    /// [`reset_after`](Self::reset_after) in whole seconds, rounded up (for headers).
    pub fn reset_after_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up (for `Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(ceil_secs)
    }
}

/// The per-key state of any algorithm.
///
/// Every variant but the sliding log is a few integers and `Copy`; the sliding log keeps one
/// entry per distinct instant of allowed hits within the window (at most `limit` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// See [`TokenBucketState`].
    TokenBucket(TokenBucketState),
    /// See [`GcraState`].
    Gcra(GcraState),
    /// See [`FixedWindowState`].
    FixedWindow(FixedWindowState),
    /// See [`SlidingLogState`].
    SlidingLog(SlidingLogState),
    /// See [`SlidingWindowState`].
    SlidingWindow(SlidingWindowState),
}

impl State {
    /// A fresh state: nothing counted yet, the whole quota available.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::TokenBucket => State::TokenBucket(TokenBucketState::default()),
            Algorithm::Gcra => State::Gcra(GcraState::default()),
            Algorithm::FixedWindow => State::FixedWindow(FixedWindowState::default()),
            Algorithm::SlidingLog => State::SlidingLog(SlidingLogState::default()),
            Algorithm::SlidingWindow => State::SlidingWindow(SlidingWindowState::default()),
        }
    }

    /// Which algorithm this state belongs to.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            State::TokenBucket(_) => Algorithm::TokenBucket,
            State::Gcra(_) => Algorithm::Gcra,
            State::FixedWindow(_) => Algorithm::FixedWindow,
            State::SlidingLog(_) => Algorithm::SlidingLog,
            State::SlidingWindow(_) => Algorithm::SlidingWindow,
        }
    }

    /// Checks `hits` at `now_ns` and updates the state; see [`check`].
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        match self {
            State::TokenBucket(s) => s.check(quota, now_ns, hits),
            State::Gcra(s) => s.check(quota, now_ns, hits),
            State::FixedWindow(s) => s.check(quota, now_ns, hits),
            State::SlidingLog(s) => s.check(quota, now_ns, hits),
            State::SlidingWindow(s) => s.check(quota, now_ns, hits),
        }
    }

    /// The time (ns, may exceed `u64::MAX`) from which the state is equivalent to a fresh one.
    fn idle_at(&self, quota: &Quota) -> u128 {
        match self {
            State::TokenBucket(s) => s.idle_at(quota),
            State::Gcra(s) => s.idle_at(quota),
            State::FixedWindow(s) => s.idle_at(quota),
            State::SlidingLog(s) => s.idle_at(quota),
            State::SlidingWindow(s) => s.idle_at(quota),
        }
    }

    /// True when, from `now_ns` on, the state decides exactly like [`State::new`]: a keyed map
    /// can drop it.
    pub fn is_idle(&self, quota: &Quota, now_ns: u64) -> bool {
        u128::from(now_ns) >= self.idle_at(quota)
    }

    /// Time from `now_ns` until [`is_idle`](Self::is_idle) becomes true (zero if it already
    /// is): the TTL to put on the key in a shared store.
    pub fn idle_after(&self, quota: &Quota, now_ns: u64) -> Duration {
        duration_from_nanos(self.idle_at(quota).saturating_sub(u128::from(now_ns)))
    }
}

/// Checks a request of `hits` at `now_ns` against `quota` and updates `state`.
///
/// `hits == 0` is a peek: allowed, consumes nothing, and reports the current `remaining`. A
/// denied request consumes nothing. `now_ns` is nanoseconds on a clock chosen by the caller; it
/// must not decrease per key (a smaller value is tolerated, see the module docs).
pub fn check(quota: &Quota, state: &mut State, now_ns: u64, hits: u64) -> Decision {
    state.check(quota, now_ns, hits)
}

/// A `Duration` of `ns` nanoseconds, saturating at `Duration::MAX`.
fn duration_from_nanos(ns: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let subsec = (ns % NANOS_PER_SEC) as u32; // < 10^9
    u64::try_from(ns / NANOS_PER_SEC).map_or(Duration::MAX, |secs| Duration::new(secs, subsec))
}

/// Whole seconds in `d`, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::model::History;
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn quota(limit: u64, period_ns: u64, burst: u64) -> Quota {
        Quota::new(limit, Duration::from_nanos(period_ns))
            .and_then(|q| q.with_burst(burst))
            .expect("valid quota")
    }

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
            assert_eq!(State::new(a).algorithm(), a);
        }
        assert_eq!(" GCRA ".parse::<Algorithm>(), Ok(Algorithm::Gcra));
        let err = "leaky".parse::<Algorithm>().expect_err("unknown name");
        assert!(err.to_string().contains("\"leaky\""));
    }

    #[test]
    fn quota_validation() {
        let s = Duration::from_secs(1);
        assert_eq!(Quota::new(0, s), Err(QuotaError::ZeroLimit));
        assert_eq!(Quota::new(1, Duration::ZERO), Err(QuotaError::ZeroPeriod));
        let q = Quota::new(10, s).expect("valid");
        assert_eq!((q.limit(), q.burst(), q.period_ns()), (10, 10, SEC));
        assert_eq!(q.with_burst(0), Err(QuotaError::ZeroBurst));
        assert_eq!(q.with_burst(3).map(|q| q.burst()), Ok(3));
        let huge = Quota::new(1, Duration::MAX).expect("valid");
        assert_eq!(huge.period_ns(), u64::MAX);
        assert_eq!(huge.period(), Duration::MAX);
    }

    #[test]
    fn decision_seconds_round_up() {
        let q = quota(1, SEC, 1);
        let mut d = Decision::new(&q, false, 0, u128::from(1_500 * MS));
        d.retry_after = Some(Duration::from_secs(2));
        assert_eq!(d.reset_after_secs(), 2);
        assert_eq!(d.retry_after_secs(), Some(2));
        assert_eq!(duration_from_nanos(u128::MAX), Duration::MAX);
    }

    /// A burst of 3N single hits at one instant on a fresh state: exactly the first N pass.
    #[test]
    fn burst_of_three_n_allows_exactly_n() {
        for n in [1, 7, 100] {
            let q = quota(n, SEC, n);
            for now in [0, 3 * SEC + 123, u64::MAX - 5, u64::MAX] {
                for a in Algorithm::ALL {
                    let mut s = State::new(a);
                    let results: Vec<bool> =
                        (0..3 * n).map(|_| s.check(&q, now, 1).allowed).collect();
                    assert!(
                        results[..n as usize].iter().all(|&x| x),
                        "{a} n={n} now={now}"
                    );
                    assert!(
                        !results[n as usize..].iter().any(|&x| x),
                        "{a} n={n} now={now}"
                    );
                }
            }
        }
    }

    /// The fixed-window boundary burst. With limit N per period P, N hits at `boundary - s/2`
    /// and N at `boundary + s/2` (a span `s` much shorter than P):
    /// - fixed window allows all 2N;
    /// - token bucket and GCRA (burst N) allow N + floor(N*s/P): N from the full bucket plus what
    ///   refills during `s` (their bound for any span `s`);
    /// - sliding log allows N (its bound for any span up to P);
    /// - the sliding-window counter allows N + floor(N*(s/2)/P): the previous window's N weigh
    ///   (P - s/2)/P (its bound for such a span is N + N*s/P).
    #[test]
    fn fixed_window_boundary_burst() {
        let n = 10;
        let period = SEC;
        let q = quota(n, period, n);
        let boundary = 5 * period;
        for span in [2 * MS, 100 * MS, 500 * MS] {
            let (before, after) = (boundary - span / 2, boundary + span / 2);
            for a in Algorithm::ALL {
                let mut s = State::new(a);
                let first = (0..n).filter(|_| s.check(&q, before, 1).allowed).count() as u64;
                let second = (0..n).filter(|_| s.check(&q, after, 1).allowed).count() as u64;
                assert_eq!(first, n, "{a}: the first N fit a fresh state");
                let expected = match a {
                    Algorithm::FixedWindow => 2 * n,
                    Algorithm::TokenBucket | Algorithm::Gcra => n + n * span / period,
                    Algorithm::SlidingLog => n,
                    Algorithm::SlidingWindow => n + n * (span / 2) / period,
                };
                assert_eq!(first + second, expected, "{a} span={span}");
                if a != Algorithm::FixedWindow {
                    assert!(first + second <= n + n * span / period, "{a} span={span}");
                }
            }
        }
        // With the 2 ms span only the fixed window exceeds N.
        let span = 2 * MS;
        for a in Algorithm::ALL {
            let mut s = State::new(a);
            let total = [boundary - span / 2, boundary + span / 2]
                .into_iter()
                .flat_map(|t| std::iter::repeat_n(t, n as usize))
                .filter(|&t| s.check(&q, t, 1).allowed)
                .count() as u64;
            if a == Algorithm::FixedWindow {
                assert_eq!(total, 2 * n);
            } else {
                assert_eq!(total, n, "{a}");
            }
        }
    }

    /// Checks every step of `steps` against the naive model and the exactness of `remaining`,
    /// `retry_after` and `reset_after`.
    fn run_against_model(
        algorithm: Algorithm,
        q: &Quota,
        start: u64,
        steps: &[(u64, u64)],
    ) -> Result<(), TestCaseError> {
        let mut state = State::new(algorithm);
        let mut history = History::default();
        let mut now = start;
        let capacity = q.capacity(algorithm);
        for (i, &(delta, hits)) in steps.iter().enumerate() {
            now = now.saturating_add(delta);
            let before = history.remaining(algorithm, q, now);
            let d = state.check(q, now, hits);
            prop_assert_eq!(
                d.allowed,
                hits <= before,
                "step {} now {} hits {}",
                i,
                now,
                hits
            );
            prop_assert_eq!(d.limit, q.limit());
            if d.allowed {
                history.record(now, hits);
                prop_assert_eq!(d.remaining, before - hits, "step {}", i);
                prop_assert_eq!(d.retry_after, None);
            } else {
                prop_assert_eq!(d.remaining, before, "step {}", i);
                match d.retry_after {
                    None => prop_assert!(hits > capacity, "step {}: no retry for {}", i, hits),
                    Some(r) => {
                        let r = nanos(r);
                        prop_assert!(r >= 1);
                        if let Some(at) = now.checked_add(r) {
                            let mut s = state.clone();
                            prop_assert!(s.check(q, at, hits).allowed, "step {}: retry", i);
                            let mut s = state.clone();
                            prop_assert!(!s.check(q, at - 1, hits).allowed, "step {}: early", i);
                        }
                    }
                }
            }
            // `remaining` is exactly the largest request that passes now.
            prop_assert!(state.clone().check(q, now, d.remaining).allowed);
            prop_assert!(!state.clone().check(q, now, d.remaining + 1).allowed);
            prop_assert_eq!(d.remaining, history.remaining(algorithm, q, now));
            // `reset_after` is when the state becomes fresh again.
            let reset = nanos(d.reset_after);
            prop_assert_eq!(d.reset_after, state.idle_after(q, now));
            if let Some(at) = now.checked_add(reset) {
                prop_assert!(state.is_idle(q, at));
                prop_assert_eq!(state.clone().check(q, at, 0).remaining, capacity);
                if reset > 0 {
                    prop_assert!(!state.is_idle(q, at - 1));
                    prop_assert!(state.clone().check(q, at - 1, 0).remaining < capacity);
                }
            }
        }
        Ok(())
    }

    /// Small quotas and time steps around the period and the emission interval, so windows
    /// roll, buckets refill partly and requests are often denied.
    fn scenario() -> impl Strategy<Value = (Quota, u64, Vec<(u64, u64)>)> {
        (
            1u64..=12,
            prop_oneof![1u64..=40, 1u64..=10 * SEC],
            1u64..=15,
        )
            .prop_flat_map(|(limit, period, burst)| {
                let q = quota(limit, period, burst);
                let interval = period / limit + 1;
                let delta = prop_oneof![
                    2 => Just(0u64),
                    3 => 0..=interval,
                    2 => 0..=2 * period,
                    1 => Just(period),
                    1 => Just(period - 1),
                ];
                let hits = prop_oneof![3 => Just(1u64), 2 => 0..=limit.max(burst) + 2];
                (
                    Just(q),
                    0..=3 * period,
                    prop::collection::vec((delta, hits), 1..60),
                )
            })
    }

    proptest! {
        #[test]
        fn token_bucket_matches_model((q, start, steps) in scenario()) {
            run_against_model(Algorithm::TokenBucket, &q, start, &steps)?;
        }

        #[test]
        fn gcra_matches_model((q, start, steps) in scenario()) {
            run_against_model(Algorithm::Gcra, &q, start, &steps)?;
        }

        #[test]
        fn fixed_window_matches_model((q, start, steps) in scenario()) {
            run_against_model(Algorithm::FixedWindow, &q, start, &steps)?;
        }

        #[test]
        fn sliding_log_matches_model((q, start, steps) in scenario()) {
            run_against_model(Algorithm::SlidingLog, &q, start, &steps)?;
        }

        #[test]
        fn sliding_window_matches_model((q, start, steps) in scenario()) {
            run_against_model(Algorithm::SlidingWindow, &q, start, &steps)?;
        }

        /// GCRA is the token bucket stored as one time: identical decisions.
        #[test]
        fn gcra_decides_like_token_bucket((q, start, steps) in scenario()) {
            let (mut tb, mut gcra) = (State::new(Algorithm::TokenBucket), State::new(Algorithm::Gcra));
            let mut now = start;
            for (delta, hits) in steps {
                now += delta;
                prop_assert_eq!(tb.check(&q, now, hits), gcra.check(&q, now, hits));
            }
        }

        /// Dropping a state whenever it is idle changes no decision.
        #[test]
        fn evicting_idle_states_changes_nothing((q, start, steps) in scenario()) {
            for a in Algorithm::ALL {
                let (mut kept, mut evicted) = (State::new(a), State::new(a));
                let mut now = start;
                for &(delta, hits) in &steps {
                    now += delta;
                    if evicted.is_idle(&q, now) {
                        evicted = State::new(a);
                    }
                    prop_assert_eq!(kept.check(&q, now, hits), evicted.check(&q, now, hits), "{}", a);
                }
            }
        }

        /// A `now` smaller than the last seen one never allows what the last seen time would
        /// deny; token bucket, fixed window and sliding log decide exactly as at the last time.
        #[test]
        fn earlier_now_is_never_more_permissive(
            (q, start, steps) in scenario(),
            backs in prop::collection::vec(any::<u64>(), 60),
        ) {
            for a in Algorithm::ALL {
                let mut s = State::new(a);
                let mut now = start;
                for (&(delta, hits), &back) in steps.iter().zip(&backs) {
                    now += delta;
                    s.check(&q, now, 1);
                    let earlier = now - back % (now + 1);
                    let at_earlier = s.clone().check(&q, earlier, hits);
                    let at_last = s.clone().check(&q, now, hits);
                    prop_assert!(!at_earlier.allowed || at_last.allowed, "{} earlier {} now {}", a, earlier, now);
                    if matches!(a, Algorithm::TokenBucket | Algorithm::FixedWindow | Algorithm::SlidingLog) {
                        prop_assert_eq!(at_earlier.allowed, at_last.allowed);
                        prop_assert_eq!(at_earlier.remaining, at_last.remaining);
                    }
                }
            }
        }
    }

    fn edge_u64() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(u64::MAX / 2),
            any::<u64>(),
        ]
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop_oneof![
            Just(State::new(Algorithm::SlidingLog)),
            (prop_oneof![Just(u128::MAX), any::<u128>()], edge_u64()).prop_map(
                |(deficit, last_ns)| State::TokenBucket(TokenBucketState { deficit, last_ns })
            ),
            prop_oneof![Just(u128::MAX), any::<u128>()]
                .prop_map(|tat| State::Gcra(GcraState { tat })),
            (edge_u64(), edge_u64()).prop_map(|(window_start, count)| {
                State::FixedWindow(FixedWindowState {
                    window_start,
                    count,
                })
            }),
            (edge_u64(), edge_u64(), edge_u64()).prop_map(|(window_start, previous, current)| {
                State::SlidingWindow(SlidingWindowState {
                    window_start,
                    previous,
                    current,
                })
            }),
        ]
    }

    proptest! {
        /// Full u64 ranges, arbitrary field values and unordered times: no panic, and the
        /// decision stays self-consistent.
        #[test]
        fn extreme_inputs_never_panic(
            limit in edge_u64().prop_map(|x| x.max(1)),
            period in edge_u64().prop_map(|x| x.max(1)),
            burst in edge_u64().prop_map(|x| x.max(1)),
            huge_period in any::<bool>(),
            fresh in any::<bool>(),
            state in any_state(),
            steps in prop::collection::vec((edge_u64(), edge_u64()), 1..20),
        ) {
            let mut q = quota(limit, period, burst);
            if huge_period {
                q = Quota::new(limit, Duration::MAX).and_then(|q| q.with_burst(burst)).expect("valid");
            }
            let states = if fresh {
                Algorithm::ALL.map(State::new).to_vec()
            } else {
                vec![state]
            };
            for mut s in states {
                let capacity = q.capacity(s.algorithm());
                for &(now, hits) in &steps {
                    let before = s.clone().check(&q, now, 0);
                    prop_assert!(before.allowed);
                    prop_assert!(before.remaining <= capacity);
                    let d = s.check(&q, now, hits);
                    prop_assert_eq!(d.allowed, hits <= before.remaining);
                    if d.allowed {
                        prop_assert_eq!(d.remaining, before.remaining - hits);
                        prop_assert_eq!(d.retry_after, None);
                    } else {
                        prop_assert_eq!(d.remaining, before.remaining);
                        prop_assert_eq!(d.retry_after.is_none(), hits > capacity);
                        prop_assert!(d.retry_after.is_none_or(|r| !r.is_zero()));
                    }
                    let _ = (s.is_idle(&q, now), s.idle_after(&q, now));
                    let _ = (d.reset_after_secs(), d.retry_after_secs());
                }
            }
        }
    }
}
