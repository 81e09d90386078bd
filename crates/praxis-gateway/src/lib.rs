//! praxis-gateway: a reverse proxy in front of N `praxis serve` processes or any HTTP upstream.
//!
//! Requests are routed by host and path prefix to upstream pools defined in a gateway file
//! ([`config`]). Each pool chooses an instance with its algorithm (round robin, smooth
//! weighted round robin, least connections, power of two choices on peak EWMA with errors
//! counted as slow, or consistent hashing with bounded load: the pickers of
//! [`praxis_kit::balance`]), keeps HTTP/1.1 (or h2c) connections alive, checks its instances
//! actively ([`health`]) and ejects outliers passively ([`praxis_kit::outlier`]), retries
//! failed idempotent requests within a retry budget ([`praxis_kit::retry_budget`]), sheds load
//! at its concurrency limit with 503 and `Retry-After` while keeping a reserve for premium
//! traffic, forwards `traceparent` (starting one when absent) and `X-Forwarded-For`, and
//! records RED metrics per route and upstream ([`metrics`]).
//!
//! [`Gateway::start`] runs it from a parsed gateway file on any tokio runtime; [`run`] from
//! the `[gateway]` section until a cancellation; [`GatewaySystem`] plugs it into the binary
//! (`praxis serve --only gateway`).

pub mod config;
pub mod health;
pub mod metrics;
pub mod pool;
pub mod proxy;
pub mod server;
pub mod settings;
mod system;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use praxis_infra::MigrationSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ConfigError, GatewayConfig, InstanceSpec};
pub use pool::InstanceStatus;
pub use settings::GatewaySettings;
pub use system::GatewaySystem;

use pool::{Clock, Pool};
use proxy::Shared;
use proxy::routes::RouteTable;
use proxy::tier::Tiers;

/// The gateway keeps no tables.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "gateway",
    migrations: &[],
};

/// Why the gateway cannot start or a change is refused.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway file or a change to it is wrong.
    #[error("gateway configuration: {0}")]
    Config(String),
    /// The listen address cannot be bound.
    #[error("gateway: cannot listen on {addr}: {source}; pick a free port ([gateway] listen)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No pool of that name.
    #[error("gateway: no pool named {0:?}")]
    UnknownPool(String),
    /// No instance at that address in the pool.
    #[error("gateway: pool {pool:?} has no instance {addr:?}")]
    UnknownInstance {
        /// The pool.
        pool: String,
        /// The address asked for.
        addr: String,
    },
}

impl From<ConfigError> for GatewayError {
    fn from(e: ConfigError) -> Self {
        GatewayError::Config(e.to_string())
    }
}

/// A running gateway. Cheap to clone; it stops with the cancellation token it was started
/// with.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Gateway {
    /// Checks `config`, binds `listen` (port 0 picks a free one) and serves it on `tasks` until
    /// `shutdown`, with one health-check task per pool.
    pub async fn start(
        config: GatewayConfig,
        listen: SocketAddr,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let clock = Clock::new();
        let mut pools = HashMap::new();
        for (name, pool) in &config.pools {
            pools.insert(name.clone(), Pool::new(name, pool.clone(), clock)?);
        }
        let table = RouteTable::new(&config.routes, &pools, clock);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| GatewayError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Listen {
                addr: listen,
                source,
            })?;
        for pool in pools.values() {
            tasks.spawn(health::run(pool.clone(), shutdown.clone()));
        }
        let shared = Arc::new(Shared {
            table: ArcSwap::from_pointee(table),
            tiers: Tiers::new(&config.tiers),
            pools,
        });
        tasks.spawn(server::serve(listener, shared.clone(), shutdown));
        Ok(Gateway { shared, addr })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn pool(&self, name: &str) -> Result<&Arc<Pool>, GatewayError> {
        self.shared
            .pools
            .get(name)
            .ok_or_else(|| GatewayError::UnknownPool(name.to_owned()))
    }

    /// What it knows of each instance of pool `name`.
    pub fn pool_status(&self, name: &str) -> Result<Vec<InstanceStatus>, GatewayError> {
        Ok(self.pool(name)?.status())
    }

    /// Sets the weight of instance `addr` of pool `name` (for `weighted` pools: the next
    /// `sum(weights)` picks follow the new weights).
    pub fn set_weight(&self, name: &str, addr: &str, weight: u32) -> Result<(), GatewayError> {
        self.pool(name)?.set_weight(addr, weight)
    }

    /// Replaces the instances of pool `name`; those that stay keep their state (health,
    /// latency, ejections).
    pub fn set_instances(
        &self,
        name: &str,
        instances: &[InstanceSpec],
    ) -> Result<(), GatewayError> {
        let pool = self.pool(name)?;
        let mut check = pool.config.clone();
        check.instances = instances.to_vec();
        check.validate(&format!("pools.{name}"))?;
        pool.set_instances(instances)
    }
}

impl Gateway {
    /// Whether the canary of route `label` (its `name`, or host + path prefix) has been rolled
    /// back; `None` when there is no such route or it has no canary.
    pub fn canary_rolled_back(&self, label: &str) -> Option<bool> {
        let table = self.shared.table.load();
        let route = table.by_label(label)?;
        route.canary.as_ref().map(|c| c.is_rolled_back())
    }
}

/// Runs the gateway of the `[gateway]` section until `shutdown`, then waits for its tasks (a
/// standalone gateway process: `praxis serve --only gateway` does the same through
/// [`GatewaySystem`]).
pub async fn run(
    settings: GatewaySettings,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let path = settings.routes.as_ref().ok_or_else(|| {
        GatewayError::Config("gateway.routes: name the gateway file (pools and routes)".into())
    })?;
    let config = GatewayConfig::load(path)?;
    let tasks = TaskTracker::new();
    let gateway = Gateway::start(config, settings.listen, shutdown.clone(), &tasks).await?;
    tracing::info!(addr = %gateway.local_addr(), "gateway listening");
    shutdown.cancelled().await;
    tasks.close();
    tasks.wait().await;
    Ok(())
}
