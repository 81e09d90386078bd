//! A pool's section of the gateway file.

use std::time::Duration;

use praxis_kit::outlier::OutlierConfig;
use praxis_kit::retry_budget::RetryBudgetConfig;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How a pool chooses an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// nginx's smooth weighted round robin on the instances' weights.
    Weighted,
    /// The instance with the fewest requests in flight.
    LeastConnections,
    /// Power of two choices on peak EWMA of latency, errors counted as `error_penalty`.
    P2cEwma,
    /// Consistent hashing of `hash_key` with bounded load.
    RingHash,
}

impl Algorithm {
    /// Its name in the file (a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::Weighted => "weighted",
            Algorithm::LeastConnections => "least_connections",
            Algorithm::P2cEwma => "p2c_ewma",
            Algorithm::RingHash => "ring_hash",
        }
    }
}

/// What a ring-hash pool hashes: `header:NAME`, `cookie:NAME` or `path:N` (the N-th path
/// segment, from 0: `/users/42/feed` has `users` at 0 and `42` at 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A request header's value.
    Header(String),
    /// A cookie's value.
    Cookie(String),
    /// A path segment.
    PathSegment(usize),
}

impl std::str::FromStr for HashKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not a hash key (expected header:NAME, cookie:NAME or path:N)");
        let (kind, arg) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "header" if !arg.is_empty() => Ok(HashKey::Header(arg.to_ascii_lowercase())),
            "cookie" if !arg.is_empty() => Ok(HashKey::Cookie(arg.to_owned())),
            "path" => arg.parse().map(HashKey::PathSegment).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashKey::Header(h) => write!(f, "header:{h}"),
            HashKey::Cookie(c) => write!(f, "cookie:{c}"),
            HashKey::PathSegment(n) => write!(f, "path:{n}"),
        }
    }
}

/// One upstream instance: `"host:port"`, or `{ addr = "host:port", weight = 3 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InstanceSpec {
    /// An address with weight 1.
    Addr(String),
    /// An address and its weight (for `weighted`; 0 takes it out of rotation).
    Weighted {
        /// `host:port`.
        addr: String,
        /// Its share of a weighted pool.
        weight: u32,
    },
}

impl InstanceSpec {
    /// Its address.
    pub fn addr(&self) -> &str {
        match self {
            InstanceSpec::Addr(a) | InstanceSpec::Weighted { addr: a, .. } => a,
        }
    }

    /// Its weight.
    pub fn weight(&self) -> u32 {
        match self {
            InstanceSpec::Addr(_) => 1,
            InstanceSpec::Weighted { weight, .. } => *weight,
        }
    }
}

/// Whether `addr` is `host:port` with a port and a host the client can dial.
fn check_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port (e.g. 127.0.0.1:9001)"))?;
    port.parse::<u16>()
        .map_err(|_| format!("{addr:?} has no valid port (e.g. 127.0.0.1:9001)"))?;
    let ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{addr:?} has no valid host (a name or an IP address)"
        ))
    }
}

/// How an instance's readiness is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    /// No active check: instances are always up (outlier detection still ejects).
    None,
    /// A TCP connection opens.
    #[default]
    Tcp,
    /// `GET path` answers 2xx.
    Http,
}

/// Active health checks of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `none`, `tcp` (default) or `http`.
    pub check: HealthCheck,
    /// The path an `http` check gets.
    pub path: String,
    /// Time between two checks of an instance.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub interval: Duration,
    /// How long a check may take.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub timeout: Duration,
    /// Passed checks in a row that bring a down instance up.
    pub healthy_threshold: u32,
    /// Failed checks in a row that take an up instance down.
    pub unhealthy_threshold: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check: HealthCheck::Tcp,
            path: "/readyz".to_owned(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

/// Passive outlier detection of a pool (see [`praxis_kit::outlier`]); a threshold of 0 turns
/// its rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierSettings {
    /// Server errors in a row that eject.
    pub consecutive_5xx: u32,
    /// Gateway errors (refused, reset, timed out, 502, 503, 504) in a row that eject.
    pub consecutive_gateway_errors: u32,
    /// Eject when mean latency exceeds this many times the median of the others (0: off).
    pub latency_factor: f64,
    /// ...and the median by at least this much.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub latency_min_gap: Duration,
    /// Successful responses before an instance's latency is judged.
    pub latency_min_samples: u32,
    /// The first ejection's length; the k-th lasts k times as long.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub base_ejection: Duration,
    /// The longest ejection.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub max_ejection: Duration,
    /// The largest share of the pool out at once, in percent (at least one instance).
    pub max_ejection_percent: u8,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        let k = OutlierConfig::default();
        Self {
            consecutive_5xx: k.consecutive_5xx,
            consecutive_gateway_errors: k.consecutive_gateway_errors,
            latency_factor: k.latency_factor,
            latency_min_gap: Duration::from_millis(k.latency_min_gap_ms as u64),
            latency_min_samples: k.latency_min_samples,
            base_ejection: Duration::from_millis(k.base_ejection_ms),
            max_ejection: Duration::from_millis(k.max_ejection_ms),
            max_ejection_percent: k.max_ejection_percent,
        }
    }
}

