//! SQL port: migrations and type mapping behave the same on SQLite and PostgreSQL.

use praxis_infra::{Backend, Db, InfraError, Migration, MigrationSet};
use sqlx::{Connection, Row};

use crate::backend::{Services, TestBackend};

/// Runs the SQL port's cases on the database of `services` (SQLite or PostgreSQL).
pub async fn suite(services: Services) -> anyhow::Result<()> {
    cases!(
        services;
        migrations_are_idempotent,
        migrations_run_concurrently,
        failed_migration_leaves_nothing,
        edited_migration_stops_the_run,
        legacy_history_is_bridged,
        types_round_trip,
        upsert_returning,
    )
}

static ITEMS: MigrationSet = MigrationSet {
    system: "conformance_sql",
    migrations: &[
        Migration {
            version: 1,
            name: "items",
            sqlite: "CREATE TABLE conf_items (
                        id TEXT PRIMARY KEY, n BIGINT NOT NULL, f DOUBLE PRECISION NOT NULL,
                        b BLOB NOT NULL, flag BIGINT NOT NULL, note TEXT);
                     CREATE INDEX conf_items_n ON conf_items (n)",
            postgres: "CREATE TABLE conf_items (
                        id TEXT PRIMARY KEY, n BIGINT NOT NULL, f DOUBLE PRECISION NOT NULL,
                        b BYTEA NOT NULL, flag BIGINT NOT NULL, note TEXT);
                       CREATE INDEX conf_items_n ON conf_items (n)",
        },
        Migration {
            version: 2,
            name: "counters",
            sqlite: "CREATE TABLE conf_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            postgres: "CREATE TABLE conf_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        },
    ],
};

static BROKEN: MigrationSet = MigrationSet {
    system: "conformance_broken",
    migrations: &[Migration {
        version: 1,
        name: "half applied",
        sqlite: "CREATE TABLE conf_half (id BIGINT); INSERT INTO no_such_table VALUES (1)",
        postgres: "CREATE TABLE conf_half (id BIGINT); INSERT INTO no_such_table VALUES (1)",
    }],
};

/// The migrations of `system` recorded in its history table.
async fn recorded(db: &Db, system: &str) -> anyhow::Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM praxis_migrations_{system}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await?)
}

async fn migrations_are_idempotent(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    assert_eq!(
        db.backend(),
        if t.name == "sqlite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    );
    db.migrate(&ITEMS).await?;
    db.migrate(&ITEMS).await?;
    assert_eq!(recorded(db, "conformance_sql").await?, 2);
    // The bus migrations ran at platform start and share the table.
    assert_eq!(
        recorded(db, "bus").await?,
        i64::try_from(praxis_infra::bus::MIGRATIONS.migrations.len())?
    );
    db.ping().await?;
    Ok(())
}

async fn migrations_run_concurrently(t: TestBackend) -> anyhow::Result<()> {
    // Two "processes" migrating one database at the same moment.
    let a = Db::connect(&t.config.database_url).await?;
    let b = Db::connect(&t.config.database_url).await?;
    let (ra, rb) = tokio::join!(a.migrate(&ITEMS), b.migrate(&ITEMS));
    ra?;
    rb?;
    assert_eq!(recorded(&a, "conformance_sql").await?, 2);
    a.close().await;
    b.close().await;
    Ok(())
}

async fn failed_migration_leaves_nothing(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    let err = db
        .migrate(&BROKEN)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("broken migration succeeded"))?;
    assert!(
        matches!(err, InfraError::Migration { version: 1, .. }),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("half applied failed on"),
        "the error names the migration: {err}"
    );
    // Nothing was recorded: even the history table was rolled back with the migration.
    assert!(recorded(db, "conformance_broken").await.is_err());
    // The CREATE TABLE of the failed migration was rolled back with it.
    let probe = sqlx::query("SELECT COUNT(*) FROM conf_half")
        .fetch_one(db.pool())
        .await;
    assert!(probe.is_err(), "conf_half exists after a failed migration");
    Ok(())
}

/// ITEMS with its first migration's SQL edited after it was applied.
static ITEMS_EDITED: MigrationSet = MigrationSet {
    system: "conformance_sql",
    migrations: &[Migration {
        version: 1,
        name: "items",
        sqlite: "CREATE TABLE conf_items (id TEXT PRIMARY KEY)",
        postgres: "CREATE TABLE conf_items (id TEXT PRIMARY KEY)",
    }],
};

