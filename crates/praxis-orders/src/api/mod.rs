//! HTTP routes of the orders system (axum + utoipa).
//!
//! - Orders ([`orders`]): `POST /api/v1/orders`, `GET /api/v1/orders` (my list, from the
//!   per-user index), `GET /api/v1/orders/{id}`, `PUT /api/v1/orders/{id}` (admin: an order
//!   made elsewhere, under its own id), `POST /api/v1/orders/{id}/status` (admin),
//!   `GET /api/v1/orders/report` (admin; the scatter report).
//! - Shards ([`shards`], admin): `GET /api/v1/orders/shards`, `POST /api/v1/orders/shards/{region}/moves`
//!   (a dry run, or a move), `GET /api/v1/orders/shards/{region}/moves/{id}`,
//!   `POST /api/v1/orders/shards/{region}/moves/{id}/abort`, `POST /api/v1/orders/shards/{region}/verify`.

pub mod dto;
pub mod orders;
pub mod shards;

use std::time::Duration;

use praxis_shard::{RingWatch, ShardSet};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::ShardAdmin;
use crate::store::OrderStore;

/// OpenAPI tag of the order routes.
pub const TAG: &str = "orders";
/// OpenAPI tag of the shard routes.
pub const SHARDS_TAG: &str = "shards";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The orders.
    pub store: OrderStore,
    /// The shards' admin.
    pub admin: ShardAdmin,
    /// The rings.
    pub rings: RingWatch,
    /// The shards.
    pub shards: ShardSet,
    /// Most items in a page.
    pub page_max: u32,
    /// The scatter report's timeout per shard.
    pub report_timeout: Duration,
    /// Shards the scatter report asks at once.
    pub report_concurrency: usize,
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let page_max = state.page_max;
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(orders::place, orders::list))
        .routes(routes!(orders::report))
        .routes(routes!(orders::get, orders::import))
        .routes(routes!(orders::set_status))
        .routes(routes!(shards::status))
        .routes(routes!(shards::start_move))
        .routes(routes!(shards::get_move))
        .routes(routes!(shards::abort_move))
        .routes(routes!(shards::verify))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    praxis_http::openapi::set_query_maximum(&mut doc, "limit", page_max.into());
    (router, doc)
}
