//! Shadow reads: while a move is in progress, a sample of live reads is repeated on the
//! shard the move's target ring names, and the two answers compared, off the read's path.
//! What the target says is counted per move in the control database (`shadow_compared`,
//! `shadow_behind`, `shadow_differed`), so every process's samples add up, and a move whose
//! target differs is not switched.
//!
//! - **equal**: the same version and document on both;
//! - **behind**: the target has not caught up yet (missing, or an older version), or has
//!   caught up past what the source answered (the tail copied a later write): expected while
//!   copying;
//! - **differed**: the same version with another document: the copy is wrong.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use praxis_infra::Db;
use praxis_kit::ring::{Ring, ShardSpec};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::docs::{Doc, read_doc};
use crate::error::ShardError;
use crate::shards::ShardSet;

/// A move in progress, as the shadow reads need it.
#[derive(Debug)]
struct Active {
    id: String,
    target: Ring,
}

/// The counts of one move not yet added to the control database.
#[derive(Debug, Default)]
struct Counts {
    compared: AtomicU64,
    behind: AtomicU64,
    differed: AtomicU64,
}

/// What a shadow read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same on both.
    Equal,
    /// The target has not caught up (or caught up past the source's answer).
    Behind,
    /// The target holds another document at the same version.
    Differed,
}

/// Compares the source's answer with the target's.
pub fn compare(source: Option<&Doc>, target: Option<&Doc>) -> Verdict {
    match (source, target) {
        (None, None) => Verdict::Equal,
        (Some(_), None) | (None, Some(_)) => Verdict::Behind,
        (Some(s), Some(t)) if t.version != s.version => Verdict::Behind,
        (Some(s), Some(t)) if t.doc == s.doc => Verdict::Equal,
        _ => Verdict::Differed,
    }
}

/// The shadow reads of one process. Cheap to clone.
#[derive(Clone)]
pub struct Shadow {
    inner: Arc<Inner>,
}

struct Inner {
    control: Db,
    shards: ShardSet,
    /// One read in `every` is repeated on the target.
    every: u64,
    reads: AtomicU64,
    active: ArcSwap<HashMap<String, Arc<Active>>>,
    counts: Mutex<HashMap<String, Arc<Counts>>>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("every", &self.inner.every)
            .finish_non_exhaustive()
    }
}

impl Shadow {
    /// Shadow reads of one read in `every` (0: none), with the moves in progress read from
    /// `control` and the counts written there every `flush` until `shutdown`.
    pub fn start(
        control: Db,
        shards: ShardSet,
        every: u64,
        flush: Duration,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Shadow {
        let shadow = Shadow {
            inner: Arc::new(Inner {
                control,
                shards,
                every,
                reads: AtomicU64::new(0),
                active: ArcSwap::from_pointee(HashMap::new()),
                counts: Mutex::new(HashMap::new()),
                tasks: tasks.clone(),
            }),
        };
        if every > 0 {
            let s = shadow.clone();
            tasks.spawn(async move {
                loop {
                    if let Err(e) = s.refresh().await {
                        tracing::warn!(error = %e, "shadow reads: cannot read the moves in progress");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => { let _ = s.refresh().await; return; }
                        () = tokio::time::sleep(flush) => {}
                    }
                }
            });
        }
        shadow
    }

    /// Writes the counts so far and reads the moves in progress again.
    pub async fn refresh(&self) -> Result<(), ShardError> {
        let pending: Vec<(String, Arc<Counts>)> = self
            .inner
            .counts
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, counts) in pending {
            let compared = counts.compared.swap(0, Ordering::Relaxed);
            let behind = counts.behind.swap(0, Ordering::Relaxed);
            let differed = counts.differed.swap(0, Ordering::Relaxed);
            if compared == 0 {
                continue;
            }
            sqlx::query(
                "UPDATE shard_moves SET shadow_compared = shadow_compared + $2, \
                 shadow_behind = shadow_behind + $3, shadow_differed = shadow_differed + $4 \
                 WHERE id = $1",
            )
            .bind(&id)
            .bind(i64::try_from(compared).unwrap_or(i64::MAX))
            .bind(i64::try_from(behind).unwrap_or(i64::MAX))
            .bind(i64::try_from(differed).unwrap_or(i64::MAX))
            .execute(self.inner.control.pool())
            .await?;
        }
        let rows = sqlx::query(
            "SELECT id, region, target FROM shard_moves WHERE state IN ('copying', 'fenced')",
        )
        .fetch_all(self.inner.control.pool())
        .await?;
        let mut active = HashMap::new();
        for row in rows {
            let spec: Vec<ShardSpec> = serde_json::from_str(&row.try_get::<String, _>("target")?)
                .map_err(|e| {
                ShardError::Infra(praxis_infra::InfraError::Codec(e.to_string()))
            })?;
            active.insert(
                row.try_get::<String, _>("region")?,
                Arc::new(Active {
                    id: row.try_get("id")?,
                    target: Ring::new(&spec)?,
                }),
            );
        }
        let ids: Vec<String> = active.values().map(|a| a.id.clone()).collect();
        self.inner.counts.lock().retain(|id, _| ids.contains(id));
        self.inner.active.store(Arc::new(active));
        Ok(())
    }

