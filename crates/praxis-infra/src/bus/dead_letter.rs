//! Dead letters: events a group gave up on, kept for inspection and manual replay.

use super::Event;
use crate::InfraError;
use crate::sql::Db;

/// Records that `group` failed `event` permanently with `error`.
pub(super) async fn record(
    db: &Db,
    group: &str,
    event: &Event,
    error: &str,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO praxis_bus_dead_letters (id, grp, topic, key, payload, error, created_at, failed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id, grp) DO UPDATE SET error = excluded.error, failed_at = excluded.failed_at",
    )
    .bind(event.id.to_string())
    .bind(group)
    .bind(&event.topic)
    .bind(&event.key)
    .bind(event.payload.clone())
    .bind(error)
    .bind(event.created_at_ms)
    .bind(crate::util::now_ms())
    .execute(db.pool())
    .await?;
    tracing::error!(topic = %event.topic, group, event_id = %event.id, error, "bus event dead-lettered");
    Ok(())
}
