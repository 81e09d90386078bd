//! Who may do what. Sending, templates, subscribers and dead letters need the scope
//! `notify:write` (reading templates and subscribers `notify:read`); the admin role implies
//! both. A message can be read by the principal that sent it, or the admin.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use praxis_http::{Caller, Problem};

use crate::settings::{NOTIFY_READ, NOTIFY_WRITE};

/// The caller of a notification route; an extractor (401 for credentials that are not valid).
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
    /// For writing routes: the caller's owner id; 401 when anonymous, 403 without
    /// `notify:write`.
    pub fn writer(&self) -> Result<&str, Problem> {
        self.caller.require_scope(NOTIFY_WRITE)?;
        Ok(self.caller.owner_id())
    }

    /// For reading routes: 401 when anonymous, 403 without `notify:read` or `notify:write`.
    pub fn reader(&self) -> Result<&str, Problem> {
        let principal = self.caller.require_principal()?;
        if principal.has_scope(NOTIFY_READ) || principal.has_scope(NOTIFY_WRITE) {
            Ok(self.caller.owner_id())
        } else {
            Err(praxis_http::auth::missing_scope(NOTIFY_READ))
        }
    }

    /// Any authenticated caller: its owner id and whether it is the admin.
    pub fn principal(&self) -> Result<(&str, bool), Problem> {
        self.caller.require_principal()?;
        Ok((self.caller.owner_id(), self.caller.is_admin()))
    }
}
