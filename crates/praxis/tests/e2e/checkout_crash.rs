//! kill -9 of `praxis serve` in the middle of a checkout, then a restart: the order ends
//! confirmed or fully compensated, and nothing is left dangling (no held reservation, no
//! authorization or shipment that was not undone for a cancelled order, the ledger agreeing).
//!
//! Payment and shipping are HTTP providers (the contract of docs/commerce.md, "Providers")
//! served by this test: a provider can be told to do the work and then never answer, so the
//! process is killed at a known step with the provider's side effect done and unrecorded,
//! the hardest place to crash. The order id reaches the test as the key in the provider's
//! path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{ADMIN_KEY, Scaled, Server, client, data_dir, env_refs, temp_dir};

/// How long a step may take to be reached, or an order to end (deadlines, not timings).
const DEADLINE: Duration = Duration::from_secs(60);
const SKU: &str = "CRASH-1";
const UNITS: i64 = 5;

/// What a provider resource does with the next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Does the work and answers.
    Answer,
    /// Does the work, tells the test, and never answers.
    DoThenHang,
    /// Answers 422 (a definite no).
    Decline,
}

/// One resource of the peer (`authorizations` or `shipments`).
#[derive(Debug)]
struct Resource {
    put: Mode,
    delete: Mode,
    /// Keys whose work was done (a PUT that succeeded or hung after doing it).
    done: HashSet<String>,
    /// Keys undone (voided or cancelled), whether they were done or not.
    undone: HashSet<String>,
}

impl Default for Resource {
    fn default() -> Self {
        Self {
            put: Mode::Answer,
            delete: Mode::Answer,
            done: HashSet::new(),
            undone: HashSet::new(),
        }
    }
}

#[derive(Clone)]
struct Peer {
    resources: Arc<Mutex<HashMap<String, Resource>>>,
    /// `(resource, method, key)` of every call that hung after doing its work.
    hung: mpsc::UnboundedSender<(String, &'static str, String)>,
}

async fn put_handler(
    State(peer): State<Peer>,
    Path((resource, key)): Path<(String, String)>,
) -> (StatusCode, axum::Json<Value>) {
    let mode = {
        let mut all = peer.resources.lock().expect("peer lock");
        let r = all.entry(resource.clone()).or_default();
        if r.undone.contains(&key) {
            return (
                StatusCode::CONFLICT,
                axum::Json(json!({"detail": format!("{key} was undone")})),
            );
        }
        if r.put != Mode::Decline {
            r.done.insert(key.clone());
        }
        r.put
    };
    match mode {
        Mode::Answer => (
            StatusCode::OK,
            axum::Json(json!({"id": format!("{resource}-{key}")})),
        ),
        Mode::Decline => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"detail": "refused by the test"})),
        ),
        Mode::DoThenHang => {
            let _ = peer.hung.send((resource, "PUT", key));
            std::future::pending().await
        }
    }
}

async fn delete_handler(
    State(peer): State<Peer>,
    Path((resource, key)): Path<(String, String)>,
) -> (StatusCode, axum::Json<Value>) {
    let mode = {
        let mut all = peer.resources.lock().expect("peer lock");
        let r = all.entry(resource.clone()).or_default();
        r.undone.insert(key.clone());
        r.delete
    };
    if mode == Mode::DoThenHang {
        let _ = peer.hung.send((resource, "DELETE", key));
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, axum::Json(json!({})))
}

