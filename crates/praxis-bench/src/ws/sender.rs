//! The sender of `praxis bench ws fanout`: `send` frames on an open-loop schedule over one
//! connection, and the answers read on the same connection (a `message` frame: stored; an
//! `error` frame with the send's `client_id`: refused).
//!
//! Message `i` is due at `start + offset_i` ([`ConnSchedule`]) whatever the server does; its
//! body carries that intended time, from which both the receivers and the sender's own
//! "stored" reading measure. The sender sleeps until `spin` before a due time and yields until
//! it (tokio's timer has 1 ms ticks); how late each send actually left is the schedule lag.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::record::new_histogram;
use crate::schedule::{Arrival, ConnSchedule};
use crate::ws::dial::Ws;
use crate::ws::frames::{self, Incoming};
use crate::ws::tally::SeqSet;

/// What and when to send.
#[derive(Debug, Clone)]
pub(crate) struct SendPlan {
    /// The group.
    pub conversation: String,
    /// Messages per second.
    pub rate: f64,
    /// Warm-up, then the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// After the last send, how long to wait for the answers.
    pub drain: Duration,
    /// Arrival process.
    pub arrival: Arrival,
    /// Yield-spin this long before each due time.
    pub spin: Duration,
    /// Seed of Poisson arrivals.
    pub seed: u64,
    /// Pad bodies to this many bytes.
    pub body_bytes: usize,
}

/// What the sender saw.
pub(crate) struct Sent {
    /// Messages sent.
    pub sent: u64,
    /// Answers: the sends stored, and those refused with the codes and first detail.
    pub replies: Replies,
    /// How late each send left.
    pub lag: Histogram<u64>,
}

/// The answers to the sends.
pub(crate) struct Replies {
    /// Sequences the server stored.
    pub stored: SeqSet,
    /// Sequences the server refused.
    pub refused: SeqSet,
    /// Refusals by code.
    pub errors: BTreeMap<String, u64>,
    /// The first refusal, `code: detail`.
    pub first_error: Option<String>,
    /// Stored answer time minus intended send time (measured messages).
    pub store_latency: Histogram<u64>,
}

impl Replies {
    fn new() -> Self {
        Replies {
            stored: SeqSet::default(),
            refused: SeqSet::default(),
            errors: BTreeMap::new(),
            first_error: None,
            store_latency: new_histogram(),
        }
    }

    /// Sends answered so far.
    fn answered(&self) -> u64 {
        self.stored.len() + self.refused.len()
    }

    /// Takes one server frame.
    fn on_text(&mut self, text: &str, epoch: Instant) {
        match frames::classify(text) {
            Incoming::Message(m) if self.stored.insert(m.seq) && m.measured => {
                let intended = epoch + Duration::from_nanos(m.offset_ns);
                let ns = u64::try_from(intended.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = self
                    .store_latency
                    .record(ns.clamp(1, self.store_latency.high()));
            }
            Incoming::Error {
                code,
                client_id,
                detail,
            } => {
                if let Some(seq) = client_id.as_deref().and_then(frames::seq_of_client_id) {
                    self.refused.insert(seq);
                }
                self.first_error
                    .get_or_insert_with(|| format!("{code}: {detail}"));
                *self.errors.entry(code).or_default() += 1;
            }
            _ => {}
        }
    }
}

/// Sends on schedule from `start` and reads the answers until every send is answered, or
/// `drain` after the last send.
pub(crate) async fn send(ws: Ws, plan: SendPlan, epoch: Instant, start: Instant) -> Sent {
    let (mut sink, mut stream) = ws.split();
    let (total_tx, mut total_rx) = oneshot::channel::<u64>();
    let mut lag = new_histogram();

    let writer = async {
        let mut schedule = ConnSchedule::new(plan.arrival, plan.rate, 0, 1, plan.seed);
        let end = plan.warmup + plan.duration;
        let mut seq = 0u64;
        loop {
            let offset = schedule.next_offset();
            if offset >= end {
                break;
            }
            let due = start + offset;
            let wake = due.checked_sub(plan.spin).unwrap_or(due);
            if Instant::now() < wake {
                tokio::time::sleep_until(wake.into()).await;
            }
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
            let late = u64::try_from(due.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = lag.record(late.clamp(1, lag.high()));
            let offset_ns = u64::try_from((due - epoch).as_nanos()).unwrap_or(u64::MAX);
            let body = frames::body(seq, offset_ns, offset >= plan.warmup, plan.body_bytes);
            let frame = frames::send(&plan.conversation, seq, &body);
            if sink.send(Message::text(frame)).await.is_err() {
                break;
            }
            seq += 1;
        }
        let _ = total_tx.send(seq);
        seq
    };

    let reader = async {
        let mut replies = Replies::new();
        let mut total: Option<u64> = None;
        // Armed when the writer is done.
        let deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(deadline);
        while total.is_none_or(|t| replies.answered() < t) {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => replies.on_text(text.as_str(), epoch),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                n = &mut total_rx, if total.is_none() => {
                    total = Some(n.unwrap_or(0));
                    deadline.as_mut().reset((Instant::now() + plan.drain).into());
                }
                () = &mut deadline => break,
            }
        }
        replies
    };

    let (sent, replies) = tokio::join!(writer, reader);
    Sent { sent, replies, lag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_stored_and_refused_sends() {
        let epoch = Instant::now();
        let mut r = Replies::new();
        let stored = |seq: u64| {
            format!(
                r#"{{"type":"message","message":{{"seq":{},"client_id":"pxb-{seq}","body":"{}"}}}}"#,
                seq + 1,
                frames::body(seq, 0, true, 0)
            )
        };
        r.on_text(&stored(0), epoch);
        r.on_text(&stored(1), epoch);
        r.on_text(&stored(1), epoch);
        r.on_text(
            r#"{"type":"error","code":"rate-limited","detail":"20 per second","client_id":"pxb-2"}"#,
            epoch,
        );
        r.on_text(r#"{"type":"presence","account":"a"}"#, epoch);
        assert_eq!((r.stored.len(), r.refused.len(), r.answered()), (2, 1, 3));
        assert_eq!(r.errors.get("rate-limited"), Some(&1));
        assert_eq!(
            r.first_error.as_deref(),
            Some("rate-limited: 20 per second")
        );
        assert_eq!(r.store_latency.len(), 2);
    }
}
