//! Access tokens: praxis's own HS256 JWTs, and RS256 JWTs of an external identity provider
//! verified against its JWKS.
//!
//! Verification picks the key from the algorithm, never the other way round: an `HS256` token
//! is checked only with the HS256 secret, an `RS256` token only with a JWKS key. So a token
//! signed with HMAC over the provider's *public* RSA key (the classic algorithm-confusion
//! attack) is an HS256 token checked against our secret, and fails. `alg: none` and every other
//! algorithm are refused before any signature check. Each check runs with a [`Validation`] that
//! allows exactly one algorithm and requires `exp`, `iss`, `aud` and `sub`, checks `nbf` when
//! present, and tolerates `clock_skew`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use praxis_http::auth::{AuthFailure, DEFAULT_PLAN, Principal, PrincipalKind};

use crate::domain::Role;
use crate::domain::scopes;
use crate::workers::jwks::Jwks;

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the account id.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not before, unix seconds.
    pub nbf: u64,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Unique id of the token.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// `user` or `admin`.
    pub role: String,
    /// Plan tier.
    pub plan: String,
}

/// What is read from a verified token (external providers may omit the praxis claims).
#[derive(Debug, Deserialize)]
struct Verified {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<ScopeList>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Text(String),
    List(Vec<String>),
}

/// Signs praxis's tokens and verifies every bearer JWT.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
    skew: Duration,
    external: Option<External>,
}

struct External {
    jwks: Jwks,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("jwks", &self.external.as_ref().map(|e| e.jwks.url()))
            .finish_non_exhaustive()
    }
}

/// A signed access token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The compact JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl Tokens {
    /// Keys and rules from the settings; the JWKS is fetched over TLS trusting `trust` (the
    /// platform's policy).
    pub fn new(
        settings: &crate::settings::IdentitySettings,
        trust: &praxis_infra::tls::TrustPolicy,
    ) -> Result<Self, String> {
        let external = match &settings.jwks {
            Some(j) => Some(External {
                jwks: Jwks::new(j, trust)?,
                issuer: j.issuer.clone(),
                audience: j.audience.clone(),
            }),
            None => None,
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(&settings.jwt_secret)
                .map_err(|e| format!("jwt_secret cannot sign tokens: {e}"))?,
            decoding: DecodingKey::from_secret(&settings.jwt_secret)
                .map_err(|e| format!("jwt_secret cannot check tokens: {e}"))?,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
            skew: settings.clock_skew,
            external,
        })
    }

    /// The JWKS client, when an external provider is configured.
    pub fn jwks(&self) -> Option<&Jwks> {
        self.external.as_ref().map(|e| &e.jwks)
    }

    /// Signs an access token for an account.
    pub fn issue(
        &self,
        account_id: &str,
        role: Role,
        plan: &str,
        granted: &[String],
    ) -> Result<Issued, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: account_id.to_owned(),
            exp: now + self.ttl.as_secs(),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::now_v7().simple().to_string(),
            scope: scopes::join(granted),
            role: role.as_str().to_owned(),
            plan: plan.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| format!("signing an access token failed: {e}"))?;
        Ok(Issued {
            token,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Verifies a bearer JWT and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header = peek_header(token)?;
        let (key, issuer, audience, alg) = match header.alg.as_str() {
            "HS256" => (
                self.decoding.clone(),
                self.issuer.as_str(),
                self.audience.as_str(),
                Algorithm::HS256,
            ),
            "RS256" => {
                let Some(ext) = &self.external else {
                    return Err(AuthFailure::rejected(
                        "RS256 tokens are not accepted: no external identity provider (jwks_url) is configured",
                    ));
                };
                let key = ext.jwks.key(header.kid.as_deref()).await?;
                (
                    key,
                    ext.issuer.as_str(),
                    ext.audience.as_str(),
                    Algorithm::RS256,
                )
            }
            alg if alg.eq_ignore_ascii_case("none") => {
                return Err(AuthFailure::rejected(
                    "unsigned tokens (alg none) are not accepted",
                ));
            }
            other => {
                return Err(AuthFailure::rejected(format!(
                    "the token algorithm {:?} is not accepted (HS256, or RS256 with jwks_url)",
                    truncate(other)
                )));
            }
        };
        let mut v = Validation::new(alg);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = self.skew.as_secs();
        let data = jsonwebtoken::decode::<Verified>(token, &key, &v).map_err(rejection)?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(AuthFailure::rejected("the access token has an empty sub"));
        }
        let granted = match (claims.scope, claims.scp) {
            (Some(s), _) => scopes::split(&s),
            (None, Some(ScopeList::Text(s))) => scopes::split(&s),
            (None, Some(ScopeList::List(l))) => l,
            (None, None) => Vec::new(),
        };
        Ok(Principal {
            subject: claims.sub,
            kind: PrincipalKind::Account,
            scopes: granted,
            admin: claims.role.as_deref() == Some(Role::Admin.as_str()),
            plan: claims.plan.unwrap_or_else(|| DEFAULT_PLAN.to_owned()),
        })
    }
}

