//! The notification service's settings; the binary maps its `notify_*` configuration keys
//! onto [`NotifySettings`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::channel::Channel;
use crate::domain::order_event::OrderEventKind;
use crate::workers::channels::email::SmtpSettings;

/// Scope of the sending and managing routes (send, bulk, templates, subscribers, dead
/// letters). The admin role implies it.
pub const NOTIFY_WRITE: &str = "notify:write";
/// Scope of the reading routes (templates, subscribers). The admin role implies it.
pub const NOTIFY_READ: &str = "notify:read";

/// A value per channel: one default and per-channel overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerChannel<T> {
    /// The value of channels without an override.
    pub default: T,
    /// Per-channel values.
    pub overrides: BTreeMap<Channel, T>,
}

impl<T: Copy> PerChannel<T> {
    /// The same value for every channel.
    pub fn all(value: T) -> Self {
        Self {
            default: value,
            overrides: BTreeMap::new(),
        }
    }

    /// The value of `channel`.
    pub fn get(&self, channel: Channel) -> T {
        self.overrides
            .get(&channel)
            .copied()
            .unwrap_or(self.default)
    }

    /// Sets the value of one channel.
    pub fn with(mut self, channel: Channel, value: T) -> Self {
        self.overrides.insert(channel, value);
        self
    }
}

/// At most `limit` sends per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderLimit {
    /// Sends per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
}

/// How the circuit breaker of each provider trips and recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive transient failures that open it.
    pub failures: u32,
    /// First open period (doubles on each failed probe).
    pub open_for: Duration,
    /// Longest open period.
    pub max_open: Duration,
}

/// Everything the notification service can be tuned with.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// SMTP relay for email; `None` writes `.eml` files to [`NotifySettings::eml_dir`] (and
    /// says so in the log).
    pub smtp: Option<SmtpSettings>,
    /// The sender of emails, `addr@example.com` or `Name <addr@example.com>`.
    pub email_from: String,
    /// Where `.eml` files go without SMTP; `None`: `<data_dir>/notify/outbox`.
    pub eml_dir: Option<PathBuf>,
    /// Standard Webhooks signing secret (`whsec_` + base64 of 24 to 64 bytes) of webhooks and
    /// gateways.
    pub webhook_secret: String,
    /// Server-only secret that keys subscriber tokens (inbox tokens, unsubscribe links): never
    /// the webhook secret, which every receiver holds and could mint tokens with. The binary
    /// passes its JWT signing secret (the tokens' keys are derived from it under their own
    /// labels); at least 16 bytes.
    pub token_secret: String,
    /// Whole-request timeout of webhook and gateway posts (SMTP uses it per command).
    pub provider_timeout: Duration,
    /// SMS gateway URL; `None` disables the sms channel (a send asking for it is a 400).
    pub sms_url: Option<String>,
    /// Push gateway URL; `None` disables the push channel.
    pub push_url: Option<String>,
    /// Sends in flight at once, per channel (per process).
    pub concurrency: PerChannel<usize>,
    /// Attempts per delivery before it becomes a dead letter, per channel.
    pub max_attempts: PerChannel<u32>,
    /// First retry delay ceiling (doubles per attempt, full jitter).
    pub retry_base: Duration,
    /// Largest retry delay ceiling.
    pub retry_max: Duration,
    /// How long a claimed delivery is owned by its process; after a crash it is sent again
    /// once this has passed. Must exceed `provider_timeout`.
    pub lease: Duration,
    /// How often idle dispatchers look for due deliveries (they are also woken in-process).
    pub poll_interval: Duration,
    /// Per-provider rate limits, by provider name (`smtp`, `eml-file`, `webhook`,
    /// `sms-gateway`, `push-gateway`). Webhooks are limited per receiver (URL origin).
    pub rate_limits: BTreeMap<String, ProviderLimit>,
    /// Circuit breakers (one per provider; per receiver origin for webhooks).
    pub breaker: BreakerSettings,
    /// Most messages in one bulk send.
    pub bulk_max: usize,
    /// How far ahead `send_at` may be.
    pub max_schedule_ahead: Duration,
    /// How often queue depth and age are sampled for metrics.
    pub metrics_interval: Duration,
    /// Webhooks may go to any address: the [SSRF guard](crate::domain::ssrf) is off.
    pub webhook_allow_private: bool,
    /// Ranges webhooks may reach although the SSRF guard refuses them by default (e.g. an
    /// internal receiver's network).
    pub webhook_allow_cidrs: Vec<praxis_http::client_ip::Cidr>,
    /// How long messages whose deliveries are all final are kept (with their deliveries and
    /// attempts; inbox rows stay); zero keeps them forever. See [`crate::workers::retention`].
    pub retention: Duration,
    /// How often the pruning task runs.
    pub retention_interval: Duration,
    /// Whether this process runs the expander and the dispatchers; false for a process that
    /// only accepts and serves the API while other processes (sharing the database and bus)
    /// deliver.
    pub workers: bool,
    /// How long `Idempotency-Key` answers of the template and bulk routes are kept.
    pub idempotency_ttl: Duration,
    /// The `user-agent` of webhook and gateway posts.
    pub user_agent: String,
    /// Public base URL of this deployment (`https://notify.example.com`), for the links the
    /// service puts in messages: with it, every email to a subscriber carries a one-click
    /// `List-Unsubscribe` link to `{public_base_url}/api/v1/notify/unsubscribe?token=...`;
    /// `None`: no such header.
    pub public_base_url: Option<String>,
    /// The commerce order events whose buyer is emailed (see
    /// [`crate::workers::order_events`]); empty: the consumer of `commerce.orders` does not
    /// run. It runs only in processes with [`NotifySettings::workers`].
    pub order_events: Vec<OrderEventKind>,
}

