//! Where the scaled tests' services are, and per-test isolation on them.
//!
//! Scaled tests never skip (decision D6): when a service is unreachable the test panics with
//! the variable to set and the command that starts the local one. Every test isolates its
//! data: a fresh PostgreSQL database `praxis_t_<uuid>`, and a Redis key prefix, NATS
//! subject/stream prefix and S3 key prefix `ptest_<id>` of its own. Test streams keep events 10 minutes; test
//! databases and streams older than 15 minutes are dropped by later runs.
//!
//! TLS tests use the TLS servers of [`tls`] (`PRAXIS_TEST_*_TLS_URL`, signed by the CA of
//! `PRAXIS_TEST_TLS_CA_FILE`), which scripts/test starts with a CA made for each run.

use std::path::PathBuf;
use std::time::Duration;

use praxis_infra::blobs::Blobs;
pub use praxis_infra::testing::{
    NATS_ENV, POSTGRES_ENV, REDIS_ENV, S3_ENV, nats_url, postgres_url, redis_url, s3_url,
    unique_prefix, unreachable_service,
};
use redis::aio::ConnectionManager;
use uuid::Uuid;

/// Set to keep test databases after the test (for debugging).
pub const KEEP_ENV: &str = "PRAXIS_TEST_KEEP";

/// Test databases and streams older than this are assumed abandoned and dropped.
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// SQLite URL of a database file inside `dir`.
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("praxis.db").display())
}

/// A connection to the test Redis (checked with `PING`), or a panic naming
/// [`REDIS_ENV`].
pub async fn redis() -> ConnectionManager {
    let url = redis_url();
    let attempt = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = praxis_infra::redis_conn::connect(&url).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, praxis_infra::InfraError>(conn)
    })
    .await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => unreachable_service("Redis", REDIS_ENV, &url, &e.to_string()),
        Err(_) => unreachable_service("Redis", REDIS_ENV, &url, "connection timed out"),
    }
}

/// A client of the test NATS server, or a panic naming [`NATS_ENV`]. The first call of a
/// process also deletes abandoned test streams in the background.
pub async fn nats() -> async_nats::Client {
    let url = nats_url();
    let attempt = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
    let client = match attempt {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => unreachable_service("NATS", NATS_ENV, &url, &e.to_string()),
        Err(_) => unreachable_service("NATS", NATS_ENV, &url, "connection timed out"),
    };
    drop_stale_streams(client.clone());
    client
}

pub use praxis_infra::testing::fresh_postgres_database;

/// The blobs URL of a test on the test bucket ([`S3_ENV`]): its key prefix is `prefix`
/// (under the URL's own prefix, if any), and its `part_size` the given one when set (S3's
/// smallest, 5 MiB = 5242880, keeps multipart tests small).
pub fn s3_test_url(prefix: &str, part_size: Option<u64>) -> String {
    let base = s3_url();
    let mut url =
        url::Url::parse(&base).unwrap_or_else(|e| panic!("{S3_ENV}={base} is not a URL: {e}"));
    let path = format!("{}/{prefix}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    if let Some(size) = part_size {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "part_size")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("part_size", &size.to_string());
    }
    url.to_string()
}

/// Fails the test unless the test bucket answers: checks the credentials' variables, then
/// lists the bucket. Panics naming [`S3_ENV`] and how to start the local server.
pub async fn s3_check() {
    let url = s3_url();
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var_os(var).is_none() {
            unreachable_service(
                "S3",
                S3_ENV,
                &url,
                &format!("{var} is not set; the S3 credentials come from the AWS_* variables"),
            );
        }
    }
    let blobs = open_s3(&url).await;
    match tokio::time::timeout(Duration::from_secs(10), blobs.check()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => unreachable_service("S3", S3_ENV, &url, &e.to_string()),
        Err(_) => unreachable_service("S3", S3_ENV, &url, "no answer within 10s"),
    }
}

