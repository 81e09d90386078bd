//! The identity system's settings; the binary maps its configuration onto
//! [`IdentitySettings`].

use std::time::Duration;

use url::Url;

use crate::domain::password::HashCost;

/// Shortest accepted HS256 secret, in bytes (RFC 7518: at least the hash output size).
pub const MIN_SECRET_LEN: usize = 32;

/// A limit of `limit` events per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
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