impl Default for NotifySettings {
    /// Email to `.eml` files, no SMS or push gateway, an empty webhook secret (which
    /// [`NotifySettings::validate`] refuses: the binary generates or reads one).
    fn default() -> Self {
        Self {
            smtp: None,
            email_from: "praxis <notify@localhost>".to_owned(),
            eml_dir: None,
            webhook_secret: String::new(),
            token_secret: String::new(),
            provider_timeout: Duration::from_secs(10),
            sms_url: None,
            push_url: None,
            concurrency: PerChannel::all(16),
            max_attempts: PerChannel::all(8),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            rate_limits: BTreeMap::new(),
            breaker: BreakerSettings {
                failures: 5,
                open_for: Duration::from_secs(5),
                max_open: Duration::from_secs(300),
            },
            bulk_max: 1000,
            max_schedule_ahead: Duration::from_secs(366 * 24 * 3600),
            metrics_interval: Duration::from_secs(5),
            webhook_allow_private: false,
            webhook_allow_cidrs: Vec::new(),
            retention: Duration::from_secs(30 * 24 * 3600),
            retention_interval: Duration::from_secs(3600),
            workers: true,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            user_agent: format!("praxis-notify/{}", env!("CARGO_PKG_VERSION")),
            public_base_url: None,
            order_events: OrderEventKind::EMAILED_BY_DEFAULT.to_vec(),
        }
    }
}

impl NotifySettings {
    /// The SSRF guard's policy for webhook URLs.
    pub fn ssrf_policy(&self) -> crate::domain::ssrf::SsrfPolicy {
        crate::domain::ssrf::SsrfPolicy {
            allow_private: self.webhook_allow_private,
            allow_cidrs: self.webhook_allow_cidrs.clone(),
        }
    }

    /// Whether `channel` can be used (sms and push need their gateway).
    pub fn channel_enabled(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms_url.is_some(),
            Channel::Push => self.push_url.is_some(),
            Channel::Email | Channel::Webhook | Channel::InApp => true,
        }
    }

    /// The channels that can be used.
    pub fn enabled_channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| self.channel_enabled(*c))
            .collect()
    }

    /// Checks values that would make the service misbehave; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        crate::workers::channels::standard_webhooks::Secret::parse(&self.webhook_secret)
            .map_err(|e| format!("webhook_secret: {e}"))?;
        if self.token_secret.trim().len() < 16 {
            return Err("token_secret must be at least 16 bytes (a server-only secret that keys subscriber tokens)".into());
        }
        if self.token_secret.trim() == self.webhook_secret.trim() {
            return Err("token_secret must not be the webhook secret: every webhook receiver holds that one and could mint subscriber tokens".into());
        }
        for channel in Channel::ALL {
            if self.concurrency.get(channel) == 0 {
                return Err(format!(
                    "concurrency of {} must be at least 1",
                    channel.as_str()
                ));
            }
            if self.max_attempts.get(channel) == 0 {
                return Err(format!(
                    "max_attempts of {} must be at least 1",
                    channel.as_str()
                ));
            }
        }
        if self.retry_base.is_zero() || self.retry_max < self.retry_base {
            return Err("retry_base must be positive and at most retry_max".into());
        }
        if self.lease <= self.provider_timeout {
            return Err(format!(
                "lease ({:?}) must be longer than provider_timeout ({:?}), or a slow send would be taken over while it runs",
                self.lease, self.provider_timeout
            ));
        }
        if self.poll_interval.is_zero() || self.metrics_interval.is_zero() {
            return Err("poll_interval and metrics_interval must be positive".into());
        }
        if self.retention_interval.is_zero() {
            return Err("retention_interval must be positive".into());
        }
        if self.bulk_max == 0 {
            return Err("bulk_max must be at least 1".into());
        }
        if self.breaker.failures == 0 || self.breaker.open_for.is_zero() {
            return Err("breaker failures and open_for must be positive".into());
        }
        if let Some(base) = &self.public_base_url {
            crate::domain::unsubscribe::check_base_url(base)
                .map_err(|e| format!("public_base_url: {e}"))?;
        }
        for (name, limit) in &self.rate_limits {
            if limit.limit == 0 || limit.period.is_zero() {
                return Err(format!(
                    "rate limit of {name} must allow at least 1 per positive period"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NotifySettings {
        NotifySettings {
            webhook_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            token_secret: "a server-only test secret".into(),
            ..NotifySettings::default()
        }
    }

    #[test]
    fn defaults_need_only_a_secret() {
        assert!(NotifySettings::default().validate().is_err());
        assert_eq!(valid().validate(), Ok(()));
        assert_eq!(
            valid().enabled_channels(),
            vec![Channel::Email, Channel::Webhook, Channel::InApp]
        );
    }

    #[test]
    fn bad_values_are_named() {
        let s = NotifySettings {
            concurrency: PerChannel::all(4).with(Channel::Sms, 0),
            ..valid()
        };
        assert!(s.validate().expect_err("zero").contains("sms"));
        let s = NotifySettings {
            lease: Duration::from_secs(5),
            ..valid()
        };
        assert!(s.validate().expect_err("lease").starts_with("lease"));
    }

    #[test]
    fn per_channel_values() {
        let p = PerChannel::all(3).with(Channel::Webhook, 9);
        assert_eq!(p.get(Channel::Webhook), 9);
        assert_eq!(p.get(Channel::Email), 3);
    }
}
