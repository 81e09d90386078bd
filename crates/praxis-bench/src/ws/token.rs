//! Access tokens for the bench's accounts, signed as praxis's identity signs them: HS256 with
//! the server's `jwt_secret`, `iss` and `aud` from its `[identity] jwt_issuer` and
//! `jwt_audience` (both `praxis` by default), and the claims identity writes (`sub`, `iat`,
//! `nbf`, `exp`, `jti`, `scope`, `role`, `plan`). Each bench connection is its own account,
//! `<prefix><index>`: the chat needs no sign-up, an account is whatever the token's `sub`
//! says.
//!
//! The secret comes from `PRAXIS_JWT_SECRET` (what `praxis serve` reads) or from a file
//! (`--jwt-secret-file`, e.g. the `<data_dir>/jwt.secret` an embedded server generates on its
//! first start); trailing whitespace of the file is ignored, as the server ignores it.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The environment variable holding the server's signing secret.
pub const SECRET_ENV: &str = "PRAXIS_JWT_SECRET";

/// The claims of a bench token (the same set identity issues).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the server's `jwt_issuer`.
    pub iss: String,
    /// Audience: the server's `jwt_audience`.
    pub aud: String,
    /// The account.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Not before, unix seconds (a few seconds back, for clock skew).
    pub nbf: u64,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Unique id of the token.
    pub jti: String,
    /// Scopes: none (a logged-in account needs none to chat).
    pub scope: String,
    /// `user`.
    pub role: String,
    /// `default`.
    pub plan: String,
}

impl Claims {
    /// The claims of `account`'s token issued at `now` (unix seconds), valid for `ttl`.
    pub fn new(issuer: &str, audience: &str, account: &str, now: u64, ttl: Duration) -> Self {
        Claims {
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            sub: account.to_owned(),
            iat: now,
            nbf: now.saturating_sub(5),
            exp: now + ttl.as_secs().max(1),
            jti: format!("bench-{account}-{now}"),
            scope: String::new(),
            role: "user".to_owned(),
            plan: "default".to_owned(),
        }
    }
}

/// Why tokens cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The secret file could not be read.
    #[error("--jwt-secret-file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret is empty.
    #[error(
        "the JWT secret is empty: set {SECRET_ENV} (or --jwt-secret-file) to the server's jwt secret"
    )]
    Empty,
    /// Signing failed.
    #[error("signing a bench token failed: {0}")]
    Sign(String),
}

/// Signs the bench's access tokens.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `secret` (the server's `jwt_secret`, as bytes of its text).
    pub fn new(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Result<Self, TokenError> {
        if secret.is_empty() {
            return Err(TokenError::Empty);
        }
        let key = EncodingKey::from_secret(secret).map_err(|e| TokenError::Sign(e.to_string()))?;
        Ok(Signer {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        })
    }

    /// The secret from `file` when given, else from `PRAXIS_JWT_SECRET`; `None` when neither
    /// is set (connections then go without a token, which only the reference accepts).
    pub fn secret_from(file: Option<&Path>) -> Result<Option<Vec<u8>>, TokenError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Some(text.trim_end().as_bytes().to_vec()));
        }
        Ok(std::env::var(SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes))
    }

    /// A signed token for `account`, issued now.
    pub fn token(&self, account: &str) -> Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims::new(&self.issuer, &self.audience, account, now, self.ttl);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }
}

/// The account of bench client `index`: `<prefix><index>`.
pub fn account(prefix: &str, index: usize) -> String {
    format!("{prefix}{index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn claims_are_identitys() {
        let c = Claims::new(
            "praxis",
            "praxis",
            "wsb-7",
            1_000_000,
            Duration::from_secs(3600),
        );
        assert_eq!((c.iss.as_str(), c.aud.as_str()), ("praxis", "praxis"));
        assert_eq!(c.sub, "wsb-7");
        assert_eq!((c.iat, c.nbf, c.exp), (1_000_000, 999_995, 1_003_600));
        assert_eq!(c.jti, "bench-wsb-7-1000000");
        assert_eq!(
            (c.scope.as_str(), c.role.as_str(), c.plan.as_str()),
            ("", "user", "default")
        );
    }

    #[test]
    fn tokens_verify_as_the_server_verifies_them() {
        let signer = Signer::new(SECRET, "praxis", "praxis", Duration::from_secs(600)).unwrap();
        let token = signer.token(&account("wsb-", 42)).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&["praxis"]);
        v.set_audience(&["praxis"]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        let data =
            jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_secret(SECRET).unwrap(), &v)
                .unwrap();
        assert_eq!(data.claims.sub, "wsb-42");
        assert!(data.claims.exp >= data.claims.iat + 600);
        // Another secret does not verify it.
        let other = DecodingKey::from_secret(b"another-secret-another-secret-xx").unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&token, &other, &v).is_err());
    }

    #[test]
    fn secret_file_is_trimmed_and_empty_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.secret");
        std::fs::write(&path, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").unwrap();
        let secret = Signer::secret_from(Some(&path)).unwrap().unwrap();
        assert_eq!(secret, b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t");
        assert!(matches!(
            Signer::new(b"", "praxis", "praxis", Duration::from_secs(1)),
            Err(TokenError::Empty)
        ));
        let missing = Signer::secret_from(Some(&dir.path().join("none"))).unwrap_err();
        assert!(
            missing.to_string().contains("--jwt-secret-file"),
            "{missing}"
        );
    }
}
