//! Power of two choices (Mitzenmacher): two distinct eligible instances drawn at random, the
//! one with the lower load wins. Nearly as good as asking every instance, at the cost of two,
//! and never herds every request onto the one that looked best a moment ago.

use rand::{Rng, RngExt};

/// Draws two distinct eligible indices of `0..n` and returns the one with the lower `load`
/// (the first drawn on a tie); the only eligible one when there is one; `None` when there is
/// none. Never returns the strictly most loaded of two or more eligible instances.
pub fn p2c<R: Rng + ?Sized>(
    rng: &mut R,
    n: usize,
    eligible: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> f64,
) -> Option<usize> {
    let count = (0..n).filter(|&i| eligible(i)).count();
    let nth = |k: usize| (0..n).filter(|&i| eligible(i)).nth(k);
    match count {
        0 => None,
        1 => nth(0),
        _ => {
            let a = rng.random_range(0..count);
            let mut b = rng.random_range(0..count - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (nth(a)?, nth(b)?);
            Some(if load(b) < load(a) { b } else { a })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    proptest! {
        #[test]
        fn picks_an_eligible_one_and_never_the_unique_worst(loads in prop::collection::vec(0u32..100, 1..10), mask in prop::collection::vec(any::<bool>(), 10), seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = loads.len();
            let eligible: Vec<usize> = (0..n).filter(|&i| mask[i]).collect();
            for _ in 0..20 {
                match p2c(&mut rng, n, |i| mask[i], |i| f64::from(loads[i])) {
                    Some(i) => {
                        prop_assert!(mask[i]);
                        if eligible.len() >= 2 {
                            let max = eligible.iter().map(|&k| loads[k]).max().unwrap_or(0);
                            let at_max = eligible.iter().filter(|&&k| loads[k] == max).count();
                            prop_assert!(!(loads[i] == max && at_max == 1), "picked the unique worst");
                        }
                    }
                    None => prop_assert!(eligible.is_empty()),
                }
            }
        }
    }

    #[test]
    fn equal_loads_spread_evenly() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            if let Some(i) = p2c(&mut rng, 4, |_| true, |_| 1.0) {
                counts[i] += 1;
            }
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
