//! The visit pipeline: the redirect path hands visits to a bounded channel without waiting;
//! a batcher sums them per (code, day, agent, referrer) and publishes the sums as one bus
//! event per second (or once `visit_batch_max` distinct keys are held); the `shortener-stats`
//! consumer group applies each batch exactly once (see
//! [`crate::store::Store::apply_batch`]). Visits still in memory at a `kill -9` are lost (at
//! most about one flush interval); a graceful shutdown publishes them first.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use praxis_infra::bus::Bus;

use crate::domain::visits::{VISITS_TOPIC, Visit, VisitBatch, VisitTally};

/// Publish attempts per batch before it is dropped (and counted).
const PUBLISH_ATTEMPTS: u32 = 4;

/// Where the redirect path drops visits. Cheap to clone; never waits.
#[derive(Debug, Clone)]
pub struct VisitSink {
    tx: Option<mpsc::Sender<Visit>>,
}

impl VisitSink {
    /// A sink with room for `capacity` visits and the receiver the batcher drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Visit>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx: Some(tx) }, rx)
    }

    /// A sink that records nothing (visit statistics switched off).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Whether visits are recorded at all; the redirect path skips building a [`Visit`] when
    /// they are not.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Records a visit, or drops it (counted in `praxis_shortener_visits_dropped_total`) when
    /// the buffer is full or the batcher has stopped.
    pub fn record(&self, visit: Visit) {
        let Some(tx) = &self.tx else { return };
        if let Err(e) = tx.try_send(visit) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "full",
                mpsc::error::TrySendError::Closed(_) => "closed",
            };
            metrics::counter!("praxis_shortener_visits_dropped_total", "reason" => reason)
                .increment(1);
        }
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

/// Runs until `shutdown` is cancelled (then publishes what is buffered) or every sink is
/// dropped.
pub async fn run_batcher(
    mut rx: mpsc::Receiver<Visit>,
    bus: Bus,
    opts: BatchOptions,
    shutdown: CancellationToken,
) {
    let max = opts.max.max(1);
    let mut buf = VisitTally::default();
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                while let Ok(v) = rx.try_recv() {
                    buf.add(v);
                    if buf.keys() >= max {
                        publish(&bus, &mut buf).await;
                    }
                }
                publish(&bus, &mut buf).await;
                tracing::debug!("visit batcher flushed at shutdown");
                return;
            }
            received = rx.recv() => match received {
                Some(v) => {
                    buf.add(v);
                    if buf.keys() >= max {
                        publish(&bus, &mut buf).await;
                    }
                }
                None => {
                    publish(&bus, &mut buf).await;
                    return;
                }
            },
            _ = tick.tick() => publish(&bus, &mut buf).await,
        }
    }
}

/// Publishes the summed visits as one event (retrying transient failures a few times).
async fn publish(bus: &Bus, buf: &mut VisitTally) {
    if buf.is_empty() {
        return;
    }
    let count = buf.visits();
    let batch = VisitBatch::new(buf.take());
    let payload = match serde_json::to_vec(&batch) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "visit batch serialization failed; dropping it");
            metrics::counter!("praxis_shortener_visits_dropped_total", "reason" => "encode")
                .increment(count);
            return;
        }
    };
    let key = batch.batch_id.to_string();
    let backoff =
        praxis_kit::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    for attempt in 0..PUBLISH_ATTEMPTS {
        match bus.publish(VISITS_TOPIC, &key, &payload).await {
            Ok(_) => {
                metrics::counter!("praxis_shortener_visit_batches_total").increment(1);
                return;
            }
            Err(e) if e.is_transient() && attempt + 1 < PUBLISH_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "publishing a visit batch failed; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, visits = count, "publishing a visit batch failed; dropping it");
                break;
            }
        }
    }
    metrics::counter!("praxis_shortener_visits_dropped_total", "reason" => "publish")
        .increment(count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::AgentClass;

    #[tokio::test]
    async fn sink_drops_when_full_without_waiting() {
        let (sink, mut rx) = VisitSink::channel(1);
        let v = Visit {
            code: "abc".into(),
            at_ms: 0,
            referrer: None,
            agent: AgentClass::Other,
        };
        sink.record(v.clone());
        sink.record(v.clone());
        assert_eq!(rx.try_recv().ok(), Some(v));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn disabled_sink_records_nothing() {
        let sink = VisitSink::disabled();
        assert!(!sink.enabled());
        sink.record(Visit {
            code: "abc".into(),
            at_ms: 0,
            referrer: None,
            agent: AgentClass::Other,
        });
    }
}
