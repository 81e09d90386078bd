//! The JWKS of an external identity provider: fetched with reqwest, cached, and fetched again
//! when it is older than its TTL or when a token names a key id (`kid`) it does not hold (the
//! provider rotated its keys). Refetches caused by unknown ids are rate-limited, and concurrent
//! refetches are coalesced into one request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use parking_lot::RwLock;
use url::Url;

use praxis_http::auth::AuthFailure;

use crate::settings::JwksSettings;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A cached JWKS.
pub struct Jwks {
    url: Url,
    client: reqwest::Client,
    ttl: Duration,
    min_refresh: Duration,
    state: RwLock<State>,
    fetch: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

impl Jwks {
    /// A client for the JWKS at `settings.url` (nothing is fetched yet) that trusts `trust`
    /// (the platform's policy: the OS store plus `tls_ca_file`).
    pub fn new(
        settings: &JwksSettings,
        trust: &praxis_infra::tls::TrustPolicy,
    ) -> Result<Self, String> {
        praxis_infra::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(trust.client_config())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))?;
        Ok(Self {
            url: settings.url.clone(),
            client,
            ttl: settings.cache_ttl,
            min_refresh: settings.min_refresh_interval,
            state: RwLock::new(State::default()),
            fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// The JWKS URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.state.read().keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The RS256 key for `kid` (or the only key when the token names none).
    pub async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthFailure> {
        let (found, stale, last) = self.lookup(kid);
        if let Some(key) = &found
            && !stale
        {
            return Ok(key.clone());
        }
        // Unknown kid or stale set: fetch again, unless an unknown kid caused a fetch very
        // recently (then the key really is unknown).
        let recently = last.is_some_and(|t| t.elapsed() < self.min_refresh);
        if found.is_none() && recently {
            return Err(unknown(kid));
        }
        let _one = self.fetch.lock().await;
        // Another task may have fetched while this one waited.
        let (again, stale_again, last_again) = self.lookup(kid);
        let fetched_meanwhile = last_again != last;
        if let Some(key) = &again
            && (!stale_again || fetched_meanwhile)
        {
            return Ok(key.clone());
        }
        if fetched_meanwhile && again.is_none() {
            return Err(unknown(kid));
        }
        match self.refresh().await {
            Ok(()) => {}
            Err(e) => {
                // A stale key is better than none while the provider is unreachable.
                if let Some(key) = again {
                    tracing::warn!(url = %self.url, error = %e, "jwks refresh failed; using the cached keys");
                    return Ok(key);
                }
                tracing::warn!(url = %self.url, error = %e, "jwks fetch failed");
                return Err(AuthFailure::Unavailable(format!(
                    "the identity provider's keys cannot be fetched ({e}); retry later"
                )));
            }
        }
        self.lookup(kid).0.ok_or_else(|| unknown(kid))
    }

    /// `(key, stale, fetched at)`.
    fn lookup(&self, kid: Option<&str>) -> (Option<DecodingKey>, bool, Option<Instant>) {
        let state = self.state.read();
        let key = match kid {
            Some(kid) => state.keys.get(kid).cloned(),
            None if state.keys.len() == 1 => state.keys.values().next().cloned(),
            None => None,
        };
        let stale = state.fetched.is_none_or(|t| t.elapsed() >= self.ttl);
        (key, stale, state.fetched)
    }

    /// Fetches the set and replaces the cached keys (keeps them when the fetch fails).
    pub async fn refresh(&self) -> Result<(), String> {
        let res = self
            .client
            .get(self.url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        if !res.status().is_success() {
            return Err(format!("GET {} answered {}", self.url, res.status()));
        }
        let body = res
            .bytes()
            .await
            .map_err(|e| format!("reading {}: {e}", self.url))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "{} is larger than {MAX_JWKS_BYTES} bytes",
                self.url
            ));
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("{} is not a JWKS: {e}", self.url))?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let for_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
            let rs256 = jwk
                .common
                .key_algorithm
                .is_none_or(|a| a == KeyAlgorithm::RS256);
            if !(rsa && for_signing && rs256) {
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
                    keys.insert(kid, key);
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "skipping an unusable JWKS key")
                }
            }
        }
        tracing::info!(url = %self.url, keys = keys.len(), "jwks fetched");
        let mut state = self.state.write();
        state.keys = keys;
        state.fetched = Some(Instant::now());
        Ok(())
    }
}

fn unknown(kid: Option<&str>) -> AuthFailure {
    match kid {
        Some(kid) => AuthFailure::rejected(format!(
            "the access token names key id {:?}, which the identity provider does not publish",
            kid.chars().take(64).collect::<String>()
        )),
        None => AuthFailure::rejected(
            "the access token names no key id (kid) and the identity provider publishes several keys",
        ),
    }
}
