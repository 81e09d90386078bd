//! Bus: what is specific to one adapter (the conformance suite runs on every adapter).

use std::time::Duration;

use praxis_infra::bus::{Bus, Event, HandlerError};
use praxis_infra::{Db, InfraError};
use praxis_testkit::backend::bus_options;
use praxis_testkit::conformance::bus::{DELIVERY, Seen, enqueue_committed};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_flush_times_out_when_a_group_is_stuck() -> anyhow::Result<()> {
    let t = praxis_testkit::embedded().await;
    let bus = &t.platform.bus;
    bus.subscribe("conf.stuck", "g", |_event: Event| async {
        Err(HandlerError::Transient("always down".into()))
    })?;
    bus.publish("conf.stuck", "k", b"x").await?;
    let flushed = bus.flush(Duration::from_millis(300)).await;
    assert!(
        matches!(flushed, Err(InfraError::Timeout(_))),
        "{flushed:?}"
    );
    assert_eq!(bus.lag("conf.stuck", "g").await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_processes_share_a_group() -> anyhow::Result<()> {
    let (a, b) = praxis_testkit::scaled_pair().await;
    let seen = Seen::default();
    a.platform
        .bus
        .subscribe("conf.shared", "workers", seen.handler())?;
    b.platform
        .bus
        .subscribe("conf.shared", "workers", seen.handler())?;
    let other = Seen::default();
    b.platform
        .bus
        .subscribe("conf.shared", "auditors", other.handler())?;
    let payloads: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
    for (i, p) in payloads.iter().enumerate() {
        let publisher = if i % 2 == 0 { &a } else { &b };
        publisher
            .platform
            .bus
            .publish("conf.shared", &format!("k{}", i % 3), p.as_bytes())
            .await?;
    }
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    seen.wait_for(&refs).await?;
    other.wait_for(&refs).await?;
    a.platform.bus.flush(DELIVERY).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_bus_on_postgres_runs_a_group_in_one_process_at_a_time() -> anyhow::Result<()> {
    let url = praxis_testkit::services::fresh_postgres_database().await;
    let db = Db::connect(&url).await?;
    let (ta, tb) = (CancellationToken::new(), CancellationToken::new());
    let a = Bus::embedded_with(db.clone(), ta.clone(), bus_options()).await?;
    let b = Bus::embedded_with(Db::connect(&url).await?, tb.clone(), bus_options()).await?;
    let seen = Seen::default();
    a.subscribe("conf.pg", "g", seen.handler())?;
    b.subscribe("conf.pg", "g", seen.handler())?;
    let payloads: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    let mut writers = Vec::new();
    for chunk in payloads.chunks(10) {
        let (bus, db) = (a.clone(), db.clone());
        let chunk: Vec<String> = chunk.to_vec();
        writers.push(tokio::spawn(async move {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            enqueue_committed(&bus, &db, "conf.pg", "k", &refs).await
        }));
    }
    for w in writers {
        w.await??;
    }
    let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    seen.wait_for(&refs).await?;
    let mut got = seen.payloads();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 40);
    assert_eq!(
        seen.payloads().len(),
        40,
        "no event handled twice while one process holds the group"
    );
    ta.cancel();
    tb.cancel();
    Ok(())
}