impl OutlierSettings {
    /// The kit's configuration.
    pub fn to_kit(&self) -> OutlierConfig {
        OutlierConfig {
            consecutive_5xx: self.consecutive_5xx,
            consecutive_gateway_errors: self.consecutive_gateway_errors,
            latency_factor: self.latency_factor,
            latency_min_gap_ms: self.latency_min_gap.as_secs_f64() * 1000.0,
            latency_min_samples: self.latency_min_samples,
            base_ejection_ms: self.base_ejection.as_millis() as u64,
            max_ejection_ms: self.max_ejection.as_millis() as u64,
            max_ejection_percent: self.max_ejection_percent,
        }
    }
}

/// A circuit breaker per instance (see [`praxis_kit::breaker`]): `failures` failed requests
/// in a row (5xx or no answer) open it; while open the gateway sends nothing to the instance;
/// after `open_for` one probe goes, and its failure opens it again for twice as long (up to
/// `max_open`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Failures in a row that open it.
    pub failures: u32,
    /// The first open period.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub open_for: Duration,
    /// The longest open period.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub max_open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        let k = praxis_kit::breaker::BreakerConfig::default();
        Self {
            failures: k.failure_threshold,
            open_for: Duration::from_millis(k.open_for_ms),
            max_open: Duration::from_millis(k.max_open_ms),
        }
    }
}

impl BreakerSettings {
    /// The kit's configuration.
    pub fn to_kit(&self) -> praxis_kit::breaker::BreakerConfig {
        praxis_kit::breaker::BreakerConfig {
            failure_threshold: self.failures,
            open_for_ms: self.open_for.as_millis() as u64,
            max_open_ms: self.max_open.as_millis() as u64,
        }
    }
}

/// A pool's retry budget (see [`praxis_kit::retry_budget`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetSettings {
    /// Retries per request in the window.
    pub ratio: f64,
    /// Retries per second allowed whatever the traffic.
    pub min_per_sec: u32,
    /// The window.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub ttl: Duration,
}

impl Default for RetryBudgetSettings {
    fn default() -> Self {
        let k = RetryBudgetConfig::default();
        Self {
            ratio: k.ratio,
            min_per_sec: k.min_per_sec,
            ttl: k.ttl,
        }
    }
}

impl RetryBudgetSettings {
    /// The kit's configuration.
    pub fn to_kit(&self) -> RetryBudgetConfig {
        RetryBudgetConfig {
            ratio: self.ratio,
            min_per_sec: self.min_per_sec,
            ttl: self.ttl,
        }
    }
}

/// A pool of upstream instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Its instances (at least one).
    pub instances: Vec<InstanceSpec>,
    /// How it chooses one.
    pub algorithm: Algorithm,
    /// What `ring_hash` hashes (required for it); requests without the key are spread at
    /// random.
    #[serde(with = "praxis_kit::text::serde_with::option_display")]
    pub hash_key: Option<HashKey>,
    /// `ring_hash`: an instance takes at most this many times the mean load before its keys
    /// spill to the next instance (at least 1).
    pub hash_balance_factor: f64,
    /// `ring_hash`: points per instance on the ring.
    pub hash_vnodes: u32,
    /// `weighted`: derive the weights from live latency and in-flight counts (each instance's
    /// declared weight scaled by how cheap it is now), every `weight_interval`.
    pub dynamic_weights: bool,
    /// How often dynamic weights are derived again.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub weight_interval: Duration,
    /// `p2c_ewma` (and dynamic weights): the time constant of the latency average.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub ewma_decay: Duration,
    /// `p2c_ewma`: the latency an error counts as (so fast failures do not attract traffic).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub error_penalty: Duration,
    /// Requests in flight to the pool at most; more are shed with 503 (0: no limit).
    pub max_concurrency: u32,
    /// Share of `max_concurrency` (0 to 1) that only premium requests may use.
    pub premium_reserve: f64,
    /// How long opening a connection may take.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub connect_timeout: Duration,
    /// Connections kept idle per instance.
    pub max_idle_per_instance: usize,
    /// Speak HTTP/2 (prior knowledge, h2c) to the instances instead of HTTP/1.1.
    pub http2: bool,
    /// How often instances written as names are resolved again (each address is an instance).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub resolve_interval: Duration,
    /// Retries after the first attempt at most, for requests that may be retried.
    pub max_retries: u32,
    /// The pool's retry budget.
    pub retry_budget: RetryBudgetSettings,
    /// Active health checks.
    pub health: HealthConfig,
    /// Passive outlier detection.
    pub outlier: OutlierSettings,
    /// A circuit breaker per instance; unset: none (outlier detection still ejects).
    pub breaker: Option<BreakerSettings>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            algorithm: Algorithm::RoundRobin,
            hash_key: None,
            hash_balance_factor: 1.25,
            hash_vnodes: 128,
            dynamic_weights: false,
            weight_interval: Duration::from_secs(1),
            ewma_decay: Duration::from_secs(10),
            error_penalty: Duration::from_secs(1),
            max_concurrency: 0,
            premium_reserve: 0.0,
            connect_timeout: Duration::from_secs(1),
            max_idle_per_instance: 64,
            http2: false,
            resolve_interval: Duration::from_secs(5),
            max_retries: 2,
            retry_budget: RetryBudgetSettings::default(),
            health: HealthConfig::default(),
            outlier: OutlierSettings::default(),
            breaker: None,
        }
    }
}