/// A blob store on the test bucket under a key prefix of its own (`ptest_<id>`), checked to
/// answer (or a panic naming [`S3_ENV`]); `part_size` as in [`s3_test_url`].
pub async fn s3_blobs(part_size: Option<u64>) -> Blobs {
    s3_check().await;
    open_s3(&s3_test_url(&unique_prefix(), part_size)).await
}

async fn open_s3(url: &str) -> Blobs {
    Blobs::open(url, &praxis_infra::tls::TrustPolicy::system())
        .await
        .unwrap_or_else(|e| panic!("{S3_ENV}={url}: {e}"))
}

/// A fresh test database, dropped (best effort, in the background) with the last clone of
/// this value (set `PRAXIS_TEST_KEEP=1` to keep it).
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    /// The database's URL.
    pub url: String,
    keep: bool,
}

impl TestDatabase {
    /// Creates an empty database on the server of [`POSTGRES_ENV`] (or panics naming it).
    pub async fn create() -> TestDatabase {
        let url = praxis_infra::testing::fresh_postgres_database().await;
        let admin = postgres_url();
        spawn_stale_database_cleanup(&admin);
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        TestDatabase {
            admin,
            name,
            url,
            keep: false,
        }
    }
}

/// Variable naming the PEM file of the CA that signed the certificates of the TLS test servers.
pub const TLS_CA_FILE_ENV: &str = "PRAXIS_TEST_TLS_CA_FILE";
/// Variable naming the TLS PostgreSQL server (an admin URL with `sslmode=verify-full`).
pub const POSTGRES_TLS_ENV: &str = "PRAXIS_TEST_POSTGRES_TLS_URL";
/// Variable naming the TLS Redis server (`rediss://`).
pub const REDIS_TLS_ENV: &str = "PRAXIS_TEST_REDIS_TLS_URL";
/// Variable naming the TLS NATS server with JetStream (`tls://`).
pub const NATS_TLS_ENV: &str = "PRAXIS_TEST_NATS_TLS_URL";

/// The TLS test servers and the CA that signed their certificates (a private CA: not in the
/// OS trust store).
#[derive(Debug, Clone)]
pub struct TlsServices {
    /// PEM file of the CA.
    pub ca_file: PathBuf,
    /// PostgreSQL admin URL (`sslmode=verify-full`, no `sslrootcert`).
    pub postgres_url: String,
    /// `rediss://HOST:PORT`.
    pub redis_url: String,
    /// `tls://HOST:PORT`.
    pub nats_url: String,
}

/// The TLS test servers from their variables, or a panic naming the one that is missing: TLS
/// tests never skip, and only scripts/test (or you) can make the CA they need.
pub fn tls() -> TlsServices {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set. TLS tests never skip: run scripts/test, which starts TLS \
                 listeners of PostgreSQL, Redis and NATS with a CA made for the run, or set \
                 {TLS_CA_FILE_ENV}, {POSTGRES_TLS_ENV}, {REDIS_TLS_ENV} and {NATS_TLS_ENV}"
            )
        })
    };
    TlsServices {
        ca_file: PathBuf::from(var(TLS_CA_FILE_ENV)),
        postgres_url: var(POSTGRES_TLS_ENV),
        redis_url: var(REDIS_TLS_ENV),
        nats_url: var(NATS_TLS_ENV),
    }
}

impl TlsServices {
    /// The trust policy of a server configured with `tls_ca_file` = the test CA.
    pub fn trust(&self) -> praxis_infra::tls::TrustPolicy {
        praxis_infra::tls::TrustPolicy::load(Some(&self.ca_file))
            .unwrap_or_else(|e| panic!("{TLS_CA_FILE_ENV}: {e}"))
    }

