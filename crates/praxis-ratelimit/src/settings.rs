//! The decision service's settings: its `[ratelimit]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use praxis_http::AuthSettings;
use praxis_http::system::{Checks, Key, SettingError, Settings};
use serde::{Deserialize, Serialize};

use crate::domain::limits::Rules;

/// Scope a caller needs to ask for decisions (the admin role implies it).
pub const CHECK_SCOPE: &str = "ratelimit:check";

/// Everything the decision service can be tuned with: the `[ratelimit]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitServiceSettings {
    /// The limits: one domain file (`*.toml`) or a folder of them. `None`: no domain has
    /// limits, and every descriptor is answered `OK`.
    pub limits: Option<PathBuf>,
    /// How often the limit files are polled for changes. Default 1 s.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub reload_interval: Duration,
    /// Where the Envoy `RateLimitService` gRPC API listens; `None` (the default) serves none.
    pub grpc_listen: Option<SocketAddr>,
    /// How gRPC callers are authenticated (`authorization: Bearer <token>` metadata): the same
    /// settings as the HTTP stack's. HTTP callers are authenticated by the app's stack. Set by
    /// the binary, not a key of the section.
    #[serde(skip)]
    pub grpc_auth: AuthSettings,
}

impl Default for RateLimitServiceSettings {
    fn default() -> Self {
        Self {
            limits: None,
            reload_interval: Duration::from_secs(1),
            grpc_listen: None,
            grpc_auth: AuthSettings::default(),
        }
    }
}

/// The documented keys of the `[ratelimit]` section (flat names `ratelimit_<key>`).
pub const KEYS: &[Key] = &[
    Key::new(
        "limits",
        "limits of the decision service: a domain file (TOML in envoyproxy/ratelimit's structure) or a folder of them, reloaded when changed",
    )
    .unset("the decision service answers OK to every descriptor"),
    Key::new("reload_interval", "how often the limit files are polled for changes"),
    Key::new(
        "grpc_listen",
        "HOST:PORT of the Envoy RateLimitService v3 gRPC API (port 0 picks a free one)",
    )
    .unset("no gRPC server"),
];

impl Settings for RateLimitServiceSettings {
    /// Loads the limits once, so that a broken file stops the start with the key's name.
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        if let Some(path) = &self.limits
            && let Err(e) = Rules::load(path)
        {
            checks.fail("limits", format!("the limits do not load: {e}"));
        }
        if self.reload_interval.is_zero() {
            checks.fail("reload_interval", "must be longer than zero (e.g. 1s)");
        }
        checks.finish()
    }
}