impl PoolConfig {
    /// Checks the pool; errors are prefixed with `at` (`pools.api`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let err = |field: &str, msg: String| Err(ConfigError::new(format!("{at}.{field}"), msg));
        if self.instances.is_empty() {
            return err(
                "instances",
                "a pool needs at least one instance (host:port)".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, inst) in self.instances.iter().enumerate() {
            if let Err(m) = check_addr(inst.addr()) {
                return err(&format!("instances[{i}]"), m);
            }
            if !seen.insert(inst.addr()) {
                return err(
                    &format!("instances[{i}]"),
                    format!("{} appears twice", inst.addr()),
                );
            }
        }
        if self.algorithm == Algorithm::RingHash && self.hash_key.is_none() {
            return err(
                "hash_key",
                "ring_hash needs a key: header:NAME, cookie:NAME or path:N".into(),
            );
        }
        if !(1..=praxis_kit::ring::MAX_VNODES).contains(&self.hash_vnodes) {
            return err(
                "hash_vnodes",
                format!("must be 1 to {}", praxis_kit::ring::MAX_VNODES),
            );
        }
        if self.hash_balance_factor.is_nan() || self.hash_balance_factor < 1.0 {
            return err(
                "hash_balance_factor",
                "must be at least 1 (1.25 is usual)".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.premium_reserve) {
            return err(
                "premium_reserve",
                "must be a share from 0 to 1 (e.g. 0.2)".into(),
            );
        }
        if self.ewma_decay.is_zero() {
            return err("ewma_decay", "must be longer than zero (e.g. 10s)".into());
        }
        if self.dynamic_weights && self.algorithm != Algorithm::Weighted {
            return err("dynamic_weights", "needs algorithm = \"weighted\"".into());
        }
        if self.weight_interval.is_zero() {
            return err(
                "weight_interval",
                "must be longer than zero (e.g. 1s)".into(),
            );
        }
        if self.resolve_interval.is_zero() {
            return err(
                "resolve_interval",
                "must be longer than zero (e.g. 5s)".into(),
            );
        }
        if self.connect_timeout.is_zero() {
            return err(
                "connect_timeout",
                "must be longer than zero (e.g. 1s)".into(),
            );
        }
        if self.retry_budget.ratio.is_nan() || self.retry_budget.ratio < 0.0 {
            return err(
                "retry_budget.ratio",
                "must be 0 or more (0.2: one retry per five requests)".into(),
            );
        }
        if self.retry_budget.ttl < Duration::from_secs(1) {
            return err("retry_budget.ttl", "must be at least 1s (e.g. 10s)".into());
        }
        let h = &self.health;
        if h.check != HealthCheck::None {
            if h.interval.is_zero() || h.timeout.is_zero() {
                return err(
                    "health.interval",
                    "interval and timeout must be longer than zero".into(),
                );
            }
            if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
                return err(
                    "health.healthy_threshold",
                    "thresholds must be at least 1".into(),
                );
            }
            if h.check == HealthCheck::Http && !h.path.starts_with('/') {
                return err("health.path", format!("{:?} must start with /", h.path));
            }
        }
        if let Some(b) = &self.breaker
            && (b.failures == 0 || b.open_for.is_zero() || b.max_open < b.open_for)
        {
            return err(
                "breaker",
                "failures must be at least 1, open_for above zero and at most max_open".into(),
            );
        }
        let o = &self.outlier;
        if o.max_ejection_percent > 100 {
            return err("outlier.max_ejection_percent", "must be 0 to 100".into());
        }
        if o.base_ejection.is_zero() || o.max_ejection < o.base_ejection {
            return err(
                "outlier.base_ejection",
                "must be above zero and at most outlier.max_ejection".into(),
            );
        }
        if o.latency_factor.is_nan() || o.latency_factor < 0.0 {
            return err(
                "outlier.latency_factor",
                "must be 0 (off) or more (e.g. 3)".into(),
            );
        }
        Ok(())
    }
}
