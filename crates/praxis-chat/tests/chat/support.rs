//! The harness: the chat on a test platform, started through its plug-in, and the full app
//! driven in process. Users are made up: the bearer token `u:<id>` is account `<id>`;
//! `key:<id>` is an API key of `<id>` with the scopes the harness was given.

use axum::Router;
use axum::http::Method;
use serde_json::{Value, json};

use praxis_chat::{ChatSettings, ChatSystem};
use praxis_testkit::{Kind, Resp, TestAuthenticator, TestBackend, http};

/// The defaults, with a send rate no case reaches (the limit has its own case).
pub fn settings() -> ChatSettings {
    ChatSettings {
        send_rate: 100_000,
        ..ChatSettings::default()
    }
}

/// One app on one backend.
pub struct Harness {
    /// The backend that owns the data (kept alive with the app).
    pub backend: TestBackend,
    /// The full app.
    pub app: Router,
}

impl Harness {
    /// The chat with the suite's settings on a fresh backend of `kind`.
    pub async fn start(kind: Kind) -> Self {
        Self::with(kind, settings(), &[]).await
    }

    /// The chat with `settings` on a fresh backend; API keys get `key_scopes`.
    pub async fn with(kind: Kind, settings: ChatSettings, key_scopes: &[&str]) -> Self {
        Self::on(kind.start().await, settings, key_scopes).await
    }

    /// The chat on `backend`.
    pub async fn on(backend: TestBackend, settings: ChatSettings, key_scopes: &[&str]) -> Self {
        let started = backend
            .start_system(&ChatSystem, settings)
            .await
            .unwrap_or_else(|e| panic!("chat failed to start on {}: {e}", backend.name));
        let auth = TestAuthenticator::new()
            .made_up_users(key_scopes)
            .settings("test-admin-key");
        let app = http::app(vec![started.service], &backend.platform, auth);
        Self { backend, app }
    }

    /// A request as `user` (`None`: anonymous).
    pub async fn call(
        &self,
        bearer: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        http::send(&self.app, http::bearer_request(method, path, bearer, body)).await
    }

    /// A request as account `user`.
    pub async fn as_user(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.call(Some(&format!("u:{user}")), method, path, body)
            .await
    }

    /// `user` opens the direct conversation with `with`; returns its id.
    pub async fn direct(&self, user: &str, with: &str) -> String {
        let r = self
            .as_user(
                user,
                Method::POST,
                "/api/v1/chat/conversations",
                Some(json!({"kind": "direct", "with": with})),
            )
            .await;
        assert!(
            r.status.as_u16() == 201 || r.status.as_u16() == 200,
            "{}",
            r.text()
        );
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// `owner` creates a group with `members`; returns its id.
    pub async fn group(&self, owner: &str, members: &[&str]) -> String {
        let r = self
            .as_user(
                owner,
                Method::POST,
                "/api/v1/chat/conversations",
                Some(json!({"kind": "group", "title": "team", "members": members})),
            )
            .await
            .ok(201);
        r["id"].as_str().unwrap().to_owned()
    }

    /// `user` sends `body` with `client_id`; returns the response.
    pub async fn send(&self, user: &str, conversation: &str, client_id: &str, body: &str) -> Resp {
        self.as_user(
            user,
            Method::POST,
            &format!("/api/v1/chat/conversations/{conversation}/messages"),
            Some(json!({"client_id": client_id, "body": body})),
        )
        .await
    }

    /// `user` reads history with `query` (e.g. `after=3&limit=2`); returns the page.
    pub async fn history(&self, user: &str, conversation: &str, query: &str) -> Value {
        self.as_user(
            user,
            Method::GET,
            &format!("/api/v1/chat/conversations/{conversation}/messages?{query}"),
            None,
        )
        .await
        .ok(200)
    }
}

/// The sequence numbers of a history page.
pub fn seqs(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}
