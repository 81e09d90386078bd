//! Sliding-window counter (Cloudflare's): two fixed-window counters, the previous window's
//! weighted by how much of it the sliding window `(now - period, now]` still covers.
//!
//! With `e` nanoseconds elapsed in the current window, a request of `hits` is allowed when
//! `previous * (period - e) / period + current + hits <= limit`, compared exactly in integers
//! as `previous * (period - e) + (current + hits) * period <= limit * period`. It assumes the
//! previous window's hits were spread evenly: it smooths the fixed window's boundary burst for
//! the memory of two counters, but is not exact (a burst late in the previous window is
//! under-counted as it slides out).

use super::{Decision, Quota};

/// State of a sliding-window counter: the current aligned window and two counts.
///
/// The all-zero default is fresh for any `now`. Any field values are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SlidingWindowState {
    /// Start (ns) of the window `current` belongs to.
    pub window_start: u64,
    /// Hits allowed in the window before it.
    pub previous: u64,
    /// Hits allowed in the window starting at `window_start`.
    pub current: u64,
}

impl SlidingWindowState {
    /// Checks `hits` at `now_ns` and updates the state; see [`check`](super::check).
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        let period = quota.period_ns();
        let start = now_ns - now_ns % period;
        if start > self.window_start {
            self.previous = if self.window_start.checked_add(period) == Some(start) {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.window_start = start;
        }
        // An earlier `now` is evaluated at the start of the stored window (only stricter).
        let now = now_ns.max(self.window_start);
        let elapsed = (now - self.window_start).min(period - 1);

        let p = u128::from(period);
        let limit = u128::from(quota.limit());
        let weight = p - u128::from(elapsed); // in 1..=period
        let used =
            (u128::from(self.previous) * weight).saturating_add(u128::from(self.current) * p);
        // At most `limit`, so it fits a u64.
        let remaining = u64::try_from((limit * p).saturating_sub(used) / p).unwrap_or(0);
        if hits <= remaining {
            self.current = self.current.saturating_add(hits);
            let reset = self.idle_at(quota).saturating_sub(u128::from(now));
            return Decision::new(quota, true, remaining - hits, reset);
        }
        let reset = self.idle_at(quota).saturating_sub(u128::from(now));
        let mut d = Decision::new(quota, false, remaining, reset);
        if hits <= quota.limit() {
            let start = u128::from(self.window_start);
            let (current, hits) = (u128::from(self.current), u128::from(hits));
            let at = if current + hits <= limit {
                // Later in this window (or at its end) the previous window weighs little enough:
                // previous * (period - e) <= room.
                let room = (limit - current - hits) * p;
                let free = room.checked_div(u128::from(self.previous)).unwrap_or(p);
                start + p.saturating_sub(free)
            } else {
                // Only in the next window, once `current` (then the previous count) weighs
                // little enough: current * (period - e) <= (limit - hits) * period.
                let room = (limit - hits) * p;
                start + p + p.saturating_sub(room / current)
            };
            let wait = at.saturating_sub(u128::from(now));
            d.retry_after = Some(super::duration_from_nanos(wait));
        }
        d
    }

    /// The time (ns) from which both counts have slid out of the window.
    pub(super) fn idle_at(&self, quota: &Quota) -> u128 {
        let start = u128::from(self.window_start);
        let p = u128::from(quota.period_ns());
        if self.current > 0 {
            start + 2 * p
        } else if self.previous > 0 {
            start + p
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Cloudflare's example: limit 50 per minute, 42 hits in the previous minute, 18 in this
    /// one, 15 s into it: 42 * 45/60 + 18 = 49.5, so one more hit (50.5) is denied.
    #[test]
    fn weighted_previous_window() {
        let q = Quota::new(50, Duration::from_secs(60)).expect("valid");
        let sec = 1_000_000_000u64;
        let mut s = SlidingWindowState {
            window_start: 60 * sec,
            previous: 42,
            current: 18,
        };
        let d = s.check(&q, 75 * sec, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        // 42 * (60 - e) / 60 <= 31 once e >= 60 - 44.28..., i.e. at 60 - 44 = 16 s.
        let wait = d.retry_after.expect("retry");
        assert_eq!(
            wait,
            Duration::from_nanos(60 * sec - (31 * 60 * sec / 42) - 15 * sec)
        );
        assert_eq!(d.reset_after, Duration::from_secs(105));
        assert!(!s.check(&q, 75 * sec + 714_285_714, 1).allowed);
        // The next window starts with previous = 18.
        assert!(s.check(&q, 120 * sec, 32).allowed);
        assert_eq!(
            s,
            SlidingWindowState {
                window_start: 120 * sec,
                previous: 18,
                current: 32
            }
        );
    }
}
