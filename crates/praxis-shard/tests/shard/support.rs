//! The harness: the sharding layer's pieces on a test backend, as one process builds them.

use std::time::Duration;

use praxis_infra::MigrationSet;
use praxis_infra::sql::DbOptions;
use praxis_shard::{Placement, RingStore, RingWatch, ShardSet};
use praxis_testkit::TestBackend;

/// How often the watchers poll in these tests (the product's default).
pub const POLL: Duration = Duration::from_millis(250);

/// The rings' store on `backend`'s control database (migrated).
pub async fn store_on(backend: &TestBackend) -> RingStore {
    backend
        .platform
        .db
        .migrate(&praxis_shard::MIGRATIONS)
        .await
        .unwrap();
    RingStore::new(backend.platform.db.clone())
}

/// A ring watcher on `backend`, polling every [`POLL`].
pub async fn watch_on(backend: &TestBackend) -> RingWatch {
    let p = &backend.platform;
    RingWatch::start(
        store_on(backend).await,
        p.broadcaster.clone(),
        POLL,
        p.shutdown.clone(),
        &p.tasks,
    )
    .await
    .unwrap()
}

/// The shards recorded in `backend`'s control database (migrated), files under its data
/// directory unless registered by URL, each pooled with `connections` and migrated with
/// `migrations`.
pub async fn shard_set_on(
    backend: &TestBackend,
    connections: u32,
    migrations: Vec<&'static MigrationSet>,
) -> ShardSet {
    store_on(backend).await;
    ShardSet::new(
        backend.platform.db.clone(),
        Placement::Files(backend.config.data_dir.join("shards")),
        DbOptions {
            max_connections: connections,
            ..DbOptions::default()
        },
        migrations,
    )
}
