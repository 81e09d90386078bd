//! The routes, through the plug-in as `praxis serve` starts it: a buyer shops, checks out
//! (idempotently), lists, reads and cancels orders; the admin fills the catalog and the
//! inventory and checks the ledger; bad input is a 4xx that names what is wrong.

use axum::Router;
use axum::http::Method;
use praxis_commerce::{CommerceSettings, CommerceSystem};
use praxis_testkit::{Kind, Resp, TestAuthenticator, TestBackend, http};
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-key";

struct Api {
    _backend: TestBackend,
    app: Router,
}

impl Api {
    async fn start(kind: Kind) -> Self {
        let backend = kind.start().await;
        let started = backend
            .start_system(&CommerceSystem, CommerceSettings::default())
            .await
            .unwrap_or_else(|e| panic!("commerce failed to start on {}: {e}", backend.name));
        let auth = TestAuthenticator::new().made_up_users(&[]).settings(ADMIN);
        let app = http::app(vec![started.service], &backend.platform, auth);
        Self {
            _backend: backend,
            app,
        }
    }

    /// As `who`: `Some("admin")` the admin key, `Some(user)` account `user`, `None` anonymous.
    async fn call(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(who, method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        who: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let bearer = who.map(|w| {
            if w == "admin" {
                format!("Bearer {ADMIN}")
            } else {
                format!("Bearer u:{w}")
            }
        });
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(b) = bearer.as_deref() {
            headers.push(("authorization", b));
        }
        http::send(&self.app, http::request(method, path, &headers, body)).await
    }

    /// A product with SKU `sku` at `cents` EUR and `units` in warehouse w1.
    async fn stock(&self, sku: &str, cents: i64, units: i64) -> String {
        let p = self
            .call(
                Some("admin"),
                Method::POST,
                "/api/v1/commerce/products",
                Some(json!({"name": format!("Product {sku}"), "description": "test"})),
            )
            .await
            .ok(201);
        let id = p["id"].as_str().unwrap().to_owned();
        self.call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/commerce/products/{id}/variants"),
            Some(json!({"sku": sku, "name": "one size"})),
        )
        .await
        .ok(201);
        self.call(
            Some("admin"),
            Method::PUT,
            &format!("/api/v1/commerce/skus/{sku}/prices/EUR"),
            Some(json!({"amount_cents": cents})),
        )
        .await
        .ok(200);
        self.call(
            Some("admin"),
            Method::PUT,
            "/api/v1/commerce/warehouses/w1",
            Some(json!({"region": "eu"})),
        )
        .await
        .ok(200);
        self.call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/commerce/stock/{sku}/receive"),
            Some(json!({"warehouse": "w1", "quantity": units})),
        )
        .await
        .ok(200);
        id
    }
}

pub async fn a_buyer_shops_checks_out_and_cancels(kind: Kind) {
    let api = Api::start(kind).await;
    let product = api.stock("TEE-M", 1_500, 10).await;
    // Anyone reads the catalog.
    let p = api
        .call(
            None,
            Method::GET,
            &format!("/api/v1/commerce/products/{product}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(p["variants"][0]["prices"]["EUR"], 1_500);
    let page = api
        .call(None, Method::GET, "/api/v1/commerce/products?limit=1", None)
        .await
        .ok(200);
    assert_eq!(page["items"][0]["id"], product.as_str());
    // The buyer fills a cart.
    let cart = api
        .call(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/cart/items",
            Some(json!({"sku": "TEE-M", "quantity": 3})),
        )
        .await
        .ok(200);
    assert_eq!(cart["total_cents"], 4_500);
    api.call(
        Some("ann"),
        Method::PUT,
        "/api/v1/commerce/cart/items/TEE-M",
        Some(json!({"quantity": 2})),
    )
    .await
    .ok(200);
    // Checkout, then the same request again with its key.
    let checkout = || {
        api.call_with(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/checkout",
            Some(json!({"currency": "EUR", "region": "eu"})),
            &[("idempotency-key", "checkout-1")],
        )
    };
    let order = checkout().await.ok(201);
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total_cents"], 3_000);
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(
        checkout().await.ok(201)["id"],
        id.as_str(),
        "the same order"
    );
    let cart = api
        .call(Some("ann"), Method::GET, "/api/v1/commerce/cart", None)
        .await
        .ok(200);
    assert_eq!(
        cart["lines"].as_array().unwrap().len(),
        0,
        "a confirmed checkout empties the cart"
    );
    let stock = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/commerce/stock/TEE-M",
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        (stock[0]["on_hand"].as_i64(), stock[0]["available"].as_i64()),
        (Some(8), Some(8))
    );
    // The admin splits the SKU's stock for a flash sale: same counts, four rows.
    let split = api
        .call(
            Some("admin"),
            Method::PUT,
            "/api/v1/commerce/stock/TEE-M/buckets",
            Some(json!({"warehouse": "w1", "buckets": 4})),
        )
        .await
        .ok(200);
    assert_eq!(
        (split[0]["buckets"].as_i64(), split[0]["available"].as_i64()),
        (Some(4), Some(8))
    );
    let mine = api
        .call(Some("ann"), Method::GET, "/api/v1/commerce/orders", None)
        .await
        .ok(200);
    assert_eq!(mine["items"][0]["id"], id.as_str());
    api.call(
        Some("ann"),
        Method::GET,
        &format!("/api/v1/commerce/orders/{id}"),
        None,
    )
    .await
    .ok(200);
    api.call(
        Some("bob"),
        Method::GET,
        &format!("/api/v1/commerce/orders/{id}"),
        None,
    )
    .await
    .problem(404);
    let cancelled = api
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/commerce/orders/{id}/cancel"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(cancelled["status"], "cancelled");
    let stock = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/commerce/stock/TEE-M",
            None,
        )
        .await
        .ok(200);
    assert_eq!(stock[0]["on_hand"], 10, "the stock came back");
    let verified = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/commerce/inventory/verify",
            None,
        )
        .await
        .ok(200);
    assert_eq!(verified["consistent"], true, "{verified}");
    buy_now_leaves_the_cart_as_it_was(&api).await;
}

