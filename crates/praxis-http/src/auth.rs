//! Who is calling: the authentication port every system uses.
//!
//! A request's bearer token is resolved once into a [`Principal`] by [`principal`]: the
//! bootstrap admin key (compared in constant time) is the admin principal; any other token is
//! handed to the configured [`Authenticator`] (the identity system's: JWT access tokens and
//! `prx_` API keys). The result is cached in the request extensions, so the rate limit and the
//! [`Caller`] extractor share one lookup.
//!
//! Handlers take a [`Caller`] and ask it for what they need: [`Caller::require_scope`] (401
//! when anonymous, 403 when the scope is missing), [`Caller::owner_id`], [`Caller::is_admin`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;

use crate::context::RequestContext;
pub use crate::principal::{
    ADMIN_SUBJECT, ANONYMOUS, AuthFailure, AuthSettings, Authenticator, DEFAULT_PLAN, Principal,
    PrincipalKind,
};
use crate::problem::Problem;

/// The settings on the request (from the app's stack or an [`AuthSettings::layer`]).
fn settings_in(parts: &Parts) -> Option<Arc<AuthSettings>> {
    if let Some(ctx) = parts.extensions.get::<RequestContext>() {
        return Some(ctx.auth.clone());
    }
    if let Some(s) = parts.extensions.get::<Arc<AuthSettings>>() {
        return Some(s.clone());
    }
    parts
        .extensions
        .get::<AuthSettings>()
        .cloned()
        .map(Arc::new)
}

/// The settings on the request, or the defaults (no admin key, no authenticator).
fn settings_of(parts: &Parts) -> Arc<AuthSettings> {
    settings_in(parts).unwrap_or_default()
}

/// The outcome of [`principal`], cached in the request extensions.
#[derive(Clone)]
struct Resolved(Result<Option<Principal>, Problem>);

/// Resolves the request's principal once and caches it in the request extensions; both the
/// rate limit and the extractors use it.
///
/// No `Authorization` header is `Ok(None)` (anonymous). `Bearer <admin key>` is the bootstrap
/// admin; any other bearer token goes to the configured [`Authenticator`]. A header that is not
/// `Bearer <token>`, or a token that is not accepted, is 401 `unauthorized` (with
/// `WWW-Authenticate: Bearer`); an authenticator that cannot decide is 503.
///
/// The settings come from the request extensions (the app's stack adds them), so call this
/// inside the stack; without settings nothing is cached and every token is rejected.
pub async fn principal(parts: &mut Parts) -> Result<Option<Principal>, Problem> {
    if let Some(Resolved(done)) = parts.extensions.get::<Resolved>() {
        return done.clone();
    }
    let settings = settings_in(parts);
    let outcome = resolve(parts, settings.as_deref()).await;
    if settings.is_some() {
        parts.extensions.insert(Resolved(outcome.clone()));
    }
    outcome
}

async fn resolve(
    parts: &Parts,
    settings: Option<&AuthSettings>,
) -> Result<Option<Principal>, Problem> {
    let token = match parts.headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    token.trim().to_owned()
                }
                _ => {
                    return Err(Problem::unauthorized(
                        "the authorization header must be `Bearer <token>`",
                    ));
                }
            }
        }
        None => match query_token(parts) {
            Some(token) => token,
            None => return Ok(None),
        },
    };
    let token = token.as_str();
    if token.is_empty() {
        return Err(Problem::unauthorized("the bearer token is empty"));
    }
    let Some(settings) = settings else {
        return Err(Problem::unauthorized("the bearer token is not valid"));
    };
    if settings.is_admin_key(token) {
        return Ok(Some(Principal::bootstrap_admin()));
    }
    match &settings.authenticator {
        Some(auth) => auth
            .authenticate(token)
            .await
            .map(Some)
            .map_err(|f| f.to_problem()),
        None => Err(Problem::unauthorized("the bearer token is not valid")),
    }
}

/// The `access_token` query parameter (RFC 6750 §2.3), read only where a browser cannot send
/// an `Authorization` header: a WebSocket handshake (`Upgrade: websocket`) or an EventSource
/// request (`Accept: text/event-stream`). Routes log their template, never the query, so the
/// token stays out of the access log.
fn query_token(parts: &Parts) -> Option<String> {
    let header_has = |name: header::HeaderName, needle: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    if !header_has(header::UPGRADE, "websocket") && !header_has(header::ACCEPT, "text/event-stream")
    {
        return None;
    }
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// The caller of a request; an extractor. Anonymous when no `Authorization` header was sent;
/// a header with a token that is not accepted is rejected with 401 before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    principal: Option<Principal>,
    anonymous_writes: bool,
}

impl Caller {
    /// A caller with this principal (`None` = anonymous); for tests and internal calls.
    pub fn new(principal: Option<Principal>) -> Self {
        Self {
            principal,
            anonymous_writes: false,
        }
    }

