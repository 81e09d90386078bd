//! Online rebalancing from 2 to 3 shards: under a steady write and read load nothing is lost,
//! duplicated or unreadable and about a third of the keys move; an abort midway leaves the
//! data exactly as before; a move whose process dies is resumed by another.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use praxis_kit::ring::Ring;
use praxis_shard::{Docs, MoveState, Rebalancer, RingWatch, ShardError};
use praxis_testkit::services::TestDatabase;
use praxis_testkit::{Kind, TestBackend};

use crate::support::{shard_set_on, watch_on};

const SHARDS: [&str; 3] = ["eu-0", "eu-1", "eu-2"];

/// One process's view of region `eu`: its shards, rings, documents and rebalancer.
struct Region {
    docs: Docs,
    rings: RingWatch,
    rebalancer: Rebalancer,
}

/// The shards' databases of a scaled test (dropped at its end).
async fn databases(kind: Kind) -> Vec<TestDatabase> {
    match kind {
        Kind::Scaled => {
            let mut dbs = Vec::new();
            for _ in SHARDS {
                dbs.push(TestDatabase::create().await);
            }
            dbs
        }
        Kind::Embedded => Vec::new(),
    }
}

async fn region(
    backend: &TestBackend,
    dbs: &[TestDatabase],
    owner: &str,
    lease: Duration,
) -> Region {
    let shards = shard_set_on(backend, 4, vec![&praxis_shard::DOC_MIGRATIONS]).await;
    for (i, shard) in SHARDS.iter().enumerate() {
        shards
            .register("eu", shard, dbs.get(i).map(|d| d.url.as_str()))
            .await
            .unwrap();
    }
    let rings = watch_on(backend).await;
    let p = &backend.platform;
    let rebalancer = Rebalancer::new(
        p.db.clone(),
        rings.clone(),
        shards.clone(),
        owner,
        lease,
        50,
    );
    Region {
        docs: Docs::new(rings.clone(), shards),
        rings,
        rebalancer,
    }
}

fn two_shards() -> Ring {
    Ring::uniform("eu-", 2, 64).unwrap()
}

fn three_shards() -> Ring {
    two_shards().with_shard("eu-2", 64).unwrap()
}

