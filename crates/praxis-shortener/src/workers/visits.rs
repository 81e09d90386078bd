//! The visit pipeline: the redirect path adds each visit to a tally of its thread's shard
//! (one uncontended lock and a hash-map entry; no channel, no task to wake); a flusher takes
//! every shard's tally once a second (or as soon as `visit_batch_max` distinct keys are held),
//! sums them per (code, day, agent, referrer) and stores the sums in batches of at most
//! `visit_batch_max` keys, each exactly once (see [`crate::store::Store::apply_batch`]).
//! Visits still in memory at a `kill -9` are lost (at most about one flush interval, plus
//! batches waiting for an unavailable database); a graceful shutdown stores them first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::days::now_ms;
use crate::domain::visits::{Visit, VisitBatch, VisitTally};
use crate::store::Store;

/// Attempts per batch at shutdown (a running flusher tries once per round).
const STORE_ATTEMPTS: u32 = 4;
/// Tallies per sink: threads are spread over them, so two runtime workers rarely share a lock.
const SHARDS: usize = 16;

/// Where the redirect path drops visits. Cheap to clone; never waits for I/O.
#[derive(Debug, Clone)]
pub struct VisitSink {
    tallies: Option<Arc<Tallies>>,
}

#[derive(Debug)]
struct Tallies {
    shards: [Mutex<VisitTally>; SHARDS],
    /// Distinct keys held across the shards (approximately: updated after each shard's lock).
    keys: AtomicUsize,
    /// Most distinct keys held; visits to further keys are dropped until the next flush.
    capacity: usize,
    /// Keys held that make the flusher publish before its interval.
    early: usize,
    flush: Notify,
}

impl Tallies {
    fn shard(&self, n: usize) -> MutexGuard<'_, VisitTally> {
        // A panic while adding leaves the tally whole (counts are plain integers).
        self.shards[n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes every shard's tally, summed into one.
    fn take(&self) -> VisitTally {
        let mut all = VisitTally::default();
        for n in 0..SHARDS {
            let tally = {
                let mut shard = self.shard(n);
                let tally = std::mem::take(&mut *shard);
                self.keys.fetch_sub(tally.keys(), Ordering::Relaxed);
                tally
            };
            all.merge(tally);
        }
        all
    }
}

thread_local! {
    /// This thread's shard, assigned round robin at its first visit.
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

impl VisitSink {
    /// A sink holding at most `capacity` distinct keys between flushes, asking for an early
    /// flush once `early` are held.
    pub fn new(capacity: usize, early: usize) -> Self {
        Self {
            tallies: Some(Arc::new(Tallies {
                shards: std::array::from_fn(|_| Mutex::new(VisitTally::default())),
                keys: AtomicUsize::new(0),
                capacity: capacity.max(1),
                early: early.clamp(1, capacity.max(1)),
                flush: Notify::new(),
            })),
        }
    }

    /// A sink that records nothing (visit statistics switched off).
    pub fn disabled() -> Self {
        Self { tallies: None }
    }

    /// Whether visits are recorded at all; the redirect path skips building a [`Visit`] when
    /// they are not.
    pub fn enabled(&self) -> bool {
        self.tallies.is_some()
    }

    /// Records a visit, or drops it (counted in `praxis_shortener_visits_dropped_total`) when
    /// it would be a new key beyond the capacity.
    pub fn record(&self, visit: Visit) {
        let Some(t) = &self.tallies else { return };
        let full = t.keys.load(Ordering::Relaxed) >= t.capacity;
        let mut shard = t.shard(SHARD.with(|n| *n));
        match shard.add_if(visit, !full) {
            None => {
                drop(shard);
                metrics::counter!("praxis_shortener_visits_dropped_total", "reason" => "full")
                    .increment(1);
            }
            Some(false) => {}
            Some(true) => {
                // Counted under the shard's lock, so a flusher that takes the shard always
                // subtracts a key already counted (the count never goes below zero).
                let held = t.keys.fetch_add(1, Ordering::Relaxed) + 1;
                drop(shard);
                if held == t.early {
                    t.flush.notify_one();
                }
            }
        }
    }

    /// Takes everything held (the flusher; tests).
    pub fn take(&self) -> VisitTally {
        self.tallies.as_ref().map(|t| t.take()).unwrap_or_default()
    }
}

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Most distinct (code, day, agent, referrer) keys per batch.
    pub max: usize,
    /// Longest a visit waits.
    pub interval: Duration,
}

/// Stores what `sink` holds every `opts.interval` (sooner when it asks), until `shutdown` is
/// cancelled; then stores what is left and returns.
///
/// Each batch of at most `opts.max` keys is applied in one transaction with its batch id
/// ([`Store::apply_batch`]), so a retry after an ambiguous failure never counts twice. A
/// batch the database does not take now (unavailable, timeout) waits for the next round,
/// oldest first; what waits is bounded by the sink's capacity in keys, beyond which the
/// oldest batches are dropped and counted.
pub async fn run_flusher(
    sink: VisitSink,
    store: Store,
    opts: BatchOptions,
    shutdown: CancellationToken,
) {
    let Some(tallies) = sink.tallies.clone() else {
        return;
    };
    let max = opts.max.max(1);
    let mut waiting = Waiting::default();
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            biased;
            () = shutdown.cancelled() => true,
            () = tallies.flush.notified() => false,
            _ = tick.tick() => false,
        };
        let mut held = tallies.take();
        while !held.is_empty() {
            waiting.push(held.take_at_most(max));
        }
        waiting
            .store(&store, if last { STORE_ATTEMPTS } else { 1 })
            .await;
        waiting.bound(tallies.capacity);
        if last {
            waiting.drop_all("shutdown");
            tracing::debug!("visit flusher stored what it held at shutdown");
            return;
        }
    }
}

