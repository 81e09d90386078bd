//! Timelines: home (the caller's followees and the caller), a user's posts, and the live
//! stream of the home timeline.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;

use praxis_http::Require;
use praxis_http::responses::Unauthorized;
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::FeedRead;
use super::dto::{LIMIT_DEFAULT, LIMIT_MAX, PageParams, PostView};
use super::{AppState, POSTS_CHANNEL, TAG};
use crate::domain::model::{Post, valid_user_id};
use crate::store::Relations;
use crate::workers::home::PageQuery;

/// Header naming where a home page came from (`store` or `database`).
pub const SOURCE_HEADER: &str = "x-feed-source";
/// Idle streams get a comment this often.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A stream reloads the caller's relations this often.
const RELATIONS_EVERY: Duration = Duration::from_secs(5);

fn page_query(p: &PageParams) -> Result<PageQuery, Problem> {
    let limit = match p.limit {
        None => LIMIT_DEFAULT,
        Some(n) if (1..=LIMIT_MAX).contains(&n) => n,
        Some(n) => {
            let mut problem = Problem::validation(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {LIMIT_MAX}, got {n}"),
            )]);
            problem.detail = "invalid query parameter limit".into();
            return Err(problem);
        }
    };
    for (name, v) in [
        ("max_id", p.max_id),
        ("since_id", p.since_id),
        ("min_id", p.min_id),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(Problem::invalid(name, "must be a post id (0 or more)"));
        }
    }
    Ok(PageQuery {
        max_id: p.max_id,
        since_id: p.since_id,
        min_id: p.min_id,
        limit,
    })
}

