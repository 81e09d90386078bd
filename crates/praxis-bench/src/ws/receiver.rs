//! The receivers of `praxis bench ws fanout`: each member connects, subscribes to the group,
//! waits for `subscribed`, and then records every bench message it gets ([`Tally`]) until it
//! holds every stored one, is told to stop, or the server ends its connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::ws::WsError;
use crate::ws::dial::{Dialer, Ws};
use crate::ws::frames::{self, Incoming};
use crate::ws::tally::{SeqSet, Tally};

/// What the receivers are told.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// Keep receiving.
    Running,
    /// These sequences were stored: stop once all are here.
    Expect(Arc<SeqSet>),
    /// Stop now.
    Stop,
}

/// What one receiver returns.
pub(crate) struct Received {
    /// What it counted.
    pub tally: Tally,
    /// Why its connection ended early, if it did.
    pub closed: Option<String>,
    /// The connection, still open: receivers close only after the last CPU reading, since
    /// every close makes praxis tell the group that the member went offline.
    pub ws: Option<Ws>,
}

/// Where and how the receivers connect.
pub(crate) struct Receivers<'a> {
    /// One per server; receiver `i` uses `dialers[i % len]`.
    pub dialers: &'a [Dialer],
    /// Their accounts.
    pub accounts: &'a [String],
    /// The group.
    pub conversation: &'a str,
    /// Handshakes and subscriptions in flight at most.
    pub concurrency: usize,
    /// The run's epoch (intended times are offsets from it).
    pub epoch: Instant,
}

impl Receivers<'_> {
    /// Connects and subscribes every receiver; returns their running tasks once all are
    /// subscribed, or the first failure (after aborting the others).
    pub(crate) async fn start(
        &self,
        phase: &watch::Receiver<Phase>,
        delivered: &Arc<AtomicU64>,
    ) -> Result<JoinSet<Received>, WsError> {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let mut tasks = JoinSet::new();
        for (i, name) in self.accounts.iter().enumerate() {
            let dialer = self.dialers[i % self.dialers.len()].clone();
            let permits = Arc::clone(&permits);
            let ready = ready_tx.clone();
            let phase = phase.clone();
            let delivered = Arc::clone(delivered);
            let name = name.clone();
            let subscribe = frames::subscribe(self.conversation);
            let epoch = self.epoch;
            tasks.spawn(async move {
                let opened = async {
                    let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                    // Source index i + 1: the sender is account 0.
                    let mut ws = dialer.open(i + 1, &name).await.map_err(|e| e.to_string())?;
                    ws.send(Message::text(subscribe))
                        .await
                        .map_err(|e| format!("subscribe: {e}"))?;
                    await_subscribed(&mut ws).await?;
                    Ok::<Ws, String>(ws)
                }
                .await;
                match opened {
                    Ok(ws) => {
                        let _ = ready.send(Ok(()));
                        receive(ws, epoch, phase, &delivered).await
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("{name}: {e}")));
                        Received {
                            tally: Tally::default(),
                            closed: Some("never subscribed".into()),
                            ws: None,
                        }
                    }
                }
            });
        }
        drop(ready_tx);
        let mut ready = 0;
        while ready < self.accounts.len() {
            match ready_rx.recv().await {
                Some(Ok(())) => ready += 1,
                Some(Err(e)) => {
                    tasks.abort_all();
                    return Err(WsError::Setup(format!(
                        "a receiver could not subscribe: {e}"
                    )));
                }
                None => break,
            }
        }
        Ok(tasks)
    }
}

/// Reads until `subscribed` (other frames, such as presence, are skipped).
async fn await_subscribed(ws: &mut Ws) -> Result<(), String> {
    while let Some(frame) = ws.next().await {
        match frame.map_err(|e| e.to_string())? {
            Message::Text(text) => match frames::classify(text.as_str()) {
                Incoming::Subscribed => return Ok(()),
                Incoming::Error { code, detail, .. } => {
                    return Err(format!("subscribe refused: {code}: {detail}"));
                }
                _ => {}
            },
            Message::Close(frame) => {
                return Err(format!(
                    "closed while subscribing: {}",
                    close_reason(frame.as_ref())
                ));
            }
            _ => {}
        }
    }
    Err("the connection ended while subscribing".into())
}

/// `close 4008`, or `close` without a code.
pub(crate) fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!("close {}", u16::from(f.code)),
        None => "close".to_owned(),
    }
}

/// One receiver's loop.
async fn receive(
    mut ws: Ws,
    epoch: Instant,
    mut phase: watch::Receiver<Phase>,
    delivered: &AtomicU64,
) -> Received {
    let mut tally = Tally::default();
    let mut expected: Option<Arc<SeqSet>> = None;
    let closed: Option<String> = loop {
        if expected
            .as_ref()
            .is_some_and(|e| tally.seen.len() >= e.len())
        {
            break None;
        }
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Incoming::Message(marker) = frames::classify(text.as_str()) {
                        tally.record(marker, epoch, Instant::now());
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(frame))) => break Some(close_reason(frame.as_ref())),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(format!("error: {e}")),
                None => break Some("eof".to_owned()),
            },
            changed = phase.changed() => {
                if changed.is_err() {
                    break None;
                }
                let now = phase.borrow_and_update().clone();
                match now {
                    Phase::Running => {}
                    Phase::Expect(set) => expected = Some(set),
                    Phase::Stop => break None,
                }
            }
        }
    };
    let ws = closed.is_none().then_some(ws);
    Received { tally, closed, ws }
}