/// Batches not stored yet, oldest first.
#[derive(Default)]
struct Waiting {
    batches: VecDeque<(VisitBatch, u64)>,
    keys: usize,
}

impl Waiting {
    fn push(&mut self, tally: VisitTally) {
        let visits = tally.visits();
        let rows = tally.into_rows();
        self.keys += rows.len();
        self.batches.push_back((VisitBatch::new(rows), visits));
    }

    /// Stores batches oldest first; stops at the first one the database does not take after
    /// `attempts` tries (it stays, with its id, for the next round).
    async fn store(&mut self, store: &Store, attempts: u32) {
        let backoff =
            praxis_kit::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        'batches: while let Some((batch, visits)) = self.batches.front() {
            for attempt in 0..attempts {
                match store.apply_batch(batch, now_ms()).await {
                    Ok(_) => {
                        metrics::counter!("praxis_shortener_visit_batches_total").increment(1);
                        self.pop_oldest();
                        continue 'batches;
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(error = %e, attempt, visits, "storing a visit batch failed; it is kept for the next round");
                        if attempt + 1 < attempts {
                            tokio::time::sleep(backoff.delay(attempt)).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, visits, "storing a visit batch failed; dropping it");
                        dropped("store", self.pop_oldest());
                        continue 'batches;
                    }
                }
            }
            return;
        }
    }

    /// Drops the oldest batches while more than `capacity` keys wait.
    fn bound(&mut self, capacity: usize) {
        while self.keys > capacity && self.batches.len() > 1 {
            dropped("full", self.pop_oldest());
        }
    }

    fn drop_all(&mut self, reason: &'static str) {
        while !self.batches.is_empty() {
            dropped(reason, self.pop_oldest());
        }
    }

    /// Removes the oldest batch; returns the visits it held (0 when none waits).
    fn pop_oldest(&mut self) -> u64 {
        let Some((batch, visits)) = self.batches.pop_front() else {
            return 0;
        };
        self.keys -= batch.counts.len();
        visits
    }
}

fn dropped(reason: &'static str, visits: u64) {
    if visits > 0 {
        tracing::error!(visits, reason, "visits dropped");
        metrics::counter!("praxis_shortener_visits_dropped_total", "reason" => reason)
            .increment(visits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::AgentClass;

    fn visit(code: &str) -> Visit {
        Visit {
            code: code.into(),
            at_ms: 0,
            referrer: None,
            agent: AgentClass::Other,
        }
    }

    #[test]
    fn visits_of_every_thread_are_summed_once() {
        let sink = VisitSink::new(1000, 1000);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let sink = sink.clone();
                s.spawn(move || {
                    for n in 0..1000 {
                        sink.record(visit(&format!("c{}", n % 10)));
                    }
                });
            }
        });
        let held = sink.take();
        assert_eq!((held.keys(), held.visits()), (10, 8000));
        assert!(sink.take().is_empty());
    }

    #[test]
    fn new_keys_beyond_the_capacity_are_dropped_and_known_keys_still_count() {
        let sink = VisitSink::new(2, 2);
        for code in ["a", "b", "c", "a"] {
            sink.record(visit(code));
        }
        let held = sink.take();
        assert_eq!((held.keys(), held.visits()), (2, 3));
        // After a flush there is room again.
        sink.record(visit("c"));
        assert_eq!(sink.take().keys(), 1);
    }

    #[test]
    fn disabled_sink_records_nothing() {
        let sink = VisitSink::disabled();
        assert!(!sink.enabled());
        sink.record(visit("abc"));
        assert!(sink.take().is_empty());
    }
}
