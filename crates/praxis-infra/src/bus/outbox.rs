//! Reads and writes of the outbox table `praxis_outbox`.

use sqlx::Row;
use uuid::Uuid;

use super::Event;
use crate::InfraError;
use crate::sql::{Backend, Db};
use crate::trace::TraceContext;

/// Advisory lock that orders embedded-bus outbox writers on PostgreSQL ("praxisob").
const PG_OUTBOX_LOCK: i64 = 0x7072_6178_6973_6f62;

/// Inserts one event row, with the trace context of the work running now (if any) as the
/// event's parent. With `serialize_writers` on PostgreSQL the insert first takes a
/// transaction advisory lock, so sequence numbers are assigned in commit order and an
/// offset-based reader never skips a row committed late (SQLite has one writer anyway).
pub(super) async fn insert(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    serialize_writers: bool,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<Uuid, InfraError> {
    let id = Uuid::now_v7();
    let sql = match (backend, serialize_writers) {
        (Backend::Postgres, true) => {
            "WITH lock AS (SELECT pg_advisory_xact_lock($6) AS locked)
             INSERT INTO praxis_outbox (id, topic, key, payload, created_at, traceparent)
             SELECT $1, $2, $3, $4, $5, $7 FROM lock"
        }
        _ => {
            "INSERT INTO praxis_outbox (id, topic, key, payload, created_at, traceparent) VALUES ($1, $2, $3, $4, $5, $6)"
        }
    };
    let traceparent = crate::trace::current().map(|ctx| ctx.to_string());
    let mut query = sqlx::query(sql)
        .bind(id.to_string())
        .bind(topic)
        .bind(key)
        .bind(payload.to_vec())
        .bind(crate::util::now_ms());
    if matches!((backend, serialize_writers), (Backend::Postgres, true)) {
        query = query.bind(PG_OUTBOX_LOCK);
    }
    query = query.bind(traceparent);
    query.execute(&mut *conn).await?;
    metrics::counter!("praxis_bus_published_total", "topic" => topic.to_string()).increment(1);
    Ok(id)
}

/// Rows of the outbox not yet relayed or pruned.
pub(super) async fn count(db: &Db) -> Result<u64, InfraError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM praxis_outbox")
        .fetch_one(db.pool())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Rows of one topic not yet relayed.
pub(super) async fn count_topic(db: &Db, topic: &str) -> Result<u64, InfraError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM praxis_outbox WHERE topic = $1")
        .bind(topic)
        .fetch_one(db.pool())
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Decodes a row selected as `seq, id, topic, key, payload, created_at, traceparent`.
pub(super) fn event_of(row: &sqlx::any::AnyRow) -> Result<(i64, Event), InfraError> {
    let id: String = row.try_get("id")?;
    let id = Uuid::parse_str(&id)
        .map_err(|e| InfraError::Codec(format!("outbox row has a bad id {id:?}: {e}")))?;
    Ok((
        row.try_get("seq")?,
        Event {
            id,
            topic: row.try_get("topic")?,
            key: row.try_get("key")?,
            payload: row.try_get("payload")?,
            created_at_ms: row.try_get("created_at")?,
            trace: row
                .try_get::<Option<String>, _>("traceparent")?
                .and_then(|text| TraceContext::parse(text.as_bytes())),
        },
    ))
}
