//! The gateway's `[gateway]` section of the praxis configuration. Pools and routes live in a
//! file of their own (`routes`), as structured TOML (see [`crate::config`]).

use std::net::SocketAddr;
use std::path::PathBuf;

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
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            routes: None,
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
        checks.finish()
    }
}
