//! What the request stack hands to extractors: one request extension holding the request id
//! and the auth settings (each extension insert is a box, so one for both).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::principal::AuthSettings;
use crate::request_id::RequestId;

/// Request-scoped values the stack hands to extractors.
#[derive(Clone)]
pub(crate) struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) auth: Arc<AuthSettings>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    /// The id set by the stack; outside the stack (bare routers in tests), a fresh one.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            return Ok(ctx.id.clone());
        }
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_headers(&parts.headers)))
    }
}
