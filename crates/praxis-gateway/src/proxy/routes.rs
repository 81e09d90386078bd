//! The route table: a request's host and path to a route and its pool. A table is one version
//! of the gateway file (routes, pools and tiers together), swapped whole on a reload; requests
//! in flight finish on the version they started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use praxis_kit::canary::Arm;

use crate::config::{GatewayConfig, RouteConfig, Side};
use crate::pool::{Clock, Pool};

use super::blue_green::{BlueGreen, SwitchState};
use super::canary::Canary;
use super::tier::Tiers;

/// A route with its pool resolved.
#[derive(Debug)]
pub struct Route {
    /// Its name in metrics and logs.
    pub label: String,
    host: Option<String>,
    prefix: String,
    /// Its pool (for a blue/green route, the side the file named when this version was
    /// built: requests go by [`Route::split`]).
    pub pool: Arc<Pool>,
    /// The whole request's deadline.
    pub timeout: Duration,
    /// One attempt's deadline.
    pub per_try_timeout: Duration,
    /// Whether retries are on.
    pub retries: bool,
    /// When to hedge.
    pub hedge_after: Option<Duration>,
    /// Bodies up to this size are kept for a retry.
    pub retry_body_limit: usize,
    /// Its canary, if it has one (shared with the next version of the table while its
    /// settings and pool stay the same, so a rollback survives a reload).
    pub canary: Option<Arc<Canary>>,
    /// Its blue and green sides, for a blue/green route.
    pub blue_green: Option<BlueGreen>,
}

/// Where a request of a route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The route's pool.
    Plain,
    /// An arm of the route's canary.
    Canary(Arm),
    /// A side of the blue/green route.
    Side(Side),
}

impl Route {
    /// Where a request with these headers goes.
    pub fn split(&self, headers: &HeaderMap) -> Split {
        if let Some(c) = &self.canary {
            Split::Canary(c.choose(headers))
        } else if let Some(bg) = &self.blue_green {
            Split::Side(bg.state.active())
        } else {
            Split::Plain
        }
    }

    /// The pool of `split`.
    pub fn pool_for(&self, split: Split) -> &Arc<Pool> {
        match (split, &self.canary, &self.blue_green) {
            (Split::Canary(Arm::Canary), Some(c), _) => &c.pool,
            (Split::Side(side), _, Some(bg)) => bg.pool(side),
            _ => &self.pool,
        }
    }

    /// The pool new requests without a canary header go to now.
    pub fn effective_pool(&self) -> &Arc<Pool> {
        if let Some(c) = &self.canary
            && c.is_promoted()
        {
            return &c.pool;
        }
        if let Some(bg) = &self.blue_green {
            return bg.pool(bg.state.active());
        }
        &self.pool
    }

    /// Records the response of a request that went to `split`.
    pub fn observe(&self, split: Split, error: bool, latency: Duration) {
        match (split, &self.canary, &self.blue_green) {
            (Split::Canary(arm), Some(c), _) => c.observe(&self.label, arm, error, latency),
            (Split::Side(side), _, Some(bg)) => bg.state.observe(&self.label, side, error, latency),
            _ => {}
        }
    }
}

/// One version of the gateway file: routes (most specific first), pools and tiers.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// The pools by name.
    pub pools: HashMap<String, Arc<Pool>>,
    /// How premium requests are recognised.
    pub tiers: Tiers,
}

impl RouteTable {
    /// The table of `config` over `pools` (every route's pool exists: the file was
    /// validated); canaries of `previous` whose settings and pool are unchanged are kept.
    pub fn new(
        config: &GatewayConfig,
        pools: HashMap<String, Arc<Pool>>,
        clock: Clock,
        previous: Option<&RouteTable>,
    ) -> Self {
        let kept_canary = |r: &RouteConfig| -> Option<Arc<Canary>> {
            let settings = r.canary.as_ref()?;
            let pool = pools.get(&settings.pool)?;
            let old = previous?.by_label(&r.label())?.canary.as_ref()?;
            (old.settings() == settings && Arc::ptr_eq(&old.pool, pool)).then(|| old.clone())
        };
        let blue_green = |r: &RouteConfig, label: &str| -> Option<BlueGreen> {
            let settings = r.blue_green.as_ref()?;
            let sides = [
                pools.get(&settings.blue)?.clone(),
                pools.get(&settings.green)?.clone(),
            ];
            let kept = previous
                .and_then(|p| p.by_label(label))
                .and_then(|old| old.blue_green.as_ref())
                .filter(|old| old.state.settings().same_but_active(settings))
                .map(|old| old.state.clone());
            let state = match kept {
                Some(state) => {
                    state.file_names(label, settings.active);
                    state
                }
                None => Arc::new(SwitchState::new(settings, clock)),
            };
            Some(BlueGreen {
                pools: sides,
                state,
            })
        };
        let mut compiled: Vec<Route> = config
            .routes
            .iter()
            .filter_map(|r| {
                let label = r.label();
                let canary = kept_canary(r).or_else(|| {
                    let c = r.canary.as_ref()?;
                    Some(Arc::new(Canary::new(c, pools.get(&c.pool)?.clone(), clock)))
                });
                let blue_green = blue_green(r, &label);
                let pool = match (&r.blue_green, &blue_green) {
                    (Some(s), Some(bg)) => bg.pool(s.active).clone(),
                    (Some(_), None) => return None,
                    _ => pools.get(&r.pool)?.clone(),
                };
                Some(Route {
                    label,
                    host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
                    prefix: r.path_prefix.clone(),
                    pool,
                    timeout: r.timeout,
                    per_try_timeout: r.per_try_timeout.unwrap_or(r.timeout).min(r.timeout),
                    retries: r.retries,
                    hedge_after: r.hedge_after,
                    retry_body_limit: r.retry_body_limit,
                    canary,
                    blue_green,
                })
            })
            .collect();
        // Hosts before no host, then longer prefixes first; stable, so the file's order breaks
        // the remaining ties.
        compiled.sort_by_key(|r| (r.host.is_none(), std::cmp::Reverse(r.prefix.len())));
        Self {
            routes: compiled,
            pools,
            tiers: Tiers::new(&config.tiers),
        }
    }

    /// The route for a request to `host` and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            r.host.as_deref().is_none_or(|h| Some(h) == host) && path.starts_with(&r.prefix)
        })
    }

    /// The routes, most specific first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route named `label`.
    pub fn by_label(&self, label: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.label == label)
    }
}
