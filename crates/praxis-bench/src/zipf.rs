//! A Zipf sampler in O(1) time and memory: rejection-inversion (Hörmann and Derflinger,
//! "Rejection-inversion to generate variates from monotone discrete distributions", 1996),
//! the algorithm Apache Commons uses.
//!
//! Rank `k` in `1..=n` has probability proportional to `k^-s`. The sampler inverts the integral
//! of the continuous hat function `h(x) = x^-s` and accepts the rounded point with a cheap test;
//! the acceptance rate is high for every `s >= 0`, so a draw costs a few floating-point
//! operations whatever `n` is (no table of `n` weights).

use rand::{Rng, RngExt};

/// Why a Zipf distribution cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZipfError {
    /// `n` must be at least 1.
    #[error("the number of elements must be at least 1")]
    Empty,
    /// The exponent must be finite and non-negative.
    #[error("the exponent must be finite and >= 0, got {0}")]
    Exponent(f64),
}

/// Zipf distribution over `n` elements with exponent `s`; [`Zipf::sample`] returns a 0-based
/// index in `[0, n)` where 0 is the most popular element.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// Builds the sampler for `n` elements and exponent `s` (`s = 0` is uniform; 1 is classic Zipf).
    pub fn new(n: u64, s: f64) -> Result<Self, ZipfError> {
        if n == 0 {
            return Err(ZipfError::Empty);
        }
        if !s.is_finite() || s < 0.0 {
            return Err(ZipfError::Exponent(s));
        }
        let mut z = Zipf {
            n: n as f64,
            exponent: s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        Ok(z)
    }

    /// The number of elements.
    pub fn len(&self) -> u64 {
        self.n as u64
    }

    /// Always false: a distribution has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Draws a 0-based index in `[0, n)`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let r: f64 = rng.random();
            // u is uniform in (h_integral_x1, h_integral_n].
            let u = self.h_integral_n + r * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let mut k = (x + 0.5).floor();
            if k < 1.0 {
                k = 1.0;
            } else if k > self.n {
                k = self.n;
            }
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64 - 1;
            }
        }
    }

    /// The exact probability of 0-based index `i` (O(n): for tests and small `n`).
    pub fn probability(&self, i: u64) -> f64 {
        let norm: f64 = (1..=self.len())
            .map(|k| (k as f64).powf(-self.exponent))
            .sum();
        ((i + 1) as f64).powf(-self.exponent) / norm
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let mut t = x * (1.0 - self.exponent);
        if t < -1.0 {
            // Limit t to [-1, inf): rounding can push it just below.
            t = -1.0;
        }
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(exp(x) - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    /// Pearson's chi-square statistic of `counts` against `zipf`'s exact probabilities.
    fn chi_square(zipf: &Zipf, counts: &[u64], draws: u64) -> f64 {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let expected = zipf.probability(i as u64) * draws as f64;
                (c as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    fn histogram(zipf: &Zipf, seed: u64, draws: u64) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut counts = vec![0u64; zipf.len() as usize];
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            counts[k as usize] += 1;
        }
        counts
    }

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Zipf::new(0, 1.0).unwrap_err(), ZipfError::Empty);
        assert!(matches!(Zipf::new(10, -0.5), Err(ZipfError::Exponent(_))));
        assert!(matches!(
            Zipf::new(10, f64::NAN),
            Err(ZipfError::Exponent(_))
        ));
    }

    #[test]
    fn single_element() {
        let z = Zipf::new(1, 1.2).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..1000 {
            assert_eq!(z.sample(&mut rng), 0);
        }
    }

    #[test]
    fn classic_zipf_matches_exact_distribution() {
        let z = Zipf::new(10, 1.0).unwrap();
        let draws = 400_000;
        let counts = histogram(&z, 7, draws);
        // 9 degrees of freedom: the 99.99th percentile of chi-square(9) is about 33.7.
        let chi = chi_square(&z, &counts, draws);
        assert!(chi < 33.7, "chi-square {chi}, counts {counts:?}");
        // Rank 1 is twice as popular as rank 2.
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((ratio - 2.0).abs() < 0.05, "{ratio}");
    }

    #[test]
    fn large_n_stays_in_range_and_is_skewed() {
        let z = Zipf::new(1_000_000, 1.0).unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let mut top10 = 0;
        for _ in 0..100_000 {
            let k = z.sample(&mut rng);
            assert!(k < 1_000_000);
            if k < 10 {
                top10 += 1;
            }
        }
        // P(rank <= 10) = H(10) / H(1e6) ≈ 2.929 / 14.393 ≈ 0.2035.
        let share = f64::from(top10) / 100_000.0;
        assert!((share - 0.2035).abs() < 0.01, "{share}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// For small n and any exponent the sampled frequencies match the exact pmf.
        #[test]
        fn matches_exact_pmf_for_small_n(n in 1u64..=12, s in 0.0f64..3.0, seed in any::<u64>()) {
            let z = Zipf::new(n, s).unwrap();
            let draws = 60_000;
            let counts = histogram(&z, seed, draws);
            let df = (n - 1) as f64;
            // A generous bound (mean df, sd sqrt(2 df)): a false alarm is astronomically unlikely.
            let bound = df + 8.0 * (2.0 * df).sqrt() + 12.0;
            let chi = chi_square(&z, &counts, draws);
            prop_assert!(chi < bound, "n={} s={} chi={} counts={:?}", n, s, chi, counts);
        }
    }
}
