//! The notification keys (`notify_*`): the SMTP relay (or `.eml` files), the webhook signing
//! secret, the SMS and push gateways, and the delivery pipeline's tuning (concurrency and
//! attempts per channel, retry backoff, lease, provider timeout, per-provider rate limits,
//! circuit breakers). Read into [`NotifyConfig`], part of [`super::Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use praxis_http::client_ip::Cidr;
use praxis_notify::channels::Channel;
use praxis_notify::channels::email::SmtpTls;
use praxis_notify::channels::standard_webhooks::Secret as WebhookSecret;

use super::identity::{RateLimit, rate_limit};
use super::{ConfigError, Reader, Secret, units, values};

/// The SMTP relay named by `notify_smtp_url`.
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

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish()
    }
}

/// A value for every channel: a default and per-channel overrides (`16,webhook=32`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerChannel {
    /// The value of channels without an override.
    pub default: u32,
    /// Overrides.
    pub overrides: BTreeMap<Channel, u32>,
}

impl std::fmt::Display for PerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.default)?;
        for (c, v) in &self.overrides {
            write!(f, ",{}={v}", c.as_str())?;
        }
        Ok(())
    }
}

/// The notification service's configuration.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// SMTP relay; `None`: emails are written as .eml files under `<data_dir>/notify/outbox`.
    pub smtp: Option<SmtpUrl>,
    /// PEM file of CA certificates trusted for the SMTP relay (besides the public roots).
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender of emails.
    pub email_from: String,
    /// The configured webhook signing secret (`whsec_...`), if any.
    pub webhook_secret: Option<Secret>,
    /// The file it was read from, if configured that way.
    pub webhook_secret_file: Option<PathBuf>,
    /// SMS gateway URL; `None`: the sms channel is off.
    pub sms_url: Option<String>,
    /// Push gateway URL; `None`: the push channel is off.
    pub push_url: Option<String>,
    /// Sends in flight per channel and process.
    pub concurrency: PerChannel,
    /// Attempts per delivery before it becomes a dead letter, per channel.
    pub max_attempts: PerChannel,
    /// First retry delay ceiling.
    pub retry_base: Duration,
    /// Largest retry delay ceiling.
    pub retry_max: Duration,
    /// How long a claimed delivery belongs to its process.
    pub lease: Duration,
    /// Timeout of one webhook or gateway post (and of each SMTP command).
    pub provider_timeout: Duration,
    /// Rate limits by provider name.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Consecutive failures that open a provider's breaker.
    pub breaker_failures: u32,
    /// First open period of a breaker.
    pub breaker_open: Duration,
    /// Longest open period of a breaker.
    pub breaker_max_open: Duration,
    /// Webhooks may reach any address (the SSRF guard is off).
    pub webhook_allow_private: bool,
    /// Ranges webhooks may reach although the SSRF guard refuses them.
    pub webhook_allow_cidrs: Vec<Cidr>,
    /// How long messages whose deliveries are all final are kept; zero: forever.
    pub retention: Duration,
    /// How often old messages are pruned.
    pub retention_interval: Duration,
}

/// Provider names accepted in `notify_rate_limits`.
pub const PROVIDERS: &[&str] = &["smtp", "eml-file", "webhook", "sms-gateway", "push-gateway"];

