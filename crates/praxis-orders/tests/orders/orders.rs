//! Orders through the routes: the home region, reads, the per-user list and its index, the
//! scatter report, and bad input.

use std::time::Duration;

use axum::http::Method;
use praxis_orders::domain::{ORDERS, Order, OrderStatus};
use praxis_orders::{OrdersSettings, OrdersSystem};
use praxis_shard::{Placement, RingStore, RingWatch, ShardSet};
use praxis_testkit::{Kind, eventually};
use serde_json::json;

use crate::support::{Api, settings};

pub async fn a_user_places_reads_and_lists_orders_in_the_home_region(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    // The first order pins the home region; later ones may name it or not.
    let first = api.place("alice", Some("us"), 1).await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("us_"), "{id}");
    assert_eq!(first["status"], "placed");
    assert_eq!(first["total_cents"], 250);
    let second = api.place("alice", None, 2).await;
    let third = api.place("alice", Some("us"), 3).await;
    assert!(second["id"].as_str().unwrap().starts_with("us_"));
    // Another region later is refused, naming the home region.
    let p = api
        .call(
            Some("alice"),
            Method::POST,
            "/api/v1/orders",
            Some(json!({"region": "eu", "currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]})),
        )
        .await
        .problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("home region is us"),
        "{p}"
    );
    // Bob's first order goes to the default region.
    let bob = api.place("bob", None, 1).await;
    assert!(bob["id"].as_str().unwrap().starts_with("eu_"));

    // Reads: mine, not someone else's (the admin reads any).
    let read = api
        .call(
            Some("alice"),
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(read, first);
    api.call(
        Some("bob"),
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        None,
    )
    .await
    .problem(404);
    api.call(
        Some("admin"),
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        None,
    )
    .await
    .ok(200);

    // My list, newest first, in pages.
    let page = api
        .call(Some("alice"), Method::GET, "/api/v1/orders?limit=2", None)
        .await
        .ok(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["order_id"], third["id"]);
    assert_eq!(items[1]["order_id"], second["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = api
        .call(
            Some("alice"),
            Method::GET,
            &format!("/api/v1/orders?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["order_id"], first["id"]);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(
        api.list_all("bob").await,
        vec![bob["id"].as_str().unwrap().to_owned()]
    );
    assert!(api.list_all("carol").await.is_empty());

    // Status changes (admin), forward only; the list follows at once.
    let paid = api
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/{id}/status"),
            Some(json!({"status": "paid"})),
        )
        .await
        .ok(200);
    assert_eq!(paid["status"], "paid");
    api.call(
        Some("admin"),
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(json!({"status": "shipped"})),
    )
    .await
    .ok(200);
    let p = api
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/{id}/status"),
            Some(json!({"status": "cancelled"})),
        )
        .await
        .problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("cannot become"),
        "{p}"
    );
    api.call(
        Some("alice"),
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(json!({"status": "paid"})),
    )
    .await
    .problem(403);
    let page = api
        .call(Some("alice"), Method::GET, "/api/v1/orders?limit=10", None)
        .await
        .ok(200);
    let entry = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["order_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "shipped");
}

pub async fn orders_spread_over_the_shards_of_their_region(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    for i in 0..60 {
        api.place(&format!("user{i}"), Some("eu"), 1).await;
    }
    let eu = api.region("eu").await;
    let counts: Vec<i64> = eu["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["orders"].as_i64().unwrap())
        .collect();
    assert_eq!(counts.len(), 2);
    assert_eq!(counts.iter().sum::<i64>(), 60);
    assert!(
        counts.iter().all(|&n| n > 0),
        "both shards hold orders: {counts:?}"
    );
    let us = api.region("us").await;
    assert!(
        us["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["orders"] == 0)
    );
    // Every document (orders and index entries) is on the shard its ring names.
    let placed = api.verify("eu").await;
    assert_eq!(placed["ok"], true, "{placed}");
    let documents: i64 = placed["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["documents"].as_i64().unwrap())
        .sum();
    assert_eq!(documents, 120, "60 orders and 60 index entries: {placed}");
}

pub async fn the_index_is_kept_from_the_change_log(kind: Kind) {
    // A writer that stored an order and died before indexing it: the tail indexes it.
    let backend = kind.start().await;
    let app = {
        backend.migrate(&OrdersSystem).await.unwrap();
        praxis_orders::OrdersApp::launch(&backend.platform, settings())
            .await
            .unwrap()
    };
    let store = app.store();
    store.pin_home("dana", Some("eu")).await.unwrap();
    let order = Order {
        id: praxis_orders::domain::new_order_id("eu"),
        user_id: "dana".to_owned(),
        region: "eu".to_owned(),
        status: OrderStatus::Placed,
        currency: "EUR".to_owned(),
        total_cents: 100,
        lines: Vec::new(),
        created_at: 1,
        updated_at: 1,
    };
    store
        .docs()
        .put(
            "eu",
            ORDERS,
            &order.id,
            &serde_json::to_string(&order).unwrap(),
        )
        .await
        .unwrap();
    let listed = eventually(
        Duration::from_secs(5),
        "the tail indexes the order",
        || async {
            let list = store.list("dana", None, 10).await.unwrap();
            (!list.is_empty()).then_some(list)
        },
    )
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].order_id, order.id);
    // A later change made behind the store's back reaches the list too.
    let mut shipped = order.clone();
    shipped.status = OrderStatus::Shipped;
    store
        .docs()
        .put(
            "eu",
            ORDERS,
            &order.id,
            &serde_json::to_string(&shipped).unwrap(),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the tail sees the new status",
        || async {
            let list = store.list("dana", None, 10).await.unwrap();
            (list[0].status == OrderStatus::Shipped).then_some(())
        },
    )
    .await;
}

pub async fn the_report_names_the_shards_that_did_not_answer(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    for i in 0..10 {
        api.place(&format!("r{i}"), Some(if i < 6 { "eu" } else { "us" }), 2)
            .await;
    }
    let report = api
        .call(Some("admin"), Method::GET, "/api/v1/orders/report", None)
        .await
        .ok(200);
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["by_status"]["placed"], 10);
    assert_eq!(report["shards"].as_array().unwrap().len(), 4);
    let euros: i64 = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["totals"]["EUR"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(euros, 10 * 500);
    let eu_only = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/orders/report?region=eu",
            None,
        )
        .await
        .ok(200);
    assert_eq!(eu_only["by_status"]["placed"], 6);

    // A shard whose database does not answer (a ring that names it, by hand).
    let p = &api.backend.platform;
    let shards = ShardSet::new(
        p.db.clone(),
        Placement::Files(api.backend.config.data_dir.join("shards")),
        Default::default(),
        vec![],
    );
    shards
        .register(
            "us",
            "dead",
            Some("postgres://postgres@127.0.0.1:1/nothing"),
        )
        .await
        .unwrap();
    let rings = RingWatch::start(
        RingStore::new(p.db.clone()),
        p.broadcaster.clone(),
        Duration::from_millis(250),
        p.shutdown.clone(),
        &p.tasks,
    )
    .await
    .unwrap();
    let us = rings.current("us").unwrap();
    let with_dead = us.ring.with_shard("dead", 16).unwrap();
    rings
        .publish("us", us.version, &with_dead, "a dead shard")
        .await
        .unwrap();
    let report = eventually(
        Duration::from_secs(2),
        "the report asks the dead shard",
        || async {
            let r = api
                .call(
                    Some("admin"),
                    Method::GET,
                    "/api/v1/orders/report?timeout_ms=500",
                    None,
                )
                .await
                .ok(200);
            (r["complete"] == false).then_some(r)
        },
    )
    .await;
    let unanswered = report["unanswered"].as_array().unwrap();
    assert_eq!(unanswered.len(), 1, "{report}");
    assert_eq!(unanswered[0]["region"], "us");
    assert_eq!(unanswered[0]["shard"], "dead");
    assert_eq!(report["shards"].as_array().unwrap().len(), 4);
    assert_eq!(
        report["by_status"]["placed"], 10,
        "the other shards still count"
    );
}

pub async fn bad_input_is_a_named_4xx(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    let api = &api;
    let order = |body: serde_json::Value| async move {
        api.call(Some("erin"), Method::POST, "/api/v1/orders", Some(body))
            .await
    };
    let line = json!([{"sku": "A", "quantity": 1, "unit_price_cents": 1}]);
    let p = order(json!({"currency": "euro", "lines": line}))
        .await
        .problem(400);
    assert!(p.to_string().contains("currency"), "{p}");
    let p = order(json!({"currency": "EUR", "lines": []}))
        .await
        .problem(400);
    assert!(p.to_string().contains("lines"), "{p}");
    let p = order(
        json!({"currency": "EUR", "lines": [{"sku": "A", "quantity": 0, "unit_price_cents": 1}]}),
    )
    .await
    .problem(400);
    assert!(p.to_string().contains("lines[0].quantity"), "{p}");
    let p = order(
        json!({"currency": "EUR", "lines": [{"sku": "", "quantity": 1, "unit_price_cents": 1}]}),
    )
    .await
    .problem(400);
    assert!(p.to_string().contains("lines[0].sku"), "{p}");
    let p = order(json!({"region": "mars", "currency": "EUR", "lines": line}))
        .await
        .problem(422);
    assert!(p.to_string().contains("region"), "{p}");
    let p = order(json!({"currency": "EUR", "lines": line, "colour": "red"})).await;
    assert!(
        p.status == 400 || p.status == 422,
        "unknown field: {}",
        p.status
    );
    api.call(
        None,
        Method::POST,
        "/api/v1/orders",
        Some(json!({"currency": "EUR", "lines": line})),
    )
    .await
    .unauthorized();
    // Ids that are not orders, or of no configured region.
    api.call(Some("erin"), Method::GET, "/api/v1/orders/nope", None)
        .await
        .problem(404);
    api.call(
        Some("erin"),
        Method::GET,
        "/api/v1/orders/xx_0123456789abcdef0123456789abcdef",
        None,
    )
    .await
    .problem(404);
    api.call(Some("erin"), Method::GET, "/api/v1/orders?cursor=%%%", None)
        .await
        .problem(400);
    api.call(Some("erin"), Method::GET, "/api/v1/orders?limit=0", None)
        .await
        .problem(400);
    let placed = api.place("erin", None, 1).await;
    let id = placed["id"].as_str().unwrap();
    let p = api
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/{id}/status"),
            Some(json!({"status": "lost"})),
        )
        .await;
    assert!(
        p.status == 400 || p.status == 422,
        "bad status: {}",
        p.status
    );
    api.call(
        Some("admin"),
        Method::POST,
        "/api/v1/orders/eu_0123456789abcdef0123456789abcdef/status",
        Some(json!({"status": "paid"})),
    )
    .await
    .problem(404);
    // The shards are the admin's; bad moves are named.
    api.call(Some("erin"), Method::GET, "/api/v1/orders/shards", None)
        .await
        .problem(403);
    api.call(Some("erin"), Method::GET, "/api/v1/orders/report", None)
        .await
        .problem(403);
    let moves = |region: &'static str, body: serde_json::Value| async move {
        api.call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/shards/{region}/moves"),
            Some(body),
        )
        .await
    };
    let p = moves("eu", json!({"add": "Bad-Name"})).await.problem(400);
    assert!(p.to_string().contains("add"), "{p}");
    let p = moves("eu", json!({"add": "s3", "vnodes": 0}))
        .await
        .problem(400);
    assert!(p.to_string().contains("vnodes"), "{p}");
    moves("eu", json!({})).await.problem(422);
    moves("eu", json!({"add": "s3", "target": []}))
        .await
        .problem(422);
    moves("eu", json!({"target": []})).await.problem(422);
    let p = moves(
        "eu",
        json!({"target": [{"name": "s1", "vnodes": 8}, {"name": "s1", "vnodes": 9}]}),
    )
    .await
    .problem(422);
    assert!(p.to_string().contains("twice"), "{p}");
    moves(
        "eu",
        json!({"target": [{"name": "s1", "vnodes": 8}, {"name": "s9", "vnodes": 9}]}),
    )
    .await
    .problem(404);
    let p = moves("eu", json!({"add": "s1"})).await.problem(409);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("already has shard s1"),
        "{p}"
    );
    moves("mars", json!({"add": "s3"})).await.problem(404);
    api.call(
        Some("admin"),
        Method::GET,
        "/api/v1/orders/shards/eu/moves/mv-nope",
        None,
    )
    .await
    .problem(404);
    api.call(
        Some("admin"),
        Method::POST,
        "/api/v1/orders/shards/mars/verify",
        None,
    )
    .await
    .problem(404);
    api.call(
        Some("admin"),
        Method::GET,
        "/api/v1/orders/report?timeout_ms=1",
        None,
    )
    .await
    .problem(400);
    api.call(
        Some("admin"),
        Method::GET,
        "/api/v1/orders/report?region=mars",
        None,
    )
    .await
    .problem(404);
    // The target ring moves nothing: a conflict that says so.
    let eu = api.region("eu").await;
    let same: Vec<serde_json::Value> = eu["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"name": s["name"], "vnodes": s["vnodes"]}))
        .collect();
    let p = moves("eu", json!({"target": same})).await.problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("nothing to move"),
        "{p}"
    );
    // A configuration that cannot work is refused with its key.
    let backend = kind.start().await;
    let bad = OrdersSettings {
        default_region: "mars".to_owned(),
        ..settings()
    };
    let err = backend
        .start_system(&OrdersSystem, bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("default_region"), "{err}");
}

