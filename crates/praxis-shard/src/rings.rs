//! Versioned rings: stored in the control database ([`RingStore`]) and watched by every
//! process ([`RingWatch`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use praxis_infra::Db;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::sql::now_ms;
use praxis_kit::ring::{Ring, ShardSpec};
use sqlx::Row;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ShardError;

/// The broadcast channel a publisher tells other processes on that a region's ring changed
/// (payload: the region). Best effort: the watchers' polling is the guarantee.
pub const RINGS_CHANNEL: &str = "shard.rings";

/// One version of a region's ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedRing {
    /// The region.
    pub region: String,
    /// Its version: 1 for the first ring, one more for each change.
    pub version: i64,
    /// The ring.
    pub ring: Ring,
    /// Why it was made (`"created"`, `"add s2"`, ...).
    pub note: String,
}

/// The rings' table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RingStore {
    db: Db,
}

fn versioned(row: &sqlx::any::AnyRow) -> Result<VersionedRing, ShardError> {
    let region: String = row.try_get("region")?;
    let version: i64 = row.try_get("version")?;
    let spec: String = row.try_get("spec")?;
    let corrupt = |reason: String| ShardError::Corrupt {
        region: region.clone(),
        version,
        reason,
    };
    let spec: Vec<ShardSpec> = serde_json::from_str(&spec).map_err(|e| corrupt(e.to_string()))?;
    let ring = Ring::new(&spec).map_err(|e| corrupt(e.to_string()))?;
    Ok(VersionedRing {
        region: region.clone(),
        version,
        ring,
        note: row.try_get("note")?,
    })
}

impl RingStore {
    /// The store on the control database `db` (the sharding migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The current ring of `region`, if it has one.
    pub async fn current(&self, region: &str) -> Result<Option<VersionedRing>, ShardError> {
        let row = sqlx::query(
            "SELECT region, version, spec, note FROM shard_rings WHERE region = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(region)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(versioned).transpose()
    }

    /// Version `version` of `region`'s ring (older versions are kept: a rebalance compares
    /// the one it started from with the one it moves to).
    pub async fn version(
        &self,
        region: &str,
        version: i64,
    ) -> Result<Option<VersionedRing>, ShardError> {
        let row = sqlx::query(
            "SELECT region, version, spec, note FROM shard_rings WHERE region = $1 AND version = $2",
        )
        .bind(region)
        .bind(version)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(versioned).transpose()
    }

    /// The current ring of every region, by region.
    pub async fn all_current(&self) -> Result<Vec<VersionedRing>, ShardError> {
        let rows = sqlx::query(
            "SELECT r.region, r.version, r.spec, r.note FROM shard_rings r \
             WHERE r.version = (SELECT MAX(m.version) FROM shard_rings m WHERE m.region = r.region) \
             ORDER BY r.region",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(versioned).collect()
    }

    /// Stores `ring` as version `on + 1` of `region`'s ring, where `on` is the version it was
    /// built from (0: the region has none yet). A conflict when the region's ring is not at
    /// `on` any more: two changes never both win.
    pub async fn publish(
        &self,
        region: &str,
        on: i64,
        ring: &Ring,
        note: &str,
    ) -> Result<VersionedRing, ShardError> {
        let spec = serde_json::to_string(ring.spec())
            .map_err(|e| ShardError::Infra(praxis_infra::InfraError::Codec(e.to_string())))?;
        let mut tx = self.db.begin_write().await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM shard_rings WHERE region = $1",
        )
        .bind(region)
        .fetch_one(&mut *tx)
        .await?;
        let conflict = |current| ShardError::Conflict {
            region: region.to_owned(),
            expected: on,
            current,
        };
        if current != on {
            return Err(conflict(current));
        }
        // Two PostgreSQL transactions may both read `on`: the key lets one insert.
        let inserted = sqlx::query(
            "INSERT INTO shard_rings (region, version, spec, note, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (region, version) DO NOTHING",
        )
        .bind(region)
        .bind(on + 1)
        .bind(&spec)
        .bind(note)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Err(conflict(on + 1));
        }
        tx.commit().await?;
        Ok(VersionedRing {
            region: region.to_owned(),
            version: on + 1,
            ring: ring.clone(),
            note: note.to_owned(),
        })
    }
}

/// The rings this process routes by, one per region, kept current: refreshed at once when
/// another process's broadcast says a ring changed, and every `poll` regardless. Cheap to
/// clone; reads are lock-free.
#[derive(Debug, Clone)]
pub struct RingWatch {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: RingStore,
    broadcaster: Broadcaster,
    rings: ArcSwap<HashMap<String, Arc<VersionedRing>>>,
    /// Bumped after every refresh that changed a ring (waiters for a change watch it).
    changes: watch::Sender<u64>,
}

impl RingWatch {
    /// Loads every region's ring and keeps them current until `shutdown`, polling every
    /// `poll` (at most 1 s keeps the promise that a change reaches every process within a
    /// second).
    pub async fn start(
        store: RingStore,
        broadcaster: Broadcaster,
        poll: Duration,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<RingWatch, ShardError> {
        let watch = RingWatch {
            inner: Arc::new(Inner {
                store,
                broadcaster,
                rings: ArcSwap::from_pointee(HashMap::new()),
                changes: watch::channel(0).0,
            }),
        };
        watch.refresh().await?;
        let mut told = watch.inner.broadcaster.subscribe(RINGS_CHANNEL);
        let this = watch.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(poll) => {}
                    _ = told.recv() => {}
                }
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e, "cannot refresh the shard rings; routing by the last ones read");
                }
            }
        });
        Ok(watch)
    }

    /// The current ring of `region`.
    pub fn current(&self, region: &str) -> Option<Arc<VersionedRing>> {
        self.inner.rings.load().get(region).cloned()
    }

    /// The current ring of every region.
    pub fn all(&self) -> Vec<Arc<VersionedRing>> {
        let mut all: Vec<_> = self.inner.rings.load().values().cloned().collect();
        all.sort_by(|a, b| a.region.cmp(&b.region));
        all
    }

    /// A receiver that changes whenever a ring does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Reads every region's ring again.
    pub async fn refresh(&self) -> Result<(), ShardError> {
        let fresh: HashMap<String, Arc<VersionedRing>> = self
            .inner
            .store
            .all_current()
            .await?
            .into_iter()
            .map(|r| (r.region.clone(), Arc::new(r)))
            .collect();
        let changed = {
            let old = self.inner.rings.load();
            old.len() != fresh.len()
                || fresh
                    .iter()
                    .any(|(region, r)| old.get(region).is_none_or(|o| o.version != r.version))
        };
        if changed {
            self.inner.rings.store(Arc::new(fresh));
            self.inner.changes.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Publishes `ring` on top of version `on` of `region`'s ring (see [`RingStore::publish`]),
    /// then routes by it here at once and tells the other processes.
    pub async fn publish(
        &self,
        region: &str,
        on: i64,
        ring: &Ring,
        note: &str,
    ) -> Result<Arc<VersionedRing>, ShardError> {
        let published = self.inner.store.publish(region, on, ring, note).await?;
        self.refresh().await?;
        if let Err(e) = self
            .inner
            .broadcaster
            .publish(RINGS_CHANNEL, Bytes::from(region.to_owned()))
            .await
        {
            tracing::warn!(error = %e, region, "ring change not broadcast; other processes see it at their next poll");
        }
        Ok(Arc::new(published))
    }
}
