//! Passive outlier detection over a pool of instances, as a pure state machine fed with the
//! outcome of every request (the caller passes the time in milliseconds, never decreasing).
//!
//! An instance is ejected (taken out of balancing for a while) when it returns
//! `consecutive_5xx` server errors in a row, `consecutive_gateway_errors` gateway errors in a
//! row (connection refused or reset, timeout, 502, 503, 504), or when its latency is an outlier:
//! its moving average of successful latencies exceeds `latency_factor` times the median of the
//! pool's other instances by at least `latency_min_gap_ms` (Envoy's outlier detection has no
//! latency rule; envoyproxy/envoy#288). The `k`-th ejection of an instance lasts `k ×
//! base_ejection_ms`, capped at `max_ejection_ms`; an instance that stays in for
//! `max_ejection_ms` after it returns starts again at `k = 1`. At most `max_ejection_percent`
//! of the pool is out at once (at least one instance may always be ejected), so detection never
//! empties a pool by itself. An instance returns by itself when its time is up, with its
//! counters and latency history cleared.

/// When instances are ejected and for how long. A threshold of 0 turns its rule off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierConfig {
    /// Server errors (any 5xx, gateway errors included) in a row that eject.
    pub consecutive_5xx: u32,
    /// Gateway errors in a row that eject.
    pub consecutive_gateway_errors: u32,
    /// Eject when the instance's mean latency exceeds this many times the median of the
    /// others' (0: no latency rule).
    pub latency_factor: f64,
    /// ...and exceeds that median by at least this many milliseconds (so 3 ms against 1 ms is
    /// not an outlier).
    pub latency_min_gap_ms: f64,
    /// Successful responses an instance needs before its latency is judged (also what each
    /// other instance needs to count in the median; at least two others must).
    pub latency_min_samples: u32,
    /// The first ejection's length.
    pub base_ejection_ms: u64,
    /// The longest ejection.
    pub max_ejection_ms: u64,
    /// The largest share of the pool out at once, in percent (at least one instance).
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    /// Envoy's defaults (5 consecutive 5xx or gateway errors, 30 s base, 300 s max, 10%), plus
    /// a latency rule of 3× the median and 50 ms over it after 20 samples.
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            consecutive_gateway_errors: 5,
            latency_factor: 3.0,
            latency_min_gap_ms: 50.0,
            latency_min_samples: 20,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejection_percent: 10,
        }
    }
}

/// What a request to an instance came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response below 500.
    Success,
    /// A 5xx other than 502, 503, 504.
    ServerError,
    /// No usable response (refused, reset, timed out) or a 502, 503 or 504.
    GatewayError,
}

/// Why an instance was ejected (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `consecutive_5xx` server errors in a row.
    Consecutive5xx,
    /// `consecutive_gateway_errors` gateway errors in a row.
    ConsecutiveGatewayErrors,
    /// Its latency is an outlier against the pool's median.
    Latency,
}

impl Reason {
    /// `consecutive_5xx`, `consecutive_gateway_errors` or `latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Consecutive5xx => "consecutive_5xx",
            Reason::ConsecutiveGatewayErrors => "consecutive_gateway_errors",
            Reason::Latency => "latency",
        }
    }
}

/// An ejection that [`OutlierDetector::observe`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// The instance's index.
    pub host: usize,
    /// Why.
    pub reason: Reason,
    /// Until when (exclusive, milliseconds).
    pub until_ms: u64,
    /// How many times this instance has been ejected in a row, this one included.
    pub times: u32,
}

/// What the detector knows of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostStats {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    latency_ms: f64,
    samples: u32,
    ejected_until_ms: Option<u64>,
    times_ejected: u32,
    returned_at_ms: u64,
}

/// Weight of a new latency in the mean (about the last ten responses).
const LATENCY_ALPHA: f64 = 0.2;

/// Outlier detection over `n` instances (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct OutlierDetector {
    cfg: OutlierConfig,
    hosts: Vec<HostStats>,
}

impl OutlierDetector {
    /// A detector for `n` instances, none ejected.
    pub fn new(cfg: OutlierConfig, n: usize) -> Self {
        Self {
            cfg,
            hosts: vec![HostStats::default(); n],
        }
    }

    /// A detector for a new list of instances that keeps what was known of the ones that
    /// stay: `old_index(i)` is instance `i`'s index in `self`, if it was there.
    pub fn remap(&self, n: usize, old_index: impl Fn(usize) -> Option<usize>) -> Self {
        let hosts = (0..n)
            .map(|i| {
                old_index(i)
                    .and_then(|o| self.hosts.get(o).copied())
                    .unwrap_or_default()
            })
            .collect();
        Self {
            cfg: self.cfg,
            hosts,
        }
    }

    /// The configuration.
    pub fn config(&self) -> OutlierConfig {
        self.cfg
    }

    /// How many instances it watches.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether it watches none.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether instance `i` is out at `now_ms`.
    pub fn is_ejected(&self, i: usize, now_ms: u64) -> bool {
        self.hosts
            .get(i)
            .and_then(|h| h.ejected_until_ms)
            .is_some_and(|until| now_ms < until)
    }

