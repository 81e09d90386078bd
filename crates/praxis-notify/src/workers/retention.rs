//! Retention: a background task deletes old messages whose deliveries are all final, with
//! their deliveries and attempts, so the tables stop growing with history.
//!
//! A message is pruned when all of these hold:
//! - it was accepted before `now - retention` ([`crate::NotifySettings::retention`], 30 days
//!   by default; zero keeps everything and the task does not run);
//! - it was expanded, and every delivery it has is final: `delivered`, `failed` (dead
//!   letters older than the retention go too: they can no longer be requeued), `suppressed`,
//!   or `digested` once the digest batch it joined is itself no longer queued or sending;
//! - when it carries an idempotency key, it was also accepted before `now - idempotency_ttl`:
//!   a send's key is honoured at least as long as the other routes' keys (a retry after the
//!   message is gone would queue it again);
//! - when it was accepted with a dedupe window, it was also accepted before `now - 7 days`
//!   (the longest dedupe window), so a duplicate never answers with a pruned message's id.
//!
//! Inbox rows (`notify_inbox`) are kept: they are the subscriber's content, read and deleted
//! through the inbox API, not delivery history.
//!
//! The task runs at start and then every `retention_interval`, bound to the platform's
//! shutdown. It works in batches of [`BATCH`] messages, one short write transaction each,
//! with a [`PAUSE`] between batches so dispatchers and accepts are not starved (on SQLite
//! there is one writer). Several processes may run it at once: deleting is idempotent, and a
//! delivery requeued while its batch runs is kept (the delete re-checks the state of each
//! row), as is its message.
//!
//! Metric: `praxis_notify_pruned_total` counts pruned messages.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use tokio_util::sync::CancellationToken;

use praxis_infra::InfraError;

use crate::domain::model::now_ms;
use crate::store::Store;

/// Counter of pruned messages.
pub const PRUNED_TOTAL: &str = "praxis_notify_pruned_total";
/// Messages per batch (one transaction).
pub const BATCH: usize = 500;
/// Pause between two batches of one run.
pub const PAUSE: Duration = Duration::from_millis(50);
/// A message accepted with a dedupe window is kept at least this long (the longest window).
pub const DEDUPE_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// Delivery states after which nothing more happens (`digested` is checked against its batch:
/// kept while the batch may still be sent, `failed` included, since a dead letter can be
/// requeued and renders its members' events).
const FINAL: &str = "'delivered', 'failed', 'suppressed', 'digested'";

/// What a run (or a batch) deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Messages.
    pub messages: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Attempts.
    pub attempts: u64,
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, other: Pruned) {
        self.messages += other.messages;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
    }
}

