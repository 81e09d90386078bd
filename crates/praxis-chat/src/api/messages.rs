//! Messages: send, history, edit, delete, read marker.

use axum::extract::State;
use axum::http::StatusCode;

use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};

use super::auth::{ChatRead, ChatWrite};
use super::dto::{
    ChatEditBody, ChatSendBody, EditMessage, HistoryPage, HistoryParams, MarkRead, MessageView,
    ReadMarker, SendMessage, content,
};
use super::{AppState, TAG, page_limit};
use crate::domain::keys::Encrypted;
use crate::store::Window;

/// Send a message.
///
/// The server gives it the conversation's next sequence number (gapless, strictly
/// increasing) and a timestamp. A resend with the same `client_id` answers the first copy
/// with 200 and changes nothing; the same `client_id` with another body is 409.
///
/// An end-to-end encrypted conversation takes `encrypted` (a ciphertext envelope from a
/// registered device of the sender) instead of `body`; the server stores and relays it
/// unread.
#[utoipa::path(
    post,
    path = "/api/v1/chat/conversations/{id}/messages",
    tag = TAG,
    params(("id" = String, Path, description = "The conversation")),
    request_body = ChatSendBody,
    responses(
        (status = 201, description = "Stored", body = MessageView),
        (status = 200, description = "A resend: the first copy", body = MessageView),
        (status = 400, description = "Invalid body; `errors` names client_id, body or encrypted", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Text for an encrypted conversation, or ciphertext for one that is not (`conversation-state`); the same `client_id` with another body", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over send_rate; Retry-After says when to retry", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn send(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path(id): Path<String>,
    Json(req): Json<SendMessage>,
) -> Result<(StatusCode, Json<MessageView>), Problem> {
    let encrypted = req.encrypted.map(Encrypted::from);
    let content = content(req.body.as_deref(), encrypted.as_ref())?;
    let (message, stored) = state
        .inner
        .chat
        .send(who.subject(), &id, &req.client_id, content)
        .await?;
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(MessageView::from(&message))))
}

/// Read history, paged by sequence number.
///
/// `after=N` gives the messages after N, oldest first (catch-up: pass the last sequence you
/// have). `before=N` gives the ones just before N (scrolling back). Both give the ones between
/// them (the page after `after`, without those from `before` on). Neither gives the newest.
/// Pages are oldest first in every case; deleted messages appear as tombstones.
#[utoipa::path(
    get,
    path = "/api/v1/chat/conversations/{id}/messages",
    tag = TAG,
    params(("id" = String, Path, description = "The conversation"), HistoryParams),
    responses(
        (status = 200, description = "A page of history", body = HistoryPage),
        (status = 400, description = "Bad after, before or limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<HistoryPage>, Problem> {
    let chat = &state.inner.chat;
    let limit = page_limit(params.limit, chat.settings().page_max)?;
    let window = match (params.after, params.before) {
        (Some(after), _) if after < 0 => {
            return Err(Problem::invalid(
                "after",
                "must be a sequence number, 0 or more",
            ));
        }
        (_, Some(before)) if before < 1 => {
            return Err(Problem::invalid(
                "before",
                "must be a sequence number, 1 or more",
            ));
        }
        (Some(after), _) => Window::After(after),
        (None, Some(before)) => Window::Before(before),
        (None, None) => Window::Latest,
    };
    let (mut messages, last_seq) = chat.history(who.subject(), &id, window, limit).await?;
    // Both: the messages between them, oldest first (the page after `after`, cut at `before`).
    if let (Some(_), Some(before)) = (params.after, params.before) {
        messages.retain(|m| m.seq < before);
    }
    Ok(Json(HistoryPage {
        messages: messages.iter().map(MessageView::from).collect(),
        last_seq,
    }))
}

/// Edit my message (with `encrypted` instead of `body` in an encrypted conversation).
#[utoipa::path(
    patch,
    path = "/api/v1/chat/conversations/{id}/messages/{seq}",
    tag = TAG,
    params(
        ("id" = String, Path, description = "The conversation"),
        ("seq" = i64, Path, description = "The message's sequence number"),
    ),
    request_body = ChatEditBody,
    responses(
        (status = 200, description = "Edited", body = MessageView),
        (status = 400, description = "Invalid body or sequence number", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Text for an encrypted conversation, or ciphertext for one that is not (`conversation-state`); a deleted message", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's, or no such message", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn edit(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path((id, seq)): Path<(String, i64)>,
    Json(req): Json<EditMessage>,
) -> Result<Json<MessageView>, Problem> {
    let encrypted = req.encrypted.map(Encrypted::from);
    let content = content(req.body.as_deref(), encrypted.as_ref())?;
    let message = state
        .inner
        .chat
        .edit(who.subject(), &id, seq, content)
        .await?;
    Ok(Json(MessageView::from(&message)))
}

/// Delete a message (mine, or any in a group I own). It stays in the history as a tombstone.
#[utoipa::path(
    delete,
    path = "/api/v1/chat/conversations/{id}/messages/{seq}",
    tag = TAG,
    params(
        ("id" = String, Path, description = "The conversation"),
        ("seq" = i64, Path, description = "The message's sequence number"),
    ),
    responses(
        (status = 200, description = "The tombstone", body = MessageView),
        (status = 400, description = "Invalid sequence number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's, or no such message", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path((id, seq)): Path<(String, i64)>,
) -> Result<Json<MessageView>, Problem> {
    let message = state.inner.chat.delete(who.subject(), &id, seq).await?;
    Ok(Json(MessageView::from(&message)))
}

/// Move my read marker (it never moves back, and stops at the newest message).
#[utoipa::path(
    post,
    path = "/api/v1/chat/conversations/{id}/read",
    tag = TAG,
    params(("id" = String, Path, description = "The conversation")),
    request_body = MarkRead,
    responses(
        (status = 200, description = "The marker now", body = ReadMarker),
        (status = 400, description = "Invalid sequence number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Path(id): Path<String>,
    Json(req): Json<MarkRead>,
) -> Result<Json<ReadMarker>, Problem> {
    let read_seq = state
        .inner
        .chat
        .mark_read(who.subject(), &id, req.seq)
        .await?;
    Ok(Json(ReadMarker { read_seq }))
}
