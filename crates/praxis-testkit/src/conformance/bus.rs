//! Bus port: outbox atomicity, delivery to every group, at-least-once redelivery, dead
//! letters, restart, lag and flush, the same on every adapter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use praxis_infra::bus::{Bus, ConsumerOptions, Event, HandlerError};
use praxis_infra::trace::{self, TraceContext};
use praxis_infra::{Db, InfraError};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::backend::{Services, TestBackend};
use crate::eventually;

/// How long a delivery may take before a case fails.
pub const DELIVERY: Duration = Duration::from_secs(15);

/// Runs the bus port's cases on the bus of `services`: the outbox bus (no NATS) or JetStream
/// (NATS), on SQLite or PostgreSQL.
pub async fn suite(services: Services) -> anyhow::Result<()> {
    cases!(
        services;
        rolled_back_enqueue_publishes_nothing,
        committed_events_reach_every_group_in_order,
        transient_errors_are_redelivered,
        permanent_errors_are_dead_lettered,
        events_survive_a_restart,
        lag_is_reported,
        flush_waits_for_dispatch,
        names_are_checked,
        similar_topic_names_stay_apart,
        concurrent_consumers_handle_events_at_once,
        events_carry_the_trace_of_the_work_that_enqueued_them,
    )
}

/// Events a handler has seen, in order.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<Event>>>);

impl Seen {
    /// A handler that records each event.
    pub fn handler(
        &self,
    ) -> impl Fn(Event) -> futures::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
    {
        let seen = self.clone();
        move |event| {
            seen.0.lock().push(event);
            futures::future::ready(Ok(()))
        }
    }

    /// The payloads seen, as text.
    pub fn payloads(&self) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
            .collect()
    }

    /// How many times `payload` was seen.
    pub fn count(&self, payload: &str) -> usize {
        self.payloads()
            .iter()
            .filter(|p| p.as_str() == payload)
            .count()
    }

    /// Waits until every one of `payloads` was seen.
    pub async fn wait_for(&self, payloads: &[&str]) -> anyhow::Result<()> {
        eventually(DELIVERY, &format!("delivery of {payloads:?}"), || async {
            let seen = self.payloads();
            payloads
                .iter()
                .all(|p| seen.iter().any(|s| s == p))
                .then_some(())
        })
        .await;
        Ok(())
    }
}

/// Enqueues `payloads` in one committed transaction.
pub async fn enqueue_committed(
    bus: &Bus,
    db: &Db,
    topic: &str,
    key: &str,
    payloads: &[&str],
) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    for p in payloads {
        bus.enqueue(&mut tx, topic, key, p.as_bytes()).await?;
    }
    tx.commit().await?;
    bus.notify_committed();
    Ok(())
}

async fn rolled_back_enqueue_publishes_nothing(t: TestBackend) -> anyhow::Result<()> {
    let (bus, db) = (&t.platform.bus, &t.platform.db);
    let seen = Seen::default();
    bus.subscribe("conf.orders", "audit", seen.handler())?;
    {
        let mut conn = db.pool().acquire().await?;
        let mut tx = conn.begin().await?;
        bus.enqueue(&mut tx, "conf.orders", "o1", b"rolled-back")
            .await?;
        tx.rollback().await?;
    }
    bus.publish("conf.orders", "o2", b"marker").await?;
    seen.wait_for(&["marker"]).await?;
    bus.flush(DELIVERY).await?;
    assert_eq!(seen.count("rolled-back"), 0);
    Ok(())
}

async fn committed_events_reach_every_group_in_order(t: TestBackend) -> anyhow::Result<()> {
    let (bus, db) = (&t.platform.bus, &t.platform.db);
    let (g1, g2) = (Seen::default(), Seen::default());
    bus.subscribe("conf.links", "counter", g1.handler())?;
    bus.subscribe("conf.links", "indexer", g2.handler())?;
    let payloads: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    enqueue_committed(bus, db, "conf.links", "same-key", &refs[..10]).await?;
    enqueue_committed(bus, db, "conf.links", "same-key", &refs[10..]).await?;
    g1.wait_for(&refs).await?;
    g2.wait_for(&refs).await?;
    assert_eq!(
        g1.payloads(),
        payloads,
        "group 1 saw every event once, in order"
    );
    assert_eq!(
        g2.payloads(),
        payloads,
        "group 2 saw every event once, in order"
    );
    let first = g1.0.lock()[0].clone();
    assert_eq!(
        (first.topic.as_str(), first.key.as_str()),
        ("conf.links", "same-key")
    );
    assert!(first.created_at_ms > 1_700_000_000_000);
    Ok(())
}

