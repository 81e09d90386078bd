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
    /// A PostgreSQL database per shard on the control database's server, named
    /// `<control database>_<region>_<shard>`, created when a process first opens the shard.
    SameServer(String),
}

impl Placement {
    /// The URL of `shard` of `region`.
    pub fn url(&self, region: &str, shard: &str) -> String {
        match self {
            Placement::Files(dir) => format!(
                "sqlite://{}?mode=rwc",
                dir.join(region).join(format!("{shard}.db")).display()
            ),
            Placement::Template(t) | Placement::SameServer(t) => {
                t.replace("{region}", region).replace("{shard}", shard)
            }
        }
    }

    /// [`Placement::SameServer`] beside the PostgreSQL database at `control_url`: its URL
    /// with the database name `<name>_{region}_{shard}`.
    pub fn same_server(control_url: &str) -> Result<Placement, ShardError> {
        let mut url = url::Url::parse(control_url).map_err(|e| {
            config(format!(
                "cannot derive the shards' databases from {}: {e}",
                praxis_infra::sql::redact(control_url)
            ))
        })?;
        let name = url.path().trim_start_matches('/').to_owned();
        if name.is_empty() {
            return Err(config(format!(
                "{} names no database to name the shards' databases after; give one, or set the shards' URL template",
                praxis_infra::sql::redact(control_url)
            )));
        }
        url.set_path(&format!("/{name}_{{region}}_{{shard}}"));
        // `Url` escapes the braces in a path; the template needs them as written.
        Ok(Placement::SameServer(
            url.to_string().replace("%7B", "{").replace("%7D", "}"),
        ))
    }
}

fn config(message: String) -> ShardError {
    ShardError::Infra(praxis_infra::InfraError::Config(message))
}

/// Creates the PostgreSQL database `url` names through `control` (a connection to the same
/// server), unless it exists. Names are the placement's own (`[a-z0-9_]`), checked again here
/// since they are spliced into the statement.
async fn create_database(control: &Db, url: &str) -> Result<(), ShardError> {
    let parsed = url::Url::parse(url).map_err(|e| config(format!("shard URL: {e}")))?;
    let name = parsed.path().trim_start_matches('/');
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(config(format!(
            "cannot create the shard database {name:?}: a name of lowercase letters, digits and _ is needed"
        )));
    }
    let exists: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(control.pool())
            .await?;
    if exists > 0 {
        return Ok(());
    }
    let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(control.pool())
        .await;
    match made {
        Ok(_) => Ok(()),
        // Another process created it first: "duplicate database", or, when both ran at once,
        // the catalog's unique index.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {
            Ok(())
        }
        Err(e) => Err(config(format!(
            "cannot create the shard database {name} ({e}); create it, or give the control database's role CREATEDB"
        ))),
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
        if matches!(self.inner.placement, Placement::SameServer(_)) && url.starts_with("postgres") {
            create_database(&self.inner.control, &url).await?;
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
        if matches!(self.inner.placement, Placement::SameServer(_)) && url.starts_with("postgres") {
            // Created on first use, so a deployment that never routes to a shard never
            // creates its database.
            create_database(&self.inner.control, &url).await?;
        }
        let db = Db::connect_with(&url, &self.inner.options).await?;
        for set in &self.inner.migrations {
            db.migrate(set).await?;
        }
        self.inner.pools.lock().insert(key, db.clone());
        Ok(db)
    }

    /// The shards of `region` this process has opened.
    pub fn opened(&self, region: &str) -> Vec<String> {
        self.inner
            .pools
            .lock()
            .keys()
            .filter(|(r, _)| r == region)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Closes every pool (at shutdown).
    pub async fn close(&self) {
        let pools: Vec<Db> = self.inner.pools.lock().drain().map(|(_, db)| db).collect();
        for db in pools {
            db.close().await;
        }
    }
}
