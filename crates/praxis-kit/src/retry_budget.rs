//! A retry budget: retries in the last `ttl` may not exceed `ratio` times the requests in the
//! same window, or `min_per_sec × ttl` when that is more (so a quiet service can still retry a
//! little). During a full outage every request fails, and the upstream sees at most
//! `(1 + ratio)` times the client's requests instead of `(1 + max_retries)` times: retries never
//! multiply an overload. Envoy calls the floor `min_retry_concurrency`; Finagle and Linkerd
//! add it to the ratio instead, which lets a busy outage exceed the ratio.
//!
//! The window is counted in whole seconds: `ttl` rounded up to seconds, one slot per second.
//! Times are milliseconds from any fixed origin, never decreasing for one budget.

use std::time::Duration;

/// How much retrying a [`RetryBudget`] allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries allowed per request in the window (0.2: one retry per five requests).
    pub ratio: f64,
    /// Retries allowed per second of the window whatever the traffic.
    pub min_per_sec: u32,
    /// How far back requests and retries are counted (rounded up to whole seconds, at least 1).
    pub ttl: Duration,
}

impl Default for RetryBudgetConfig {
    /// 20% of requests, at least 3 per second, over 10 s.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_sec: 3,
            ttl: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    requests: u64,
    retries: u64,
}

/// A sliding window of requests and retries (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    cfg: RetryBudgetConfig,
    slots: Vec<Slot>,
}

impl RetryBudget {
    /// An empty budget.
    pub fn new(cfg: RetryBudgetConfig) -> Self {
        let secs = cfg.ttl.as_millis().div_ceil(1000).max(1);
        let secs = usize::try_from(secs).unwrap_or(3600).min(3600);
        Self {
            cfg,
            slots: vec![
                Slot {
                    second: u64::MAX,
                    ..Slot::default()
                };
                secs
            ],
        }
    }

    /// The configuration.
    pub fn config(&self) -> RetryBudgetConfig {
        self.cfg
    }

    fn slot(&mut self, now_ms: u64) -> &mut Slot {
        let second = now_ms / 1000;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(second % len) as usize];
        if slot.second != second {
            *slot = Slot {
                second,
                requests: 0,
                retries: 0,
            };
        }
        slot
    }

    /// `(requests, retries)` in the window that ends at `now_ms`.
    pub fn window(&self, now_ms: u64) -> (u64, u64) {
        let second = now_ms / 1000;
        let len = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(|s| s.second != u64::MAX && s.second <= second && second - s.second < len)
            .fold((0, 0), |(q, r), s| (q + s.requests, r + s.retries))
    }

    /// How many retries the window that ends at `now_ms` allows in all.
    pub fn allowed(&self, now_ms: u64) -> f64 {
        let (requests, _) = self.window(now_ms);
        let floor = f64::from(self.cfg.min_per_sec) * self.slots.len() as f64;
        (self.cfg.ratio.max(0.0) * requests as f64).max(floor)
    }

    /// Counts a request (a first attempt) at `now_ms`.
    pub fn deposit(&mut self, now_ms: u64) {
        self.slot(now_ms).requests += 1;
    }

    /// Spends one retry at `now_ms` if the budget allows it; `false` (and nothing spent) when
    /// it is exhausted.
    pub fn try_withdraw(&mut self, now_ms: u64) -> bool {
        let (_, retries) = self.window(now_ms);
        if (retries + 1) as f64 <= self.allowed(now_ms) {
            self.slot(now_ms).retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Event {
        Request(u64),
        Retry(u64),
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        prop::collection::vec(
            prop_oneof![
                (0u64..400).prop_map(Event::Request),
                (0u64..400).prop_map(Event::Retry)
            ],
            1..400,
        )
    }

    proptest! {
        #[test]
        fn matches_a_log_of_every_event(ratio in 0.0f64..1.0, min in 0u32..5, ttl_s in 1u64..5, events in events()) {
            let cfg = RetryBudgetConfig { ratio, min_per_sec: min, ttl: Duration::from_secs(ttl_s) };
            let mut budget = RetryBudget::new(cfg);
            let mut now = 0u64;
            let mut log: Vec<(u64, bool)> = Vec::new(); // (second, is_retry)
            for e in events {
                let (gap, retry) = match e { Event::Request(g) => (g, false), Event::Retry(g) => (g, true) };
                now += gap;
                let second = now / 1000;
                let in_window = |log: &Vec<(u64, bool)>, retry: bool| {
                    log.iter().filter(|(s, r)| *r == retry && second - s < ttl_s).count() as f64
                };
                let allowed = (ratio * in_window(&log, false)).max(f64::from(min) * ttl_s as f64);
                if retry {
                    let expected = in_window(&log, true) + 1.0 <= allowed;
                    prop_assert_eq!(budget.try_withdraw(now), expected);
                    if expected {
                        log.push((second, true));
                    }
                } else {
                    budget.deposit(now);
                    log.push((second, false));
                }
            }
        }

        #[test]
        fn an_outage_costs_at_most_the_ratio(requests in 100u64..2_000, ratio in 0.05f64..0.5, tries in 1u32..4) {
            // Every attempt fails and each request wants `tries` retries, all within one window.
            let cfg = RetryBudgetConfig { ratio, min_per_sec: 3, ttl: Duration::from_secs(10) };
            let mut budget = RetryBudget::new(cfg);
            let mut retries = 0u64;
            for i in 0..requests {
                let now = i * 9_000 / requests;
                budget.deposit(now);
                for _ in 0..tries {
                    if budget.try_withdraw(now) {
                        retries += 1;
                    }
                }
            }
            let bound = (ratio * requests as f64).max(30.0);
            prop_assert!(retries as f64 <= bound, "{} retries for {} requests", retries, requests);
        }
    }

    #[test]
    fn the_floor_allows_a_few_retries_without_traffic() {
        let mut b = RetryBudget::new(RetryBudgetConfig {
            ratio: 0.2,
            min_per_sec: 1,
            ttl: Duration::from_secs(2),
        });
        assert!(b.try_withdraw(0));
        assert!(b.try_withdraw(10));
        assert!(!b.try_withdraw(20));
        // Two seconds later the window is empty again.
        assert!(b.try_withdraw(2_500));
    }
}
