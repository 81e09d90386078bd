//! Where SQLite and PostgreSQL differ in the SQL a system writes, in one place: write
//! transactions, placeholder lists, row locks and advisory locks. A system crate calls these
//! and never branches on the [`Backend`] itself.

use sqlx::{Any, AnyConnection, AssertSqlSafe, Connection, Transaction};

use super::{Backend, Db};
use crate::InfraError;

/// Keys per statement of [`lock_rows`] (well under both backends' parameter limits).
const LOCK_CHUNK: usize = 500;

/// Splits `items` into runs for multi-row statements of at most `max` rows, each run `max`
/// long or a power of two: a table written in batches of any size then needs only a handful
/// of distinct statement texts, which stay in each connection's statement cache instead of
/// being parsed and planned again for every odd-sized tail.
pub fn statement_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// Milliseconds since the Unix epoch (UTC): the time of every praxis table (`BIGINT`).
pub fn now_ms() -> i64 {
    crate::util::now_ms()
}

impl Backend {
    /// `rows` groups of `width` placeholders for a multi-row `VALUES` or an `IN (...)` list,
    /// numbered from `start`: `($1, $2), ($3, $4)`; with `width == 1` a flat list `$1, $2`.
    ///
    /// On SQLite a list that holds the statement's first bound values (`start == 1`) uses
    /// anonymous `?` (D24): SQLite keeps `$N` names in a list that sqlx walks once per
    /// parameter, so binding n named parameters costs O(n²). Other `$N` in the same statement
    /// must then be numbered after the list (sqlx counts anonymous parameters apart from
    /// numbered ones); a list that starts later keeps `$N`.
    pub fn placeholders(self, start: usize, rows: usize, width: usize) -> String {
        let anonymous = self == Backend::Sqlite && start == 1;
        let mut out = String::with_capacity(rows * width * 5);
        let mut n = start;
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            if width > 1 {
                out.push('(');
            }
            for c in 0..width {
                if c > 0 {
                    out.push_str(", ");
                }
                if anonymous {
                    out.push('?');
                } else {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                n += 1;
            }
            if width > 1 {
                out.push(')');
            }
        }
        out
    }

    /// The clause that ends a `SELECT` claiming rows other transactions may claim at the same
    /// moment: ` FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite (its write
    /// transaction already serialises the claims).
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// An SQL expression for the database's own clock in unix milliseconds (`BIGINT`): the
    /// one clock that every process sharing the database agrees on, for leases and deadlines
    /// that several hosts compare. On SQLite (one host by construction) it is that host's
    /// clock.
    pub fn now_ms_sql(self) -> &'static str {
        match self {
            Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }

    /// Whether several writers make progress at once (PostgreSQL) rather than queueing on one
    /// write lock (SQLite): how many writing tasks are worth running side by side.
    pub fn parallel_writes(self) -> bool {
        self == Backend::Postgres
    }
}

impl Db {
    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes waits for other
    /// writers instead of failing with a stale snapshot.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, InfraError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// [`Db::begin_write`] on a connection the caller holds (a writer that keeps its
    /// connection across transactions, for example).
    pub async fn begin_write_on<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<Transaction<'c, Any>, InfraError> {
        Ok(match self.backend {
            Backend::Sqlite => sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?,
            Backend::Postgres => sqlx::Connection::begin(conn).await?,
        })
    }

    /// Holds the transaction-scoped lock `key` until `tx` ends, so the transactions that take
    /// the same key run one at a time: `pg_advisory_xact_lock` on PostgreSQL; nothing on
    /// SQLite, where a transaction from [`Db::begin_write`] already holds the one write lock.
    pub async fn lock_xact(&self, tx: &mut AnyConnection, key: i64) -> Result<(), InfraError> {
        lock_xact(tx, self.backend, key).await
    }

    /// Locks the rows of `table` whose `column` is one of `keys` until `tx` ends (`SELECT ...
    /// FOR UPDATE`, in key order, so two transactions locking overlapping sets cannot
    /// deadlock). Nothing on SQLite, where a transaction from [`Db::begin_write`] already
    /// holds the one write lock. `table` and `column` are identifiers of the caller's schema.
    pub async fn lock_rows(
        &self,
        tx: &mut AnyConnection,
        table: &'static str,
        column: &'static str,
        keys: &[&str],
    ) -> Result<(), InfraError> {
        if self.backend == Backend::Sqlite || keys.is_empty() {
            return Ok(());
        }
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        for chunk in statement_chunks(&keys, LOCK_CHUNK) {
            // Rows are locked as they leave the sort: in key order.
            let sql = format!(
                "SELECT {column} FROM {table} WHERE {column} IN ({}) ORDER BY {column} FOR UPDATE",
                self.backend.placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for key in chunk {
                q = q.bind(*key);
            }
            q.fetch_all(&mut *tx).await?;
        }
        Ok(())
    }
}

/// [`Db::begin_write`] on a connection the caller holds, with the lock `key` of
/// [`Db::lock_xact`] taken too (migrations: one run at a time across processes).
pub(super) async fn begin_write_locked(
    conn: &mut AnyConnection,
    backend: Backend,
    key: i64,
) -> Result<Transaction<'_, Any>, InfraError> {
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => Connection::begin(conn).await?,
    };
    lock_xact(&mut tx, backend, key).await?;
    Ok(tx)
}

async fn lock_xact(tx: &mut AnyConnection, backend: Backend, key: i64) -> Result<(), InfraError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn statement_chunks_cover_every_item_with_few_distinct_lengths() {
        let items: Vec<usize> = (0..1000).collect();
        for n in [0, 1, 2, 3, 7, 200, 201, 455, 1000] {
            let chunks: Vec<&[usize]> = super::statement_chunks(&items[..n], 200).collect();
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, items[..n].to_vec(), "n = {n}");
            for c in &chunks {
                assert!(
                    c.len() == 200 || c.len().is_power_of_two(),
                    "n = {n}: {}",
                    c.len()
                );
            }
        }
        let lengths: Vec<usize> = super::statement_chunks(&items[..455], 200)
            .map(<[usize]>::len)
            .collect();
        assert_eq!(lengths, [200, 200, 32, 16, 4, 2, 1]);
    }

    use super::*;

    #[test]
    fn placeholder_lists() {
        let (pg, lite) = (Backend::Postgres, Backend::Sqlite);
        assert_eq!(pg.placeholders(1, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(pg.placeholders(1, 3, 1), "$1, $2, $3");
        assert_eq!(pg.placeholders(2, 3, 1), "$2, $3, $4");
        assert_eq!(pg.placeholders(1, 0, 3), "");
        assert_eq!(lite.placeholders(1, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(lite.placeholders(2, 2, 1), "$2, $3");
    }

    #[test]
    fn now_is_unix_milliseconds() {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let now = now_ms();
        assert!(
            u128::try_from(now).is_ok_and(|n| n.abs_diff(unix) < 60_000),
            "{now} vs {unix}"
        );
    }

    #[test]
    fn only_postgres_skips_locked_rows() {
        assert_eq!(Backend::Postgres.skip_locked(), " FOR UPDATE SKIP LOCKED");
        assert_eq!(Backend::Sqlite.skip_locked(), "");
    }
}
