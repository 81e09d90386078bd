//! The reservation sweeper: releases reservations whose TTL passed, in every process. Each
//! release is a conditional update (`status = 'held'`), so two sweepers racing release each
//! reservation once.

use tokio_util::sync::CancellationToken;

use super::inventory::Inventory;

/// Reservations released per pass.
const BATCH: i64 = 500;

/// Sweeps every `sweep_interval` until `shutdown`.
pub async fn run(inventory: Inventory, shutdown: CancellationToken) {
    let every = inventory.settings().sweep_interval;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        loop {
            match inventory.release_expired(BATCH).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "the reservation sweeper failed; it retries next interval");
                    break;
                }
            }
        }
    }
}
