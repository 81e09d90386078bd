//! The harness: a platform, the decision service on it with a limit file in a temporary
//! folder, the full app driven with `oneshot`, and the gRPC API on a free port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    RateLimitDescriptor, rate_limit_descriptor,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use serde_json::{Value, json};

use praxis_http::AuthSettings;
use praxis_ratelimit::{DecisionService, RateLimitServiceSettings};
use praxis_testkit::{TestAuthenticator, TestBackend, eventually, http};

pub use praxis_testkit::Resp;

/// The bootstrap admin key of every test app.
pub const ADMIN: &str = "test-admin-key-0123456789";
/// A credential with the scope `ratelimit:check` (an API key, as Envoy would send).
pub const CHECKER: &str = "checker-token";
/// A valid credential without that scope.
pub const USER: &str = "user-token";

/// The auth settings of every test app (HTTP and gRPC).
pub fn auth() -> AuthSettings {
    TestAuthenticator::new()
        .api_key(CHECKER, "checker", &["ratelimit:check"])
        .api_key(USER, "user", &["links:read"])
        .settings(ADMIN)
}

/// Replaces `path` atomically (write a temporary file, rename it over), as deployment tools
/// and Kubernetes do.
pub fn write_limits(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write limits");
    std::fs::rename(&tmp, path).expect("rename limits");
}

/// One app on one backend.
pub struct Harness {
    /// The backend (platform and its data), kept alive with the harness.
    _backend: TestBackend,
    /// The decision service.
    pub service: DecisionService,
    /// The full HTTP app.
    pub app: Router,
    /// The limit file.
    pub limits: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The service on `backend` with `limits` as its limit file.
    pub async fn new(backend: TestBackend, limits: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("limits.toml");
        write_limits(&path, limits);
        let settings = RateLimitServiceSettings {
            limits: Some(path.clone()),
            reload_interval: Duration::from_millis(50),
            grpc_listen: Some("127.0.0.1:0".parse().expect("addr")),
            grpc_auth: auth(),
        };
        let service = DecisionService::start(&backend.platform, settings)
            .await
            .unwrap_or_else(|e| panic!("the decision service failed to start: {e}"));
        let app = app_for(&backend, &service);
        Harness {
            _backend: backend,
            service,
            app,
            limits: path,
            _dir: dir,
        }
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        http::send(&self.app, req).await
    }

    /// A request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.send(http::bearer_request(method, path, bearer, body))
            .await
    }

    /// `POST /api/v1/ratelimit/check` as the checker; asserts 200 and returns the body.
    pub async fn check(&self, body: Value) -> Value {
        self.call(
            Method::POST,
            "/api/v1/ratelimit/check",
            Some(CHECKER),
            Some(body),
        )
        .await
        .ok(200)
    }

    /// One descriptor of `entries` in `domain`, through HTTP: (overall code, remaining).
    pub async fn check_one(&self, domain: &str, entries: &[(&str, &str)]) -> (String, u64) {
        let body = self.check(request(domain, &[entries])).await;
        (
            body["overall_code"].as_str().expect("code").to_owned(),
            body["statuses"][0]["limit_remaining"]
                .as_u64()
                .expect("remaining"),
        )
    }

    /// A tonic client of the gRPC API.
    pub async fn grpc(&self) -> RateLimitServiceClient<tonic::transport::Channel> {
        let addr = self.service.grpc_addr().expect("grpc listening");
        RateLimitServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("grpc connects")
    }

    /// `GET /api/v1/ratelimit/config` as the checker.
    pub async fn config(&self) -> Value {
        self.call(Method::GET, "/api/v1/ratelimit/config", Some(CHECKER), None)
            .await
            .ok(200)
    }

    /// Polls `GET /api/v1/ratelimit/config` until `done` holds (10 s at most).
    pub async fn config_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(10), what, || async {
            let cfg = self.config().await;
            done(&cfg).then_some(cfg)
        })
        .await
    }
}

/// The full app serving `service`.
pub fn app_for(backend: &TestBackend, service: &DecisionService) -> Router {
    http::app(vec![service.service()], &backend.platform, auth())
}

/// A JSON check request with one descriptor per entry list.
pub fn request(domain: &str, descriptors: &[&[(&str, &str)]]) -> Value {
    json!({
        "domain": domain,
        "descriptors": descriptors
            .iter()
            .map(|entries| json!({
                "entries": entries
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect::<Vec<_>>()
            }))
            .collect::<Vec<_>>(),
    })
}

/// A gRPC request with one descriptor per entry list.
pub fn grpc_request(domain: &str, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_owned(),
        descriptors: descriptors
            .iter()
            .map(|entries| RateLimitDescriptor {
                entries: entries
                    .iter()
                    .map(|(k, v)| rate_limit_descriptor::Entry {
                        key: (*k).to_owned(),
                        value: (*v).to_owned(),
                    })
                    .collect(),
                ..RateLimitDescriptor::default()
            })
            .collect(),
        hits_addend: 0,
    }
}

/// `req` with `authorization: Bearer <bearer>` metadata.
pub fn with_bearer<T>(req: T, bearer: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(req);
    if let Some(b) = bearer {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {b}").parse().expect("metadata"),
        );
    }
    r
}

/// Calls `ShouldRateLimit` as the checker.
pub async fn should_rate_limit(
    client: &mut RateLimitServiceClient<tonic::transport::Channel>,
    req: RateLimitRequest,
) -> RateLimitResponse {
    client
        .should_rate_limit(with_bearer(req, Some(CHECKER)))
        .await
        .expect("ShouldRateLimit answers")
        .into_inner()
}
