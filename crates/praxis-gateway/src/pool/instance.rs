//! One upstream instance: its address, and what the gateway knows of it right now.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use praxis_kit::balance::PeakEwma;
use praxis_kit::breaker::{Breaker, BreakerConfig, BreakerState, Permit};

/// An upstream instance of a pool.
#[derive(Debug)]
pub struct Instance {
    /// `host:port`, as in the gateway file.
    pub addr: String,
    /// Its name on a hash ring (the address with `:` as `_`).
    pub ring_name: String,
    up: AtomicBool,
    in_flight: AtomicU32,
    weight: AtomicU32,
    /// Peak EWMA of its latency (for `p2c_ewma`).
    pub ewma: Mutex<PeakEwma>,
    /// Active health check runs.
    pub health: Mutex<HealthRuns>,
    /// Its circuit breaker, when the pool has one.
    breaker: Option<Mutex<Breaker>>,
}

/// The name of `addr` on a hash ring: characters the ring does not allow become `_`.
pub fn ring_name(addr: &str) -> String {
    let name: String = addr
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.chars().take(64).collect()
}

impl Instance {
    /// An instance that is up, idle, with `weight`, an EWMA starting at 1 ms, and a closed
    /// breaker when `breaker` is set.
    pub fn new(
        addr: &str,
        weight: u32,
        decay: Duration,
        breaker: Option<BreakerConfig>,
        now_ns: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            addr: addr.to_owned(),
            ring_name: ring_name(addr),
            up: AtomicBool::new(true),
            in_flight: AtomicU32::new(0),
            weight: AtomicU32::new(weight),
            ewma: Mutex::new(PeakEwma::new(decay, Duration::from_millis(1), now_ns)),
            health: Mutex::new(HealthRuns::default()),
            breaker: breaker.map(|cfg| Mutex::new(Breaker::new(cfg))),
        })
    }

    /// Asks its breaker for a call at `now_ms`: `None` to go ahead (the breaker is closed, or
    /// this is its one probe), `Some(ms)` when it is open (ask again in `ms`).
    pub fn breaker_refuses(&self, now_ms: u64) -> Option<u64> {
        match self.breaker.as_ref()?.lock().acquire(now_ms) {
            Permit::Allowed | Permit::Probe => None,
            Permit::Rejected { retry_in_ms } => Some(retry_in_ms),
        }
    }

    /// Tells its breaker how a call ended.
    pub fn breaker_record(&self, success: bool, now_ms: u64) {
        if let Some(b) = &self.breaker {
            let mut b = b.lock();
            if success {
                b.record_success(now_ms);
            } else {
                b.record_failure(now_ms);
            }
        }
    }

    /// Its breaker's state (`None` without a breaker).
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(|b| b.lock().state())
    }

    /// Whether the active checks consider it up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Sets what the active checks say.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Requests in flight to it.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Its weight.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Sets its weight.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight to an instance; dropping it ends it.
#[derive(Debug)]
pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Consecutive passed and failed active checks of an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthRuns {
    passed: u32,
    failed: u32,
}

impl HealthRuns {
    /// Records a check; returns the new state when it changes: down after `unhealthy`
    /// failures in a row while up, up after `healthy` passes in a row while down.
    pub fn record(&mut self, passed: bool, up: bool, healthy: u32, unhealthy: u32) -> Option<bool> {
        if passed {
            self.passed = self.passed.saturating_add(1);
            self.failed = 0;
            (!up && self.passed >= healthy).then_some(true)
        } else {
            self.failed = self.failed.saturating_add(1);
            self.passed = 0;
            (up && self.failed >= unhealthy).then_some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_flip_the_state() {
        let mut r = HealthRuns::default();
        assert_eq!(r.record(false, true, 2, 2), None);
        assert_eq!(r.record(false, true, 2, 2), Some(false));
        assert_eq!(r.record(true, false, 2, 2), None);
        assert_eq!(r.record(false, false, 2, 2), None);
        assert_eq!(r.record(true, false, 2, 2), None);
        assert_eq!(r.record(true, false, 2, 2), Some(true));
    }

    #[test]
    fn ring_names_are_valid() {
        assert_eq!(ring_name("127.0.0.1:9001"), "127.0.0.1_9001");
        assert_eq!(ring_name("[::1]:80"), "___1__80");
    }
}
