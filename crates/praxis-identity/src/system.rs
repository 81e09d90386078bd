//! Identity as a plug-in of the binary: its `[identity]` section, its migrations, and the
//! authenticator every system's routes resolve bearer tokens with.

use praxis_http::system::{Key, StartContext, StartFuture, Started, System};
use praxis_infra::MigrationSet;

use crate::{Identity, IdentitySection, MIGRATIONS, settings};

/// The identity system: accounts, tokens, API keys, and the authenticator of every route.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentitySystem;

impl System for IdentitySystem {
    type Settings = IdentitySection;

    fn name(&self) -> &'static str {
        "identity"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS, &praxis_http::idempotency::MIGRATIONS];
        SETS
    }

    fn authenticates(&self) -> bool {
        true
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::workers::metrics::METRICS
    }

    fn start<'a>(&'a self, section: IdentitySection, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let settings =
                section.into_settings(ctx.signing_secret.as_bytes(), ctx.trusted_proxies.clone());
            let identity = Identity::launch(&ctx.platform, settings).await?;
            Ok(Started {
                service: identity.service(),
                authenticator: Some(identity.authenticator()),
            })
        })
    }
}
