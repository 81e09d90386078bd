//! Background work: the statistics consumer, the listener that learns codes created by other
//! processes, and the maintenance loop (Bloom filter rebuilds, pruning of applied batch ids).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use praxis_infra::InfraError;
use praxis_infra::bus::{Bus, Event, HandlerError};

use crate::domain::bloom::CodeFilter;
use crate::domain::days::now_ms;
use crate::domain::visits::{STATS_GROUP, VISITS_TOPIC, VisitBatch};
use crate::store::Store;

/// Codes read per page when rebuilding the Bloom filter.
const REBUILD_PAGE: u32 = 5000;
/// How long applied batch ids are remembered (far beyond any redelivery).
const APPLIED_BATCH_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often old batch ids are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Subscribes the `shortener-stats` group: each visit batch is applied exactly once.
pub fn subscribe_stats(bus: &Bus, store: Store) -> Result<(), InfraError> {
    bus.subscribe(VISITS_TOPIC, STATS_GROUP, move |event: Event| {
        let store = store.clone();
        async move { apply_event(&store, &event).await }
    })
}

/// Handles one `shortener.visits` event.
pub async fn apply_event(store: &Store, event: &Event) -> Result<(), HandlerError> {
    let batch: VisitBatch = serde_json::from_slice(&event.payload).map_err(|e| {
        HandlerError::Permanent(format!("visit batch {} does not parse: {e}", event.id))
    })?;
    let applied = store.apply_batch(&batch, now_ms()).await?;
    if !applied {
        tracing::debug!(batch_id = %batch.batch_id, "visit batch already applied; ignored");
    }
    Ok(())
}

/// Adds codes announced on `shortener.created` (by any process) to the Bloom filter. A lagged
/// receiver missed announcements, so it asks for a rebuild.
pub async fn run_created_listener(
    mut rx: broadcast::Receiver<Bytes>,
    filter: Arc<CodeFilter>,
    rebuild: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            r = rx.recv() => r,
        };
        match received {
            Ok(payload) => {
                let mut grow = false;
                for code in String::from_utf8_lossy(&payload)
                    .split('\n')
                    .filter(|c| !c.is_empty())
                {
                    grow |= filter.insert(code);
                }
                if grow {
                    rebuild.notify_one();
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "missed created-code announcements; rebuilding the Bloom filter"
                );
                rebuild.notify_one();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Rebuilds the Bloom filter from the database, sized for twice the current number of codes
/// (at least `min_capacity`). Creates that happen meanwhile are kept.
pub async fn rebuild_filter(
    store: &Store,
    filter: &CodeFilter,
    min_capacity: u64,
) -> Result<u64, InfraError> {
    let count = store.count_links().await?;
    let capacity = min_capacity.max(count.saturating_mul(2));
    let rebuild = filter.begin_rebuild(capacity);
    let mut after = String::new();
    let mut loaded = 0u64;
    loop {
        let page = match store.codes_after(&after, REBUILD_PAGE).await {
            Ok(p) => p,
            Err(e) => {
                filter.abort_rebuild(rebuild);
                return Err(e);
            }
        };
        for code in &page {
            rebuild.insert(code);
        }
        loaded += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == REBUILD_PAGE as usize => after.clone_from(last),
            _ => break,
        }
    }
    filter.finish_rebuild(rebuild);
    metrics::gauge!("praxis_shortener_bloom_capacity").set(capacity as f64);
    metrics::gauge!("praxis_shortener_bloom_codes").set(loaded as f64);
    tracing::info!(codes = loaded, capacity, "bloom filter rebuilt");
    Ok(loaded)
}

/// Settings of the maintenance loop.
#[derive(Debug, Clone, Copy)]
pub struct Maintenance {
    /// Smallest Bloom capacity.
    pub min_capacity: u64,
    /// Periodic rebuild interval.
    pub rebuild_every: Duration,
}

/// Rebuilds the Bloom filter when asked (growth, missed announcements) and periodically;
/// prunes old applied batch ids. Stops with `shutdown`.
pub async fn run_maintenance(
    store: Store,
    filter: Arc<CodeFilter>,
    rebuild: Arc<Notify>,
    opts: Maintenance,
    shutdown: CancellationToken,
) {
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let periodic = tokio::time::sleep(praxis_kit::jitter::jittered(opts.rebuild_every, 0.2));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = rebuild.notified() => {}
            () = periodic => {}
            _ = prune.tick() => {
                match store.prune_batches(now_ms() - APPLIED_BATCH_RETENTION_MS).await {
                    Ok(n) if n > 0 => tracing::debug!(pruned = n, "old visit batch ids pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning visit batch ids failed"),
                }
                continue;
            }
        }
        if let Err(e) = rebuild_filter(&store, &filter, opts.min_capacity).await {
            tracing::warn!(error = %e, "bloom filter rebuild failed; keeping the current filter");
        }
    }
}
