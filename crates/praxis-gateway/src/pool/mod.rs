//! An upstream pool: its instances, how it chooses one, what it learns from each response
//! (latency, errors, ejections), its retry budget, its concurrency limit and its HTTP client.

pub mod admission;
pub mod dns;
pub mod dynamic;
pub mod instance;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use praxis_kit::balance::{
    HashRing, RoundRobin, SmoothWeighted, least_loaded, p2c, weights_from_costs,
};
use praxis_kit::outlier::{Ejection, Outcome, OutlierDetector};
use praxis_kit::retry_budget::RetryBudget;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::GatewayError;
use crate::config::{Algorithm, InstanceSpec, PoolConfig};
pub use admission::{Admission, Slot, Tier};
pub use instance::{InFlight, Instance};

/// The gateway's monotonic clock: milliseconds and nanoseconds since it started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock that starts now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

enum Picker {
    RoundRobin(RoundRobin),
    Weighted(SmoothWeighted),
    Least(usize),
    P2c,
    RingHash,
}

/// A pool's instances and the state that is indexed by them; replaced as a whole when the
/// instance list changes.
pub struct Members {
    /// The instances, in the file's order.
    pub instances: Vec<Arc<Instance>>,
    picker: Mutex<Picker>,
    outlier: Mutex<OutlierDetector>,
    ring: Option<HashRing>,
}

/// What the gateway knows of one instance (for status pages and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = GatewayInstance)]
pub struct InstanceStatus {
    /// `host:port`.
    pub addr: String,
    /// Whether the active checks say it is up.
    pub up: bool,
    /// Whether outlier detection has it out.
    pub ejected: bool,
    /// Requests in flight to it.
    pub in_flight: u32,
    /// Its weight as declared (or set).
    pub weight: u32,
    /// The weight the picker uses now (differs from `weight` with dynamic weights).
    pub effective_weight: u32,
    /// Its circuit breaker's state (`closed`, `open`, `half_open`), when the pool has one.
    pub breaker: Option<String>,
}

