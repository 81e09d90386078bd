//! Who may do what: writes and management reads need a caller allowed to write (the admin
//! key, or anyone when the app opens writes); creating links can also be opened on its own
//! with `anonymous_create`; the redirect is public.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use praxis_http::{AuthSettings, Caller, Problem};

use crate::links::Principal;
use crate::settings::ShortenerSettings;

/// The caller and the app's auth settings; an extractor.
#[derive(Debug, Clone)]
pub struct Access {
    caller: Caller,
    auth: Arc<AuthSettings>,
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let auth = match parts.extensions.get::<Arc<AuthSettings>>() {
            Some(s) => s.clone(),
            None => Arc::new(
                parts
                    .extensions
                    .get::<AuthSettings>()
                    .cloned()
                    .unwrap_or_default(),
            ),
        };
        Ok(Self { caller, auth })
    }
}

impl Access {
    fn principal(&self) -> Principal<'static> {
        Principal {
            owner: match self.caller {
                Caller::Admin => "admin",
                Caller::Anonymous => "anonymous",
            },
            admin: self.caller == Caller::Admin,
        }
    }

    /// For management routes: 401 unless the caller may write.
    pub fn manager(&self) -> Result<Principal<'static>, Problem> {
        self.caller.require_write(&self.auth)?;
        Ok(self.principal())
    }

    /// For creating links: like [`Access::manager`], or anyone when `anonymous_create` is on.
    pub fn creator(&self, settings: &ShortenerSettings) -> Result<Principal<'static>, Problem> {
        if settings.anonymous_create {
            return Ok(self.principal());
        }
        self.manager()
    }
}
