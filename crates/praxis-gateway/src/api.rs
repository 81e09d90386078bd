//! The gateway's admin API, served on the API port with the other systems' routes (the proxy
//! itself listens on its own address): `GET /api/v1/gateway/status` (the listener, the file's
//! reloads, every pool's instances and every canary) and `PUT
//! /api/v1/gateway/pools/{pool}/weights/{addr}` (an instance's weight at runtime). Both need
//! the admin role.

use axum::extract::State;
use praxis_http::access::Admin;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Require};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{Gateway, GatewayError, InstanceStatus};

/// The OpenAPI tag of these routes.
pub const TAG: &str = "gateway";

/// What the handlers share: the running gateway, if it listens.
#[derive(Debug, Clone)]
pub struct ApiState {
    gateway: Option<Gateway>,
}

/// A pool and its instances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolView {
    /// Its name in the gateway file.
    pub name: String,
    /// Its algorithm.
    pub algorithm: String,
    /// Requests in flight to it.
    pub in_flight: u32,
    /// Its instances.
    pub instances: Vec<InstanceStatus>,
}

/// A route's canary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CanaryView {
    /// The route's name.
    pub route: String,
    /// The canary's pool.
    pub pool: String,
    /// Whether it has been rolled back.
    pub rolled_back: bool,
}

/// The gateway's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// Where the proxy listens; `null` when no gateway file is set.
    pub listening: Option<String>,
    /// Versions of the gateway file applied since the start.
    pub applied: u64,
    /// Why the last changed version of the file did not load, until one loads.
    pub last_error: Option<String>,
    /// The pools.
    pub pools: Vec<PoolView>,
    /// The canaries.
    pub canaries: Vec<CanaryView>,
}

/// A new weight.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightRequest {
    /// The weight (0 takes the instance out of a weighted rotation).
    pub weight: u32,
}

fn not_running() -> Problem {
    Problem::new(
        axum::http::StatusCode::CONFLICT,
        "gateway-not-running",
        "Gateway not running",
        "the gateway does not listen: set [gateway] routes to a gateway file",
    )
}

impl From<GatewayError> for Problem {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::UnknownPool(_) | GatewayError::UnknownInstance { .. } => {
                Problem::not_found(e.to_string())
            }
            GatewayError::Config(_) => Problem::invalid("weight", e.to_string()),
            GatewayError::Listen { .. } => Problem::internal(e),
        }
    }
}

/// The gateway's state: its listener, reloads, pools and canaries (admin).
#[utoipa::path(
    get,
    path = "/api/v1/gateway/status",
    tag = TAG,
    responses(
        (status = 200, description = "The gateway's state", body = StatusView),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn status(State(state): State<ApiState>, _admin: Require<Admin>) -> Json<StatusView> {
    let Some(gw) = &state.gateway else {
        return Json(StatusView {
            listening: None,
            applied: 0,
            last_error: None,
            pools: Vec::new(),
            canaries: Vec::new(),
        });
    };
    let watched = gw.watch_state();
    Json(StatusView {
        listening: Some(gw.local_addr().to_string()),
        applied: watched.applied,
        last_error: watched.last_error,
        pools: gw.pools(),
        canaries: gw.canaries(),
    })
}

/// Sets an instance's weight until a reload changes the pool's instances (admin).
#[utoipa::path(
    put,
    path = "/api/v1/gateway/pools/{pool}/weights/{addr}",
    tag = TAG,
    params(
        ("pool" = String, Path, description = "The pool"),
        ("addr" = String, Path, description = "The instance's host:port"),
    ),
    request_body = WeightRequest,
    responses(
        (status = 200, description = "The instance with its new weight", body = InstanceStatus),
        (status = 400, description = "The body is not {\"weight\": N}", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pool or instance", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The gateway does not listen", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn set_weight(
    State(state): State<ApiState>,
    _admin: Require<Admin>,
    Path((pool, addr)): Path<(String, String)>,
    Json(req): Json<WeightRequest>,
) -> Result<Json<InstanceStatus>, Problem> {
    let gw = state.gateway.as_ref().ok_or_else(not_running)?;
    gw.set_weight(&pool, &addr, req.weight)?;
    let status = gw.pool_status(&pool)?;
    status
        .into_iter()
        .find(|s| s.addr == addr)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("pool {pool} has no instance {addr}")))
}

/// The routes and their description, for `gateway` (`None`: not listening).
pub fn router(gateway: Option<Gateway>) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(set_weight))
        .with_state(ApiState { gateway })
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    (router, doc)
}
