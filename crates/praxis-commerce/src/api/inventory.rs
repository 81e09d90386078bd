//! The inventory's admin routes: warehouses, receipts, adjustments, stock and the ledger check.

use axum::extract::State;
use praxis_http::access::Admin;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Require};

use super::dto::{
    AdjustRequest, BucketsRequest, ReceiveRequest, StockView, VerifyView, WarehouseRequest,
};
use super::{AppState, TAG};

/// Create a warehouse in a region (again with the same region: no change) (admin).
#[utoipa::path(
    put,
    path = "/api/v1/commerce/warehouses/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The warehouse", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body = WarehouseRequest,
    responses(
        (status = 200, description = "The warehouse exists in that region", body = WarehouseRequest),
        (status = 400, description = "Bad id or region", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It exists in another region", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn put_warehouse(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<WarehouseRequest>,
) -> Result<Json<WarehouseRequest>, Problem> {
    state.inventory.create_warehouse(&id, &req.region).await?;
    Ok(Json(req))
}

async fn stock_of(state: &AppState, sku: &str) -> Result<Json<Vec<StockView>>, Problem> {
    let levels = state.inventory.stock(sku).await?;
    Ok(Json(levels.into_iter().map(StockView::from).collect()))
}

/// A SKU's stock in every warehouse (admin).
#[utoipa::path(
    get,
    path = "/api/v1/commerce/stock/{sku}",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "Its stock per warehouse (empty when it has none)", body = Vec<StockView>),
        (status = 400, description = "Bad sku", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn stock(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(sku): Path<String>,
) -> Result<Json<Vec<StockView>>, Problem> {
    stock_of(&state, &sku).await
}

/// Stock of a SKU arrives at a warehouse (admin).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/stock/{sku}/receive",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body = ReceiveRequest,
    responses(
        (status = 200, description = "Its stock per warehouse", body = Vec<StockView>),
        (status = 400, description = "Bad sku, warehouse or quantity", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such warehouse", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn receive(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(sku): Path<String>,
    Json(req): Json<ReceiveRequest>,
) -> Result<Json<Vec<StockView>>, Problem> {
    state
        .inventory
        .receive(&sku, &req.warehouse, req.quantity)
        .await?;
    stock_of(&state, &sku).await
}

/// Correct a warehouse's count of a SKU after a stocktake (admin).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/stock/{sku}/adjust",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body = AdjustRequest,
    responses(
        (status = 200, description = "Its stock per warehouse", body = Vec<StockView>),
        (status = 400, description = "Bad sku, warehouse, delta or note", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No stock of it in that warehouse", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave less than is reserved", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn adjust(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(sku): Path<String>,
    Json(req): Json<AdjustRequest>,
) -> Result<Json<Vec<StockView>>, Problem> {
    if req.note.chars().count() > 500 {
        return Err(Problem::invalid("note", "must be at most 500 characters"));
    }
    state
        .inventory
        .adjust(&sku, &req.warehouse, req.delta, &req.note)
        .await?;
    stock_of(&state, &sku).await
}

/// Split a SKU's stock in a warehouse into buckets before a flash sale, or merge it back
/// (admin): concurrent reservations then update different rows.
#[utoipa::path(
    put,
    path = "/api/v1/commerce/stock/{sku}/buckets",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body = BucketsRequest,
    responses(
        (status = 200, description = "Its stock per warehouse", body = Vec<StockView>),
        (status = 400, description = "Bad sku, warehouse or bucket count", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No stock of it in that warehouse", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn split(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(sku): Path<String>,
    Json(req): Json<BucketsRequest>,
) -> Result<Json<Vec<StockView>>, Problem> {
    state
        .inventory
        .set_buckets(&sku, &req.warehouse, req.buckets)
        .await?;
    stock_of(&state, &sku).await
}

/// Check every stock row against its ledger and its held reservations (admin).
#[utoipa::path(
    get,
    path = "/api/v1/commerce/inventory/verify",
    tag = TAG,
    responses(
        (status = 200, description = "What the check found", body = VerifyView),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    _admin: Require<Admin>,
) -> Result<Json<VerifyView>, Problem> {
    Ok(Json(state.inventory.verify().await?.into()))
}
