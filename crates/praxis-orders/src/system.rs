//! The orders system as a plug-in of the binary: its `[orders]` section, its migrations, its
//! start.

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::settings::{self, OrdersSettings};
use crate::{MIGRATIONS, OrdersApp};

/// The orders system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersSystem;

impl System for OrdersSystem {
    type Settings = OrdersSettings;

    fn name(&self) -> &'static str {
        "orders"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&praxis_shard::MIGRATIONS, &MIGRATIONS];
        SETS
    }

    fn start<'a>(&'a self, settings: OrdersSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let app = OrdersApp::launch(&ctx.platform, settings).await?;
            Ok(app.service().into())
        })
    }
}
