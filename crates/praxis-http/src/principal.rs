//! Who a caller is, and the port that turns a bearer token into one: [`Principal`],
//! [`Authenticator`] and the [`AuthSettings`] the request stack hands to every request.
//! Resolving a request's caller is [`crate::auth`]'s job.

use std::fmt;
use std::sync::Arc;

use axum::Extension;

use crate::problem::Problem;

/// Subject of the bootstrap admin principal.
pub const ADMIN_SUBJECT: &str = "admin";

/// Owner id reported for anonymous callers.
pub const ANONYMOUS: &str = "anonymous";

/// Plan tier of principals whose plan is not set.
pub const DEFAULT_PLAN: &str = "free";

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A JWT access token (from a login, or from the configured external identity provider).
    Account,
    /// An API key (`prx_<key id>_<secret>`).
    ApiKey {
        /// The key's id (the part after `prx_`), never the secret.
        key_id: String,
    },
    /// The bootstrap admin key of the configuration.
    BootstrapAdmin,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Account id (UUIDv7 text), or [`ADMIN_SUBJECT`] for the bootstrap admin key.
    pub subject: String,
    /// How it authenticated.
    pub kind: PrincipalKind,
    /// Granted scopes, e.g. `links:read`, `links:write`; the admin implies every scope.
    pub scopes: Vec<String>,
    /// Whether the principal has the admin role.
    pub admin: bool,
    /// Plan tier for rate limits ([`DEFAULT_PLAN`] unless set).
    pub plan: String,
}

impl Principal {
    /// The principal of the bootstrap admin key.
    pub fn bootstrap_admin() -> Self {
        Self {
            subject: ADMIN_SUBJECT.to_owned(),
            kind: PrincipalKind::BootstrapAdmin,
            scopes: Vec::new(),
            admin: true,
            plan: DEFAULT_PLAN.to_owned(),
        }
    }

    /// Whether the principal may act with `scope` (the admin may do everything).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.admin || self.scopes.iter().any(|s| s == scope)
    }

    /// The API key id when the principal authenticated with an API key.
    pub fn api_key_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::ApiKey { key_id } => Some(key_id),
            _ => None,
        }
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// The token is not valid; the text says why (expired, wrong issuer, bad signature, ...).
    /// Answered 401 `unauthorized` with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Rejected(String),
    /// The authenticator could not decide (its database or the JWKS endpoint is down).
    /// Answered 503 `unavailable`.
    #[error("{0}")]
    Unavailable(String),
}

impl AuthFailure {
    /// A rejection with this reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        AuthFailure::Rejected(reason.into())
    }

    /// The problem answered for this failure.
    pub fn to_problem(&self) -> Problem {
        match self {
            AuthFailure::Rejected(reason) => Problem::unauthorized(reason.clone()),
            AuthFailure::Unavailable(reason) => Problem::unavailable(reason.clone()),
        }
    }
}

/// Turns a bearer token that is not the bootstrap admin key into a [`Principal`].
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `bearer` (the text after `Bearer `) and returns who it belongs to.
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure>;
}

/// Authentication settings; the app's stack hands them to every request.
#[derive(Clone, Default)]
pub struct AuthSettings {
    /// The bootstrap admin bearer key; `None` means no caller is the bootstrap admin.
    pub admin_key: Option<String>,
    /// Lets anonymous callers pass [`Caller::require_write`](crate::auth::Caller::require_write) (off by default).
    pub allow_anonymous_writes: bool,
    /// Resolves every other bearer token (access tokens, API keys); `None` rejects them.
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("admin_key", &self.admin_key.as_ref().map(|_| "***"))
            .field("allow_anonymous_writes", &self.allow_anonymous_writes)
            .field("authenticator", &self.authenticator.is_some())
            .finish()
    }
}

impl AuthSettings {
    /// A layer that adds these settings to requests, for routers served without the app
    /// (tests of a single system).
    pub fn layer(self) -> Extension<Arc<AuthSettings>> {
        Extension(Arc::new(self))
    }

    /// Constant-time check of a presented key against the admin key (compares BLAKE3 hashes,
    /// whose equality is constant-time, so neither content nor length leaks through timing).
    pub(crate) fn is_admin_key(&self, presented: &str) -> bool {
        match &self.admin_key {
            Some(key) => blake3::hash(presented.as_bytes()) == blake3::hash(key.as_bytes()),
            None => false,
        }
    }
}
