//! HTTP routes of the identity system (axum + utoipa), under `/api/v1/identity`.

mod accounts;
mod admin;
mod auth;
pub mod dto;
mod keys;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use praxis_http::Problem;

use crate::workers::Core;

/// OpenAPI tag of the identity routes.
pub const TAG: &str = "identity";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    core: Arc<Core>,
}

impl AppState {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(accounts::sign_up))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::refresh))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(admin::list_accounts))
        .routes(routes!(admin::update_account))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    (router, doc)
}

/// The client's IP address: the peer of the connection, or, when the peer is a trusted proxy,
/// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy. `None` when
/// the server was not started with connection info (a router driven without a socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(praxis_http::client_ip::client_ip(
            peer,
            &parts.headers,
            &state.core.settings.trusted_proxies,
        )))
    }
}

/// Responses that carry tokens must not be cached by anything on the way (RFC 6749 5.1).
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
