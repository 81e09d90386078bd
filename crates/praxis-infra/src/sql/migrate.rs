//! Schema migrations run by sqlx's [`Migrator`], one history table per system
//! (`praxis_migrations_<system>`), so several systems share one database and each gets sqlx's
//! checksums: a migration edited after it was applied stops the start instead of drifting.
//!
//! Databases migrated before this (one shared `praxis_migrations(system, version, ...)` table)
//! are bridged: the versions recorded there are marked applied in the system's own table
//! without running again. The old table is left in place, read only.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migrate, MigrateError, Migration as SqlxMigration, MigrationType, Migrator};

use super::{Backend, Db};
use crate::InfraError;

/// One schema change, written once per backend.
#[derive(Debug)]
pub struct Migration {
    /// Position in its set; versions must increase strictly.
    pub version: i64,
    /// Short description, recorded with the version.
    pub name: &'static str,
    /// SQL for SQLite (several statements separated by `;` are allowed).
    pub sqlite: &'static str,
    /// SQL for PostgreSQL (several statements separated by `;` are allowed).
    pub postgres: &'static str,
}

/// The ordered migrations of one system (its tables belong to it alone).
///
/// [`Db::migrate`] applies the migrations not yet recorded in `praxis_migrations_<system>`,
/// all in one write transaction, so a failure leaves none of this start's migrations behind
/// and running it again is a no-op. The transaction takes one advisory lock on PostgreSQL
/// (`BEGIN IMMEDIATE` on SQLite), so concurrent starts of several processes run one at a
/// time. A recorded migration whose SQL has changed since (its checksum differs) stops the
/// run with an error: add a new migration instead of editing an applied one.
#[derive(Debug)]
pub struct MigrationSet {
    /// Owner of the migrations, e.g. `"shortener"`: lowercase letters, digits and `_`, since
    /// it names the history table.
    pub system: &'static str,
    /// Migrations in increasing version order.
    pub migrations: &'static [Migration],
}

impl MigrationSet {
    /// The name of this set's history table.
    pub fn history_table(&self) -> String {
        format!("praxis_migrations_{}", self.system)
    }
}

/// Advisory lock key shared by every praxis migration run on PostgreSQL ("praxismi").
const PG_LOCK_KEY: i64 = 0x7072_6178_6973_6d69;

/// The table every system shared before history tables were per system.
const LEGACY_TABLE: &str = "praxis_migrations";

pub(super) async fn run(db: &Db, set: &MigrationSet) -> Result<(), InfraError> {
    check_set(set)?;
    if set.migrations.is_empty() {
        return Ok(());
    }
    let backend = db.backend();
    let migrator = migrator(set, backend);
    let mut conn = db.pool().acquire().await?;
    let mut tx = super::dialect::begin_write_locked(&mut conn, backend, PG_LOCK_KEY).await?;
    let table = set.history_table();
    tx.ensure_migrations_table(&table)
        .await
        .map_err(|e| explain(set, backend, e))?;
    if let Some(recorded) = legacy_version(&mut tx, backend, set.system).await? {
        migrator
            .run_direct(Some(recorded), &mut *tx, true)
            .await
            .map_err(|e| explain(set, backend, e))?;
    }
    let before = applied_versions(&mut tx, set, backend).await?;
    migrator
        .run_direct(None, &mut *tx, false)
        .await
        .map_err(|e| explain(set, backend, e))?;
    let after = applied_versions(&mut tx, set, backend).await?;
    tx.commit().await?;
    for m in set
        .migrations
        .iter()
        .filter(|m| !before.contains(&m.version))
    {
        if after.contains(&m.version) {
            tracing::info!(
                system = set.system,
                version = m.version,
                name = m.name,
                "migration applied"
            );
        }
    }
    let known = set.migrations.last().map(|m| m.version);
    let newest = after.iter().max().copied();
    if newest > known {
        tracing::warn!(system = set.system, recorded = ?newest, known = ?known,
            "database has migrations newer than this binary; running an older version against a newer schema");
    }
    Ok(())
}

