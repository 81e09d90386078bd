//! Peak EWMA of latency (Finagle's `PeakEwma`, tower's `peak_ewma`): a moving average that
//! jumps up at once to a latency above it and decays towards lower ones with a time constant,
//! so one slow response makes an instance look slow at once and a run of fast ones earns its
//! way back. Between observations the estimate decays towards zero, so an instance nobody
//! picks any more is tried again after a while (its next observation sets it right).
//!
//! The caller observes an error as [`PeakEwma::observe_error`]: a latency of at least the
//! penalty, so an instance that fails fast (a quick 503) looks slow rather than attractive.
//! That is the gap in Linkerd's balancer (linkerd2-proxy#4537).
//!
//! Times are nanoseconds from any fixed origin, never decreasing for one estimate; an earlier
//! `now` counts as no time passed.

use std::time::Duration;

/// A peak-sensitive, exponentially decayed latency estimate.
#[derive(Debug, Clone, Copy)]
pub struct PeakEwma {
    decay_ns: f64,
    estimate_ns: f64,
    stamp_ns: u64,
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

impl PeakEwma {
    /// An estimate that starts at `initial` at time `now_ns` and forgets with time constant
    /// `decay` (an observation `decay` old weighs `1/e`); a zero `decay` is taken as 1 ns.
    pub fn new(decay: Duration, initial: Duration, now_ns: u64) -> Self {
        Self {
            decay_ns: nanos(decay).max(1.0),
            estimate_ns: nanos(initial),
            stamp_ns: now_ns,
        }
    }

    fn weight_of_old(&self, now_ns: u64) -> f64 {
        let elapsed = now_ns.saturating_sub(self.stamp_ns) as f64;
        (-elapsed / self.decay_ns).exp()
    }

    /// Records a response that took `rtt` at time `now_ns`: above the estimate it becomes the
    /// estimate (the peak); below, it is blended in by the time since the last observation.
    pub fn observe(&mut self, rtt: Duration, now_ns: u64) {
        let rtt = nanos(rtt);
        if rtt > self.estimate_ns {
            self.estimate_ns = rtt;
        } else {
            let old = self.weight_of_old(now_ns);
            self.estimate_ns = self.estimate_ns * old + rtt * (1.0 - old);
        }
        self.stamp_ns = self.stamp_ns.max(now_ns);
    }

    /// Records a failed request as a response of `max(rtt, penalty)`.
    pub fn observe_error(&mut self, rtt: Duration, penalty: Duration, now_ns: u64) {
        self.observe(rtt.max(penalty), now_ns);
    }

    /// The estimate at `now_ns` in nanoseconds, decayed towards zero since the last
    /// observation.
    pub fn estimate_ns(&self, now_ns: u64) -> f64 {
        self.estimate_ns * self.weight_of_old(now_ns)
    }

    /// The load a balancer compares: the estimate times one more than the requests in flight
    /// (an idle instance costs its latency; a busy one, its latency per queued request).
    pub fn load(&self, now_ns: u64, in_flight: u32) -> f64 {
        self.estimate_ns(now_ns) * (f64::from(in_flight) + 1.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    proptest! {
        #[test]
        fn the_estimate_stays_between_the_last_sample_and_the_peak(samples in prop::collection::vec((0u64..500, 0u64..2_000), 1..60)) {
            let mut e = PeakEwma::new(Duration::from_secs(1), Duration::ZERO, 0);
            let mut now = 0;
            let mut peak = 0f64;
            for (rtt_ms, gap_ms) in samples {
                now += gap_ms * MS;
                e.observe(Duration::from_millis(rtt_ms), now);
                peak = peak.max((rtt_ms * MS) as f64);
                let est = e.estimate_ns(now);
                prop_assert!(est >= (rtt_ms * MS) as f64 - 1.0, "below the last sample");
                prop_assert!(est <= peak + 1.0, "above the peak");
            }
        }

        #[test]
        fn idle_estimates_only_decay(rtt_ms in 1u64..1_000, a in 0u64..10_000, b in 0u64..10_000) {
            let mut e = PeakEwma::new(Duration::from_millis(500), Duration::ZERO, 0);
            e.observe(Duration::from_millis(rtt_ms), 0);
            let (early, late) = (a.min(b) * MS, a.max(b) * MS);
            prop_assert!(e.estimate_ns(late) <= e.estimate_ns(early));
        }

        #[test]
        fn an_error_is_never_cheaper_than_the_penalty(rtt_us in 0u64..100_000, penalty_ms in 1u64..5_000) {
            let mut e = PeakEwma::new(Duration::from_secs(10), Duration::from_millis(1), 0);
            e.observe_error(Duration::from_micros(rtt_us), Duration::from_millis(penalty_ms), 0);
            prop_assert!(e.estimate_ns(0) >= (penalty_ms * MS) as f64);
        }
    }

    #[test]
    fn load_grows_with_requests_in_flight() {
        let e = PeakEwma::new(Duration::from_secs(10), Duration::from_millis(2), 0);
        assert!(e.load(0, 3) > e.load(0, 0));
        assert!((e.load(0, 1) - 2.0 * e.load(0, 0)).abs() < 1.0);
    }

    #[test]
    fn fast_samples_bring_a_peak_down_over_the_decay_time() {
        let mut e = PeakEwma::new(Duration::from_secs(1), Duration::ZERO, 0);
        e.observe(Duration::from_millis(100), 0);
        let mut now = 0;
        for _ in 0..300 {
            now += 10 * MS;
            e.observe(Duration::from_millis(1), now);
        }
        assert!(e.estimate_ns(now) < 10.0 * MS as f64);
    }
}
