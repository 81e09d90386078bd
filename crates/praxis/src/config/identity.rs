//! The identity keys: JWT secret, issuer and audience, token lifetimes, the external identity
//! provider (JWKS), login limits. Read into [`IdentityConfig`], part of [`super::Config`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, Reader, Secret, units, values};

/// Shortest JWT secret accepted (bytes; RFC 7518 asks for at least the HMAC output size).
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// A limit of `limit` events per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.limit, units::format_duration(self.period))
    }
}

/// The identity system's configuration.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The configured HS256 secret (`PRAXIS_JWT_SECRET` or `jwt_secret_file`), if any.
    pub jwt_secret: Option<Secret>,
    /// The file the secret was read from, if configured that way.
    pub jwt_secret_file: Option<PathBuf>,
    /// `iss` of praxis's access tokens.
    pub jwt_issuer: String,
    /// `aud` of praxis's access tokens.
    pub jwt_audience: String,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of a login's refresh tokens.
    pub refresh_token_ttl: Duration,
    /// JWKS of an external identity provider.
    pub jwks_url: Option<url::Url>,
    /// `iss` of the provider's tokens.
    pub jwks_issuer: Option<String>,
    /// `aud` the provider's tokens must carry (default: `jwt_audience`).
    pub jwks_audience: Option<String>,
    /// Login attempts per account.
    pub login_limit_account: RateLimit,
    /// Login attempts per client IP.
    pub login_limit_ip: RateLimit,
}

impl IdentityConfig {
    /// The audience required of the external provider's tokens.
    pub fn effective_jwks_audience(&self) -> &str {
        self.jwks_audience.as_deref().unwrap_or(&self.jwt_audience)
    }
}

/// Reads and cross-checks the identity keys; `None` when one is invalid (the error is recorded).
pub(super) fn read(r: &mut Reader<'_>) -> Option<IdentityConfig> {
    let secret = r.optional("jwt_secret", |t| jwt_secret(t).map(Secret));
    let secret_file = r.optional("jwt_secret_file", |t| Ok(PathBuf::from(t.trim())));
    let issuer = r.required("jwt_issuer", |t| claim(t, "praxis"));
    let audience = r.required("jwt_audience", |t| claim(t, "praxis"));
    let access = r.required("access_token_ttl", |t| ttl(t, "15m"));
    let refresh = r.required("refresh_token_ttl", |t| ttl(t, "720h"));
    let jwks_url = r.optional("jwks_url", jwks_url);
    let jwks_issuer = r.optional("jwks_issuer", |t| claim(t, "https://idp.example.com/"));
    let jwks_audience = r.optional("jwks_audience", |t| claim(t, "praxis"));
    let account = r.required("login_limit_account", rate_limit);
    let ip = r.required("login_limit_ip", rate_limit);

    let jwt_secret = match (secret, secret_file.clone()) {
        (Some(Some(_)), Some(Some(_))) => {
            let key = r.origin("jwt_secret").locate("jwt_secret");
            let file = r.origin("jwt_secret_file").locate("jwt_secret_file");
            r.errors.push(ConfigError::new(
                key,
                format!("is set and so is {file}; set only one of them"),
            ));
            None
        }
        (Some(None), Some(Some(path))) => {
            let origin = r.origin("jwt_secret_file");
            let read = read_jwt_secret_file(&path);
            r.check("jwt_secret_file", &origin, read).map(Some)
        }
        (key, Some(None)) => key,
        (None, Some(Some(_))) | (_, None) => None,
    };
    let (
        Some(jwt_secret),
        Some(jwt_secret_file),
        Some(jwt_issuer),
        Some(jwt_audience),
        Some(access_token_ttl),
        Some(refresh_token_ttl),
        Some(jwks_url),
        Some(jwks_issuer),
        Some(jwks_audience),
        Some(login_limit_account),
        Some(login_limit_ip),
    ) = (
        jwt_secret,
        secret_file,
        issuer,
        audience,
        access,
        refresh,
        jwks_url,
        jwks_issuer,
        jwks_audience,
        account,
        ip,
    )
    else {
        return None;
    };
    if refresh_token_ttl <= access_token_ttl {
        let at = r.origin("refresh_token_ttl").locate("refresh_token_ttl");
        r.errors.push(ConfigError::new(
            at,
            format!(
                "{} is not longer than access_token_ttl ({})",
                units::format_duration(refresh_token_ttl),
                units::format_duration(access_token_ttl)
            ),
        ));
        return None;
    }
    if jwks_url.is_some() && jwks_issuer.is_none() {
        let at = r.origin("jwks_issuer").locate("jwks_issuer");
        r.errors.push(ConfigError::new(
            at,
            "is unset but jwks_url is set (expected the iss of the provider's tokens)",
        ));
        return None;
    }
    Some(IdentityConfig {
        jwt_secret,
        jwt_secret_file,
        jwt_issuer,
        jwt_audience,
        access_token_ttl,
        refresh_token_ttl,
        jwks_url,
        jwks_issuer,
        jwks_audience,
        login_limit_account,
        login_limit_ip,
    })
}

