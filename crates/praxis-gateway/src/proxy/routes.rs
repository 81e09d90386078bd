//! The route table: a request's host and path to a route and its pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::RouteConfig;
use crate::pool::{Clock, Pool};

use super::canary::Canary;

/// A route with its pool resolved.
#[derive(Debug)]
pub struct Route {
    /// Its name in metrics and logs.
    pub label: String,
    host: Option<String>,
    prefix: String,
    /// Its pool.
    pub pool: Arc<Pool>,
    /// The whole request's deadline.
    pub timeout: Duration,
    /// One attempt's deadline.
    pub per_try_timeout: Duration,
    /// Whether retries are on.
    pub retries: bool,
    /// Bodies up to this size are kept for a retry.
    pub retry_body_limit: usize,
    /// Its canary, if it has one.
    pub canary: Option<Canary>,
}

/// Routes, most specific first.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The table of `routes` over `pools` (every route's pool exists: the file was validated).
    pub fn new(routes: &[RouteConfig], pools: &HashMap<String, Arc<Pool>>, clock: Clock) -> Self {
        let mut compiled: Vec<Route> = routes
            .iter()
            .filter_map(|r| {
                Some(Route {
                    label: r.label(),
                    host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
                    prefix: r.path_prefix.clone(),
                    pool: pools.get(&r.pool)?.clone(),
                    timeout: r.timeout,
                    per_try_timeout: r.per_try_timeout.unwrap_or(r.timeout).min(r.timeout),
                    retries: r.retries,
                    retry_body_limit: r.retry_body_limit,
                    canary: r
                        .canary
                        .as_ref()
                        .and_then(|c| Some(Canary::new(c, pools.get(&c.pool)?.clone(), clock))),
                })
            })
            .collect();
        // Hosts before no host, then longer prefixes first; stable, so the file's order breaks
        // the remaining ties.
        compiled.sort_by_key(|r| (r.host.is_none(), std::cmp::Reverse(r.prefix.len())));
        Self { routes: compiled }
    }

    /// The route for a request to `host` and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            r.host.as_deref().is_none_or(|h| Some(h) == host) && path.starts_with(&r.prefix)
        })
    }
}

impl RouteTable {
    /// The route named `label`.
    pub fn by_label(&self, label: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.label == label)
    }
}
