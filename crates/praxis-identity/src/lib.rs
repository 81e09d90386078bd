//! praxis-identity: accounts, tokens and API keys for every praxis system.
//!
//! - Accounts: sign-up with email and password (argon2id, OWASP parameters), login, logout,
//!   password change, an admin role and a plan tier ([`workers::accounts`]).
//! - Tokens: short-lived HS256 JWT access tokens, and refresh tokens that rotate on every use;
//!   reuse of a rotated refresh token revokes its whole family ([`workers::jwt`], [`workers::accounts`]).
//!   RS256 tokens of an external identity provider are accepted through its JWKS ([`workers::jwks`]).
//! - API keys: `prx_<id>_<secret>`, shown once, stored as a BLAKE3 hash, with scopes and a
//!   last-used time ([`workers::keys`]).
//! - [`IdentityAuthenticator`]: the `praxis_http::auth::Authenticator` every system's routes
//!   use, through `AuthSettings::authenticator`.
//!
//! [`Identity::launch`] wires it onto a [`Platform`] whose migrations are applied; the binary
//! starts it through [`IdentitySystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use praxis_http::Service;
use praxis_http::auth::{AuthFailure, Authenticator, Principal};
use praxis_http::idempotency::IdempotencyStore;

use praxis_infra::cache::CacheOptions;
use praxis_infra::{InfraError, Platform};

pub use error::IdentityError;
pub use settings::{IdentitySection, IdentitySettings, JwksSettings, Limit};
pub use store::migrations::MIGRATIONS;
pub use system::IdentitySystem;

use crate::domain::password::Hasher;
use crate::store::{ApiKeyRow, Store};
use crate::workers::jwt::Tokens;
use crate::workers::{Core, LoginRules};

/// Name of the API-key cache (L1 per process, L2 key space in Redis).
pub const KEY_CACHE_NAME: &str = "identity.api_keys";

/// The running identity system: what its routes and its authenticator share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Identity {
    core: Arc<Core>,
}

impl Identity {
    /// Checks the settings and builds the shared state; its migrations must have been applied
    /// (the binary applies every migration once, then launches). Fetches the JWKS once when
    /// one is configured (a failure is logged; keys are fetched again on first use).
    pub async fn launch(
        platform: &Platform,
        settings: IdentitySettings,
    ) -> Result<Identity, InfraError> {
        settings
            .validate()
            .map_err(|e| InfraError::Config(e.to_string()))?;
        let hasher = Hasher::new(settings.hash_cost).map_err(InfraError::Config)?;
        let tokens = Tokens::new(&settings, &platform.tls).map_err(InfraError::Config)?;
        if let Some(jwks) = tokens.jwks()
            && let Err(e) = jwks.refresh().await
        {
            tracing::warn!(error = %e, "jwks not fetched at start; retrying on first use");
        }
        let dummy = {
            let hasher = hasher.clone();
            let secret = domain::secrets::random_secret();
            tokio::task::spawn_blocking(move || hasher.hash(&secret))
                .await
                .map_err(|e| InfraError::Config(format!("hashing thread failed: {e}")))?
                .map_err(InfraError::Config)?
        };
        let key_cache = platform.caches.build::<ApiKeyRow>(
            KEY_CACHE_NAME,
            CacheOptions {
                capacity: 100_000,
                ttl: settings.api_key_cache_ttl,
                negative_ttl: settings
                    .api_key_cache_ttl
                    .min(std::time::Duration::from_secs(10)),
                jitter: 0.1,
                use_l2: true,
            },
        );
        let lanes = std::thread::available_parallelism().map_or(2, |n| n.get());
        let idempotency = IdempotencyStore::new(platform.db.clone(), settings.idempotency_ttl);
        Ok(Identity {
            core: Arc::new(Core {
                store: Store::new(platform.db.clone()),
                tokens,
                hasher,
                dummy_hash: dummy,
                hashing: Semaphore::new(lanes),
                key_cache,
                last_used: Mutex::new(HashMap::new()),
                idempotency,
                limiter: platform.limiter.clone(),
                login_rules: LoginRules::new(&settings)?,
                settings: Arc::new(settings),
            }),
        })
    }

    /// The authenticator to put in `AuthSettings::authenticator` (for every system).
    pub fn authenticator(&self) -> Arc<IdentityAuthenticator> {
        Arc::new(IdentityAuthenticator {
            core: self.core.clone(),
        })
    }

    /// The identity routes under `/api/v1/identity`.
    pub fn service(&self) -> Service {
        let (router, openapi) = api::router(api::AppState::new(self.core.clone()));
        Service::new("identity", router, openapi)
    }

    /// The settings in use.
    pub fn settings(&self) -> &IdentitySettings {
        &self.core.settings
    }
}

/// Resolves bearer tokens: `prx_` API keys through the key store (cached), everything else as
/// a JWT access token.
#[derive(Debug, Clone)]
pub struct IdentityAuthenticator {
    core: Arc<Core>,
}

#[async_trait::async_trait]
impl Authenticator for IdentityAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        if bearer.starts_with(domain::secrets::API_KEY_PREFIX) {
            self.core.authenticate_key(bearer).await
        } else {
            self.core.tokens.verify(bearer).await
        }
    }
}
