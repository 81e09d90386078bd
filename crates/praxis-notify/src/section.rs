//! The `[notify]` config section: the SMTP relay (or `.eml` files), the SMS and push
//! gateways, and the delivery pipeline's tuning. [`NotifySection::into_settings`] turns it,
//! with the secrets and the public base URL the binary hands over, into [`NotifySettings`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use praxis_http::client_ip::Cidr;
use praxis_http::system::{Checks, Key, SecretSpec, SettingError, Settings};
use praxis_kit::text::{format_duration, parse_count_per};
use serde::{Deserialize, Serialize};

use crate::domain::channel::Channel;
use crate::domain::order_event::OrderEventKind;
use crate::settings::{BreakerSettings, NotifySettings, PerChannel, ProviderLimit};
use crate::workers::channels::email::{SmtpSettings, SmtpTls};
use crate::workers::channels::standard_webhooks::Secret as WebhookSecret;

/// Provider names accepted in `rate_limits`.
pub const PROVIDERS: &[&str] = &["smtp", "eml-file", "webhook", "sms-gateway", "push-gateway"];

/// The SMTP relay named by `smtp_url`: `smtp://[USER[:PASSWORD]@]HOST[:PORT][?tls=starttls|none]`
/// (STARTTLS unless `tls=none`; port 587, or 25 without TLS) or `smtps://...` (implicit TLS,
/// port 465). Its `Display` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// AUTH user, if any.
    pub username: Option<String>,
    /// AUTH password, if any (never printed).
    pub password: Option<String>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == SmtpTls::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:****@"),
            (Some(u), None) => format!("{u}@"),
            _ => String::new(),
        };
        let query = if self.tls == SmtpTls::None {
            "?tls=none"
        } else {
            ""
        };
        write!(f, "{scheme}://{auth}{}:{}{query}", self.host, self.port)
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{:?} is not an SMTP URL: {why} (expected smtp://USER:PASSWORD@HOST:587, smtps://HOST:465 or smtp://HOST:25?tls=none)",
                praxis_infra::sql::redact(text.trim())
            )
        };
        let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut tls = match url.scheme() {
            "smtp" => SmtpTls::StartTls,
            "smtps" => SmtpTls::Implicit,
            _ => return Err(bad("the scheme must be smtp or smtps")),
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), url.scheme()) {
                ("tls", "starttls", "smtp") => tls = SmtpTls::StartTls,
                ("tls", "none", "smtp") => tls = SmtpTls::None,
                ("tls", _, _) => {
                    return Err(bad(
                        "tls must be starttls or none (smtp://), or use smtps:// for implicit TLS",
                    ));
                }
                (other, _, _) => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        let port = url.port().unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let username = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(decode);
        Ok(SmtpUrl {
            host,
            port,
            tls,
            username,
            password,
        })
    }
}

/// A value for every channel, written `N` or `N,channel=N,...` (`16,webhook=64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerChannelText(pub PerChannel<u32>);

impl fmt::Display for PerChannelText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.default)?;
        for (c, v) in &self.0.overrides {
            write!(f, ",{}={v}", c.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for PerChannelText {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: String| {
            format!(
                "{text:?} is not a per-channel value: {why} (expected N or N,channel=N, e.g. 16,webhook=64)"
            )
        };
        let number = |s: &str| -> Result<u32, String> {
            s.trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("{:?} is not a whole number", s.trim())))
        };
        let mut default = None;
        let mut overrides = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => {
                    if default.replace(number(part)?).is_some() {
                        return Err(bad("two defaults".into()));
                    }
                }
                Some((name, value)) => {
                    let channel = Channel::parse(name.trim()).ok_or_else(|| {
                        bad(format!(
                            "{:?} is not a channel (email, webhook, sms, push, in_app)",
                            name.trim()
                        ))
                    })?;
                    if overrides.insert(channel, number(value)?).is_some() {
                        return Err(bad(format!("{} is given twice", channel.as_str())));
                    }
                }
            }
        }
        let default = default.ok_or_else(|| bad("no default".into()))?;
        Ok(PerChannelText(PerChannel { default, overrides }))
    }
}

impl PerChannelText {
    /// An error for `key` when a value is outside `min..=max`.
    fn check(&self, key: &'static str, min: u32, max: u32) -> Option<SettingError> {
        let values = std::iter::once(self.0.default).chain(self.0.overrides.values().copied());
        values
            .into_iter()
            .find(|v| !(min..=max).contains(v))
            .map(|v| SettingError::new(key, format!("{v} is not from {min} to {max}")))
    }
}

