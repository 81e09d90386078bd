//! Embedded adapter: group consumers read the outbox in `seq` order and persist their offset
//! in `praxis_bus_offsets`; a pruner deletes rows every group has passed.
//!
//! A group is owned by one process at a time through a lease in its offsets row (one code
//! path for SQLite and PostgreSQL), so two processes on one database never run one group twice
//! in parallel.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{
    ConsumerOptions, DynHandler, Event, HandlerError, Inner, consumed, dead_letter, outbox,
};
use crate::InfraError;
use crate::sql::Db;
use crate::util::now_ms;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Events of `topic` past the offset of `group` (all retained events for an unknown group).
pub(super) async fn lag(db: &Db, topic: &str, group: &str) -> Result<u64, InfraError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM praxis_outbox WHERE topic = $1 AND seq > COALESCE(
            (SELECT seq FROM praxis_bus_offsets WHERE topic = $1 AND grp = $2), 0)",
    )
    .bind(topic)
    .bind(group)
    .fetch_one(db.pool())
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

struct Consumer {
    inner: Arc<Inner>,
    topic: String,
    group: String,
    owner: String,
    handler: DynHandler,
    /// Events handled at once (a chunk); the offset moves once per chunk.
    concurrency: usize,
    /// Whether the offsets row exists.
    registered: bool,
    /// Position and lease expiry while this process owns the group.
    held: Option<Held>,
}

/// What a consumer knows while it owns its group: nobody else moves the offset meanwhile.
#[derive(Clone, Copy)]
struct Held {
    offset: i64,
    lease_until: i64,
}

pub(super) fn spawn_consumer(
    inner: &Arc<Inner>,
    topic: String,
    group: String,
    options: ConsumerOptions,
    handler: DynHandler,
) {
    let consumer = Consumer {
        inner: inner.clone(),
        topic,
        group,
        owner: Uuid::now_v7().to_string(),
        handler,
        concurrency: options.concurrency.max(1),
        registered: false,
        held: None,
    };
    inner.tasks.spawn(async move { consumer.run().await });
}

impl Consumer {
    async fn run(mut self) {
        let inner = self.inner.clone();
        tracing::info!(topic = %self.topic, group = %self.group, "bus consumer started (embedded)");
        let mut failures = 0u32;
        let mut lag_reported = tokio::time::Instant::now() - Duration::from_secs(60);
        while !inner.shutdown.is_cancelled() {
            let wake = inner.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let idle = match self.round().await {
                Ok(handled) => {
                    failures = 0;
                    handled == 0
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(topic = %self.topic, group = %self.group, error = %e, failures, "bus consumer round failed");
                    let delay =
                        crate::util::backoff(inner.opts.retry_base, inner.opts.retry_max, failures);
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            };
            if lag_reported.elapsed() >= Duration::from_secs(5) {
                lag_reported = tokio::time::Instant::now();
                if let Ok(n) = lag(&inner.db, &self.topic, &self.group).await {
                    metrics::gauge!("praxis_bus_lag", "topic" => self.topic.clone(), "group" => self.group.clone())
                        .set(n as f64);
                }
            }
            if idle {
                tokio::select! {
                    _ = inner.shutdown.cancelled() => break,
                    _ = &mut wake => {}
                    _ = tokio::time::sleep(inner.opts.poll_interval) => {}
                }
            }
        }
        self.release().await;
        tracing::info!(topic = %self.topic, group = %self.group, "bus consumer stopped");
    }

    /// One round: make sure this process owns the group, read a batch past the offset, handle
    /// it in order (in chunks of `concurrency` events at once). Returns how many events were handled (0 = idle or not the owner). An idle
    /// owner only reads; the lease is renewed when half of it is used up.
    async fn round(&mut self) -> Result<usize, InfraError> {
        let db = self.inner.db.clone();
        let lease = millis(self.inner.opts.lease);
        if !self.registered {
            sqlx::query(
                "INSERT INTO praxis_bus_offsets (topic, grp, seq, owner, lease_until, updated_at)
                 VALUES ($1, $2, 0, NULL, 0, $3) ON CONFLICT (topic, grp) DO NOTHING",
            )
            .bind(&self.topic)
            .bind(&self.group)
            .bind(now_ms())
            .execute(db.pool())
            .await?;
            self.registered = true;
        }
        let now = now_ms();
        let held = match self.held {
            Some(held) if held.lease_until - now > lease / 2 => held,
            _ => {
                if !self.renew().await? {
                    self.held = None;
                    return Ok(0);
                }
                // Re-read the offset: another process may have moved it before we took over.
                let offset: i64 = sqlx::query_scalar(
                    "SELECT seq FROM praxis_bus_offsets WHERE topic = $1 AND grp = $2",
                )
                .bind(&self.topic)
                .bind(&self.group)
                .fetch_one(db.pool())
                .await?;
                let held = Held {
                    offset,
                    lease_until: now + lease,
                };
                self.held = Some(held);
                held
            }
        };
        let offset = held.offset;
        let rows = sqlx::query(
            "SELECT seq, id, topic, key, payload, created_at, traceparent FROM praxis_outbox
             WHERE topic = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(&self.topic)
        .bind(offset)
        .bind(i64::from(self.inner.opts.batch_size.max(1)))
        .fetch_all(db.pool())
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(outbox::event_of(row)?);
        }
        let mut handled = 0;
        for chunk in events.chunks(self.concurrency) {
            // One event: handled in place. More: at once, and the offset moves past the chunk
            // only when every one of them is done.
            let outcomes: Vec<Outcome> = if let [(_, event)] = chunk {
                vec![self.handle(event).await]
            } else {
                futures::future::join_all(chunk.iter().map(|(_, event)| self.handle(event))).await
            };
            if outcomes.iter().any(|o| matches!(o, Outcome::Shutdown)) {
                return Ok(handled);
            }
            for ((_, event), outcome) in chunk.iter().zip(outcomes) {
                if let Outcome::Failed(reason) = outcome {
                    dead_letter::record(&db, &self.group, event, &reason).await?;
                }
            }
            let Some(&(seq, _)) = chunk.last() else {
                continue;
            };
            let now = now_ms();
            if !self.advance(seq, now + lease).await? {
                tracing::warn!(topic = %self.topic, group = %self.group, "bus group lease lost to another process");
                self.held = None;
                return Ok(handled);
            }
            self.held = Some(Held {
                offset: seq,
                lease_until: now + lease,
            });
            handled += chunk.len();
        }
        Ok(handled)
    }

    /// Runs the handler on `event`, retrying transient failures in place with backoff (which
    /// keeps the group's order) until success, a permanent failure or shutdown.
    async fn handle(&self, event: &Event) -> Outcome {
        let inner = &self.inner;
        let group = self.group.as_str();
        let mut attempt = 0u32;
        loop {
            match (self.handler)(event.clone()).await {
                Ok(()) => {
                    consumed(&event.topic, group, "ok");
                    return Outcome::Handled;
                }
                Err(HandlerError::Permanent(reason)) => {
                    consumed(&event.topic, group, "permanent");
                    return Outcome::Failed(reason);
                }
                Err(HandlerError::Transient(reason)) => {
                    consumed(&event.topic, group, "transient");
                    let delay =
                        crate::util::backoff(inner.opts.retry_base, inner.opts.retry_max, attempt);
                    tracing::warn!(topic = %event.topic, group, event_id = %event.id, attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), reason = %reason,
                        "bus handler failed transiently; retrying");
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => return Outcome::Shutdown,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    if let Err(e) = self.renew().await {
                        tracing::warn!(topic = %self.topic, group, error = %e, "bus lease renewal failed");
                    }
                }
            }
        }
    }

