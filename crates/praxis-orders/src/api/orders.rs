//! Placing orders, reading them, my list, status changes, and the scatter report.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use praxis_http::access::Admin;
use praxis_http::pagination::{Page, PageParams, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::dto::{EntryPage, ImportedOrder, NewOrder, ReportParams, StatusChange};
use super::{AppState, TAG};
use crate::domain::{Order, OrderStatus};
use crate::report::{OrdersReport, scatter};
use crate::scopes::Write;

/// Place an order in my home region (pinned at my first order, never changed).
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = TAG,
    request_body = NewOrder,
    responses(
        (status = 201, description = "The order as stored", body = Order),
        (status = 400, description = "Bad region, currency or lines", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "My home region is another one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A region this deployment does not serve", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order's shard is switching (retry after a second)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn place(
    State(state): State<AppState>,
    who: Require<Write>,
    Json(req): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), Problem> {
    let order = state
        .store
        .place(
            who.subject(),
            req.region.as_deref(),
            req.lines,
            &req.currency,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// My orders, newest first (from the per-user index: one shard's read).
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = TAG,
    params(PageParams),
    responses(
        (status = 200, description = "A page of my orders", body = EntryPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    who: Require<Write>,
    Query(q): Query<PageParams>,
) -> Result<Json<EntryPage>, Problem> {
    let limit = page_limit(q.limit, 20, state.page_max)?;
    let before: Option<String> = cursor_param(q.cursor.as_deref())?;
    let items = state
        .store
        .list(who.subject(), before.as_deref(), i64::from(limit) + 1)
        .await?;
    let page = Page::from_overfetch(items, limit, |e| e.order_id.clone());
    Ok(Json(EntryPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One of my orders (any order for the admin).
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The order id (`<region>_<32 hex>`)")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order of mine", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    who: Require<Write>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Problem> {
    match state.store.get(&id).await? {
        Some((order, _)) if who.owns(&order.user_id) => Ok(Json(order)),
        _ => Err(Problem::not_found(format!("no order {id}"))),
    }
}

/// Store an order made elsewhere under its own id (admin): order history loaded from another
/// system. Creates it (201) or replaces it (200). The id's region must be the user's home
/// region.
#[utoipa::path(
    put,
    path = "/api/v1/orders/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The order id (`<region>_<32 hex>`)", pattern = "^[a-z][a-z0-9_]{0,15}_[0-9a-f]{32}$")),
    request_body = ImportedOrder,
    responses(
        (status = 200, description = "Replaced", body = Order),
        (status = 201, description = "Created", body = Order),
        (status = 400, description = "Bad id, user, currency or lines", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The id's region is not served here", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user's home region is another one", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order's shard is switching (retry after a second)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn import(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<ImportedOrder>,
) -> Result<(StatusCode, Json<Order>), Problem> {
    let now = praxis_infra::sql::now_ms();
    let order = Order {
        id: id.clone(),
        user_id: req.user_id,
        region: String::new(),
        status: req.status.unwrap_or(OrderStatus::Placed),
        currency: req.currency,
        total_cents: 0,
        lines: req.lines,
        created_at: req.created_at.unwrap_or(now),
        updated_at: now,
    };
    let (order, created) = state.store.import(&id, order).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(order)))
}

/// Change an order's status (admin): forward along placed, paid, shipped, delivered, or
/// cancelled before shipping.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/status",
    tag = TAG,
    params(("id" = String, Path, description = "The order id")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The order as stored", body = Order),
        (status = 400, description = "Not a status", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order cannot go to that status from its own", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn set_status(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<StatusChange>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(state.store.set_status(&id, req.status).await?))
}

/// Orders per status and totals per shard (admin): asks every shard, a few at a time, each
/// within a timeout, and names the shards that did not answer.
#[utoipa::path(
    get,
    path = "/api/v1/orders/report",
    tag = TAG,
    params(ReportParams),
    responses(
        (status = 200, description = "The report; `complete` is false when a shard did not answer", body = OrdersReport),
        (status = 400, description = "Bad timeout", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A region this deployment does not serve", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Query(q): Query<ReportParams>,
) -> Result<Json<OrdersReport>, Problem> {
    let regions: Vec<String> = match q.region {
        Some(r) if state.store.regions().contains(&r) => vec![r],
        Some(r) => {
            return Err(Problem::not_found(format!(
                "no region {r} here (this deployment serves {})",
                state.store.regions().join(", ")
            )));
        }
        None => state.store.regions().to_vec(),
    };
    let timeout = match q.timeout_ms {
        Some(ms) if (10..=60_000).contains(&ms) => Duration::from_millis(ms),
        Some(_) => return Err(Problem::invalid("timeout_ms", "must be from 10 to 60000")),
        None => state.report_timeout,
    };
    let report = scatter(
        &state.rings,
        &state.shards,
        &regions,
        state.report_concurrency,
        timeout,
    )
    .await?;
    Ok(Json(report))
}