/// The page as JSON with its `Link` header: `next` (older: `max_id` = the last id) and
/// `prev` (newer: `min_id` = the first id), like Mastodon's.
fn page_response(path: &str, limit: u32, posts: &[Post]) -> Response {
    let views: Vec<PostView> = posts.iter().map(PostView::from).collect();
    let mut res = (StatusCode::OK, Json(views)).into_response();
    if let (Some(first), Some(last)) = (posts.first(), posts.last()) {
        let link = format!(
            "<{path}?max_id={}&limit={limit}>; rel=\"next\", <{path}?min_id={}&limit={limit}>; rel=\"prev\"",
            last.id, first.id
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    res
}

/// The caller's home timeline.
///
/// Posts of the caller and of the users they follow, newest first. Paging: `max_id` (older
/// than), `since_id` (newer than, the newest first), `min_id` (newer than, the page right
/// after it), `limit` (1 to 40, default 20); the `Link` header carries the `next` (older) and
/// `prev` (newer) pages. Stable under concurrent posting: following `next` links never shows a
/// post twice nor skips one. Deleted posts, unfollowed, blocked and muted authors are filtered
/// when read. `x-feed-source` says whether the timeline store or the database answered.
#[utoipa::path(
    get,
    path = "/api/v1/feed/timelines/home",
    tag = TAG,
    params(PageParams),
    responses(
        (status = 200, description = "A page of posts, newest first", body = [PostView]),
        (status = 400, description = "Bad paging parameter (named)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn home(
    State(state): State<AppState>,
    who: Require<FeedRead>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    let viewer = who.subject();
    let q = page_query(&params)?;
    let (posts, source) = state.inner.reader.home(viewer, q).await?;
    let mut res = page_response("/api/v1/feed/timelines/home", q.limit, &posts);
    res.headers_mut()
        .insert(SOURCE_HEADER, HeaderValue::from_static(source.as_str()));
    Ok(res)
}

/// A user's home timeline, for that user or the admin (support tools, load tests).
///
/// The same page as `GET /timelines/home` answers that user (and it counts as that user's
/// activity: fan-out reaches them from now on). Anyone else: 403.
#[utoipa::path(
    get,
    path = "/api/v1/feed/users/{user}/home",
    tag = TAG,
    params(("user" = String, Path, description = "Whose home timeline", pattern = "^[!-.0-~]{1,128}$"), PageParams),
    responses(
        (status = 200, description = "A page of posts, newest first", body = [PostView]),
        (status = 400, description = "Bad paging parameter or user id (named)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither that user nor the admin", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn user_home(
    State(state): State<AppState>,
    who: Require<FeedRead>,
    Path(user): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    if !valid_user_id(&user) {
        return Err(Problem::invalid(
            "user",
            "must be 1 to 128 visible ASCII characters",
        ));
    }
    if !who.owns(&user) {
        return Err(Problem::forbidden(
            "only that user or the admin may read a user's home timeline; use GET /api/v1/feed/timelines/home for your own",
        ));
    }
    let q = page_query(&params)?;
    let (posts, source) = state.inner.reader.home(&user, q).await?;
    let mut res = page_response(&format!("/api/v1/feed/users/{user}/home"), q.limit, &posts);
    res.headers_mut()
        .insert(SOURCE_HEADER, HeaderValue::from_static(source.as_str()));
    Ok(res)
}

/// A user's posts, newest first (same paging as the home timeline). Empty when either blocks
/// the other.
#[utoipa::path(
    get,
    path = "/api/v1/feed/users/{user}/posts",
    tag = TAG,
    params(("user" = String, Path, description = "Author", pattern = "^[!-.0-~]{1,128}$"), PageParams),
    responses(
        (status = 200, description = "A page of posts, newest first", body = [PostView]),
        (status = 400, description = "Bad paging parameter or user id (named)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn user_posts(
    State(state): State<AppState>,
    who: Require<FeedRead>,
    Path(user): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, Problem> {
    let viewer = who.subject();
    if !valid_user_id(&user) {
        return Err(Problem::invalid(
            "user",
            "must be 1 to 128 visible ASCII characters",
        ));
    }
    let q = page_query(&params)?;
    let posts = state.inner.reader.user(viewer, &user, q).await?;
    Ok(page_response(
        &format!("/api/v1/feed/users/{user}/posts"),
        q.limit,
        &posts,
    ))
}

struct Stream {
    state: AppState,
    viewer: String,
    rx: broadcast::Receiver<bytes::Bytes>,
    relations: Relations,
    loaded: tokio::time::Instant,
}

impl Stream {
    async fn next(&mut self) -> Option<Post> {
        loop {
            let received = tokio::select! {
                () = self.state.inner.shutdown.cancelled() => return None,
                r = self.rx.recv() => r,
            };
            let post = match received {
                Ok(bytes) => match serde_json::from_slice::<Post>(&bytes) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "undecodable feed stream message");
                        continue;
                    }
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(
                        missed,
                        "feed stream lagged; the timeline has the missed posts"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if self.loaded.elapsed() >= RELATIONS_EVERY {
                match self.state.inner.store.relations(&self.viewer).await {
                    Ok(r) => self.relations = r,
                    Err(e) => tracing::warn!(error = %e, "feed stream relations not refreshed"),
                }
                self.loaded = tokio::time::Instant::now();
            }
            if self.relations.shows(&self.viewer, &post.author) {
                return Some(post);
            }
        }
    }
}

/// Live stream of the home timeline (Server-Sent Events).
///
/// Each new post of the caller or a followee is one `post` event: `id` is the post id, `data`
/// the post as JSON. Posts created in any process reach the streams of every process
/// (through the platform broadcaster, at most once: a missed post is in the timeline). Blocks
/// and mutes apply; the caller's relations are reloaded every few seconds. A comment is sent
/// every 15 s when idle.
#[utoipa::path(
    get,
    path = "/api/v1/feed/timelines/home/stream",
    tag = TAG,
    responses(
        (status = 200, description = "An event stream of new posts", body = String, content_type = "text/event-stream"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    who: Require<FeedRead>,
) -> Result<Response, Problem> {
    let viewer = who.subject().to_owned();
    // Subscribe before reading the relations, so nothing falls between.
    let rx = state.inner.broadcaster.subscribe(POSTS_CHANNEL);
    let relations = state.inner.store.relations(&viewer).await?;
    let stream = Stream {
        state: state.clone(),
        viewer,
        rx,
        relations,
        loaded: tokio::time::Instant::now(),
    };
    let events = futures::stream::unfold(stream, |mut s| async move {
        let post = s.next().await?;
        let view = PostView::from(&post);
        let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
        let event = Event::default().event("post").id(view.id).data(data);
        Some((Ok::<_, Infallible>(event), s))
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"));
    Ok((
        StatusCode::OK,
        [("cache-control", "no-cache"), ("x-accel-buffering", "no")],
        sse,
    )
        .into_response())
}
