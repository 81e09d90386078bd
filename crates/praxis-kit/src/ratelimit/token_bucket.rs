//! Token bucket: a bucket of `burst` tokens that refills continuously at `limit` per `period`;
//! a request of `hits` takes `hits` tokens if that many are there.
//!
//! Fixed point: one token is `period_ns` units and the bucket gains `limit` units per
//! nanosecond, so refilling is exact integer arithmetic (no rounding of `period / limit`, no
//! floating-point drift, and splitting a refill in two changes nothing).

use super::{Decision, Quota};

/// State of a token bucket: how far below full it was at the last time seen.
///
/// Storing the deficit rather than the level makes the all-zero default a full bucket, whatever
/// the quota. Any field values are accepted (a deficit above the capacity just denies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenBucketState {
    /// Tokens missing from a full bucket at `last_ns`, in units of `1 / period_ns` token.
    pub deficit: u128,
    /// The latest `now` seen, up to which the refill is accounted.
    pub last_ns: u64,
}

impl TokenBucketState {
    /// Checks `hits` at `now_ns` and updates the state; see [`check`](super::check).
    pub fn check(&mut self, quota: &Quota, now_ns: u64, hits: u64) -> Decision {
        let now = now_ns.max(self.last_ns);
        let rate = u128::from(quota.limit()); // units per nanosecond
        let unit = u128::from(quota.period_ns()); // units per token
        let refill = u128::from(now - self.last_ns) * rate;
        self.deficit = self.deficit.saturating_sub(refill);
        self.last_ns = now;

        let capacity = u128::from(quota.burst()) * unit;
        // At most `burst`, so it fits a u64.
        let remaining = u64::try_from(capacity.saturating_sub(self.deficit) / unit).unwrap_or(0);
        if hits <= remaining {
            self.deficit = self.deficit.saturating_add(u128::from(hits) * unit);
            return Decision::new(quota, true, remaining - hits, self.deficit.div_ceil(rate));
        }
        let mut d = Decision::new(quota, false, remaining, self.deficit.div_ceil(rate));
        if hits <= quota.burst() {
            let need = self
                .deficit
                .saturating_add(u128::from(hits) * unit)
                .saturating_sub(capacity);
            d.retry_after = Some(super::duration_from_nanos(need.div_ceil(rate)));
        }
        d
    }

    /// The time (ns) from which the bucket is full again.
    pub(super) fn idle_at(&self, quota: &Quota) -> u128 {
        u128::from(self.last_ns).saturating_add(self.deficit.div_ceil(u128::from(quota.limit())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 3 per second, burst 2, emptied at 0 and every token taken as soon as it exists: the k-th
    /// token is there at exactly ceil(k * 10^9 / 3) ns and not one nanosecond earlier, even after
    /// a million periods (no drift).
    #[test]
    fn refill_is_exact_over_many_periods() {
        let q = Quota::new(3, Duration::from_secs(1))
            .and_then(|q| q.with_burst(2))
            .expect("valid");
        let mut s = TokenBucketState::default();
        assert!(s.check(&q, 0, 2).allowed);
        for k in 1u64..=3_000_000 {
            let at = (u128::from(k) * 1_000_000_000).div_ceil(3) as u64;
            let early = s.check(&q, at - 1, 1);
            assert!(!early.allowed, "k={k}");
            assert_eq!(early.retry_after, Some(Duration::from_nanos(1)), "k={k}");
            assert!(s.check(&q, at, 1).allowed, "k={k}");
        }
    }

    #[test]
    fn burst_above_limit_then_steady_rate() {
        let q = Quota::new(10, Duration::from_secs(1))
            .and_then(|q| q.with_burst(25))
            .expect("valid");
        let mut s = TokenBucketState::default();
        let d = s.check(&q, 5, 25);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after, Duration::from_millis(2500));
        let denied = s.check(&q, 5, 2);
        assert_eq!(denied.retry_after, Some(Duration::from_millis(200)));
        assert_eq!(s.check(&q, 5, 26).retry_after, None, "more than the burst");
        assert_eq!(s.check(&q, 5 + 100_000_000, 0).remaining, 1);
    }
}
