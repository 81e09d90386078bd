//! Posts: create, read, edit, delete. Edits and deletes drop the post from every process's
//! post cache before they answer (other processes: when the broadcast arrives).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use praxis_http::Require;
use praxis_http::idempotency::{run_idempotent, to_json};
use praxis_http::responses::{Forbidden, Unauthorized, Unprocessable};
use praxis_http::{FieldError, Json, Path, Problem};

use super::auth::{FeedRead, FeedWrite};
use super::dto::{CreatePost, EditPost, MEDIA_MAX, MEDIA_REF_MAX, PostView, TEXT_MAX};
use super::{AppState, POSTS_CHANNEL, TAG};
use crate::domain::model::{Post, now_ms};
use crate::error::FeedError;

/// Create a post.
///
/// The post and its `feed.posted` event are stored in one transaction; the fan-out writes it
/// into the active followers' timelines shortly after (`push`), or followers merge it when
/// they read (`pull`, when the author has at least `celebrity_threshold` followers). Supports
/// `Idempotency-Key`: a retry answers the first post.
#[utoipa::path(
    post,
    path = "/api/v1/feed/posts",
    tag = TAG,
    request_body = CreatePost,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried create", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created", body = PostView),
        (status = 400, description = "Invalid body; `errors` names each field (text, media, media[i], reply_to)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No post with the id of `reply_to`", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn create_post(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    headers: HeaderMap,
    Json(req): Json<CreatePost>,
) -> Result<Response, Problem> {
    let author = who.subject().to_owned();
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let scope = format!("feed:{author}:POST /api/v1/feed/posts");
    run_idempotent(
        &state.inner.idempotency,
        &headers,
        &scope,
        "POST /api/v1/feed/posts",
        &body,
        || async {
            let post = create(&state, &author, &req).await?;
            Ok((StatusCode::CREATED, to_json(&PostView::from(&post))?))
        },
    )
    .await
}

async fn create(state: &AppState, author: &str, req: &CreatePost) -> Result<Post, FeedError> {
    let mut errors = Vec::new();
    let chars = req.text.chars().count();
    if req.text.trim().is_empty() || chars > TEXT_MAX {
        errors.push(FieldError::new(
            "text",
            format!("must be 1 to {TEXT_MAX} characters (not only spaces), got {chars}"),
        ));
    }
    if let Some(media) = &req.media {
        if media.len() > MEDIA_MAX {
            errors.push(FieldError::new(
                "media",
                format!("at most {MEDIA_MAX} references, got {}", media.len()),
            ));
        }
        for (i, m) in media.iter().enumerate() {
            if m.is_empty() || m.chars().count() > MEDIA_REF_MAX || m.chars().any(char::is_control)
            {
                errors.push(FieldError::new(
                    format!("media[{i}]"),
                    format!("must be 1 to {MEDIA_REF_MAX} characters without control characters"),
                ));
            }
        }
    }
    let mut reply_to = None;
    if let Some(r) = &req.reply_to {
        // Exactly what the OpenAPI pattern says: digits without a leading zero.
        let digits = !r.is_empty() && !r.starts_with('0') && r.bytes().all(|b| b.is_ascii_digit());
        match r.parse::<i64>() {
            Ok(id) if digits && id > 0 => reply_to = Some(id),
            _ => errors.push(FieldError::new("reply_to", "must be a post id")),
        }
    }
    if !errors.is_empty() {
        return Err(FeedError::Invalid(errors));
    }
    let store = &state.inner.store;
    if let Some(id) = reply_to {
        let target = store.post(id).await?;
        if target.is_none_or(|p| p.deleted_at.is_some()) {
            return Err(FeedError::NotFound(format!(
                "reply_to: no post with id {id}"
            )));
        }
    }
    let media = req
        .media
        .as_ref()
        .filter(|m| !m.is_empty())
        .map(|m| serde_json::json!(m));
    let post = store
        .create_post(
            &state.inner.bus,
            author,
            &req.text,
            media.as_ref(),
            reply_to,
            state.inner.settings.celebrity_threshold,
            now_ms(),
        )
        .await?;
    ::metrics::counter!(crate::workers::metrics::POSTS_TOTAL, "fanout" => post.fanout.as_str())
        .increment(1);
    // Live streams, at most once: a stream that misses it still finds it in the timeline.
    match serde_json::to_vec(&post) {
        Ok(bytes) => {
            if let Err(e) = state
                .inner
                .broadcaster
                .publish(POSTS_CHANNEL, bytes.into())
                .await
            {
                tracing::warn!(post = post.id, error = %e, "post not published to live streams");
            }
        }
        Err(e) => tracing::warn!(error = %e, "post not serialized for live streams"),
    }
    Ok(post)
}

/// Parses a post id from the path; 404 for anything that is not one.
pub(super) fn post_id(raw: &str) -> Result<i64, FeedError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| FeedError::NotFound(format!("no post with id {raw:?}")))
}