/// Checks a JWT secret without ever echoing it.
fn jwt_secret(text: &str) -> Result<String, String> {
    let key = text.trim();
    if key.len() < MIN_JWT_SECRET_LEN {
        return Err(format!(
            "is {} bytes long (expected at least {MIN_JWT_SECRET_LEN} visible ASCII characters)",
            key.len()
        ));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "contains spaces, control or non-ASCII characters (expected visible ASCII only)"
                .to_owned(),
        );
    }
    Ok(key.to_owned())
}

/// Reads and checks the JWT secret held in `path`.
pub fn read_jwt_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    jwt_secret(&text)
        .map(Secret)
        .map_err(|msg| format!("the secret in {} {msg}", path.display()))
}

fn claim(text: &str, example: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 256 || t.chars().any(char::is_control) {
        return Err(format!(
            "{text:?} is not a claim value (expected 1 to 256 characters, e.g. {example})"
        ));
    }
    Ok(t.to_owned())
}

fn ttl(text: &str, example: &str) -> Result<Duration, String> {
    let d = units::parse_duration(text)?;
    if d < Duration::from_secs(10) || d > Duration::from_secs(366 * 24 * 3600) {
        return Err(format!(
            "{text:?} is out of range (expected between 10s and 8784h, e.g. {example})"
        ));
    }
    Ok(d)
}

fn jwks_url(text: &str) -> Result<url::Url, String> {
    let bad = |why: &str| {
        format!(
            "{:?} is not a JWKS URL: {why} (expected e.g. https://idp.example.com/.well-known/jwks.json)",
            values::mask_url(text)
        )
    };
    let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "the scheme must be https (or http for a local provider)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    Ok(url)
}

/// Reads `N/DURATION` (`10/15m`: 10 per 15 minutes).
pub fn rate_limit(text: &str) -> Result<RateLimit, String> {
    let bad = || {
        format!("{text:?} is not a limit (expected COUNT/DURATION with COUNT >= 1, e.g. 10/15m)")
    };
    let (n, d) = text.trim().split_once('/').ok_or_else(bad)?;
    let limit: u64 = n.trim().parse().map_err(|_| bad())?;
    let period = units::parse_duration(d).map_err(|_| bad())?;
    if limit == 0 || period.is_zero() {
        return Err(bad());
    }
    Ok(RateLimit { limit, period })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            rate_limit("10/15m"),
            Ok(RateLimit {
                limit: 10,
                period: Duration::from_secs(900)
            })
        );
        assert_eq!(rate_limit(" 5 / 1s ").map(|l| l.limit), Ok(5));
        for bad in ["", "10", "0/1m", "10/0", "x/1m", "10/soon"] {
            assert!(rate_limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RateLimit {
                limit: 10,
                period: Duration::from_secs(900)
            }
            .to_string(),
            "10/15m"
        );
    }

    #[test]
    fn secrets_are_checked_but_never_echoed() {
        let e = jwt_secret("short-secret").expect_err("short");
        assert!(!e.contains("short-secret"), "{e}");
        assert!(jwt_secret(&"x".repeat(32)).is_ok());
        assert!(jwt_secret(&format!("{} y", "x".repeat(32))).is_err());
    }
}
