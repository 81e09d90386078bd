//! Checkout and the caller's orders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use praxis_http::idempotency::key_from_headers;
use praxis_http::pagination::{cursor_param, encode_cursor, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::auth::Buy;
use super::dto::{CheckoutRequest, ListParams, OrderPage, OrderView};
use super::{AppState, TAG};
use crate::domain::model::Line;
use crate::domain::order::Step;

/// Check out my cart, or ("buy now") the `lines` given, leaving the cart as it is: reserve,
/// pay, ship, confirm. The answer is the order once its checkout has ended: `confirmed`, or
/// `cancelled` with the `failure` (nothing held or charged). With `Idempotency-Key`, a retry
/// gets the same order.
#[utoipa::path(
    post,
    path = "/api/v1/commerce/checkout",
    tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the same order", pattern = "^[!-~]{1,255}$")),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "The order, confirmed or cancelled", body = OrderView),
        (status = 400, description = "Bad currency, region, lines or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A line's SKU is not in the catalog", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cart is empty, or the order holds a SKU without a price in the currency", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn checkout(
    State(state): State<AppState>,
    who: Require<Buy>,
    headers: HeaderMap,
    Json(req): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<OrderView>), Problem> {
    let key = key_from_headers(&headers)?;
    if let Some(key) = key.as_deref()
        && let Some(order) = state.checkout.order_by_key(who.subject(), key).await?
    {
        // A retry: the cart may be empty now; the answer is the first order.
        return Ok((StatusCode::CREATED, Json(order.into())));
    }
    let buy_now = req.lines.is_some();
    let new = match req.lines {
        Some(lines) => {
            let lines: Vec<Line> = lines
                .into_iter()
                .map(|l| Line {
                    sku: l.sku,
                    quantity: l.quantity,
                })
                .collect();
            state
                .catalog
                .order_from_lines(
                    who.subject(),
                    &lines,
                    &req.currency,
                    req.region.as_deref(),
                    key.as_deref(),
                )
                .await?
        }
        None => {
            state
                .catalog
                .order_from_cart(
                    who.subject(),
                    &req.currency,
                    req.region.as_deref(),
                    key.as_deref(),
                )
                .await?
        }
    };
    let order = state.checkout.place(new).await?;
    if !buy_now && order.step == Step::Confirmed {
        state.catalog.clear_cart(who.subject()).await?;
    }
    Ok((StatusCode::CREATED, Json(order.into())))
}

/// My orders, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/commerce/orders",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    who: Require<Buy>,
    Query(q): Query<ListParams>,
) -> Result<Json<OrderPage>, Problem> {
    let limit = page_limit(q.limit, 20, state.page_max)?;
    let before: Option<String> = cursor_param(q.cursor.as_deref())?;
    let mut orders = state
        .checkout
        .orders_of(who.subject(), before.as_deref(), i64::from(limit) + 1)
        .await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let next_cursor = more
        .then(|| orders.last())
        .flatten()
        .map(|o| encode_cursor(&o.id));
    Ok(Json(OrderPage {
        items: orders.into_iter().map(OrderView::from).collect(),
        next_cursor,
    }))
}

/// One of my orders.
#[utoipa::path(
    get,
    path = "/api/v1/commerce/orders/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<Buy>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, Problem> {
    Ok(Json(state.checkout.order(who.subject(), &id).await?.into()))
}

/// Cancel one of my orders: every completed step is undone (a confirmed order's shipment is
/// cancelled, its payment voided and its stock put back).
#[utoipa::path(
    post,
    path = "/api/v1/commerce/orders/{id}/cancel",
    tag = TAG,
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderView),
        (status = 404, description = "No such order among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its checkout is running in another request; retry", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    who: Require<Buy>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, Problem> {
    Ok(Json(
        state.checkout.cancel(who.subject(), &id).await?.into(),
    ))
}
