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
pub use route::{BlueGreenSettings, CanarySettings, RouteConfig, Side, TierConfig};

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
            let rollout = |r: &RouteConfig| r.canary.is_some() || r.blue_green.is_some();
            if let Some(j) = self.routes[..i]
                .iter()
                .position(|r| r.label() == route.label() && (rollout(r) || rollout(route)))
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "routes[{j}] has the same name {:?}; a route with a canary or blue_green needs a name of its own (its state and the admin API go by it)",
                        route.label()
                    ),
                ));
            }
            let mut named: Vec<(String, &String)> = Vec::new();
            if let Some(c) = &route.canary {
                named.push((format!("{at}.canary.pool"), &c.pool));
            }
            if let Some(bg) = &route.blue_green {
                named.push((format!("{at}.blue_green.blue"), &bg.blue));
                named.push((format!("{at}.blue_green.green"), &bg.green));
            } else {
                named.push((format!("{at}.pool"), &route.pool));
            }
            for (field, pool) in named {
                if !self.pools.contains_key(pool) {
                    let known: Vec<&str> = self.pools.keys().map(String::as_str).collect();
                    return Err(ConfigError::new(
                        field,
                        format!(
                            "no pool named {pool:?} (pools: {}); define [pools.{pool}]",
                            known.join(", "),
                        ),
                    ));
                }
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
#[allow(clippy::unwrap_used)]
mod rollout_tests {
    use super::*;

    const POOLS: &str =
        "[pools.a]\ninstances = [\"127.0.0.1:1\"]\n[pools.b]\ninstances = [\"127.0.0.1:2\"]\n";

    fn file(route: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::from_toml(&format!("{POOLS}[[routes]]\nname = \"r\"\n{route}\n"))
    }

    fn field(route: &str) -> String {
        file(route).unwrap_err().field
    }

    #[test]
    fn canary_steps_and_promote_after_read_and_are_checked() {
        let c = file("pool = \"a\"\ncanary = { pool = \"b\", steps = [5, 25, 50, 100] }").unwrap();
        let promotion = c.routes[0].canary.as_ref().unwrap().promotion().unwrap();
        assert_eq!(promotion.steps, vec![5.0, 25.0, 50.0, 100.0]);
        assert_eq!(promotion.checks, 1, "one healthy check per step by default");
        let c = file("pool = \"a\"\ncanary = { pool = \"b\", percent = 10, promote_after = 3 }")
            .unwrap();
        let promotion = c.routes[0].canary.as_ref().unwrap().promotion().unwrap();
        assert_eq!((promotion.steps, promotion.checks), (vec![10.0], 3));
        let c = file("pool = \"a\"\ncanary = { pool = \"b\", percent = 10 }").unwrap();
        assert_eq!(c.routes[0].canary.as_ref().unwrap().promotion(), None);

        assert_eq!(
            field("pool = \"a\"\ncanary = { pool = \"b\", steps = [5, 5] }"),
            "routes[0].canary.steps[1]"
        );
        assert_eq!(
            field("pool = \"a\"\ncanary = { pool = \"b\", steps = [0, 5] }"),
            "routes[0].canary.steps[0]"
        );
        assert_eq!(
            field("pool = \"a\"\ncanary = { pool = \"b\", steps = [5, 101] }"),
            "routes[0].canary.steps[1]"
        );
        assert_eq!(
            field("pool = \"a\"\ncanary = { pool = \"b\", percent = 10, steps = [5, 50] }"),
            "routes[0].canary.percent"
        );
        assert_eq!(
            field("pool = \"a\"\ncanary = { pool = \"b\", promote_after = 0 }"),
            "routes[0].canary.promote_after"
        );
    }

    #[test]
    fn blue_green_reads_and_is_checked() {
        let c = file(
            "blue_green = { blue = \"a\", green = \"b\", active = \"green\", window = \"5s\" }",
        )
        .unwrap();
        let bg = c.routes[0].blue_green.as_ref().unwrap();
        assert_eq!(bg.active, Side::Green);
        assert_eq!(bg.pool(bg.active), "b");
        assert_eq!(bg.to_kit().window_ms, 5_000);

        assert_eq!(
            field("blue_green = { blue = \"a\" }"),
            "routes[0].blue_green.green"
        );
        assert_eq!(
            field("blue_green = { blue = \"a\", green = \"a\" }"),
            "routes[0].blue_green.green"
        );
        assert_eq!(
            field("blue_green = { blue = \"a\", green = \"c\" }"),
            "routes[0].blue_green.green"
        );
        assert_eq!(
            field("pool = \"a\"\nblue_green = { blue = \"a\", green = \"b\" }"),
            "routes[0].pool"
        );
        assert_eq!(field(""), "routes[0].pool");
        assert!(
            file("blue_green = { blue = \"a\", green = \"b\", active = \"red\" }")
                .unwrap_err()
                .message
                .contains("unknown variant")
        );
        assert_eq!(
            field("blue_green = { blue = \"a\", green = \"b\", window = \"0s\" }"),
            "routes[0].blue_green.window"
        );
    }

    #[test]
    fn a_route_with_a_rollout_needs_a_name_of_its_own() {
        let e = GatewayConfig::from_toml(&format!(
            "{POOLS}[[routes]]\npool = \"a\"\n[[routes]]\nblue_green = {{ blue = \"a\", green = \"b\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.field, "routes[1].name");
        assert!(
            GatewayConfig::from_toml(&format!(
                "{POOLS}[[routes]]\npool = \"a\"\n[[routes]]\nname = \"bg\"\nblue_green = {{ blue = \"a\", green = \"b\" }}\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn settings_but_active_compare() {
        let c = file("blue_green = { blue = \"a\", green = \"b\" }").unwrap();
        let a = c.routes[0].blue_green.clone().unwrap();
        let mut b = a.clone();
        b.active = Side::Green;
        assert!(a.same_but_active(&b));
        b.min_requests += 1;
        assert!(!a.same_but_active(&b));
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
        let promotion = route.canary.as_ref().and_then(|c| c.promotion());
        assert_eq!(
            promotion.map(|p| p.steps),
            Some(vec![5.0, 25.0, 50.0, 100.0])
        );
        let shop = &config.routes[1];
        assert_eq!(
            shop.blue_green.as_ref().map(|b| b.pool(b.active)),
            Some("shop-blue")
        );
    }
}
