//! The catalog's routes: public reads, admin writes.

use axum::extract::State;
use axum::http::StatusCode;
use praxis_http::access::Admin;
use praxis_http::pagination::{cursor_param, encode_cursor, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::dto::{
    ListParams, PriceRequest, ProductChange, ProductPage, ProductRequest, VariantRequest,
};
use super::{AppState, TAG};
use crate::domain::catalog::Product;

/// List products, by id.
#[utoipa::path(
    get,
    path = "/api/v1/commerce/products",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<Json<ProductPage>, Problem> {
    let limit = page_limit(q.limit, 20, state.page_max)?;
    let after: Option<String> = cursor_param(q.cursor.as_deref())?;
    let mut items = state
        .catalog
        .products(after.as_deref(), i64::from(limit) + 1)
        .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .map(|p| encode_cursor(&p.id));
    Ok(Json(ProductPage { items, next_cursor }))
}

/// A product with its variants and prices (from the cache: a change shows within a second).
#[utoipa::path(
    get,
    path = "/api/v1/commerce/products/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The product")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Product>, Problem> {
    Ok(Json(state.catalog.product(&id).await?))
}

/// Create a product (admin).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/products",
    tag = TAG,
    request_body = ProductRequest,
    responses(
        (status = 201, description = "The product", body = Product),
        (status = 400, description = "Bad name or description", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Json(req): Json<ProductRequest>,
) -> Result<(StatusCode, Json<Product>), Problem> {
    let p = state
        .catalog
        .create_product(&req.name, &req.description)
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Rename or redescribe a product (admin).
#[utoipa::path(
    patch,
    path = "/api/v1/commerce/products/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The product")),
    request_body = ProductChange,
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 400, description = "Bad name or description", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<ProductChange>,
) -> Result<Json<Product>, Problem> {
    Ok(Json(
        state
            .catalog
            .update_product(&id, req.name.as_deref(), req.description.as_deref())
            .await?,
    ))
}

/// Add a variant (a SKU) to a product (admin).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/products/{id}/variants",
    tag = TAG,
    params(("id" = String, Path, description = "The product")),
    request_body = VariantRequest,
    responses(
        (status = 201, description = "The product with its new variant", body = Product),
        (status = 400, description = "Bad sku or name", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SKU exists already", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn add_variant(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<VariantRequest>,
) -> Result<(StatusCode, Json<Product>), Problem> {
    let p = state.catalog.add_variant(&id, &req.sku, &req.name).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Set a SKU's price in a currency (admin).
#[utoipa::path(
    put,
    path = "/api/v1/commerce/skus/{sku}/prices/{currency}",
    tag = TAG,
    params(
        ("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$"),
        ("currency" = String, Path, description = "ISO 4217 code", pattern = r"^[A-Z]{3}$"),
    ),
    request_body = PriceRequest,
    responses(
        (status = 200, description = "The product with the new price", body = Product),
        (status = 400, description = "Bad sku, currency or amount", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn set_price(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path((sku, currency)): Path<(String, String)>,
    Json(req): Json<PriceRequest>,
) -> Result<Json<Product>, Problem> {
    Ok(Json(
        state
            .catalog
            .set_price(&sku, &currency, req.amount_cents)
            .await?,
    ))
}
