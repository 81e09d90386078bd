//! `praxis migrate` on SQLite and on a fresh PostgreSQL database.

use sqlx::Connection;

use crate::support::{PgDatabase, data_dir, describe, run, temp_dir};

/// The systems with migrations recorded in their `praxis_migrations_<system>` table.
async fn migrated_systems(url: &str) -> Vec<String> {
    praxis_infra::sql::install_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let tables = if url.starts_with("sqlite:") {
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    } else {
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY table_name"
    };
    let tables: Vec<String> = sqlx::query_scalar(tables)
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
    let mut systems = Vec::new();
    for table in tables {
        let Some(system) = table.strip_prefix("praxis_migrations_") else {
            continue;
        };
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let recorded: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .expect("read a history table");
        if recorded > 0 {
            systems.push(system.to_string());
        }
    }
    let _ = conn.close().await;
    systems
}

/// A history table per migration set of the binary's systems (the rate-limit service has no
/// tables), and the bus outbox's.
fn expected() -> Vec<String> {
    let mut sets: std::collections::BTreeSet<String> = crate::systems::systems()
        .iter()
        .flat_map(|s| s.migrations())
        .filter(|set| !set.migrations.is_empty())
        .map(|set| set.system.to_owned())
        .collect();
    sets.insert("bus".to_owned());
    sets.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_sqlite_is_idempotent() {
    let dir = temp_dir();
    let data = data_dir(dir.path());
    let data_arg = data.display().to_string();
    for _ in 0..2 {
        let out = run(dir.path(), &["migrate", "--data-dir", &data_arg], &[]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let db = data.join("praxis.db");
    assert!(db.is_file(), "migrate created {}", db.display());
    let systems = migrated_systems(&format!("sqlite://{}", db.display())).await;
    assert_eq!(systems, expected());
    // migrate does not need (nor generate) an admin key.
    assert!(!data.join("admin.key").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_fresh_postgres_database_even_concurrently() {
    let pg = PgDatabase::fresh().await;
    let dir = temp_dir();
    let env = [("PRAXIS_DATABASE_URL", pg.url.as_str())];
    let path = dir.path().to_path_buf();
    let url = pg.url.clone();
    // Two processes migrating the same fresh database at once both succeed.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            let url = url.clone();
            std::thread::spawn(move || run(&path, &["migrate"], &[("PRAXIS_DATABASE_URL", &url)]))
        })
        .collect();
    for racer in racers {
        let out = racer.join().expect("migrate thread");
        assert!(out.status.success(), "{}", describe(&out));
    }
    let out = run(dir.path(), &["migrate"], &env);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(migrated_systems(&pg.url).await, expected());
}

#[test]
fn migrate_reports_an_unreachable_database() {
    let dir = temp_dir();
    let out = run(
        dir.path(),
        &["migrate"],
        &[(
            "PRAXIS_DATABASE_URL",
            "postgres://nobody:hunter2secret@127.0.0.1:1/none",
        )],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to postgres://nobody:****@127.0.0.1:1/none"),
        "{}",
        describe(&out)
    );
    assert!(!err.contains("hunter2secret"), "{}", describe(&out));
}
