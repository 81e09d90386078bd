//! Rebalancing through the admin routes: a shard added under a steady write and read load
//! (writes through one process, reads through another), an abort midway, and a dry run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::Method;
use parking_lot::Mutex;
use praxis_orders::OrdersSettings;
use praxis_testkit::{Kind, eventually};
use serde_json::{Value, json};

use crate::support::{Api, settings};

/// Places `n` orders in `eu`, for `users` users; the ids per user.
async fn fill(api: &Api, n: usize, users: usize) -> BTreeMap<String, Vec<String>> {
    let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..n {
        let user = format!("u{}", i % users);
        let order = api.place(&user, Some("eu"), 1).await;
        by_user
            .entry(user)
            .or_default()
            .push(order["id"].as_str().unwrap().to_owned());
    }
    by_user
}

/// Polls move `id` of `eu` until it reaches `state`.
async fn wait_for(api: &Api, id: &str, state: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("the move reaches {state}"),
        || async {
            let m = api
                .call(
                    Some("admin"),
                    Method::GET,
                    &format!("/api/v1/orders/shards/eu/moves/{id}"),
                    None,
                )
                .await
                .ok(200);
            (m["state"] == state).then_some(m)
        },
    )
    .await
}

/// The documents of each shard of `eu`, as `verify` counts them.
async fn documents(api: &Api) -> BTreeMap<String, i64> {
    let v = api.verify("eu").await;
    v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shard"].as_str().unwrap().to_owned(),
                s["documents"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub async fn a_shard_is_added_under_load_and_nothing_is_lost(kind: Kind) {
    // A throttled copy (a few seconds), and every read of the reader shadowed.
    let slow = || OrdersSettings {
        move_rate: 100,
        shadow_every: 1,
        ..settings()
    };
    let writer = Arc::new(Api::start(kind, slow()).await);
    let reader = Arc::new(writer.another(slow()).await);
    let mut by_user = fill(&writer, 300, 30).await;
    let before = writer.region("eu").await;
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    for (user, ids) in &by_user {
        for id in ids {
            acknowledged.lock().push((user.clone(), id.clone()));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Writes through one process: new orders, and status changes of acknowledged ones.
    let writes = {
        let (api, ack, stop) = (writer.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut refused, mut i) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let user = format!("u{}", i % 30);
                let body = json!({"currency": "EUR", "lines": [{"sku": "S", "quantity": 1, "unit_price_cents": 1}]});
                let r = api
                    .call(Some(&user), Method::POST, "/api/v1/orders", Some(body))
                    .await;
                match r.status.as_u16() {
                    201 => ack
                        .lock()
                        .push((user, r.json()["id"].as_str().unwrap().to_owned())),
                    503 => refused += 1,
                    s => panic!("a write failed with {s}: {}", r.text()),
                }
                i += 1;
            }
            refused
        })
    };
    // Reads through the other process: every acknowledged order, as the move goes on.
    let reads = {
        let (api, ack, stop) = (reader.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (user, id) = {
                    let ack = ack.lock();
                    ack[n * 7919 % ack.len()].clone()
                };
                let r = api
                    .call(
                        Some(&user),
                        Method::GET,
                        &format!("/api/v1/orders/{id}"),
                        None,
                    )
                    .await;
                assert_eq!(
                    r.status,
                    200,
                    "order {id} unreadable during the move: {}",
                    r.text()
                );
                n += 1;
            }
            n
        })
    };
    let begun = writer
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders/shards/eu/moves",
            Some(json!({"add": "s3"})),
        )
        .await
        .ok(202);
    assert_eq!(begun["state"], "copying");
    assert!(begun["total"].as_i64().unwrap() > 0);
    let id = begun["id"].as_str().unwrap().to_owned();
    let done = wait_for(&writer, &id, "done").await;
    assert!(done["copied"].as_i64().unwrap() >= begun["total"].as_i64().unwrap());
    // The reader's reads were repeated on the target while the move ran, and never differed.
    let shadow = eventually(
        Duration::from_secs(5),
        "the shadow reads are counted",
        || async {
            let m = writer
                .call(
                    Some("admin"),
                    Method::GET,
                    &format!("/api/v1/orders/shards/eu/moves/{id}"),
                    None,
                )
                .await
                .ok(200);
            (m["shadow"]["compared"].as_i64().unwrap() > 0).then(|| m["shadow"].clone())
        },
    )
    .await;
    assert_eq!(shadow["differed"], 0, "{shadow}");
    // The reading process routes by the new ring within a second.
    let version = before["version"].as_i64().unwrap() + 1;
    eventually(
        Duration::from_secs(1),
        "the other process sees the new ring",
        || async {
            let eu = reader.region("eu").await;
            (eu["version"] == version).then_some(())
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let refused = writes.await.unwrap();
    let read = reads.await.unwrap();
    assert!(read > 0, "the reader read during the move");

    // Nothing lost, nothing twice: every acknowledged order reads back, each document is on
    // exactly the shard the ring names, and each user's list holds exactly their orders.
    let acknowledged = acknowledged.lock().clone();
    for (user, id) in &acknowledged {
        reader
            .call(
                Some(user),
                Method::GET,
                &format!("/api/v1/orders/{id}"),
                None,
            )
            .await
            .ok(200);
    }
    by_user.clear();
    for (user, id) in &acknowledged {
        by_user.entry(user.clone()).or_default().push(id.clone());
    }
    // Entries an order's own request could not write (its user's shard switching) are the
    // index tail's: every list is exact within a moment.
    for (user, ids) in &by_user {
        let expected: BTreeSet<String> = ids.iter().cloned().collect();
        let listed = eventually(
            Duration::from_secs(10),
            "the list holds exactly the user's orders",
            || async {
                let listed: BTreeSet<String> = writer.list_all(user).await.into_iter().collect();
                (listed == expected).then_some(listed)
            },
        )
        .await;
        assert_eq!(listed.len(), ids.len(), "{user}'s list after the move");
    }
    let placed = writer.verify("eu").await;
    assert_eq!(placed["ok"], true, "{placed}");
    let total: i64 = placed["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["documents"].as_i64().unwrap())
        .sum();
    let users = by_user.len() as i64;
    assert_eq!(
        total,
        acknowledged.len() as i64 * 2,
        "orders and entries once each ({users} users)"
    );
    let eu = writer.region("eu").await;
    let orders: BTreeMap<String, i64> = eu["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["orders"].as_i64().unwrap(),
            )
        })
        .collect();
    let share = orders["s3"] as f64 / acknowledged.len() as f64;
    assert!(
        (0.2..=0.45).contains(&share),
        "the new shard holds about a third: {orders:?}"
    );
    assert!(eu["move"].is_null(), "no move in progress: {eu}");
    eprintln!(
        "{} orders, {read} reads during the move, {refused} writes refused (503) while fenced",
        acknowledged.len()
    );
}

