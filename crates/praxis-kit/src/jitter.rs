//! Randomly spread durations so that many timers started together do not fire together.

use rand::{Rng, RngExt};
use std::time::Duration;

/// `base` scaled by a uniform random factor in `[1 - fraction, 1 + fraction]`.
///
/// `fraction` is clamped to `[0, 1]` (NaN counts as 0), so the result is never negative and at
/// most twice `base`.
pub fn jittered(base: Duration, fraction: f64) -> Duration {
    jittered_with(&mut rand::rng(), base, fraction)
}

/// [`jittered`] with a caller-supplied random source (deterministic in tests).
pub fn jittered_with<R: Rng + ?Sized>(rng: &mut R, base: Duration, fraction: f64) -> Duration {
    let f = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    if f == 0.0 || base.is_zero() {
        return base;
    }
    let factor = rng.random_range(1.0 - f..=1.0 + f);
    // Saturates instead of panicking when base is near Duration::MAX.
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Reference bounds, computed on nanoseconds as f64 with a 1ns rounding allowance.
    fn bounds(base: Duration, f: f64) -> (f64, f64) {
        let b = base.as_nanos() as f64;
        (b * (1.0 - f) - 1.0, b * (1.0 + f) + 1.0)
    }

    proptest! {
        #[test]
        fn stays_within_bounds(base_ms in 0u64..10_000_000, fraction in -1.0f64..2.0, seed in any::<u64>()) {
            let base = Duration::from_millis(base_ms);
            let mut rng = StdRng::seed_from_u64(seed);
            let d = jittered_with(&mut rng, base, fraction);
            let (lo, hi) = bounds(base, fraction.clamp(0.0, 1.0));
            let got = d.as_nanos() as f64;
            prop_assert!(got >= lo && got <= hi, "{got} not in [{lo}, {hi}]");
        }

        #[test]
        fn thread_rng_version_stays_within_bounds(base_ms in 0u64..10_000_000, fraction in 0.0f64..1.0) {
            let base = Duration::from_millis(base_ms);
            let got = jittered(base, fraction).as_nanos() as f64;
            let (lo, hi) = bounds(base, fraction);
            prop_assert!(got >= lo && got <= hi);
        }
    }

    #[test]
    fn degenerate_fractions_return_base() {
        let base = Duration::from_secs(3);
        assert_eq!(jittered(base, 0.0), base);
        assert_eq!(jittered(base, f64::NAN), base);
        assert_eq!(jittered(base, -0.5), base);
        assert_eq!(jittered(Duration::ZERO, 0.5), Duration::ZERO);
        // Never panics, even at the top of the range.
        assert!(jittered(Duration::MAX, 1.0) >= Duration::ZERO);
    }

    #[test]
    fn actually_spreads() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_secs(60);
        let samples: Vec<Duration> = (0..100)
            .map(|_| jittered_with(&mut rng, base, 0.1))
            .collect();
        assert!(samples.iter().any(|d| *d < base) && samples.iter().any(|d| *d > base));
    }
}
