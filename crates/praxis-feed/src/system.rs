//! The feed as a plug-in of the binary: its `[feed]` section, its migrations, its start.

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{Feed, FeedSettings, MIGRATIONS, settings};

/// The news feed system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedSystem;

impl System for FeedSystem {
    type Settings = FeedSettings;

    fn name(&self) -> &'static str {
        "feed"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS, &praxis_http::idempotency::MIGRATIONS];
        SETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::workers::metrics::METRICS
    }

    fn start<'a>(&'a self, settings: FeedSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let settings = FeedSettings {
                key_prefix: ctx.prefix.clone(),
                ..settings
            };
            Ok(Feed::launch(&ctx.platform, settings)
                .await?
                .service()
                .into())
        })
    }
}
