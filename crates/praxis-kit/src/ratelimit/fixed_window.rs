//! Fixed window: time is cut into windows `[k * period, (k + 1) * period)` and each window
//! allows `limit` hits. Cheapest of all (one counter, `INCR` + `EXPIRE` in Redis), but up to
//! `2 * limit` hits can pass within a short span around a window boundary.

use super::{Decision, Quota};

/// State of a fixed window: which window and how many hits it has allowed.
///
/// The all-zero default is fresh for any `now`. Any field values are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FixedWindowState {
    /// Start (ns) of the window `count` belongs to.
    pub window_start: u64,
    /// Hits allowed in that window.
    pub count: u64,
}

impl FixedWindowState {
    /// Checks `hits` at `now_ns` and updates the state; see [`check`](super::check).
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        let period = quota.period_ns();
        let start = now_ns - now_ns % period;
        if start > self.window_start {
            self.window_start = start;
            self.count = 0;
        }
        // An earlier `now` counts in the stored window.
        let now = u128::from(now_ns.max(self.window_start));
        let end = u128::from(self.window_start) + u128::from(period);
        let remaining = quota.limit().saturating_sub(self.count);
        if hits <= remaining {
            self.count = self.count.saturating_add(hits);
            let reset = if self.count > 0 { end - now } else { 0 };
            return Decision::new(quota, true, remaining - hits, reset);
        }
        let reset = if self.count > 0 { end - now } else { 0 };
        let mut d = Decision::new(quota, false, remaining, reset);
        if hits <= quota.limit() {
            d.retry_after = Some(super::duration_from_nanos(end - now));
        }
        d
    }

    /// The time (ns) from which the window has rolled over (or now, if it counted nothing).
    pub(super) fn idle_at(&self, quota: &Quota) -> u128 {
        if self.count == 0 {
            0
        } else {
            u128::from(self.window_start) + u128::from(quota.period_ns())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_are_aligned_and_reset() {
        let q = Quota::new(2, Duration::from_nanos(100)).expect("valid");
        let mut s = FixedWindowState::default();
        assert!(s.check(&q, 150, 2).allowed);
        assert_eq!(
            s,
            FixedWindowState {
                window_start: 100,
                count: 2
            }
        );
        let d = s.check(&q, 170, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_nanos(30)));
        assert_eq!(d.reset_after, Duration::from_nanos(30));
        assert!(!s.check(&q, 199, 1).allowed);
        assert!(s.check(&q, 200, 2).allowed);
        assert_eq!(s.check(&q, 250, 3).retry_after, None, "more than the limit");
    }

    #[test]
    fn last_window_before_u64_max_does_not_overflow() {
        let q = Quota::new(1, Duration::from_nanos(10)).expect("valid");
        let mut s = FixedWindowState::default();
        assert!(s.check(&q, u64::MAX, 1).allowed);
        let d = s.check(&q, u64::MAX, 1);
        assert!(!d.allowed);
        // u64::MAX = ...615 is in the window [..610, ..620), which ends after u64::MAX.
        assert_eq!(d.retry_after, Some(Duration::from_nanos(5)));
    }
}