/// Rate limits by provider, written `provider=COUNT/DURATION,...` (`smtp=10/1s,webhook=100/1s`);
/// empty: no limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderLimits(pub BTreeMap<String, ProviderLimit>);

impl fmt::Display for ProviderLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(p, l)| format!("{p}={}/{}", l.limit, format_duration(l.period)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for ProviderLimits {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                format!(
                    "{part:?} is not a provider limit (expected PROVIDER=COUNT/DURATION with COUNT >= 1, e.g. smtp=10/1s)"
                )
            };
            let (name, limit) = part.split_once('=').ok_or_else(bad)?;
            let name = name.trim();
            if !PROVIDERS.contains(&name) {
                return Err(format!(
                    "{name:?} is not a provider (expected one of {})",
                    PROVIDERS.join(", ")
                ));
            }
            let (count, period) = parse_count_per(limit).ok_or_else(bad)?;
            let limit = ProviderLimit {
                limit: count,
                period,
            };
            if out.insert(name.to_owned(), limit).is_some() {
                return Err(format!("{name} is limited twice"));
            }
        }
        Ok(ProviderLimits(out))
    }
}

/// The `[notify]` section (flat names `notify_<key>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySection {
    /// SMTP relay; unset: emails are written as `.eml` files under `<data_dir>/notify/outbox`.
    #[serde(with = "praxis_kit::text::serde_with::option_display")]
    pub smtp_url: Option<SmtpUrl>,
    /// PEM file of CA certificates trusted for the relay, besides the server's trust policy.
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender of emails.
    pub email_from: String,
    /// SMS gateway URL; unset: the sms channel is off.
    pub sms_url: Option<String>,
    /// Push gateway URL; unset: the push channel is off.
    pub push_url: Option<String>,
    /// Sends in flight per channel and process.
    #[serde(with = "praxis_kit::text::serde_with::display")]
    pub concurrency: PerChannelText,
    /// Attempts per delivery before it becomes a dead letter, per channel.
    #[serde(with = "praxis_kit::text::serde_with::display")]
    pub max_attempts: PerChannelText,
    /// First retry delay ceiling.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub retry_base: Duration,
    /// Largest retry delay ceiling.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub retry_max: Duration,
    /// How long a claimed delivery belongs to its process.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub lease: Duration,
    /// Timeout of one webhook or gateway post (and of each SMTP command).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub provider_timeout: Duration,
    /// Rate limits by provider.
    #[serde(with = "praxis_kit::text::serde_with::display")]
    pub rate_limits: ProviderLimits,
    /// Consecutive failures that open a provider's breaker.
    pub breaker_failures: u32,
    /// First open period of a breaker.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub breaker_open: Duration,
    /// Longest open period of a breaker.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub breaker_max_open: Duration,
    /// Webhooks may reach any address (the SSRF guard is off).
    pub webhook_allow_private: bool,
    /// Ranges webhooks may reach although the SSRF guard refuses them.
    #[serde(with = "praxis_kit::text::serde_with::display_list")]
    pub webhook_allow_cidrs: Vec<Cidr>,
    /// How long messages whose deliveries are all final are kept; zero: forever.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub retention: Duration,
    /// How often old messages are pruned.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub retention_interval: Duration,
    /// Whether this process expands and delivers messages (false: it only serves the API).
    pub workers: bool,
    /// The commerce order events whose buyer is emailed; empty: none (the consumer is off).
    #[serde(with = "praxis_kit::text::serde_with::display_list")]
    pub order_events: Vec<OrderEventKind>,
}

impl Default for NotifySection {
    fn default() -> Self {
        let d = NotifySettings::default();
        Self {
            smtp_url: None,
            smtp_ca_file: None,
            email_from: d.email_from,
            sms_url: None,
            push_url: None,
            concurrency: PerChannelText(PerChannel::all(16)),
            max_attempts: PerChannelText(PerChannel::all(8)),
            retry_base: d.retry_base,
            retry_max: d.retry_max,
            lease: d.lease,
            provider_timeout: d.provider_timeout,
            rate_limits: ProviderLimits::default(),
            breaker_failures: d.breaker.failures,
            breaker_open: d.breaker.open_for,
            breaker_max_open: d.breaker.max_open,
            webhook_allow_private: false,
            webhook_allow_cidrs: Vec::new(),
            retention: d.retention,
            retention_interval: d.retention_interval,
            workers: d.workers,
            order_events: d.order_events,
        }
    }
}

