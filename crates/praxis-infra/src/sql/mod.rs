//! SQL port: one [`Db`] handle over SQLite (embedded) or PostgreSQL (scaled) through sqlx's
//! `Any` driver, so every system writes its SQL once.
//!
//! Conventions for SQL written against [`Db`]:
//! - `$1, $2, ...` placeholders, `ON CONFLICT ... DO ...`, `RETURNING` (both backends accept them);
//! - what still differs (write transactions, placeholder lists, row and advisory locks) goes
//!   through the helpers of [`dialect`], never through a branch on [`Db::backend`];
//! - only integers (`BIGINT`), floats (`DOUBLE PRECISION`), text and bytes (`BLOB` on SQLite,
//!   `BYTEA` on PostgreSQL) cross the `Any` driver the same way on both backends; store times as
//!   `BIGINT` unix milliseconds (UTC), UUIDs as text, and booleans as `BIGINT` 0/1 (a SQLite
//!   `BOOLEAN` column cannot be decoded through `Any`);
//! - schema SQL differs per backend and lives in a [`Migration`] with both texts.

pub mod dialect;
mod migrate;

pub use dialect::now_ms;
pub use migrate::{Migration, MigrationSet};

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::InfraError;
use crate::tls::TrustPolicy;

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file in WAL mode (embedded mode).
    Sqlite,
    /// PostgreSQL server (scaled mode).
    Postgres,
}

impl Backend {
    /// Lowercase name, as used in logs and test names.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool settings for [`Db::connect_with`].
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long an acquire waits for a free connection before failing (transient error).
    pub acquire_timeout: Duration,
    /// Which server certificates PostgreSQL connections over TLS trust: the OS store, plus the
    /// policy's CA file (given to the driver as `sslrootcert` unless the URL names one).
    pub trust: TrustPolicy,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            trust: TrustPolicy::system(),
        }
    }
}

/// A pooled database handle: a `sqlx::AnyPool` plus the [`Backend`] behind it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: std::sync::Arc<str>,
}

/// Registers sqlx's SQLite and PostgreSQL drivers for `Any` (idempotent).
pub fn install_drivers() {
    sqlx::any::install_default_drivers();
}

impl Db {
    /// Connects with default pool settings.
    ///
    /// Accepts `sqlite:///abs/path.db`, `sqlite://rel/path.db`, `sqlite:rel.db` or
    /// `postgres://...` (TLS as its `sslmode` says: `sslmode=verify-full` checks the server's
    /// certificate against the [trust policy](DbOptions::trust) and its host name). For SQLite the file and its directory are created, and every
    /// connection runs in WAL mode with `synchronous=NORMAL`, `busy_timeout=5s` and
    /// `foreign_keys=ON`.
    pub async fn connect(url: &str) -> Result<Db, InfraError> {
        Db::connect_with(url, &DbOptions::default()).await
    }

    /// Connects with explicit pool settings (see [`Db::connect`] for the accepted URLs).
    pub async fn connect_with(url: &str, opts: &DbOptions) -> Result<Db, InfraError> {
        install_drivers();
        let backend = backend_of(url)?;
        let pool_opts = AnyPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout);
        let pool = match backend {
            Backend::Postgres => {
                let url = with_root_cert(url, &opts.trust)?;
                pool_opts.connect(&url).await.map_err(|e| {
                    opts.trust
                        .explain(&format!("database_url {}", redact(&url)), &e)
                        .unwrap_or_else(|| e.into())
                })?
            }
            Backend::Sqlite => {
                let url = prepare_sqlite_file(url).await?;
                // WAL is a property of the file: set it once, before the pool opens connections.
                let mut first = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await?;
                sqlx::raw_sql("PRAGMA journal_mode=WAL")
                    .execute(&mut first)
                    .await?;
                sqlx::Connection::close(first).await?;
                // A SQLite connection is a handle in this process, not a socket that can go
                // stale: a ping before each acquire would only be one more round trip to the
                // connection's worker thread (D75).
                pool_opts
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(sqlx::raw_sql(
                                "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON",
                            ))
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
        };
        tracing::debug!(backend = backend.name(), "database connected");
        Ok(Db {
            pool,
            backend,
            url: url.into(),
        })
    }