/// Read a post.
///
/// 404 when it does not exist, was deleted, or its author and the caller block each other.
#[utoipa::path(
    get,
    path = "/api/v1/feed/posts/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 200, description = "The post", body = PostView),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn get_post(
    State(state): State<AppState>,
    who: Require<FeedRead>,
    Path(raw): Path<String>,
) -> Result<Json<PostView>, Problem> {
    let viewer = who.subject();
    let id = post_id(&raw)?;
    let store = &state.inner.store;
    let post = store
        .post(id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| FeedError::NotFound(format!("no post with id {id}")))?;
    if post.author != viewer && store.blocked_between(viewer, &post.author).await? {
        return Err(Problem::not_found(format!("no post with id {id}")));
    }
    Ok(Json(PostView::from(&post)))
}

/// Delete a post (its author or the admin).
///
/// It disappears from every timeline at once (timelines filter deleted posts when read).
#[utoipa::path(
    delete,
    path = "/api/v1/feed/posts/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn delete_post(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = post_id(&raw)?;
    let store = &state.inner.store;
    let post = store
        .post(id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| FeedError::NotFound(format!("no post with id {id}")))?;
    if !who.owns(&post.author) {
        return Err(Problem::forbidden(
            "only the author or the admin may delete a post",
        ));
    }
    store.delete_post(id, now_ms()).await?;
    post_changed(&state, id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Drops post `id` from the post caches (a failure is logged: the second invalidation and
/// the TTL bound it).
async fn post_changed(state: &AppState, id: i64) {
    if let Err(e) = state.hydrator().invalidate_post(id).await {
        tracing::warn!(post = id, error = %e, "post cache invalidation failed; the cached copy expires within its TTL");
    }
}

/// Edit a post's text (its author or the admin).
///
/// Every timeline shows the new text from the answer on (this process at once; other
/// processes once the cache invalidation reaches them, milliseconds).
#[utoipa::path(
    put,
    path = "/api/v1/feed/posts/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Post id")),
    request_body = EditPost,
    responses(
        (status = 200, description = "The edited post", body = PostView),
        (status = 400, description = "Invalid text (`text`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn edit_post(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(raw): Path<String>,
    Json(req): Json<EditPost>,
) -> Result<Json<PostView>, Problem> {
    let id = post_id(&raw)?;
    let chars = req.text.chars().count();
    if req.text.trim().is_empty() || chars > TEXT_MAX {
        return Err(FeedError::Invalid(vec![FieldError::new(
            "text",
            format!("must be 1 to {TEXT_MAX} characters (not only spaces), got {chars}"),
        )])
        .into());
    }
    let store = &state.inner.store;
    let not_found = || FeedError::NotFound(format!("no post with id {id}"));
    let post = store
        .post(id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(not_found)?;
    if !who.owns(&post.author) {
        return Err(Problem::forbidden(
            "only the author or the admin may edit a post",
        ));
    }
    if !store.edit_post(id, &req.text).await? {
        return Err(not_found().into());
    }
    post_changed(&state, id).await;
    Ok(Json(PostView::from(&Post {
        text: req.text,
        ..post
    })))
}
