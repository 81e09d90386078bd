//! Sliding-window log: remembers when each allowed hit happened and allows a request if the
//! hits within the last `period` (the window `(now - period, now]`) plus the request stay
//! within `limit`. Exact, with no boundary burst, at the cost of memory per key.
//!
//! Hits at the same instant share one entry `(time, hits)`, so a multi-hit request costs one
//! entry, and the log holds at most `min(limit, requests in the window)` entries.

use super::{Decision, Quota};
use std::collections::VecDeque;

/// State of a sliding-window log: the allowed hits still within the window, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SlidingLogState {
    /// `(time_ns, hits)`, times strictly increasing.
    entries: VecDeque<(u64, u64)>,
    /// Sum of the hits in `entries`.
    total: u64,
    /// The latest `now` seen.
    last_ns: u64,
}

impl SlidingLogState {
    /// The logged `(time_ns, hits)` entries, oldest first (some may be expired until the next
    /// check prunes them).
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Sum of the logged hits.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Checks `hits` at `now_ns` and updates the state; see [`check`](super::check).
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        let period = quota.period_ns();
        let now = now_ns.max(self.last_ns);
        self.last_ns = now;
        while let Some(&(t, n)) = self.entries.front() {
            if now.saturating_sub(t) < period {
                break;
            }
            self.entries.pop_front();
            self.total = self.total.saturating_sub(n);
        }

        let remaining = quota.limit().saturating_sub(self.total);
        if hits <= remaining {
            if hits > 0 {
                match self.entries.back_mut() {
                    Some((t, n)) if *t == now => *n = n.saturating_add(hits),
                    _ => self.entries.push_back((now, hits)),
                }
                self.total = self.total.saturating_add(hits);
            }
            return Decision::new(quota, true, remaining - hits, self.reset_after(period, now));
        }
        let mut d = Decision::new(quota, false, remaining, self.reset_after(period, now));
        if hits <= quota.limit() {
            // The request fits once the oldest `excess` hits have left the window.
            let excess = u128::from(self.total) + u128::from(hits) - u128::from(quota.limit());
            let mut freed = 0u128;
            for &(t, n) in &self.entries {
                freed += u128::from(n);
                if freed >= excess {
                    let at = u128::from(t) + u128::from(period);
                    d.retry_after = Some(super::duration_from_nanos(at - u128::from(now)));
                    break;
                }
            }
        }
        d
    }

    /// Time from `now` until the newest entry leaves the window.
    fn reset_after(&self, period: u64, now: u64) -> u128 {
        self.entries.back().map_or(0, |&(t, _)| {
            (u128::from(t) + u128::from(period)).saturating_sub(u128::from(now))
        })
    }

    /// The time (ns) from which every entry has left the window.
    pub(super) fn idle_at(&self, quota: &Quota) -> u128 {
        self.entries
            .back()
            .map_or(0, |&(t, _)| u128::from(t) + u128::from(quota.period_ns()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn multi_hit_requests_share_an_entry_and_expire_in_order() {
        let q = Quota::new(5, Duration::from_nanos(100)).expect("valid");
        let mut s = SlidingLogState::default();
        assert!(s.check(&q, 10, 2).allowed);
        assert!(s.check(&q, 10, 1).allowed);
        assert!(s.check(&q, 50, 2).allowed);
        assert_eq!(s.entries().collect::<Vec<_>>(), [(10, 3), (50, 2)]);
        let d = s.check(&q, 60, 4);
        assert!(!d.allowed);
        // Needs 4 free: the 3 hits at 10 leave at 110, the 2 at 50 at 150.
        assert_eq!(d.retry_after, Some(Duration::from_nanos(90)));
        assert_eq!(d.reset_after, Duration::from_nanos(90));
        assert_eq!(
            s.check(&q, 60, 3).retry_after,
            Some(Duration::from_nanos(50))
        );
        assert!(!s.check(&q, 109, 1).allowed);
        assert!(s.check(&q, 110, 3).allowed);
        assert_eq!(s.total(), 5);
        assert_eq!(s.entries().len(), 2);
    }

    #[test]
    fn huge_requests_cost_one_entry() {
        let q = Quota::new(u64::MAX, Duration::from_secs(1)).expect("valid");
        let mut s = SlidingLogState::default();
        assert!(s.check(&q, 1, u64::MAX / 2).allowed);
        assert!(s.check(&q, 1, u64::MAX / 2).allowed);
        assert!(s.check(&q, 2, 1).allowed);
        assert!(!s.check(&q, 2, 1).allowed);
        assert_eq!(s.entries().len(), 2);
    }
}