    /// The URL it was connected with, credentials included: [`redact`] it before showing it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying pool, for queries: `sqlx::query("...").bind(..).execute(db.pool())`.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this handle talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round trip to the database (`SELECT 1`), for readiness checks.
    pub async fn ping(&self) -> Result<(), InfraError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Applies the migrations of `set` that are not yet recorded in its history table,
    /// `praxis_migrations_<system>`.
    /// See [`MigrationSet`] for the guarantees.
    pub async fn migrate(&self, set: &MigrationSet) -> Result<(), InfraError> {
        migrate::run(self, set).await
    }

    /// Writes a consistent snapshot of a SQLite database to the new file `path` (`VACUUM
    /// INTO`: one read transaction, so writers go on meanwhile). PostgreSQL has its own tools
    /// (`pg_dump`): a configuration error names them.
    pub async fn snapshot_into(&self, path: &std::path::Path) -> Result<(), InfraError> {
        if self.backend != Backend::Sqlite {
            return Err(InfraError::Config(
                "a snapshot copies a SQLite database; back PostgreSQL up with pg_dump or your provider's snapshots".to_owned(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool, waiting for checked-out connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, InfraError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(InfraError::Config(format!(
            "database_url {:?} is not supported: use sqlite:///abs/path.db, sqlite://rel/path.db or postgres://user@host/db",
            redact(url)
        )))
    }
}

/// `url` with `sslrootcert=<the policy's CA file>` added, when the policy has a CA file and the
/// URL names no root certificate of its own (`sslrootcert`, `ssl-root-cert` or `ssl-ca`). The
/// driver trusts the OS store plus that file, which is the policy.
fn with_root_cert(url: &str, trust: &TrustPolicy) -> Result<String, InfraError> {
    let Some(ca_file) = trust.ca_file() else {
        return Ok(url.to_owned());
    };
    let mut parsed = url::Url::parse(url).map_err(|e| {
        InfraError::Config(format!("database_url {:?} is not a URL: {e}", redact(url)))
    })?;
    if parsed
        .query_pairs()
        .any(|(k, _)| matches!(&*k, "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
    {
        return Ok(url.to_owned());
    }
    parsed
        .query_pairs_mut()
        .append_pair("sslrootcert", &ca_file.to_string_lossy());
    Ok(parsed.into())
}

/// Resolves the SQLite file path, creates its directory and returns a URL that creates the
/// file if missing (`mode=rwc`). In-memory URLs are passed through (one DB per connection!).
async fn prepare_sqlite_file(url: &str) -> Result<String, InfraError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" || params.is_some_and(|q| q.contains("mode=memory")) {
        tracing::warn!(
            "sqlite in-memory database: every pooled connection sees its own empty database"
        );
        return Ok(url.to_string());
    }
    let path: PathBuf = std::path::absolute(Path::new(path))
        .map_err(|e| InfraError::Config(format!("database_url path {path:?}: {e}")))?;
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            InfraError::Config(format!(
                "cannot create directory {} for the database: {e}",
                dir.display()
            ))
        })?;
    }
    let mut query = params.map(str::to_string).unwrap_or_default();
    if !query.contains("mode=") {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    let encoded: String = path
        .to_string_lossy()
        .chars()
        .map(|c| match c {
            '%' => "%25".to_string(),
            '?' => "%3F".to_string(),
            '#' => "%23".to_string(),
            c => c.to_string(),
        })
        .collect();
    Ok(format!("sqlite://{encoded}?{query}"))
}

/// A URL with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_detected() {
        assert_eq!(backend_of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            backend_of("mysql://h/db"),
            Err(InfraError::Config(_))
        ));
    }

    #[test]
    fn the_ca_file_becomes_sslrootcert_unless_the_url_names_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = dir.path().join("a ca.pem");
        std::fs::write(&ca, params.self_signed(&key)?.pem())?;
        let trust = TrustPolicy::load(Some(&ca))?;
        let url = "postgres://u@h/db?sslmode=verify-full";
        assert_eq!(with_root_cert(url, &TrustPolicy::system())?, url);
        let with = with_root_cert(url, &trust)?;
        let parsed = url::Url::parse(&with)?;
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), ca.display().to_string()),
            ]
        );
        let own = "postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/own.pem";
        assert_eq!(with_root_cert(own, &trust)?, own);
        Ok(())
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[tokio::test]
    async fn sqlite_paths_become_absolute_and_creatable() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("a b/c.db");
        let url = prepare_sqlite_file(&format!("sqlite://{}", target.display())).await?;
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(dir.path().join("a b").is_dir());
        Ok(())
    }
}