/// An upstream pool.
pub struct Pool {
    /// Its name in the gateway file.
    pub name: String,
    /// Its section of the gateway file.
    pub config: PoolConfig,
    members: ArcSwap<Members>,
    /// Its concurrency limit.
    pub admission: Admission,
    budget: Mutex<RetryBudget>,
    /// The keep-alive client to its instances.
    pub client: Client<HttpConnector, Body>,
    clock: Clock,
    /// Cancelled when the pool is dropped from the gateway (a reload): stops its checks.
    pub stop: CancellationToken,
    /// The instances as the file wrote them (names unresolved).
    declared: Mutex<Vec<InstanceSpec>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("algorithm", &self.config.algorithm)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// The pool `name` of `config` (already validated) over `resolved`, its instances with
    /// names resolved ([`dns::resolve`]); `stop` ends its background work.
    pub fn new(
        name: &str,
        config: PoolConfig,
        resolved: &[InstanceSpec],
        clock: Clock,
        stop: CancellationToken,
    ) -> Result<Arc<Pool>, GatewayError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.max_idle_per_instance)
            .http2_only(config.http2)
            .build(http);
        let members = build_members(name, &config, resolved, None, clock)?;
        Ok(Arc::new(Pool {
            name: name.to_owned(),
            admission: Admission::new(config.max_concurrency, config.premium_reserve),
            budget: Mutex::new(RetryBudget::new(config.retry_budget.to_kit())),
            members: ArcSwap::from_pointee(members),
            client,
            clock,
            declared: Mutex::new(config.instances.clone()),
            config,
            stop,
        }))
    }

    /// The current instances and their state.
    pub fn members(&self) -> Arc<Members> {
        self.members.load_full()
    }

    /// The instances as declared (names unresolved).
    pub fn declared(&self) -> Vec<InstanceSpec> {
        self.declared.lock().clone()
    }

    /// Declares new instances (names resolved now and then every `resolve_interval`).
    pub async fn declare(&self, declared: &[InstanceSpec]) -> Result<(), GatewayError> {
        let resolved = dns::resolve(declared).await;
        self.set_instances(&resolved)?;
        *self.declared.lock() = declared.to_vec();
        Ok(())
    }

    /// Resolves the declared names again and applies the addresses when they changed; whether
    /// they did.
    pub async fn refresh(&self) -> bool {
        let resolved = dns::resolve(&self.declared()).await;
        let current: Vec<(String, u32)> = self
            .members()
            .instances
            .iter()
            .map(|i| (i.addr.clone(), i.weight()))
            .collect();
        let now: Vec<(String, u32)> = resolved
            .iter()
            .map(|s| (s.addr().to_owned(), s.weight()))
            .collect();
        let addrs = |v: &[(String, u32)]| v.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>();
        if addrs(&current) == addrs(&now) {
            return false;
        }
        self.set_instances(&resolved).is_ok()
    }

    /// Replaces the instance list with these addresses; instances that stay keep their health,
    /// latency, in-flight count and outlier history.
    pub fn set_instances(&self, specs: &[InstanceSpec]) -> Result<(), GatewayError> {
        let old = self.members();
        let members = build_members(&self.name, &self.config, specs, Some(&old), self.clock)?;
        self.members.store(Arc::new(members));
        Ok(())
    }

    /// Sets the weight of the instance at `addr`.
    pub fn set_weight(&self, addr: &str, weight: u32) -> Result<(), GatewayError> {
        let m = self.members();
        let i = m
            .instances
            .iter()
            .position(|inst| inst.addr == addr)
            .ok_or_else(|| GatewayError::UnknownInstance {
                pool: self.name.clone(),
                addr: addr.to_owned(),
            })?;
        m.instances[i].set_weight(weight);
        if let Picker::Weighted(w) = &mut *m.picker.lock() {
            w.set_weight(i, weight);
        }
        Ok(())
    }

    /// Whether `other` differs from this pool's configuration in more than its instances (a
    /// reload then builds a new pool instead of changing this one's instances).
    pub fn same_but_instances(&self, other: &PoolConfig) -> bool {
        let mut a = self.config.clone();
        a.instances = other.instances.clone();
        a == *other
    }

    /// Each instance's state.
    pub fn status(&self) -> Vec<InstanceStatus> {
        let m = self.members();
        let now = self.clock.now_ms();
        let effective: Option<Vec<u32>> = match &*m.picker.lock() {
            Picker::Weighted(w) => Some(w.weights().to_vec()),
            _ => None,
        };
        let outlier = m.outlier.lock();
        m.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| InstanceStatus {
                addr: inst.addr.clone(),
                up: inst.is_up(),
                ejected: outlier.is_ejected(i, now),
                in_flight: inst.in_flight(),
                weight: inst.weight(),
                effective_weight: effective
                    .as_ref()
                    .and_then(|w| w.get(i).copied())
                    .unwrap_or_else(|| inst.weight()),
                breaker: inst.breaker_state().map(|s| s.as_str().to_owned()),
            })
            .collect()
    }

    /// Chooses an instance of `m` for a request with hash `key`, avoiding those `tried`
    /// already when others are eligible. Eligible means up and not ejected; when none is, up
    /// ones are used, and when none is up, every one (a pool never refuses on its own: the
    /// client gets the upstream's own error).
    pub fn pick(&self, m: &Members, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
        let n = m.instances.len();
        let now = self.clock.now_ms();
        let eligible: Vec<bool> = {
            let outlier = m.outlier.lock();
            let good: Vec<bool> = (0..n)
                .map(|i| m.instances[i].is_up() && !outlier.is_ejected(i, now))
                .collect();
            let untried: Vec<bool> = (0..n).map(|i| good[i] && !tried.contains(&i)).collect();
            if untried.iter().any(|&e| e) {
                untried
            } else if good.iter().any(|&e| e) {
                good
            } else if m.instances.iter().any(|i| i.is_up()) {
                m.instances.iter().map(|i| i.is_up()).collect()
            } else {
                vec![true; n]
            }
        };
        let ok = |i: usize| eligible[i];
        let in_flight = |i: usize| u64::from(m.instances[i].in_flight());
        let mut picker = m.picker.lock();
        match &mut *picker {
            Picker::RoundRobin(rr) => rr.pick(n, ok),
            Picker::Weighted(w) => w.pick(ok).or_else(|| (0..n).find(|&i| ok(i))),
            Picker::Least(next) => {
                let start = *next;
                *next = next.wrapping_add(1);
                least_loaded(n, start % n.max(1), ok, in_flight)
            }
            Picker::P2c => {
                let now_ns = self.clock.now_ns();
                p2c(&mut rand::rng(), n, ok, |i| {
                    let inst = &m.instances[i];
                    inst.ewma.lock().load(now_ns, inst.in_flight())
                })
            }
            Picker::RingHash => match (key, &m.ring) {
                (Some(key), Some(ring)) => {
                    ring.pick(key, self.config.hash_balance_factor, ok, in_flight)
                }
                _ => p2c(&mut rand::rng(), n, ok, |i| in_flight(i) as f64),
            },
        }
    }

    /// Records what a request to instance `i` of `m` came to; returns the ejection it causes.
    pub fn report(
        &self,
        m: &Members,
        i: usize,
        outcome: Outcome,
        latency: Duration,
    ) -> Option<Ejection> {
        let inst = m.instances.get(i)?;
        let now_ns = self.clock.now_ns();
        {
            let mut ewma = inst.ewma.lock();
            match outcome {
                Outcome::Success => ewma.observe(latency, now_ns),
                _ => ewma.observe_error(latency, self.config.error_penalty, now_ns),
            }
        }
        let now_ms = self.clock.now_ms();
        m.outlier
            .lock()
            .observe(i, outcome, latency.as_secs_f64() * 1000.0, now_ms)
    }

    /// Tells instance `i`'s latency estimate that a request took at least `latency` (a
    /// cancelled hedge), without counting an outcome.
    pub fn observe_latency(&self, m: &Members, i: usize, latency: Duration) {
        if let Some(inst) = m.instances.get(i) {
            inst.ewma.lock().observe(latency, self.clock.now_ns());
        }
    }

    /// Derives the weights of a `weighted` pool from its instances' current cost (latency
    /// estimate × (in flight + 1)) and declared weights.
    pub fn refresh_weights(&self) {
        let m = self.members();
        let now_ns = self.clock.now_ns();
        let base: Vec<u32> = m.instances.iter().map(|i| i.weight()).collect();
        let costs: Vec<f64> = m
            .instances
            .iter()
            .map(|i| i.ewma.lock().load(now_ns, i.in_flight()))
            .collect();
        let weights = weights_from_costs(&base, &costs, dynamic::RESOLUTION);
        if let Picker::Weighted(w) = &mut *m.picker.lock()
            && w.weights() != weights.as_slice()
        {
            w.set_weights(&weights);
        }
    }

    /// Milliseconds on the gateway's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Counts a request against the retry budget.
    pub fn deposit(&self) {
        self.budget.lock().deposit(self.clock.now_ms());
    }

    /// Spends a retry if the budget allows it.
    pub fn try_retry(&self) -> bool {
        self.budget.lock().try_withdraw(self.clock.now_ms())
    }
}