pub async fn an_order_made_elsewhere_is_stored_under_its_id(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    let id = "us_01930000000070008000000000000042";
    let body = json!({
        "user_id": "frank",
        "status": "delivered",
        "currency": "USD",
        "lines": [{"sku": "OLD-1", "quantity": 2, "unit_price_cents": 1000}],
        "created_at": 1_600_000_000_000_i64,
    });
    let path = format!("/api/v1/orders/{id}");
    let created = api
        .call(Some("admin"), Method::PUT, &path, Some(body.clone()))
        .await
        .ok(201);
    assert_eq!(created["region"], "us");
    assert_eq!(created["total_cents"], 2000);
    assert_eq!(created["status"], "delivered");
    // Again: replaced, not a second order.
    api.call(Some("admin"), Method::PUT, &path, Some(body.clone()))
        .await
        .ok(200);
    let read = api
        .call(Some("frank"), Method::GET, &path, None)
        .await
        .ok(200);
    assert_eq!(read["created_at"], 1_600_000_000_000_i64);
    assert_eq!(api.list_all("frank").await, vec![id.to_owned()]);
    // The id's region is frank's home now: his new orders go there, another region's id is
    // refused.
    let new = api.place("frank", None, 1).await;
    assert!(new["id"].as_str().unwrap().starts_with("us_"));
    let p = api
        .call(
            Some("admin"),
            Method::PUT,
            "/api/v1/orders/eu_01930000000070008000000000000043",
            Some(body.clone()),
        )
        .await
        .problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("home region is us"),
        "{p}"
    );
    let p = api
        .call(
            Some("admin"),
            Method::PUT,
            "/api/v1/orders/mars_01930000000070008000000000000043",
            Some(body.clone()),
        )
        .await
        .problem(404);
    assert!(p.to_string().contains("no region mars"), "{p}");
    api.call(
        Some("admin"),
        Method::PUT,
        "/api/v1/orders/us_xyz",
        Some(body.clone()),
    )
    .await
    .problem(400);
    let mut early = body.clone();
    early["created_at"] = json!(-1);
    let p = api
        .call(Some("admin"), Method::PUT, &path, Some(early))
        .await
        .problem(400);
    assert!(p.to_string().contains("created_at"), "{p}");
    let mut bad = body.clone();
    bad["user_id"] = json!("a/b");
    let p = api
        .call(Some("admin"), Method::PUT, &path, Some(bad))
        .await
        .problem(400);
    assert!(p.to_string().contains("user_id"), "{p}");
    api.call(Some("frank"), Method::PUT, &path, Some(body))
        .await
        .problem(403);
}
