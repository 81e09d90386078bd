//! The harness: a platform, the notify service on it, and the full app driven with
//! `tower::ServiceExt::oneshot`; a real webhook receiver per test.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use praxis_infra::Platform;
use praxis_notify::{BreakerSettings, NotifySettings, PerChannel};
use praxis_testkit::{TestAuthenticator, TestBackend, http};

pub use praxis_testkit::{Kind, Resp, eventually};

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

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data.
    pub backend: TestBackend,
    /// The platform the app runs on (a new one after [`Harness::restart`]).
    pub platform: Platform,
    /// The full app.
    pub app: Router,
    /// The settings it runs with.
    pub settings: NotifySettings,
}

impl Harness {
    /// An app on a fresh backend of `kind`.
    pub async fn start(kind: Kind, settings: NotifySettings) -> Self {
        Self::on(kind.start().await, settings).await
    }

    /// The app on `backend`.
    pub async fn on(backend: TestBackend, settings: NotifySettings) -> Self {
        let platform = backend.platform.clone();
        let name = backend.name;
        backend
            .migrate(&praxis_notify::NotifySystem)
            .await
            .unwrap_or_else(|e| panic!("notify migrations failed on {name}: {e}"));
        let service = praxis_notify::Notify::launch(&platform, settings.clone())
            .await
            .unwrap_or_else(|e| panic!("notify service failed to start on {name}: {e}"))
            .service();
        let auth = TestAuthenticator::new()
            .account("alice-token", "alice-id", &["notify:write"])
            .account("bob-token", "bob-id", &["notify:write"])
            .account("reader-token", "reader-id", &["notify:read"])
            .account("links-token", "links-id", &["links:read"])
            .settings(KEY);
        let app = http::app(vec![service], &platform, auth);
        Self {
            backend,
            platform,
            app,
            settings,
        }
    }

    /// Stops this "process" gracefully and starts a new one on the same data.
    pub async fn restart(self) -> Self {
        let Harness {
            backend, settings, ..
        } = self;
        Self::on(backend.restart().await, settings).await
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        http::send(&self.app, req).await
    }

    /// A request with the admin key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_as(Some(KEY), method, path, body).await
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

    /// A request with explicit headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.send(http::request(method, path, headers, body)).await
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

/// A webhook template `name` whose text reads `{{ n }}`.
pub fn webhook_template() -> Value {
    json!({"webhook": {"text": "event {{ n }}"}})
}