pub async fn an_aborted_move_leaves_the_data_as_before(kind: Kind) {
    // A slow copy (200 documents/s), so the abort lands midway.
    let slow = OrdersSettings {
        move_rate: 200,
        ..settings()
    };
    let api = Api::start(kind, slow).await;
    fill(&api, 200, 20).await;
    let before_docs = documents(&api).await;
    let before_region = api.region("eu").await;
    let before_report = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/orders/report?region=eu",
            None,
        )
        .await
        .ok(200);
    let begun = api
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders/shards/eu/moves",
            Some(json!({"add": "s3"})),
        )
        .await
        .ok(202);
    let id = begun["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), "the copy has begun", || async {
        let m = api
            .call(
                Some("admin"),
                Method::GET,
                &format!("/api/v1/orders/shards/eu/moves/{id}"),
                None,
            )
            .await
            .ok(200);
        (m["copied"].as_i64().unwrap() > 0).then_some(())
    })
    .await;
    let aborted = api
        .call(
            Some("admin"),
            Method::POST,
            &format!("/api/v1/orders/shards/eu/moves/{id}/abort"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(aborted["state"], "aborted");
    assert!(
        aborted["copied"].as_i64().unwrap() < begun["total"].as_i64().unwrap(),
        "it stopped midway: {aborted}"
    );
    // Exactly as before: the ring, every shard's documents, the report; the new shard empty.
    let after_region = api.region("eu").await;
    assert_eq!(after_region["version"], before_region["version"]);
    assert_eq!(after_region["shards"], before_region["shards"]);
    assert!(after_region["move"].is_null());
    let mut after_docs = documents(&api).await;
    assert_eq!(
        after_docs.remove("s3"),
        Some(0),
        "the new shard holds nothing"
    );
    assert_eq!(after_docs, before_docs);
    let after_report = api
        .call(
            Some("admin"),
            Method::GET,
            "/api/v1/orders/report?region=eu",
            None,
        )
        .await
        .ok(200);
    assert_eq!(after_report, before_report);
    // The arcs that were moving take writes at once, and a second abort changes nothing.
    fill(&api, 20, 20).await;
    api.call(
        Some("admin"),
        Method::POST,
        &format!("/api/v1/orders/shards/eu/moves/{id}/abort"),
        None,
    )
    .await
    .ok(200);
    // A new move can begin.
    api.call(
        Some("admin"),
        Method::POST,
        "/api/v1/orders/shards/eu/moves",
        Some(json!({"add": "s4", "dry_run": true})),
    )
    .await
    .ok(200);
}

pub async fn a_dry_run_says_what_would_move_and_moves_nothing(kind: Kind) {
    let api = Api::start(kind, settings()).await;
    fill(&api, 100, 100).await;
    let before = documents(&api).await;
    let plan = api
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders/shards/eu/moves",
            Some(json!({"add": "s3", "dry_run": true})),
        )
        .await
        .ok(200);
    let share = plan["moving_share"].as_f64().unwrap();
    assert!(
        (0.2..=0.45).contains(&share),
        "about a third of the ring: {plan}"
    );
    let flows = plan["flows"].as_array().unwrap();
    assert!(
        !flows.is_empty() && flows.iter().all(|f| f["to"] == "s3"),
        "{plan}"
    );
    let documents_moving = plan["documents"].as_i64().unwrap();
    assert_eq!(
        flows
            .iter()
            .map(|f| f["documents"].as_i64().unwrap())
            .sum::<i64>(),
        documents_moving
    );
    assert!(
        (30..=100).contains(&documents_moving),
        "of 200 documents: {plan}"
    );
    assert_eq!(documents(&api).await, before);
    assert!(api.region("eu").await["move"].is_null());
    assert_eq!(
        api.region("eu").await["shards"].as_array().unwrap().len(),
        2
    );
}

