//! Who may do what. Links belong to the principal that created them (its account id, or
//! `admin` for the bootstrap admin key): a caller sees, lists, changes and deletes only its
//! own links, and the admin sees all. API keys need the scope `links:read` to read and
//! `links:write` to create or change (access tokens from a login carry both). Creating can be
//! opened to anonymous callers with `anonymous_create` (owner `anonymous`; such links cannot
//! be managed later). The redirect is public.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use praxis_http::{Caller, Problem};

use crate::links::Principal;
use crate::settings::ShortenerSettings;

/// Scope of the reading routes (get, list, statistics, QR code).
pub const LINKS_READ: &str = "links:read";
/// Scope of the writing routes (create, bulk create, change, delete).
pub const LINKS_WRITE: &str = "links:write";

/// The caller of a shortener route; an extractor (401 for credentials that are not valid).
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
    fn principal(&self) -> Principal<'_> {
        Principal {
            owner: self.caller.owner_id(),
            admin: self.caller.is_admin(),
        }
    }

    /// For reading routes: 401 when anonymous, 403 without `links:read`.
    pub fn reader(&self) -> Result<Principal<'_>, Problem> {
        self.caller.require_scope(LINKS_READ)?;
        Ok(self.principal())
    }

    /// For changing routes: 401 when anonymous, 403 without `links:write`.
    pub fn writer(&self) -> Result<Principal<'_>, Problem> {
        self.caller.require_scope(LINKS_WRITE)?;
        Ok(self.principal())
    }

    /// For creating links: like [`Access::writer`], or an anonymous caller when
    /// `anonymous_create` is on (credentials that are presented must still hold the scope).
    pub fn creator(&self, settings: &ShortenerSettings) -> Result<Principal<'_>, Problem> {
        if settings.anonymous_create && self.caller.is_anonymous() {
            return Ok(self.principal());
        }
        self.writer()
    }
}
