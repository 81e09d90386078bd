//! The in-app inbox of a subscriber: list (newest first, cursor pages), mark read, read all,
//! unread count, and a Server-Sent Events stream of new items; and the subscriber tokens that
//! let a subscriber (a browser) read its own inbox.
//!
//! Who may read an inbox: a principal with `notify:read` or `notify:write` (changing read
//! state needs `notify:write`), or the subscriber itself with its token
//! (`POST /subscribers/{id}/inbox-token`), sent as `Authorization: Subscriber <token>` or
//! `?token=<token>` (for `EventSource`, which cannot set headers). A token opens only its own
//! subscriber's inbox: any other is 403.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use praxis_http::pagination::{Page, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Caller, Require};
use praxis_http::{Json, Path, Problem, Query};

use super::auth::{NotifyRead, NotifyWrite};
use super::{AppState, TAG};
use crate::domain::model::{now_ms, rfc3339};
use crate::workers::inapp::{HEARTBEAT, InboxItem};

/// Default page size of the inbox list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the inbox list.
const MAX_LIMIT: u32 = 500;
/// Longest subscriber or item id looked up (longer ones cannot exist).
const MAX_ID: usize = 256;

/// One inbox item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxItemView {
    /// Item id (= the delivery id); the SSE event id on the stream.
    pub id: String,
    /// The message it came from.
    pub message_id: String,
    /// Title (the template's in-app subject).
    pub title: String,
    /// Body (the template's in-app text).
    pub body: String,
    /// The message's template data.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Whether it was read.
    pub read: bool,
    /// When it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    /// When it arrived.
    pub created_at: String,
}

impl From<&InboxItem> for InboxItemView {
    fn from(i: &InboxItem) -> Self {
        Self {
            id: i.id.clone(),
            message_id: i.message_id.clone(),
            title: i.title.clone(),
            body: i.body.clone(),
            data: i.data.clone(),
            read: i.read_at.is_some(),
            read_at: i.read_at.map(rfc3339),
            created_at: rfc3339(i.created_at),
        }
    }
}

/// A page of inbox items, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboxPage {
    /// Items, newest first.
    pub items: Vec<InboxItemView>,
    /// Cursor of the next (older) page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/notify/inbox/{subscriber}`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50); outside that range is 400.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only unread items.
    pub unread_only: Option<bool>,
    /// The subscriber token, instead of an `Authorization` header.
    #[expect(
        dead_code,
        reason = "read from the raw query by InboxCaller; declared for the OpenAPI description"
    )]
    pub token: Option<String>,
}

/// Query of the inbox routes other than the list: the subscriber token, when not sent as a
/// header, and for the stream the last event seen (like the `Last-Event-ID` header).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenParams {
    /// The subscriber token, instead of an `Authorization` header.
    #[expect(
        dead_code,
        reason = "read from the raw query by InboxCaller; declared for the OpenAPI description"
    )]
    pub token: Option<String>,
    /// Stream only: the last event id seen (the `Last-Event-ID` header wins).
    pub last_event_id: Option<String>,
}

/// Unread items of a subscriber.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnreadCount {
    /// How many items are unread.
    pub unread: i64,
}

/// Answer of read-all.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadAll {
    /// How many items were unread and are now read.
    pub marked: u64,
}

/// A subscriber token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxToken {
    /// The subscriber.
    pub subscriber_id: String,
    /// `hex(HMAC-SHA256(key, subscriber id))`: send it as `Authorization: Subscriber <token>`
    /// or `?token=`. It does not expire; it changes when the webhook secret does.
    pub token: String,
}

/// The caller of an inbox route: a subscriber token or a principal.
#[derive(Debug)]
pub enum InboxCaller {
    /// `Authorization: Subscriber <token>` or `?token=`.
    Subscriber(String),
    /// Bearer credentials (or none).
    Principal(Caller),
}