/// The payment and shipping provider, on a free port.
struct Provider {
    peer: Peer,
    url: String,
    hung: mpsc::UnboundedReceiver<(String, &'static str, String)>,
}

impl Provider {
    async fn start() -> Provider {
        let (tx, hung) = mpsc::unbounded_channel();
        let peer = Peer {
            resources: Arc::default(),
            hung: tx,
        };
        let app = Router::new()
            .route("/{resource}/{key}", put(put_handler).delete(delete_handler))
            .with_state(peer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the provider");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider { peer, url, hung }
    }

    fn set(&self, resource: &str, put: Mode, delete: Mode) {
        let mut all = self.peer.resources.lock().expect("peer lock");
        let r = all.entry(resource.to_owned()).or_default();
        r.put = put;
        r.delete = delete;
    }

    /// `(done, undone)` for `key` in `resource`.
    fn state(&self, resource: &str, key: &str) -> (bool, bool) {
        let all = self.peer.resources.lock().expect("peer lock");
        all.get(resource).map_or((false, false), |r| {
            (r.done.contains(key), r.undone.contains(key))
        })
    }

    /// The next call that hung: `(resource, method, key)`.
    async fn next_hang(&mut self, server: &Server) -> (String, &'static str, String) {
        tokio::time::timeout(DEADLINE, self.hung.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no provider call hung within {DEADLINE:?}\n{}",
                    server.logs()
                )
            })
            .expect("the provider runs")
    }
}