    /// A fresh database on the TLS PostgreSQL server (created over TLS), dropped with the
    /// value. Its URL keeps the server's `sslmode` and names no root certificate, so whoever
    /// connects must trust the CA through its own setting.
    pub async fn database(&self) -> TestDatabase {
        use sqlx::Connection;
        praxis_infra::sql::install_drivers();
        let mut admin = url::Url::parse(&self.postgres_url).unwrap_or_else(|e| {
            panic!("{POSTGRES_TLS_ENV}={} is not a URL: {e}", self.postgres_url)
        });
        let mut url = admin.clone();
        admin
            .query_pairs_mut()
            .append_pair("sslrootcert", &self.ca_file.to_string_lossy());
        let admin = admin.to_string();
        let mut conn = match tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::AnyConnection::connect(&admin),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => tls_unreachable(POSTGRES_TLS_ENV, &self.postgres_url, &e.to_string()),
            Err(_) => tls_unreachable(POSTGRES_TLS_ENV, &self.postgres_url, "connection timed out"),
        };
        let name = format!("praxis_t_{}", Uuid::now_v7().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create {name} via {POSTGRES_TLS_ENV}: {e}"));
        let _ = conn.close().await;
        url.set_path(&format!("/{name}"));
        TestDatabase {
            admin,
            name,
            url: url.to_string(),
            keep: false,
        }
    }
}

/// Fails the test: the TLS server of `var` is unreachable at `url`.
pub fn tls_unreachable(var: &str, url: &str, error: &str) -> ! {
    panic!(
        "the TLS test server of {var} is unreachable at {url} ({error}). TLS tests never skip: \
         run scripts/test, which starts one with a CA made for the run, or point {var} and \
         {TLS_CA_FILE_ENV} at yours"
    )
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.keep || std::env::var_os(KEEP_ENV).is_some() {
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Detached: no blocking in the caller's runtime. If the test process exits first, the
        // database is dropped as stale by a later run.
        in_background(async move {
            use sqlx::Connection;
            let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await else {
                return;
            };
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        });
    }
}

/// Runs `work` on a thread and runtime of its own (tests must not wait for it).
fn in_background(work: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(work);
        }
    });
}

/// Once per test process, drops abandoned test databases in the background (dropping a
/// database takes a while).
fn spawn_stale_database_cleanup(admin: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| in_background(drop_stale_databases(admin.to_string())));
}

async fn drop_stale_databases(admin: String) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await else {
        return;
    };
    let list = "SELECT datname::text FROM pg_database WHERE datname LIKE 'praxis_t_%'";
    let Ok(names) = sqlx::query_scalar::<_, String>(list)
        .fetch_all(&mut conn)
        .await
    else {
        return;
    };
    for name in names {
        let safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !safe || !is_stale_uuid(name.trim_start_matches("praxis_t_")) {
            continue;
        }
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut conn)
            .await
        {
            tracing::debug!(database = %name, error = %e, "could not drop a stale test database");
        }
    }
    let _ = conn.close().await;
}

/// Whether a simple-format UUIDv7 is older than [`STALE_AFTER`].
fn is_stale_uuid(simple: &str) -> bool {
    let Ok(id) = Uuid::parse_str(simple) else {
        return false;
    };
    let Some(ts) = id.get_timestamp() else {
        return false;
    };
    let (secs, _) = ts.to_unix();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now.saturating_sub(secs) > STALE_AFTER.as_secs()
}

/// Once per test process, deletes abandoned test streams (best effort, in the background).
fn drop_stale_streams(client: async_nats::Client) {
    use futures::TryStreamExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tokio::spawn(async move {
            let js = async_nats::jetstream::new(client);
            let Ok(streams) = js.streams().try_collect::<Vec<_>>().await else {
                return;
            };
            let cutoff = time::OffsetDateTime::now_utc() - STALE_AFTER;
            for info in streams {
                if info.config.name.starts_with("ptest_") && info.created < cutoff {
                    let _ = js.delete_stream(&info.config.name).await;
                }
            }
        });
    });
}
