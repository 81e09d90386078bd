//! GCRA, the generic cell rate algorithm (virtual-scheduling form): one stored time, the
//! theoretical arrival time (TAT) of the next hit if hits came exactly at the rate.
//!
//! With emission interval `T = period / limit` and burst tolerance `tau = (burst - 1) * T`, a
//! request of `hits` at `now` would move the TAT to `max(TAT, now) + hits * T`; it is allowed
//! when that new TAT is at most `now + tau + T = now + burst * T`. This is the token bucket's
//! rule (same decisions, checked by a property test) from one stored value instead of two,
//! which is why it is the usual choice for a Redis script.
//!
//! Fixed point: times are kept in units of `1 / limit` nanosecond, so `T` is exactly
//! `period_ns` units and no rounding of `period / limit` accumulates.

use super::{Decision, Quota};

/// State of GCRA: the theoretical arrival time.
///
/// The all-zero default is fresh for any `now`. Any value is accepted (a TAT far in the future
/// just denies until then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GcraState {
    /// Theoretical arrival time, in units of `1 / limit` nanosecond (`TAT_ns * limit`).
    pub tat: u128,
}

impl GcraState {
    /// Checks `hits` at `now_ns` and updates the state; see [`check`](super::check).
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        let limit = u128::from(quota.limit());
        let interval = u128::from(quota.period_ns()); // T, in units
        let now = u128::from(now_ns) * limit;
        // How far the TAT is ahead of now; the request fits if it stays within burst * T.
        let backlog = self.tat.saturating_sub(now);
        let tolerance = u128::from(quota.burst()) * interval;
        // At most `burst`, so it fits a u64.
        let remaining = u64::try_from(tolerance.saturating_sub(backlog) / interval).unwrap_or(0);
        if hits <= remaining {
            let backlog = backlog.saturating_add(u128::from(hits) * interval);
            if hits > 0 {
                self.tat = now.saturating_add(backlog);
            }
            return Decision::new(quota, true, remaining - hits, backlog.div_ceil(limit));
        }
        let mut d = Decision::new(quota, false, remaining, backlog.div_ceil(limit));
        if hits <= quota.burst() {
            let need = backlog
                .saturating_add(u128::from(hits) * interval)
                .saturating_sub(tolerance);
            d.retry_after = Some(super::duration_from_nanos(need.div_ceil(limit)));
        }
        d
    }

    /// The time (ns) from which the TAT is in the past, which is the same as fresh.
    pub(super) fn idle_at(&self, quota: &Quota) -> u128 {
        self.tat.div_ceil(u128::from(quota.limit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn emission_interval_and_tolerance() {
        // 10 per second (T = 100 ms), burst 3.
        let q = Quota::new(10, Duration::from_secs(1))
            .and_then(|q| q.with_burst(3))
            .expect("valid");
        let mut s = GcraState::default();
        let t0 = 1_000_000_000;
        assert!(s.check(&q, t0, 3).allowed);
        assert_eq!(s.tat, u128::from(t0 + 300_000_000) * 10);
        let d = s.check(&q, t0, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_millis(300));
        assert!(s.check(&q, t0 + 100_000_000, 1).allowed);
        // A peek never moves the TAT.
        let before = s;
        assert!(s.check(&q, t0 + 150_000_000, 0).allowed);
        assert_eq!(s, before);
    }

    /// 3 per second (T = 333_333_333.3 ns), burst 2, emptied at 0 and every hit sent as soon as
    /// it fits: the k-th is allowed at exactly ceil(k * 10^9 / 3) ns and not one nanosecond
    /// earlier, even after a million periods. With T rounded to whole nanoseconds the early
    /// check would pass after a few steps.
    #[test]
    fn fractional_interval_does_not_drift() {
        let q = Quota::new(3, Duration::from_secs(1))
            .and_then(|q| q.with_burst(2))
            .expect("valid");
        let mut s = GcraState::default();
        assert!(s.check(&q, 0, 2).allowed);
        for k in 1u64..=3_000_000 {
            let at = (u128::from(k) * 1_000_000_000).div_ceil(3) as u64;
            assert!(!s.check(&q, at - 1, 1).allowed, "k={k}");
            assert!(s.check(&q, at, 1).allowed, "k={k}");
        }
    }
}