impl<S: Send + Sync> FromRequestParts<S> for InboxCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let text = value.to_str().unwrap_or("");
            if let Some((scheme, token)) = text.split_once(' ')
                && scheme.eq_ignore_ascii_case("subscriber")
            {
                return Ok(InboxCaller::Subscriber(token.trim().to_owned()));
            }
        } else if let Some(query) = parts.uri.query()
            && let Some((_, token)) =
                url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token")
        {
            return Ok(InboxCaller::Subscriber(token.into_owned()));
        }
        Ok(InboxCaller::Principal(
            Caller::from_request_parts(parts, state).await?,
        ))
    }
}

impl InboxCaller {
    /// Whether the caller may read (`write`: change) `subscriber`'s inbox: 401 without a
    /// credential or with a subscriber token that does not open it, 403 when a principal lacks
    /// the scope.
    fn allow(&self, state: &AppState, subscriber: &str, write: bool) -> Result<(), Problem> {
        match self {
            InboxCaller::Subscriber(token) => {
                if state.inner.inbox.verify(subscriber, token) {
                    Ok(())
                } else {
                    // The token is the credential of this inbox: one that does not verify
                    // (forged, another subscriber's, or none usable) authenticates nobody.
                    Err(Problem::unauthorized(
                        "the subscriber token does not open this subscriber's inbox",
                    ))
                }
            }
            InboxCaller::Principal(caller) => {
                if write {
                    Require::<NotifyWrite>::check(caller)?;
                } else {
                    Require::<NotifyRead>::check(caller)?;
                }
                Ok(())
            }
        }
    }
}

fn check_ids(subscriber: &str, item: Option<&str>) -> Result<(), Problem> {
    if subscriber.is_empty() || subscriber.len() > MAX_ID {
        return Err(Problem::not_found(format!(
            "no subscriber with id {subscriber:?}"
        )));
    }
    if let Some(item) = item
        && item.len() > MAX_ID
    {
        return Err(Problem::not_found(format!(
            "no inbox item with id {item:?}"
        )));
    }
    Ok(())
}

