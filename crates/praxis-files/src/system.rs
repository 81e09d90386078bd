//! The file storage as a plug-in of the binary: its `[files]` section, its migrations, its
//! secret, its start.

use praxis_http::system::{Key, SecretSpec, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{FilesApp, FilesSettings, MIGRATIONS, settings};

/// The file storage system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilesSystem;

impl System for FilesSystem {
    type Settings = FilesSettings;

    fn name(&self) -> &'static str {
        "files"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS];
        SETS
    }

    fn secrets(&self) -> &'static [SecretSpec] {
        settings::SECRETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::workers::metrics::METRICS
    }

    fn start<'a>(&'a self, settings: FilesSettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let key = ctx.secret("url_signing_key")?;
            let app =
                FilesApp::launch(&ctx.platform, settings, key, ctx.trusted_proxies.clone()).await?;
            Ok(app.service().into())
        })
    }
}
