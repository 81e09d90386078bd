//! All SQL of the shortener, written once for SQLite and PostgreSQL through sqlx's `Any`
//! driver (`$n` placeholders, `ON CONFLICT`, `RETURNING`; times are unix ms).

pub mod allocator;
pub mod migrations;

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

// Every dynamic statement below is assembled from constant fragments and numbered
// placeholders only; values are always bound.

use praxis_infra::sql::dialect::statement_chunks;
use praxis_infra::{Backend, Db, InfraError};

use crate::domain::agent::AgentClass;
use crate::domain::link::{Link, RedirectKind, Target};
use crate::domain::visits::{Increments, VisitBatch, aggregate};

/// Columns of a link (`shortener_links l`) plus its statistics total, the sum of its day rows
/// (a range of the day table's primary key): visits are counted once, in the day row, and
/// `shortener_visit_totals` is no longer written or read (D73).
const LINK_COLUMNS: &str = "l.code, l.owner, l.url, l.custom, l.redirect, l.forward_query, l.tags, \
     l.created_at, l.updated_at, l.expires_at, l.max_visits, l.visit_count, \
     (SELECT CAST(COALESCE(SUM(d.visits), 0) AS BIGINT) FROM shortener_daily_visits d WHERE d.code = l.code) AS visits";

const LINK_FROM: &str = "shortener_links l";

/// Rows per multi-row `INSERT` when applying visit batches (3 to 5 parameters a row keeps
/// every statement far below SQLite's and PostgreSQL's parameter limits).
const ROWS_PER_STATEMENT: usize = 200;

/// The agent columns of a day row, in the order of [`AgentClass::ALL`].
const AGENT_COLUMNS: &str = "agent_bot, agent_mobile, agent_desktop, agent_other";

/// The day-row column of an agent class.
fn agent_column(class: AgentClass) -> &'static str {
    match class {
        AgentClass::Bot => "agent_bot",
        AgentClass::Mobile => "agent_mobile",
        AgentClass::Desktop => "agent_desktop",
        AgentClass::Other => "agent_other",
    }
}

/// A link with its counted visits (from the statistics, so eventually consistent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// The link.
    pub link: Link,
    /// Visits applied to the statistics so far.
    pub visits: i64,
}

/// Outcome of counting a visit of a link with a visit limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Counted; redirect to this target.
    Redirect(Target),
    /// The link exists but is expired or used up.
    Gone,
    /// No such link.
    NotFound,
}

/// A key of the newest-first link order, used as the list cursor.
pub type ListKey = (i64, String);

/// Statistics of one link over a day range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsRows {
    /// All-time visits.
    pub total: i64,
    /// `(day, visits)` ascending, days with visits only.
    pub daily: Vec<(String, i64)>,
    /// `(dimension, value, visits)`, dimensions `agent` and `referrer`.
    pub dims: Vec<(String, String, i64)>,
}

