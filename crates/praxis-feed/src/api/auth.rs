//! Who may do what (D50). A logged-in account (a JWT access token) is a feed user: it reads
//! and writes its own feed without any scope, since identity's account scopes are the
//! shortener's. An API key needs `feed:write` to write and `feed:read` (or `feed:write`) to
//! read, acting as its owner. The admin role implies both and may delete any post and import
//! follows in bulk.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use praxis_http::auth::{PrincipalKind, missing_scope};
use praxis_http::{Caller, Problem};

use crate::settings::{FEED_READ, FEED_WRITE};

/// The caller of a feed route; an extractor (401 for credentials that are not valid).
#[derive(Debug, Clone)]
pub struct Access {
    caller: Caller,
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            caller: Caller::from_request_parts(parts, state).await?,
        })
    }
}

impl Access {
    /// For writing routes: the acting user; 401 when anonymous, 403 for an API key without
    /// `feed:write`.
    pub fn writer(&self) -> Result<&str, Problem> {
        let p = self.caller.require_principal()?;
        if p.kind == PrincipalKind::Account || p.has_scope(FEED_WRITE) {
            Ok(self.caller.owner_id())
        } else {
            Err(missing_scope(FEED_WRITE))
        }
    }

    /// For reading routes: the acting user; 401 when anonymous, 403 for an API key without
    /// `feed:read` or `feed:write`.
    pub fn reader(&self) -> Result<&str, Problem> {
        let p = self.caller.require_principal()?;
        if p.kind == PrincipalKind::Account || p.has_scope(FEED_READ) || p.has_scope(FEED_WRITE) {
            Ok(self.caller.owner_id())
        } else {
            Err(missing_scope(FEED_READ))
        }
    }

    /// Whether the caller has the admin role.
    pub fn is_admin(&self) -> bool {
        self.caller.is_admin()
    }

    /// 401 when anonymous, 403 unless admin.
    pub fn admin(&self) -> Result<(), Problem> {
        self.caller.require_admin().map(|_| ())
    }
}
