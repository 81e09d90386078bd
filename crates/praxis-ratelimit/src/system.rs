//! The rate-limit decision service as a plug-in of the binary: its `[ratelimit]` section and
//! its start (it keeps no tables).

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{DecisionService, MIGRATIONS, RateLimitServiceSettings, settings};

/// The rate-limit decision service system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitSystem;

impl System for RateLimitSystem {
    type Settings = RateLimitServiceSettings;

    fn name(&self) -> &'static str {
        "ratelimit"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS];
        SETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::workers::metrics::METRICS
    }

    /// gRPC callers are authenticated like the HTTP routes' callers.
    fn start<'a>(
        &'a self,
        settings: RateLimitServiceSettings,
        ctx: &'a StartContext,
    ) -> StartFuture<'a> {
        Box::pin(async move {
            let settings = RateLimitServiceSettings {
                grpc_auth: ctx.auth.clone(),
                ..settings
            };
            let service = DecisionService::start(&ctx.platform, settings).await?;
            Ok(service.service().into())
        })
    }
}
