//! The caller's relations (follows, blocks, mutes) and the admin bulk import of follows.

use axum::extract::State;

use praxis_http::Require;
use praxis_http::access::Admin;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{FieldError, Json, Path, Problem};

use super::auth::FeedWrite;
use super::dto::{ImportFollows, ImportResult, Relationship};
use super::{AppState, TAG};
use crate::domain::model::{now_ms, valid_user_id};
use crate::error::FeedError;

/// The other user of a relation: a valid id, not the caller (400 naming `user`).
fn other(caller: &str, user: &str) -> Result<(), FeedError> {
    if !valid_user_id(user) {
        return Err(FeedError::field(
            "user",
            "must be 1 to 128 visible ASCII characters",
        ));
    }
    if user == caller {
        return Err(FeedError::field("user", "cannot be yourself"));
    }
    Ok(())
}

/// Drops the cached relations of `users` in every process (a failure is logged: the cache's
/// TTL bounds it).
async fn relations_changed<'a>(state: &AppState, users: impl IntoIterator<Item = &'a str>) {
    if let Err(e) = state.hydrator().invalidate_relations(users).await {
        tracing::warn!(error = %e, "relations cache invalidation failed; cached relations expire within their TTL");
    }
}

fn relationship(user: String, relation: &str, active: bool, changed: bool) -> Json<Relationship> {
    Json(Relationship {
        user,
        relation: relation.to_owned(),
        active,
        changed,
    })
}

/// Follow a user.
///
/// Their recent posts are written into the caller's timeline at once (when it is built); the
/// follower count moves in the same transaction as the follow. 403 when either blocks the
/// other.
#[utoipa::path(
    post,
    path = "/api/v1/feed/follows/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to follow", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Following", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A block between the two", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn follow(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let store = &state.inner.store;
    if store.blocked_between(caller, &user).await? {
        return Err(Problem::forbidden(format!(
            "cannot follow {user}: one of you blocks the other"
        )));
    }
    let changed = store.follow(caller, &user, now_ms()).await?;
    relations_changed(&state, [caller]).await;
    if changed && let Err(e) = state.inner.fanouts.backfill(caller, &user).await {
        tracing::warn!(error = %e, "follow backfill failed; the posts show after the next rebuild or from the database");
    }
    Ok(relationship(user, "follow", true, changed))
}

/// Unfollow a user. Their posts leave the caller's timeline at once (filtered when read).
#[utoipa::path(
    delete,
    path = "/api/v1/feed/follows/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to unfollow", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Not following", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn unfollow(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let changed = state.inner.store.unfollow(caller, &user).await?;
    relations_changed(&state, [caller]).await;
    Ok(relationship(user, "follow", false, changed))
}

/// Block a user: follows both ways end, and neither sees the other's posts.
#[utoipa::path(
    post,
    path = "/api/v1/feed/blocks/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to block", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Blocking", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn block(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let changed = state.inner.store.block(caller, &user, now_ms()).await?;
    relations_changed(&state, [caller, user.as_str()]).await;
    Ok(relationship(user, "block", true, changed))
}

/// Unblock a user (follows are not restored).
#[utoipa::path(
    delete,
    path = "/api/v1/feed/blocks/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to unblock", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Not blocking", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn unblock(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let changed = state.inner.store.unblock(caller, &user).await?;
    relations_changed(&state, [caller, user.as_str()]).await;
    Ok(relationship(user, "block", false, changed))
}

/// Mute a user: their posts leave the caller's home timeline (the follow stays).
#[utoipa::path(
    post,
    path = "/api/v1/feed/mutes/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to mute", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Muting", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn mute(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let changed = state.inner.store.mute(caller, &user, now_ms()).await?;
    relations_changed(&state, [caller]).await;
    Ok(relationship(user, "mute", true, changed))
}

/// Unmute a user.
#[utoipa::path(
    delete,
    path = "/api/v1/feed/mutes/{user}",
    tag = TAG,
    params(("user" = String, Path, description = "User to unmute", pattern = "^[!-.0-~]{1,128}$")),
    responses(
        (status = 200, description = "Not muting", body = Relationship),
        (status = 400, description = "Yourself, or not a user id (`user`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn unmute(
    State(state): State<AppState>,
    who: Require<FeedWrite>,
    Path(user): Path<String>,
) -> Result<Json<Relationship>, Problem> {
    let caller = who.subject();
    other(caller, &user)?;
    let changed = state.inner.store.unmute(caller, &user).await?;
    relations_changed(&state, [caller]).await;
    Ok(relationship(user, "mute", false, changed))
}

/// Import follows in bulk (admin).
///
/// Up to 10,000 `[follower, followee]` pairs per call, for seeding a benchmark graph without
/// sign-ups; existing follows and a user paired with itself are skipped, follower counts move
/// with the new ones. Timelines
/// are not backfilled (they are built from the database on the next read).
#[utoipa::path(
    post,
    path = "/api/v1/feed/admin/follows",
    tag = TAG,
    request_body = ImportFollows,
    responses(
        (status = 200, description = "Imported", body = ImportResult),
        (status = 400, description = "Bad pairs (`follows[i]`) or count (`follows`)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn import_follows(
    State(state): State<AppState>,
    _: Require<Admin>,
    Json(req): Json<ImportFollows>,
) -> Result<Json<ImportResult>, Problem> {
    let max = state.inner.settings.import_max;
    if req.follows.is_empty() || req.follows.len() > max {
        return Err(Problem::invalid(
            "follows",
            format!("must hold 1 to {max} pairs, got {}", req.follows.len()),
        ));
    }
    let mut errors = Vec::new();
    for (i, (a, b)) in req.follows.iter().enumerate() {
        if !valid_user_id(a) || !valid_user_id(b) {
            errors.push(FieldError::new(
                format!("follows[{i}]"),
                "user ids must be 1 to 128 visible ASCII characters",
            ));
        }
        if errors.len() >= 20 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    // A user cannot follow itself: such a pair is skipped, not refused (the OpenAPI schema of
    // the pairs cannot say that the two ids differ).
    let pairs: Vec<(String, String)> = req
        .follows
        .iter()
        .filter(|(a, b)| a != b)
        .cloned()
        .collect();
    let imported = state.inner.store.import_follows(&pairs, now_ms()).await?;
    let followers: std::collections::BTreeSet<&str> =
        pairs.iter().map(|(a, _)| a.as_str()).collect();
    relations_changed(&state, followers).await;
    Ok(Json(ImportResult {
        requested: req.follows.len(),
        imported,
    }))
}