/// The fields of a JOSE header that pick the key.
#[derive(Debug, Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Reads the header without trusting it (it only selects which check to run).
fn peek_header(token: &str) -> Result<PeekedHeader, AuthFailure> {
    let malformed = || AuthFailure::rejected("the bearer token is not a valid JWT or API key");
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD.decode(head).map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// A 401 reason for each way a token fails.
fn rejection(e: jsonwebtoken::errors::Error) -> AuthFailure {
    let reason = match e.kind() {
        ErrorKind::ExpiredSignature => "the access token has expired".to_owned(),
        ErrorKind::ImmatureSignature => {
            "the access token is not valid yet (its nbf is in the future)".to_owned()
        }
        ErrorKind::InvalidIssuer => "the access token has the wrong issuer (iss)".to_owned(),
        ErrorKind::InvalidAudience => "the access token has the wrong audience (aud)".to_owned(),
        ErrorKind::InvalidSignature => "the access token's signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm => {
            "the access token's algorithm does not match its key".to_owned()
        }
        ErrorKind::MissingRequiredClaim(c) => {
            format!("the access token lacks the required claim {c}")
        }
        ErrorKind::InvalidClaimFormat(c) => format!("the access token's claim {c} is malformed"),
        _ => "the access token is malformed".to_owned(),
    };
    AuthFailure::Rejected(reason)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(16) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::IdentitySettings;

    fn tokens() -> Tokens {
        Tokens::new(
            &IdentitySettings::with_secret(vec![9u8; 32]),
            &praxis_infra::tls::TrustPolicy::system(),
        )
        .expect("tokens")
    }

    #[tokio::test]
    async fn issued_tokens_verify() {
        let t = tokens();
        let issued = t
            .issue("acc-1", Role::Admin, "pro", &["links:read".to_owned()])
            .expect("issue");
        let p = t.verify(&issued.token).await.expect("valid");
        assert_eq!(p.subject, "acc-1");
        assert!(p.admin);
        assert_eq!(p.plan, "pro");
        assert_eq!(p.scopes, ["links:read"]);
        assert_eq!(issued.expires_in, 900);
    }

    #[tokio::test]
    async fn garbage_and_other_algorithms_are_rejected() {
        let t = tokens();
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.x.y",
            "e30.e30.",
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            assert!(
                matches!(t.verify(bad).await, Err(AuthFailure::Rejected(_))),
                "{bad}"
            );
        }
        let none = t
            .verify("eyJhbGciOiJub25lIn0.e30.")
            .await
            .expect_err("none");
        assert!(none.to_string().contains("alg none"), "{none}");
        let rs = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let e = t.verify(&format!("{rs}.e30.sig")).await.expect_err("rs256");
        assert!(e.to_string().contains("jwks_url"), "{e}");
    }
}