/// Reads and cross-checks the notify keys; `None` when one is invalid (the error is recorded).
pub(super) fn read(r: &mut Reader<'_>) -> Option<NotifyConfig> {
    let smtp = r.optional("notify_smtp_url", smtp_url);
    let smtp_ca_file = r.optional("notify_smtp_ca_file", ca_file);
    let email_from = r.required("notify_email_from", email_from);
    let secret = r.optional("notify_webhook_secret", |t| webhook_secret(t).map(Secret));
    let secret_file = r.optional("notify_webhook_secret_file", |t| {
        Ok(PathBuf::from(t.trim()))
    });
    let sms_url = r.optional("notify_sms_url", |t| {
        gateway_url(t, "https://sms-gateway.example.com/send")
    });
    let push_url = r.optional("notify_push_url", |t| {
        gateway_url(t, "https://push-gateway.example.com/send")
    });
    let concurrency = r.required("notify_concurrency", |t| {
        per_channel(t, 1, 4096, "16,webhook=64")
    });
    let max_attempts = r.required("notify_max_attempts", |t| {
        per_channel(t, 1, 1000, "8,email=5")
    });
    let retry_base = r.required("notify_retry_base", |t| positive(t, "1s"));
    let retry_max = r.required("notify_retry_max", |t| positive(t, "10m"));
    let lease = r.required("notify_lease", |t| positive(t, "60s"));
    let provider_timeout = r.required("notify_provider_timeout", |t| positive(t, "10s"));
    let rate_limits = r.required("notify_rate_limits", rate_limits);
    let breaker_failures = r.required("notify_breaker_failures", |t| {
        match t.trim().parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(format!(
                "{t:?} is not a failure count (expected 1 to 10000, e.g. 5)"
            )),
        }
    });
    let breaker_open = r.required("notify_breaker_open", |t| positive(t, "5s"));
    let breaker_max_open = r.required("notify_breaker_max_open", |t| positive(t, "5m"));
    let webhook_allow_private = r.required("notify_webhook_allow_private", values::boolean);
    let webhook_allow_cidrs = r.required("notify_webhook_allow_cidrs", cidrs);
    let retention = r.required("notify_retention", units::parse_duration);
    let retention_interval = r.required("notify_retention_interval", |t| positive(t, "1h"));

    let webhook_secret = match (secret, secret_file.clone()) {
        (Some(Some(_)), Some(Some(_))) => {
            let key = r
                .origin("notify_webhook_secret")
                .locate("notify_webhook_secret");
            let file = r
                .origin("notify_webhook_secret_file")
                .locate("notify_webhook_secret_file");
            r.errors.push(ConfigError::new(
                key,
                format!("is set and so is {file}; set only one of them"),
            ));
            None
        }
        (Some(None), Some(Some(path))) => {
            let origin = r.origin("notify_webhook_secret_file");
            let read = read_webhook_secret_file(&path);
            r.check("notify_webhook_secret_file", &origin, read)
                .map(Some)
        }
        (key, Some(None)) => key,
        (None, Some(Some(_))) | (_, None) => None,
    };
    let (
        Some(smtp),
        Some(email_from),
        Some(webhook_secret),
        Some(webhook_secret_file),
        Some(sms_url),
        Some(push_url),
        Some(concurrency),
        Some(max_attempts),
        Some(retry_base),
        Some(retry_max),
        Some(lease),
        Some(provider_timeout),
        Some(rate_limits),
        Some(breaker_failures),
        Some(breaker_open),
        Some(breaker_max_open),
    ) = (
        smtp,
        email_from,
        webhook_secret,
        secret_file,
        sms_url,
        push_url,
        concurrency,
        max_attempts,
        retry_base,
        retry_max,
        lease,
        provider_timeout,
        rate_limits,
        breaker_failures,
        breaker_open,
        breaker_max_open,
    )
    else {
        return None;
    };
    let smtp_ca_file = smtp_ca_file?;
    let (
        Some(webhook_allow_private),
        Some(webhook_allow_cidrs),
        Some(retention),
        Some(retention_interval),
    ) = (
        webhook_allow_private,
        webhook_allow_cidrs,
        retention,
        retention_interval,
    )
    else {
        return None;
    };
    if let Some(path) = &smtp_ca_file
        && smtp.as_ref().is_none_or(|s| s.tls == SmtpTls::None)
    {
        let at = r
            .origin("notify_smtp_ca_file")
            .locate("notify_smtp_ca_file");
        r.errors.push(ConfigError::new(
            at,
            format!(
                "is set ({}) but notify_smtp_url does not use TLS (unset, or tls=none)",
                path.display()
            ),
        ));
        return None;
    }
    if retry_max < retry_base {
        let at = r.origin("notify_retry_max").locate("notify_retry_max");
        r.errors.push(ConfigError::new(
            at,
            format!(
                "{} is shorter than notify_retry_base ({})",
                units::format_duration(retry_max),
                units::format_duration(retry_base)
            ),
        ));
        return None;
    }
    if lease <= provider_timeout {
        let at = r.origin("notify_lease").locate("notify_lease");
        r.errors.push(ConfigError::new(
            at,
            format!(
                "{} is not longer than notify_provider_timeout ({}): a slow send would be taken over by another process while it runs",
                units::format_duration(lease),
                units::format_duration(provider_timeout)
            ),
        ));
        return None;
    }
    Some(NotifyConfig {
        smtp,
        smtp_ca_file,
        email_from,
        webhook_secret,
        webhook_secret_file,
        sms_url,
        push_url,
        concurrency,
        max_attempts,
        retry_base,
        retry_max,
        lease,
        provider_timeout,
        rate_limits,
        breaker_failures,
        breaker_open,
        breaker_max_open,
        webhook_allow_private,
        webhook_allow_cidrs,
        retention,
        retention_interval,
    })
}

