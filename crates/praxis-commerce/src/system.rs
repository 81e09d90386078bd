//! The commerce system as a plug-in of the binary: its `[commerce]` section, its migrations,
//! its start.

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::settings::{self, CommerceSettings};
use crate::{CommerceApp, MIGRATIONS};

/// The commerce system.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommerceSystem;

impl System for CommerceSystem {
    type Settings = CommerceSettings;

    fn name(&self) -> &'static str {
        "commerce"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS];
        SETS
    }

    fn start<'a>(&'a self, settings: CommerceSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let app = CommerceApp::launch(&ctx.platform, settings).await?;
            Ok(app.service().into())
        })
    }
}
