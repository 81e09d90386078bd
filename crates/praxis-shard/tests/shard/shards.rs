//! Where shards live: recorded once, the same for every process, each shard its own database.

use praxis_infra::{Migration, MigrationSet};
use praxis_shard::{ShardError, ShardSet};
use praxis_testkit::services::TestDatabase;
use praxis_testkit::{Kind, TestBackend};

use crate::support::shard_set_on;

/// The using system's schema, applied on every shard.
static THINGS: MigrationSet = MigrationSet {
    system: "things",
    migrations: &[Migration {
        version: 1,
        name: "things",
        sqlite: "CREATE TABLE things (id TEXT PRIMARY KEY);",
        postgres: "CREATE TABLE things (id TEXT PRIMARY KEY);",
    }],
};

async fn shard_set(backend: &TestBackend) -> ShardSet {
    shard_set_on(backend, 2, vec![&THINGS]).await
}

async fn count(set: &ShardSet, shard: &str) -> i64 {
    let db = set.db("eu", shard).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM things")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

pub async fn each_shard_is_its_own_database_wherever_it_is_opened(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let set = shard_set(&a).await;
    // Scaled: a PostgreSQL database per shard, given by URL; embedded: files the placement
    // names.
    let databases = match kind {
        Kind::Scaled => vec![TestDatabase::create().await, TestDatabase::create().await],
        Kind::Embedded => Vec::new(),
    };
    for (i, shard) in ["eu-0", "eu-1"].into_iter().enumerate() {
        let url = databases.get(i).map(|d| d.url.as_str());
        let place = set.register("eu", shard, url).await.unwrap();
        assert_eq!(set.register("eu", shard, url).await.unwrap(), place);
    }
    assert_eq!(set.shards("eu").await.unwrap(), vec!["eu-0", "eu-1"]);
    let db = set.db("eu", "eu-0").await.unwrap();
    sqlx::query("INSERT INTO things (id) VALUES ('a')")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        (count(&set, "eu-0").await, count(&set, "eu-1").await),
        (1, 0)
    );
    // Another process finds the shards where they were recorded.
    let other = shard_set(&b).await;
    assert_eq!(
        (count(&other, "eu-0").await, count(&other, "eu-1").await),
        (1, 0)
    );
    // A shard never moves database, and an unknown one is named.
    assert!(matches!(
        set.register("eu", "eu-0", Some("sqlite:///elsewhere.db"))
            .await,
        Err(ShardError::Placed { .. })
    ));
    assert!(matches!(
        set.db("eu", "eu-9").await,
        Err(ShardError::UnknownShard { .. })
    ));
    set.close().await;
    other.close().await;
}