    /// Until when instance `i` is out, if it is at `now_ms`.
    pub fn ejected_until(&self, i: usize, now_ms: u64) -> Option<u64> {
        self.is_ejected(i, now_ms)
            .then(|| self.hosts[i].ejected_until_ms)
            .flatten()
    }

    /// How many instances are out at `now_ms`.
    pub fn ejected_count(&self, now_ms: u64) -> usize {
        (0..self.hosts.len())
            .filter(|&i| self.is_ejected(i, now_ms))
            .count()
    }

    /// The most instances out at once.
    pub fn max_ejected(&self) -> usize {
        let by_percent =
            self.hosts.len() * usize::from(self.cfg.max_ejection_percent.min(100)) / 100;
        by_percent.max(1)
    }

    /// Brings back instances whose time is up, with their counters cleared.
    fn release(&mut self, now_ms: u64) {
        for h in &mut self.hosts {
            if let Some(until) = h.ejected_until_ms
                && now_ms >= until
            {
                *h = HostStats {
                    times_ejected: h.times_ejected,
                    returned_at_ms: until,
                    ..HostStats::default()
                };
            }
        }
    }

    /// The median latency of the instances other than `i` that have enough samples and are
    /// in, if at least two have.
    fn median_of_others(&self, i: usize, now_ms: u64) -> Option<f64> {
        let mut others: Vec<f64> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|&(k, h)| {
                k != i && h.samples >= self.cfg.latency_min_samples && !self.is_ejected(k, now_ms)
            })
            .map(|(_, h)| h.latency_ms)
            .collect();
        if others.len() < 2 {
            return None;
        }
        others.sort_by(f64::total_cmp);
        let mid = others.len() / 2;
        Some(if others.len().is_multiple_of(2) {
            (others[mid - 1] + others[mid]) / 2.0
        } else {
            others[mid]
        })
    }

    /// Records a request to instance `i` that came to `outcome` after `latency_ms`; returns
    /// the ejection it causes, if any. Reports about an instance that is out (requests sent
    /// before it was ejected) change nothing.
    pub fn observe(
        &mut self,
        i: usize,
        outcome: Outcome,
        latency_ms: f64,
        now_ms: u64,
    ) -> Option<Ejection> {
        self.release(now_ms);
        if i >= self.hosts.len() || self.is_ejected(i, now_ms) {
            return None;
        }
        let cfg = self.cfg;
        let reason = {
            let h = &mut self.hosts[i];
            match outcome {
                Outcome::Success => {
                    h.consecutive_5xx = 0;
                    h.consecutive_gateway = 0;
                    h.latency_ms = if h.samples == 0 {
                        latency_ms
                    } else {
                        h.latency_ms + LATENCY_ALPHA * (latency_ms - h.latency_ms)
                    };
                    h.samples = h.samples.saturating_add(1);
                }
                Outcome::ServerError => {
                    h.consecutive_5xx += 1;
                    h.consecutive_gateway = 0;
                }
                Outcome::GatewayError => {
                    h.consecutive_5xx += 1;
                    h.consecutive_gateway += 1;
                }
            }
            if cfg.consecutive_gateway_errors > 0
                && h.consecutive_gateway >= cfg.consecutive_gateway_errors
            {
                Some(Reason::ConsecutiveGatewayErrors)
            } else if cfg.consecutive_5xx > 0 && h.consecutive_5xx >= cfg.consecutive_5xx {
                Some(Reason::Consecutive5xx)
            } else {
                None
            }
        };
        let reason = reason.or_else(|| {
            let h = self.hosts[i];
            let judged = outcome == Outcome::Success
                && cfg.latency_factor > 0.0
                && h.samples >= cfg.latency_min_samples.max(1)
                && h.latency_ms >= cfg.latency_min_gap_ms;
            if !judged {
                return None;
            }
            let median = self.median_of_others(i, now_ms)?;
            (h.latency_ms > cfg.latency_factor * median
                && h.latency_ms - median >= cfg.latency_min_gap_ms)
                .then_some(Reason::Latency)
        })?;
        if self.ejected_count(now_ms) >= self.max_ejected() {
            return None;
        }
        let h = &mut self.hosts[i];
        if now_ms.saturating_sub(h.returned_at_ms) >= cfg.max_ejection_ms {
            h.times_ejected = 0;
        }
        h.times_ejected = h.times_ejected.saturating_add(1);
        let length = cfg
            .base_ejection_ms
            .saturating_mul(u64::from(h.times_ejected))
            .min(cfg.max_ejection_ms);
        let until_ms = now_ms.saturating_add(length.max(1));
        *h = HostStats {
            ejected_until_ms: Some(until_ms),
            times_ejected: h.times_ejected,
            returned_at_ms: h.returned_at_ms,
            ..HostStats::default()
        };
        Some(Ejection {
            host: i,
            reason,
            until_ms,
            times: h.times_ejected,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> OutlierConfig {
        OutlierConfig {
            consecutive_5xx: 3,
            consecutive_gateway_errors: 2,
            latency_factor: 3.0,
            latency_min_gap_ms: 20.0,
            latency_min_samples: 5,
            base_ejection_ms: 1_000,
            max_ejection_ms: 5_000,
            max_ejection_percent: 50,
        }
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::ServerError),
            Just(Outcome::GatewayError)
        ]
    }

    proptest! {
        #[test]
        fn never_more_than_the_cap_out(n in 1usize..10, pct in 0u8..=100, events in prop::collection::vec((0usize..10, outcome(), 0u64..300), 1..300)) {
            let mut d = OutlierDetector::new(OutlierConfig { max_ejection_percent: pct, ..cfg() }, n);
            let mut now = 0;
            for (host, o, gap) in events {
                now += gap;
                d.observe(host % n, o, 1.0, now);
                prop_assert!(d.ejected_count(now) <= d.max_ejected());
            }
        }

        #[test]
        fn a_success_between_errors_never_ejects_for_5xx(n in 1usize..5, errors in prop::collection::vec(1u32..3, 1..50)) {
            let mut d = OutlierDetector::new(cfg(), n);
            let mut now = 0;
            for run in errors {
                for _ in 0..run {
                    now += 1;
                    prop_assert_eq!(d.observe(0, Outcome::ServerError, 1.0, now), None);
                }
                now += 1;
                d.observe(0, Outcome::Success, 1.0, now);
            }
        }

        #[test]
        fn each_ejection_is_longer_up_to_the_cap(k in 1u32..10) {
            let c = cfg();
            let mut d = OutlierDetector::new(c, 4);
            let mut now = 0;
            for times in 1..=k {
                let mut ejection = None;
                for _ in 0..c.consecutive_5xx {
                    now += 1;
                    ejection = d.observe(0, Outcome::ServerError, 1.0, now);
                }
                let e = ejection.ok_or_else(|| TestCaseError::fail("not ejected"))?;
                prop_assert_eq!(e.times, times);
                let length = (c.base_ejection_ms * u64::from(times)).min(c.max_ejection_ms);
                prop_assert_eq!(e.until_ms, now + length);
                prop_assert!(d.is_ejected(0, e.until_ms - 1));
                prop_assert!(!d.is_ejected(0, e.until_ms));
                now = e.until_ms;
            }
        }
    }

    #[test]
    fn gateway_errors_eject_sooner_and_the_instance_returns_clean() {
        let mut d = OutlierDetector::new(cfg(), 3);
        assert_eq!(d.observe(1, Outcome::GatewayError, 1.0, 10), None);
        let e = d.observe(1, Outcome::GatewayError, 1.0, 20).unwrap();
        assert_eq!(e.reason, Reason::ConsecutiveGatewayErrors);
        assert_eq!(e.until_ms, 1_020);
        // Reports of requests sent before the ejection change nothing.
        assert_eq!(d.observe(1, Outcome::GatewayError, 1.0, 30), None);
        assert!(d.is_ejected(1, 1_019));
        // Back at 1020 with clear counters: one more error does not eject again.
        assert_eq!(d.observe(1, Outcome::GatewayError, 1.0, 1_020), None);
        assert!(!d.is_ejected(1, 1_020));
    }

    #[test]
    fn a_slow_instance_is_a_latency_outlier() {
        let mut d = OutlierDetector::new(cfg(), 3);
        let mut ejected = None;
        for t in 0..10u64 {
            d.observe(0, Outcome::Success, 2.0, t);
            d.observe(1, Outcome::Success, 3.0, t);
            ejected = ejected.or(d.observe(2, Outcome::Success, 80.0, t));
        }
        let e = ejected.unwrap();
        assert_eq!((e.host, e.reason), (2, Reason::Latency));
        // Uniformly slow instances are not outliers.
        let mut d = OutlierDetector::new(cfg(), 3);
        for t in 0..50u64 {
            for h in 0..3 {
                assert_eq!(d.observe(h, Outcome::Success, 80.0, t), None);
            }
        }
    }

    #[test]
    fn a_long_healthy_stretch_resets_the_multiplier() {
        let c = cfg();
        let mut d = OutlierDetector::new(c, 2);
        for t in 1..=3 {
            d.observe(0, Outcome::ServerError, 1.0, t);
        }
        assert!(d.is_ejected(0, 3));
        let later = 3 + c.base_ejection_ms + c.max_ejection_ms;
        let mut e = None;
        for t in 0..3 {
            e = d.observe(0, Outcome::ServerError, 1.0, later + t);
        }
        assert_eq!(e.unwrap().times, 1);
    }

    #[test]
    fn remap_keeps_what_is_known_of_staying_instances() {
        let mut d = OutlierDetector::new(cfg(), 2);
        d.observe(1, Outcome::GatewayError, 1.0, 1);
        d.observe(1, Outcome::GatewayError, 1.0, 2);
        assert!(d.is_ejected(1, 3));
        let r = d.remap(3, |i| (i == 0).then_some(1));
        assert!(r.is_ejected(0, 3));
        assert!(!r.is_ejected(1, 3));
        assert_eq!(r.len(), 3);
    }
}
