//! Exponential backoff with "full jitter": attempt `k` waits a uniform random time in
//! `[0, min(max, base * 2^k)]` (the AWS architecture blog's recommendation, which spreads
//! retries of many clients better than equal or decorrelated jitter at similar cost).

use rand::{Rng, RngExt};
use std::time::Duration;

/// Exponential backoff policy with full jitter and a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Attempt 0 waits up to `base`; each later attempt doubles the ceiling, capped at `max`
    /// (a `max` below `base` caps every attempt at `max`).
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The upper bound of the wait for `attempt` (0-based): `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = if attempt < 32 {
            self.base.checked_mul(1u32 << attempt)
        } else {
            None
        };
        exp.map_or(self.max, |d| d.min(self.max))
    }

    /// A random wait for `attempt`, uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(&mut rand::rng(), attempt)
    }

    /// [`delay`](Self::delay) with a caller-supplied random source.
    pub fn delay_with<R: Rng + ?Sized>(&self, rng: &mut R, attempt: u32) -> Duration {
        let cap = self.ceiling(attempt);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Reference ceiling computed in u128 nanoseconds.
    fn reference_ceiling(base: Duration, max: Duration, attempt: u32) -> Duration {
        let exp = base.as_nanos().saturating_mul(1u128 << attempt.min(100));
        let capped = exp.min(max.as_nanos());
        Duration::from_nanos(capped as u64)
    }

    #[test]
    fn known_ceilings() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(5), Duration::from_millis(3200));
        assert_eq!(b.ceiling(6), Duration::from_secs(5));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
        let inverted = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(inverted.ceiling(0), Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn ceiling_matches_reference(base_ms in 0u64..100_000, max_ms in 0u64..10_000_000, attempt in 0u32..200) {
            let (base, max) = (Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            prop_assert_eq!(Backoff::new(base, max).ceiling(attempt), reference_ceiling(base, max, attempt));
        }

        #[test]
        fn ceiling_grows_by_doubling_until_max(base_ms in 1u64..100_000, max_ms in 0u64..10_000_000, attempt in 0u32..64) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let (now, next) = (b.ceiling(attempt), b.ceiling(attempt + 1));
            prop_assert!(next >= now);
            prop_assert!(next <= b.max);
            prop_assert_eq!(next, (now * 2).min(b.max));
        }

        #[test]
        fn delay_is_within_zero_and_ceiling(base_ms in 0u64..100_000, max_ms in 0u64..10_000_000, attempt in any::<u32>(), seed in any::<u64>()) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let mut rng = StdRng::seed_from_u64(seed);
            prop_assert!(b.delay_with(&mut rng, attempt) <= b.ceiling(attempt));
            prop_assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }

    #[test]
    fn delays_grow_on_average() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(60));
        let mut rng = StdRng::seed_from_u64(1);
        let mean = |attempt: u32, rng: &mut StdRng| -> f64 {
            (0..500)
                .map(|_| b.delay_with(rng, attempt).as_secs_f64())
                .sum::<f64>()
                / 500.0
        };
        let (m1, m4) = (mean(1, &mut rng), mean(4, &mut rng));
        assert!(
            m4 > m1 * 4.0,
            "mean at 4 ({m4}) should be ~8x mean at 1 ({m1})"
        );
    }
}
