//! HTTP routes of the decision service (axum + utoipa), under `/api/v1/ratelimit`.

pub mod grpc;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use praxis_http::responses::{BadRequest, Forbidden, Unauthorized};
use praxis_http::{Json, Problem, Require, Scope};

use crate::settings::CHECK_SCOPE;
use crate::workers::decide::{CheckRequest, CheckResponse};
use crate::workers::reload::Reloader;

/// OpenAPI tag of the decision service's routes.
pub const TAG: &str = "ratelimit";

/// Problem slug of a check that could not be decided: the limiter's store is down and the
/// domain fails closed (503).
pub const UNAVAILABLE: &str = "rate-limit-unavailable";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    reloader: Arc<Reloader>,
}

/// Every route with its OpenAPI description.
pub fn router(reloader: Arc<Reloader>) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(config))
        .with_state(AppState { reloader })
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    (router, doc)
}

/// Decide whether a request is over its limits (Envoy's `ShouldRateLimit`, as JSON).
///
/// Each descriptor is matched against the domain's limits (most specific match wins) and
/// counted when under its limit; the answer is `OVER_LIMIT` when any descriptor is. Needs the
/// scope `ratelimit:check` (the admin role implies it).
#[utoipa::path(
    post,
    path = "/api/v1/ratelimit/check",
    tag = TAG,
    request_body = CheckRequest,
    responses(
        (status = 200, description = "The decision, one status per descriptor", body = CheckResponse),
        BadRequest, Unauthorized, Forbidden,
        (status = 503, description = "The limiter's store is down and the domain fails closed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn check(
    State(state): State<AppState>,
    _: Require<Check>,
    Json(req): Json<CheckRequest>,
) -> Result<Json<CheckResponse>, Problem> {
    let errors = req.validate();
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let res = state.reloader.decider().check(&req).await.map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            "Rate limiter unavailable",
            format!("{e}; retry in 1 s"),
        )
        .with_retry_after(1)
    })?;
    Ok(Json(res))
}

/// Checking decisions: `ratelimit:check`.
#[derive(Debug)]
pub struct Check;

impl Scope for Check {
    const NAME: &'static str = CHECK_SCOPE;
}

/// The limits in force: version, when they were loaded, and the last failed reload.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigStatus {
    /// Content hash of the limit files in force (`none` without a limit file).
    #[schema(example = "3f9a1c0e5b7d2a64")]
    pub version: String,
    /// 1 for the limits loaded at start, +1 for each change applied since.
    pub generation: u64,
    /// When the limits in force were loaded (RFC 3339, UTC).
    pub loaded_at: String,
    /// The limit file or folder, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Each domain and how many limits it has.
    pub domains: Vec<DomainSummary>,
    /// The last reload that failed after the limits in force were loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ReloadError>,
}

/// A domain and its number of limits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainSummary {
    /// The domain.
    pub domain: String,
    /// Its nodes with a `rate_limit`.
    pub limits: usize,
}

/// A reload that failed; the previous limits stayed in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadError {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The file, the field and what is wrong.
    pub message: String,
}

/// Show the limits in force and their version. Needs the scope `ratelimit:check`.
#[utoipa::path(
    get,
    path = "/api/v1/ratelimit/config",
    tag = TAG,
    responses(
        (status = 200, description = "The limits in force", body = ConfigStatus),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn config(
    State(state): State<AppState>,
    _: Require<Check>,
) -> Result<Json<ConfigStatus>, Problem> {
    let loaded = state.reloader.loaded();
    let rules = state.reloader.decider().rules();
    Ok(Json(ConfigStatus {
        version: rules.version.clone(),
        generation: loaded.generation,
        loaded_at: rfc3339(loaded.loaded_at_ms),
        source: state.reloader.source().map(|p| p.display().to_string()),
        domains: rules
            .summary
            .iter()
            .map(|(domain, limits)| DomainSummary {
                domain: domain.clone(),
                limits: *limits,
            })
            .collect(),
        last_error: loaded.last_error.map(|(at, message)| ReloadError {
            at: rfc3339(at),
            message,
        }),
    }))
}

/// RFC 3339 text of a unix-ms time (UTC).
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