    /// The authenticated principal, `None` when anonymous.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// Whether no credentials were sent.
    pub fn is_anonymous(&self) -> bool {
        self.principal.is_none()
    }

    /// Whether the caller has the admin role (the bootstrap admin key, or an admin account).
    pub fn is_admin(&self) -> bool {
        self.principal.as_ref().is_some_and(|p| p.admin)
    }

    /// Owner id recorded on created resources: the principal's subject (an account id, or
    /// `"admin"` for the bootstrap admin key), or `"anonymous"`.
    pub fn owner_id(&self) -> &str {
        self.principal
            .as_ref()
            .map_or(ANONYMOUS, |p| p.subject.as_str())
    }

    /// The principal when it holds `scope`: 401 `unauthorized` when anonymous, 403
    /// `forbidden` naming the scope when it is missing.
    pub fn require_scope(&self, scope: &str) -> Result<&Principal, Problem> {
        let principal = self.require_principal()?;
        if principal.has_scope(scope) {
            Ok(principal)
        } else {
            Err(missing_scope(scope))
        }
    }

    /// The principal, or 401 `unauthorized` when anonymous.
    pub fn require_principal(&self) -> Result<&Principal, Problem> {
        self.principal.as_ref().ok_or_else(|| {
            Problem::unauthorized(
                "this route needs authentication: send Authorization: Bearer <access token or API key>",
            )
        })
    }

    /// The principal when it is an admin: 401 when anonymous, 403 otherwise.
    pub fn require_admin(&self) -> Result<&Principal, Problem> {
        let principal = self.require_principal()?;
        if principal.admin {
            Ok(principal)
        } else {
            Err(Problem::forbidden("this route needs the admin role"))
        }
    }

    /// Ok for any authenticated caller, and for anonymous callers when the app opens writes
    /// (`AuthSettings::allow_anonymous_writes`); otherwise 401.
    pub fn require_write(&self) -> Result<(), Problem> {
        if self.principal.is_some() || self.anonymous_writes {
            Ok(())
        } else {
            self.require_principal().map(|_| ())
        }
    }
}

/// 403 `forbidden` naming the missing scope (also as the failing field `scope`).
pub fn missing_scope(scope: &str) -> Problem {
    let mut p = Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        format!("the credentials lack the scope `{scope}` this route needs"),
    );
    p.errors.push(crate::problem::FieldError::new(
        "scope",
        format!("`{scope}` is required"),
    ));
    p
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = principal(parts).await?;
        Ok(Caller {
            principal,
            anonymous_writes: settings_of(parts).allow_anonymous_writes,
        })
    }
}

