//! API key routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use praxis_http::Require;
use praxis_http::pagination::{Page, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query};

use super::auth::{KeysRead, KeysWrite};
use super::dto::{CreateKey, CreatedKey, KeyPage, KeyView, ListParams};
use super::{AppState, TAG, no_store};
use crate::store::ListKey;

/// Create an API key; the answer is the only time the key is shown.
///
/// Scopes must be held by the caller. No `Idempotency-Key`: the answer holds a secret that is
/// never stored, so it cannot be replayed; a retried create makes a second key (revoke the
/// unused one).
#[utoipa::path(
    post,
    path = "/api/v1/identity/keys",
    tag = TAG,
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; `key` is shown once", body = CreatedKey),
        (status = 400, description = "Invalid name or scopes; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    who: Require<KeysWrite>,
    Json(req): Json<CreateKey>,
) -> Result<Response, Problem> {
    let who = who.principal();
    let (row, key) = state.core.create_key(who, &req.name, &req.scopes).await?;
    let body = CreatedKey {
        key,
        info: KeyView::from(&row),
    };
    Ok(no_store((StatusCode::CREATED, Json(body)).into_response()))
}

/// List the caller's API keys (revoked ones included), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/identity/keys",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of keys", body = KeyPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    who: Require<KeysRead>,
    Query(params): Query<ListParams>,
) -> Result<Json<KeyPage>, Problem> {
    let who = who.principal();
    let limit = page_limit(params.limit, 50, 200)?;
    let after: Option<ListKey> = cursor_param(params.cursor.as_deref())?;
    let rows = state
        .core
        .list_keys(&who.subject, after.as_ref(), limit)
        .await?;
    let page = Page::from_overfetch(rows, limit, |k| (k.created_at, k.id.clone()));
    Ok(Json(KeyPage {
        items: page.items.iter().map(KeyView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revoke an API key; every process refuses it from now on. Revoking twice is fine.
#[utoipa::path(
    delete,
    path = "/api/v1/identity/keys/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key of the caller", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    who: Require<KeysWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = who.principal();
    if id.len() > 64 {
        return Err(Problem::not_found("no API key with this id"));
    }
    state.core.revoke_key(who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
