//! The gateway file: pools of upstream instances and the routes to them (TOML, named by
//! `[gateway] routes`). Every field has a default but a pool's `instances` and a route's
//! `pool`; [`GatewayConfig::from_toml`] reads and checks it, and each error names the field
//! (`pools.api.algorithm`) and what would be accepted.
//!
//! ```toml
//! [pools.api]
//! instances = ["127.0.0.1:9001", { addr = "127.0.0.1:9002", weight = 3 }]
//! algorithm = "p2c_ewma"          # round_robin | weighted | least_connections | p2c_ewma | ring_hash
//! max_concurrency = 512           # 0: no limit
//! premium_reserve = 0.2           # share of max_concurrency only premium requests may use
//! [pools.api.health]
//! check = "http"                  # none | tcp | http
//! path = "/readyz"
//!
//! [[routes]]
//! path_prefix = "/api/"
//! pool = "api"
//! timeout = "5s"
//! ```

mod pool;
mod route;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use pool::{
    Algorithm, BreakerSettings, HashKey, HealthCheck, HealthConfig, InstanceSpec, OutlierSettings,
    PoolConfig, RetryBudgetSettings,
};
pub use route::{CanarySettings, RouteConfig, TierConfig};

/// What is wrong with a gateway file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field, as a path (`pools.api.instances[2]`, `routes[0].pool`).
    pub field: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The gateway file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Upstream pools by name.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Routes; the most specific match wins (a route with a host before one without, then the
    /// longest path prefix).
    pub routes: Vec<RouteConfig>,
    /// How requests of the premium tier are recognised.
    pub tiers: TierConfig,
}

impl GatewayConfig {
    /// Reads and checks a gateway file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: GatewayConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_owned();
            let field = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    format!("line {line}")
                })
                .unwrap_or_else(|| "file".to_owned());
            ConfigError::new(field, message)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and checks the gateway file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "routes",
                format!("cannot read the gateway file {}: {e}", path.display()),
            )
        })?;
        Self::from_toml(&text).map_err(|e| ConfigError {
            field: format!("{}: {}", path.display(), e.field),
            message: e.message,
        })
    }

    /// Checks what serde cannot: ranges, references between pools and routes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, pool) in &self.pools {
            pool.validate(&format!("pools.{name}"))?;
        }
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            route.validate(&at)?;
            if let Some(c) = &route.canary
                && !self.pools.contains_key(&c.pool)
            {
                return Err(ConfigError::new(
                    format!("{at}.canary.pool"),
                    format!("no pool named {:?}; define [pools.{}]", c.pool, c.pool),
                ));
            }
            if !self.pools.contains_key(&route.pool) {
                let known: Vec<&str> = self.pools.keys().map(String::as_str).collect();
                return Err(ConfigError::new(
                    format!("{at}.pool"),
                    format!(
                        "no pool named {:?} (pools: {}); define [pools.{}]",
                        route.pool,
                        known.join(", "),
                        route.pool
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_reads() {
        let c = GatewayConfig::from_toml(
            r#"
            [pools.api]
            instances = ["127.0.0.1:9001", { addr = "127.0.0.1:9002", weight = 3 }]
            algorithm = "ring_hash"
            hash_key = "header:x-user"
            max_concurrency = 10
            premium_reserve = 0.3
            retry_budget = { ratio = 0.1, min_per_sec = 1, ttl = "5s" }
            [pools.api.health]
            check = "http"
            path = "/readyz"
            interval = "200ms"
            [pools.api.outlier]
            consecutive_5xx = 3
            base_ejection = "2s"

            [[routes]]
            host = "example.com"
            path_prefix = "/api/"
            pool = "api"
            timeout = "2s"

            [tiers]
            header = "x-tier"
            "#,
        )
        .unwrap();
        let api = &c.pools["api"];
        assert_eq!(api.instances[1].weight(), 3);
        assert_eq!(api.algorithm, Algorithm::RingHash);
        assert_eq!(api.hash_key, Some(HashKey::Header("x-user".into())));
        assert_eq!(api.health.check, HealthCheck::Http);
        assert_eq!(api.outlier.consecutive_5xx, 3);
        assert_eq!(c.routes[0].timeout, std::time::Duration::from_secs(2));
    }

    #[test]
    fn errors_name_the_field() {
        let e = GatewayConfig::from_toml(
            "[pools.a]\ninstances = [\"127.0.0.1:1\"]\n[[routes]]\npool = \"b\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "routes[0].pool");
        let e = GatewayConfig::from_toml("[pools.a]\ninstances = []\n").unwrap_err();
        assert_eq!(e.field, "pools.a.instances");
        let e = GatewayConfig::from_toml(
            "[pools.a]\ninstances = [\"127.0.0.1:1\"]\nalgorithm = \"ring_hash\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "pools.a.hash_key");
        let e = GatewayConfig::from_toml("[pools.a]\ninstances = [\"nope\"]\n").unwrap_err();
        assert_eq!(e.field, "pools.a.instances[0]");
        let e = GatewayConfig::from_toml(
            "[pools.a]\ninstances = [\"127.0.0.1:1\"]\n[[routes]]\npool = \"a\"\ncanary = { pool = \"v2\", percent = 5 }\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "routes[0].canary.pool");
        let e = GatewayConfig::from_toml(
            "[pools.a]\ninstances = [\"127.0.0.1:1\"]\n[[routes]]\npool = \"a\"\ncanary = { pool = \"a\" }\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "routes[0].canary.pool");
        let e = GatewayConfig::from_toml("[pools.a]\nalgoritm = 1\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}

#[cfg(test)]
mod docs_example {
    use super::GatewayConfig;

    /// The gateway file shown in docs/gateway.md reads as it says.
    #[test]
    fn the_documented_file_reads() {
        let doc = include_str!("../../../../docs/gateway.md");
        let start = doc
            .find("```toml\n[pools.api]")
            .expect("the example in docs/gateway.md")
            + 8;
        let len = doc[start..].find("```").expect("its end");
        let config = GatewayConfig::from_toml(&doc[start..start + len]);
        let config = config.unwrap_or_else(|e| panic!("docs/gateway.md's example: {e}"));
        let route = &config.routes[0];
        assert_eq!(
            route.canary.as_ref().map(|c| c.pool.as_str()),
            Some("api-v2")
        );
    }
}
