//! The chat as a plug-in of the binary: its `[chat]` section, its migrations, its start.

use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{Chat, ChatSettings, MIGRATIONS, settings};

/// The chat system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatSystem;

impl System for ChatSystem {
    type Settings = ChatSettings;

    fn name(&self) -> &'static str {
        "chat"
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

    fn start<'a>(&'a self, settings: ChatSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let settings = ChatSettings {
                key_prefix: ctx.prefix.clone(),
                ..settings
            };
            Ok(Chat::launch(&ctx.platform, settings)
                .await?
                .service()
                .into())
        })
    }
}