/// The shortener's SQL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A store on a migrated database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Advances the shared code sequence by `size` and returns its new value: this process
    /// now owns `[value - size, value)`.
    pub async fn reserve_block(&self, size: u64) -> Result<u64, InfraError> {
        let size =
            i64::try_from(size).map_err(|_| InfraError::Config("block_size too large".into()))?;
        let next: i64 =
            sqlx::query_scalar("UPDATE shortener_sequence SET next_value = next_value + $1 WHERE id = 1 RETURNING next_value")
                .bind(size)
                .fetch_one(self.db.pool())
                .await?;
        u64::try_from(next).map_err(|_| {
            InfraError::Codec(format!("shortener_sequence holds a negative value {next}"))
        })
    }

    /// Inserts a link and its tags unless the code is taken; returns whether it was inserted.
    pub async fn insert_link(conn: &mut AnyConnection, link: &Link) -> Result<bool, InfraError> {
        let tags = serde_json::to_string(&link.tags)?;
        let done = sqlx::query(
            "INSERT INTO shortener_links (code, owner, url, url_hash, custom, redirect, forward_query, tags, \
             created_at, updated_at, expires_at, max_visits, visit_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0) ON CONFLICT (code) DO NOTHING",
        )
        .bind(&link.code)
        .bind(&link.owner)
        .bind(&link.url)
        .bind(url_hash(&link.url))
        .bind(i64::from(link.custom))
        .bind(i64::from(link.redirect.status()))
        .bind(i64::from(link.forward_query))
        .bind(tags)
        .bind(link.created_at)
        .bind(link.updated_at)
        .bind(link.expires_at)
        .bind(link.max_visits)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_tags(conn, link).await?;
        Ok(true)
    }

    /// The newest live link of `owner` to exactly `url` (for `find_if_exists`).
    pub async fn find_by_url(
        conn: &mut AnyConnection,
        owner: &str,
        url: &str,
        now_ms: i64,
    ) -> Result<Option<LinkRecord>, InfraError> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM {LINK_FROM} WHERE l.owner = $1 AND l.url_hash = $2 AND l.url = $3 \
             AND (l.expires_at IS NULL OR l.expires_at > $4) \
             AND (l.max_visits IS NULL OR l.visit_count < l.max_visits) \
             ORDER BY l.created_at DESC, l.code DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(url_hash(url))
            .bind(url)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| decode_record(&r)).transpose()
    }

    /// One link by code.
    pub async fn get(&self, code: &str) -> Result<Option<LinkRecord>, InfraError> {
        let mut conn = self.db.pool().acquire().await?;
        Self::get_in(&mut conn, code).await
    }

    /// One link by code, on a given connection (inside a transaction).
    pub async fn get_in(
        conn: &mut AnyConnection,
        code: &str,
    ) -> Result<Option<LinkRecord>, InfraError> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM {LINK_FROM} WHERE l.code = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| decode_record(&r)).transpose()
    }

    /// What the redirect path caches for `code`.
    pub async fn load_target(&self, code: &str) -> Result<Option<Target>, InfraError> {
        let row = sqlx::query(
            "SELECT url, redirect, forward_query, expires_at, max_visits FROM shortener_links WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| decode_target(&r)).transpose()
    }

    /// Counts one visit of a link with a visit limit, atomically: the counter only moves while
    /// it is below the limit and the link has not expired, so a limit of N serves exactly N
    /// redirects whatever the concurrency and the number of processes.
    pub async fn count_visit(&self, code: &str, now_ms: i64) -> Result<Counted, InfraError> {
        let row = sqlx::query(
            "UPDATE shortener_links SET visit_count = visit_count + 1 \
             WHERE code = $1 AND (max_visits IS NULL OR visit_count < max_visits) \
             AND (expires_at IS NULL OR expires_at > $2) \
             RETURNING url, redirect, forward_query, expires_at, max_visits",
        )
        .bind(code)
        .bind(now_ms)
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            Some(r) => Ok(Counted::Redirect(decode_target(&r)?)),
            None => Ok(if self.exists(code).await? {
                Counted::Gone
            } else {
                Counted::NotFound
            }),
        }
    }

    /// Like [`Store::count_visit`] without counting (for `HEAD`).
    pub async fn peek_visit(&self, code: &str, now_ms: i64) -> Result<Counted, InfraError> {
        let row = sqlx::query(
            "SELECT url, redirect, forward_query, expires_at, max_visits, visit_count FROM shortener_links WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            return Ok(Counted::NotFound);
        };
        let target = decode_target(&r)?;
        let max: Option<i64> = r.try_get("max_visits")?;
        let count: i64 = r.try_get("visit_count")?;
        if target.expired(now_ms) || max.is_some_and(|m| count >= m) {
            Ok(Counted::Gone)
        } else {
            Ok(Counted::Redirect(target))
        }
    }

    async fn exists(&self, code: &str) -> Result<bool, InfraError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM shortener_links WHERE code = $1")
                .bind(code)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }

    /// Writes every changeable field of `link` (not its visit counter) and replaces its tags.
    pub async fn update_link(conn: &mut AnyConnection, link: &Link) -> Result<(), InfraError> {
        sqlx::query(
            "UPDATE shortener_links SET url = $2, url_hash = $3, redirect = $4, forward_query = $5, tags = $6, \
             expires_at = $7, max_visits = $8, updated_at = $9 WHERE code = $1",
        )
        .bind(&link.code)
        .bind(&link.url)
        .bind(url_hash(&link.url))
        .bind(i64::from(link.redirect.status()))
        .bind(i64::from(link.forward_query))
        .bind(serde_json::to_string(&link.tags)?)
        .bind(link.expires_at)
        .bind(link.max_visits)
        .bind(link.updated_at)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM shortener_link_tags WHERE code = $1")
            .bind(&link.code)
            .execute(&mut *conn)
            .await?;
        insert_tags(conn, link).await
    }

    /// Deletes a link with its tags and statistics; returns whether it existed.
    pub async fn delete_link(conn: &mut AnyConnection, code: &str) -> Result<bool, InfraError> {
        for table in [
            "shortener_link_tags",
            "shortener_daily_visits",
            "shortener_visit_dims",
            "shortener_visit_totals",
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE code = $1"
            )))
            .bind(code)
            .execute(&mut *conn)
            .await?;
        }
        let done = sqlx::query("DELETE FROM shortener_links WHERE code = $1")
            .bind(code)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Links of `owner` (optionally with `tag`), newest first, strictly after `after`,
    /// at most `limit`.
    pub async fn list(
        &self,
        owner: &str,
        tag: Option<&str>,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<LinkRecord>, InfraError> {
        let (from, key_table) = match tag {
            Some(_) => (
                "shortener_link_tags t JOIN shortener_links l ON l.code = t.code".to_owned(),
                "t",
            ),
            None => (LINK_FROM.to_owned(), "l"),
        };
        let mut sql = format!("SELECT {LINK_COLUMNS} FROM {from} WHERE {key_table}.owner = $1");
        let mut n = 1;
        if tag.is_some() {
            n += 1;
            sql.push_str(&format!(" AND t.tag = ${n}"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND ({k}.created_at < ${a} OR ({k}.created_at = ${b} AND {k}.code < ${c}))",
                k = key_table,
                a = n + 1,
                b = n + 2,
                c = n + 3
            ));
            n += 3;
        }
        sql.push_str(&format!(
            " ORDER BY {k}.created_at DESC, {k}.code DESC LIMIT ${l}",
            k = key_table,
            l = n + 1
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(owner);
        if let Some(t) = tag {
            q = q.bind(t);
        }
        if let Some((created, code)) = after {
            q = q.bind(*created).bind(*created).bind(code);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(self.db.pool()).await?;
        rows.iter().map(decode_record).collect()
    }

    /// Statistics of `code` between two days (inclusive, `YYYY-MM-DD`).
    pub async fn stats(
        &self,
        code: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<StatsRows, InfraError> {
        let pool = self.db.pool();
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(visits) AS BIGINT) FROM shortener_daily_visits WHERE code = $1",
        )
        .bind(code)
        .fetch_one(pool)
        .await?;
        let mut agents = [0_i64; 4];
        let daily = sqlx::query(AssertSqlSafe(format!(
            "SELECT day, visits, {AGENT_COLUMNS} FROM shortener_daily_visits \
             WHERE code = $1 AND day >= $2 AND day <= $3 ORDER BY day"
        )))
        .bind(code)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            for (sum, class) in agents.iter_mut().zip(AgentClass::ALL) {
                *sum += r.try_get::<i64, _>(agent_column(class))?;
            }
            Ok((r.try_get("day")?, r.try_get("visits")?))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // Agent rows written before the columns existed (or by a previous version during a
        // rolling upgrade) are summed with the columns.
        let mut dims: BTreeMap<(String, String), i64> = sqlx::query(
            "SELECT dim, value, CAST(SUM(visits) AS BIGINT) AS visits FROM shortener_visit_dims \
             WHERE code = $1 AND day >= $2 AND day <= $3 GROUP BY dim, value ORDER BY dim, value",
        )
        .bind(code)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                (r.try_get("dim")?, r.try_get("value")?),
                r.try_get("visits")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
        for (n, class) in agents.into_iter().zip(AgentClass::ALL) {
            if n > 0 {
                *dims
                    .entry(("agent".to_owned(), class.as_str().to_owned()))
                    .or_default() += n;
            }
        }
        Ok(StatsRows {
            total: total.unwrap_or(0),
            daily,
            dims: dims
                .into_iter()
                .map(|((dim, value), n)| (dim, value, n))
                .collect(),
        })
    }

    /// Applies a visit batch exactly once: the batch id is recorded in the same transaction as
    /// the counters, and a batch whose id is already recorded changes nothing. Visits of codes
    /// that no longer exist are ignored. Returns whether the batch was applied now.
    pub async fn apply_batch(&self, batch: &VisitBatch, now_ms: i64) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO shortener_applied_batches (batch_id, applied_at) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING",
        )
        .bind(batch.batch_id.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(false);
        }
        let mut inc = aggregate(batch);
        let codes: Vec<String> = inc.totals.keys().cloned().collect();
        let backend = self.db.backend();
        let live = existing_codes(&mut tx, backend, &codes).await?;
        retain_codes(&mut inc, &live);
        apply_increments(&mut tx, backend, &inc).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets applied batch ids older than `before_ms` (redelivery never comes that late).
    pub async fn prune_batches(&self, before_ms: i64) -> Result<u64, InfraError> {
        let done = sqlx::query("DELETE FROM shortener_applied_batches WHERE applied_at < $1")
            .bind(before_ms)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Number of links.
    pub async fn count_links(&self) -> Result<u64, InfraError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shortener_links")
            .fetch_one(self.db.pool())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` codes greater than `after`, ascending (to page through every code).
    pub async fn codes_after(&self, after: &str, limit: u32) -> Result<Vec<String>, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT code FROM shortener_links WHERE code > $1 ORDER BY code LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?)
    }
}

/// Hex of the first 16 bytes of BLAKE3(url): the indexed lookup key of `find_if_exists`.
fn url_hash(url: &str) -> String {
    let hash = blake3::hash(url.as_bytes());
    hash.as_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn insert_tags(conn: &mut AnyConnection, link: &Link) -> Result<(), InfraError> {
    for tag in &link.tags {
        sqlx::query("INSERT INTO shortener_link_tags (code, tag, owner, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&link.code)
            .bind(tag)
            .bind(&link.owner)
            .bind(link.created_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn existing_codes(
    conn: &mut AnyConnection,
    backend: Backend,
    codes: &[String],
) -> Result<Vec<String>, InfraError> {
    let mut live = Vec::with_capacity(codes.len());
    for chunk in statement_chunks(codes, ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT code FROM shortener_links WHERE code IN ({})",
            backend.placeholders(1, chunk.len(), 1)
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for c in chunk {
            q = q.bind(c);
        }
        live.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(live)
}

fn retain_codes(inc: &mut Increments, live: &[String]) {
    let live: std::collections::HashSet<&str> = live.iter().map(String::as_str).collect();
    inc.daily
        .retain(|(code, _), _| live.contains(code.as_str()));
    inc.referrers
        .retain(|(code, ..), _| live.contains(code.as_str()));
    inc.totals.retain(|code, _| live.contains(code.as_str()));
}

async fn apply_increments(
    conn: &mut AnyConnection,
    backend: Backend,
    inc: &Increments,
) -> Result<(), InfraError> {
    let daily: Vec<_> = inc.daily.iter().collect();
    for chunk in statement_chunks(&daily, ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO shortener_daily_visits (code, day, visits, {AGENT_COLUMNS}) VALUES {} \
             ON CONFLICT (code, day) DO UPDATE SET visits = shortener_daily_visits.visits + excluded.visits, \
             agent_bot = shortener_daily_visits.agent_bot + excluded.agent_bot, \
             agent_mobile = shortener_daily_visits.agent_mobile + excluded.agent_mobile, \
             agent_desktop = shortener_daily_visits.agent_desktop + excluded.agent_desktop, \
             agent_other = shortener_daily_visits.agent_other + excluded.agent_other",
            backend.placeholders(1, chunk.len(), 7)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((code, day), counts) in chunk {
            q = q.bind(code.as_str()).bind(day.as_str()).bind(counts.visits);
            for n in counts.agents {
                q = q.bind(n);
            }
        }
        q.execute(&mut *conn).await?;
    }
    let referrers: Vec<_> = inc.referrers.iter().collect();
    for chunk in statement_chunks(&referrers, ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO shortener_visit_dims (code, day, dim, value, visits) VALUES {} \
             ON CONFLICT (code, day, dim, value) DO UPDATE SET visits = shortener_visit_dims.visits + excluded.visits",
            backend.placeholders(1, chunk.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((code, day, host), n) in chunk {
            q = q
                .bind(code.as_str())
                .bind(day.as_str())
                .bind("referrer")
                .bind(host.as_str())
                .bind(**n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn decode_record(row: &AnyRow) -> Result<LinkRecord, InfraError> {
    let tags_json: String = row.try_get("tags")?;
    let link = Link {
        code: row.try_get("code")?,
        owner: row.try_get("owner")?,
        url: row.try_get("url")?,
        custom: row.try_get::<i64, _>("custom")? != 0,
        redirect: decode_redirect(row.try_get("redirect")?),
        forward_query: row.try_get::<i64, _>("forward_query")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
        max_visits: row.try_get("max_visits")?,
        visit_count: row.try_get("visit_count")?,
        tags: serde_json::from_str(&tags_json)?,
    };
    Ok(LinkRecord {
        link,
        visits: row.try_get("visits")?,
    })
}

fn decode_target(row: &AnyRow) -> Result<Target, InfraError> {
    let url: String = row.try_get("url")?;
    let max_visits: Option<i64> = row.try_get("max_visits")?;
    let mut flags = 0;
    if row.try_get::<i64, _>("forward_query")? != 0 {
        flags |= Target::FORWARD_QUERY;
    }
    if max_visits.is_some() {
        flags |= Target::LIMITED;
    }
    Ok(Target {
        url: url.into(),
        status: decode_redirect(row.try_get("redirect")?).status(),
        expires_at: row.try_get("expires_at")?,
        flags,
    })
}

/// Stored statuses are validated on write; anything else reads as the default 301.
fn decode_redirect(status: i64) -> RedirectKind {
    u16::try_from(status)
        .ok()
        .and_then(RedirectKind::from_status)
        .unwrap_or(RedirectKind::Permanent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hashes_are_stable_hex() {
        assert_eq!(url_hash("https://e.com/").len(), 32);
        assert_eq!(url_hash("a"), url_hash("a"));
        assert_ne!(url_hash("a"), url_hash("b"));
    }
}