fn build_members(
    pool: &str,
    config: &PoolConfig,
    specs: &[InstanceSpec],
    old: Option<&Members>,
    clock: Clock,
) -> Result<Members, GatewayError> {
    if specs.is_empty() {
        return Err(GatewayError::Config(format!(
            "pools.{pool}.instances: a pool needs at least one instance"
        )));
    }
    let old_index = |addr: &str| old.and_then(|o| o.instances.iter().position(|i| i.addr == addr));
    let instances: Vec<Arc<Instance>> = specs
        .iter()
        .map(|s| match old_index(s.addr()) {
            Some(k) => {
                let inst = old.map(|o| o.instances[k].clone());
                let inst = inst.unwrap_or_else(|| {
                    Instance::new(
                        s.addr(),
                        s.weight(),
                        config.ewma_decay,
                        config.breaker.as_ref().map(|b| b.to_kit()),
                        clock.now_ns(),
                    )
                });
                inst.set_weight(s.weight());
                inst
            }
            None => Instance::new(
                s.addr(),
                s.weight(),
                config.ewma_decay,
                config.breaker.as_ref().map(|b| b.to_kit()),
                clock.now_ns(),
            ),
        })
        .collect();
    let outlier = match old {
        Some(o) => o
            .outlier
            .lock()
            .remap(instances.len(), |i| old_index(&instances[i].addr)),
        None => OutlierDetector::new(config.outlier.to_kit(), instances.len()),
    };
    let ring = match config.algorithm {
        Algorithm::RingHash => {
            let names: Vec<String> = instances.iter().map(|i| i.ring_name.clone()).collect();
            Some(
                HashRing::new(&names, config.hash_vnodes)
                    .map_err(|e| GatewayError::Config(format!("pools.{pool}.instances: {e}")))?,
            )
        }
        _ => None,
    };
    let picker = match config.algorithm {
        Algorithm::RoundRobin => Picker::RoundRobin(RoundRobin::new()),
        Algorithm::Weighted => Picker::Weighted(SmoothWeighted::new(
            instances.iter().map(|i| i.weight()).collect(),
        )),
        Algorithm::LeastConnections => Picker::Least(0),
        Algorithm::P2cEwma => Picker::P2c,
        Algorithm::RingHash => Picker::RingHash,
    };
    Ok(Members {
        instances,
        picker: Mutex::new(picker),
        outlier: Mutex::new(outlier),
        ring,
    })
}
