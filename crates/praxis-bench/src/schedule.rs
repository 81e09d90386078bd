//! Intended send times: the open-loop schedule every connection follows.
//!
//! The total arrival rate `R` is split over `C` connections. With uniform arrivals the
//! global request `j` is due at `j / R`, and connection `c` owns the requests `j ≡ c (mod C)`,
//! so connection `c`'s `i`-th request is due at `(c + i·C) / R`: connections are staggered
//! evenly and the merged stream is exactly periodic. Each time is computed from its index,
//! never accumulated, so there is no drift. With Poisson arrivals every connection runs an
//! independent Poisson process of rate `R / C` (exponential gaps from a seeded generator);
//! their superposition is a Poisson process of rate `R`.
//!
//! The schedule never looks at the server: it is what makes the generator open-loop.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Constant spacing (the wrk2 model).
    #[default]
    Uniform,
    /// Exponentially distributed gaps (a Poisson process).
    Poisson,
}

impl std::fmt::Display for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arrival::Uniform => "uniform",
            Arrival::Poisson => "poisson",
        })
    }
}

/// The schedule of one connection: an infinite iterator of offsets from the start time `t0`.
#[derive(Debug, Clone)]
pub struct ConnSchedule {
    kind: Kind,
    index: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Uniform {
        first: f64,
        stride: f64,
        rate: f64,
    },
    Poisson {
        rng: SmallRng,
        mean_gap: f64,
        at: f64,
    },
}

impl ConnSchedule {
    /// The schedule of connection `conn` out of `connections` for a total `rate` (requests/s).
    ///
    /// `seed` makes Poisson schedules reproducible; each connection derives its own stream from it.
    pub fn new(arrival: Arrival, rate: f64, conn: usize, connections: usize, seed: u64) -> Self {
        let connections = connections.max(1) as f64;
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            f64::MIN_POSITIVE
        };
        let kind = match arrival {
            Arrival::Uniform => Kind::Uniform {
                first: conn as f64,
                stride: connections,
                rate,
            },
            Arrival::Poisson => Kind::Poisson {
                rng: SmallRng::seed_from_u64(mix(seed, conn as u64)),
                mean_gap: connections / rate,
                at: 0.0,
            },
        };
        ConnSchedule { kind, index: 0 }
    }

    /// How many intended times have been handed out so far.
    pub fn issued(&self) -> u64 {
        self.index
    }

    /// The next intended send time, as an offset from `t0`.
    pub fn next_offset(&mut self) -> Duration {
        let i = self.index;
        self.index += 1;
        let secs = match &mut self.kind {
            Kind::Uniform {
                first,
                stride,
                rate,
            } => (*first + i as f64 * *stride) / *rate,
            Kind::Poisson { rng, mean_gap, at } => {
                // 1 - U is in (0, 1], so the logarithm is finite.
                let u: f64 = rng.random();
                *at += -(1.0 - u).ln() * *mean_gap;
                *at
            }
        };
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

impl Iterator for ConnSchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_offset())
    }
}

/// SplitMix64 finaliser: derives well-spread per-connection seeds from one seed.
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_single_connection_is_periodic() {
        let s = ConnSchedule::new(Arrival::Uniform, 100.0, 0, 1, 0);
        let got: Vec<Duration> = s.take(4).collect();
        assert_eq!(
            got,
            vec![
                Duration::ZERO,
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(30)
            ]
        );
    }

    #[test]
    fn uniform_connections_interleave_into_one_periodic_stream() {
        let rate = 1000.0;
        let conns = 4;
        let mut all: Vec<Duration> = (0..conns)
            .flat_map(|c| ConnSchedule::new(Arrival::Uniform, rate, c, conns, 0).take(250))
            .collect();
        all.sort();
        assert_eq!(all.len(), 1000);
        for (j, t) in all.iter().enumerate() {
            let want = j as f64 / rate;
            assert!((t.as_secs_f64() - want).abs() < 1e-9, "request {j}: {t:?}");
        }
    }

    #[test]
    fn uniform_does_not_drift_over_long_runs() {
        let mut s = ConnSchedule::new(Arrival::Uniform, 3.0, 0, 1, 0);
        let mut last = Duration::ZERO;
        for _ in 0..3_000_001 {
            last = s.next_offset();
        }
        // Request 3,000,000 at 3 req/s is due at exactly 1,000,000 s.
        assert!((last.as_secs_f64() - 1_000_000.0).abs() < 1e-6, "{last:?}");
    }

    #[test]
    fn poisson_mean_rate_and_dispersion() {
        let rate = 500.0;
        let conns = 5;
        let per_conn = 20_000;
        let mut gaps = Vec::new();
        let mut ends = Vec::new();
        for c in 0..conns {
            let mut s = ConnSchedule::new(Arrival::Poisson, rate, c, conns, 42);
            let mut prev = 0.0;
            for _ in 0..per_conn {
                let t = s.next_offset().as_secs_f64();
                assert!(t >= prev, "times are non-decreasing");
                gaps.push(t - prev);
                prev = t;
            }
            ends.push(prev);
        }
        // Each connection is a Poisson process of rate 100/s: mean gap 10 ms, sd 10 ms.
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 0.01).abs() / 0.01 < 0.02, "mean gap {mean}");
        let cv = var.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.03, "coefficient of variation {cv}");
        // Total achieved rate over the common horizon.
        let horizon = ends.iter().cloned().fold(f64::INFINITY, f64::min);
        let total_rate = (conns * per_conn) as f64 / horizon;
        assert!((total_rate - rate).abs() / rate < 0.03, "rate {total_rate}");
    }

    #[test]
    fn poisson_is_deterministic_per_seed_and_connection() {
        let a: Vec<_> = ConnSchedule::new(Arrival::Poisson, 10.0, 3, 8, 7)
            .take(50)
            .collect();
        let b: Vec<_> = ConnSchedule::new(Arrival::Poisson, 10.0, 3, 8, 7)
            .take(50)
            .collect();
        let c: Vec<_> = ConnSchedule::new(Arrival::Poisson, 10.0, 4, 8, 7)
            .take(50)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn issued_counts() {
        let mut s = ConnSchedule::new(Arrival::Uniform, 1.0, 0, 1, 0);
        s.next_offset();
        s.next_offset();
        assert_eq!(s.issued(), 2);
    }
}
