//! The gateway's admin API, served on the API port with the other systems' routes (the proxy
//! itself listens on its own address): `GET /api/v1/gateway/status` (the listener, the file's
//! reloads, every pool's instances, every canary's and every blue/green route's rollout
//! state), `PUT /api/v1/gateway/pools/{pool}/weights/{addr}` (an instance's weight at runtime)
//! and `POST /api/v1/gateway/routes/{route}/switch` (a blue/green switch). All need the admin
//! role.

use axum::extract::State;
use axum::http::StatusCode;
use praxis_http::access::Admin;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Require};
use praxis_kit::canary::Summary;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Side;
use crate::proxy::verdict::VerdictRecord;
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
#[schema(as = GatewayPool)]
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

/// Responses a verdict was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[schema(as = GatewayResponses)]
pub struct ResponsesView {
    /// How many.
    pub requests: u64,
    /// Their share of 5xx (0 to 1).
    pub error_rate: f64,
    /// Their p99 latency to the response head, in milliseconds.
    pub p99_ms: f64,
}

impl From<Summary> for ResponsesView {
    fn from(s: Summary) -> Self {
        Self {
            requests: s.requests as u64,
            error_rate: s.error_rate,
            p99_ms: s.p99_ms,
        }
    }
}

/// A rollout verdict with the numbers it was taken on.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = GatewayVerdict)]
pub struct VerdictView {
    /// `step`, `promote` or `rollback` (canaries); `switch_confirmed` or `switch_back`
    /// (blue/green).
    pub verdict: String,
    /// `healthy`, `error_rate` or `latency`.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The judged side's responses: the canary's (its window's or its check's), or the new
    /// side's since the switch.
    pub candidate: ResponsesView,
    /// What they were compared with: the baseline's, or the old side's before the switch.
    pub baseline: ResponsesView,
}

impl From<VerdictRecord> for VerdictView {
    fn from(v: VerdictRecord) -> Self {
        Self {
            verdict: v.verdict.to_owned(),
            reason: v.reason.to_owned(),
            at: v.at,
            candidate: v.candidate.into(),
            baseline: v.baseline.into(),
        }
    }
}

/// A route's canary.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = GatewayCanary)]
pub struct CanaryView {
    /// The route's name.
    pub route: String,
    /// The canary's pool.
    pub pool: String,
    /// Whether it has been rolled back.
    pub rolled_back: bool,
    /// `running`, `rolled_back` (every request to the route's pool) or `promoted` (every
    /// request to the canary's pool), until the file changes the canary.
    pub state: String,
    /// The share of the route's requests it gets now, in percent (0 rolled back, 100
    /// promoted).
    pub percent: f64,
    /// The current step, from 0 (automatic promotion only).
    pub step: Option<u32>,
    /// The steps' shares, in percent (empty without automatic promotion).
    pub steps: Vec<f64>,
    /// Healthy checks passed at the current step (automatic promotion only).
    pub checks_passed: Option<u32>,
    /// Healthy checks each step needs (automatic promotion only).
    pub promote_after: Option<u32>,
    /// The last verdict.
    pub last_verdict: Option<VerdictView>,
}

/// The check that follows a blue/green switch.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = GatewaySwitchCheck)]
pub struct SwitchCheckView {
    /// The side switched from.
    pub from: Side,
    /// The side switched to (active).
    pub to: Side,
    /// `admin` (the API) or `file`.
    pub trigger: String,
    /// When the switch was made (RFC 3339, UTC).
    pub started_at: String,
    /// The new side's responses so far.
    pub candidate: ResponsesView,
    /// The old side's over the window before the switch.
    pub baseline: ResponsesView,
}

/// A blue/green route.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = GatewayBlueGreen)]
pub struct BlueGreenView {
    /// The route's name.
    pub route: String,
    /// The blue side's pool.
    pub blue: String,
    /// The green side's pool.
    pub green: String,
    /// The side new requests go to.
    pub active: Side,
    /// Its pool.
    pub active_pool: String,
    /// The side the gateway file names.
    pub file_active: Side,
    /// The running check of the last switch, if it has no verdict yet.
    pub check: Option<SwitchCheckView>,
    /// Switches since the route's blue/green settings were loaded, switches back included.
    pub switches: u64,
    /// The last check's verdict.
    pub last_verdict: Option<VerdictView>,
}

