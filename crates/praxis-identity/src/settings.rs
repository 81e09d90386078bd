//! The identity system's settings: [`IdentitySection`] is its `[identity]` config section,
//! [`IdentitySettings`] what it runs with (the section plus the signing secret and the trusted
//! proxies the binary hands it).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError, Settings};
use praxis_kit::text::{format_duration, parse_count_per};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::password::HashCost;

/// Shortest accepted HS256 secret, in bytes (RFC 7518: at least the hash output size).
pub const MIN_SECRET_LEN: usize = 32;

/// A limit of `limit` events per `period`, written `COUNT/DURATION` (`10/15m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.limit, format_duration(self.period))
    }
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a limit (expected COUNT/DURATION with COUNT >= 1, e.g. 10/15m)"
            )
        };
        let (limit, period) = parse_count_per(text).ok_or_else(bad)?;
        Ok(Limit { limit, period })
    }
}

/// The `[identity]` config section: token claims and lifetimes, the external identity
/// provider, login limits. The signing secret is the server's (`jwt_secret`), not a key here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySection {
    /// `iss` of praxis's access tokens.
    pub jwt_issuer: String,
    /// `aud` of praxis's access tokens.
    pub jwt_audience: String,
    /// Lifetime of access tokens.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub access_token_ttl: Duration,
    /// Lifetime of a login's refresh tokens.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub refresh_token_ttl: Duration,
    /// JWKS URL of an external identity provider whose RS256 tokens are accepted.
    #[serde(with = "praxis_kit::text::serde_with::option_display")]
    pub jwks_url: Option<Url>,
    /// `iss` of the provider's tokens (required with `jwks_url`).
    pub jwks_issuer: Option<String>,
    /// `aud` the provider's tokens must carry; unset: `jwt_audience`.
    pub jwks_audience: Option<String>,
    /// Login attempts allowed per account.
    #[serde(with = "praxis_kit::text::serde_with::display")]
    pub login_limit_account: Limit,
    /// Login attempts allowed per client IP.
    #[serde(with = "praxis_kit::text::serde_with::display")]
    pub login_limit_ip: Limit,
    /// How long a resolved API key is cached.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub api_key_cache_ttl: Duration,
    /// How long an `Idempotency-Key` answer is kept.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub idempotency_ttl: Duration,
}

impl Default for IdentitySection {
    fn default() -> Self {
        let d = IdentitySettings::with_secret(Vec::new());
        Self {
            jwt_issuer: d.issuer,
            jwt_audience: d.audience,
            access_token_ttl: d.access_token_ttl,
            refresh_token_ttl: d.refresh_token_ttl,
            jwks_url: None,
            jwks_issuer: None,
            jwks_audience: None,
            login_limit_account: d.login_limit_account,
            login_limit_ip: d.login_limit_ip,
            api_key_cache_ttl: d.api_key_cache_ttl,
            idempotency_ttl: d.idempotency_ttl,
        }
    }
}

/// The documented keys of the `[identity]` section; the keys that existed before sections
/// keep their flat names.
pub const KEYS: &[Key] = &[
    Key::new(
        "jwt_issuer",
        "iss claim of the access tokens praxis issues and accepts",
    )
    .legacy("jwt_issuer"),
    Key::new(
        "jwt_audience",
        "aud claim of the access tokens praxis issues and accepts",
    )
    .legacy("jwt_audience"),
    Key::new(
        "access_token_ttl",
        "lifetime of access tokens (a stolen one works this long)",
    )
    .legacy("access_token_ttl"),
    Key::new(
        "refresh_token_ttl",
        "lifetime of a login's refresh tokens (rotation does not extend it)",
    )
    .legacy("refresh_token_ttl"),
    Key::new(
        "jwks_url",
        "JWKS URL of an external identity provider whose RS256 tokens are accepted",
    )
    .legacy("jwks_url")
    .unset("only praxis's own HS256 tokens are accepted"),
    Key::new(
        "jwks_issuer",
        "iss claim of the external identity provider's tokens",
    )
    .legacy("jwks_issuer")
    .unset("required with jwks_url"),
    Key::new(
        "jwks_audience",
        "aud claim the external identity provider's tokens must carry",
    )
    .legacy("jwks_audience")
    .unset("jwt_audience"),
    Key::new(
        "login_limit_account",
        "login attempts allowed per account, COUNT/DURATION (429 beyond it)",
    )
    .legacy("login_limit_account"),
    Key::new(
        "login_limit_ip",
        "login attempts allowed per client IP, COUNT/DURATION (429 beyond it)",
    )
    .legacy("login_limit_ip"),
    Key::new(
        "api_key_cache_ttl",
        "how long a resolved API key is cached (revocation invalidates at once)",
    ),
    Key::new(
        "idempotency_ttl",
        "how long an Idempotency-Key answer is kept",
    ),
];

