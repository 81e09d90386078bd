//! The use cases and what they share: accounts and sessions ([`accounts`]), API keys
//! ([`keys`]), token issue and checks ([`jwt`]) and an identity provider's keys ([`jwks`]).
//! They use the store and the domain, never the API layer.

pub mod accounts;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod metrics;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use praxis_http::idempotency::IdempotencyStore;
use praxis_infra::InfraError;
use praxis_infra::cache::Cache;
use praxis_infra::ratelimit::{Algorithm, Limiter, Quota, Rule};

use crate::domain::password::Hasher;
use crate::settings::{IdentitySettings, Limit};
use crate::store::{ApiKeyRow, Store};
use jwt::Tokens;

/// Shared state of the use cases.
pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) hasher: Hasher,
    /// A hash of a random password, verified when a login names no account, so unknown
    /// accounts cost the same time as wrong passwords.
    pub(crate) dummy_hash: String,
    /// Bounds concurrent argon2 runs (each takes ~19 MiB and a core for tens of ms).
    pub(crate) hashing: Semaphore,
    pub(crate) key_cache: Cache<ApiKeyRow>,
    /// In-process throttle of `last_used_at` writes: key id -> last write, unix ms.
    pub(crate) last_used: Mutex<HashMap<String, i64>>,
    pub(crate) idempotency: IdempotencyStore,
    /// The platform's rate limiter (shared through Redis when configured).
    pub(crate) limiter: Limiter,
    pub(crate) login_rules: LoginRules,
    pub(crate) settings: Arc<IdentitySettings>,
}

/// The login abuse limits as limiter rules (sliding-window log: exact over any window).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginRules {
    pub(crate) account: Rule,
    pub(crate) ip: Rule,
}

impl LoginRules {
    pub(crate) fn new(settings: &IdentitySettings) -> Result<Self, InfraError> {
        let rule = |key: &str, l: Limit| {
            Quota::new(l.limit, l.period)
                .map(|q| Rule::new(Algorithm::SlidingLog, q))
                .map_err(|e| InfraError::Config(format!("identity setting {key}: {e}")))
        };
        Ok(Self {
            account: rule("login_limit_account", settings.login_limit_account)?,
            ip: rule("login_limit_ip", settings.login_limit_ip)?,
        })
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("tokens", &self.tokens)
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}
