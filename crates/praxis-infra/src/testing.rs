//! Ready-made platforms for integration suites (this crate's and every system's).
//!
//! Scaled backends never skip: when a service is unreachable the test panics with the
//! variable to set and the command that starts it. Every backend isolates its data: its own
//! SQLite temp file or fresh PostgreSQL database `praxis_t_<uuid>`, its own Redis key prefix
//! and NATS subject/stream prefix `ptest_<id>`. The databases of [`scaled`] and
//! [`scaled_pair`] are dropped when their backends are (set `PRAXIS_TEST_KEEP=1` to keep
//! them); test streams keep events 10 minutes; test databases and streams older than 15
//! minutes are dropped by later runs.
#![allow(clippy::panic, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use uuid::Uuid;

use crate::bus::BusOptions;
use crate::platform::{Platform, PlatformConfig, PlatformOptions};
use crate::sql::DbOptions;

/// Variable naming the PostgreSQL server of scaled tests (an admin URL; a fresh database is
/// created per backend).
pub const POSTGRES_ENV: &str = "PRAXIS_TEST_POSTGRES_URL";
/// Variable naming the Redis server of scaled tests.
pub const REDIS_ENV: &str = "PRAXIS_TEST_REDIS_URL";
/// Variable naming the NATS server (JetStream enabled) of scaled tests.
pub const NATS_ENV: &str = "PRAXIS_TEST_NATS_URL";

/// Test databases and streams older than this are assumed abandoned and dropped.
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Set to keep test databases after the test (for debugging).
pub const KEEP_ENV: &str = "PRAXIS_TEST_KEEP";

/// A platform for one test, with what keeps it alive. Dropping it cancels its shutdown token.
pub struct TestBackend {
    /// `"sqlite"` (embedded) or `"postgres"` (scaled).
    pub name: &'static str,
    /// The platform under test.
    pub platform: Platform,
    /// The configuration it was built from (connect a "restarted" process with it).
    pub config: PlatformConfig,
    _dir: TempDir,
    _database: Option<Arc<DropDatabase>>,
}

impl std::fmt::Debug for TestBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBackend")
            .field("name", &self.name)
            .field("platform", &self.platform)
            .finish()
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
    }
}

