//! Schema migrations recorded in our own `praxis_migrations` table, so that several systems
//! can share one database (sqlx's `_sqlx_migrations` knows only one set per database).

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
/// [`Db::migrate`] applies each migration not yet recorded, in its own transaction together
/// with its record in `praxis_migrations(system, version, name, applied_at)`, so a failed
/// migration leaves nothing behind. Running it again is a no-op. On PostgreSQL a transaction
/// advisory lock serializes concurrent starts of several processes; on SQLite `BEGIN
/// IMMEDIATE` does the same.
#[derive(Debug)]
pub struct MigrationSet {
    /// Owner of the migrations, e.g. `"shortener"`; the key in `praxis_migrations`.
    pub system: &'static str,
    /// Migrations in increasing version order.
    pub migrations: &'static [Migration],
}

/// Advisory lock key shared by every praxis migration run on PostgreSQL ("praxismi").
const PG_LOCK_KEY: i64 = 0x7072_6178_6973_6d69;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS praxis_migrations (
    system TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (system, version)
)";

pub(super) async fn run(db: &Db, set: &MigrationSet) -> Result<(), InfraError> {
    check_order(set)?;
    let mut conn = db.pool().acquire().await?;
    {
        let mut tx =
            super::dialect::begin_write_locked(&mut conn, db.backend(), PG_LOCK_KEY).await?;
        sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    let mut applied = 0usize;
    for m in set.migrations {
        let mut tx =
            super::dialect::begin_write_locked(&mut conn, db.backend(), PG_LOCK_KEY).await?;
        let recorded: Option<String> = sqlx::query_scalar(
            "SELECT name FROM praxis_migrations WHERE system = $1 AND version = $2",
        )
        .bind(set.system)
        .bind(m.version)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(name) = recorded {
            if name != m.name {
                tracing::warn!(system = set.system, version = m.version, recorded = %name, code = m.name,
                    "migration name differs from the recorded one; keeping the recorded schema");
            }
            tx.rollback().await?;
            continue;
        }
        let sql = match db.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| InfraError::Migration {
                system: set.system.to_string(),
                version: m.version,
                message: format!(
                    "{} failed on {}: {e}; fix the migration SQL",
                    m.name,
                    db.backend().name()
                ),
            })?;
        sqlx::query("INSERT INTO praxis_migrations (system, version, name, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(set.system)
            .bind(m.version)
            .bind(m.name)
            .bind(crate::util::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied += 1;
        tracing::info!(
            system = set.system,
            version = m.version,
            name = m.name,
            "migration applied"
        );
    }
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM praxis_migrations WHERE system = $1")
            .bind(set.system)
            .fetch_one(&mut *conn)
            .await?;
    let known = set.migrations.last().map(|m| m.version);
    if newest > known {
        tracing::warn!(system = set.system, recorded = ?newest, known = ?known,
            "database has migrations newer than this binary; running an older version against a newer schema");
    }
    tracing::debug!(system = set.system, applied, "migrations up to date");
    Ok(())
}

fn check_order(set: &MigrationSet) -> Result<(), InfraError> {
    if !crate::util::is_valid_name(set.system) {
        return Err(InfraError::Config(format!(
            "migration set system {:?} must be a name from A-Z a-z 0-9 _ - .",
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
    fn order_is_checked() {
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
            check_order(&set),
            Err(InfraError::Migration { version: 1, .. })
        ));
        let bad_name = MigrationSet {
            system: "a b",
            migrations: &[],
        };
        assert!(check_order(&bad_name).is_err());
    }
}