/// The gateway's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = GatewayStatus)]
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
    /// The blue/green routes.
    pub blue_green: Vec<BlueGreenView>,
}

/// A new weight.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GatewayWeightRequest)]
pub struct WeightRequest {
    /// The weight (0 takes the instance out of a weighted rotation).
    pub weight: u32,
}

/// A blue/green switch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GatewaySwitchRequest)]
pub struct SwitchRequest {
    /// The side to send new requests to (the other one than the active: naming it keeps a
    /// repeated request from switching back).
    pub to: Side,
}

fn not_running() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "gateway-not-running",
        "Gateway not running",
        "the gateway does not listen: set [gateway] routes to a gateway file",
    )
}

impl From<GatewayError> for Problem {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::UnknownPool(_)
            | GatewayError::UnknownInstance { .. }
            | GatewayError::UnknownRoute(_) => Problem::not_found(e.to_string()),
            GatewayError::NotBlueGreen(_) => Problem::conflict("not-blue-green", e.to_string()),
            GatewayError::AlreadyActive { .. } => {
                let detail = e.to_string();
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable",
                    "Unprocessable request",
                    detail.clone(),
                )
                .with_field("to", detail)
            }
            GatewayError::Config(_) => Problem::invalid("weight", e.to_string()),
            GatewayError::Listen { .. } => Problem::internal(e),
        }
    }
}

/// The gateway's state: its listener, reloads, pools, canaries and blue/green routes (admin).
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
            blue_green: Vec::new(),
        });
    };
    let watched = gw.watch_state();
    Json(StatusView {
        listening: Some(gw.local_addr().to_string()),
        applied: watched.applied,
        last_error: watched.last_error,
        pools: gw.pools(),
        canaries: gw.canaries(),
        blue_green: gw.blue_greens(),
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

/// Switches a blue/green route's new requests to the side named (admin). Requests in flight
/// finish on the side they started on; the new side is then checked against what the old one
/// did over the window before the switch, and switched back automatically if it does worse.
/// The route is its `name` in the gateway file (host + path prefix when unnamed, percent-encoded).
#[utoipa::path(
    post,
    path = "/api/v1/gateway/routes/{route}/switch",
    tag = TAG,
    params(("route" = String, Path, description = "The route's name")),
    request_body = SwitchRequest,
    responses(
        (status = 200, description = "Switched: the route with its new active side and the check under way", body = BlueGreenView),
        (status = 400, description = "The body is not {\"to\": \"blue\" | \"green\"}", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such route", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The route is not blue/green, or the gateway does not listen", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "That side is already active", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn switch(
    State(state): State<ApiState>,
    _admin: Require<Admin>,
    Path(route): Path<String>,
    Json(req): Json<SwitchRequest>,
) -> Result<Json<BlueGreenView>, Problem> {
    let gw = state.gateway.as_ref().ok_or_else(not_running)?;
    Ok(Json(gw.switch(&route, req.to).await?))
}

/// The routes and their description, for `gateway` (`None`: not listening).
pub fn router(gateway: Option<Gateway>) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(set_weight))
        .routes(routes!(switch))
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

#[cfg(test)]
mod tests {
    /// Every schema the routes refer to is in the document, under a `Gateway` name (the app
    /// merges every system's document, where another system's `StatusView` would collide).
    #[test]
    fn every_referenced_schema_is_defined_and_named_for_the_gateway() {
        let (_, doc) = super::router(None);
        let json = serde_json::to_value(&doc).expect("the document serializes");
        let text = json.to_string();
        let schemas = json["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut refs: Vec<&str> = text
            .split("\"$ref\":\"#/components/schemas/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        assert!(refs.contains(&"GatewayBlueGreen"), "{refs:?}");
        assert!(refs.contains(&"GatewaySwitchRequest"), "{refs:?}");
        for name in refs {
            assert!(
                schemas.contains_key(name),
                "{name} is referred to but not defined"
            );
        }
        for name in schemas.keys() {
            assert!(
                name.starts_with("Gateway") || name == "Problem" || name == "FieldError",
                "schema {name} is not named for the gateway"
            );
        }
        assert!(
            json["paths"]["/api/v1/gateway/routes/{route}/switch"]["post"].is_object(),
            "the switch route is described"
        );
    }
}