pub async fn the_size_trigger_says_what_it_would_move_then_moves(kind: Kind) {
    // dry_run: the status says which shard it would add, and nothing moves.
    let dry = OrdersSettings {
        trigger: "dry_run".to_owned(),
        trigger_documents: 20,
        trigger_interval: Duration::from_millis(100),
        ..settings()
    };
    let api = Api::start(kind, dry).await;
    let before = documents(&api).await;
    assert!(api.region("eu").await["suggested"].is_null());
    fill(&api, 60, 60).await;
    let suggested = eventually(
        Duration::from_secs(10),
        "the trigger suggests a shard",
        || async {
            let eu = api.region("eu").await;
            (!eu["suggested"].is_null()).then(|| eu["suggested"].clone())
        },
    )
    .await;
    assert_eq!(
        suggested["target"].as_array().unwrap().len(),
        3,
        "{suggested}"
    );
    assert!(
        suggested["flows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["to"] == "s3")
    );
    let eu = api.region("eu").await;
    assert!(eu["move"].is_null());
    assert_eq!(eu["shards"].as_array().unwrap().len(), 2);
    assert!(
        api.region("us").await["suggested"].is_null(),
        "us is under its size"
    );
    assert_ne!(
        documents(&api).await,
        before,
        "orders were placed, none moved"
    );

    // on: a second process with the trigger on adds the shard.
    let on = OrdersSettings {
        trigger: "on".to_owned(),
        trigger_documents: 20,
        trigger_interval: Duration::from_millis(100),
        ..settings()
    };
    let other = api.another(on).await;
    eventually(Duration::from_secs(30), "the trigger adds s3", || async {
        let eu = other.region("eu").await;
        (eu["shards"].as_array().unwrap().len() == 3 && eu["move"].is_null()).then_some(())
    })
    .await;
    assert_eq!(other.verify("eu").await["ok"], true);
}

pub async fn a_move_whose_target_differs_is_not_switched(kind: Kind) {
    let slow = OrdersSettings {
        move_rate: 15,
        shadow_every: 1,
        ..settings()
    };
    let api = Api::start(kind, slow).await;
    let by_user = fill(&api, 200, 200).await;
    let before = documents(&api).await;
    let begun = api
        .call(
            Some("admin"),
            Method::POST,
            "/api/v1/orders/shards/eu/moves",
            Some(json!({"add": "s3"})),
        )
        .await
        .ok(202);
    let id = begun["id"].as_str().unwrap().to_owned();
    // An order already copied to s3, tampered with there (same version, another document).
    let shards = praxis_shard::ShardSet::new(
        api.backend.platform.db.clone(),
        praxis_shard::Placement::Files(api.backend.config.data_dir.join("shards")),
        Default::default(),
        vec![],
    );
    let s3 = shards.db("eu", "s3").await.unwrap();
    let tampered: String = eventually(Duration::from_secs(20), "an order reaches s3", || async {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM shard_docs WHERE collection = 'orders' LIMIT 1",
        )
        .fetch_optional(s3.pool())
        .await
        .unwrap()
    })
    .await;
    sqlx::query("UPDATE shard_docs SET doc = '{\"tampered\": true}' WHERE id = $1")
        .bind(&tampered)
        .execute(s3.pool())
        .await
        .unwrap();
    let owner = by_user
        .iter()
        .find(|(_, ids)| ids.contains(&tampered))
        .map(|(u, _)| u.clone())
        .unwrap();
    // Live reads of it are shadowed until the difference is counted.
    eventually(
        Duration::from_secs(10),
        "a shadow read sees the difference",
        || async {
            api.call(
                Some(&owner),
                Method::GET,
                &format!("/api/v1/orders/{tampered}"),
                None,
            )
            .await
            .ok(200);
            let m = api
                .call(
                    Some("admin"),
                    Method::GET,
                    &format!("/api/v1/orders/shards/eu/moves/{id}"),
                    None,
                )
                .await
                .ok(200);
            (m["shadow"]["differed"].as_i64().unwrap() > 0).then_some(())
        },
    )
    .await;
    // The move stops before its switch, saying why; the ring stays; an abort restores all.
    let stopped = eventually(
        Duration::from_secs(60),
        "the move refuses to switch",
        || async {
            let m = api
                .call(
                    Some("admin"),
                    Method::GET,
                    &format!("/api/v1/orders/shards/eu/moves/{id}"),
                    None,
                )
                .await
                .ok(200);
            m["error"]
                .as_str()
                .is_some_and(|e| e.contains("shadow"))
                .then_some(m)
        },
    )
    .await;
    assert_ne!(stopped["state"], "switched", "{stopped}");
    assert_ne!(stopped["state"], "done", "{stopped}");
    assert_eq!(
        api.region("eu").await["shards"].as_array().unwrap().len(),
        2
    );
    api.call(
        Some("admin"),
        Method::POST,
        &format!("/api/v1/orders/shards/eu/moves/{id}/abort"),
        None,
    )
    .await
    .ok(200);
    let mut after = documents(&api).await;
    assert_eq!(after.remove("s3"), Some(0));
    assert_eq!(after, before);
    api.call(
        Some(&owner),
        Method::GET,
        &format!("/api/v1/orders/{tampered}"),
        None,
    )
    .await
    .ok(200);
}
