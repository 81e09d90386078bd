//! Retention: old messages whose deliveries are all final are pruned with their deliveries
//! and attempts (inbox rows stay); queued, sending, young and idempotency-protected ones are
//! kept. Each case runs on every backend. The pruner is driven with a `now` in the future
//! rather than by waiting.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use praxis_notify::NotifySettings;
use praxis_notify::domain::model::now_ms;
use praxis_notify::store::Store;
use praxis_notify::workers::retention::{Pruned, Pruner};

use crate::receiver::{Mode, Receiver};
use crate::support::{DEADLINE, Harness, Kind, SECRET, eventually, settings};

praxis_testkit::backend_matrix!(crate::retention: [
    old_final_messages_are_pruned_with_their_rows,
    the_retention_task_prunes_in_the_background,
    expired_dedupe_rows_are_pruned,
]);

const HOUR_MS: i64 = 3_600_000;

fn template() -> Value {
    json!({
        "webhook": {"text": "event {{ n }}"},
        "in_app": {"subject": "s {{ n }}", "text": "t {{ n }}"}
    })
}

async fn count(h: &Harness, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id)
        .fetch_one(h.platform.db.pool())
        .await
        .expect("count")
}

/// Rows of a message: (messages, deliveries, attempts, inbox).
async fn rows(h: &Harness, id: &str) -> (i64, i64, i64, i64) {
    (
        count(h, "SELECT COUNT(*) FROM notify_messages WHERE id = $1", id).await,
        count(
            h,
            "SELECT COUNT(*) FROM notify_deliveries WHERE message_id = $1",
            id,
        )
        .await,
        count(
            h,
            "SELECT COUNT(*) FROM notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id WHERE d.message_id = $1",
            id,
        )
        .await,
        count(
            h,
            "SELECT COUNT(*) FROM notify_inbox WHERE message_id = $1",
            id,
        )
        .await,
    )
}

/// The ids of a message's deliveries.
fn delivery_ids(m: &Value) -> Vec<String> {
    m["deliveries"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .filter_map(|d| d["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Puts every delivery of `message` in `state` (an attempt in flight looks like one whose
/// lease runs for another day, so no dispatcher takes it over).
async fn set_state(h: &Harness, message: &str, state: &str, digest_of: Option<&str>) {
    sqlx::query(
        "UPDATE notify_deliveries SET state = $1, digest_of = $2, next_attempt_at = $3, \
         lease_until = $3 WHERE message_id = $4",
    )
    .bind(state)
    .bind(digest_of)
    .bind(now_ms() + 24 * HOUR_MS)
    .bind(message)
    .execute(h.platform.db.pool())
    .await
    .expect("update");
}

async fn old_final_messages_are_pruned_with_their_rows(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    let gone = Receiver::start(SECRET).await;
    gone.set_mode(Mode::Status(410));
    h.template("t", template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/h")}))
        .await;
    let send = |n: i64| json!({"to": "u1", "template": "t", "data": {"n": n}});

    let delivered = h.notify(send(1)).await;
    let failed = h
        .notify(json!({"to": {"webhook": gone.url("/h")}, "template": "t", "data": {"n": 2}}))
        .await;
    let keyed = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 3}, "idempotency_key": "k-1"}))
        .await;
    let tomorrow = praxis_notify::domain::model::rfc3339(now_ms() + 24 * HOUR_MS);
    let scheduled = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 4}, "send_at": tomorrow}))
        .await;
    let sending = h.notify(send(5)).await;
    let digest_open = h.notify(send(6)).await;
    let digest_done = h.notify(send(7)).await;

    let delivered_view = h.wait_state(&delivered, "delivered").await;
    h.wait_state(&failed, "failed").await;
    let keyed_view = h.wait_state(&keyed, "delivered").await;
    for id in [&sending, &digest_open, &digest_done] {
        h.wait_state(id, "delivered").await;
    }
    let scheduled_view = eventually(DEADLINE, "the scheduled message is expanded", || async {
        let m = h.message(&scheduled).await;
        (m["deliveries"].as_array().is_some_and(|d| !d.is_empty())).then_some(m)
    })
    .await;
    // States the pipeline reaches without a test hook: an attempt in flight, and digested
    // deliveries whose batch is still queued (the scheduled one) or already sent.
    set_state(&h, &sending, "sending", None).await;
    let open_batch = delivery_ids(&scheduled_view)[0].clone();
    set_state(&h, &digest_open, "digested", Some(&open_batch)).await;
    let sent_batch = delivery_ids(&keyed_view)[0].clone();
    set_state(&h, &digest_done, "digested", Some(&sent_batch)).await;

    let before = rows(&h, &delivered).await;
    assert_eq!(before.0, 1);
    assert!(
        before.1 >= 2 && before.2 >= 2,
        "webhook and in-app: {before:?}"
    );
    assert_eq!(before.3, 1, "one inbox row");

    let store = Store::new(h.platform.db.clone());
    let pruner = Pruner::new(
        store,
        Duration::from_secs(3600),
        Duration::from_secs(24 * 3600),
    )
    .with_batch(2);
    let shutdown = CancellationToken::new();
    // Everything is young.
    assert_eq!(
        pruner.run_once(now_ms(), &shutdown).await.expect("prune"),
        Pruned::default()
    );

    // Two hours later: the final ones without an idempotency key go, in batches of two.
    let pruned = pruner
        .run_once(now_ms() + 2 * HOUR_MS, &shutdown)
        .await
        .expect("prune");
    assert_eq!(pruned.messages, 3, "{pruned:?}");
    assert!(pruned.deliveries >= 3 && pruned.attempts >= 3, "{pruned:?}");
    for id in [&delivered, &failed, &digest_done] {
        let (m, d, a, _) = rows(&h, id).await;
        assert_eq!((m, d, a), (0, 0, 0), "{id} pruned with its rows");
        h.call(Method::GET, &format!("/api/v1/notify/messages/{id}"), None)
            .await
            .problem(404);
    }
    for d in delivery_ids(&delivered_view) {
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM notify_attempts WHERE delivery_id = $1",
                &d
            )
            .await,
            0
        );
    }
    assert_eq!(rows(&h, &delivered).await.3, 1, "the inbox row stays");
    for id in [&keyed, &scheduled, &sending, &digest_open] {
        let (m, d, ..) = rows(&h, id).await;
        assert!(m == 1 && d >= 1, "{id} kept");
        h.message(id).await;
    }

    // Past the idempotency key's lifetime the keyed one goes too; the others stay.
    let pruned = pruner
        .run_once(now_ms() + 25 * HOUR_MS, &shutdown)
        .await
        .expect("prune");
    assert_eq!(pruned.messages, 1, "{pruned:?}");
    assert_eq!(rows(&h, &keyed).await.0, 0);
    for id in [&scheduled, &sending, &digest_open] {
        assert_eq!(rows(&h, id).await.0, 1, "{id} kept");
    }

    // Zero retention keeps everything.
    let keep = Pruner::new(
        Store::new(h.platform.db.clone()),
        Duration::ZERO,
        Duration::ZERO,
    );
    assert!(!keep.is_enabled());
    set_state(&h, &sending, "delivered", None).await;
    assert_eq!(
        keep.run_once(now_ms() + 1000 * HOUR_MS, &shutdown)
            .await
            .expect("prune"),
        Pruned::default()
    );
    assert_eq!(rows(&h, &sending).await.0, 1);
}