impl Settings for IdentitySection {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        for (key, value) in [
            ("jwt_issuer", Some(&self.jwt_issuer)),
            ("jwt_audience", Some(&self.jwt_audience)),
            ("jwks_issuer", self.jwks_issuer.as_ref()),
            ("jwks_audience", self.jwks_audience.as_ref()),
        ] {
            if let Some(v) = value
                && (v.trim().is_empty() || v.len() > 256 || v.chars().any(char::is_control))
            {
                checks.fail(
                    key,
                    format!("{v:?} is not a claim value (expected 1 to 256 characters)"),
                );
            }
        }
        for (key, ttl) in [
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
        ] {
            if ttl < Duration::from_secs(10) || ttl > Duration::from_secs(366 * 24 * 3600) {
                checks.fail(
                    key,
                    format!(
                        "{} is out of range (expected between 10s and 8784h)",
                        format_duration(ttl)
                    ),
                );
            }
        }
        if self.access_token_ttl > Duration::from_secs(24 * 3600) {
            checks.fail(
                "access_token_ttl",
                "must be at most 24h (a stolen token works until it expires)",
            );
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            checks.fail(
                "refresh_token_ttl",
                format!(
                    "{} is not longer than access_token_ttl ({})",
                    format_duration(self.refresh_token_ttl),
                    format_duration(self.access_token_ttl)
                ),
            );
        }
        if let Some(url) = &self.jwks_url {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty)
            {
                checks.fail("jwks_url",
                    "must be an https URL with a host (or http for a local provider), e.g. https://idp.example.com/.well-known/jwks.json",
                );
            }
            if self.jwks_issuer.is_none() {
                checks.fail(
                    "jwks_issuer",
                    "is unset but jwks_url is set (expected the iss of the provider's tokens)",
                );
            }
        }
        checks.finish()
    }
}

impl IdentitySection {
    /// The settings the identity system runs with: this section, the server's signing secret
    /// and the proxies whose `X-Forwarded-For` is believed.
    pub fn into_settings(
        self,
        jwt_secret: &[u8],
        trusted_proxies: Vec<praxis_http::client_ip::Cidr>,
    ) -> IdentitySettings {
        let jwks = self.jwks_url.map(|url| JwksSettings {
            url,
            issuer: self.jwks_issuer.clone().unwrap_or_default(),
            audience: self
                .jwks_audience
                .clone()
                .unwrap_or_else(|| self.jwt_audience.clone()),
            cache_ttl: Duration::from_secs(600),
            min_refresh_interval: Duration::from_secs(10),
        });
        IdentitySettings {
            issuer: self.jwt_issuer,
            audience: self.jwt_audience,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            jwks,
            login_limit_account: self.login_limit_account,
            login_limit_ip: self.login_limit_ip,
            trusted_proxies,
            api_key_cache_ttl: self.api_key_cache_ttl,
            idempotency_ttl: self.idempotency_ttl,
            ..IdentitySettings::with_secret(jwt_secret.to_vec())
        }
    }
}

/// Where RS256 tokens of an external identity provider are verified.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The provider's JWKS URL (its `jwks_uri`).
    pub url: Url,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The `aud` its tokens must carry for praxis.
    pub audience: String,
    /// How long fetched keys are used before they are fetched again.
    pub cache_ttl: Duration,
    /// Least time between two fetches caused by unknown `kid`s (so a flood of tokens with
    /// random key ids cannot turn praxis into a JWKS load generator).
    pub min_refresh_interval: Duration,
}

/// Everything the identity system can be tuned with.
#[derive(Clone)]
pub struct IdentitySettings {
    /// HS256 secret that signs and verifies praxis's own access tokens; at least 32 bytes.
    pub jwt_secret: Vec<u8>,
    /// `iss` of praxis's access tokens. Default `praxis`.
    pub issuer: String,
    /// `aud` of praxis's access tokens. Default `praxis`.
    pub audience: String,
    /// Lifetime of access tokens. Default 15 minutes.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (each rotation starts a new one; the family as a whole is
    /// not extended past this from its login). Default 30 days.
    pub refresh_token_ttl: Duration,
    /// Tolerated clock difference for `exp` and `nbf`. Default 30 s.
    pub clock_skew: Duration,
    /// RS256 tokens from an external identity provider; `None` accepts praxis's tokens only.
    pub jwks: Option<JwksSettings>,
    /// Failed logins allowed per account (email) before further attempts are refused with 429.
    /// Default 10 per 15 minutes.
    pub login_limit_account: Limit,
    /// Login attempts allowed per client IP. Default 50 per 15 minutes.
    pub login_limit_ip: Limit,
    /// Networks of the proxies whose `X-Forwarded-For` is believed for the client IP of login
    /// limits (empty: the peer address is the client). The binary passes the `[rate_limit]`
    /// table's `trusted_proxies`, so both see the same client.
    pub trusted_proxies: Vec<praxis_http::client_ip::Cidr>,
    /// Argon2id cost of new password hashes. Default OWASP's (19 MiB, t=2, p=1).
    pub hash_cost: HashCost,
    /// How long a resolved API key is cached (revocation invalidates at once, everywhere).
    /// Default 60 s.
    pub api_key_cache_ttl: Duration,
    /// Least time between two writes of an API key's `last_used_at`. Default 60 s.
    pub last_used_interval: Duration,
    /// How long an `Idempotency-Key` answer is kept. Default 24 h.
    pub idempotency_ttl: Duration,
}

