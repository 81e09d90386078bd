//! The document store: every document on the shard the ring gives it, read back from any
//! process, and every change logged on its shard.

use std::collections::HashMap;
use std::time::Duration;

use praxis_kit::ring::Ring;
use praxis_shard::Docs;
use praxis_testkit::services::TestDatabase;
use praxis_testkit::{Kind, TestBackend};

use crate::support::{shard_set_on, watch_on};

async fn docs_on(backend: &TestBackend, urls: &[(String, Option<String>)]) -> Docs {
    let shards = shard_set_on(backend, 2, vec![&praxis_shard::DOC_MIGRATIONS]).await;
    for (shard, url) in urls {
        shards.register("eu", shard, url.as_deref()).await.unwrap();
    }
    Docs::new(watch_on(backend).await, shards)
}

pub async fn documents_live_on_the_shard_the_ring_gives_them(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let databases = match kind {
        Kind::Scaled => vec![TestDatabase::create().await, TestDatabase::create().await],
        Kind::Embedded => Vec::new(),
    };
    let urls: Vec<(String, Option<String>)> = ["eu-0", "eu-1"]
        .iter()
        .enumerate()
        .map(|(i, s)| ((*s).to_owned(), databases.get(i).map(|d| d.url.clone())))
        .collect();
    let docs = docs_on(&a, &urls).await;
    let ring = Ring::uniform("eu-", 2, 64).unwrap();
    // No ring yet: named.
    assert!(matches!(
        docs.put("eu", "orders", "o-1", "{}").await,
        Err(praxis_shard::ShardError::NoRing(_))
    ));
    let rings = watch_on(&a).await;
    rings.publish("eu", 0, &ring, "created").await.unwrap();
    praxis_testkit::eventually::eventually(
        Duration::from_secs(1),
        "the store routes by v1",
        || async { docs.route("eu", "o-1").ok() },
    )
    .await;
    let mut expected: HashMap<String, i64> = HashMap::new();
    for n in 0..200 {
        let id = format!("o-{n}");
        let put = docs
            .put("eu", "orders", &id, &format!(r#"{{"n": {n}}}"#))
            .await
            .unwrap();
        assert_eq!(put.version, 1);
        *expected
            .entry(ring.shard_of(id.as_bytes()).to_owned())
            .or_default() += 1;
    }
    for shard in ["eu-0", "eu-1"] {
        let held = docs.count_on("eu", shard, "orders").await.unwrap();
        assert_eq!(
            held, expected[shard],
            "{shard} holds what the ring gives it"
        );
        assert!(held > 50, "both shards are used: {expected:?}");
    }
    // A second put is a new version; another process reads it from the same shard.
    assert_eq!(
        docs.put("eu", "orders", "o-7", r#"{"n": 70}"#)
            .await
            .unwrap()
            .version,
        2
    );
    let other = docs_on(&b, &[]).await;
    let seen = praxis_testkit::eventually::eventually(
        Duration::from_secs(1),
        "the other process routes by v1",
        || async { other.get("eu", "orders", "o-7").await.ok().flatten() },
    )
    .await;
    assert_eq!((seen.doc.as_str(), seen.version), (r#"{"n": 70}"#, 2));
    assert!(other.delete("eu", "orders", "o-7").await.unwrap());
    assert!(docs.get("eu", "orders", "o-7").await.unwrap().is_none());
    assert!(!docs.delete("eu", "orders", "o-7").await.unwrap());
    // Every put and the delete were logged on their shard (what a rebalance tails).
    let mut logged = 0;
    for shard in ["eu-0", "eu-1"] {
        let db = docs.shards().db("eu", shard).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shard_changes")
            .fetch_one(db.pool())
            .await
            .unwrap();
        logged += n;
    }
    assert_eq!(logged, 200 + 1 + 1);
    // Collections are apart.
    assert!(docs.get("eu", "users", "o-8").await.unwrap().is_none());
}
