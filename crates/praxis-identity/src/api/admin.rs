//! The admin's account routes: list accounts, set role and plan. The first admin account is
//! made with the bootstrap admin key (`PATCH /api/v1/identity/accounts/{id}` `{"role":"admin"}`).

use axum::extract::State;

use praxis_http::Require;
use praxis_http::access::Admin;
use praxis_http::pagination::{Page, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query};

use super::dto::{AccountPage, AccountView, ListParams, UpdateAccount};
use super::{AppState, TAG};
use crate::store::ListKey;

/// List every account, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/identity/accounts",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of accounts", body = AccountPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_accounts(
    State(state): State<AppState>,
    _: Require<Admin>,
    Query(params): Query<ListParams>,
) -> Result<Json<AccountPage>, Problem> {
    let limit = page_limit(params.limit, 50, 200)?;
    let after: Option<ListKey> = cursor_param(params.cursor.as_deref())?;
    let rows = state.core.list_accounts(after.as_ref(), limit).await?;
    let page = Page::from_overfetch(rows, limit, |a| (a.created_at, a.id.clone()));
    Ok(Json(AccountPage {
        items: page.items.iter().map(AccountView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Set an account's role and/or plan (admin). New access tokens carry the change; existing
/// ones keep the old role until they expire. Neither given: the account, unchanged.
#[utoipa::path(
    patch,
    path = "/api/v1/identity/accounts/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The account id")),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "The changed account", body = AccountView),
        (status = 400, description = "Invalid role or plan", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn update_account(
    State(state): State<AppState>,
    _: Require<Admin>,
    Path(id): Path<String>,
    Json(req): Json<UpdateAccount>,
) -> Result<Json<AccountView>, Problem> {
    // Neither role nor plan: nothing changes, and the account is the answer (an empty patch).
    let account = state
        .core
        .update_account(&id, req.role, req.plan.as_deref())
        .await?;
    Ok(Json(AccountView::from(&account)))
}
