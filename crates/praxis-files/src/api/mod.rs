//! HTTP routes of the file storage (axum + utoipa), under `/api/v1/files`.
//!
//! - tus 1.0.0 at `/tus/` ([`tus`]): `OPTIONS`, `POST` (creation), and on an upload URL
//!   `HEAD`, `PATCH`, `DELETE` and `GET` (download once complete).
//! - `PUT /upload` (a whole body, streamed) and `POST /upload` (a small multipart form).
//! - `GET /` (my files), `GET|DELETE /{id}`, `GET|HEAD /{id}/content` (ranges, ETag; also with
//!   a signed URL's query), `POST /{id}/signed-url`, `POST /{id}/links`,
//!   `DELETE /links/{token}`, `GET /public/{token}`, `GET /usage`, `PUT /quotas/{account}`.

pub mod auth;
pub mod download;
pub mod dto;
pub mod files;
pub mod tus;

use std::sync::Arc;

use praxis_http::client_ip::Cidr;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::workers::Files;

/// OpenAPI tag of the file routes.
pub const TAG: &str = "files";

/// The routes whose bodies stream (no body limit, no request timeout: the upload's length,
/// the quota and `idle_timeout` bound them).
pub const STREAMING: &[&str] = &[tus::ENDPOINT, tus::UPLOAD, files::SIMPLE_UPLOAD];

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    files: Files,
    trusted_proxies: Arc<[Cidr]>,
}

impl AppState {
    /// The state of the routes; `trusted_proxies` decide the client address a signed URL may
    /// be bound to.
    pub fn new(files: Files, trusted_proxies: Vec<Cidr>) -> Self {
        Self {
            files,
            trusted_proxies: trusted_proxies.into(),
        }
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let page_max = state.files.settings().page_max;
    let max_size = state.files.settings().max_size as u64;
    let signed_max = state.files.settings().signed_url_max_ttl.as_secs();
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(tus::options, tus::create))
        .routes(routes!(tus::head, tus::patch, tus::terminate, tus::get))
        .routes(routes!(files::put_upload, files::form_upload))
        .routes(routes!(files::list))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(files::sign))
        .routes(routes!(files::create_link))
        .routes(routes!(files::revoke_link))
        .routes(routes!(files::public))
        .routes(routes!(files::usage))
        .routes(routes!(files::set_quota))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    praxis_http::openapi::set_query_maximum(&mut doc, "limit", page_max.into());
    // Bounds that are settings: the document states the configured ones.
    praxis_http::openapi::set_header_maximum(&mut doc, "Upload-Length", max_size);
    praxis_http::openapi::set_property_maximum(
        &mut doc,
        "FileSignRequest",
        "expires_in",
        signed_max,
    );
    (router, doc)
}
