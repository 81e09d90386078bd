//! The harness: a platform, the notify service on it, and the full app driven with
//! `tower::ServiceExt::oneshot`; a real webhook receiver per test.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

use praxis_http::auth::{AuthFailure, Authenticator, DEFAULT_PLAN, Principal, PrincipalKind};
use praxis_http::{AuthSettings, HttpOptions};
use praxis_infra::Platform;
use praxis_infra::platform::PlatformOptions;
use praxis_infra::sql::DbOptions;
use praxis_infra::testing::{self, TestBackend};
use praxis_notify::{BreakerSettings, NotifySettings, PerChannel};

pub use praxis_http::testing::Resp;

/// The admin key of every test app.
pub const KEY: &str = "test-admin-key";
/// The webhook signing secret of every test app (from the Standard Webhooks test vectors).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The server-only secret that keys subscriber tokens in every test app.
pub const TOKEN_SECRET: &str = "notify-tests-server-only-token-secret";
/// How long a condition may take before a test fails (generous: CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Settings of the tests: fast polling, short retries and breakers, `.eml` files in the data
/// dir.
pub fn settings() -> NotifySettings {
    NotifySettings {
        webhook_secret: SECRET.to_owned(),
        token_secret: TOKEN_SECRET.to_owned(),
        provider_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        max_attempts: PerChannel::all(20),
        concurrency: PerChannel::all(8),
        breaker: BreakerSettings {
            failures: 5,
            open_for: Duration::from_millis(200),
            max_open: Duration::from_secs(1),
        },
        metrics_interval: Duration::from_millis(500),
        // The receivers listen on 127.0.0.1, which the SSRF guard refuses by default (the
        // guard's own cases turn it back on).
        webhook_allow_private: true,
        ..NotifySettings::default()
    }
}

/// Bearer tokens the test authenticator accepts: `(token, subject, scopes, admin)`.
pub const TOKENS: &[(&str, &str, &[&str], bool)] = &[
    ("alice-token", "alice-id", &["notify:write"], false),
    ("bob-token", "bob-id", &["notify:write"], false),
    ("reader-token", "reader-id", &["notify:read"], false),
    ("links-token", "links-id", &["links:read"], false),
];

/// Resolves the [`TOKENS`].
pub struct TestAuthenticator;

#[async_trait::async_trait]
impl Authenticator for TestAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        let Some((_, subject, scopes, admin)) = TOKENS.iter().find(|(t, ..)| *t == bearer) else {
            return Err(AuthFailure::rejected("the bearer token is not valid"));
        };
        Ok(Principal {
            subject: (*subject).to_owned(),
            kind: PrincipalKind::Account,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            admin: *admin,
            plan: DEFAULT_PLAN.to_owned(),
        })
    }
}

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data.
    pub backend: TestBackend,
    /// `"sqlite"` or `"postgres"`.
    pub name: &'static str,
    /// The platform the app runs on (a new one after [`Harness::restart`]).
    pub platform: Platform,
    /// The full app.
    pub app: Router,
    /// The settings it runs with.
    pub settings: NotifySettings,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
    }
}

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite, in-process bus and limiter.
    Embedded,
    /// PostgreSQL, NATS JetStream bus, Redis limiter.
    Scaled,
}

impl Harness {
    /// An app on a fresh backend of `kind`.
    pub async fn start(kind: Kind, settings: NotifySettings) -> Self {
        match kind {
            Kind::Embedded => Self::embedded(settings).await,
            Kind::Scaled => Self::scaled(settings).await,
        }
    }

    /// Embedded backend.
    pub async fn embedded(settings: NotifySettings) -> Self {
        Self::on(testing::embedded().await, settings).await
    }

    /// Scaled backend.
    pub async fn scaled(settings: NotifySettings) -> Self {
        Self::on(testing::scaled().await, settings).await
    }

    /// The app on `backend`.
    pub async fn on(backend: TestBackend, settings: NotifySettings) -> Self {
        let platform = backend.platform.clone();
        let name = backend.name;
        let app = Self::app(name, &platform, settings.clone()).await;
        Self {
            backend,
            name,
            platform,
            app,
            settings,
        }
    }

    async fn app(name: &str, platform: &Platform, settings: NotifySettings) -> Router {
        let service = praxis_notify::service(platform, settings)
            .await
            .unwrap_or_else(|e| panic!("notify service failed to start on {name}: {e}"));
        let opts = HttpOptions {
            access_log: false,
            auth: AuthSettings {
                admin_key: Some(KEY.into()),
                allow_anonymous_writes: false,
                authenticator: Some(std::sync::Arc::new(TestAuthenticator)),
            },
            ..HttpOptions::default()
        };
        praxis_http::app(vec![service], platform.clone(), opts)
    }

    /// Stops this "process" gracefully and starts a new one on the same data.
    pub async fn restart(mut self) -> Self {
        self.platform.close(Duration::from_secs(5)).await;
        let opts = PlatformOptions {
            db: DbOptions {
                max_connections: 5,
                ..DbOptions::default()
            },
            bus: testing::bus_options(),
        };
        let platform = Platform::connect_with(&self.backend.config, &opts)
            .await
            .expect("restarted platform");
        self.app = Self::app(self.name, &platform, self.settings.clone()).await;
        self.platform = platform;
        self
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

    /// A request with explicit headers.
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

    /// Creates a template version; returns the answer's body (asserting 201).
    pub async fn template(&self, name: &str, channels: Value) -> Value {
        self.call(
            Method::POST,
            "/api/v1/notify/templates",
            Some(json!({"name": name, "channels": channels})),
        )
        .await
        .ok(201)
    }

    /// Creates or replaces a subscriber (asserting 2xx).
    pub async fn subscriber(&self, id: &str, body: Value) -> Value {
        let r = self
            .call(
                Method::PUT,
                &format!("/api/v1/notify/subscribers/{id}"),
                Some(body),
            )
            .await;
        assert!(
            r.status.is_success(),
            "{}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Sends one message as admin; returns the message id (asserting 202).
    pub async fn notify(&self, body: Value) -> String {
        let r = self
            .call(Method::POST, "/api/v1/notify/send", Some(body))
            .await
            .ok(202);
        r["id"].as_str().expect("id").to_owned()
    }

    /// A message's view (asserting 200).
    pub async fn message(&self, id: &str) -> Value {
        self.call(Method::GET, &format!("/api/v1/notify/messages/{id}"), None)
            .await
            .ok(200)
    }

    /// Waits until the message's overall state is `state`; returns its view.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        eventually(
            DEADLINE,
            &format!("message {id} becomes {state}"),
            || async {
                let m = self.message(id).await;
                (m["state"] == state).then_some(m)
            },
        )
        .await
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A webhook template `name` whose text reads `{{ n }}`.
pub fn webhook_template() -> Value {
    json!({"webhook": {"text": "event {{ n }}"}})
}
