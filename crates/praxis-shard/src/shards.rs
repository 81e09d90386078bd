//! The shards' databases: where each shard of each region lives, and a pool per shard.
//!
//! Every process must agree on where a shard is, so the place is recorded in the control
//! database (`shard_databases`) when the shard is registered; a process connects to it the
//! first time it routes there, applies the using system's migrations on it, and keeps the
//! pool. Embedded, a shard is a SQLite file under the data directory,
//! `shards/<region>/<shard>.db`; scaled, a PostgreSQL database whose URL the operator gives
//! (or that a URL template names).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use praxis_infra::sql::{DbOptions, now_ms};
use praxis_infra::{Db, MigrationSet};
use sqlx::Row;

use crate::error::ShardError;

/// Where a shard's database is when it is registered without a URL.
#[derive(Debug, Clone)]
pub enum Placement {
    /// A SQLite file per shard under this directory (`<dir>/<region>/<shard>.db`).
    Files(PathBuf),
    /// A URL with `{region}` and `{shard}` in it (for example
    /// `postgres://db.internal/orders_{region}_{shard}`): the database must exist.
    Template(String),
}

impl Placement {
    /// The URL of `shard` of `region`.
    pub fn url(&self, region: &str, shard: &str) -> String {
        match self {
            Placement::Files(dir) => format!(
                "sqlite://{}?mode=rwc",
                dir.join(region).join(format!("{shard}.db")).display()
            ),
            Placement::Template(t) => t.replace("{region}", region).replace("{shard}", shard),
        }
    }
}

/// The shards of every region: their places, and a pool per shard in use. Cheap to clone.
#[derive(Clone)]
pub struct ShardSet {
    inner: Arc<Inner>,
}

struct Inner {
    control: Db,
    placement: Placement,
    options: DbOptions,
    migrations: Vec<&'static MigrationSet>,
    pools: Mutex<HashMap<(String, String), Db>>,
    /// Serializes first connections, so two tasks never migrate one shard at once.
    opening: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSet")
            .field("placement", &self.inner.placement)
            .field("open", &self.inner.pools.lock().len())
            .finish()
    }
}

impl ShardSet {
    /// The shards recorded in `control` (the sharding migrations applied), placed by
    /// `placement` unless registered with a URL, each connected with `options` and migrated
    /// with `migrations` on first use.
    pub fn new(
        control: Db,
        placement: Placement,
        options: DbOptions,
        migrations: Vec<&'static MigrationSet>,
    ) -> ShardSet {
        ShardSet {
            inner: Arc::new(Inner {
                control,
                placement,
                options,
                migrations,
                pools: Mutex::new(HashMap::new()),
                opening: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Records where `shard` of `region` lives: `url`, or the placement's. Registering it
    /// again with the same place changes nothing; with another place it is a conflict (the
    /// data would be left behind). The place it has.
    pub async fn register(
        &self,
        region: &str,
        shard: &str,
        url: Option<&str>,
    ) -> Result<String, ShardError> {
        let url = url.map_or_else(|| self.inner.placement.url(region, shard), str::to_owned);
        if let Placement::Files(dir) = &self.inner.placement
            && url.starts_with("sqlite:")
        {
            std::fs::create_dir_all(dir.join(region)).map_err(|e| {
                ShardError::Infra(praxis_infra::InfraError::Config(format!(
                    "cannot create the shard directory {}: {e}",
                    dir.join(region).display()
                )))
            })?;
        }
        sqlx::query(
            "INSERT INTO shard_databases (region, shard, url, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (region, shard) DO NOTHING",
        )
        .bind(region)
        .bind(shard)
        .bind(&url)
        .bind(now_ms())
        .execute(self.inner.control.pool())
        .await?;
        let stored = self.place(region, shard).await?;
        if stored != url {
            return Err(ShardError::Placed {
                region: region.to_owned(),
                shard: shard.to_owned(),
                url: praxis_infra::sql::redact(&stored),
            });
        }
        Ok(stored)
    }

    /// Where `shard` of `region` lives.
    pub async fn place(&self, region: &str, shard: &str) -> Result<String, ShardError> {
        let row = sqlx::query("SELECT url FROM shard_databases WHERE region = $1 AND shard = $2")
            .bind(region)
            .bind(shard)
            .fetch_optional(self.inner.control.pool())
            .await?;
        match row {
            Some(row) => Ok(row.try_get("url")?),
            None => Err(ShardError::UnknownShard {
                region: region.to_owned(),
                shard: shard.to_owned(),
            }),
        }
    }

    /// The registered shards of `region`, by name.
    pub async fn shards(&self, region: &str) -> Result<Vec<String>, ShardError> {
        let rows =
            sqlx::query("SELECT shard FROM shard_databases WHERE region = $1 ORDER BY shard")
                .bind(region)
                .fetch_all(self.inner.control.pool())
                .await?;
        rows.iter().map(|r| Ok(r.try_get("shard")?)).collect()
    }

    /// The database of `shard` of `region`: connected and migrated the first time.
    pub async fn db(&self, region: &str, shard: &str) -> Result<Db, ShardError> {
        let key = (region.to_owned(), shard.to_owned());
        if let Some(db) = self.inner.pools.lock().get(&key) {
            return Ok(db.clone());
        }
        let _one = self.inner.opening.lock().await;
        if let Some(db) = self.inner.pools.lock().get(&key) {
            return Ok(db.clone());
        }
        let url = self.place(region, shard).await?;
        let db = Db::connect_with(&url, &self.inner.options).await?;
        for set in &self.inner.migrations {
            db.migrate(set).await?;
        }
        self.inner.pools.lock().insert(key, db.clone());
        Ok(db)
    }

    /// Closes every pool (at shutdown).
    pub async fn close(&self) {
        let pools: Vec<Db> = self.inner.pools.lock().drain().map(|(_, db)| db).collect();
        for db in pools {
            db.close().await;
        }
    }
}
