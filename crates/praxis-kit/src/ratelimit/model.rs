//! Deliberately naive reference models for the property tests: keep every allowed request and
//! decide each new one by recounting the whole history, in u128 with no state to get wrong.

use super::{Algorithm, Quota};

/// Every allowed request `(time_ns, hits)`, in order, times non-decreasing.
#[derive(Debug, Default)]
pub(super) struct History {
    allowed: Vec<(u64, u64)>,
}

impl History {
    /// Records an allowed request.
    pub(super) fn record(&mut self, now: u64, hits: u64) {
        if hits > 0 {
            self.allowed.push((now, hits));
        }
    }

    /// The largest request `algorithm` must allow at `now`.
    pub(super) fn remaining(&self, algorithm: Algorithm, q: &Quota, now: u64) -> u64 {
        (0..=q.capacity(algorithm))
            .filter(|&hits| self.allows(algorithm, q, now, hits))
            .max()
            .unwrap_or(0)
    }

    /// Whether `algorithm` must allow `hits` at `now` after this history.
    fn allows(&self, algorithm: Algorithm, q: &Quota, now: u64, hits: u64) -> bool {
        let (limit, period) = (u128::from(q.limit()), u128::from(q.period_ns()));
        let (now, hits) = (u128::from(now), u128::from(hits));
        let sum = |keep: &dyn Fn(u128) -> bool| -> u128 {
            self.allowed
                .iter()
                .filter(|&&(t, _)| keep(u128::from(t)))
                .map(|&(_, n)| u128::from(n))
                .sum()
        };
        match algorithm {
            // The token bucket as an arrival curve: the bucket starts full, so a history is
            // allowed iff every interval [s, now] holds at most `burst + rate * (now - s)` hits.
            // Checking every start time of a request (and `now` itself) is enough.
            Algorithm::TokenBucket | Algorithm::Gcra => {
                let burst = u128::from(q.burst());
                hits <= burst
                    && self.allowed.iter().all(|&(s, _)| {
                        let s = u128::from(s);
                        let in_interval = sum(&|t| t >= s) + hits;
                        in_interval * period <= burst * period + limit * (now - s)
                    })
            }
            Algorithm::FixedWindow => sum(&|t| t / period == now / period) + hits <= limit,
            Algorithm::SlidingLog => sum(&|t| now - t < period) + hits <= limit,
            Algorithm::SlidingWindow => {
                let window = now / period;
                let previous = sum(&|t| t / period + 1 == window);
                let current = sum(&|t| t / period == window);
                let elapsed = now % period;
                previous * (period - elapsed) + (current + hits) * period <= limit * period
            }
        }
    }
}
