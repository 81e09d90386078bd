//! The harness: a platform, the shortener service on it, and the full app driven with
//! `tower::ServiceExt::oneshot`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;

use praxis_http::auth::{AuthFailure, Authenticator, DEFAULT_PLAN, Principal, PrincipalKind};
use praxis_http::{AuthSettings, HttpOptions};
use praxis_infra::Platform;
use praxis_infra::platform::PlatformOptions;
use praxis_infra::testing::{self, TestBackend};
use praxis_shortener::ShortenerSettings;

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

/// Bearer tokens the test authenticator accepts: `(token, subject, scopes, admin, api key)`.
/// The shortener only sees principals, so a fixed table stands in for the identity system
/// (which has its own suite); tokens not in it are rejected with 401.
pub const TOKENS: &[(&str, &str, &[&str], bool, bool)] = &[
    (
        "alice-token",
        "alice-id",
        &["links:read", "links:write"],
        false,
        false,
    ),
    (
        "bob-token",
        "bob-id",
        &["links:read", "links:write"],
        false,
        false,
    ),
    ("alice-read-key", "alice-id", &["links:read"], false, true),
    ("alice-write-key", "alice-id", &["links:write"], false, true),
    (
        "carol-admin-token",
        "carol-id",
        &["links:read", "links:write"],
        true,
        false,
    ),
];

/// Resolves the [`TOKENS`].
pub struct TestAuthenticator;

#[async_trait::async_trait]
impl Authenticator for TestAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        let Some((token, subject, scopes, admin, key)) = TOKENS.iter().find(|(t, ..)| *t == bearer)
        else {
            return Err(AuthFailure::rejected("the bearer token is not valid"));
        };
        Ok(Principal {
            subject: (*subject).to_owned(),
            kind: if *key {
                PrincipalKind::ApiKey {
                    key_id: (*token).to_owned(),
                }
            } else {
                PrincipalKind::Account
            },
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            admin: *admin,
            plan: DEFAULT_PLAN.to_owned(),
        })
    }
}

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data (`None` for another "process" on it).
    pub backend: Option<TestBackend>,
    /// `"sqlite"` or `"postgres"`.
    pub name: &'static str,
    /// The platform the app runs on.
    pub platform: Platform,
    /// The full app.
    pub app: Router,
}

pub use praxis_http::testing::Resp;

impl Drop for Harness {
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
    }
}

impl Harness {
    /// Embedded backend, default test settings.
    pub async fn embedded() -> Self {
        Self::on(testing::embedded().await, settings(), false).await
    }

    /// Scaled backend, default test settings.
    pub async fn scaled() -> Self {
        Self::on(testing::scaled().await, settings(), false).await
    }

    /// The same kind of backend as `self`, with other settings (fresh data).
    pub async fn sibling(&self, settings: ShortenerSettings, anonymous_writes: bool) -> Self {
        let backend = match self.name {
            "sqlite" => testing::embedded().await,
            _ => testing::scaled().await,
        };
        Self::on(backend, settings, anonymous_writes).await
    }

    /// The app on `backend`.
    pub async fn on(
        backend: TestBackend,
        settings: ShortenerSettings,
        anonymous_writes: bool,
    ) -> Self {
        let platform = backend.platform.clone();
        let name = backend.name;
        let mut h = Self::on_platform(name, platform, settings, anonymous_writes).await;
        h.backend = Some(backend);
        h
    }

    /// Another "process" on the same data as `self`: a new platform from the same config.
    pub async fn another_process(&self, settings: ShortenerSettings) -> Self {
        let config = &self.backend.as_ref().expect("a backend harness").config;
        let opts = PlatformOptions {
            bus: testing::bus_options(),
            ..PlatformOptions::default()
        };
        let platform = Platform::connect_with(config, &opts)
            .await
            .expect("second platform");
        Self::on_platform(self.name, platform, settings, false).await
    }

    /// The app on a platform.
    pub async fn on_platform(
        name: &'static str,
        platform: Platform,
        settings: ShortenerSettings,
        anonymous_writes: bool,
    ) -> Self {
        let service = praxis_shortener::service(&platform, settings)
            .await
            .unwrap_or_else(|e| panic!("shortener service failed to start on {name}: {e}"));
        let opts = HttpOptions {
            access_log: false,
            auth: AuthSettings {
                admin_key: Some(KEY.into()),
                allow_anonymous_writes: anonymous_writes,
                authenticator: Some(std::sync::Arc::new(TestAuthenticator)),
            },
            ..HttpOptions::default()
        };
        let app = praxis_http::app(vec![service], platform.clone(), opts);
        Self {
            backend: None,
            name,
            platform,
            app,
        }
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        praxis_http::testing::send(&self.app, req).await
    }

    /// A request with the admin key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_with(
            method,
            path,
            body,
            &[("authorization", &format!("Bearer {KEY}"))],
        )
        .await
    }

    /// A request with explicit headers (no admin key unless given).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    /// A request with a bearer token (`None`: anonymous).
    pub async fn call_as(
        &self,
        bearer: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.call_with(method, path, body, &headers).await
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

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= end {
            panic!("not reached within {deadline:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The code of a created link.
pub fn code(link: &Value) -> String {
    link["code"].as_str().expect("code").to_owned()
}
