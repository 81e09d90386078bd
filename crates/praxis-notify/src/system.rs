//! Notifications as a plug-in of the binary: the `[notify]` section, the webhook signing
//! secret, the migrations, the start.

use praxis_http::system::{Key, SecretSpec, StartContext, StartFuture, System};
use praxis_infra::MigrationSet;

use crate::{MIGRATIONS, Notify, NotifySection, section};

/// The notification system.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifySystem;

impl System for NotifySystem {
    type Settings = NotifySection;

    fn name(&self) -> &'static str {
        "notify"
    }

    fn keys(&self) -> &'static [Key] {
        section::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS, &praxis_http::idempotency::MIGRATIONS];
        SETS
    }

    fn secrets(&self) -> &'static [SecretSpec] {
        section::SECRETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::workers::metrics::METRICS
    }

    /// Subscriber tokens (inbox, unsubscribe links) are keyed from the server's signing
    /// secret: server-only and shared by every process, unlike the webhook secret that
    /// receivers hold (D54).
    fn start<'a>(&'a self, section: NotifySection, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let settings = section.into_settings(
                ctx.secret("webhook_secret")?.to_owned(),
                ctx.signing_secret.to_string(),
                Some(ctx.base_url.to_string()),
            );
            Ok(Notify::launch(&ctx.platform, settings)
                .await?
                .service()
                .into())
        })
    }
}
