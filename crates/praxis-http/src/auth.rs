//! Who is calling: an admin (bearer admin key) or an anonymous client.
//!
//! A placeholder for real accounts (the identity system replaces it): one admin key, compared
//! in constant time, and a setting that opens writes to anonymous callers on purpose.

use std::fmt;
use std::sync::Arc;

use axum::Extension;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::problem::Problem;
use crate::stack::RequestContext;

/// Authentication settings; the app's stack hands them to every request.
#[derive(Clone, Default)]
pub struct AuthSettings {
    /// The admin bearer key; `None` means no caller can be admin.
    pub admin_key: Option<String>,
    /// Lets anonymous callers use write routes (off by default: writes need the admin key).
    pub allow_anonymous_writes: bool,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("admin_key", &self.admin_key.as_ref().map(|_| "***"))
            .field("allow_anonymous_writes", &self.allow_anonymous_writes)
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
    fn is_admin_key(&self, presented: &str) -> bool {
        match &self.admin_key {
            Some(key) => blake3::hash(presented.as_bytes()) == blake3::hash(key.as_bytes()),
            None => false,
        }
    }
}

/// The caller of a request; an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Presented the admin key.
    Admin,
    /// Sent no `Authorization` header.
    Anonymous,
}

impl Caller {
    /// Ok for the admin, and for anonymous callers when anonymous writes are allowed;
    /// otherwise 401 `unauthorized`.
    pub fn require_write(&self, settings: &AuthSettings) -> Result<(), Problem> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Anonymous if settings.allow_anonymous_writes => Ok(()),
            Caller::Anonymous => Err(Problem::unauthorized(
                "this route needs the admin key: send Authorization: Bearer <key>",
            )),
        }
    }

    /// Owner recorded on created resources: `"admin"` or `"anonymous"`.
    pub fn owner_id(&self) -> &str {
        match self {
            Caller::Admin => "admin",
            Caller::Anonymous => "anonymous",
        }
    }
}

/// The settings on the request, or the defaults (no admin key, no anonymous writes).
fn settings_of(parts: &Parts) -> Arc<AuthSettings> {
    if let Some(ctx) = parts.extensions.get::<RequestContext>() {
        return ctx.auth.clone();
    }
    if let Some(s) = parts.extensions.get::<Arc<AuthSettings>>() {
        return s.clone();
    }
    Arc::new(
        parts
            .extensions
            .get::<AuthSettings>()
            .cloned()
            .unwrap_or_default(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    /// `Authorization: Bearer <admin key>` is [`Caller::Admin`]; no header is
    /// [`Caller::Anonymous`]; anything else is 401 with `WWW-Authenticate: Bearer`.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        let text = value.to_str().unwrap_or("");
        let token = match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(Problem::unauthorized(
                    "the authorization header must be `Bearer <key>`",
                ));
            }
        };
        if settings_of(parts).is_admin_key(token) {
            Ok(Caller::Admin)
        } else {
            Err(Problem::unauthorized("the bearer key is not valid"))
        }
    }
}

/// A caller allowed to write (see [`Caller::require_write`]); an extractor that rejects with
/// 401 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Writer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_write(&settings_of(parts))?;
        Ok(Writer(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};

    async fn caller(settings: Option<AuthSettings>, auth: Option<&str>) -> Result<Caller, Problem> {
        let mut b = Request::builder();
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        let (mut parts, ()) = b.body(()).expect("request").into_parts();
        if let Some(s) = settings {
            parts.extensions.insert(Arc::new(s));
        }
        Caller::from_request_parts(&mut parts, &()).await
    }

    fn with_key() -> AuthSettings {
        AuthSettings {
            admin_key: Some("s3cret".into()),
            allow_anonymous_writes: false,
        }
    }

    #[tokio::test]
    async fn identifies_callers() {
        assert_eq!(
            caller(Some(with_key()), Some("Bearer s3cret")).await,
            Ok(Caller::Admin)
        );
        assert_eq!(
            caller(Some(with_key()), Some("bearer s3cret")).await,
            Ok(Caller::Admin)
        );
        assert_eq!(caller(Some(with_key()), None).await, Ok(Caller::Anonymous));
        let wrong = caller(Some(with_key()), Some("Bearer nope"))
            .await
            .expect_err("wrong key");
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let basic = caller(Some(with_key()), Some("Basic czNjcmV0"))
            .await
            .expect_err("basic");
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        // No admin key configured: no token is valid.
        assert!(caller(None, Some("Bearer ")).await.is_err());
        assert!(
            caller(Some(AuthSettings::default()), Some("Bearer x"))
                .await
                .is_err()
        );
    }

    #[test]
    fn write_rules() {
        let closed = with_key();
        let open = AuthSettings {
            allow_anonymous_writes: true,
            ..with_key()
        };
        assert!(Caller::Admin.require_write(&closed).is_ok());
        assert!(Caller::Anonymous.require_write(&closed).is_err());
        assert!(Caller::Anonymous.require_write(&open).is_ok());
        assert_eq!(Caller::Admin.owner_id(), "admin");
        assert_eq!(Caller::Anonymous.owner_id(), "anonymous");
    }

    #[test]
    fn debug_masks_the_key() {
        assert!(!format!("{:?}", with_key()).contains("s3cret"));
    }
}
