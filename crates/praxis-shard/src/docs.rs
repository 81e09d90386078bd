//! The sharded document store: JSON documents in named collections, each on the shard the
//! region's current ring gives its id, with a change log written in the same transaction (what
//! a rebalance tails while it copies).
//!
//! Per shard: `shard_docs (collection, id, position, doc, version, updated_at)` with an index
//! on `position` (a ring arc is a range scan), and `shard_changes (seq, collection, id,
//! position, at)`.

use std::time::Duration;

use praxis_infra::sql::now_ms;
use praxis_infra::{Backend, Db, Migration, MigrationSet};
use praxis_kit::ring::ring_hash;
use sqlx::Row;

use crate::error::ShardError;
use crate::rings::RingWatch;
use crate::shards::ShardSet;

/// The document store's tables, applied on every shard.
pub static DOC_MIGRATIONS: MigrationSet = MigrationSet {
    system: "shard_docs",
    migrations: &[
        Migration {
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
        },
        Migration {
            version: 2,
            name: "fences: the positions a shard refuses to write (moving or moved away)",
            sqlite: FENCES_V2,
            postgres: FENCES_V2,
        },
        Migration {
            version: 3,
            name: "documents by position, collection and id: an arc's pages and a key's list",
            sqlite: KEYED_V3,
            postgres: KEYED_V3,
        },
    ],
};

/// `shard_fences`: arcs `start_excl < position <= end_incl` this shard refuses writes in
/// (`start_excl = -1` includes position 0), each set by a move. `shard_fence_gen`: one row a
/// writer holds shared for its transaction and a fence setter updates, so setting a fence
/// waits for the writes in flight and every later write sees it.
const FENCES_V2: &str = "
CREATE TABLE shard_fences (
    move_id TEXT NOT NULL,
    start_excl BIGINT NOT NULL,
    end_incl BIGINT NOT NULL
);
CREATE TABLE shard_fence_gen (
    id INTEGER PRIMARY KEY,
    gen BIGINT NOT NULL
);
INSERT INTO shard_fence_gen (id, gen) VALUES (1, 0);
";

/// One index serves the rebalancer's arc pages (ordered by position, collection, id) and a
/// key's list (one position, one collection, by id).
const KEYED_V3: &str = "
CREATE INDEX shard_docs_keyed ON shard_docs (position, collection, id);
DROP INDEX shard_docs_position;
";

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

/// A logged change of a document (a put or a delete: read the document to know which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its place in the shard's log.
    pub seq: i64,
    /// The document's collection.
    pub collection: String,
    /// The document's id.
    pub id: String,
    /// The document's position.
    pub position: i64,
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

/// How long a write waits for a fence over its position to end (the switch of a move)
/// before it gives up with [`ShardError::Moving`].
const FENCE_WAIT: Duration = Duration::from_secs(5);

/// The document store of every region. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Docs {
    rings: RingWatch,
    shards: ShardSet,
    shadow: Option<crate::shadow::Shadow>,
}

/// The position of `id` as stored (`ring_hash` fits a non-negative `BIGINT`).
pub fn position_of(id: &str) -> i64 {
    i64::try_from(ring_hash(id.as_bytes())).unwrap_or(i64::MAX)
}

/// The columns of a document, in the order reads and copies use them.
pub(crate) const DOC_COLUMNS: &str = "collection, id, position, doc, version, updated_at";

