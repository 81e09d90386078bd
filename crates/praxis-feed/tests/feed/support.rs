//! The harness: a platform, the feed on it, and the full app driven with
//! `tower::ServiceExt::oneshot`. Users are made up on the spot: the bearer token `u:<id>` is
//! a logged-in account `<id>`, `key:<id>` an API key of `<id>` without feed scopes.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use praxis_feed::store::Range;
use praxis_feed::store::timeline::TimelineState;
use praxis_feed::{Feed, FeedSettings};
use praxis_testkit::{TestAuthenticator, TestBackend, http};

pub use praxis_testkit::{Kind, Resp, eventually};

/// The admin key of every test app.
pub const KEY: &str = "test-admin-key";
/// How long a condition may take before a test fails (generous: CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data.
    pub backend: TestBackend,
    /// The feed of the app.
    pub feed: Feed,
    /// The full app.
    pub app: Router,
}

/// Settings of the tests (the platform's prefix for Redis keys).
pub fn settings() -> FeedSettings {
    FeedSettings {
        timeline_cap: 100,
        ..FeedSettings::default()
    }
}

impl Harness {
    /// An app on a fresh backend of `kind`.
    pub async fn start(kind: Kind, settings: FeedSettings) -> Self {
        Self::on(kind.start().await, settings).await
    }

    /// Two scaled "processes" on one database, Redis prefix and NATS prefix.
    pub async fn pair(settings: FeedSettings) -> (Self, Self) {
        let (a, b) = praxis_testkit::scaled_pair().await;
        (
            Self::on(a, settings.clone()).await,
            Self::on(b, settings).await,
        )
    }

    /// The app on `backend`.
    pub async fn on(backend: TestBackend, settings: FeedSettings) -> Self {
        let settings = FeedSettings {
            key_prefix: backend.config.prefix.clone(),
            ..settings
        };
        backend
            .migrate(&praxis_feed::FeedSystem)
            .await
            .unwrap_or_else(|e| panic!("feed migrations failed on {}: {e}", backend.name));
        let feed = Feed::launch(&backend.platform, settings)
            .await
            .unwrap_or_else(|e| panic!("feed failed to start on {}: {e}", backend.name));
        // `u:<id>` is account `<id>`, `key:<id>` an API key of `<id>` without feed scopes.
        let auth = TestAuthenticator::new()
            .made_up_users(&["links:read"])
            .settings(KEY);
        let app = http::app(vec![feed.service()], &backend.platform, auth);
        Self { backend, feed, app }
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        http::send(&self.app, req).await
    }

    /// A request with a bearer token (`None`: anonymous).
    pub async fn call(
        &self,
        bearer: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.send(http::bearer_request(method, path, bearer, body))
            .await
    }

    /// A request as user `user`.
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

    /// `user` posts `text`; returns the post id (asserting 201).
    pub async fn post(&self, user: &str, text: &str) -> i64 {
        let r = self
            .as_user(
                user,
                Method::POST,
                "/api/v1/feed/posts",
                Some(json!({"text": text})),
            )
            .await
            .ok(201);
        r["id"].as_str().expect("id").parse().expect("numeric id")
    }

    /// `a` follows `b` (asserting 200).
    pub async fn follow(&self, a: &str, b: &str) {
        self.as_user(a, Method::POST, &format!("/api/v1/feed/follows/{b}"), None)
            .await
            .ok(200);
    }

    /// `user`'s home page with `query` (e.g. `"limit=5&max_id=9"`); asserts 200.
    pub async fn home(&self, user: &str, query: &str) -> (Vec<i64>, Resp) {
        let r = self
            .as_user(
                user,
                Method::GET,
                &format!("/api/v1/feed/timelines/home?{query}"),
                None,
            )
            .await;
        let body = r.ok(200);
        (ids(&body), r)
    }

    /// Reads `user`'s home once (making them active) and waits until their timeline is built.
    pub async fn activate(&self, user: &str) {
        self.home(user, "").await;
        let feed = self.feed.clone();
        eventually(DEADLINE, &format!("timeline of {user} built"), || {
            let feed = feed.clone();
            async move {
                (feed.timelines().state(user).await.ok()? == TimelineState::Built).then_some(())
            }
        })
        .await;
    }

    /// The ids in `user`'s timeline store, newest first.
    pub async fn stored(&self, user: &str) -> Vec<i64> {
        self.feed
            .timelines()
            .slice(user, Range::ALL, 10_000)
            .await
            .expect("timeline store")
            .ids
    }

    /// Loses every timeline: scaled, deletes every Redis key of the feed (`<prefix>:feed:*`)
    /// with a connection of its own, as a `FLUSHALL` would (other tests share the server);
    /// embedded, clears the in-memory store (as a restart does).
    pub async fn flush_timelines(&self) {
        let Some(conn) = self.backend.platform.redis() else {
            self.feed.timelines().clear().await.expect("clear");
            return;
        };
        let mut conn = conn.clone();
        let pattern = format!("{}:feed:*", self.backend.config.prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("redis KEYS");
        assert!(!keys.is_empty(), "no feed keys under {pattern}");
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("redis DEL");
    }

    /// Scaled only: the remaining TTL in seconds (`TTL`: -1 none, -2 missing) of every Redis
    /// key of the feed (`<prefix>:feed:*`).
    pub async fn redis_ttls(&self) -> Vec<(String, i64)> {
        let conn = self.backend.platform.redis().expect("a scaled harness");
        let mut conn = conn.clone();
        let pattern = format!("{}:feed:*", self.backend.config.prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("redis KEYS");
        let mut ttls = Vec::new();
        for key in keys {
            let ttl: i64 = redis::cmd("TTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("redis TTL");
            ttls.push((key, ttl));
        }
        ttls
    }

    /// Waits until the fan-out consumer handled every post.
    pub async fn fanned_out(&self) {
        let bus = self.backend.platform.bus.clone();
        eventually(DEADLINE, "fan-out done", || {
            let bus = bus.clone();
            async move { (bus.lag("feed.posted", "feed-fanout").await.ok()? == 0).then_some(()) }
        })
        .await;
    }
}

/// The post ids of a page body.
pub fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a page: {body}"))
        .iter()
        .map(|p| p["id"].as_str().expect("id").parse().expect("numeric id"))
        .collect()
}