/// Puts `n` orders `o-0`.. on the current ring; the acknowledged documents.
async fn seed(r: &Region, n: usize) -> HashMap<String, String> {
    r.rings
        .publish("eu", 0, &two_shards(), "created")
        .await
        .unwrap();
    let mut acked = HashMap::new();
    for i in 0..n {
        let (id, doc) = (format!("o-{i}"), format!(r#"{{"order": {i}}}"#));
        r.docs.put("eu", "orders", &id, &doc).await.unwrap();
        acked.insert(id, doc);
    }
    acked
}

/// Every document of every shard: `shard -> [(collection, id, version, doc)]`, sorted.
async fn snapshot(r: &Region) -> BTreeMap<String, Vec<(String, String, i64, String)>> {
    let mut all = BTreeMap::new();
    for shard in SHARDS {
        let db = r.docs.shards().db("eu", shard).await.unwrap();
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT collection, id, version, doc FROM shard_docs ORDER BY collection, id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        all.insert(shard.to_owned(), rows);
    }
    all
}

async fn count(r: &Region, shard: &str) -> i64 {
    r.docs.count_on("eu", shard, "orders").await.unwrap()
}

pub async fn two_to_three_shards_under_load_loses_nothing_and_moves_a_third(kind: Kind) {
    under_load(kind, 1).await;
}

/// Two runs of one move at once in one process (an orphan sweep that found a slow driver, say):
/// only one drives it, the other is refused, and nothing is lost.
pub async fn a_second_run_of_a_move_is_refused_while_one_drives_it(kind: Kind) {
    under_load(kind, 2).await;
}

async fn under_load(kind: Kind, runs: usize) {
    let backend = kind.start().await;
    let dbs = databases(kind).await;
    let r = Arc::new(region(&backend, &dbs, "p1", Duration::from_secs(30)).await);
    let acked = Arc::new(Mutex::new(seed(&r, 1_500).await));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    // A writer that creates new orders and changes old ones, recording what was acknowledged.
    let writer = {
        let (r, acked, stop) = (r.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = if n.is_multiple_of(2) {
                    format!("o-{}", 1_500 + n)
                } else {
                    format!("o-{}", (n * 7) % 1_500)
                };
                let doc = format!(r#"{{"order": "{id}", "write": {n}}}"#);
                match r.docs.put("eu", "orders", &id, &doc).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(id, doc);
                    }
                    Err(ShardError::Moving { .. }) => {}
                    Err(e) => panic!("write {n} of {id}: {e}"),
                }
            }
            n
        })
    };
    // A reader of acknowledged orders: every one must be found, at any moment of the move.
    let reader = {
        let (r, acked, stop, reads) = (r.clone(), acked.clone(), stop.clone(), reads.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = format!("o-{}", (i * 13) % 1_500);
                assert!(acked.lock().unwrap().contains_key(&id));
                let got = r.docs.get("eu", "orders", &id).await;
                assert!(
                    matches!(got, Ok(Some(_))),
                    "read {i} of {id} during the move: {got:?}"
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = r
        .rebalancer
        .begin("eu", &three_shards(), "add eu-2")
        .await
        .unwrap();
    assert_eq!(started.state, MoveState::Copying);
    assert!(
        started.total > 300,
        "the moving arcs hold about a third: {started:?}"
    );
    assert!(matches!(
        r.rebalancer.begin("eu", &three_shards(), "again").await,
        Err(ShardError::Busy { .. })
    ));
    let mut drivers = Vec::new();
    for _ in 0..runs {
        let (r, id) = (r.clone(), started.id.clone());
        drivers.push(tokio::spawn(async move { r.rebalancer.run(&id).await }));
    }
    let mut ended = Vec::new();
    for d in drivers {
        ended.push(d.await.unwrap());
    }
    let refused = ended
        .iter()
        .filter(|e| matches!(e, Err(ShardError::Leased(_))))
        .count();
    assert_eq!(refused, runs - 1, "one run drives the move: {ended:?}");
    let done = ended
        .into_iter()
        .find_map(Result::ok)
        .expect("one run ends the move");
    assert_eq!(done.state, MoveState::Done, "{done:?}");
    assert!(done.copied >= started.total);
    // Keep the load on a moment after the cleanup, then stop it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    reader.await.unwrap();
    assert!(
        writes > 50 && reads.load(Ordering::Relaxed) > 50,
        "the load ran"
    );
    assert_eq!(r.rings.current("eu").unwrap().version, 2);
    // Nothing lost: every acknowledged write reads back as it was acknowledged.
    let acked = acked.lock().unwrap().clone();
    for (id, doc) in &acked {
        let got = r.docs.get("eu", "orders", id).await.unwrap();
        assert_eq!(got.map(|d| d.doc).as_deref(), Some(doc.as_str()), "{id}");
    }
    // Nothing duplicated: each order on exactly one shard.
    let mut held = 0;
    for shard in SHARDS {
        held += count(&r, shard).await;
    }
    assert_eq!(held, acked.len() as i64);
    // About a third moved to the new shard.
    let third = count(&r, "eu-2").await as f64 / held as f64;
    assert!((0.22..0.45).contains(&third), "eu-2 holds {third}");
}

pub async fn an_aborted_rebalance_leaves_the_data_exactly_as_before(kind: Kind) {
    let backend = kind.start().await;
    let dbs = databases(kind).await;
    let r = region(&backend, &dbs, "p1", Duration::from_secs(30)).await;
    seed(&r, 600).await;
    let before = snapshot(&r).await;
    assert!(before["eu-2"].is_empty());
    let started = r
        .rebalancer
        .begin("eu", &three_shards(), "add eu-2")
        .await
        .unwrap();
    // Copied and fenced: the furthest a move goes before its switch.
    let fenced = r
        .rebalancer
        .run_until(&started.id, MoveState::Fenced)
        .await
        .unwrap();
    assert_eq!(fenced.state, MoveState::Fenced);
    assert!(!snapshot(&r).await["eu-2"].is_empty(), "the copy happened");
    let aborted = r
        .rebalancer
        .abort(&started.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(aborted.state, MoveState::Aborted);
    assert_eq!(snapshot(&r).await, before);
    assert_eq!(r.rings.current("eu").unwrap().version, 1);
    // The fences are gone: an order the move would have taken to eu-2 is written at once.
    let moving = (0..)
        .map(|i| format!("o-{i}"))
        .find(|id| three_shards().shard_of(id.as_bytes()) == "eu-2")
        .unwrap();
    assert_eq!(
        r.docs
            .put("eu", "orders", &moving, "{}")
            .await
            .unwrap()
            .version,
        2
    );
    // Aborted is final, and a new move can begin.
    assert!(r.rebalancer.run(&started.id).await.is_ok());
    r.rebalancer
        .begin("eu", &three_shards(), "add eu-2 again")
        .await
        .unwrap();
}

pub async fn a_move_whose_process_dies_is_resumed_by_another(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let dbs = databases(kind).await;
    let lease = Duration::from_secs(1);
    let first = Arc::new(region(&a, &dbs, "p1", lease).await);
    let second = region(&b, &dbs, "p2", lease).await;
    let acked = seed(&first, 1_500).await;
    let started = first
        .rebalancer
        .begin("eu", &three_shards(), "add eu-2")
        .await
        .unwrap();
    // The first process dies in the middle of the copy.
    let run = {
        let (first, id) = (first.clone(), started.id.clone());
        tokio::spawn(async move { first.rebalancer.run(&id).await })
    };
    praxis_testkit::eventually::eventually(Duration::from_secs(30), "part of the copy", || async {
        let s = first.rebalancer.status(&started.id).await.unwrap();
        (s.copied > 0).then_some(())
    })
    .await;
    run.abort();
    let _ = run.await;
    // The second one finds it orphaned once the lease lapses, and finishes it.
    let orphans = praxis_testkit::eventually::eventually(
        Duration::from_secs(10),
        "the dead process's lease lapses",
        || async {
            let o = second.rebalancer.orphans().await.unwrap();
            (!o.is_empty()).then_some(o)
        },
    )
    .await;
    assert_eq!(orphans, vec![started.id.clone()]);
    let done = second.rebalancer.run(&started.id).await.unwrap();
    assert_eq!(done.state, MoveState::Done);
    let mut held = 0;
    for shard in SHARDS {
        held += count(&second, shard).await;
    }
    assert_eq!(held, acked.len() as i64, "each order once");
    for (id, doc) in &acked {
        let got = second.docs.get("eu", "orders", id).await.unwrap();
        assert_eq!(got.map(|d| d.doc).as_deref(), Some(doc.as_str()), "{id}");
    }
}