async fn edited_migration_stops_the_run(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    db.migrate(&ITEMS).await?;
    let err = db
        .migrate(&ITEMS_EDITED)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an edited migration was accepted"))?;
    assert!(
        matches!(err, InfraError::Migration { version: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );
    assert_eq!(recorded(db, "conformance_sql").await?, 2);
    Ok(())
}

/// A set whose version 1 fails if it runs twice (no IF NOT EXISTS), and a version 2.
static LEGACY: MigrationSet = MigrationSet {
    system: "conformance_legacy",
    migrations: &[
        Migration {
            version: 1,
            name: "old",
            sqlite: "CREATE TABLE conf_old (id BIGINT)",
            postgres: "CREATE TABLE conf_old (id BIGINT)",
        },
        Migration {
            version: 2,
            name: "new",
            sqlite: "CREATE TABLE conf_new (id BIGINT)",
            postgres: "CREATE TABLE conf_new (id BIGINT)",
        },
    ],
};

async fn legacy_history_is_bridged(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    // A database migrated by an older binary: version 1 applied and recorded in the shared
    // table of that time.
    for sql in [
        "CREATE TABLE praxis_migrations (system TEXT NOT NULL, version BIGINT NOT NULL,
            name TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (system, version))",
        "CREATE TABLE conf_old (id BIGINT)",
        "INSERT INTO praxis_migrations VALUES ('conformance_legacy', 1, 'old', 0)",
    ] {
        sqlx::query(sql).execute(db.pool()).await?;
    }
    db.migrate(&LEGACY).await?;
    db.migrate(&LEGACY).await?;
    assert_eq!(recorded(db, "conformance_legacy").await?, 2);
    let new_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conf_new")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(new_rows, 0, "version 2 ran");
    Ok(())
}

/// id, integer, float, bytes, flag, optional text.
type Case = (&'static str, i64, f64, Vec<u8>, bool, Option<&'static str>);

async fn types_round_trip(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    db.migrate(&ITEMS).await?;
    let cases: Vec<Case> = vec![
        (
            "max",
            i64::MAX,
            1.5,
            vec![0, 1, 2, 255],
            true,
            Some("héllo ✓"),
        ),
        ("min", i64::MIN, -0.25, vec![], false, None),
        (
            "time",
            1_767_225_600_123,
            f64::MAX,
            b"\x00nul\x00".to_vec(),
            true,
            Some(""),
        ),
    ];
    for (id, n, f, b, flag, note) in &cases {
        sqlx::query(
            "INSERT INTO conf_items (id, n, f, b, flag, note) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*id)
        .bind(*n)
        .bind(*f)
        .bind(b.clone())
        .bind(i64::from(*flag))
        .bind(note.map(str::to_string))
        .execute(db.pool())
        .await?;
    }
    for (id, n, f, b, flag, note) in &cases {
        let row = sqlx::query("SELECT n, f, b, flag, note FROM conf_items WHERE id = $1")
            .bind(*id)
            .fetch_one(db.pool())
            .await?;
        assert_eq!(row.try_get::<i64, _>("n")?, *n);
        assert_eq!(row.try_get::<f64, _>("f")?, *f);
        assert_eq!(&row.try_get::<Vec<u8>, _>("b")?, b);
        // Booleans are stored as BIGINT 0/1: the Any driver cannot decode SQLite's BOOLEAN.
        assert_eq!(row.try_get::<i64, _>("flag")? == 1, *flag, "bool {id}");
        assert_eq!(row.try_get::<Option<String>, _>("note")?.as_deref(), *note);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conf_items WHERE n > $1")
        .bind(0i64)
        .fetch_one(db.pool())
        .await?;
    assert_eq!(count, 2);
    Ok(())
}

async fn upsert_returning(t: TestBackend) -> anyhow::Result<()> {
    let db = &t.platform.db;
    db.migrate(&ITEMS).await?;
    let bump = "INSERT INTO conf_counters (name, value) VALUES ($1, 1)
                ON CONFLICT (name) DO UPDATE SET value = conf_counters.value + 1
                RETURNING value";
    for expected in 1..=3i64 {
        let value: i64 = sqlx::query_scalar(bump)
            .bind("clicks")
            .fetch_one(db.pool())
            .await?;
        assert_eq!(value, expected);
    }
    // A rolled back transaction leaves no trace.
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(bump).bind("clicks").execute(&mut *tx).await?;
    tx.rollback().await?;
    let value: i64 = sqlx::query_scalar("SELECT value FROM conf_counters WHERE name = $1")
        .bind("clicks")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(value, 3);
    Ok(())
}