/// Deletes old final messages (see the [module docs](self)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pruner {
    store: Store,
    retention: Duration,
    idempotency_ttl: Duration,
    batch: usize,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Pruner {
    /// A pruner keeping messages for `retention` (zero: forever), and messages with an
    /// idempotency key for at least `idempotency_ttl`.
    pub fn new(store: Store, retention: Duration, idempotency_ttl: Duration) -> Pruner {
        Pruner {
            store,
            retention,
            idempotency_ttl,
            batch: BATCH,
        }
    }

    /// The same pruner with batches of `n` messages (at least 1).
    pub fn with_batch(mut self, n: usize) -> Pruner {
        self.batch = n.max(1);
        self
    }

    /// Whether it deletes anything (a zero retention keeps everything).
    pub fn is_enabled(&self) -> bool {
        !self.retention.is_zero()
    }

    /// Prunes one batch as of `now_ms`: at most the batch size of messages.
    pub async fn prune_batch(&self, now_ms: i64) -> Result<Pruned, InfraError> {
        if !self.is_enabled() {
            return Ok(Pruned::default());
        }
        let cutoff = now_ms.saturating_sub(ms(self.retention));
        let key_cutoff = cutoff.min(now_ms.saturating_sub(ms(self.idempotency_ttl)));
        let dedupe_cutoff = cutoff.min(now_ms.saturating_sub(ms(DEDUPE_HORIZON)));
        let backend = self.store.db().backend();
        let mut tx = self.store.db().begin_write().await?;
        let select = format!(
            "SELECT m.id FROM notify_messages m \
             WHERE m.created_at < $1 AND m.expanded_at IS NOT NULL \
             AND (m.idempotency_key IS NULL OR m.created_at < $2) \
             AND (m.dedupe_window IS NULL OR m.created_at < $3) \
             AND NOT EXISTS (SELECT 1 FROM notify_deliveries d WHERE d.message_id = m.id \
                 AND (d.state NOT IN ({FINAL}) \
                      OR (d.state = 'digested' AND EXISTS (SELECT 1 FROM notify_deliveries b \
                          WHERE b.id = d.digest_of AND b.state IN ('queued', 'sending', 'failed'))))) \
             LIMIT $4"
        );
        let ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(select))
            .bind(cutoff)
            .bind(key_cutoff)
            .bind(dedupe_cutoff)
            .bind(i64::try_from(self.batch).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Pruned::default());
        }
        // Deliveries first, re-checking their state: one requeued meanwhile stays, and so
        // does its message (deleted below only when it has no delivery left).
        let sql = format!(
            "DELETE FROM notify_deliveries WHERE message_id IN ({}) AND state IN ({FINAL}) \
             RETURNING id",
            backend.placeholders(1, ids.len(), 1)
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(id);
        }
        let deliveries = q.fetch_all(&mut *tx).await?;
        let mut attempts = 0;
        for chunk in deliveries.chunks(crate::store::IN_CHUNK) {
            let sql = format!(
                "DELETE FROM notify_attempts WHERE delivery_id IN ({})",
                backend.placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            attempts += q.execute(&mut *tx).await?.rows_affected();
        }
        let sql = format!(
            "DELETE FROM notify_messages WHERE id IN ({}) AND NOT EXISTS \
             (SELECT 1 FROM notify_deliveries d WHERE d.message_id = notify_messages.id)",
            backend.placeholders(1, ids.len(), 1)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(id);
        }
        let messages = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            messages,
            deliveries: deliveries.len() as u64,
            attempts,
        })
    }

    /// Prunes batch after batch as of `now_ms` until one comes back short (or `shutdown`),
    /// pausing [`PAUSE`] between batches; counts the metric.
    pub async fn run_once(
        &self,
        now_ms: i64,
        shutdown: &CancellationToken,
    ) -> Result<Pruned, InfraError> {
        let mut total = Pruned::default();
        loop {
            let pruned = self.prune_batch(now_ms).await?;
            metrics::counter!(PRUNED_TOTAL).increment(pruned.messages);
            total += pruned;
            // A batch with fewer candidates than its size was the last one.
            if pruned.messages < self.batch as u64 {
                return Ok(total);
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(total),
                () = tokio::time::sleep(PAUSE) => {}
            }
        }
    }

    /// Deletes the `notify_dedupe` rows that can no longer match: accepted more than
    /// [`DEDUPE_HORIZON`] (the longest dedupe window) before `now_ms`. Returns how many.
    pub async fn prune_dedupe(&self, now_ms: i64) -> Result<u64, InfraError> {
        let before = now_ms.saturating_sub(ms(DEDUPE_HORIZON));
        let done = sqlx::query("DELETE FROM notify_dedupe WHERE accepted_at < $1")
            .bind(before)
            .execute(self.store.db().pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// Runs the pruner now and then every `every` until `shutdown`; errors are logged and the
/// next run tries again.
pub async fn run(pruner: Pruner, every: Duration, shutdown: CancellationToken) {
    if !pruner.is_enabled() {
        return;
    }
    loop {
        match pruner.run_once(now_ms(), &shutdown).await {
            Ok(p) if p.messages > 0 => tracing::info!(
                messages = p.messages,
                deliveries = p.deliveries,
                attempts = p.attempts,
                "notify retention: pruned old messages"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "notify retention: pruning failed; retrying at the next run")
            }
        }
        match pruner.prune_dedupe(now_ms()).await {
            Ok(n) if n > 0 => {
                tracing::info!(rows = n, "notify retention: pruned expired dedupe rows")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "notify retention: pruning dedupe rows failed; retrying at the next run")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
