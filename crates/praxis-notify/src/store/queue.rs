//! The deliveries table as the dispatch schedule: claim due rows with a lease, complete them
//! while still holding it, reschedule, requeue dead letters, and measure the queue.
//!
//! A delivery is due when it is `queued` and its `next_attempt_at` has passed, or when it is
//! `sending` and its lease has expired (its process died mid-attempt). Claiming sets `state =
//! 'sending'`, a fresh lease token and `next_attempt_at = lease_until`, so both cases are one
//! range scan of one partial index (`channel, next_attempt_at WHERE state IN ('queued',
//! 'sending')`). PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so processes polling the same
//! channel never wait for one another; SQLite has one writer at a time anyway.
//!
//! Every write after the claim is guarded by the lease token: a dispatcher whose lease expired
//! and was taken over by another cannot complete (its result is dropped and logged), so each
//! attempt is recorded once. What it may already have sent is the at-least-once part: the
//! delivery id travels as the receiver's deduplication key.
//!
//! A digest batch ([`crate::workers::digest`]) is claimed like any delivery; once claimed (or attempted)
//! it takes no more events.

use std::time::Duration;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use praxis_infra::sql::dialect::statement_chunks;
use praxis_infra::trace::TraceContext;
use praxis_infra::{Db, InfraError};

use crate::domain::channel::Channel;
use crate::domain::model::DeliveryState;

/// A delivery claimed by this process, with the lease token that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Delivery id (UUIDv7).
    pub id: String,
    /// Its message.
    pub message_id: String,
    /// The subscriber, when the recipient is one.
    pub subscriber_id: Option<String>,
    /// Channel.
    pub channel: Channel,
    /// Address on that channel.
    pub address: String,
    /// Attempts recorded before this one.
    pub attempts: i64,
    /// Attempts made before the last requeue.
    pub retry_base: i64,
    /// When it was first due, unix ms (the start of its delivery latency).
    pub scheduled_at: i64,
    /// The digest key when the delivery is a digest batch (see [`crate::workers::digest`]).
    pub digest_key: Option<String>,
    /// The lease token of this claim.
    pub lease: String,
    /// The trace context of the work that created the delivery; its attempts continue it.
    pub trace: Option<TraceContext>,
}

impl Claimed {
    /// The number of this attempt since the last requeue (1 for the first).
    pub fn try_number(&self) -> i64 {
        self.attempts - self.retry_base + 1
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the message.
    Delivered,
    /// It failed and will be tried again at this time (unix ms).
    Retry {
        /// When.
        at: i64,
    },
    /// It failed for good: a dead letter.
    Failed,
}

/// What the attempt log records about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    /// Provider name (`webhook`, `smtp`, `in_app`, `render`, ...).
    pub provider: String,
    /// Whether it was accepted.
    pub ok: bool,
    /// What the provider answered, or the error.
    pub detail: String,
    /// How long it took, ms.
    pub duration_ms: i64,
}

/// Queue depth of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    /// Channel.
    pub channel: Channel,
    /// Deliveries queued or in flight (including those scheduled for later).
    pub pending: i64,
    /// Of those, how many are due now.
    pub due: i64,
    /// `next_attempt_at` of the oldest due one, unix ms.
    pub oldest_due_at: Option<i64>,
}

/// What a requeue found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    /// Queued again on this channel.
    Queued(Channel),
    /// No such delivery.
    NotFound,
    /// The delivery is not failed (it is in this state).
    NotFailed(DeliveryState),
}

/// Claims, completions and requeues on `notify_deliveries`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
    lease_ms: i64,
}