async fn transient_errors_are_redelivered(t: TestBackend) -> anyhow::Result<()> {
    let bus = &t.platform.bus;
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let done = Seen::default();
    {
        let (attempts, done) = (attempts.clone(), done.clone());
        bus.subscribe("conf.mail", "sender", move |event: Event| {
            let (attempts, done) = (attempts.clone(), done.clone());
            async move {
                let payload = String::from_utf8_lossy(&event.payload).into_owned();
                let n = {
                    let mut a = attempts.lock();
                    let n = a.entry(payload.clone()).or_default();
                    *n += 1;
                    *n
                };
                if payload == "flaky" && n <= 2 {
                    return Err(HandlerError::Transient(format!("smtp down (attempt {n})")));
                }
                done.0.lock().push(event);
                Ok(())
            }
        })?;
    }
    bus.publish("conf.mail", "k", b"flaky").await?;
    bus.publish("conf.mail", "k", b"after").await?;
    done.wait_for(&["flaky", "after"]).await?;
    assert_eq!(
        attempts.lock().get("flaky"),
        Some(&3),
        "failed twice, then delivered again"
    );
    assert_eq!(done.count("flaky"), 1);
    Ok(())
}

async fn permanent_errors_are_dead_lettered(t: TestBackend) -> anyhow::Result<()> {
    let (bus, db) = (&t.platform.bus, &t.platform.db);
    let seen = Seen::default();
    {
        let seen = seen.clone();
        bus.subscribe("conf.import", "parser", move |event: Event| {
            let seen = seen.clone();
            async move {
                if event.payload == b"garbage" {
                    return Err(HandlerError::Permanent("not json".into()));
                }
                seen.0.lock().push(event);
                Ok(())
            }
        })?;
    }
    let bad = bus.publish("conf.import", "k", b"garbage").await?;
    bus.publish("conf.import", "k", b"good").await?;
    seen.wait_for(&["good"]).await?;
    eventually(DELIVERY, "the dead letter row", || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM praxis_bus_dead_letters WHERE id = $1 AND grp = $2 AND error = $3")
            .bind(bad.to_string())
            .bind("parser")
            .bind("not json")
            .fetch_one(db.pool())
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    Ok(())
}

async fn events_survive_a_restart(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    let first_token = CancellationToken::new();
    let first = t.new_bus(first_token.clone()).await?;
    let before = Seen::default();
    first.subscribe("conf.restart", "worker", before.handler())?;
    first.publish("conf.restart", "k", b"e1").await?;
    before.wait_for(&["e1"]).await?;

    // "Crash": stop the process, then commit more events while it is down.
    first_token.cancel();
    assert!(
        first.join(Duration::from_secs(10)).await,
        "bus tasks stopped"
    );
    enqueue_committed(&first, db, "conf.restart", "k", &["e2", "e3"]).await?;
    drop(first);

    let second_token = CancellationToken::new();
    let second = t.new_bus(second_token.clone()).await?;
    let after = Seen::default();
    second.subscribe("conf.restart", "worker", after.handler())?;
    after.wait_for(&["e2", "e3"]).await?;
    second.flush(DELIVERY).await?;
    assert_eq!(
        after.count("e1"),
        0,
        "handled events are not redelivered after a clean stop"
    );
    second_token.cancel();
    second.join(Duration::from_secs(10)).await;
    Ok(())
}

async fn lag_is_reported(t: TestBackend) -> anyhow::Result<()> {
    let bus = &t.platform.bus;
    for i in 0..3 {
        bus.publish("conf.lag", "k", format!("e{i}").as_bytes())
            .await?;
    }
    bus.flush(DELIVERY).await?;
    // A group that has not consumed anything yet lags by every retained event.
    eventually(DELIVERY, "lag of 3", || async {
        (bus.lag("conf.lag", "late").await.ok()? == 3).then_some(())
    })
    .await;
    let seen = Seen::default();
    bus.subscribe("conf.lag", "late", seen.handler())?;
    seen.wait_for(&["e0", "e1", "e2"]).await?;
    eventually(DELIVERY, "lag back to 0", || async {
        (bus.lag("conf.lag", "late").await.ok()? == 0).then_some(())
    })
    .await;
    Ok(())
}

async fn flush_waits_for_dispatch(t: TestBackend) -> anyhow::Result<()> {
    let (bus, db) = (&t.platform.bus, &t.platform.db);
    let seen = Seen::default();
    {
        let seen = seen.clone();
        bus.subscribe("conf.flush", "slow", move |event: Event| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                seen.0.lock().push(event);
                Ok(())
            }
        })?;
    }
    let payloads: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    enqueue_committed(bus, db, "conf.flush", "k", &refs).await?;
    bus.flush(DELIVERY).await?;
    let outbox: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM praxis_outbox WHERE topic = 'conf.flush'")
            .fetch_one(db.pool())
            .await?;
    match bus.kind() {
        // Embedded: flushed = handled by every subscribed group.
        "embedded" => assert_eq!(seen.payloads().len(), 10),
        // JetStream: flushed = relayed; the outbox is empty.
        _ => assert_eq!(outbox, 0),
    }
    seen.wait_for(&refs).await?;
    Ok(())
}

