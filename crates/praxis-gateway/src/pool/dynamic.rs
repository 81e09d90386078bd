//! Dynamic weights for a `weighted` pool: every `weight_interval` each instance's weight is
//! its declared weight scaled by how cheap it is now (latency estimate × (in flight + 1)),
//! with [`praxis_kit::balance::weights_from_costs`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Pool;

/// Scale of the derived weights: the cheapest instance of weight 1 gets 100.
pub const RESOLUTION: u32 = 100;

/// Refreshes `pool`'s weights until `shutdown` or the pool's `stop`.
pub async fn run(pool: Arc<Pool>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = pool.stop.cancelled() => return,
            _ = tokio::time::sleep(pool.config.weight_interval) => {}
        }
        pool.refresh_weights();
    }
}