/// The sqlx migrator of `set` on `backend`. Locking is ours (the caller's transaction), and
/// versions recorded by a newer binary are tolerated, so a rollback of the binary can start.
fn migrator(set: &MigrationSet, backend: Backend) -> Migrator {
    let migrations = set
        .migrations
        .iter()
        .map(|m| {
            let sql = match backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            SqlxMigration::new(
                m.version,
                Cow::Borrowed(m.name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(set.history_table());
    migrator.set_locking(false).set_ignore_missing(true);
    migrator
}

/// The newest version of `system` in the legacy shared table, if that table exists.
async fn legacy_version(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    system: &str,
) -> Result<Option<i64>, InfraError> {
    let exists_sql = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let exists: i64 = sqlx::query_scalar(exists_sql)
        .bind(LEGACY_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if exists == 0 {
        return Ok(None);
    }
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM praxis_migrations WHERE system = $1")
            .bind(system)
            .fetch_one(&mut *conn)
            .await?;
    Ok(newest)
}

/// Versions recorded in the history table of `set`.
async fn applied_versions(
    conn: &mut sqlx::AnyConnection,
    set: &MigrationSet,
    backend: Backend,
) -> Result<Vec<i64>, InfraError> {
    let applied = conn
        .list_applied_migrations(&set.history_table())
        .await
        .map_err(|e| explain(set, backend, e))?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}

/// Turns a sqlx migration error into one that names the system and says what to do.
fn explain(set: &MigrationSet, backend: Backend, err: MigrateError) -> InfraError {
    let name_of = |version: i64| {
        set.migrations
            .iter()
            .find(|m| m.version == version)
            .map_or("?", |m| m.name)
    };
    let (version, message) = match err {
        MigrateError::ExecuteMigration(e, v) => (
            v,
            format!(
                "{} failed on {}: {e}; fix the migration SQL",
                name_of(v),
                backend.name()
            ),
        ),
        MigrateError::VersionMismatch(v) => (
            v,
            format!(
                "{} was changed after it was applied (its checksum in {} differs); \
                 restore its SQL and add a new migration for the change",
                name_of(v),
                set.history_table()
            ),
        ),
        MigrateError::Dirty(v) => (
            v,
            format!(
                "{} is marked failed in {}; repair the schema by hand, then delete that row",
                name_of(v),
                set.history_table()
            ),
        ),
        MigrateError::Execute(e) => return InfraError::from(e),
        other => (0, other.to_string()),
    };
    InfraError::Migration {
        system: set.system.to_string(),
        version,
        message,
    }
}

fn check_set(set: &MigrationSet) -> Result<(), InfraError> {
    let valid = !set.system.is_empty()
        && set.system.len() <= 40
        && set
            .system
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(InfraError::Config(format!(
            "migration set system {:?} must be 1 to 40 of a-z 0-9 _ (it names a table)",
            set.system
        )));
    }
    for pair in set.migrations.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(InfraError::Migration {
                system: set.system.to_string(),
                version: pair[1].version,
                message: format!(
                    "versions must increase strictly (found {} after {})",
                    pair[1].version, pair[0].version
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_name_are_checked() {
        static BAD: &[Migration] = &[
            Migration {
                version: 2,
                name: "b",
                sqlite: "",
                postgres: "",
            },
            Migration {
                version: 1,
                name: "a",
                sqlite: "",
                postgres: "",
            },
        ];
        let set = MigrationSet {
            system: "t",
            migrations: BAD,
        };
        assert!(matches!(
            check_set(&set),
            Err(InfraError::Migration { version: 1, .. })
        ));
        let bad_name = MigrationSet {
            system: "a b",
            migrations: &[],
        };
        assert!(check_set(&bad_name).is_err());
    }
}