    /// After a live read of `id` (`collection`, at `position`) from `shard` of `region`
    /// answered `found`: for a sampled read while the region moves and the target ring puts
    /// the position elsewhere, reads the target in the background and counts the verdict.
    pub fn observe(
        &self,
        region: &str,
        shard: &str,
        collection: &str,
        id: &str,
        position: i64,
        found: Option<&Doc>,
    ) {
        let inner = &self.inner;
        if inner.every == 0 {
            return;
        }
        let Some(active) = inner.active.load().get(region).cloned() else {
            return;
        };
        if !inner
            .reads
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(inner.every)
        {
            return;
        }
        let target = active.target.shard_at(position.unsigned_abs()).to_owned();
        if target == shard {
            return;
        }
        let counts = inner
            .counts
            .lock()
            .entry(active.id.clone())
            .or_default()
            .clone();
        let (shards, region, collection, id) = (
            inner.shards.clone(),
            region.to_owned(),
            collection.to_owned(),
            id.to_owned(),
        );
        let found = found.cloned();
        inner.tasks.spawn(async move {
            let Ok(db) = shards.db(&region, &target).await else {
                return;
            };
            let Ok(there) = read_doc(&db, &collection, &id).await else {
                return;
            };
            let verdict = compare(found.as_ref(), there.as_ref());
            counts.compared.fetch_add(1, Ordering::Relaxed);
            let label = match verdict {
                Verdict::Equal => "equal",
                Verdict::Behind => {
                    counts.behind.fetch_add(1, Ordering::Relaxed);
                    "behind"
                }
                Verdict::Differed => {
                    counts.differed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        region,
                        id,
                        target,
                        "shadow read: the target holds another document at the same version"
                    );
                    "differed"
                }
            };
            metrics::counter!("praxis_shard_shadow_reads_total", "verdict" => label).increment(1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: i64, text: &str) -> Doc {
        Doc {
            collection: "c".to_owned(),
            id: "i".to_owned(),
            position: 1,
            doc: text.to_owned(),
            version,
            updated_at: 0,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(compare(None, None), Verdict::Equal);
        assert_eq!(
            compare(Some(&doc(2, "a")), Some(&doc(2, "a"))),
            Verdict::Equal
        );
        assert_eq!(compare(Some(&doc(2, "a")), None), Verdict::Behind);
        assert_eq!(
            compare(Some(&doc(3, "b")), Some(&doc(2, "a"))),
            Verdict::Behind
        );
        assert_eq!(
            compare(Some(&doc(2, "a")), Some(&doc(3, "b"))),
            Verdict::Behind
        );
        assert_eq!(
            compare(Some(&doc(2, "a")), Some(&doc(2, "b"))),
            Verdict::Differed
        );
    }
}