/// "Buy now": a checkout with `lines` orders those lines at the database's prices and leaves
/// the cart as it was; its key makes a retry return the same order.
async fn buy_now_leaves_the_cart_as_it_was(api: &Api) {
    api.stock("MUG", 700, 5).await;
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/cart/items",
        Some(json!({"sku": "TEE-M", "quantity": 1})),
    )
    .await
    .ok(200);
    let buy = || {
        api.call_with(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/checkout",
            Some(json!({"currency": "EUR", "region": "eu",
                        "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "TEE-M", "quantity": 1},
                                  {"sku": "MUG", "quantity": 1}]})),
            &[("idempotency-key", "buy-now-1")],
        )
    };
    let order = buy().await.ok(201);
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total_cents"], 2 * 700 + 1_500);
    assert_eq!(
        order["lines"],
        json!([{"sku": "MUG", "quantity": 2, "unit_cents": 700},
               {"sku": "TEE-M", "quantity": 1, "unit_cents": 1_500}]),
        "a SKU named twice is bought once with the sum"
    );
    assert_eq!(buy().await.ok(201)["id"], order["id"], "the same order");
    let cart = api
        .call(Some("ann"), Method::GET, "/api/v1/commerce/cart", None)
        .await
        .ok(200);
    assert_eq!(
        cart["lines"],
        json!([{"sku": "TEE-M", "quantity": 1, "unit_cents": 1_500}]),
        "the cart is as it was"
    );
    let stock = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/commerce/stock/MUG",
            None,
        )
        .await
        .ok(200);
    assert_eq!(stock[0]["on_hand"], 3, "{stock}");
}

