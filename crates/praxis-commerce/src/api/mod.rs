//! HTTP routes of the commerce system (axum + utoipa), under `/api/v1/commerce`.
//!
//! - Catalog ([`catalog`]): `GET /products`, `GET /products/{id}` (public, cached);
//!   `POST /products`, `PATCH /products/{id}`, `POST /products/{id}/variants`,
//!   `PUT /skus/{sku}/prices/{currency}` (admin).
//! - Cart ([`cart`]): `GET /cart`, `POST /cart/items`, `PUT|DELETE /cart/items/{sku}`.
//! - Orders ([`orders`]): `POST /checkout`, `GET /orders`, `GET /orders/{id}`,
//!   `POST /orders/{id}/cancel`.
//! - Inventory ([`inventory`], admin): `PUT /warehouses/{id}`, `GET /stock/{sku}`,
//!   `POST /stock/{sku}/receive`, `POST /stock/{sku}/adjust`, `PUT /stock/{sku}/buckets`,
//!   `GET /inventory/verify`.

pub mod auth;
pub mod cart;
pub mod catalog;
pub mod dto;
pub mod inventory;
pub mod orders;

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::workers::catalog::Catalog;
use crate::workers::checkout::Checkout;
use crate::workers::inventory::Inventory;

/// OpenAPI tag of the commerce routes.
pub const TAG: &str = "commerce";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    catalog: Catalog,
    inventory: Inventory,
    checkout: Checkout,
    page_max: u32,
}

impl AppState {
    /// The state of the routes.
    pub fn new(catalog: Catalog, inventory: Inventory, checkout: Checkout, page_max: u32) -> Self {
        Self {
            catalog,
            inventory,
            checkout,
            page_max,
        }
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let page_max = state.page_max;
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(catalog::list, catalog::create))
        .routes(routes!(catalog::get, catalog::update))
        .routes(routes!(catalog::add_variant))
        .routes(routes!(catalog::set_price))
        .routes(routes!(cart::get))
        .routes(routes!(cart::add))
        .routes(routes!(cart::set, cart::remove))
        .routes(routes!(orders::checkout))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::cancel))
        .routes(routes!(inventory::put_warehouse))
        .routes(routes!(inventory::stock))
        .routes(routes!(inventory::receive))
        .routes(routes!(inventory::adjust))
        .routes(routes!(inventory::split))
        .routes(routes!(inventory::verify))
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
