//! Topics: named lists of subscribers; a send `to: {"topic": key}` reaches every subscriber
//! of the topic as it is when the message is expanded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use praxis_http::Require;
use praxis_http::pagination::{Page, PageParams, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::{NotifyRead, NotifyWrite};
use super::{AppState, TAG};
use crate::domain::address;
use crate::domain::model::{TopicRecord, now_ms, rfc3339};
use crate::workers::accept::topic_key;

/// Default page size of a topic's subscribers.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size of a topic's subscribers.
const MAX_LIMIT: u32 = 1_000;
/// Most subscribers added per request.
const MAX_ADD: usize = 1_000;
/// Longest display name.
const MAX_NAME: usize = 256;

/// Body of `PUT /topics/{key}` (may be empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTopic {
    /// Display name, 1 to 256 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub name: Option<String>,
}

/// Body of `POST /topics/{key}/subscribers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSubscribers {
    /// Subscriber ids (1 to 1000, each existing).
    #[schema(value_type = Vec<super::dto::SubscriberId>, min_items = 1, max_items = 1000)]
    pub subscribers: Vec<String>,
}

/// Answer of `POST /topics/{key}/subscribers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Added {
    /// How many were not in the topic before.
    pub added: u64,
}

/// A topic with a page of its subscribers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicView {
    /// Key.
    pub key: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// How many subscribers it has.
    pub subscriber_count: i64,
    /// Subscriber ids in order (a page).
    pub subscribers: Vec<String>,
    /// Cursor of the next page of subscribers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn not_found(key: &str) -> Problem {
    Problem::not_found(format!("no topic with key {key:?}"))
}

/// Create a topic (idempotent; a `name` given renames an existing one).
#[utoipa::path(
    put,
    path = "/api/v1/notify/topics/{key}",
    tag = TAG,
    params(("key" = String, Path, description = "Topic key: 1 to 128 of A-Z a-z 0-9 _ - . :", pattern = "^[A-Za-z0-9_.:-]{1,128}$")),
    request_body(content = Option<PutTopic>, description = "Optional: an empty body keeps the name"),
    responses(
        (status = 201, description = "Created", body = TopicView),
        (status = 200, description = "Existed", body = TopicView),
        (status = 400, description = "Bad key or name", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn put_topic(
    State(state): State<AppState>,
    who: Require<NotifyWrite>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<TopicView>), Problem> {
    let owner = who.subject();
    let mut errors = Vec::new();
    if let Err(m) = topic_key(&key) {
        errors.push(FieldError::new("key", m));
    }
    // No body, or `null`: the name stays.
    let req: Option<PutTopic> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        praxis_http::extract::json_from_slice(&body)?
    };
    let req = req.unwrap_or_default();
    if let Some(n) = &req.name
        && (n.is_empty() || n.chars().count() > MAX_NAME)
    {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let created = state
        .inner
        .store
        .upsert_topic(&TopicRecord {
            key: key.clone(),
            name: req.name,
            created_by: owner.to_owned(),
            created_at: now_ms(),
        })
        .await?;
    let view = view(&state, &key, None, DEFAULT_LIMIT).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

async fn view(
    state: &AppState,
    key: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<TopicView, Problem> {
    let store = &state.inner.store;
    let topic = store.topic(key).await?.ok_or_else(|| not_found(key))?;
    let ids = store.topic_subscribers(key, after, limit + 1).await?;
    let page = Page::from_overfetch(ids, limit, Clone::clone);
    Ok(TopicView {
        key: topic.key,
        name: topic.name,
        created_at: rfc3339(topic.created_at),
        subscriber_count: store.topic_size(key).await?,
        subscribers: page.items,
        next_cursor: page.next_cursor,
    })
}

/// A topic and a page of its subscribers.
#[utoipa::path(
    get,
    path = "/api/v1/notify/topics/{key}",
    tag = TAG,
    params(("key" = String, Path, description = "Topic key"), ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `next_cursor`; absent for the first page"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 100); outside that range is 400")),
    responses(
        (status = 200, description = "The topic", body = TopicView),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_topic(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Path(key): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<TopicView>, Problem> {
    if topic_key(&key).is_err() {
        return Err(not_found(&key));
    }
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after: Option<String> = cursor_param(params.cursor.as_deref())?;
    Ok(Json(view(&state, &key, after.as_deref(), limit).await?))
}

/// Add subscribers to a topic (those already in it stay; unknown ids are a 404 naming them).
#[utoipa::path(
    post,
    path = "/api/v1/notify/topics/{key}/subscribers",
    tag = TAG,
    params(("key" = String, Path, description = "Topic key")),
    request_body = AddSubscribers,
    responses(
        (status = 200, description = "Added", body = Added),
        (status = 400, description = "Malformed subscriber ids; `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic, or no subscriber with some of the ids (named)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn add_subscribers(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path(key): Path<String>,
    Json(req): Json<AddSubscribers>,
) -> Result<Json<Added>, Problem> {
    let store = &state.inner.store;
    if topic_key(&key).is_err() || store.topic(&key).await?.is_none() {
        return Err(not_found(&key));
    }
    if req.subscribers.is_empty() || req.subscribers.len() > MAX_ADD {
        return Err(Problem::invalid(
            "subscribers",
            format!("must list 1 to {MAX_ADD} subscriber ids"),
        ));
    }
    let mut errors = Vec::new();
    for (i, id) in req.subscribers.iter().enumerate() {
        if let Err(m) = address::subscriber_id(id) {
            errors.push(FieldError::new(format!("subscribers[{i}]"), m));
        }
    }
    if errors.is_empty() {
        let known: std::collections::HashSet<String> = store
            .subscribers(&req.subscribers)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        // Ids of subscribers that do not exist: a 404 naming them (the request is well formed).
        let unknown: Vec<String> = req
            .subscribers
            .iter()
            .enumerate()
            .filter(|(_, id)| !known.contains(*id))
            .take(20)
            .map(|(i, id)| format!("subscribers[{i}] {id:?}"))
            .collect();
        if !unknown.is_empty() {
            return Err(Problem::not_found(format!(
                "no subscriber with these ids: {}",
                unknown.join(", ")
            )));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let added = store
        .add_topic_subscribers(&key, &req.subscribers, now_ms())
        .await?;
    Ok(Json(Added { added }))
}

/// Remove a subscriber from a topic.
#[utoipa::path(
    delete,
    path = "/api/v1/notify/topics/{key}/subscribers/{id}",
    tag = TAG,
    params(("key" = String, Path, description = "Topic key"), ("id" = String, Path, description = "Subscriber id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such topic, or the subscriber is not in it", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn remove_subscriber(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path((key, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    if state.inner.store.remove_topic_subscriber(&key, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!(
            "subscriber {id:?} is not in topic {key:?}"
        )))
    }
}
