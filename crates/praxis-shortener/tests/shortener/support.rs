//! The shortener on a testkit backend: its settings, callers and request helpers.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;

use praxis_http::AuthSettings;
use praxis_infra::Platform;
use praxis_shortener::ShortenerSettings;
use praxis_testkit::{Kind, TestAuthenticator, TestBackend, http};

pub use praxis_testkit::{Resp, eventually};

/// The admin key of every test app.
pub const KEY: &str = "test-admin-key";
/// The short domain of every test app.
pub const BASE: &str = "https://sho.rt/";

/// Settings used by the tests: the test short domain and a fast visit flush.
pub fn settings() -> ShortenerSettings {
    ShortenerSettings {
        base_url: url::Url::parse(BASE).expect("base url"),
        visit_flush_interval: Duration::from_millis(100),
        ..ShortenerSettings::default()
    }
}

/// The callers of the tests. The shortener only sees principals, so fixed tokens stand in
/// for the identity system (which has its own suite); other tokens are rejected with 401.
pub fn auth(anonymous_writes: bool) -> AuthSettings {
    let rw = ["links:read", "links:write"];
    AuthSettings {
        allow_anonymous_writes: anonymous_writes,
        ..TestAuthenticator::new()
            .account("alice-token", "alice-id", &rw)
            .account("bob-token", "bob-id", &rw)
            .api_key("alice-read-key", "alice-id", &["links:read"])
            .api_key("alice-write-key", "alice-id", &["links:write"])
            .admin("carol-admin-token", "carol-id", &rw)
            .settings(KEY)
    }
}

/// Runs a case of the backend matrix on a fresh harness of `kind`.
pub async fn run(kind: Kind, case: impl AsyncFnOnce(&Harness)) {
    case(&Harness::on(kind.start().await, settings(), false).await).await;
}

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data.
    pub backend: TestBackend,
    /// The platform the app runs on.
    pub platform: Platform,
    /// The full app.
    pub app: Router,
}

impl Harness {
    /// The same kind of backend as `self`, with other settings (fresh data).
    pub async fn sibling(&self, settings: ShortenerSettings, anonymous_writes: bool) -> Self {
        Self::on(
            self.backend.services.start().await,
            settings,
            anonymous_writes,
        )
        .await
    }

    /// Another "process" on the same data as `self`: a new platform from the same config.
    pub async fn another_process(&self, settings: ShortenerSettings) -> Self {
        Self::on(self.backend.another_process().await, settings, false).await
    }

    /// The app on `backend`.
    pub async fn on(
        backend: TestBackend,
        settings: ShortenerSettings,
        anonymous_writes: bool,
    ) -> Self {
        let (name, platform) = (backend.name, backend.platform.clone());
        backend
            .migrate(&praxis_shortener::ShortenerSystem)
            .await
            .unwrap_or_else(|e| panic!("shortener migrations failed on {name}: {e}"));
        let service = praxis_shortener::launch(&platform, settings)
            .await
            .unwrap_or_else(|e| panic!("shortener service failed to start on {name}: {e}"));
        let app = http::app(vec![service], &platform, auth(anonymous_writes));
        Self {
            backend,
            platform,
            app,
        }
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        http::send(&self.app, req).await
    }

    /// A request with the admin key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_as(Some(KEY), method, path, body).await
    }

    /// A request with explicit headers (no admin key unless given).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.send(http::request(method, path, headers, body)).await
    }

    /// A request with a bearer token (`None`: anonymous).
    pub async fn call_as(
        &self,
        bearer: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.send(http::bearer_request(method, path, bearer, body))
            .await
    }

    /// A request with a raw body and content type, with the admin key.
    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {KEY}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .expect("request");
        self.send(req).await
    }

    /// Creates a link, asserting 201; returns the link.
    pub async fn create(&self, body: Value) -> Value {
        self.call(Method::POST, "/api/v1/links", Some(body))
            .await
            .ok(201)
    }

    /// Follows a short link anonymously with GET.
    pub async fn follow(&self, code: &str) -> Resp {
        self.call_with(Method::GET, &format!("/{code}"), None, &[])
            .await
    }

    /// Statistics of a link.
    pub async fn stats(&self, code: &str) -> Value {
        self.call(Method::GET, &format!("/api/v1/links/{code}/stats"), None)
            .await
            .ok(200)
    }
}

/// The code of a created link.
pub fn code(link: &Value) -> String {
    link["code"].as_str().expect("code").to_owned()
}
