//! The registry of systems: every system the binary can run, by name, with its migrations and
//! the function that builds its [`Service`]. Adding a system is one entry in [`SYSTEMS`] (plus
//! the function that maps the configuration onto that system's settings).

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use praxis_http::Service;
use praxis_infra::{MigrationSet, Platform};

use crate::config::{Config, Secret};
use crate::context::RunContext;

/// What building a system returns.
pub type BuildFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Service>> + Send + 'a>>;

/// One system the binary can run.
pub struct System {
    /// Name used by `--only` and in logs.
    pub name: &'static str,
    /// The system's own migrations (also applied by `praxis migrate`).
    pub migrations: &'static MigrationSet,
    /// Builds the system's service: runs its migrations, starts its workers, returns its routes.
    pub build: for<'a> fn(&'a Platform, &'a RunContext) -> BuildFuture<'a>,
}

/// Every system, in start order.
pub static SYSTEMS: &[System] = &[
    System {
        name: "identity",
        migrations: &praxis_identity::MIGRATIONS,
        build: identity,
    },
    System {
        name: "shortener",
        migrations: &praxis_shortener::MIGRATIONS,
        build: shortener,
    },
    System {
        name: "ratelimit",
        migrations: &praxis_ratelimit::MIGRATIONS,
        build: ratelimit,
    },
    System {
        name: "notify",
        migrations: &praxis_notify::MIGRATIONS,
        build: notify,
    },
    System {
        name: "feed",
        migrations: &praxis_feed::MIGRATIONS,
        build: feed,
    },
];

/// Migrations shared by every system (event bus outbox, idempotency keys), applied first.
pub fn shared_migrations() -> [&'static MigrationSet; 2] {
    [
        &praxis_infra::bus::MIGRATIONS,
        &praxis_http::idempotency::MIGRATIONS,
    ]
}

/// The names of every system, in start order.
pub fn names() -> Vec<&'static str> {
    SYSTEMS.iter().map(|s| s.name).collect()
}

/// The systems named in `only` (already validated by the config), in registry order.
pub fn selected(only: &[String]) -> Vec<&'static System> {
    SYSTEMS
        .iter()
        .filter(|s| only.iter().any(|o| o == s.name))
        .collect()
}

/// The identity system's settings from the configuration and the JWT secret in use.
pub fn identity_settings(cfg: &Config, jwt_secret: &Secret) -> praxis_identity::IdentitySettings {
    let id = &cfg.identity;
    let limit = |l: crate::config::identity::RateLimit| praxis_identity::Limit {
        limit: l.limit,
        period: l.period,
    };
    praxis_identity::IdentitySettings {
        issuer: id.jwt_issuer.clone(),
        audience: id.jwt_audience.clone(),
        access_token_ttl: id.access_token_ttl,
        refresh_token_ttl: id.refresh_token_ttl,
        jwks: id
            .jwks_url
            .as_ref()
            .map(|url| praxis_identity::JwksSettings {
                url: url.clone(),
                issuer: id.jwks_issuer.clone().unwrap_or_default(),
                audience: id.effective_jwks_audience().to_owned(),
                cache_ttl: std::time::Duration::from_secs(600),
                min_refresh_interval: std::time::Duration::from_secs(10),
            }),
        login_limit_account: limit(id.login_limit_account),
        login_limit_ip: limit(id.login_limit_ip),
        trusted_proxies: cfg
            .rate_limit
            .as_ref()
            .map(|r| r.limits.trusted_proxies().to_vec())
            .unwrap_or_default(),
        ..praxis_identity::IdentitySettings::with_secret(jwt_secret.expose().as_bytes().to_vec())
    }
}

/// The identity routes: from the [`praxis_identity::Identity`] that `serve` started for the
/// authenticator (one shared state per process).
fn identity<'a>(_platform: &'a Platform, ctx: &'a RunContext) -> BuildFuture<'a> {
    Box::pin(async move {
        let identity = ctx
            .identity
            .as_ref()
            .context("the identity system was not started before its routes were built")?;
        Ok(identity.service())
    })
}

fn shortener<'a>(platform: &'a Platform, ctx: &'a RunContext) -> BuildFuture<'a> {
    Box::pin(async move {
        let cfg = &ctx.config;
        let settings = praxis_shortener::ShortenerSettings {
            base_url: ctx.base_url.clone(),
            default_redirect: cfg.default_redirect,
            forward_query: cfg.forward_query,
            cache_capacity: cfg.cache_capacity,
            cache_ttl: cfg.cache_ttl,
            visit_stats: cfg.visit_stats,
            anonymous_create: cfg.anonymous_create,
            ..praxis_shortener::ShortenerSettings::default()
        };
        praxis_shortener::service(platform, settings)
            .await
            .context("cannot start the shortener")
    })
}