impl std::fmt::Debug for IdentitySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySettings")
            .field("jwt_secret", &"****")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("jwks", &self.jwks)
            .field("login_limit_account", &self.login_limit_account)
            .field("login_limit_ip", &self.login_limit_ip)
            .field("hash_cost", &self.hash_cost)
            .finish_non_exhaustive()
    }
}

impl IdentitySettings {
    /// Defaults around a given secret.
    pub fn with_secret(jwt_secret: impl Into<Vec<u8>>) -> Self {
        Self {
            jwt_secret: jwt_secret.into(),
            issuer: "praxis".into(),
            audience: "praxis".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            clock_skew: Duration::from_secs(30),
            jwks: None,
            login_limit_account: Limit {
                limit: 10,
                period: Duration::from_secs(15 * 60),
            },
            login_limit_ip: Limit {
                limit: 50,
                period: Duration::from_secs(15 * 60),
            },
            trusted_proxies: Vec::new(),
            hash_cost: HashCost::OWASP,
            api_key_cache_ttl: Duration::from_secs(60),
            last_used_interval: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// A setting with a value the identity system cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity setting {key}: {message}")]
pub struct SettingsError {
    /// The setting's name.
    pub key: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl IdentitySettings {
    /// Checks every value; the error names the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |key, message: String| Err(SettingsError { key, message });
        if self.jwt_secret.len() < MIN_SECRET_LEN {
            return err(
                "jwt_secret",
                format!(
                    "is {} bytes long (expected at least {MIN_SECRET_LEN})",
                    self.jwt_secret.len()
                ),
            );
        }
        if self.issuer.trim().is_empty() {
            return err("jwt_issuer", "must not be empty".into());
        }
        if self.audience.trim().is_empty() {
            return err("jwt_audience", "must not be empty".into());
        }
        if self.access_token_ttl < Duration::from_secs(10)
            || self.access_token_ttl > Duration::from_secs(24 * 3600)
        {
            return err(
                "access_token_ttl",
                "must be between 10s and 24h (short: a stolen token works until it expires)".into(),
            );
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            return err(
                "refresh_token_ttl",
                "must be longer than access_token_ttl".into(),
            );
        }
        if self.clock_skew > Duration::from_secs(300) {
            return err("clock_skew", "must be at most 5m".into());
        }
        for (key, l) in [
            ("login_limit_account", self.login_limit_account),
            ("login_limit_ip", self.login_limit_ip),
        ] {
            if l.limit == 0 || l.period.is_zero() {
                return err(
                    key,
                    "needs a limit of at least 1 and a positive period".into(),
                );
            }
        }
        if let Some(j) = &self.jwks {
            if !matches!(j.url.scheme(), "http" | "https") {
                return err("jwks_url", format!("`{}` must be an http(s) URL", j.url));
            }
            if j.issuer.trim().is_empty() {
                return err("jwks_issuer", "is required with jwks_url".into());
            }
            if j.audience.trim().is_empty() {
                return err("jwks_audience", "must not be empty".into());
            }
        }
        if let Err(e) = crate::domain::password::Hasher::new(self.hash_cost) {
            return err("hash_cost", e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_and_write_as_count_per_duration() {
        let l: Limit = "10/15m".parse().expect("limit");
        assert_eq!(
            l,
            Limit {
                limit: 10,
                period: Duration::from_secs(900)
            }
        );
        assert_eq!(l.to_string(), "10/15m");
        assert_eq!(" 5 / 1s ".parse::<Limit>().map(|l| l.limit), Ok(5));
        for bad in ["", "10", "0/1m", "10/0", "x/1m", "10/soon"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn section_checks_name_their_keys() {
        assert_eq!(IdentitySection::default().validate(), Ok(()));
        let s = IdentitySection {
            refresh_token_ttl: Duration::from_secs(60),
            jwks_url: Some(Url::parse("https://idp.example.com/jwks.json").expect("url")),
            ..IdentitySection::default()
        };
        let keys: Vec<&str> = s
            .validate()
            .expect_err("invalid")
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["refresh_token_ttl", "jwks_issuer"]);
        let settings = IdentitySection::default().into_settings(&[7u8; 32], Vec::new());
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn defaults_are_valid_and_secrets_are_checked() {
        let s = IdentitySettings::with_secret(vec![7u8; 32]);
        assert_eq!(s.validate(), Ok(()));
        assert!(!format!("{s:?}").contains("7, 7"));
        let short = IdentitySettings::with_secret(vec![7u8; 31]);
        assert_eq!(short.validate().map_err(|e| e.key), Err("jwt_secret"));
        let ttl = IdentitySettings {
            refresh_token_ttl: Duration::from_secs(60),
            ..IdentitySettings::with_secret(vec![7u8; 32])
        };
        assert_eq!(ttl.validate().map_err(|e| e.key), Err("refresh_token_ttl"));
    }
}
