//! The retention: messages older than `retention` are deleted in batches, every tenth of the
//! retention (at least every second, at most every hour). A client that catches up from before
//! the oldest kept message gets a `reset` (see the API's session).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

use super::now_ms;

/// Messages deleted per statement.
const BATCH: i64 = 1_000;

/// How often the retention runs for `retention`.
pub fn every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Deletes what is older than `retention` until `shutdown`.
pub async fn run(store: Store, retention: Duration, shutdown: CancellationToken) {
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(every(retention));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let cutoff = now_ms().saturating_sub(keep_ms);
        loop {
            match store.prune(cutoff, BATCH).await {
                Ok(n) if n == BATCH.unsigned_abs() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "chat: retention failed; trying again later");
                    break;
                }
            }
        }
    }
}
