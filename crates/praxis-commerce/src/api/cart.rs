//! The caller's cart.

use axum::extract::State;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::auth::Buy;
use super::dto::{CartItemRequest, CartQuantity, CartView, CurrencyParams};
use super::{AppState, TAG};

/// The currency a cart is shown in when the request names none.
pub const DEFAULT_CURRENCY: &str = "EUR";

fn currency(q: &CurrencyParams) -> &str {
    q.currency.as_deref().unwrap_or(DEFAULT_CURRENCY)
}

/// My cart, priced in a currency.
#[utoipa::path(
    get,
    path = "/api/v1/commerce/cart",
    tag = TAG,
    params(CurrencyParams),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 400, description = "Bad currency", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<Buy>,
    Query(q): Query<CurrencyParams>,
) -> Result<Json<CartView>, Problem> {
    let c = currency(&q);
    let lines = state.catalog.cart(who.subject(), c).await?;
    Ok(Json(CartView::new(c, lines)))
}

/// Put a quantity of a SKU in my cart (added to what is there).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/cart/items",
    tag = TAG,
    params(CurrencyParams),
    request_body = CartItemRequest,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 400, description = "Bad sku, quantity or currency", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cart would hold more than 1000000000 of the SKU", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn add(
    State(state): State<AppState>,
    who: Require<Buy>,
    Query(q): Query<CurrencyParams>,
    Json(req): Json<CartItemRequest>,
) -> Result<Json<CartView>, Problem> {
    let c = currency(&q);
    let lines = state
        .catalog
        .add_to_cart(who.subject(), &req.sku, req.quantity, c)
        .await?;
    Ok(Json(CartView::new(c, lines)))
}

/// Set a SKU's quantity in my cart (0 removes it).
#[utoipa::path(
    put,
    path = "/api/v1/commerce/cart/items/{sku}",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$"), CurrencyParams),
    request_body = CartQuantity,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 400, description = "Bad sku, quantity or currency", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn set(
    State(state): State<AppState>,
    who: Require<Buy>,
    Path(sku): Path<String>,
    Query(q): Query<CurrencyParams>,
    Json(req): Json<CartQuantity>,
) -> Result<Json<CartView>, Problem> {
    let c = currency(&q);
    let lines = state
        .catalog
        .set_in_cart(who.subject(), &sku, req.quantity, c)
        .await?;
    Ok(Json(CartView::new(c, lines)))
}

/// Remove a SKU from my cart.
#[utoipa::path(
    delete,
    path = "/api/v1/commerce/cart/items/{sku}",
    tag = TAG,
    params(("sku" = String, Path, description = "The SKU", pattern = r"^[A-Za-z0-9._-]{1,64}$"), CurrencyParams),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 400, description = "Bad sku or currency", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    who: Require<Buy>,
    Path(sku): Path<String>,
    Query(q): Query<CurrencyParams>,
) -> Result<Json<CartView>, Problem> {
    let c = currency(&q);
    let lines = state.catalog.set_in_cart(who.subject(), &sku, 0, c).await?;
    Ok(Json(CartView::new(c, lines)))
}