/// A subscriber's inbox, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notify/inbox/{subscriber}",
    tag = TAG,
    params(("subscriber" = String, Path, description = "Subscriber id"), InboxParams),
    responses(
        (status = 200, description = "A page of items", body = InboxPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope notify:read", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn list_inbox(
    State(state): State<AppState>,
    caller: InboxCaller,
    Path(subscriber): Path<String>,
    Query(params): Query<InboxParams>,
) -> Result<Json<InboxPage>, Problem> {
    check_ids(&subscriber, None)?;
    caller.allow(&state, &subscriber, false)?;
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before: Option<(i64, String)> = cursor_param(params.cursor.as_deref())?;
    let rows = state
        .inner
        .inbox
        .list(
            &subscriber,
            params.unread_only.unwrap_or(false),
            before.as_ref(),
            limit + 1,
        )
        .await?;
    let page = Page::from_overfetch(rows, limit, InboxItem::key);
    Ok(Json(InboxPage {
        items: page.items.iter().map(InboxItemView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Mark one item read (an item already read keeps its first `read_at`).
#[utoipa::path(
    post,
    path = "/api/v1/notify/inbox/{subscriber}/{item}/read",
    tag = TAG,
    params(
        ("subscriber" = String, Path, description = "Subscriber id"),
        ("item" = String, Path, description = "Item id"),
        TokenParams,
    ),
    responses(
        (status = 200, description = "The item, read", body = InboxItemView),
        (status = 403, description = "Missing scope notify:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item in this inbox", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: InboxCaller,
    Path((subscriber, item)): Path<(String, String)>,
) -> Result<Json<InboxItemView>, Problem> {
    check_ids(&subscriber, Some(&item))?;
    caller.allow(&state, &subscriber, true)?;
    match state
        .inner
        .inbox
        .mark_read(&subscriber, &item, now_ms())
        .await?
    {
        Some(i) => Ok(Json(InboxItemView::from(&i))),
        None => Err(Problem::not_found(format!(
            "no inbox item {item:?} for subscriber {subscriber:?}"
        ))),
    }
}

/// Mark every unread item read.
#[utoipa::path(
    post,
    path = "/api/v1/notify/inbox/{subscriber}/read-all",
    tag = TAG,
    params(("subscriber" = String, Path, description = "Subscriber id"), TokenParams),
    responses(
        (status = 200, description = "How many were marked", body = ReadAll),
        (status = 403, description = "Missing scope notify:write", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn read_all(
    State(state): State<AppState>,
    caller: InboxCaller,
    Path(subscriber): Path<String>,
) -> Result<Json<ReadAll>, Problem> {
    check_ids(&subscriber, None)?;
    caller.allow(&state, &subscriber, true)?;
    let marked = state.inner.inbox.read_all(&subscriber, now_ms()).await?;
    Ok(Json(ReadAll { marked }))
}

/// How many items are unread.
#[utoipa::path(
    get,
    path = "/api/v1/notify/inbox/{subscriber}/unread-count",
    tag = TAG,
    params(("subscriber" = String, Path, description = "Subscriber id"), TokenParams),
    responses(
        (status = 200, description = "Unread items", body = UnreadCount),
        (status = 403, description = "Missing scope notify:read", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn unread_count(
    State(state): State<AppState>,
    caller: InboxCaller,
    Path(subscriber): Path<String>,
) -> Result<Json<UnreadCount>, Problem> {
    check_ids(&subscriber, None)?;
    caller.allow(&state, &subscriber, false)?;
    let unread = state.inner.inbox.unread_count(&subscriber).await?;
    Ok(Json(UnreadCount { unread }))
}

/// Live stream of new items (Server-Sent Events).
///
/// Each new item is one event: `id` is the item id, `data` the item as JSON
/// (`InboxItemView`). A comment line is sent every 15 s when idle. On reconnect, the
/// `Last-Event-ID` header (or `?last_event_id=`) replays the items stored after that one (up
/// to 1000). Items delivered by any process reach the streams of every process.
#[utoipa::path(
    get,
    path = "/api/v1/notify/inbox/{subscriber}/stream",
    tag = TAG,
    params(
        ("subscriber" = String, Path, description = "Subscriber id"),
        ("last-event-id" = Option<String>, Header, description = "Last item id received"),
        TokenParams,
    ),
    responses(
        (status = 200, description = "An event stream of new items", body = String, content_type = "text/event-stream"),
        (status = 403, description = "Missing scope notify:read", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: InboxCaller,
    Path(subscriber): Path<String>,
    Query(params): Query<TokenParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_ids(&subscriber, None)?;
    caller.allow(&state, &subscriber, false)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(params.last_event_id)
        .filter(|l| !l.is_empty() && l.len() <= MAX_ID);
    let feed = state.inner.inbox.feed(&subscriber, last.as_deref()).await?;
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        let view = InboxItemView::from(&item);
        let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
        let event = Event::default().id(item.id).data(data);
        Some((Ok::<_, Infallible>(event), feed))
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"));
    Ok((
        StatusCode::OK,
        [("cache-control", "no-cache"), ("x-accel-buffering", "no")],
        sse,
    )
        .into_response())
}

/// Issue the subscriber token of a subscriber: `hex(HMAC-SHA256(key, subscriber id))`, the key
/// derived from the webhook secret (like Novu's subscriber hash). Hand it to the subscriber's
/// client: it opens that subscriber's inbox and no other.
#[utoipa::path(
    post,
    path = "/api/v1/notify/subscribers/{id}/inbox-token",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id")),
    responses(
        (status = 200, description = "The token", body = InboxToken),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn inbox_token(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path(id): Path<String>,
) -> Result<Json<InboxToken>, Problem> {
    check_ids(&id, None)?;
    let inbox = &state.inner.inbox;
    if !inbox.subscriber_exists(&id).await? {
        return Err(Problem::not_found(format!("no subscriber with id {id:?}")));
    }
    Ok(Json(InboxToken {
        token: inbox.token(&id),
        subscriber_id: id,
    }))
}
