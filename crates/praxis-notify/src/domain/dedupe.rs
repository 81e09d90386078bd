//! The dedupe window: a send without an idempotency key may carry `dedupe_window` (seconds);
//! while a message from the same sender to the same recipient with the same template was
//! accepted (with a dedupe window) less than that long ago, the new one is not queued and the
//! answer is the first message's id (200, as an idempotency-key retry).
//!
//! One row per `(sender, recipient, template)` in `notify_dedupe` holds the last message
//! accepted with a window and when. It is claimed in the accept transaction with one upsert
//! that replaces the row only when it is older than the request's window, so two concurrent
//! identical sends queue one message on both backends (PostgreSQL makes the second insert wait
//! for the first transaction and then re-checks the row; SQLite has one writer). A send
//! without `dedupe_window` neither checks nor records anything. Rows older than
//! [`crate::workers::digest::MAX_WINDOW_SECS`] can no longer match and may be deleted.

use sqlx::AnyConnection;

use praxis_infra::InfraError;

use crate::domain::model::MessageRecord;

/// What the dedupe window found for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// No message within the window: the message is recorded as the window's first.
    First,
    /// This message was accepted within the window: the new one is a duplicate of it.
    Duplicate(String),
}

/// Claims the dedupe window of `m` (which must have `dedupe_window_ms`) in the accept
/// transaction; the recipient is the normalized `to` (its JSON text).
pub async fn claim(conn: &mut AnyConnection, m: &MessageRecord) -> Result<Window, InfraError> {
    let window = m.dedupe_window_ms.unwrap_or(0);
    let recipient = serde_json::to_string(&m.recipient)?;
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO notify_dedupe (sender, recipient, template, message_id, accepted_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sender, recipient, template) DO UPDATE \
         SET message_id = excluded.message_id, accepted_at = excluded.accepted_at \
         WHERE notify_dedupe.accepted_at <= $6 \
         RETURNING message_id",
    )
    .bind(&m.sender)
    .bind(&recipient)
    .bind(&m.template)
    .bind(&m.id)
    .bind(m.created_at)
    .bind(m.created_at.saturating_sub(window))
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Window::First);
    }
    let first: Option<String> = sqlx::query_scalar(
        "SELECT message_id FROM notify_dedupe WHERE sender = $1 AND recipient = $2 AND template = $3",
    )
    .bind(&m.sender)
    .bind(&recipient)
    .bind(&m.template)
    .fetch_optional(&mut *conn)
    .await?;
    first.map(Window::Duplicate).ok_or_else(|| {
        InfraError::Codec(format!(
            "message {}: the dedupe row conflicted but cannot be read",
            m.id
        ))
    })
}