/// A document from a row of [`DOC_COLUMNS`].
pub(crate) fn doc_of(row: &sqlx::any::AnyRow) -> Result<Doc, ShardError> {
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
        Docs {
            rings,
            shards,
            shadow: None,
        }
    }

    /// The same, repeating a sample of its reads on the target of a move in progress
    /// ([`crate::shadow`]).
    pub fn with_shadow(mut self, shadow: crate::shadow::Shadow) -> Docs {
        self.shadow = Some(shadow);
        self
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
    /// While a move fences the id's position the write waits (up to 5 s) for the switch,
    /// then goes to the new owner.
    pub async fn put(
        &self,
        region: &str,
        collection: &str,
        id: &str,
        doc: &str,
    ) -> Result<Doc, ShardError> {
        self.put_keyed(region, collection, id, id, doc).await
    }

    /// Like [`Docs::put`], but placed by `key` instead of its id: documents that share a key
    /// (a user's entries of an index, `user/order`) share a shard, so [`Docs::list_keyed`]
    /// reads them from one shard. A document's key never changes.
    pub async fn put_keyed(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        id: &str,
        doc: &str,
    ) -> Result<Doc, ShardError> {
        self.put_on_route(region, collection, key, id, doc, None)
            .await
    }

    /// Replaces `id` (placed by `key`) only if it is at version `expected` (a
    /// compare-and-set: read, decide, write back without losing a concurrent change);
    /// [`ShardError::Stale`] when it is not.
    pub async fn replace_keyed(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        id: &str,
        doc: &str,
        expected: i64,
    ) -> Result<Doc, ShardError> {
        self.put_on_route(region, collection, key, id, doc, Some(expected))
            .await
    }

    async fn put_on_route(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        id: &str,
        doc: &str,
        expected: Option<i64>,
    ) -> Result<Doc, ShardError> {
        let mut fenced = FenceWait::new();
        loop {
            let route = self.route(region, key)?;
            let db = self.shards.db(region, &route.shard).await?;
            match put_on(&db, collection, id, doc, route.position, expected).await {
                Err(ShardError::Fenced { position }) => {
                    fenced.wait(self, region, position).await?;
                }
                other => return other,
            }
        }
    }

    /// Document `id` of `collection`, from the shard that owns it. A miss on a shard that
    /// fenced the id's position (it moved away, and this process has not seen the new ring
    /// yet) reads the rings again and asks the new owner.
    pub async fn get(
        &self,
        region: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Doc>, ShardError> {
        self.get_keyed(region, collection, id, id).await
    }

    /// Document `id` of `collection` placed by `key` (see [`Docs::put_keyed`]).
    pub async fn get_keyed(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        id: &str,
    ) -> Result<Option<Doc>, ShardError> {
        let route = self.route(region, key)?;
        let db = self.shards.db(region, &route.shard).await?;
        let found = read_doc(&db, collection, id).await?;
        if let Some(shadow) = &self.shadow {
            shadow.observe(
                region,
                &route.shard,
                collection,
                id,
                route.position,
                found.as_ref(),
            );
        }
        if found.is_some() || !fenced_at(&db, route.position).await? {
            return Ok(found);
        }
        match self.moved_owner(region, key, &route).await? {
            Some(db) => read_doc(&db, collection, id).await,
            None => Ok(None),
        }
    }

    /// The documents of `collection` placed by `key` whose ids start with `prefix`, in
    /// descending id order (newest first for time-ordered ids) before `before` (exclusive),
    /// at most `limit`: one shard's read. Like [`Docs::get`], a read on a shard that fenced
    /// the key's position asks the new owner.
    pub async fn list_keyed(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        prefix: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Doc>, ShardError> {
        let route = self.route(region, key)?;
        let db = self.shards.db(region, &route.shard).await?;
        let db = if fenced_at(&db, route.position).await? {
            self.moved_owner(region, key, &route).await?.unwrap_or(db)
        } else {
            db
        };
        list_on(&db, collection, route.position, prefix, before, limit).await
    }

    /// The new owner of `key` when the shard `route` named fenced it: the rings read again;
    /// `None` when they still name the same shard.
    async fn moved_owner(
        &self,
        region: &str,
        key: &str,
        route: &Route,
    ) -> Result<Option<Db>, ShardError> {
        self.rings.refresh().await?;
        let now = self.route(region, key)?;
        if now.shard == route.shard {
            return Ok(None);
        }
        Ok(Some(self.shards.db(region, &now.shard).await?))
    }

    /// Deletes `id` from `collection`; whether it was there. Waits for a fence like
    /// [`Docs::put`].
    pub async fn delete(
        &self,
        region: &str,
        collection: &str,
        id: &str,
    ) -> Result<bool, ShardError> {
        self.delete_keyed(region, collection, id, id).await
    }

    /// Deletes `id` of `collection` placed by `key` (see [`Docs::put_keyed`]).
    pub async fn delete_keyed(
        &self,
        region: &str,
        collection: &str,
        key: &str,
        id: &str,
    ) -> Result<bool, ShardError> {
        let mut fenced = FenceWait::new();
        loop {
            let route = self.route(region, key)?;
            let db = self.shards.db(region, &route.shard).await?;
            match delete_on(&db, collection, id, route.position).await {
                Err(ShardError::Fenced { position }) => {
                    fenced.wait(self, region, position).await?;
                }
                other => return other,
            }
        }
    }

    /// The changes logged on `shard` of `region` after `after` (a sequence number), oldest
    /// first, at most `limit`: what a consumer of the shard's writes (an index) tails.
    pub async fn changes_on(
        &self,
        region: &str,
        shard: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Change>, ShardError> {
        let db = self.shards.db(region, shard).await?;
        let rows = sqlx::query(
            "SELECT seq, collection, id, position FROM shard_changes WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: r.try_get("seq")?,
                    collection: r.try_get("collection")?,
                    id: r.try_get("id")?,
                    position: r.try_get("position")?,
                })
            })
            .collect()
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

/// A write's patience with a fence: it reads the rings again after a growing pause, until
/// [`FENCE_WAIT`] passes.
struct FenceWait {
    deadline: tokio::time::Instant,
    pause: Duration,
}

impl FenceWait {
    fn new() -> Self {
        Self {
            deadline: tokio::time::Instant::now() + FENCE_WAIT,
            pause: Duration::from_millis(10),
        }
    }

    async fn wait(&mut self, docs: &Docs, region: &str, position: i64) -> Result<(), ShardError> {
        if tokio::time::Instant::now() >= self.deadline {
            return Err(ShardError::Moving {
                region: region.to_owned(),
                position,
            });
        }
        metrics::counter!("praxis_shard_fenced_writes_total").increment(1);
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(200));
        docs.rings.refresh().await
    }
}

/// Writes `doc` on `db` unless a fence covers `position` (or, with `expected`, unless the
/// stored version differs).
async fn put_on(
    db: &Db,
    collection: &str,
    id: &str,
    doc: &str,
    position: i64,
    expected: Option<i64>,
) -> Result<Doc, ShardError> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    check_fence(&mut tx, db.backend(), position).await?;
    let row = match expected {
        None => {
            sqlx::query(
                "INSERT INTO shard_docs (collection, id, position, doc, version, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (collection, id) \
             DO UPDATE SET doc = $4, version = shard_docs.version + 1, updated_at = $5 \
             RETURNING collection, id, position, doc, version, updated_at",
            )
            .bind(collection)
            .bind(id)
            .bind(position)
            .bind(doc)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
        }
        Some(version) => {
            let updated = sqlx::query(
                "UPDATE shard_docs SET doc = $3, version = version + 1, updated_at = $4 \
                 WHERE collection = $1 AND id = $2 AND version = $5 \
                 RETURNING collection, id, position, doc, version, updated_at",
            )
            .bind(collection)
            .bind(id)
            .bind(doc)
            .bind(now)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            match updated {
                Some(row) => row,
                None => {
                    let current: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM shard_docs WHERE collection = $1 AND id = $2",
                    )
                    .bind(collection)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    return Err(ShardError::Stale {
                        id: id.to_owned(),
                        expected: version,
                        current: current.unwrap_or(0),
                    });
                }
            }
        }
    };
    log_change(&mut tx, collection, id, position, now).await?;
    tx.commit().await?;
    doc_of(&row)
}

