//! A rebalance from 2 to 3 shards under a steady load, measured: how long the move takes for
//! N documents (orders of about `SIZE` bytes), and the write and read latencies before and
//! during it. Checks at the end that no acknowledged write was lost and each document is on
//! one shard.
//!
//! ```sh
//! cargo run --release -p praxis-shard --example rebalance -- sqlite /tmp/rebalance 100000 200
//! cargo run --release -p praxis-shard --example rebalance -- postgres postgres://postgres@127.0.0.1:5432 100000 200
//! ```
//!
//! Arguments: the backend (`sqlite` with a directory to create the control and shard files
//! in, or `postgres` with an admin URL on which it creates four fresh databases), the number
//! of documents to seed, and the load in writes/s (as many reads/s beside them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use praxis_infra::Db;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::sql::DbOptions;
use praxis_kit::ring::Ring;
use praxis_shard::{Docs, MoveState, Placement, Rebalancer, RingStore, RingWatch, ShardSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bytes of each order document (the issue's estimate: 4 KB).
const SIZE: usize = 4_096;
const SHARDS: [&str; 3] = ["s0", "s1", "s2"];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<24} n {:>7}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
}

/// The control database and the three shards' URLs.
async fn places(backend: &str, at: &str) -> (String, Vec<String>) {
    match backend {
        "sqlite" => {
            let _ = std::fs::remove_dir_all(at);
            std::fs::create_dir_all(at).unwrap();
            let control = format!("sqlite://{at}/control.db?mode=rwc");
            (control, Vec::new())
        }
        "postgres" => {
            let admin = Db::connect(&format!("{at}/postgres")).await.unwrap();
            let mut urls = Vec::new();
            for name in [
                "rebalance_ctl",
                "rebalance_s0",
                "rebalance_s1",
                "rebalance_s2",
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(admin.pool())
                .await
                .unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(admin.pool())
                    .await
                    .unwrap();
                urls.push(format!("{at}/{name}"));
            }
            let control = urls.remove(0);
            (control, urls)
        }
        other => panic!("backend {other:?}: sqlite or postgres"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).expect("sqlite DIR or postgres ADMIN_URL");
    let at = args.get(2).expect("a directory or an admin URL");
    let n: usize = args.get(3).map_or(100_000, |a| a.parse().unwrap());
    let rate: u64 = args.get(4).map_or(200, |a| a.parse().unwrap());
    let (control_url, shard_urls) = places(backend, at).await;
    let control = Db::connect(&control_url).await.unwrap();
    control.migrate(&praxis_shard::MIGRATIONS).await.unwrap();
    let shards = ShardSet::new(
        control.clone(),
        Placement::Files(std::path::PathBuf::from(at).join("shards")),
        DbOptions::default(),
        vec![&praxis_shard::DOC_MIGRATIONS],
    );
    for (i, s) in SHARDS.iter().enumerate() {
        shards
            .register("eu", s, shard_urls.get(i).map(String::as_str))
            .await
            .unwrap();
    }
    let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
    let rings = RingWatch::start(
        RingStore::new(control.clone()),
        Broadcaster::local(),
        Duration::from_millis(250),
        shutdown.clone(),
        &tasks,
    )
    .await
    .unwrap();
    let two = Ring::uniform("s", 2, 128).unwrap();
    rings.publish("eu", 0, &two, "created").await.unwrap();
    let docs = Docs::new(rings.clone(), shards.clone());
    let body: Arc<str> = "x".repeat(SIZE - 40).into();
    let doc = move |i: usize, w: u64| format!(r#"{{"order": {i}, "write": {w}, "pad": "{body}"}}"#);

    // Seed, 8 writers at once.
    let seeded = Instant::now();
    let mut seeders = Vec::new();
    for part in 0..8 {
        let (docs, doc) = (docs.clone(), doc.clone());
        seeders.push(tokio::spawn(async move {
            for i in (part..n).step_by(8) {
                docs.put("eu", "orders", &format!("o-{i}"), &doc(i, 0))
                    .await
                    .unwrap();
            }
        }));
    }
    for s in seeders {
        s.await.unwrap();
    }
    println!(
        "{backend}: seeded {n} orders of {SIZE} B in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    // The load: `rate` writes/s (updates of seeded orders) and as many reads/s, open loop.
    let moving = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    type Lat = Arc<Mutex<(Vec<Duration>, Vec<Duration>)>>;
    let (writes, reads): (Lat, Lat) = (Arc::default(), Arc::default());
    let acked: Arc<Mutex<std::collections::HashMap<usize, u64>>> = Arc::default();
    let mut load = Vec::new();
    for kind in ["write", "read"] {
        let (docs, doc, moving, stop) = (docs.clone(), doc.clone(), moving.clone(), stop.clone());
        let lat = if kind == "write" {
            writes.clone()
        } else {
            reads.clone()
        };
        let acked = acked.clone();
        load.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            let start = tokio::time::Instant::now();
            let mut k: u64 = 0;
            let mut inflight = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                tokio::time::sleep_until(start + period * k as u32).await;
                let i = (k as usize * 7919) % n;
                let (docs, doc, moving, lat, acked) = (
                    docs.clone(),
                    doc.clone(),
                    moving.clone(),
                    lat.clone(),
                    acked.clone(),
                );
                let due = Instant::now();
                inflight.push(tokio::spawn(async move {
                    let during = moving.load(Ordering::Relaxed);
                    let ok = if kind == "write" {
                        let r = docs
                            .put("eu", "orders", &format!("o-{i}"), &doc(i, k))
                            .await;
                        if r.is_ok() {
                            acked.lock().insert(i, k);
                        }
                        r.is_ok()
                    } else {
                        matches!(
                            docs.get("eu", "orders", &format!("o-{i}")).await,
                            Ok(Some(_))
                        )
                    };
                    assert!(ok, "{kind} of o-{i} failed");
                    let mut l = lat.lock();
                    if during { &mut l.1 } else { &mut l.0 }.push(due.elapsed());
                }));
            }
            for t in inflight {
                t.await.unwrap();
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The move.
    let rebalancer = Rebalancer::new(
        control.clone(),
        rings.clone(),
        shards.clone(),
        "bench",
        Duration::from_secs(30),
        500,
    );
    let three = two.with_shard("s2", 128).unwrap();
    moving.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let status = rebalancer.begin("eu", &three, "add s2").await.unwrap();
    let fenced = rebalancer
        .run_until(&status.id, MoveState::Fenced)
        .await
        .unwrap();
    let copy_time = began.elapsed();
    let switched = rebalancer
        .run_until(&status.id, MoveState::Switched)
        .await
        .unwrap();
    let switch_time = began.elapsed() - copy_time;
    moving.store(false, Ordering::Relaxed);
    let done = rebalancer.run(&status.id).await.unwrap();
    assert_eq!(done.state, MoveState::Done);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let total = began.elapsed();
    println!(
        "move: {} of {} docs in the moving arcs; copy+tail {:.1} s ({:.0} docs/s), fence+verify+switch {:.2} s, whole move with the 2 s cleanup delay {:.1} s ({:?} {:?})",
        fenced.copied,
        fenced.total,
        copy_time.as_secs_f64(),
        fenced.copied as f64 / copy_time.as_secs_f64(),
        switch_time.as_secs_f64(),
        total.as_secs_f64() - 3.0,
        fenced.state,
        switched.state,
    );
    let (w, r) = (writes.lock().clone(), reads.lock().clone());
    report("writes before/after", w.0);
    report("writes during the move", w.1);
    report("reads before/after", r.0);
    report("reads during the move", r.1);
    // Nothing lost, nothing twice.
    let acked = acked.lock().clone();
    for (i, k) in &acked {
        let got = docs
            .get("eu", "orders", &format!("o-{i}"))
            .await
            .unwrap()
            .unwrap();
        let want = format!(r#""write": {k},"#);
        assert!(got.doc.contains(&want), "o-{i} lost write {k}");
    }
    let mut held = 0;
    let mut per = Vec::new();
    for s in SHARDS {
        let c = docs.count_on("eu", s, "orders").await.unwrap();
        per.push(c);
        held += c;
    }
    assert_eq!(held, n as i64, "each order on one shard");
    println!(
        "after: {per:?} per shard ({:.1} % on the new one); {} acknowledged writes all read back",
        per[2] as f64 * 100.0 / held as f64,
        acked.len()
    );
    shutdown.cancel();
    shards.close().await;
}
