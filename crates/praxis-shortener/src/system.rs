//! The shortener as a plug-in of the binary: its `[shortener]` section, its migrations, its
//! start.

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{MIGRATIONS, ShortenerSettings, launch, settings};

/// The URL shortener system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShortenerSystem;

impl System for ShortenerSystem {
    type Settings = ShortenerSettings;

    fn name(&self) -> &'static str {
        "shortener"
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

    fn start<'a>(&'a self, settings: ShortenerSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let settings = ShortenerSettings {
                base_url: ctx.base_url.clone(),
                ..settings
            };
            Ok(launch(&ctx.platform, settings).await?.into())
        })
    }
}
