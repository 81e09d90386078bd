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

pub mod api;
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
    /// No route of that name.
    #[error("gateway: no route named {0:?} (a route's name, or its host and path prefix)")]
    UnknownRoute(String),
    /// The route has no blue/green section.
    #[error("gateway: route {0:?} is not blue/green (it has no blue_green section)")]
    NotBlueGreen(String),
    /// The side asked for is already active.
    #[error("gateway: {side} is already the active side of route {route:?}")]
    AlreadyActive {
        /// The route.
        route: String,
        /// The side.
        side: &'static str,
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
    clock: Clock,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Serialises reloads (a reload reads the current table and replaces it).
    reloading: Arc<tokio::sync::Mutex<()>>,
    /// What the file watcher last saw.
    watched: Arc<parking_lot::Mutex<WatchState>>,
}

/// What the file watcher has done (see [`Gateway::watch_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchState {
    /// Versions of the file applied since the start (the first one included).
    pub applied: u64,
    /// Why the last changed version did not load, until one loads.
    pub last_error: Option<String>,
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
        let gateway = Gateway {
            shared: Arc::new(Shared {
                table: ArcSwap::from_pointee(RouteTable::default()),
            }),
            addr,
            clock: Clock::new(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            watched: Arc::new(parking_lot::Mutex::new(WatchState::default())),
        };
        gateway.reload(config).await?;
        tasks.spawn(server::serve(listener, gateway.shared.clone(), shutdown));
        Ok(gateway)
    }

    /// Applies a new version of the gateway file without dropping connections: pools whose
    /// settings are unchanged but for their instances keep their state (instances that stay
    /// keep their health, latency and ejections) and their keep-alive connections; other pools
    /// are built anew (and the checks of those that went stop); routes and tiers are replaced
    /// at once, and requests in flight finish on the version they started with. A canary whose
    /// settings and pool are unchanged keeps its verdict.
    pub async fn reload(&self, config: GatewayConfig) -> Result<(), GatewayError> {
        config.validate()?;
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.shared.table.load_full();
        let mut pools: HashMap<String, Arc<Pool>> = HashMap::new();
        let mut started: Vec<Arc<Pool>> = Vec::new();
        for (name, cfg) in &config.pools {
            match old.pools.get(name) {
                Some(pool) if pool.same_but_instances(cfg) => {
                    if pool.declared() != cfg.instances {
                        pool.declare(&cfg.instances).await?;
                    }
                    pools.insert(name.clone(), pool.clone());
                }
                _ => {
                    let resolved = pool::dns::resolve(&cfg.instances).await;
                    let pool = Pool::new(
                        name,
                        cfg.clone(),
                        &resolved,
                        self.clock,
                        self.shutdown.child_token(),
                    )?;
                    started.push(pool.clone());
                    pools.insert(name.clone(), pool);
                }
            }
        }
        let table = RouteTable::new(&config, pools, self.clock, Some(&old));
        self.shared.table.store(Arc::new(table));
        let current = self.shared.table.load();
        for (name, pool) in &old.pools {
            if !current
                .pools
                .get(name)
                .is_some_and(|p| Arc::ptr_eq(p, pool))
            {
                pool.stop.cancel();
            }
        }
        for pool in started {
            self.tasks
                .spawn(health::run(pool.clone(), self.shutdown.clone()));
            if pool.config.dynamic_weights {
                self.tasks
                    .spawn(pool::dynamic::run(pool.clone(), self.shutdown.clone()));
            }
            self.tasks
                .spawn(pool::dns::run(pool, self.shutdown.clone()));
        }
        let mut watched = self.watched.lock();
        watched.applied += 1;
        watched.last_error = None;
        Ok(())
    }

    /// What the file watcher has done: versions applied, and the last error.
    pub fn watch_state(&self) -> WatchState {
        self.watched.lock().clone()
    }

    /// Watches the gateway file at `path` (every `interval`, by content) and reloads it when it
    /// changes, until shutdown; a version that does not load is logged and counted, and the
    /// running one stays.
    pub fn watch(&self, path: std::path::PathBuf, interval: std::time::Duration) {
        let gateway = self.clone();
        self.tasks.spawn(async move {
            let mut last = std::fs::read(&path).ok().map(|b| blake3::hash(&b));
            loop {
                tokio::select! {
                    _ = gateway.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                let Ok(bytes) = tokio::fs::read(&path).await else {
                    continue;
                };
                let hash = blake3::hash(&bytes);
                if last == Some(hash) {
                    continue;
                }
                last = Some(hash);
                let result = match std::str::from_utf8(&bytes) {
                    Ok(text) => match GatewayConfig::from_toml(text) {
                        Ok(config) => gateway.reload(config).await,
                        Err(e) => Err(e.into()),
                    },
                    Err(_) => Err(GatewayError::Config("the gateway file is not UTF-8".into())),
                };
                match result {
                    Ok(()) => {
                        ::metrics::counter!(crate::metrics::RELOADS_TOTAL, "result" => "ok").increment(1);
                        tracing::info!(file = %path.display(), "gateway: file reloaded");
                    }
                    Err(e) => {
                        gateway.watched.lock().last_error = Some(e.to_string());
                        ::metrics::counter!(crate::metrics::RELOADS_TOTAL, "result" => "error").increment(1);
                        tracing::error!(file = %path.display(), error = %e, "gateway: the new file does not load; the running version stays");
                    }
                }
            }
        });
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn pool(&self, name: &str) -> Result<Arc<Pool>, GatewayError> {
        self.shared
            .table
            .load()
            .pools
            .get(name)
            .cloned()
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

    /// Replaces the instances of pool `name` (names are resolved); those that stay keep their
    /// state (health, latency, ejections). A reload that changes the pool's instances in the
    /// file sets them as the file says.
    pub async fn set_instances(
        &self,
        name: &str,
        instances: &[InstanceSpec],
    ) -> Result<(), GatewayError> {
        let pool = self.pool(name)?;
        let mut check = pool.config.clone();
        check.instances = instances.to_vec();
        check.validate(&format!("pools.{name}"))?;
        pool.declare(instances).await
    }

    /// Every pool with its instances, by name.
    pub fn pools(&self) -> Vec<api::PoolView> {
        let table = self.shared.table.load();
        let mut pools: Vec<api::PoolView> = table
            .pools
            .iter()
            .map(|(name, pool)| api::PoolView {
                name: name.clone(),
                algorithm: pool.config.algorithm.as_str().to_owned(),
                in_flight: pool.admission.in_flight(),
                instances: pool.status(),
            })
            .collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools
    }

    /// Every route's canary.
    pub fn canaries(&self) -> Vec<api::CanaryView> {
        let table = self.shared.table.load();
        table.routes().iter().filter_map(canary_view).collect()
    }

    /// The canary of route `label` (its `name`, or host + path prefix); `None` when there is
    /// no such route or it has no canary.
    pub fn canary(&self, label: &str) -> Option<api::CanaryView> {
        canary_view(self.shared.table.load().by_label(label)?)
    }

    /// Whether the canary of route `label` (its `name`, or host + path prefix) has been rolled
    /// back; `None` when there is no such route or it has no canary.
    pub fn canary_rolled_back(&self, label: &str) -> Option<bool> {
        let table = self.shared.table.load();
        let route = table.by_label(label)?;
        route.canary.as_ref().map(|c| c.is_rolled_back())
    }

    /// Every blue/green route.
    pub fn blue_greens(&self) -> Vec<api::BlueGreenView> {
        let table = self.shared.table.load();
        table.routes().iter().filter_map(blue_green_view).collect()
    }

    /// The blue/green state of route `label`; `None` when there is no such route or it is not
    /// blue/green.
    pub fn blue_green(&self, label: &str) -> Option<api::BlueGreenView> {
        blue_green_view(self.shared.table.load().by_label(label)?)
    }

    /// Switches blue/green route `label` to `to`: new requests go there at once (those in
    /// flight finish where they are), and the check of the switch begins.
    pub async fn switch(
        &self,
        label: &str,
        to: config::Side,
    ) -> Result<api::BlueGreenView, GatewayError> {
        // Not during a reload: the switch would be made on a state the reload may replace.
        let _one_at_a_time = self.reloading.lock().await;
        let table = self.shared.table.load();
        let route = table
            .by_label(label)
            .ok_or_else(|| GatewayError::UnknownRoute(label.to_owned()))?;
        let bg = route
            .blue_green
            .as_ref()
            .ok_or_else(|| GatewayError::NotBlueGreen(label.to_owned()))?;
        bg.state.switch(&route.label, to, "admin").map_err(
            |proxy::blue_green::SwitchRefused::AlreadyActive(side)| GatewayError::AlreadyActive {
                route: label.to_owned(),
                side: side.as_str(),
            },
        )?;
        blue_green_view(route).ok_or_else(|| GatewayError::NotBlueGreen(label.to_owned()))
    }
}

fn canary_view(r: &proxy::routes::Route) -> Option<api::CanaryView> {
    let c = r.canary.as_ref()?;
    let state = c.state();
    Some(api::CanaryView {
        route: r.label.clone(),
        pool: c.pool.name.clone(),
        rolled_back: c.is_rolled_back(),
        state: state.state.to_owned(),
        percent: state.percent,
        step: state.step.map(|s| s as u32),
        steps: state.steps,
        checks_passed: state.checks_passed,
        promote_after: state.promote_after,
        last_verdict: state.last_verdict.map(Into::into),
    })
}

fn blue_green_view(r: &proxy::routes::Route) -> Option<api::BlueGreenView> {
    let bg = r.blue_green.as_ref()?;
    let state = bg.state.state();
    Some(api::BlueGreenView {
        route: r.label.clone(),
        blue: bg.pools[0].name.clone(),
        green: bg.pools[1].name.clone(),
        active: state.active,
        active_pool: bg.pool(state.active).name.clone(),
        file_active: state.file_active,
        check: state.check.map(|c| api::SwitchCheckView {
            from: c.from,
            to: c.to,
            trigger: c.trigger.to_owned(),
            started_at: c.started_at,
            candidate: c.candidate.into(),
            baseline: c.baseline.into(),
        }),
        switches: state.switches,
        last_verdict: state.last_verdict.map(Into::into),
    })
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
    gateway.watch(path.clone(), settings.reload_interval);
    tracing::info!(addr = %gateway.local_addr(), "gateway listening");
    shutdown.cancelled().await;
    tasks.close();
    tasks.wait().await;
    Ok(())
}