/// The rate-limit decision service: limits from `ratelimit_limits` (reloaded when they
/// change), the gRPC API on `ratelimit_grpc_listen` when set, callers authenticated like the
/// HTTP routes'.
fn ratelimit<'a>(platform: &'a Platform, ctx: &'a RunContext) -> BuildFuture<'a> {
    Box::pin(async move {
        let cfg = &ctx.config.ratelimit;
        let settings = praxis_ratelimit::RateLimitServiceSettings {
            limits: cfg.limits.clone(),
            grpc_listen: cfg.grpc_listen,
            grpc_auth: ctx.auth.clone().unwrap_or_default(),
            ..praxis_ratelimit::RateLimitServiceSettings::default()
        };
        praxis_ratelimit::service(platform, settings)
            .await
            .context("cannot start the rate-limit decision service")
    })
}

/// The notify system's settings from the configuration and the webhook secret in use.
pub fn notify_settings(cfg: &Config, webhook_secret: &Secret) -> praxis_notify::NotifySettings {
    let n = &cfg.notify;
    let per_channel = |p: &crate::config::notify::PerChannel| praxis_notify::PerChannel {
        default: p.default,
        overrides: p.overrides.clone(),
    };
    let concurrency = praxis_notify::PerChannel {
        default: n.concurrency.default as usize,
        overrides: n
            .concurrency
            .overrides
            .iter()
            .map(|(c, v)| (*c, *v as usize))
            .collect(),
    };
    praxis_notify::NotifySettings {
        smtp: n
            .smtp
            .as_ref()
            .map(|s| praxis_notify::channels::email::SmtpSettings {
                host: s.host.clone(),
                port: s.port,
                tls: s.tls,
                username: s.username.clone(),
                password: s.password.clone(),
                from: n.email_from.clone(),
                timeout: n.provider_timeout,
                ca_file: n.smtp_ca_file.clone(),
            }),
        email_from: n.email_from.clone(),
        webhook_secret: webhook_secret.expose().to_owned(),
        provider_timeout: n.provider_timeout,
        sms_url: n.sms_url.clone(),
        push_url: n.push_url.clone(),
        concurrency,
        max_attempts: per_channel(&n.max_attempts),
        retry_base: n.retry_base,
        retry_max: n.retry_max,
        lease: n.lease,
        rate_limits: n
            .rate_limits
            .iter()
            .map(|(p, l)| {
                (
                    p.clone(),
                    praxis_notify::ProviderLimit {
                        limit: l.limit,
                        period: l.period,
                    },
                )
            })
            .collect(),
        breaker: praxis_notify::BreakerSettings {
            failures: n.breaker_failures,
            open_for: n.breaker_open,
            max_open: n.breaker_max_open,
        },
        webhook_allow_private: n.webhook_allow_private,
        webhook_allow_cidrs: n.webhook_allow_cidrs.clone(),
        retention: n.retention,
        retention_interval: n.retention_interval,
        ..praxis_notify::NotifySettings::default()
    }
}

/// The notification system: its webhook secret resolved (configured, or generated under
/// data_dir), then the pipeline started.
fn notify<'a>(platform: &'a Platform, ctx: &'a RunContext) -> BuildFuture<'a> {
    Box::pin(async move {
        let (secret, source) = crate::notify_secret::resolve(&ctx.config)?;
        match &source {
            crate::secret_file::KeySource::Configured => {
                tracing::info!("notify webhook secret: configured");
            }
            crate::secret_file::KeySource::Existing(path) => tracing::info!(
                path = %path.display(),
                "notify webhook secret: read from the file generated earlier (receivers verify signatures with it)"
            ),
            crate::secret_file::KeySource::Generated(path) => tracing::info!(
                path = %path.display(),
                "notify webhook secret: generated (give it to webhook receivers; it is never logged)"
            ),
        }
        // Subscriber tokens (inbox, unsubscribe links) are keyed from the JWT signing secret:
        // server-only and shared by every process, unlike the webhook secret that receivers
        // hold (D54).
        let settings = praxis_notify::NotifySettings {
            public_base_url: Some(ctx.base_url.to_string()),
            token_secret: ctx.jwt_secret.expose().to_owned(),
            ..notify_settings(&ctx.config, &secret)
        };
        praxis_notify::service(platform, settings)
            .await
            .context("cannot start the notification system")
    })
}

/// The feed's settings from the configuration (Redis keys under the deployment's prefix).
pub fn feed_settings(cfg: &Config) -> praxis_feed::FeedSettings {
    praxis_feed::FeedSettings {
        celebrity_threshold: cfg.feed.celebrity_threshold,
        timeline_cap: cfg.feed.timeline_cap,
        active_window: cfg.feed.active_window,
        fanout_batch: cfg.feed.fanout_batch,
        key_prefix: cfg.prefix.clone(),
        ..praxis_feed::FeedSettings::default()
    }
}

/// The news feed: posts, follows, timelines with fan-out on write and on read.
fn feed<'a>(platform: &'a Platform, ctx: &'a RunContext) -> BuildFuture<'a> {
    Box::pin(async move {
        praxis_feed::service(platform, feed_settings(&ctx.config))
            .await
            .context("cannot start the news feed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_selection_keeps_registry_order() {
        let names = names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let all: Vec<String> = names.iter().rev().map(|n| (*n).to_owned()).collect();
        let picked: Vec<&str> = selected(&all).iter().map(|s| s.name).collect();
        assert_eq!(picked, names);
        assert!(selected(&["nope".to_owned()]).is_empty());
    }
}
