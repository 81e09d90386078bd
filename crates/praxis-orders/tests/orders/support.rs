//! The harness: the orders system as `praxis serve` starts it, on a test backend, driven
//! through its routes; a second process on the same data.

use axum::Router;
use axum::http::Method;
use praxis_orders::{OrdersSettings, OrdersSystem};
use praxis_testkit::{Kind, Resp, TestAuthenticator, TestBackend, http};
use serde_json::{Value, json};

/// The admin key of these tests.
pub const ADMIN: &str = "test-admin-key";

/// One process serving the orders routes.
pub struct Api {
    pub backend: TestBackend,
    pub app: Router,
}

/// Settings of these tests: regions `eu` (the default) and `us`, two shards each.
pub fn settings() -> OrdersSettings {
    OrdersSettings {
        regions: vec!["eu".to_owned(), "us".to_owned()],
        default_region: "eu".to_owned(),
        initial_shards: 2,
        ..OrdersSettings::default()
    }
}

impl Api {
    /// A fresh backend of `kind` serving the orders system with `settings`.
    pub async fn start(kind: Kind, settings: OrdersSettings) -> Api {
        Api::on(kind.start().await, settings).await
    }

    /// The orders system with `settings` on `backend`.
    pub async fn on(backend: TestBackend, settings: OrdersSettings) -> Api {
        let started = backend
            .start_system(&OrdersSystem, settings)
            .await
            .unwrap_or_else(|e| panic!("orders failed to start on {}: {e}", backend.name));
        let auth = TestAuthenticator::new().made_up_users(&[]).settings(ADMIN);
        let app = http::app(vec![started.service], &backend.platform, auth);
        Api { backend, app }
    }

    /// A second process on the same data, with `settings`.
    pub async fn another(&self, settings: OrdersSettings) -> Api {
        Api::on(self.backend.another_process().await, settings).await
    }

    /// As `who`: `Some("admin")` the admin key, `Some(user)` account `user`, `None` anonymous.
    pub async fn call(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let bearer = who.map(|w| {
            if w == "admin" {
                format!("Bearer {ADMIN}")
            } else {
                format!("Bearer u:{w}")
            }
        });
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(b) = bearer.as_deref() {
            headers.push(("authorization", b));
        }
        http::send(&self.app, http::request(method, path, &headers, body)).await
    }

    /// Places an order of `units` of one SKU for `user` (home region `region` on a first
    /// order); the order.
    pub async fn place(&self, user: &str, region: Option<&str>, units: i64) -> Value {
        let mut body = json!({
            "currency": "EUR",
            "lines": [{"sku": "SKU-1", "quantity": units, "unit_price_cents": 250}],
        });
        if let Some(r) = region {
            body["region"] = json!(r);
        }
        self.call(Some(user), Method::POST, "/api/v1/orders", Some(body))
            .await
            .ok(201)
    }

    /// Every order id in `user`'s list, newest first, page by page.
    pub async fn list_all(&self, user: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/orders?limit=50&cursor={c}"),
                None => "/api/v1/orders?limit=50".to_owned(),
            };
            let page = self
                .call(Some(user), Method::GET, &path, None)
                .await
                .ok(200);
            for item in page["items"].as_array().unwrap() {
                ids.push(item["order_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }

    /// The status of `region` from `GET /api/v1/orders/shards`.
    pub async fn region(&self, region: &str) -> Value {
        let all = self
            .call(Some("admin"), Method::GET, "/api/v1/orders/shards", None)
            .await
            .ok(200);
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["region"] == region)
            .unwrap_or_else(|| panic!("no region {region} in {all}"))
            .clone()
    }

    /// `POST /api/v1/orders/shards/{region}/verify`.
    pub async fn verify(&self, region: &str) -> Value {
        self.call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/shards/{region}/verify"),
            None,
        )
        .await
        .ok(200)
    }
}