impl Queue {
    /// A queue on a migrated database, claiming with leases of `lease`.
    pub fn new(db: Db, lease: Duration) -> Self {
        Self {
            db,
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1),
        }
    }

    /// The lease length, ms.
    pub fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    /// Claims up to `limit` due deliveries of `channel`, oldest due first.
    pub async fn claim(
        &self,
        channel: Channel,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Claimed>, InfraError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease = uuid::Uuid::now_v7().simple().to_string();
        let lock = self.db.backend().skip_locked();
        let sql = format!(
            "UPDATE notify_deliveries SET state = 'sending', lease_owner = $1, lease_until = $2, \
             next_attempt_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM notify_deliveries WHERE channel = $4 \
             AND state IN ('queued', 'sending') AND next_attempt_at <= $3 \
             ORDER BY next_attempt_at LIMIT $5{lock}) \
             RETURNING id, message_id, subscriber_id, address, attempts, retry_base, scheduled_at, \
             digest_key, traceparent"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&lease)
            .bind(now_ms.saturating_add(self.lease_ms))
            .bind(now_ms)
            .bind(channel.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("id")?,
                    message_id: row.try_get("message_id")?,
                    subscriber_id: row.try_get("subscriber_id")?,
                    channel,
                    address: row.try_get("address")?,
                    attempts: row.try_get("attempts")?,
                    retry_base: row.try_get("retry_base")?,
                    scheduled_at: row.try_get("scheduled_at")?,
                    digest_key: row.try_get("digest_key")?,
                    lease: lease.clone(),
                    trace: row
                        .try_get::<Option<String>, _>("traceparent")?
                        .and_then(|text| TraceContext::parse(text.as_bytes())),
                })
            })
            .collect()
    }

    /// Records an attempt and its outcome if this process still holds the lease; returns the
    /// attempt number, or `None` when the lease was lost (nothing is written).
    pub async fn complete(
        &self,
        claimed: &Claimed,
        outcome: &Outcome,
        log: &AttemptLog,
        now_ms: i64,
    ) -> Result<Option<i64>, InfraError> {
        let mut tx = self.db.pool().begin().await?;
        let n = Self::complete_in(&mut tx, claimed, outcome, log, now_ms).await?;
        if n.is_some() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(n)
    }

    /// [`Queue::complete`] inside the caller's transaction (the in-app channel writes the
    /// inbox row in the same one). On `None` the caller must roll back.
    pub async fn complete_in(
        conn: &mut AnyConnection,
        claimed: &Claimed,
        outcome: &Outcome,
        log: &AttemptLog,
        now_ms: i64,
    ) -> Result<Option<i64>, InfraError> {
        let (state, next, delivered_at) = match outcome {
            Outcome::Delivered => (DeliveryState::Delivered, now_ms, Some(now_ms)),
            Outcome::Retry { at } => (DeliveryState::Queued, *at, None),
            Outcome::Failed => (DeliveryState::Failed, now_ms, None),
        };
        let last_error = (!log.ok).then_some(log.detail.as_str());
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE notify_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
             lease_owner = NULL, lease_until = 0, provider = $3, last_error = $4, updated_at = $5, \
             delivered_at = $6 \
             WHERE id = $7 AND lease_owner = $8 AND state = 'sending' RETURNING attempts",
        )
        .bind(state.as_str())
        .bind(next)
        .bind(&log.provider)
        .bind(last_error)
        .bind(now_ms)
        .bind(delivered_at)
        .bind(&claimed.id)
        .bind(&claimed.lease)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(n) = n else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO notify_attempts (delivery_id, n, at, provider, ok, detail, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, n) DO NOTHING",
        )
        .bind(&claimed.id)
        .bind(n)
        .bind(now_ms)
        .bind(&log.provider)
        .bind(i64::from(log.ok))
        .bind(truncate(&log.detail, 2000))
        .bind(log.duration_ms)
        .execute(&mut *conn)
        .await?;
        Ok(Some(n))
    }

    /// Puts claimed deliveries back without recording an attempt (breaker open, rate limit,
    /// shutdown), due again at `at`. Returns how many were still held.
    pub async fn reschedule(
        &self,
        claimed: &[&Claimed],
        at: i64,
        now_ms: i64,
    ) -> Result<u64, InfraError> {
        let mut done = 0;
        for chunk in statement_chunks(claimed, crate::store::IN_CHUNK / 2) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(id = ${} AND lease_owner = ${})", 3 + 2 * i, 4 + 2 * i))
                .collect();
            let sql = format!(
                "UPDATE notify_deliveries SET state = 'queued', next_attempt_at = $1, lease_owner = NULL, \
                 lease_until = 0, updated_at = $2 WHERE state = 'sending' AND ({})",
                pairs.join(" OR ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(at).bind(now_ms);
            for c in chunk {
                q = q.bind(&c.id).bind(&c.lease);
            }
            done += q.execute(self.db.pool()).await?.rows_affected();
        }
        Ok(done)
    }

    /// Queues a failed delivery (a dead letter) again, due now, with a fresh attempt budget.
    pub async fn requeue(&self, id: &str, now_ms: i64) -> Result<Requeued, InfraError> {
        let channel: Option<String> = sqlx::query_scalar(
            "UPDATE notify_deliveries SET state = 'queued', next_attempt_at = $1, retry_base = attempts, \
             lease_owner = NULL, lease_until = 0, updated_at = $1 \
             WHERE id = $2 AND state = 'failed' RETURNING channel",
        )
        .bind(now_ms)
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some(channel) = channel {
            return Channel::parse(&channel)
                .map(Requeued::Queued)
                .ok_or_else(|| {
                    InfraError::Codec(format!("unknown channel {channel:?} in notify_deliveries"))
                });
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM notify_deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(match state.as_deref().and_then(DeliveryState::parse) {
            Some(state) => Requeued::NotFailed(state),
            None => Requeued::NotFound,
        })
    }

    /// Pending and due deliveries per channel (channels with none are absent).
    pub async fn depth(&self, now_ms: i64) -> Result<Vec<Depth>, InfraError> {
        let rows = sqlx::query(
            "SELECT channel, COUNT(*) AS pending, \
             SUM(CASE WHEN next_attempt_at <= $1 THEN 1 ELSE 0 END) AS due, \
             MIN(CASE WHEN next_attempt_at <= $1 THEN next_attempt_at END) AS oldest \
             FROM notify_deliveries WHERE state IN ('queued', 'sending') GROUP BY channel",
        )
        .bind(now_ms)
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let channel: String = row.try_get("channel")?;
            let Some(channel) = Channel::parse(&channel) else {
                continue;
            };
            out.push(Depth {
                channel,
                pending: row.try_get("pending")?,
                due: row.try_get::<Option<i64>, _>("due")?.unwrap_or(0),
                oldest_due_at: row.try_get("oldest")?,
            });
        }
        Ok(out)
    }

    /// Failed deliveries (the dead-letter list's length).
    pub async fn dead_letter_count(&self) -> Result<i64, InfraError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM notify_deliveries WHERE state = 'failed'")
                .fetch_one(self.db.pool())
                .await?,
        )
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