/// A caller allowed to write (see [`Caller::require_write`]); an extractor that rejects with
/// 401 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Writer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_write()?;
        Ok(Writer(caller))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use axum::http::Request;

    /// Accepts `user-token` (scope links:read) and counts its calls.
    #[derive(Default)]
    struct Fixed {
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Authenticator for Fixed {
        async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match bearer {
                "user-token" => Ok(Principal {
                    subject: "u1".into(),
                    kind: PrincipalKind::Account,
                    scopes: vec!["links:read".into()],
                    admin: false,
                    plan: DEFAULT_PLAN.into(),
                }),
                "down" => Err(AuthFailure::Unavailable("database down".into())),
                _ => Err(AuthFailure::rejected("the access token has expired")),
            }
        }
    }

    fn parts(settings: Option<AuthSettings>, auth: Option<&str>) -> Parts {
        let mut b = Request::builder();
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        let (mut parts, ()) = b.body(()).expect("request").into_parts();
        if let Some(s) = settings {
            parts.extensions.insert(Arc::new(s));
        }
        parts
    }

    async fn caller(settings: Option<AuthSettings>, auth: Option<&str>) -> Result<Caller, Problem> {
        let mut parts = parts(settings, auth);
        Caller::from_request_parts(&mut parts, &()).await
    }

    fn with_key() -> AuthSettings {
        AuthSettings {
            admin_key: Some("s3cret".into()),
            ..AuthSettings::default()
        }
    }

    fn with_authenticator(auth: Arc<Fixed>) -> AuthSettings {
        AuthSettings {
            authenticator: Some(auth),
            ..with_key()
        }
    }

    async fn caller_of(request: Request<()>) -> Result<Caller, Problem> {
        let (mut parts, ()) = request.into_parts();
        parts.extensions.insert(Arc::new(with_key()));
        Caller::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn access_token_in_the_query_only_where_browsers_cannot_send_a_header() {
        let with = |upgrade: Option<&str>, accept: Option<&str>| {
            let mut b = Request::builder().uri("/stream?follow=x&access_token=s3cret");
            if let Some(u) = upgrade {
                b = b.header(header::UPGRADE, u);
            }
            if let Some(a) = accept {
                b = b.header(header::ACCEPT, a);
            }
            b.body(()).expect("request")
        };
        let ws = caller_of(with(Some("websocket"), None))
            .await
            .expect("handshake");
        assert!(
            ws.is_admin(),
            "a WebSocket handshake may carry the token in the query"
        );
        let sse = caller_of(with(None, Some("text/event-stream")))
            .await
            .expect("sse");
        assert!(sse.is_admin(), "an EventSource request may too");
        let plain = caller_of(with(None, Some("application/json")))
            .await
            .expect("plain");
        assert!(plain.is_anonymous(), "any other request ignores it");
        let bad = Request::builder()
            .uri("/stream?access_token=wrong")
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(caller_of(bad).await.expect_err("wrong token").status, 401);
    }

    #[tokio::test]
    async fn identifies_callers() {
        let admin = caller(Some(with_key()), Some("Bearer s3cret"))
            .await
            .expect("admin");
        assert!(admin.is_admin());
        assert_eq!(admin.owner_id(), "admin");
        assert_eq!(
            admin.principal().map(|p| &p.kind),
            Some(&PrincipalKind::BootstrapAdmin)
        );
        assert!(
            caller(Some(with_key()), Some("bearer s3cret"))
                .await
                .expect("case-insensitive scheme")
                .is_admin()
        );
        let anon = caller(Some(with_key()), None).await.expect("anonymous");
        assert!(anon.is_anonymous() && !anon.is_admin());
        assert_eq!(anon.owner_id(), "anonymous");
        let wrong = caller(Some(with_key()), Some("Bearer nope"))
            .await
            .expect_err("wrong key");
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let basic = caller(Some(with_key()), Some("Basic czNjcmV0"))
            .await
            .expect_err("basic");
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        // No settings or no admin key: no token is valid.
        assert!(caller(None, Some("Bearer s3cret")).await.is_err());
        assert!(caller(None, Some("Bearer ")).await.is_err());
        assert!(
            caller(Some(AuthSettings::default()), Some("Bearer x"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_authenticator_resolves_other_tokens_once_per_request() {
        let auth = Arc::new(Fixed::default());
        let mut p = parts(
            Some(with_authenticator(auth.clone())),
            Some("Bearer user-token"),
        );
        let first = principal(&mut p).await.expect("valid").expect("principal");
        assert_eq!(first.subject, "u1");
        let again = principal(&mut p).await.expect("cached");
        assert_eq!(again.as_ref(), Some(&first));
        let c = Caller::from_request_parts(&mut p, &())
            .await
            .expect("caller");
        assert_eq!(c.owner_id(), "u1");
        assert_eq!(auth.calls.load(Ordering::Relaxed), 1, "resolved once");

        // The admin key never reaches the authenticator.
        let mut p = parts(
            Some(with_authenticator(auth.clone())),
            Some("Bearer s3cret"),
        );
        assert!(
            principal(&mut p)
                .await
                .expect("admin")
                .is_some_and(|p| p.admin)
        );
        assert_eq!(auth.calls.load(Ordering::Relaxed), 1);

        let rejected = caller(
            Some(with_authenticator(auth.clone())),
            Some("Bearer old-token"),
        )
        .await
        .expect_err("expired");
        assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
        assert_eq!(rejected.detail, "the access token has expired");
        let down = caller(Some(with_authenticator(auth)), Some("Bearer down"))
            .await
            .expect_err("unavailable");
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn scopes_and_roles() {
        let auth = Arc::new(Fixed::default());
        let user = caller(Some(with_authenticator(auth)), Some("Bearer user-token"))
            .await
            .expect("user");
        assert!(user.require_scope("links:read").is_ok());
        let p = user.require_scope("links:write").expect_err("missing");
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert!(p.detail.contains("links:write"), "{}", p.detail);
        assert_eq!(p.errors[0].field, "scope");
        assert_eq!(
            user.require_admin().expect_err("not admin").status,
            StatusCode::FORBIDDEN
        );

        let admin = Caller::new(Some(Principal::bootstrap_admin()));
        assert!(admin.require_scope("anything:write").is_ok());
        assert!(admin.require_admin().is_ok());

        let anon = Caller::new(None);
        assert_eq!(
            anon.require_scope("links:read")
                .expect_err("anonymous")
                .status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn write_rules() {
        let closed = with_key();
        let open = AuthSettings {
            allow_anonymous_writes: true,
            ..with_key()
        };
        let admin = caller(Some(closed.clone()), Some("Bearer s3cret"))
            .await
            .expect("admin");
        assert!(admin.require_write().is_ok());
        let anon = caller(Some(closed), None).await.expect("anonymous");
        assert!(anon.require_write().is_err());
        let anon_open = caller(Some(open), None).await.expect("anonymous");
        assert!(anon_open.require_write().is_ok());
    }

    #[test]
    fn debug_masks_the_key() {
        let text = format!("{:?}", with_key());
        assert!(!text.contains("s3cret"), "{text}");
    }
}