pub async fn bad_input_is_a_named_4xx(kind: Kind) {
    let api = Api::start(kind).await;
    api.stock("CAP", 900, 1).await;
    let field = |r: Resp| {
        r.problem(400)["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        field(
            api.call(
                Some("ann"),
                Method::POST,
                "/api/v1/commerce/cart/items",
                Some(json!({"sku": "bad sku", "quantity": 1})),
            )
            .await
        ),
        "sku"
    );
    assert_eq!(
        field(
            api.call(
                Some("ann"),
                Method::POST,
                "/api/v1/commerce/cart/items",
                Some(json!({"sku": "CAP", "quantity": 0})),
            )
            .await
        ),
        "quantity"
    );
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/cart/items",
        Some(json!({"sku": "NOPE", "quantity": 1})),
    )
    .await
    .problem(404);
    // A valid quantity that the cart's line would pass the most of: a conflict, not bad input.
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/cart/items",
        Some(json!({"sku": "CAP", "quantity": 1_000_000_000})),
    )
    .await
    .ok(200);
    let p = api
        .call(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/cart/items",
            Some(json!({"sku": "CAP", "quantity": 1})),
        )
        .await
        .problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("most a cart holds"),
        "{p}"
    );
    api.call(
        Some("ann"),
        Method::DELETE,
        "/api/v1/commerce/cart/items/CAP",
        None,
    )
    .await;
    assert_eq!(
        field(
            api.call(
                Some("ann"),
                Method::GET,
                "/api/v1/commerce/cart?currency=eur",
                None
            )
            .await
        ),
        "currency"
    );
    // An empty cart does not check out.
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/checkout",
        Some(json!({"currency": "EUR"})),
    )
    .await
    .problem(409);
    // More than there is: the order comes back cancelled, naming why.
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/cart/items",
        Some(json!({"sku": "CAP", "quantity": 2})),
    )
    .await
    .ok(200);
    let order = api
        .call(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/checkout",
            Some(json!({"currency": "EUR"})),
        )
        .await
        .ok(201);
    assert_eq!(order["status"], "cancelled");
    assert!(
        order["failure"].as_str().unwrap().contains("out of stock"),
        "{order}"
    );
    // Admin routes need the admin; buyer routes a caller.
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/products",
        Some(json!({"name": "x"})),
    )
    .await
    .problem(403);
    api.call(None, Method::GET, "/api/v1/commerce/cart", None)
        .await
        .problem(401);
    assert_eq!(
        field(
            api.call(
                Some("admin"),
                Method::POST,
                "/api/v1/commerce/stock/CAP/adjust",
                Some(json!({"warehouse": "w1", "delta": 2_000_000_000i64, "note": "x"})),
            )
            .await
        ),
        "delta"
    );
    api.call(
        Some("admin"),
        Method::PUT,
        "/api/v1/commerce/warehouses/w1",
        Some(json!({"region": "us"})),
    )
    .await
    .problem(409);
    for bad in [0, 65] {
        assert_eq!(
            field(
                api.call(
                    Some("admin"),
                    Method::PUT,
                    "/api/v1/commerce/stock/CAP/buckets",
                    Some(json!({"warehouse": "w1", "buckets": bad})),
                )
                .await
            ),
            "buckets"
        );
    }
    api.call(
        Some("admin"),
        Method::PUT,
        "/api/v1/commerce/stock/NOPE/buckets",
        Some(json!({"warehouse": "w1", "buckets": 2})),
    )
    .await
    .problem(404);
    api.call(
        Some("admin"),
        Method::POST,
        "/api/v1/commerce/products",
        Some(json!({"name": "x", "unknown": 1})),
    )
    .await
    .problem(400);
    assert_eq!(
        field(
            api.call(
                Some("admin"),
                Method::PUT,
                "/api/v1/commerce/skus/CAP/prices/EUR",
                Some(json!({"amount_cents": -5})),
            )
            .await
        ),
        "amount_cents"
    );
    api.call(None, Method::GET, "/api/v1/commerce/products/nope", None)
        .await
        .problem(404);
    api.call(None, Method::GET, "/api/v1/commerce/products?limit=0", None)
        .await
        .problem(400);
    bad_buy_now_lines_are_named(&api).await;
}

/// A "buy now" checkout's lines are checked like a cart's: each bad one a 4xx naming it, and
/// nothing is ordered.
async fn bad_buy_now_lines_are_named(api: &Api) {
    let buy = |lines: Value| {
        api.call(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/checkout",
            Some(json!({"currency": "EUR", "lines": lines})),
        )
    };
    let field = |r: Resp| {
        r.problem(400)["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        field(buy(json!([{"sku": "CAP", "quantity": 0}])).await),
        "lines[0].quantity"
    );
    assert_eq!(
        field(buy(json!([{"sku": "CAP", "quantity": 1_000_000_001i64}])).await),
        "lines[0].quantity"
    );
    assert_eq!(field(buy(json!([])).await), "lines");
    assert_eq!(
        field(buy(json!([{"sku": "CAP", "quantity": 1}, {"sku": "bad sku", "quantity": 1}])).await),
        "lines[1].sku"
    );
    assert_eq!(
        field(
            buy(json!([{"sku": "CAP", "quantity": 600_000_000}, {"sku": "CAP", "quantity": 600_000_000}]))
                .await
        ),
        "lines[1].quantity"
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    assert_eq!(field(buy(Value::Array(many)).await), "lines");
    let unknown = buy(json!([{"sku": "NOPE", "quantity": 1}]))
        .await
        .problem(404);
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("NOPE"),
        "{unknown}"
    );
    let usd = api
        .call(
            Some("ann"),
            Method::POST,
            "/api/v1/commerce/checkout",
            Some(json!({"currency": "USD", "lines": [{"sku": "CAP", "quantity": 1}]})),
        )
        .await
        .problem(409);
    assert!(
        usd["detail"].as_str().unwrap_or_default().contains("CAP"),
        "{usd}"
    );
    api.call(
        Some("ann"),
        Method::POST,
        "/api/v1/commerce/checkout",
        Some(json!({"currency": "EUR", "lines": [{"sku": "CAP", "quantity": 1, "x": 1}]})),
    )
    .await
    .problem(400);
    let mine = api
        .call(Some("ann"), Method::GET, "/api/v1/commerce/orders", None)
        .await
        .ok(200);
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "only the out-of-stock cart checkout above made an order: {mine}"
    );
}
