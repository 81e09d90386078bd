//! The shards, for the admin: status, moves (a dry run, or the real thing), abort, and the
//! placement check. `praxis shards` calls these routes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use praxis_http::access::Admin;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query, Require};
use praxis_kit::ring::ShardSpec;

use super::dto::{AbortParams, MoveRequest};
use super::{AppState, SHARDS_TAG};
use crate::admin::{MovePlan, MoveView, PlacementCheck, RegionStatus, RingChange};

/// Every region: its ring's version, its shards with their share and orders, and the move in
/// progress with its progress, rate and ETA.
#[utoipa::path(
    get,
    path = "/api/v1/orders/shards",
    tag = SHARDS_TAG,
    responses(
        (status = 200, description = "Every region", body = Vec<RegionStatus>),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn status(
    State(state): State<AppState>,
    _admin: Require<Admin>,
) -> Result<Json<Vec<RegionStatus>>, Problem> {
    Ok(Json(state.admin.status().await?))
}

fn change_of(req: MoveRequest, vnodes: u32) -> Result<RingChange, Problem> {
    match (req.add, req.target) {
        (Some(shard), None) => {
            let vnodes = req.vnodes.unwrap_or(vnodes);
            if !(1..=praxis_kit::ring::MAX_VNODES).contains(&vnodes) {
                return Err(Problem::invalid("vnodes", "must be from 1 to 4096"));
            }
            Ok(RingChange::Add { shard, vnodes })
        }
        (None, Some(target)) => Ok(RingChange::Target(
            target
                .into_iter()
                .map(|s| ShardSpec {
                    name: s.name,
                    vnodes: s.vnodes,
                })
                .collect(),
        )),
        _ => Err(crate::error::unprocessable(
            "add",
            "give either add (a shard to add) or target (the whole ring), not both",
        )),
    }
}

/// Move a region to a new ring: `add` a shard, or give the `target` ring. With `dry_run`,
/// only say what would move. Otherwise the move begins (copy, tail, fence, verify, switch,
/// clean up) and runs in the background: 202 with its id; follow it with `GET
/// .../moves/{id}`.
#[utoipa::path(
    post,
    path = "/api/v1/orders/shards/{region}/moves",
    tag = SHARDS_TAG,
    params(("region" = String, Path, description = "The region")),
    request_body = MoveRequest,
    responses(
        (status = 200, description = "The dry run: what would move", body = MovePlan),
        (status = 202, description = "The move, begun", body = MoveView),
        (status = 400, description = "Bad shard name or vnodes", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such region", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A move of the region is in progress, the shard exists, or nothing would move", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Both or neither of add and target, or a target that is no ring (a shard twice)", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn start_move(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(region): Path<String>,
    Json(req): Json<MoveRequest>,
) -> Result<Response, Problem> {
    let dry_run = req.dry_run;
    let change = change_of(req, state.admin.vnodes())?;
    if dry_run {
        let plan = state.admin.plan(&region, &change).await?;
        return Ok((StatusCode::OK, Json(plan)).into_response());
    }
    let begun = state.admin.begin(&region, &change, "admin route").await?;
    Ok((StatusCode::ACCEPTED, Json(begun)).into_response())
}

/// A move: its phase, documents copied, rate and ETA.
#[utoipa::path(
    get,
    path = "/api/v1/orders/shards/{region}/moves/{id}",
    tag = SHARDS_TAG,
    params(
        ("region" = String, Path, description = "The region"),
        ("id" = String, Path, description = "The move"),
    ),
    responses(
        (status = 200, description = "The move", body = MoveView),
        (status = 404, description = "No such move in the region", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_move(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path((region, id)): Path<(String, String)>,
) -> Result<Json<MoveView>, Problem> {
    Ok(Json(state.admin.move_status(&region, &id).await?))
}

/// Abort a move before its switch: what it copied is deleted and its fences lifted, so the
/// data is exactly as before. Waits for the process driving it to undo it.
#[utoipa::path(
    post,
    path = "/api/v1/orders/shards/{region}/moves/{id}/abort",
    tag = SHARDS_TAG,
    params(
        ("region" = String, Path, description = "The region"),
        ("id" = String, Path, description = "The move"),
        AbortParams,
    ),
    responses(
        (status = 200, description = "The move, aborted", body = MoveView),
        (status = 400, description = "Bad wait_ms", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such move in the region", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The move switched already, or its driver did not undo it in time", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn abort_move(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path((region, id)): Path<(String, String)>,
    Query(q): Query<AbortParams>,
) -> Result<Json<MoveView>, Problem> {
    let wait = match q.wait_ms {
        Some(ms) if ms <= 60_000 => Duration::from_millis(ms),
        Some(_) => return Err(Problem::invalid("wait_ms", "must be from 0 to 60000")),
        None => Duration::from_secs(10),
    };
    Ok(Json(state.admin.abort(&region, &id, wait).await?))
}

/// Check that every document of a region is on the shard its ring names.
#[utoipa::path(
    post,
    path = "/api/v1/orders/shards/{region}/verify",
    tag = SHARDS_TAG,
    params(("region" = String, Path, description = "The region")),
    responses(
        (status = 200, description = "Per shard: documents, and those the ring places elsewhere", body = PlacementCheck),
        (status = 404, description = "No such region", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    Path(region): Path<String>,
) -> Result<Json<PlacementCheck>, Problem> {
    Ok(Json(state.admin.verify(&region).await?))
}