/// Reads comma-separated CIDR blocks (`10.20.0.0/16,fd00::/8`; a bare address is one host);
/// empty: none.
pub fn cidrs(text: &str) -> Result<Vec<Cidr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::parse::<Cidr>)
        .collect()
}

/// Reads `smtp://[USER[:PASSWORD]@]HOST[:PORT][?tls=starttls|none]` (STARTTLS required unless
/// `tls=none`; port 587, or 25 without TLS) or `smtps://...` (implicit TLS, port 465).
pub fn smtp_url(text: &str) -> Result<SmtpUrl, String> {
    let bad = |why: &str| {
        format!(
            "{:?} is not an SMTP URL: {why} (expected smtp://USER:PASSWORD@HOST:587, smtps://HOST:465 or smtp://HOST:25?tls=none)",
            values::mask_url(text)
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

/// A PEM file of CA certificates: readable, with at least one certificate block (lettre parses
/// it when the provider is built).
pub fn ca_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text.trim());
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(path)
}

/// An email sender: `addr@example.com` or `Name <addr@example.com>`.
fn email_from(text: &str) -> Result<String, String> {
    praxis_notify::address::sender(text)
}

/// Checks a webhook secret (`whsec_` + base64 of 24 to 64 bytes) without echoing it.
fn webhook_secret(text: &str) -> Result<String, String> {
    WebhookSecret::parse(text.trim()).map(|s| s.to_whsec())
}

/// Reads the webhook secret held in `path`: a `whsec_...` secret, or the 64 hex characters of
/// a secret file generated by praxis (32 random bytes).
pub fn read_webhook_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let t = text.trim();
    let parsed = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        WebhookSecret::from_bytes(&bytes).map(|s| s.to_whsec())
    } else {
        webhook_secret(t)
    };
    parsed
        .map(Secret)
        .map_err(|msg| format!("the secret in {}: {msg}", path.display()))
}

fn gateway_url(text: &str, example: &str) -> Result<String, String> {
    values::server_url(text, &["http", "https"], example)
}

fn positive(text: &str, example: &str) -> Result<Duration, String> {
    let d = units::parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "{text:?} is zero (expected a positive duration, e.g. {example})"
        ));
    }
    Ok(d)
}

/// Reads `N` or `N,channel=N,...` (`16,webhook=64`): a default and per-channel overrides, each
/// within `min..=max`.
pub fn per_channel(text: &str, min: u32, max: u32, example: &str) -> Result<PerChannel, String> {
    let bad = |why: String| {
        format!(
            "{text:?} is not a per-channel value: {why} (expected N or N,channel=N, e.g. {example})"
        )
    };
    let number = |s: &str| -> Result<u32, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!(
                "{:?} is not a number from {min} to {max}",
                s.trim()
            ))),
        }
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
    Ok(PerChannel { default, overrides })
}

/// Reads `provider=COUNT/DURATION,...` (`smtp=10/1s,webhook=100/1s`); empty: no limits.
pub fn rate_limits(text: &str) -> Result<BTreeMap<String, RateLimit>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, limit)) = part.split_once('=') else {
            return Err(format!(
                "{part:?} is not a provider limit (expected PROVIDER=COUNT/DURATION, e.g. smtp=10/1s)"
            ));
        };
        let name = name.trim();
        if !PROVIDERS.contains(&name) {
            return Err(format!(
                "{name:?} is not a provider (expected one of {})",
                PROVIDERS.join(", ")
            ));
        }
        if out.insert(name.to_owned(), rate_limit(limit)?).is_some() {
            return Err(format!("{name} is limited twice"));
        }
    }
    Ok(out)
}

