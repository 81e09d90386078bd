//! Dead letters (failed deliveries) and the dispatch state of this process.

use axum::extract::State;
use axum::http::StatusCode;

use praxis_http::Require;
use praxis_http::pagination::{Page, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::NotifyWrite;
use super::dto::{DeadLetterPage, DeadLetterParams, DeliveryView, ProvidersView};
use super::{AppState, TAG};
use crate::domain::channel::Channel;
use crate::domain::model::now_ms;
use crate::store::queue::Requeued;

/// Default page size of the dead-letter list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the dead-letter list.
const MAX_LIMIT: u32 = 500;

/// List dead letters: deliveries that failed permanently or ran out of attempts, most
/// recently failed first, each with every attempt.
#[utoipa::path(
    get,
    path = "/api/v1/notify/dead-letters",
    tag = TAG,
    params(DeadLetterParams),
    responses(
        (status = 200, description = "A page of failed deliveries", body = DeadLetterPage),
        (status = 400, description = "Bad channel, cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<DeadLetterPage>, Problem> {
    let channel = match params.channel.as_deref() {
        None | Some("") => None,
        Some(c) => Some(Channel::parse(c).ok_or_else(|| {
            Problem::validation(vec![FieldError::new(
                "channel",
                "must be email, webhook, sms, push or in_app",
            )])
        })?),
    };
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before: Option<(i64, String)> = cursor_param(params.cursor.as_deref())?;
    let store = &state.inner.store;
    let rows = store
        .dead_letters(channel, before.as_ref(), limit + 1)
        .await?;
    let page = Page::from_overfetch(rows, limit, |d| (d.updated_at, d.id.clone()));
    let ids: Vec<String> = page.items.iter().map(|d| d.id.clone()).collect();
    let attempts = store.attempts_of(&ids).await?;
    Ok(Json(DeadLetterPage {
        items: page
            .items
            .iter()
            .map(|d| DeliveryView::new(d, &attempts))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Requeue a dead letter: it is due at once, with a fresh budget of attempts (its earlier
/// attempts stay in its log).
#[utoipa::path(
    post,
    path = "/api/v1/notify/dead-letters/{id}/requeue",
    tag = TAG,
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued again", body = DeliveryView),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is not failed", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn requeue_dead_letter(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), Problem> {
    let not_found = || Problem::not_found(format!("no delivery with id {id:?}"));
    if id.len() > 64 {
        return Err(not_found());
    }
    match state.inner.queue.requeue(&id, now_ms()).await? {
        Requeued::Queued(channel) => {
            state.inner.wakers.wake(channel);
            tracing::info!(delivery_id = %id, channel = channel.as_str(), "dead letter requeued");
        }
        Requeued::NotFound => return Err(not_found()),
        Requeued::NotFailed(s) => {
            return Err(Problem::conflict(
                "not-a-dead-letter",
                format!(
                    "delivery {id} is {}, not failed: only dead letters can be requeued",
                    s.as_str()
                ),
            ));
        }
    }
    let store = &state.inner.store;
    let delivery = store.delivery(&id).await?.ok_or_else(not_found)?;
    let attempts = store.attempts_of(std::slice::from_ref(&id)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DeliveryView::new(&delivery, &attempts)),
    ))
}

/// The channels of this process: provider, concurrency, sends in flight, rate limit and the
/// circuit breakers that are not closed and idle.
#[utoipa::path(
    get,
    path = "/api/v1/notify/providers",
    tag = TAG,
    responses(
        (status = 200, description = "Dispatch state of this process", body = ProvidersView),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn providers(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
) -> Result<Json<ProvidersView>, Problem> {
    Ok(Json(ProvidersView {
        channels: state.inner.dispatch.status(),
    }))
}