/// The documented keys of the `[notify]` section.
pub const KEYS: &[Key] = &[
    Key::new(
        "smtp_url",
        "SMTP relay: smtp://USER:PASSWORD@HOST:587 (STARTTLS), smtps://HOST:465 (implicit TLS) or smtp://HOST:25?tls=none",
    )
    .unset("emails are written as .eml files under <data_dir>/notify/outbox"),
    Key::new(
        "smtp_ca_file",
        "PEM file of CA certificates trusted for the SMTP relay's certificate, besides the server's trust policy (OS store plus tls_ca_file); needs TLS",
    )
    .unset("the relay's certificate must chain to the server's trust policy (OS store plus tls_ca_file)"),
    Key::new(
        "email_from",
        "sender of notification emails: addr@example.com or Name <addr@example.com>",
    ),
    Key::new(
        "sms_url",
        "SMS gateway: https URL that receives a signed JSON POST per message",
    )
    .unset("the sms channel is off"),
    Key::new(
        "push_url",
        "push gateway: https URL that receives a signed JSON POST per message",
    )
    .unset("the push channel is off"),
    Key::new(
        "concurrency",
        "sends in flight per channel and process: N or N,channel=N (e.g. 16,webhook=64)",
    ),
    Key::new(
        "max_attempts",
        "attempts per delivery before it becomes a dead letter: N or N,channel=N",
    ),
    Key::new(
        "retry_base",
        "first retry delay ceiling (doubles per attempt, full jitter)",
    ),
    Key::new("retry_max", "largest retry delay ceiling"),
    Key::new(
        "lease",
        "how long a claimed delivery belongs to its process (sent again after a crash once it passes); longer than provider_timeout",
    ),
    Key::new(
        "provider_timeout",
        "timeout of one webhook or gateway post (and of each SMTP command)",
    ),
    Key::new(
        "rate_limits",
        "sends per provider, PROVIDER=COUNT/DURATION,... (providers smtp, eml-file, webhook, sms-gateway, push-gateway; webhooks per receiver)",
    ),
    Key::new(
        "breaker_failures",
        "consecutive failures that open a provider's circuit breaker (1 to 10000)",
    ),
    Key::new(
        "breaker_open",
        "first open period of a breaker (doubles on each failed probe)",
    ),
    Key::new("breaker_max_open", "longest open period of a breaker"),
    Key::new(
        "workers",
        "expand and deliver messages in this process (false: it only accepts and serves the API, and processes with workers deliver)",
    ),
    Key::new(
        "webhook_allow_private",
        "let webhooks reach private, loopback and link-local addresses (turns the SSRF guard off)",
    ),
    Key::new(
        "webhook_allow_cidrs",
        "comma-separated ranges webhooks may reach although the SSRF guard refuses them (an internal receiver)",
    ),
    Key::new(
        "retention",
        "how long messages whose deliveries are all final are kept; 0 keeps them forever",
    ),
    Key::new("retention_interval", "how often old messages are pruned"),
    Key::new(
        "order_events",
        "commerce order events (bus topic commerce.orders) that email the buyer, comma-separated: placed, paid, shipped, confirmed, cancelled, compensated; empty: none (the consumer is off)",
    ),
];

/// The webhook signing secret (Standard Webhooks), a secret of the section.
pub const SECRETS: &[SecretSpec] = &[SecretSpec {
    name: "webhook_secret",
    file_key: "webhook_secret_file",
    doc: "Standard Webhooks signing secret of webhooks and gateways, whsec_ + base64 of 24 to 64 bytes; receivers verify with it",
    file: "notify-webhook.secret",
    generate: generate_webhook_secret,
    read: read_webhook_secret,
}];

/// A new webhook secret in the form receivers take: `whsec_` + base64 of 32 random bytes.
pub fn generate_webhook_secret() -> String {
    let bytes: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    WebhookSecret::from_bytes(&bytes)
        .map(|s| s.to_whsec())
        .unwrap_or_default()
}

/// Reads a webhook secret as `whsec_...`: that form, or the 64 hex characters of a secret file
/// generated by an earlier praxis. The message never holds the secret.
pub fn read_webhook_secret(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        return WebhookSecret::from_bytes(&bytes).map(|s| s.to_whsec());
    }
    WebhookSecret::parse(t).map(|s| s.to_whsec())
}

fn gateway_url(key: &'static str, url: &Option<String>) -> Option<SettingError> {
    let text = url.as_deref()?;
    let ok = url::Url::parse(text.trim()).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    (!ok).then(|| {
        SettingError::new(
            key,
            format!(
                "{:?} is not an http or https URL (expected e.g. https://gateway.example.com/send)",
                praxis_infra::sql::redact(text.trim())
            ),
        )
    })
}