/// PostgreSQL admin URL of the tests (`PRAXIS_TEST_POSTGRES_URL` or the local default).
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Redis URL of the tests (`PRAXIS_TEST_REDIS_URL` or the local default).
pub fn redis_url() -> String {
    std::env::var(REDIS_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// NATS URL of the tests (`PRAXIS_TEST_NATS_URL` or the local default).
pub fn nats_url() -> String {
    std::env::var(NATS_ENV).unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A prefix no other test uses, for Redis keys, NATS subjects and stream names.
pub fn unique_prefix() -> String {
    format!("ptest_{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Bus tuning for tests: fast polling and retries, streams that expire after 10 minutes.
pub fn bus_options() -> BusOptions {
    BusOptions {
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(500),
        lease: Duration::from_secs(5),
        prune_interval: Duration::from_millis(500),
        stream_max_age: Duration::from_secs(600),
        ack_wait: Duration::from_secs(10),
        ..BusOptions::default()
    }
}

fn options() -> PlatformOptions {
    PlatformOptions {
        db: DbOptions {
            max_connections: 5,
            ..DbOptions::default()
        },
        bus: bus_options(),
    }
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("praxis-test-")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// SQLite URL of a database file inside `dir`.
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("praxis.db").display())
}

/// Embedded platform: SQLite temp file, local broadcaster, in-process bus.
pub async fn embedded() -> TestBackend {
    let dir = temp_dir();
    let config = PlatformConfig {
        database_url: sqlite_url(dir.path()),
        redis_url: None,
        nats_url: None,
        data_dir: dir.path().join("data"),
        prefix: unique_prefix(),
    };
    let platform = Platform::connect_with(&config, &options())
        .await
        .unwrap_or_else(|e| panic!("embedded test platform failed to start: {e}"));
    TestBackend {
        name: "sqlite",
        platform,
        config,
        _dir: dir,
        _database: None,
    }
}

/// Scaled platform: fresh PostgreSQL database, Redis and NATS with a unique prefix.
pub async fn scaled() -> TestBackend {
    let database = Arc::new(create_postgres_database().await);
    let config = scaled_config(&database.url, &unique_prefix()).await;
    connect_scaled(config, database).await
}

/// Two scaled platforms ("two processes") sharing one fresh PostgreSQL database, Redis
/// prefix and NATS prefix. They start concurrently (as a real deployment would).
pub async fn scaled_pair() -> (TestBackend, TestBackend) {
    let database = Arc::new(create_postgres_database().await);
    let url = database.url.clone();
    let prefix = unique_prefix();
    let a = scaled_config(&url, &prefix).await;
    let b = scaled_config(&url, &prefix).await;
    tokio::join!(
        connect_scaled(a, database.clone()),
        connect_scaled(b, database)
    )
}

async fn scaled_config(database_url: &str, prefix: &str) -> PlatformConfig {
    let redis = redis_url();
    let nats = nats_url();
    check_redis(&redis).await;
    check_nats(&nats).await;
    PlatformConfig {
        database_url: database_url.to_string(),
        redis_url: Some(redis),
        nats_url: Some(nats),
        data_dir: std::env::temp_dir().join("praxis-test-data").join(prefix),
        prefix: prefix.to_string(),
    }
}

async fn connect_scaled(mut config: PlatformConfig, database: Arc<DropDatabase>) -> TestBackend {
    let dir = temp_dir();
    config.data_dir = dir.path().join("data");
    let platform = Platform::connect_with(&config, &options())
        .await
        .unwrap_or_else(|e| panic!("scaled test platform failed to start: {e}"));
    TestBackend {
        name: "postgres",
        platform,
        config,
        _dir: dir,
        _database: Some(database),
    }
}

/// Creates an empty database `praxis_t_<uuid>` on the test PostgreSQL server and returns its
/// URL. The database is not dropped automatically (later runs drop it once it is stale);
/// [`scaled`] and [`scaled_pair`] drop theirs when the last backend using it is dropped.
pub async fn fresh_postgres_database() -> String {
    let mut database = create_postgres_database().await;
    database.keep = true;
    database.url.clone()
}

/// A test database that is dropped (best effort, in the background) with this value.
struct DropDatabase {
    admin: String,
    name: String,
    url: String,
    keep: bool,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if self.keep || std::env::var_os(KEEP_ENV).is_some() {
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Detached: no blocking in the caller's runtime. If the test process exits first, the
        // database is dropped as stale by a later run.
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
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
        });
    }
}

async fn create_postgres_database() -> DropDatabase {
    use sqlx::Connection;
    crate::sql::install_drivers();
    let admin = postgres_url();
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::AnyConnection::connect(&admin),
    )
    .await;
    let mut conn = match connect {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => unreachable_service("PostgreSQL", POSTGRES_ENV, &admin, &e.to_string()),
        Err(_) => unreachable_service("PostgreSQL", POSTGRES_ENV, &admin, "connection timed out"),
    };
    spawn_stale_database_cleanup(&admin);
    let name = format!("praxis_t_{}", Uuid::now_v7().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create test database {name} via {POSTGRES_ENV}={admin}: {e}")
        });
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin)
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={admin} is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    DropDatabase {
        admin,
        name,
        url: url.to_string(),
        keep: false,
    }
}

/// Once per test process, drops abandoned test databases in a background thread (dropping a
/// database takes a while; tests must not wait for it).
fn spawn_stale_database_cleanup(admin: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let admin = admin.to_string();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(drop_stale_databases(admin));
        });
    });
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

async fn check_redis(url: &str) {
    let attempt = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = crate::redis_conn::connect(url).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, crate::InfraError>(())
    })
    .await;
    match attempt {
        Ok(Ok(())) => {}
        Ok(Err(e)) => unreachable_service("Redis", REDIS_ENV, url, &e.to_string()),
        Err(_) => unreachable_service("Redis", REDIS_ENV, url, "connection timed out"),
    }
}

async fn check_nats(url: &str) {
    let attempt = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url)).await;
    let client = match attempt {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => unreachable_service("NATS", NATS_ENV, url, &e.to_string()),
        Err(_) => unreachable_service("NATS", NATS_ENV, url, "connection timed out"),
    };
    drop_stale_streams(client);
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

fn unreachable_service(what: &str, var: &str, url: &str, error: &str) -> ! {
    let start = match what {
        "PostgreSQL" => "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        "Redis" => {
            "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
        }
        _ => "nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server &",
    };
    panic!(
        "{what} is unreachable at {url} ({error}). Scaled tests never skip: set {var} to a running \
         server or start the local one with: {start}"
    )
}

impl TestBackend {
    /// A second bus on this backend's database and prefix, as a restarted process would build
    /// it (embedded or JetStream, like the platform's).
    pub async fn new_bus(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<crate::bus::Bus, crate::InfraError> {
        let db = self.platform.db.clone();
        match self.platform.nats_client() {
            Some(client) => {
                crate::bus::Bus::nats_with(
                    db,
                    client.clone(),
                    &self.config.prefix,
                    shutdown,
                    bus_options(),
                )
                .await
            }
            None => crate::bus::Bus::embedded_with(db, shutdown, bus_options()).await,
        }
    }
}