/// The `notify_rate_limits` text of `limits` (as [`rate_limits`] reads it).
pub fn format_rate_limits(limits: &BTreeMap<String, RateLimit>) -> String {
    limits
        .iter()
        .map(|(p, l)| format!("{p}={l}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `notify_smtp_url` text of `smtp`, password masked.
pub fn format_smtp(smtp: &SmtpUrl) -> String {
    let scheme = if smtp.tls == SmtpTls::Implicit {
        "smtps"
    } else {
        "smtp"
    };
    let auth = match (&smtp.username, &smtp.password) {
        (Some(u), Some(_)) => format!("{u}:****@"),
        (Some(u), None) => format!("{u}@"),
        _ => String::new(),
    };
    let query = if smtp.tls == SmtpTls::None {
        "?tls=none"
    } else {
        ""
    };
    format!("{scheme}://{auth}{}:{}{query}", smtp.host, smtp.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_ca_files_must_hold_a_pem_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let err = ca_file(&missing.display().to_string()).expect_err("missing");
        assert!(err.contains("cannot read"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let err = ca_file(&junk.display().to_string()).expect_err("junk");
        assert!(err.contains("no PEM certificate"), "{err}");
        let ok = dir.path().join("ca.pem");
        std::fs::write(
            &ok,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        assert_eq!(ca_file(&format!(" {} ", ok.display())), Ok(ok));
    }

    #[test]
    fn smtp_urls() {
        let s = smtp_url("smtp://user%40x:p%3Ass@mail.example.com").expect("ok");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(s.username.as_deref(), Some("user@x"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        let s = smtp_url("smtps://mail.example.com").expect("ok");
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        let s = smtp_url("smtp://127.0.0.1:2525?tls=none").expect("ok");
        assert_eq!((s.port, s.tls), (2525, SmtpTls::None));
        assert!(format_smtp(&s).ends_with("127.0.0.1:2525?tls=none"));
        for bad in [
            "http://x",
            "smtp://",
            "smtps://h?tls=none",
            "smtp://h?x=1",
            "not a url",
        ] {
            assert!(smtp_url(bad).is_err(), "{bad:?}");
        }
        let err = smtp_url("smtp://u:secretpw@h?tls=bogus").expect_err("bad tls");
        assert!(!err.contains("secretpw"), "{err}");
    }

    #[test]
    fn per_channel_values() {
        let p = per_channel("16,webhook=64, sms=2", 1, 100, "x").expect("ok");
        assert_eq!(p.default, 16);
        assert_eq!(p.overrides.get(&Channel::Webhook), Some(&64));
        assert_eq!(p.to_string(), "16,webhook=64,sms=2");
        for bad in [
            "",
            "webhook=3",
            "0",
            "16,fax=2",
            "16,webhook=1,webhook=2",
            "1,2",
            "101",
        ] {
            assert!(per_channel(bad, 1, 100, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn provider_limits() {
        let l = rate_limits("smtp=10/1s, webhook=100/1m").expect("ok");
        assert_eq!(l["smtp"].limit, 10);
        assert_eq!(format_rate_limits(&l), "smtp=10/1s,webhook=100/1m");
        assert!(rate_limits("").expect("empty").is_empty());
        for bad in ["smtp", "fax=1/1s", "smtp=0/1s", "smtp=1/1s,smtp=2/1s"] {
            assert!(rate_limits(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn webhook_cidr_lists() {
        let c = cidrs(" 10.20.0.0/16, fd00::/8,127.0.0.1 ").expect("ok");
        assert_eq!(c.len(), 3);
        assert!(c[2].contains("127.0.0.1".parse().expect("ip")));
        assert!(cidrs("").expect("empty").is_empty());
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/8,x"] {
            assert!(cidrs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn webhook_secrets() {
        assert!(webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        let err = webhook_secret("whsec_c2hvcnQ=").expect_err("short");
        assert!(!err.contains("c2hvcnQ"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).expect("write");
        let s = read_webhook_secret_file(&path).expect("hex file");
        assert!(s.expose().starts_with("whsec_"));
        std::fs::write(&path, "nope").expect("write");
        assert!(read_webhook_secret_file(&path).is_err());
    }
}
