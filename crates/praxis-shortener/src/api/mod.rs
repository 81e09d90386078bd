//! HTTP routes of the shortener (axum + utoipa): management under `/api/v1/links` and the
//! public redirect at `/{code}`.

pub mod auth;
pub mod dto;
mod links;
mod qr;
mod redirect;
mod stats;

use std::sync::Arc;

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use praxis_http::idempotency::IdempotencyStore;

use crate::settings::ShortenerSettings;
use crate::workers::hot::Resolver;
use crate::workers::links::Links;
use crate::workers::visits::VisitSink;

/// OpenAPI tag of the shortener's routes.
pub const TAG: &str = "shortener";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    links: Links,
    resolver: Resolver,
    visits: VisitSink,
    idempotency: IdempotencyStore,
    settings: Arc<ShortenerSettings>,
}

impl AppState {
    /// The state of the routes.
    pub fn new(
        links: Links,
        resolver: Resolver,
        visits: VisitSink,
        idempotency: IdempotencyStore,
        settings: Arc<ShortenerSettings>,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                links,
                resolver,
                visits,
                idempotency,
                settings,
            }),
        }
    }

    fn links(&self) -> &Links {
        &self.inner.links
    }

    fn settings(&self) -> &ShortenerSettings {
        &self.inner.settings
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(links::create_link, links::list_links))
        .routes(routes!(links::bulk_create))
        .routes(routes!(
            links::get_link,
            links::update_link,
            links::delete_link
        ))
        .routes(routes!(stats::link_stats))
        .routes(routes!(qr::link_qr))
        .routes(routes!(redirect::follow))
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