async fn names_are_checked(t: TestBackend) -> anyhow::Result<()> {
    let bus = &t.platform.bus;
    let bad = bus.publish("bad topic", "k", b"x").await;
    assert!(matches!(bad, Err(InfraError::Config(_))), "{bad:?}");
    assert!(
        bus.subscribe("conf.names", "bad group", Seen::default().handler())
            .is_err()
    );
    bus.subscribe("conf.names", "g", Seen::default().handler())?;
    let twice = bus.subscribe("conf.names", "g", Seen::default().handler());
    assert!(
        matches!(twice, Err(InfraError::Config(_))),
        "one consumer per group per process"
    );
    Ok(())
}

async fn similar_topic_names_stay_apart(t: TestBackend) -> anyhow::Result<()> {
    // "conf.x" and "conf_x" differ only where JetStream names need mapping: they must not
    // share a stream or a consumer, and each topic's group sees only its own events.
    let bus = &t.platform.bus;
    let (dotted, underscored) = (Seen::default(), Seen::default());
    bus.subscribe("conf.x", "g", dotted.handler())?;
    bus.subscribe("conf_x", "g", underscored.handler())?;
    bus.publish("conf.x", "k", b"dot").await?;
    bus.publish("conf_x", "k", b"underscore").await?;
    dotted.wait_for(&["dot"]).await?;
    underscored.wait_for(&["underscore"]).await?;
    bus.flush(DELIVERY).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dotted.payloads(), ["dot"]);
    assert_eq!(underscored.payloads(), ["underscore"]);
    Ok(())
}

/// A group subscribed with concurrency 4 runs four handlers at once: each handler waits at a
/// barrier of four, which a sequential consumer would never pass (each wait would time out).
async fn concurrent_consumers_handle_events_at_once(t: TestBackend) -> anyhow::Result<()> {
    let (bus, db) = (&t.platform.bus, &t.platform.db);
    let zero = bus.subscribe_with(
        "conf.par",
        "zero",
        ConsumerOptions { concurrency: 0 },
        Seen::default().handler(),
    );
    assert!(
        matches!(&zero, Err(InfraError::Config(m)) if m.contains("concurrency")),
        "{zero:?}"
    );
    let seen = Seen::default();
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let timed_out = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = {
        let (seen, barrier, timed_out) = (seen.clone(), barrier.clone(), timed_out.clone());
        move |event: Event| {
            let (seen, barrier, timed_out) = (seen.clone(), barrier.clone(), timed_out.clone());
            async move {
                if tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                    .await
                    .is_err()
                {
                    timed_out.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                seen.0.lock().push(event);
                Ok(())
            }
        }
    };
    bus.subscribe_with(
        "conf.par",
        "parallel",
        ConsumerOptions { concurrency: 4 },
        handler,
    )?;
    let payloads: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    enqueue_committed(bus, db, "conf.par", "k", &refs).await?;
    seen.wait_for(&refs).await?;
    bus.flush(DELIVERY).await?;
    assert_eq!(
        timed_out.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "every handler met three others at the barrier"
    );
    let mut got = seen.payloads();
    got.sort();
    assert_eq!(got, payloads, "each event handled once");
    Ok(())
}

async fn events_carry_the_trace_of_the_work_that_enqueued_them(
    t: TestBackend,
) -> anyhow::Result<()> {
    let bus = &t.platform.bus;
    // (payload, the event's trace, the trace context current in the handler)
    type Handled = (String, Option<TraceContext>, Option<TraceContext>);
    let handled: Arc<Mutex<Vec<Handled>>> = Arc::default();
    let log = handled.clone();
    bus.subscribe("conf.traced", "g", move |event: Event| {
        let payload = String::from_utf8_lossy(&event.payload).into_owned();
        log.lock().push((payload, event.trace, trace::current()));
        futures::future::ready(Ok(()))
    })?;
    let parent = TraceContext::new_root(true);
    trace::in_scope(parent, bus.publish("conf.traced", "k", b"traced")).await?;
    bus.publish("conf.traced", "k", b"untraced").await?;
    eventually(DELIVERY, "both events handled", || async {
        (handled.lock().len() >= 2).then_some(())
    })
    .await;
    let handled = handled.lock().clone();
    let traced = handled.iter().find(|h| h.0 == "traced").expect("handled");
    assert_eq!(
        traced.1,
        Some(parent),
        "the event carries its enqueuer's context"
    );
    let inside = traced.2.expect("the handler runs in a trace");
    assert_eq!(inside.trace_id(), parent.trace_id(), "same trace");
    assert_ne!(inside.span_id(), parent.span_id(), "a child span");
    assert!(inside.sampled());
    let untraced = handled.iter().find(|h| h.0 == "untraced").expect("handled");
    assert_eq!(untraced.1, None);
    let own = untraced.2.expect("a handler always runs in a trace");
    assert_ne!(own.trace_id(), parent.trace_id(), "a new trace");
    Ok(())
}