    /// Takes or extends the lease; false when another process holds it.
    async fn renew(&self) -> Result<bool, InfraError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE praxis_bus_offsets SET owner = $1, lease_until = $2
             WHERE topic = $3 AND grp = $4 AND (owner IS NULL OR owner = $1 OR lease_until < $5)",
        )
        .bind(&self.owner)
        .bind(now + millis(self.inner.opts.lease))
        .bind(&self.topic)
        .bind(&self.group)
        .bind(now)
        .execute(self.inner.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Persists the offset after a handled event; false when the lease was lost.
    async fn advance(&self, seq: i64, lease_until: i64) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE praxis_bus_offsets SET seq = $1, updated_at = $2, lease_until = $3
             WHERE topic = $4 AND grp = $5 AND owner = $6",
        )
        .bind(seq)
        .bind(now_ms())
        .bind(lease_until)
        .bind(&self.topic)
        .bind(&self.group)
        .bind(&self.owner)
        .execute(self.inner.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up so another process (or a restart) can take over at once.
    async fn release(&self) {
        let released = sqlx::query(
            "UPDATE praxis_bus_offsets SET owner = NULL, lease_until = 0 WHERE topic = $1 AND grp = $2 AND owner = $3",
        )
        .bind(&self.topic)
        .bind(&self.group)
        .bind(&self.owner)
        .execute(self.inner.db.pool())
        .await;
        if let Err(e) = released {
            tracing::debug!(topic = %self.topic, group = %self.group, error = %e, "bus lease release failed");
        }
    }
}

/// Periodically deletes outbox rows that every group of their topic has passed, and rows of
/// topics without groups older than the retention.
pub(super) fn spawn_pruner(inner: &Arc<Inner>) {
    let inner = inner.clone();
    inner.tasks.clone().spawn(async move {
        loop {
            tokio::select! {
                _ = inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(inner.opts.prune_interval) => {}
            }
            match prune(&inner).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, "bus outbox pruned"),
                Err(e) => tracing::warn!(error = %e, "bus outbox pruning failed"),
            }
        }
    });
}

async fn prune(inner: &Inner) -> Result<u64, InfraError> {
    let pool = inner.db.pool();
    let passed = sqlx::query(
        "DELETE FROM praxis_outbox WHERE seq <=
            (SELECT MIN(o.seq) FROM praxis_bus_offsets o WHERE o.topic = praxis_outbox.topic)",
    )
    .execute(pool)
    .await?;
    let cutoff = now_ms() - millis(inner.opts.unconsumed_retention);
    let expired = sqlx::query(
        "DELETE FROM praxis_outbox WHERE created_at < $1
         AND NOT EXISTS (SELECT 1 FROM praxis_bus_offsets o WHERE o.topic = praxis_outbox.topic)",
    )
    .bind(cutoff)
    .execute(pool)
    .await?;
    Ok(passed.rows_affected() + expired.rows_affected())
}

/// What became of one event.
enum Outcome {
    /// The handler succeeded.
    Handled,
    /// The handler failed permanently with this reason.
    Failed(String),
    /// Shutdown interrupted the retries; the event stays unhandled.
    Shutdown,
}
