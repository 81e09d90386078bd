//! The in-app channel: a delivery is a row in `notify_inbox`, written in the same transaction
//! that completes the delivery, so it is stored exactly once (the row's id is the delivery's
//! id, and the completion only commits while the lease is held). The inbox API and its live
//! stream come in a later version; they read this table.

use std::time::Instant;

use praxis_infra::InfraError;

use crate::channels::Outgoing;
use crate::model::now_ms;
use crate::queue::{AttemptLog, Claimed, Outcome, Queue};
use crate::store::Store;

/// Writes the inbox row of `row` and completes it as delivered. `Ok(None)`: the lease was lost
/// and nothing was written.
pub async fn deliver(
    store: &Store,
    row: &Claimed,
    message: &Outgoing,
    started: Instant,
) -> Result<Option<i64>, InfraError> {
    let now = now_ms();
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO notify_inbox (id, subscriber_id, message_id, title, body, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.address)
    .bind(&row.message_id)
    .bind(&message.subject)
    .bind(&message.text)
    .bind(serde_json::to_string(&message.data)?)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let log = AttemptLog {
        provider: "in_app".to_owned(),
        ok: true,
        detail: "stored in the inbox".to_owned(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    let n = Queue::complete_in(&mut tx, row, &Outcome::Delivered, &log, now).await?;
    if n.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(n)
}
