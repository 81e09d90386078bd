//! The decision service's settings; the binary maps its configuration onto
//! [`RateLimitServiceSettings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use praxis_http::AuthSettings;

/// Scope a caller needs to ask for decisions (the admin role implies it).
pub const CHECK_SCOPE: &str = "ratelimit:check";

/// Everything the decision service can be tuned with.
#[derive(Debug, Clone)]
pub struct RateLimitServiceSettings {
    /// The limits: one domain file (`*.toml`) or a folder of them. `None`: no domain has
    /// limits, and every descriptor is answered `OK`.
    pub limits: Option<PathBuf>,
    /// How often the limit files are polled for changes. Default 1 s.
    pub reload_interval: Duration,
    /// Where the Envoy `RateLimitService` gRPC API listens; `None` (the default) serves none.
    pub grpc_listen: Option<SocketAddr>,
    /// How gRPC callers are authenticated (`authorization: Bearer <token>` metadata): the same
    /// settings as the HTTP stack's. HTTP callers are authenticated by the app's stack.
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
