//! Versioned rings: one winner per version, and every process routing by the newest within a
//! second.

use std::time::Duration;

use praxis_kit::ring::Ring;
use praxis_shard::ShardError;
use praxis_testkit::Kind;

use crate::support::{store_on, watch_on};

pub async fn a_ring_version_is_published_once_on_top_of_the_one_it_was_built_from(kind: Kind) {
    let backend = kind.start().await;
    let store = store_on(&backend).await;
    assert!(store.current("eu").await.unwrap().is_none());
    let two = Ring::uniform("eu-", 2, 64).unwrap();
    let v1 = store.publish("eu", 0, &two, "created").await.unwrap();
    assert_eq!(v1.version, 1);
    // Built on a version that is not current any more: refused, naming both.
    let three = two.with_shard("eu-2", 64).unwrap();
    match store.publish("eu", 0, &three, "add eu-2").await {
        Err(ShardError::Conflict {
            expected, current, ..
        }) => assert_eq!((expected, current), (0, 1)),
        other => panic!("not a conflict: {other:?}"),
    }
    let v2 = store.publish("eu", 1, &three, "add eu-2").await.unwrap();
    assert_eq!(v2.version, 2);
    let current = store.current("eu").await.unwrap().unwrap();
    assert_eq!((current.version, &current.ring), (2, &three));
    assert_eq!(current.note, "add eu-2");
    // The old version stays readable (a rebalance compares the two).
    assert_eq!(store.version("eu", 1).await.unwrap().unwrap().ring, two);
    // Regions are independent.
    store
        .publish("us", 0, &Ring::uniform("us-", 1, 64).unwrap(), "created")
        .await
        .unwrap();
    let regions: Vec<(String, i64)> = store
        .all_current()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.region, r.version))
        .collect();
    assert_eq!(regions, vec![("eu".into(), 2), ("us".into(), 1)]);
}

pub async fn racing_publishers_in_two_processes_make_one_version(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let (first, second) = (store_on(&a).await, store_on(&b).await);
    first
        .publish("eu", 0, &Ring::uniform("eu-", 2, 64).unwrap(), "created")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let ring = Ring::uniform("eu-", 2, 64)
                .unwrap()
                .with_shard(&format!("extra-{n}"), 64)
                .unwrap();
            store
                .publish("eu", 1, &ring, &format!("add extra-{n}"))
                .await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => won.push(v),
            Err(ShardError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one change on top of version 1");
    let current = first.current("eu").await.unwrap().unwrap();
    assert_eq!((current.version, &current.ring), (2, &won[0].ring));
}

pub async fn two_processes_see_a_ring_change_within_a_second(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let (writer, reader) = (watch_on(&a).await, watch_on(&b).await);
    assert!(reader.current("eu").is_none());
    let two = Ring::uniform("eu-", 2, 64).unwrap();
    let v1 = writer.publish("eu", 0, &two, "created").await.unwrap();
    assert_eq!(
        writer.current("eu").unwrap().version,
        1,
        "the publisher routes by its change at once"
    );
    let changes = reader.changes();
    praxis_testkit::eventually::eventually(
        Duration::from_secs(1),
        "the other process routes by version 1",
        || async { (reader.current("eu").map(|r| r.version) == Some(1)).then_some(()) },
    )
    .await;
    assert!(changes.has_changed().unwrap(), "the change was signalled");
    let three = v1.ring.with_shard("eu-2", 64).unwrap();
    writer.publish("eu", 1, &three, "add eu-2").await.unwrap();
    let seen = praxis_testkit::eventually::eventually(
        Duration::from_secs(1),
        "the other process routes by version 2",
        || async { reader.current("eu").filter(|r| r.version == 2) },
    )
    .await;
    assert_eq!(seen.ring, three);
    assert_eq!(reader.all().len(), 1);
}