fn ca_file_error(path: &PathBuf) -> Option<String> {
    match std::fs::read_to_string(path) {
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
        Ok(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => Some(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        Ok(_) => None,
    }
}

impl Settings for NotifySection {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        if let Err(e) = crate::domain::address::sender(&self.email_from) {
            checks.fail("email_from", e);
        }
        checks.extend(gateway_url("sms_url", &self.sms_url));
        checks.extend(gateway_url("push_url", &self.push_url));
        checks.extend(self.concurrency.check("concurrency", 1, 4096));
        checks.extend(self.max_attempts.check("max_attempts", 1, 1000));
        for (key, d) in [
            ("retry_base", self.retry_base),
            ("retry_max", self.retry_max),
            ("lease", self.lease),
            ("provider_timeout", self.provider_timeout),
            ("breaker_open", self.breaker_open),
            ("breaker_max_open", self.breaker_max_open),
            ("retention_interval", self.retention_interval),
        ] {
            if d.is_zero() {
                checks.fail(key, "is zero (expected a positive duration, e.g. 10s)");
            }
        }
        if !(1..=10_000).contains(&self.breaker_failures) {
            checks.fail(
                "breaker_failures",
                format!(
                    "{} is not a failure count (expected 1 to 10000, e.g. 5)",
                    self.breaker_failures
                ),
            );
        }
        if let Some(path) = &self.smtp_ca_file {
            if self
                .smtp_url
                .as_ref()
                .is_none_or(|s| s.tls == SmtpTls::None)
            {
                checks.fail(
                    "smtp_ca_file",
                    format!(
                        "is set ({}) but smtp_url does not use TLS (unset, or tls=none)",
                        path.display()
                    ),
                );
            } else if let Some(e) = ca_file_error(path) {
                checks.fail("smtp_ca_file", e);
            }
        }
        if self.retry_max < self.retry_base {
            checks.fail(
                "retry_max",
                format!(
                    "{} is shorter than retry_base ({})",
                    format_duration(self.retry_max),
                    format_duration(self.retry_base)
                ),
            );
        }
        if self.lease <= self.provider_timeout {
            checks.fail("lease",
                format!(
                    "{} is not longer than provider_timeout ({}): a slow send would be taken over by another process while it runs",
                    format_duration(self.lease),
                    format_duration(self.provider_timeout)
                ),
            );
        }
        checks.finish()
    }
}

impl NotifySection {
    /// The settings the pipeline runs with: this section, the webhook secret (`whsec_...`),
    /// the server-only secret subscriber tokens are keyed from (D54), and the deployment's
    /// public base URL (unsubscribe links).
    pub fn into_settings(
        self,
        webhook_secret: String,
        token_secret: String,
        public_base_url: Option<String>,
    ) -> NotifySettings {
        let widen = |p: PerChannel<u32>| PerChannel {
            default: p.default as usize,
            overrides: p
                .overrides
                .into_iter()
                .map(|(c, v)| (c, v as usize))
                .collect(),
        };
        NotifySettings {
            smtp: self.smtp_url.map(|s| SmtpSettings {
                host: s.host,
                port: s.port,
                tls: s.tls,
                username: s.username,
                password: s.password,
                from: self.email_from.clone(),
                timeout: self.provider_timeout,
                ca_file: self.smtp_ca_file.clone(),
            }),
            email_from: self.email_from,
            webhook_secret,
            token_secret,
            provider_timeout: self.provider_timeout,
            sms_url: self.sms_url,
            push_url: self.push_url,
            concurrency: widen(self.concurrency.0),
            max_attempts: self.max_attempts.0,
            retry_base: self.retry_base,
            retry_max: self.retry_max,
            lease: self.lease,
            rate_limits: self.rate_limits.0,
            breaker: BreakerSettings {
                failures: self.breaker_failures,
                open_for: self.breaker_open,
                max_open: self.breaker_max_open,
            },
            webhook_allow_private: self.webhook_allow_private,
            webhook_allow_cidrs: self.webhook_allow_cidrs,
            retention: self.retention,
            retention_interval: self.retention_interval,
            workers: self.workers,
            public_base_url,
            order_events: self.order_events,
            ..NotifySettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let s: SmtpUrl = "smtp://user%40x:p%3Ass@mail.example.com"
            .parse()
            .expect("ok");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(s.username.as_deref(), Some("user@x"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert!(!s.to_string().contains("p:ss"), "{s}");
        let s: SmtpUrl = "smtps://mail.example.com".parse().expect("ok");
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        let s: SmtpUrl = "smtp://127.0.0.1:2525?tls=none".parse().expect("ok");
        assert_eq!((s.port, s.tls), (2525, SmtpTls::None));
        assert!(s.to_string().ends_with("127.0.0.1:2525?tls=none"));
        for bad in [
            "http://x",
            "smtp://",
            "smtps://h?tls=none",
            "smtp://h?x=1",
            "not a url",
        ] {
            assert!(bad.parse::<SmtpUrl>().is_err(), "{bad:?}");
        }
        let err = "smtp://u:secretpw@h?tls=bogus"
            .parse::<SmtpUrl>()
            .expect_err("bad tls");
        assert!(!err.contains("secretpw"), "{err}");
    }

    #[test]
    fn per_channel_values() {
        let p: PerChannelText = "16,webhook=64, sms=2".parse().expect("ok");
        assert_eq!(p.0.default, 16);
        assert_eq!(p.0.overrides.get(&Channel::Webhook), Some(&64));
        assert_eq!(p.to_string(), "16,webhook=64,sms=2");
        assert!(p.check("concurrency", 1, 100).is_none());
        assert!(p.check("concurrency", 1, 10).is_some());
        for bad in ["", "webhook=3", "16,fax=2", "16,webhook=1,webhook=2", "1,2"] {
            assert!(bad.parse::<PerChannelText>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn provider_limits() {
        let l: ProviderLimits = "smtp=10/1s, webhook=100/1m".parse().expect("ok");
        assert_eq!(l.0["smtp"].limit, 10);
        assert_eq!(l.to_string(), "smtp=10/1s,webhook=100/1m");
        assert!("".parse::<ProviderLimits>().expect("empty").0.is_empty());
        for bad in ["smtp", "fax=1/1s", "smtp=0/1s", "smtp=1/1s,smtp=2/1s"] {
            assert!(bad.parse::<ProviderLimits>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_secret_file_key_follows_the_naming_rule() {
        for spec in SECRETS {
            assert_eq!(spec.file_key, format!("{}_file", spec.name));
        }
    }

    #[test]
    fn webhook_secrets_read_as_whsec_and_are_never_echoed() {
        assert!(read_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        let err = read_webhook_secret("whsec_c2hvcnQ=").expect_err("short");
        assert!(!err.contains("c2hvcnQ"), "{err}");
        let from_hex = read_webhook_secret(&"ab".repeat(32)).expect("hex of an older file");
        assert!(from_hex.starts_with("whsec_"));
        let fresh = generate_webhook_secret();
        assert!(fresh.starts_with("whsec_"));
        assert_eq!(read_webhook_secret(&fresh), Ok(fresh.clone()));
        assert_ne!(fresh, generate_webhook_secret());
    }

    #[test]
    fn order_events_are_a_list_of_types() {
        let d = NotifySection::default();
        assert_eq!(
            d.order_events,
            OrderEventKind::EMAILED_BY_DEFAULT.to_vec(),
            "confirmed, shipped, cancelled and compensated by default"
        );
        let s: NotifySection =
            serde_json::from_value(serde_json::json!({"order_events": "paid, confirmed"}))
                .expect("a list");
        assert_eq!(
            s.order_events,
            [OrderEventKind::Paid, OrderEventKind::Confirmed]
        );
        let off: NotifySection =
            serde_json::from_value(serde_json::json!({"order_events": ""})).expect("empty");
        assert!(off.order_events.is_empty());
        let err = serde_json::from_value::<NotifySection>(
            serde_json::json!({"order_events": "confirmed,refunded"}),
        )
        .expect_err("unknown type");
        assert!(err.to_string().contains("refunded"), "{err}");
        assert_eq!(
            serde_json::to_value(&d).expect("serializes")["order_events"],
            "confirmed,shipped,cancelled,compensated"
        );
    }

    #[test]
    fn cross_checks_name_their_keys() {
        assert_eq!(NotifySection::default().validate(), Ok(()));
        let s = NotifySection {
            retry_max: Duration::from_millis(1),
            lease: Duration::from_secs(1),
            smtp_ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            breaker_failures: 0,
            ..NotifySection::default()
        };
        let keys: Vec<&str> = s
            .validate()
            .expect_err("invalid")
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            ["breaker_failures", "smtp_ca_file", "retry_max", "lease"]
        );
    }
}
