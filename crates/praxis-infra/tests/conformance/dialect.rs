//! SQL dialect helpers: the same statement text and locking behave the same on SQLite and
//! PostgreSQL.

use std::collections::BTreeSet;

use praxis_infra::Db;
use praxis_testkit::TestBackend;
use sqlx::AssertSqlSafe;

praxis_testkit::backend_matrix!(
    praxis_testkit::matrix::with_backend,
    crate::dialect: [
        placeholder_lists_bind_in_order,
        advisory_locks_serialise_writers,
        row_locks_serialise_writers,
        claims_skip_locked_rows,
        database_clock_is_unix_milliseconds,
    ]
);

/// Writers that run at once in [`serialised_increments`] and [`claims_skip_locked_rows`].
const WRITERS: i64 = 8;

async fn create(db: &Db, ddl: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(ddl.to_string()))
        .execute(db.pool())
        .await?;
    Ok(())
}

async fn placeholder_lists_bind_in_order(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    let backend = db.backend();
    create(
        db,
        "CREATE TABLE dialect_rows (n BIGINT NOT NULL, label TEXT NOT NULL)",
    )
    .await?;
    let rows = [(1i64, "one"), (2, "two"), (3, "three")];
    let sql = format!(
        "INSERT INTO dialect_rows (n, label) VALUES {}",
        backend.placeholders(1, rows.len(), 2)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (n, label) in rows {
        q = q.bind(n).bind(label);
    }
    q.execute(db.pool()).await?;

    // A list holding the first values, then a number after it.
    let sql = format!(
        "SELECT label FROM dialect_rows WHERE n IN ({}) AND label <> $3 ORDER BY n",
        backend.placeholders(1, 2, 1)
    );
    let labels: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(1i64)
        .bind(3i64)
        .bind("one")
        .fetch_all(db.pool())
        .await?;
    assert_eq!(labels, ["three"]);

    // A list after a numbered value.
    let sql = format!(
        "SELECT label FROM dialect_rows WHERE label <> $1 AND n IN ({}) ORDER BY n",
        backend.placeholders(2, 3, 1)
    );
    let labels: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind("two")
        .bind(1i64)
        .bind(2i64)
        .bind(3i64)
        .fetch_all(db.pool())
        .await?;
    assert_eq!(labels, ["one", "three"]);
    Ok(())
}

/// The database's clock expression reads as unix milliseconds, within a second of this
/// process's clock (same host), and compares with a bound `BIGINT`.
async fn database_clock_is_unix_milliseconds(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    let before = praxis_infra::sql::now_ms();
    let sql = format!("SELECT {}", db.backend().now_ms_sql());
    let at: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await?;
    let after = praxis_infra::sql::now_ms();
    assert!(
        (before - 1000..=after + 1000).contains(&at),
        "database clock {at} is not between {before} and {after} (± 1 s)"
    );
    let sql = format!(
        "SELECT CASE WHEN {} > $1 THEN 1 ELSE 0 END",
        db.backend().now_ms_sql()
    );
    let later: i32 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(before - 60_000)
        .fetch_one(db.pool())
        .await?;
    assert_eq!(
        later, 1,
        "the clock expression does not compare with a BIGINT"
    );
    Ok(())
}

/// Runs [`WRITERS`] read-then-write increments of one counter at once, each in a write
/// transaction that first calls `lock`; returns the counter's final value.
async fn serialised_increments<L>(db: &Db, lock: L) -> anyhow::Result<i64>
where
    L: Fn(Db, sqlx::Transaction<'static, sqlx::Any>) -> LockFuture + Clone + Send + 'static,
{
    create(
        db,
        "CREATE TABLE dialect_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    )
    .await?;
    sqlx::query("INSERT INTO dialect_counters (name, value) VALUES ('c', 0)")
        .execute(db.pool())
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (db, lock) = (db.clone(), lock.clone());
        tasks.spawn(async move {
            let tx = db.begin_write().await?;
            let mut tx = lock(db, tx).await?;
            let value: i64 =
                sqlx::query_scalar("SELECT value FROM dialect_counters WHERE name = 'c'")
                    .fetch_one(&mut *tx)
                    .await?;
            tokio::task::yield_now().await;
            sqlx::query("UPDATE dialect_counters SET value = $1 WHERE name = 'c'")
                .bind(value + 1)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(
        sqlx::query_scalar("SELECT value FROM dialect_counters WHERE name = 'c'")
            .fetch_one(db.pool())
            .await?,
    )
}

type LockFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = anyhow::Result<sqlx::Transaction<'static, sqlx::Any>>>
            + Send,
    >,
>;

async fn advisory_locks_serialise_writers(t: TestBackend) -> anyhow::Result<()> {
    let value = serialised_increments(&t.platform.db, |db, mut tx| {
        Box::pin(async move {
            db.lock_xact(&mut tx, 7_301_999).await?;
            Ok(tx)
        })
    })
    .await?;
    assert_eq!(value, WRITERS, "an increment was lost");
    Ok(())
}

async fn row_locks_serialise_writers(t: TestBackend) -> anyhow::Result<()> {
    let value = serialised_increments(&t.platform.db, |db, mut tx| {
        Box::pin(async move {
            db.lock_rows(&mut tx, "dialect_counters", "name", &["c", "c"])
                .await?;
            Ok(tx)
        })
    })
    .await?;
    assert_eq!(value, WRITERS, "an increment was lost");
    Ok(())
}

async fn claims_skip_locked_rows(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    create(
        db,
        "CREATE TABLE dialect_jobs (id BIGINT PRIMARY KEY, taken BIGINT NOT NULL)",
    )
    .await?;
    for id in 0..WRITERS {
        sqlx::query("INSERT INTO dialect_jobs (id, taken) VALUES ($1, 0)")
            .bind(id)
            .execute(db.pool())
            .await?;
    }
    let claim = format!(
        "SELECT id FROM dialect_jobs WHERE taken = 0 ORDER BY id LIMIT 1{}",
        db.backend().skip_locked()
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (db, claim) = (db.clone(), claim.clone());
        tasks.spawn(async move {
            let mut tx = db.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(AssertSqlSafe(claim))
                .fetch_optional(&mut *tx)
                .await?;
            tokio::task::yield_now().await;
            if let Some(id) = id {
                sqlx::query("UPDATE dialect_jobs SET taken = taken + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            anyhow::Ok(id)
        });
    }
    let mut claimed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        claimed.extend(done??);
    }
    let distinct: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        claimed.len(),
        "a row was claimed twice: {claimed:?}"
    );
    let twice: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dialect_jobs WHERE taken > 1")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(twice, 0);
    Ok(())
}

/// The bundled SQLite keeps the plan of a prepared statement when its parameters are bound
/// again (`.cargo/config.toml`, D74): without the query planner stability guarantee, a
/// statement with `LIMIT $n` is marked stale at every bind and parsed and planned again at
/// every execution.
#[tokio::test]
async fn sqlite_keeps_the_plans_of_prepared_statements() -> anyhow::Result<()> {
    let t = praxis_testkit::embedded().await;
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(t.platform.db.pool())
        .await?;
    assert!(
        options.iter().any(|o| o == "ENABLE_QPSG"),
        "SQLite was built without SQLITE_ENABLE_QPSG (is LIBSQLITE3_FLAGS from .cargo/config.toml set?): {options:?}"
    );
    Ok(())
}
