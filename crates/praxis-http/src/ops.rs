//! Operational routes: `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use praxis_infra::{DependencyStatus, Platform};
use serde::Serialize;

use crate::extract::Json;

/// Media type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Body of `/healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `"ok"`.
    pub status: &'static str,
}

/// Body of `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `"ready"` when every dependency is up, else `"unavailable"`.
    pub status: &'static str,
    /// Each dependency checked.
    pub dependencies: Vec<Dependency>,
}

/// One dependency in `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Dependency {
    /// `db`, `redis`, `nats` or `blobs`.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Backend kind when up, the error when down.
    pub detail: String,
}

impl From<DependencyStatus> for Dependency {
    fn from(d: DependencyStatus) -> Self {
        Self {
            name: d.name,
            ok: d.ok,
            detail: d.detail,
        }
    }
}

/// The process is alive (it answers); says nothing about dependencies.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when every dependency answers; 503 listing them otherwise.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "every dependency is up", body = Readiness),
    (status = 503, description = "a dependency is down", body = Readiness)))]
pub(crate) async fn readyz(State(platform): State<Platform>) -> Response {
    let dependencies: Vec<Dependency> = platform
        .readiness()
        .await
        .into_iter()
        .map(Dependency::from)
        .collect();
    for d in &dependencies {
        crate::metrics::record_dependency(&d.name, d.ok);
    }
    let ready = dependencies.iter().all(|d| d.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        dependencies,
    };
    (status, Json(body)).into_response()
}

/// State of `/metrics`.
#[derive(Clone)]
pub(crate) struct MetricsState {
    pub handle: PrometheusHandle,
    pub platform: Platform,
}

/// Prometheus text exposition; refreshes the database pool gauge first.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<MetricsState>) -> Response {
    let pool = state.platform.db.pool();
    crate::metrics::record_pool(pool.size(), pool.num_idle());
    crate::metrics::record_process();
    let mut res = Response::new(Body::from(state.handle.render()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    res
}

/// The assembled OpenAPI document, serialized once at start.
pub(crate) async fn openapi(State(doc): State<Bytes>) -> Response {
    let mut res = Response::new(Body::from(doc));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
