//! The sharded document store: JSON documents in named collections, each on the shard the
//! region's current ring gives its id, with a change log written in the same transaction (what
//! a rebalance tails while it copies).
//!
//! Per shard: `shard_docs (collection, id, position, doc, version, updated_at)` with an index
//! on `position` (a ring arc is a range scan), and `shard_changes (seq, collection, id,
//! position, at)`.

use praxis_infra::sql::now_ms;
use praxis_infra::{Migration, MigrationSet};
use praxis_kit::ring::ring_hash;
use sqlx::Row;

use crate::error::ShardError;
use crate::rings::RingWatch;
use crate::shards::ShardSet;

/// The document store's tables, applied on every shard.
pub static DOC_MIGRATIONS: MigrationSet = MigrationSet {
    system: "shard_docs",
    migrations: &[Migration {
        version: 1,
        name: "documents and their change log",
        sqlite: "
CREATE TABLE shard_docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX shard_docs_position ON shard_docs (position);
CREATE TABLE shard_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    at INTEGER NOT NULL
);
",
        postgres: "
CREATE TABLE shard_docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    position BIGINT NOT NULL,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX shard_docs_position ON shard_docs (position);
CREATE TABLE shard_changes (
    seq BIGSERIAL PRIMARY KEY,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    position BIGINT NOT NULL,
    at BIGINT NOT NULL
);
",
    }],
};

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Its collection.
    pub collection: String,
    /// Its id (its ring key).
    pub id: String,
    /// Its position on the ring ([`ring_hash`] of the id).
    pub position: i64,
    /// The document (JSON text).
    pub doc: String,
    /// 1 when created, one more at each put.
    pub version: i64,
    /// Last put (unix ms).
    pub updated_at: i64,
}

/// Where a key lives now: the ring version that says so, and the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The ring's version.
    pub version: i64,
    /// The shard.
    pub shard: String,
    /// The key's position.
    pub position: i64,
}

/// The document store of every region. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Docs {
    rings: RingWatch,
    shards: ShardSet,
}

/// The position of `id` as stored (`ring_hash` fits a non-negative `BIGINT`).
pub fn position_of(id: &str) -> i64 {
    i64::try_from(ring_hash(id.as_bytes())).unwrap_or(i64::MAX)
}

fn doc_of(row: &sqlx::any::AnyRow) -> Result<Doc, ShardError> {
    Ok(Doc {
        collection: row.try_get("collection")?,
        id: row.try_get("id")?,
        position: row.try_get("position")?,
        doc: row.try_get("doc")?,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Docs {
    /// The store routing by `rings` over `shards` (whose migrations must include
    /// [`DOC_MIGRATIONS`]).
    pub fn new(rings: RingWatch, shards: ShardSet) -> Docs {
        Docs { rings, shards }
    }

    /// The shards it writes to (tools and tests read them directly).
    pub fn shards(&self) -> &ShardSet {
        &self.shards
    }

    /// Where `id` lives in `region` now.
    pub fn route(&self, region: &str, id: &str) -> Result<Route, ShardError> {
        let ring = self
            .rings
            .current(region)
            .ok_or_else(|| ShardError::NoRing(region.to_owned()))?;
        let position = position_of(id);
        let shard = ring.ring.shard_at(position.unsigned_abs()).to_owned();
        Ok(Route {
            version: ring.version,
            shard,
            position,
        })
    }

    /// Creates or replaces `id` in `collection` with `doc` (JSON text), and logs the change.
    pub async fn put(
        &self,
        region: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> Result<Doc, ShardError> {
        let route = self.route(region, id)?;
        let db = self.shards.db(region, &route.shard).await?;
        let now = now_ms();
        let mut tx = db.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO shard_docs (collection, id, position, doc, version, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (collection, id) \
             DO UPDATE SET doc = $4, version = shard_docs.version + 1, updated_at = $5 \
             RETURNING collection, id, position, doc, version, updated_at",
        )
        .bind(collection)
        .bind(id)
        .bind(route.position)
        .bind(doc)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        log_change(&mut tx, collection, id, route.position, now).await?;
        tx.commit().await?;
        doc_of(&row)
    }

    /// Document `id` of `collection`, from the shard that owns it.
    pub async fn get(
        &self,
        region: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Doc>, ShardError> {
        let route = self.route(region, id)?;
        let db = self.shards.db(region, &route.shard).await?;
        let row = sqlx::query(
            "SELECT collection, id, position, doc, version, updated_at FROM shard_docs \
             WHERE collection = $1 AND id = $2",
        )
        .bind(collection)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
        row.as_ref().map(doc_of).transpose()
    }

    /// Deletes `id` from `collection`; whether it was there.
    pub async fn delete(
        &self,
        region: &str,
        collection: &str,
        id: &str,
    ) -> Result<bool, ShardError> {
        let route = self.route(region, id)?;
        let db = self.shards.db(region, &route.shard).await?;
        let mut tx = db.begin_write().await?;
        let gone = sqlx::query("DELETE FROM shard_docs WHERE collection = $1 AND id = $2")
            .bind(collection)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone > 0 {
            log_change(&mut tx, collection, id, route.position, now_ms()).await?;
        }
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// How many documents of `collection` shard `shard` of `region` holds.
    pub async fn count_on(
        &self,
        region: &str,
        shard: &str,
        collection: &str,
    ) -> Result<i64, ShardError> {
        let db = self.shards.db(region, shard).await?;
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM shard_docs WHERE collection = $1")
                .bind(collection)
                .fetch_one(db.pool())
                .await?,
        )
    }
}

/// Appends a change of `id` to the shard's log.
async fn log_change(
    conn: &mut sqlx::AnyConnection,
    collection: &str,
    id: &str,
    position: i64,
    at: i64,
) -> Result<(), ShardError> {
    sqlx::query("INSERT INTO shard_changes (collection, id, position, at) VALUES ($1, $2, $3, $4)")
        .bind(collection)
        .bind(id)
        .bind(position)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
