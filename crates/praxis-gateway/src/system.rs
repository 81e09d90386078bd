//! The gateway as a plug-in of the binary: its `[gateway]` section and its start (it keeps no
//! tables and serves no API routes; its proxy listens on its own address).

use praxis_http::Service;
use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::{InfraError, MigrationSet};

use crate::{Gateway, GatewaySettings, MIGRATIONS, config::GatewayConfig, settings};

/// The gateway system.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewaySystem;

impl System for GatewaySystem {
    type Settings = GatewaySettings;

    fn name(&self) -> &'static str {
        "gateway"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS];
        SETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::metrics::METRICS
    }

    /// Starts the proxy on the platform's tasks when a gateway file is set.
    fn start<'a>(&'a self, settings: GatewaySettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let service = Service::new(
                "gateway",
                axum::Router::new(),
                utoipa::openapi::OpenApi::default(),
            );
            let Some(path) = &settings.routes else {
                tracing::info!("gateway: no gateway file (gateway.routes); not listening");
                return Ok(service.into());
            };
            let config = GatewayConfig::load(path)
                .map_err(|e| InfraError::Config(format!("gateway.routes: {e}")))?;
            let gateway = Gateway::start(
                config,
                settings.listen,
                ctx.platform.shutdown.clone(),
                &ctx.platform.tasks,
            )
            .await
            .map_err(|e| InfraError::Config(e.to_string()))?;
            tracing::info!(addr = %gateway.local_addr(), "gateway listening");
            Ok(service.into())
        })
    }
}