async fn the_retention_task_prunes_in_the_background(kind: Kind) {
    let h = Harness::start(
        kind,
        NotifySettings {
            retention: Duration::from_millis(1),
            retention_interval: Duration::from_millis(50),
            ..settings()
        },
    )
    .await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", json!({"webhook": {"text": "event {{ n }}"}}))
        .await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/h")}))
        .await;
    let tomorrow = praxis_notify::domain::model::rfc3339(now_ms() + 24 * HOUR_MS);
    let scheduled = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}, "send_at": tomorrow}))
        .await;
    let sent = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 2}}))
        .await;
    eventually(DEADLINE, "the sent message is pruned", || async {
        let r = h
            .call(
                Method::GET,
                &format!("/api/v1/notify/messages/{sent}"),
                None,
            )
            .await;
        (r.status.as_u16() == 404).then_some(())
    })
    .await;
    assert_eq!(rx.accepted().len(), 1, "delivered before it was pruned");
    // The scheduled message survives; its delivery rows come from the bus consumer's
    // expansion, which on the scaled backend may still be on its way.
    eventually(
        DEADLINE,
        "the scheduled message is kept, queued",
        || async {
            let m = h.message(&scheduled).await;
            (m["deliveries"][0]["state"] == "queued").then_some(())
        },
    )
    .await;
}

/// A `notify_dedupe` row older than the longest dedupe window (7 days) can no longer match and
/// is deleted; a young one stays.
async fn expired_dedupe_rows_are_pruned(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.template("t", template()).await;
    h.subscriber("u1", json!({"email": "ada@example.com"}))
        .await;
    let id = h
        .notify(json!({"to": "u1", "template": "t", "channels": ["in_app"], "data": {"n": 1}, "dedupe_window": 60}))
        .await;
    let rows = || {
        count(
            &h,
            "SELECT COUNT(*) FROM notify_dedupe WHERE message_id = $1",
            &id,
        )
    };
    assert_eq!(
        rows().await,
        1,
        "the send with a dedupe window left its row"
    );
    let pruner = Pruner::new(
        Store::new(h.platform.db.clone()),
        Duration::from_secs(3600),
        Duration::from_secs(24 * 3600),
    );
    assert_eq!(pruner.prune_dedupe(now_ms()).await.expect("prune"), 0);
    assert_eq!(rows().await, 1, "a young row stays");
    let eight_days = 8 * 24 * HOUR_MS;
    assert!(
        pruner
            .prune_dedupe(now_ms() + eight_days)
            .await
            .expect("prune")
            >= 1
    );
    assert_eq!(rows().await, 0, "an expired row is gone");
}