/// Deletes `id` on `db` unless a fence covers `position`; whether it was there.
async fn delete_on(db: &Db, collection: &str, id: &str, position: i64) -> Result<bool, ShardError> {
    let mut tx = db.begin_write().await?;
    check_fence(&mut tx, db.backend(), position).await?;
    let gone = sqlx::query("DELETE FROM shard_docs WHERE collection = $1 AND id = $2")
        .bind(collection)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone > 0 {
        log_change(&mut tx, collection, id, position, now_ms()).await?;
    }
    tx.commit().await?;
    Ok(gone > 0)
}

/// Refuses a write at `position` while one of this shard's fences covers it. On PostgreSQL it
/// holds the fence generation row shared until the transaction ends, so a fence being set
/// waits for this write, and a write after it sees the fence (SQLite's write transactions are
/// serialized already).
async fn check_fence(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    position: i64,
) -> Result<(), ShardError> {
    // Two statements: on PostgreSQL a statement that waited for the lock still reads with the
    // snapshot it started with, so the fences are counted by a statement that starts after
    // the lock is held (and so sees a fence committed while it waited).
    let lock = match backend {
        Backend::Postgres => "SELECT gen FROM shard_fence_gen WHERE id = 1 FOR SHARE",
        Backend::Sqlite => "SELECT gen FROM shard_fence_gen WHERE id = 1",
    };
    sqlx::query(lock).fetch_one(&mut *conn).await?;
    let fenced: i64 = sqlx::query_scalar(FENCED_AT)
        .bind(position)
        .fetch_one(&mut *conn)
        .await?;
    if fenced > 0 {
        return Err(ShardError::Fenced { position });
    }
    Ok(())
}

/// Counts the fences that cover position `$1`.
const FENCED_AT: &str =
    "SELECT COUNT(*) FROM shard_fences WHERE start_excl < $1 AND $1 <= end_incl";

/// Document `id` of `collection` on `db`.
pub(crate) async fn read_doc(
    db: &Db,
    collection: &str,
    id: &str,
) -> Result<Option<Doc>, ShardError> {
    let sql = format!("SELECT {DOC_COLUMNS} FROM shard_docs WHERE collection = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(collection)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(doc_of).transpose()
}

/// The documents of `collection` at `position` whose ids start with `prefix`, newest first,
/// before `before`. Every document at one position shares its key (two keys on one 63-bit
/// position are filtered out by the prefix), so the read needs no range on the ids, whose
/// order depends on the database's collation beyond a shared prefix.
async fn list_on(
    db: &Db,
    collection: &str,
    position: i64,
    prefix: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Doc>, ShardError> {
    let sql = match before {
        Some(_) => format!(
            "SELECT {DOC_COLUMNS} FROM shard_docs WHERE collection = $1 AND position = $2 \
             AND id < $4 ORDER BY id DESC LIMIT $3"
        ),
        None => format!(
            "SELECT {DOC_COLUMNS} FROM shard_docs WHERE collection = $1 AND position = $2 \
             ORDER BY id DESC LIMIT $3"
        ),
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(collection)
        .bind(position)
        .bind(limit);
    if let Some(before) = before {
        query = query.bind(before);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(doc_of)
        .filter(|d| d.as_ref().map_or(true, |d| d.id.starts_with(prefix)))
        .collect()
}

/// Whether one of `db`'s fences covers `position`.
async fn fenced_at(db: &Db, position: i64) -> Result<bool, ShardError> {
    let n: i64 = sqlx::query_scalar(FENCED_AT)
        .bind(position)
        .fetch_one(db.pool())
        .await?;
    Ok(n > 0)
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
