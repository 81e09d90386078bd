//! The app: every service's routes, the operational routes, and the request stack.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use praxis_infra::Platform;
use utoipa::OpenApi as _;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

pub use crate::metrics::install_metrics_recorder;

use crate::auth::AuthSettings;
use crate::metrics::RedMetrics;
use crate::openapi;
use crate::ops;
use crate::problem::{FieldError, Problem};
use crate::ratelimit::RateLimits;
use crate::service::Service;
use crate::stack::{StackConfig, StackLayer};

/// Settings of the HTTP stack.
#[derive(Clone)]
pub struct HttpOptions {
    /// Largest request body in bytes (413 above it).
    pub body_limit: usize,
    /// Time allowed until the response head (503 `timeout` after it); `Duration::ZERO`
    /// disables the timeout.
    pub request_timeout: Duration,
    /// Emit one access-log event per request (target `"access"`).
    pub access_log: bool,
    /// Serve `/metrics` and record RED metrics; `None` turns both off.
    pub metrics: Option<PrometheusHandle>,
    /// Serve `/metrics` on this app (with `metrics` set); `false` when an admin listener
    /// serves it instead ([`admin_app`]).
    pub metrics_route: bool,
    /// Who may write.
    pub auth: AuthSettings,
    /// Rate-limit policies the request stack checks; `None` (the default) or no policies: nothing
    /// is checked.
    pub rate_limit: Option<RateLimits>,
}

impl Default for HttpOptions {
    /// 1 MiB bodies, 30 s timeout, access log on, metrics off, no admin key.
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            access_log: true,
            metrics: None,
            metrics_route: true,
            auth: AuthSettings::default(),
            rate_limit: None,
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("access_log", &self.access_log)
            .field("metrics", &self.metrics.is_some())
            .field("auth", &self.auth)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(ops::healthz, ops::readyz, ops::metrics),
    components(schemas(Problem, FieldError)),
    tags((name = "ops", description = "Health, readiness and metrics"))
)]
struct OpsApi;

/// The admin listener's routes: `/metrics`, `/healthz` and `/readyz`, with no request stack
/// (no auth, no access log), for a port only the operator's network reaches.
pub fn admin_app(handle: PrometheusHandle, platform: Platform) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .merge(
            Router::new()
                .route("/readyz", get(ops::readyz))
                .with_state(platform.clone()),
        )
        .merge(
            Router::new()
                .route("/metrics", get(ops::metrics))
                .with_state(ops::MetricsState { handle, platform }),
        )
        .fallback(not_found)
}

/// Merges services, adds `/healthz`, `/readyz` (`platform.readiness()`), `/metrics` (when
/// `opts.metrics` is set), `/api/openapi.json` and its page for humans at `/api/docs`, a 404 problem fallback, and wraps every route
/// in the request stack: request id (taken from `x-request-id` or generated, echoed), access
/// log, RED metrics, body limit (413), rate limits (429, when `opts.rate_limit` has policies),
/// timeout (503), panic (500) (a service's streaming routes have neither body limit nor
/// timeout: their handlers bound both); bare error responses such as
/// axum's 405 become problems.
///
/// # Panics
/// When two services register the same route, or their OpenAPI documents clash (a schema name
/// defined differently by two of them, see [`openapi::merge_documents`]): wiring bugs, caught
/// at start.
pub fn app(services: Vec<Service>, platform: Platform, opts: HttpOptions) -> Router {
    let limiter = platform.limiter.clone();
    let mut router = Router::new();
    let mut docs = Vec::with_capacity(services.len() + 1);
    let mut streaming = Vec::new();
    for s in services {
        tracing::debug!(service = s.name, "mounting service");
        streaming.extend(s.streaming);
        router = router.merge(s.router);
        docs.push((s.name, s.openapi));
    }
    docs.push(("ops", OpsApi::openapi()));
    let mut doc = match openapi::merge_documents(openapi_base(), docs) {
        Ok(doc) => doc,
        Err(clashes) => {
            let clashes: Vec<String> = clashes.iter().map(ToString::to_string).collect();
            panic!(
                "the services' OpenAPI documents clash: {}",
                clashes.join("; ")
            )
        }
    };
    openapi::document_stack_answers(&mut doc);
    let doc_json = match doc.to_json() {
        Ok(json) => Bytes::from(json),
        Err(e) => {
            tracing::error!(error = %e, "openapi document failed to serialize");
            Bytes::from_static(b"{}")
        }
    };

    router = router
        .route("/healthz", get(ops::healthz))
        .merge(
            Router::new()
                .route("/readyz", get(ops::readyz))
                .with_state(platform.clone()),
        )
        .merge(
            Router::new()
                .route("/api/openapi.json", get(ops::openapi))
                .with_state(doc_json),
        )
        // The API page for humans: Swagger UI (bundled in the binary) over the document above.
        .merge(Router::from(
            utoipa_swagger_ui::SwaggerUi::new("/api/docs")
                .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
        ));
    if let Some(handle) = opts.metrics.clone().filter(|_| opts.metrics_route) {
        let state = ops::MetricsState { handle, platform };
        router = router.merge(
            Router::new()
                .route("/metrics", get(ops::metrics))
                .with_state(state),
        );
    }

    router = router.fallback(not_found);
    // The rate limit is checked inside the stack (429s get the request id, the access log and
    // metrics), not as a layer of its own: `Router::layer` wraps each route once per layer,
    // and a second wrapper per request cost a third of the limiter's decision (D57).
    let rate_limit = opts
        .rate_limit
        .as_ref()
        .filter(|l| !l.is_empty())
        .map(|limits| limits.limiting(limiter));
    router.layer(StackLayer::new(StackConfig {
        body_limit: opts.body_limit,
        timeout: (!opts.request_timeout.is_zero()).then_some(opts.request_timeout),
        access_log: opts.access_log,
        metrics: opts.metrics.is_some().then(RedMetrics::default),
        auth: Arc::new(opts.auth),
        rate_limit,
        streaming,
    }))
}

async fn not_found() -> Problem {
    Problem::not_found("no route matches this path")
}

/// The document every service's description is merged into: title "praxis".
fn openapi_base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("praxis")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Classic distributed-system designs, built for real."))
                .build(),
        )
        .build()
}
