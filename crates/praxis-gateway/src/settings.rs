//! The gateway's `[gateway]` section of the praxis configuration. Pools and routes live in a
//! file of their own (`routes`), as structured TOML (see [`crate::config`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError, Settings};
use serde::{Deserialize, Serialize};

use crate::config::GatewayConfig;

/// The `[gateway]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Where the proxy listens (its own address, not the API's).
    pub listen: SocketAddr,
    /// The gateway file (pools and routes). `None`: the gateway does not listen.
    pub routes: Option<PathBuf>,
    /// How often the gateway file is read for changes (reloaded without dropping connections).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub reload_interval: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            routes: None,
            reload_interval: Duration::from_secs(1),
        }
    }
}

/// The documented keys of the `[gateway]` section (flat names `gateway_<key>`).
pub const KEYS: &[Key] = &[
    Key::new(
        "listen",
        "HOST:PORT the gateway's proxy listens on (its own port, apart from the API's)",
    ),
    Key::new(
        "routes",
        "the gateway file: upstream pools and the routes to them (TOML, see docs/gateway.md)",
    )
    .unset("the gateway does not listen"),
    Key::new(
        "reload_interval",
        "how often the gateway file is read for changes; a changed file is applied without dropping connections",
    ),
];

impl Settings for GatewaySettings {
    /// Reads the gateway file once, so that a broken one stops the start with its field.
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        if let Some(path) = &self.routes
            && let Err(e) = GatewayConfig::load(path)
        {
            checks.fail("routes", format!("the gateway file does not load: {e}"));
        }
        checks.require(
            !self.reload_interval.is_zero(),
            "reload_interval",
            "must be longer than zero (e.g. 1s)",
        );
        checks.finish()
    }
}
