//! praxis-ratelimit: a rate-limit decision service for other programs.
//!
//! - `POST /api/v1/ratelimit/check` takes `{domain, descriptors: [{entries: [{key, value}],
//!   hits?}], hits?}` (Envoy's `RateLimitRequest` as JSON) and answers `{overall_code,
//!   statuses: [{code, current_limit, limit_remaining, duration_until_reset}]}` ([`api`]).
//! - Envoy's `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over gRPC on its own
//!   address, so an Envoy proxy can use praxis as its rate-limit service ([`api::grpc`]).
//! - Both call one decision function, [`Decider::check`]: limits per domain with nested
//!   descriptors in the format of envoyproxy/ratelimit's configuration (TOML), the most
//!   specific match wins, `unlimited` and `shadow_mode` included ([`domain::limits`]); counters go
//!   through the platform's limiter, so they hold across processes when it is Redis.
//! - The limit file (or folder) is watched and reloaded without restart; a bad file keeps
//!   the old limits and logs the error ([`workers::reload`]).
//!
//! [`DecisionService::start`] wires it onto a [`Platform`]; [`service`] is the usual one-call
//! entry.

pub mod api;
pub mod domain;
pub mod settings;
mod system;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use praxis_http::Service;
use praxis_infra::{InfraError, MigrationSet, Platform};

pub use domain::limits::{LimitsError, Rules, Unit};
pub use settings::{CHECK_SCOPE, RateLimitServiceSettings};
pub use system::RateLimitSystem;
pub use workers::decide::{
    CheckRequest, CheckResponse, Code, CurrentLimit, Decider, Descriptor, DescriptorStatus, Entry,
};
pub use workers::reload::{Loaded, Reloader};

/// The decision service keeps no tables: its state is the limiter's (in-process or Redis).
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "ratelimit",
    migrations: &[],
};

/// The running decision service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionService {
    reloader: Arc<Reloader>,
    grpc_addr: Option<SocketAddr>,
}

impl DecisionService {
    /// Loads the limits (an error names the file and the field), starts watching them on the
    /// platform's task tracker, and binds and serves the gRPC API when `grpc_listen` is set.
    /// Everything stops with `platform.shutdown`.
    pub async fn start(
        platform: &Platform,
        settings: RateLimitServiceSettings,
    ) -> Result<DecisionService, InfraError> {
        let (fingerprint, rules) = match &settings.limits {
            Some(path) => {
                let path = path.clone();
                let (fingerprint, rules) = tokio::task::spawn_blocking(move || {
                    (workers::reload::fingerprint(&path).ok(), Rules::load(&path))
                })
                .await
                .map_err(|e| InfraError::Config(format!("loading the limits failed: {e}")))?;
                let rules =
                    rules.map_err(|e| InfraError::Config(format!("ratelimit limits: {e}")))?;
                (fingerprint, rules)
            }
            None => (None, Rules::empty()),
        };
        match &settings.limits {
            Some(path) => tracing::info!(
                file = %path.display(),
                version = %rules.version,
                domains = ?rules.summary,
                "rate-limit service: limits loaded"
            ),
            None => {
                tracing::info!("rate-limit service: no limit file; every descriptor is answered OK")
            }
        }
        let decider = Arc::new(Decider::new(rules, platform.limiter.clone()));
        let reloader = Arc::new(Reloader::new(decider, settings.limits.clone()));
        if settings.limits.is_some() {
            platform.tasks.spawn(reloader.clone().watch(
                fingerprint,
                settings.reload_interval,
                platform.shutdown.clone(),
            ));
        }
        let mut grpc_addr = None;
        if let Some(addr) = settings.grpc_listen {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                InfraError::Config(format!("ratelimit gRPC: cannot listen on {addr}: {e}"))
            })?;
            let bound = listener.local_addr().map_err(|e| {
                InfraError::Config(format!("ratelimit gRPC: no local address: {e}"))
            })?;
            let api = api::grpc::GrpcApi::new(reloader.clone(), settings.grpc_auth.clone());
            platform
                .tasks
                .spawn(api::grpc::serve(api, listener, platform.shutdown.clone()));
            tracing::info!(addr = %bound, "rate-limit gRPC listening");
            grpc_addr = Some(bound);
        }
        Ok(DecisionService {
            reloader,
            grpc_addr,
        })
    }

    /// The HTTP routes under `/api/v1/ratelimit`.
    pub fn service(&self) -> Service {
        let (router, openapi) = api::router(self.reloader.clone());
        Service::new("ratelimit", router, openapi)
    }

    /// The address the gRPC API listens on, when it does.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The decider and its reload bookkeeping.
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }
}

/// Starts the decision service on `platform` and returns its routes (see
/// [`DecisionService::start`]).
pub async fn service(
    platform: &Platform,
    settings: RateLimitServiceSettings,
) -> Result<Service, InfraError> {
    Ok(DecisionService::start(platform, settings).await?.service())
}
