//! Live delivery inside one process: which local connections follow which conversation, and
//! the loop that hands them the events of every process.
//!
//! A change is published once on the platform's broadcaster ([`CHANNEL`]); every process,
//! this one included, receives it and hands it to its own connections that follow the
//! conversation. Each connection has a bounded queue: when it is full (the client reads too
//! slowly), the connection's `overflow` token is cancelled and the connection closes itself;
//! nothing waits for a slow client, and the client catches up from the store on reconnect.
//!
//! An event is handed to its followers as one shared [`Delivery`]: the queues hold a pointer,
//! and the frame the API writes for it is encoded once, by the first connection that sends it,
//! whatever the number of followers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use metrics::{Counter, Gauge};
use parking_lot::Mutex;
use praxis_infra::InfraError;
use praxis_infra::broadcast::Broadcaster;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::domain::events::Event;
use crate::workers::metrics::{CONNECTIONS, DELIVERIES_TOTAL, SLOW_CLOSES_TOTAL};

/// Broadcast channel of the chat's live events.
pub const CHANNEL: &str = "chat-events";

/// The live connections of this process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broadcaster: Broadcaster,
    rooms: Mutex<HashMap<String, Vec<Follower>>>,
    /// Open connections per account.
    accounts: Mutex<HashMap<String, usize>>,
    next_id: AtomicU64,
    connections: Gauge,
    deliveries: Counter,
    slow_closes: Counter,
}

#[derive(Debug)]
struct Follower {
    connection: u64,
    tx: mpsc::Sender<Arc<Delivery>>,
    overflow: CancellationToken,
}

/// One event as every local follower receives it.
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub event: Event,
    /// The event's frame as the API encodes it: made once, shared by every follower.
    frame: OnceLock<Bytes>,
}

impl Delivery {
    /// An event not yet encoded.
    pub fn new(event: Event) -> Self {
        Self {
            event,
            frame: OnceLock::new(),
        }
    }

    /// The encoded frame: `encode`d by the first caller, the same bytes for every later one.
    pub fn frame(&self, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.frame.get_or_init(|| encode(&self.event)).clone()
    }
}

/// One connection's end: its events, and the token cancelled when its queue overflowed.
/// Dropping it frees its place in the account's connection count.
#[derive(Debug)]
pub struct Connection {
    /// Its id in this process.
    pub id: u64,
    /// Events of the conversations it follows, in the order this process received them.
    pub events: mpsc::Receiver<Arc<Delivery>>,
    /// Cancelled when an event found the queue full.
    pub overflow: CancellationToken,
    tx: mpsc::Sender<Arc<Delivery>>,
    account: String,
    live: Live,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.live.inner.connections.decrement(1);
        let mut accounts = self.live.inner.accounts.lock();
        if let Some(open) = accounts.get_mut(&self.account) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                accounts.remove(&self.account);
            }
        }
    }
}

/// The account already holds the most connections allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

impl Live {
    /// The registry; start [`Live::run`] with a receiver taken before any publish.
    pub fn new(broadcaster: Broadcaster) -> Self {
        Self {
            inner: Arc::new(Inner {
                broadcaster,
                rooms: Mutex::new(HashMap::new()),
                accounts: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                connections: metrics::gauge!(CONNECTIONS),
                deliveries: metrics::counter!(DELIVERIES_TOTAL),
                slow_closes: metrics::counter!(SLOW_CLOSES_TOTAL),
            }),
        }
    }

    /// Hands every event received on `rx` to the connections that follow its conversation,
    /// until `shutdown`.
    pub async fn run(self, mut rx: broadcast::Receiver<Bytes>, shutdown: CancellationToken) {
        loop {
            let payload = tokio::select! {
                () = shutdown.cancelled() => return,
                received = rx.recv() => received,
            };
            match payload {
                Ok(bytes) => match serde_json::from_slice::<Event>(&bytes) {
                    Ok(event) => self.dispatch(event),
                    Err(e) => tracing::warn!(error = %e, "chat: undecodable live event skipped"),
                },
                // Lost message events are filled from the store by each connection.
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "chat: live events lagged; connections fill gaps"
                    )
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// A new connection of `account` with a queue of `capacity` events, unless the account
    /// already holds `max` in this process.
    pub fn connect(
        &self,
        account: &str,
        capacity: usize,
        max: usize,
    ) -> Result<Connection, TooManyConnections> {
        {
            let mut accounts = self.inner.accounts.lock();
            let open = accounts.entry(account.to_owned()).or_insert(0);
            if *open >= max {
                return Err(TooManyConnections);
            }
            *open += 1;
        }
        let (tx, events) = mpsc::channel(capacity.max(1));
        self.inner.connections.increment(1);
        Ok(Connection {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            events,
            overflow: CancellationToken::new(),
            tx,
            account: account.to_owned(),
            live: self.clone(),
        })
    }

    /// `connection` follows `conversation` from now on.
    pub fn follow(&self, connection: &Connection, conversation: &str) {
        let mut rooms = self.inner.rooms.lock();
        let followers = rooms.entry(conversation.to_owned()).or_default();
        if !followers.iter().any(|f| f.connection == connection.id) {
            followers.push(Follower {
                connection: connection.id,
                tx: connection.tx.clone(),
                overflow: connection.overflow.clone(),
            });
        }
    }

    /// `connection` follows nothing any more (it closed).
    pub fn forget<'a>(&self, connection: u64, conversations: impl IntoIterator<Item = &'a String>) {
        let mut rooms = self.inner.rooms.lock();
        for conversation in conversations {
            if let Some(followers) = rooms.get_mut(conversation) {
                followers.retain(|f| f.connection != connection);
                if followers.is_empty() {
                    rooms.remove(conversation);
                }
            }
        }
    }

    /// Open connections of `account` in this process.
    pub fn connections_of(&self, account: &str) -> usize {
        self.inner
            .accounts
            .lock()
            .get(account)
            .copied()
            .unwrap_or(0)
    }

    /// Sends `event` to every process (this one included).
    pub async fn publish(&self, event: &Event) -> Result<(), InfraError> {
        let payload =
            serde_json::to_vec(event).map_err(|e| InfraError::Codec(format!("chat event: {e}")))?;
        self.inner
            .broadcaster
            .publish(CHANNEL, Bytes::from(payload))
            .await
    }

    fn dispatch(&self, event: Event) {
        let rooms = self.inner.rooms.lock();
        let Some(followers) = rooms.get(event.conversation_id()) else {
            return;
        };
        let delivery = Arc::new(Delivery::new(event));
        let mut queued = 0;
        for follower in followers {
            if follower.tx.try_send(Arc::clone(&delivery)).is_ok() {
                queued += 1;
            } else if !follower.overflow.is_cancelled() {
                follower.overflow.cancel();
                self.inner.slow_closes.increment(1);
            }
        }
        self.inner.deliveries.increment(queued);
    }
}