async fn call(server: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(method, server.url(path))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("praxis answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn ok(server: &Server, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = call(server, method.clone(), path, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// A product with [`SKU`] at 10 EUR and [`UNITS`] in stock.
async fn shop(server: &Server) {
    let p = ok(
        server,
        Method::POST,
        "/api/v1/commerce/products",
        json!({"name": "Crash test", "description": "e2e"}),
    )
    .await;
    let id = p["id"].as_str().expect("a product id");
    ok(
        server,
        Method::POST,
        &format!("/api/v1/commerce/products/{id}/variants"),
        json!({"sku": SKU, "name": "one size"}),
    )
    .await;
    ok(
        server,
        Method::PUT,
        &format!("/api/v1/commerce/skus/{SKU}/prices/EUR"),
        json!({"amount_cents": 1_000}),
    )
    .await;
    ok(
        server,
        Method::PUT,
        "/api/v1/commerce/warehouses/w1",
        json!({"region": "eu"}),
    )
    .await;
    ok(
        server,
        Method::POST,
        &format!("/api/v1/commerce/stock/{SKU}/receive"),
        json!({"warehouse": "w1", "quantity": UNITS}),
    )
    .await;
}

/// Polls order `id` until its checkout ended; its status.
async fn ended(server: &Server, id: &str) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        let (status, order) = call(
            server,
            Method::GET,
            &format!("/api/v1/commerce/orders/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "order {id} after the restart: {order}");
        let step = order["status"].as_str().unwrap_or_default().to_owned();
        if step == "confirmed" || step == "cancelled" {
            return step;
        }
        assert!(
            Instant::now() < end,
            "order {id} still at {step} {DEADLINE:?} after the restart\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the process dies: which provider call hangs (after doing its work) when it is
/// killed, and what the order must end as.
struct KillPoint {
    label: &'static str,
    /// `(resource, put, delete)` modes before the kill.
    before: &'static [(&'static str, Mode, Mode)],
    /// The call that hangs.
    hangs: (&'static str, &'static str),
    /// The status the order ends with.
    ends: &'static str,
}

const KILL_POINTS: &[KillPoint] = &[
    KillPoint {
        label: "reserved, authorization done but unrecorded",
        before: &[("authorizations", Mode::DoThenHang, Mode::Answer)],
        hangs: ("authorizations", "PUT"),
        ends: "confirmed",
    },
    KillPoint {
        label: "authorized, shipment done but unrecorded",
        before: &[("shipments", Mode::DoThenHang, Mode::Answer)],
        hangs: ("shipments", "PUT"),
        ends: "confirmed",
    },
    KillPoint {
        label: "compensating after shipping said no, void done but unrecorded",
        before: &[
            ("shipments", Mode::Decline, Mode::Answer),
            ("authorizations", Mode::Answer, Mode::DoThenHang),
        ],
        hangs: ("authorizations", "DELETE"),
        ends: "cancelled",
    },
];

/// Every kill point on a fresh server (embedded: a data dir each; scaled: `scaled()` each).
async fn every_kill_point(
    label: &str,
    mut env_of: impl AsyncFnMut() -> Vec<(&'static str, String)>,
) {
    for point in KILL_POINTS {
        let mut provider = Provider::start().await;
        let dir = temp_dir();
        let data = data_dir(dir.path()).display().to_string();
        let mut env = env_of().await;
        env.extend([
            ("PRAXIS_ADMIN_KEY", ADMIN_KEY.to_owned()),
            ("PRAXIS_COMMERCE_PAYMENT_URL", provider.url.clone()),
            ("PRAXIS_COMMERCE_SHIPPING_URL", provider.url.clone()),
            // Another process may take a dead one's checkout after 1 s; look every 200 ms.
            ("PRAXIS_COMMERCE_SAGA_LEASE", "1s".to_owned()),
            ("PRAXIS_COMMERCE_RECOVER_INTERVAL", "200ms".to_owned()),
        ]);
        let args = ["--data-dir", data.as_str(), "--only", "commerce"];
        let mut server = Server::start(dir.path(), &args, &env_refs(&env));
        shop(&server).await;
        ok(
            &server,
            Method::POST,
            "/api/v1/commerce/cart/items",
            json!({"sku": SKU, "quantity": 1}),
        )
        .await;
        for (resource, put, delete) in point.before {
            provider.set(resource, *put, *delete);
        }
        let checkout = {
            let url = server.url("/api/v1/commerce/checkout");
            tokio::spawn(async move {
                client()
                    .post(url)
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"currency": "EUR"}))
                    .send()
                    .await
            })
        };
        let (resource, method, order) = provider.next_hang(&server).await;
        assert_eq!(
            (resource.as_str(), method),
            point.hangs,
            "{label}: {}",
            point.label
        );
        server.kill9();
        assert!(
            checkout.await.expect("the request task").is_err(),
            "{label}: the checkout in flight dies with the process"
        );
        // The providers answer again; a new process takes the order over.
        for (resource, _, _) in point.before {
            provider.set(resource, Mode::Answer, Mode::Answer);
        }
        let server = Server::start(dir.path(), &args, &env_refs(&env));
        let status = ended(&server, &order).await;
        assert_eq!(status, point.ends, "{label}: {}", point.label);
        let (paid, voided) = provider.state("authorizations", &order);
        let (shipped, cancelled) = provider.state("shipments", &order);
        if status == "confirmed" {
            assert!(
                paid && !voided,
                "{label}: {} payment {paid}/{voided}",
                point.label
            );
            assert!(
                shipped && !cancelled,
                "{label}: {} shipment {shipped}/{cancelled}",
                point.label
            );
        } else {
            assert!(
                !paid || voided,
                "{label}: {} left an authorization",
                point.label
            );
            assert!(
                !shipped || cancelled,
                "{label}: {} left a shipment",
                point.label
            );
        }
        let (_, stock) = call(
            &server,
            Method::GET,
            &format!("/api/v1/commerce/stock/{SKU}"),
            None,
        )
        .await;
        let sold = i64::from(status == "confirmed");
        assert_eq!(
            (stock[0]["on_hand"].as_i64(), stock[0]["reserved"].as_i64()),
            (Some(UNITS - sold), Some(0)),
            "{label}: {}: no reservation left held\n{stock}",
            point.label
        );
        let (_, verified) = call(
            &server,
            Method::GET,
            "/api/v1/commerce/inventory/verify",
            None,
        )
        .await;
        assert_eq!(
            verified["consistent"], true,
            "{label}: {}: {verified}",
            point.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_each_checkout_step_ends_confirmed_or_compensated_embedded() {
    every_kill_point("embedded", async || Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_each_checkout_step_ends_confirmed_or_compensated_scaled() {
    let mut keep = Vec::new();
    every_kill_point("scaled", async || {
        let scaled = Scaled::new().await;
        let env = scaled.env();
        keep.push(scaled);
        env
    })
    .await;
}
