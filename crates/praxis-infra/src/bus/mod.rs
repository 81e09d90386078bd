//! Event bus port: publish with a key, consume in named groups, at-least-once, lag visible.
//!
//! Every event is first written to the outbox table `praxis_outbox`, inside the caller's
//! transaction ([`Bus::enqueue`]) so it commits together with the business rows or not at all.
//! Then, depending on the adapter:
//! - **embedded**: group consumers in this process read the outbox directly, in `seq` order, and
//!   persist their position in `praxis_bus_offsets` after each handled event; rows every group
//!   has passed are pruned.
//! - **NATS JetStream**: a relay publishes committed rows to one stream per topic (with
//!   `Nats-Msg-Id` = event id, so a re-publish after a crash is deduplicated), waits for the
//!   acks and deletes the rows; groups are durable pull consumers.
//!
//! Handlers return [`HandlerError::Transient`] to get the event again later (with backoff) or
//! [`HandlerError::Permanent`] to record it in `praxis_bus_dead_letters` and move on.
//!
//! Ordering: each group runs one consumer per process, sequential by default. Embedded, events
//! reach a group in commit order and a transient failure blocks the group until the event
//! succeeds, so per-key (indeed total) order holds. On JetStream, a transient failure naks the
//! event with a delay and later events go first, and several processes of one group share its
//! events, so order holds per process between redeliveries only.
//!
//! A group that does not need order can ask for [`ConsumerOptions::concurrency`] handlers at
//! once ([`Bus::subscribe_with`]): a handler that waits on a database commit then stops being
//! the group's throughput limit. Embedded, the consumer handles its batch in chunks of that
//! many events at once and moves its offset once per chunk (a crash re-handles at most one
//! chunk); on JetStream up to that many messages are in flight, each acknowledged on its own.

mod dead_letter;
mod embedded;
mod envelope;
mod jetstream;
mod outbox;
mod schema;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::InfraError;
use crate::sql::Db;
use crate::trace::{self, TraceContext};

pub use schema::MIGRATIONS;

/// One event as handlers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (UUIDv7), stable across redeliveries: use it to deduplicate side effects.
    pub id: uuid::Uuid,
    /// Topic it was published on.
    pub topic: String,
    /// Partitioning / ordering key given by the publisher (may be empty).
    pub key: String,
    /// Opaque payload (usually JSON).
    pub payload: Vec<u8>,
    /// When it was enqueued, unix milliseconds (UTC).
    pub created_at_ms: i64,
    /// The trace context of the work that enqueued it: the handler runs as a child span of it.
    #[serde(skip)]
    pub trace: Option<TraceContext>,
}

/// Why a handler did not handle an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (a dependency is down): the event is redelivered with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Never going to work (bad payload): the event goes to `praxis_bus_dead_letters` and the
    /// group moves on.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<InfraError> for HandlerError {
    fn from(e: InfraError) -> Self {
        if e.is_transient() {
            HandlerError::Transient(e.to_string())
        } else {
            HandlerError::Permanent(e.to_string())
        }
    }
}

/// Tuning of a [`Bus`]; the defaults suit production.
#[derive(Clone, Debug)]
pub struct BusOptions {
    /// How often idle consumers / the relay look for new rows when not woken by
    /// [`Bus::notify_committed`].
    pub poll_interval: Duration,
    /// Rows read (embedded) or relayed (JetStream) per round.
    pub batch_size: u32,
    /// First delay before redelivering after a transient failure (doubles, full jitter).
    pub retry_base: Duration,
    /// Upper bound of the redelivery delay.
    pub retry_max: Duration,
    /// Embedded: how long a process owns a group before another process may take it over
    /// (renewed while it works).
    pub lease: Duration,
    /// Embedded: how often handled rows are pruned.
    pub prune_interval: Duration,
    /// Embedded: outbox rows of topics that no group consumes are deleted after this age.
    pub unconsumed_retention: Duration,
    /// JetStream: how long streams keep events (`max_age`).
    pub stream_max_age: Duration,
    /// JetStream: how long a delivered event may stay unacknowledged before redelivery.
    pub ack_wait: Duration,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            poll_interval: Duration::from_millis(200),
            batch_size: 100,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            lease: Duration::from_secs(30),
            prune_interval: Duration::from_secs(10),
            unconsumed_retention: Duration::from_secs(7 * 24 * 3600),
            stream_max_age: Duration::from_secs(7 * 24 * 3600),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// How a group's consumer runs its handler (see [`Bus::subscribe_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// Events handled at once by this process's consumer (at least 1). Above 1 the group gives
    /// up ordering: events of one chunk (embedded) or of the whole stream (JetStream) may
    /// finish in any order.
    pub concurrency: usize,
}

impl Default for ConsumerOptions {
    /// One event at a time, in order.
    fn default() -> Self {
        ConsumerOptions { concurrency: 1 }
    }
}

/// Handle to the event bus of this process. Cheap to clone; background tasks stop on the
/// shutdown token given at construction.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) opts: BusOptions,
    pub(crate) wake: Notify,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) groups: Mutex<HashSet<(String, String)>>,
    pub(crate) adapter: Adapter,
}

pub(crate) enum Adapter {
    Embedded,
    Nats(Box<jetstream::Js>),
}

/// Boxed handler, as stored by consumer tasks.
pub(crate) type DynHandler = Arc<
    dyn Fn(Event) -> futures::future::BoxFuture<'static, Result<(), HandlerError>> + Send + Sync,
>;

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("adapter", &self.kind())
            .finish()
    }
}

impl Bus {
    /// In-process bus over the outbox of `db` (runs the bus migrations).
    pub async fn embedded(db: Db, shutdown: CancellationToken) -> Result<Bus, InfraError> {
        Bus::embedded_with(db, shutdown, BusOptions::default()).await
    }

    /// [`Bus::embedded`] with explicit tuning.
    pub async fn embedded_with(
        db: Db,
        shutdown: CancellationToken,
        opts: BusOptions,
    ) -> Result<Bus, InfraError> {
        db.migrate(&MIGRATIONS).await?;
        let bus = Bus::new(db, shutdown, opts, Adapter::Embedded);
        embedded::spawn_pruner(&bus.inner);
        Ok(bus)
    }

    /// NATS JetStream bus: the outbox of `db` is relayed to streams `<prefix>_<topic>` (runs
    /// the bus migrations; fails if JetStream is not enabled on the server).
    pub async fn nats(
        db: Db,
        client: async_nats::Client,
        prefix: &str,
        shutdown: CancellationToken,
    ) -> Result<Bus, InfraError> {
        Bus::nats_with(db, client, prefix, shutdown, BusOptions::default()).await
    }

    /// [`Bus::nats`] with explicit tuning.
    pub async fn nats_with(
        db: Db,
        client: async_nats::Client,
        prefix: &str,
        shutdown: CancellationToken,
        opts: BusOptions,
    ) -> Result<Bus, InfraError> {
        crate::util::check_name("bus prefix", prefix)?;
        db.migrate(&MIGRATIONS).await?;
        let js = jetstream::Js::connect(client, prefix, &opts).await?;
        let bus = Bus::new(db, shutdown, opts, Adapter::Nats(Box::new(js)));
        jetstream::spawn_relay(&bus.inner);
        Ok(bus)
    }

    fn new(db: Db, shutdown: CancellationToken, opts: BusOptions, adapter: Adapter) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                db,
                opts,
                wake: Notify::new(),
                shutdown,
                tasks: TaskTracker::new(),
                groups: Mutex::new(HashSet::new()),
                adapter,
            }),
        }
    }

    /// `"embedded"` or `"nats"`.
    pub fn kind(&self) -> &'static str {
        match self.inner.adapter {
            Adapter::Embedded => "embedded",
            Adapter::Nats(_) => "nats",
        }
    }

    /// Outbox write inside the caller's transaction: committed with the business rows or not
    /// at all. Call [`Bus::notify_committed`] after the commit for immediate dispatch.
    pub async fn enqueue(
        &self,
        conn: &mut sqlx::AnyConnection,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<uuid::Uuid, InfraError> {
        crate::util::check_name("bus topic", topic)?;
        let serialize = matches!(self.inner.adapter, Adapter::Embedded);
        outbox::insert(
            conn,
            self.inner.db.backend(),
            serialize,
            topic,
            key,
            payload,
        )
        .await
    }

    /// Outside a transaction: writes its own outbox row and wakes dispatch.
    pub async fn publish(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<uuid::Uuid, InfraError> {
        let mut conn = self.inner.db.pool().acquire().await?;
        let id = self.enqueue(&mut conn, topic, key, payload).await?;
        drop(conn);
        self.notify_committed();
        Ok(id)
    }

    /// Call after committing a transaction that enqueued, so dispatch / relay starts at once
    /// instead of on its next poll tick.
    pub fn notify_committed(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Starts the consumer of `group` on `topic` (one per group per process), bound to the
    /// shutdown token. At-least-once: a handler may see an event again after a failure or a
    /// crash, so side effects should be idempotent (use [`Event::id`]). A new group starts
    /// with the oldest event still retained.
    pub fn subscribe<H, Fut>(&self, topic: &str, group: &str, handler: H) -> Result<(), InfraError>
    where
        H: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe_with(topic, group, ConsumerOptions::default(), handler)
    }

    /// [`Bus::subscribe`] with consumer options: `options.concurrency` handlers at once,
    /// giving up the group's ordering (see the [module docs](self)).
    pub fn subscribe_with<H, Fut>(
        &self,
        topic: &str,
        group: &str,
        options: ConsumerOptions,
        handler: H,
    ) -> Result<(), InfraError>
    where
        H: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        if options.concurrency == 0 {
            return Err(InfraError::Config(format!(
                "bus consumer of group {group:?}: concurrency must be at least 1"
            )));
        }
        crate::util::check_name("bus topic", topic)?;
        crate::util::check_name("bus group", group)?;
        if self.inner.shutdown.is_cancelled() {
            return Err(InfraError::Shutdown(
                "bus is shut down; subscribe before cancelling the token".into(),
            ));
        }
        if !self
            .inner
            .groups
            .lock()
            .insert((topic.to_string(), group.to_string()))
        {
            return Err(InfraError::Config(format!(
                "group {group:?} already consumes topic {topic:?} in this process; subscribe once per group"
            )));
        }
        let handler = Arc::new(handler);
        let span_group = group.to_string();
        let handler: DynHandler = Arc::new(move |event: Event| {
            let handler = handler.clone();
            let (span, ctx) = trace::start(event.trace, || consumer_span(&event, &span_group));
            let run = async move {
                match AssertUnwindSafe(handler(event)).catch_unwind().await {
                    Ok(result) => result,
                    Err(_) => Err(HandlerError::Permanent("handler panicked".into())),
                }
            };
            trace::in_scope(ctx, run).instrument(span).boxed()
        });
        let topic = topic.to_string();
        let group = group.to_string();
        match &self.inner.adapter {
            Adapter::Embedded => {
                embedded::spawn_consumer(&self.inner, topic, group, options, handler)
            }
            Adapter::Nats(_) => {
                jetstream::spawn_consumer(&self.inner, topic, group, options, handler)
            }
        }
        Ok(())
    }

    /// Events of `topic` that `group` has not handled yet (embedded: outbox rows past its
    /// offset; JetStream: unrelayed outbox rows + pending + unacknowledged in the consumer).
    pub async fn lag(&self, topic: &str, group: &str) -> Result<u64, InfraError> {
        match &self.inner.adapter {
            Adapter::Embedded => embedded::lag(&self.inner.db, topic, group).await,
            Adapter::Nats(js) => js.lag(&self.inner.db, topic, group).await,
        }
    }

    /// Waits until every committed outbox row is dispatched (embedded: handled by every group
    /// subscribed in this process; JetStream: relayed), or fails with a timeout error.
    pub async fn flush(&self, timeout: Duration) -> Result<(), InfraError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.notify_committed();
            let pending = match &self.inner.adapter {
                Adapter::Embedded => {
                    let groups: Vec<_> = self.inner.groups.lock().iter().cloned().collect();
                    let mut pending = 0;
                    for (topic, group) in groups {
                        pending += embedded::lag(&self.inner.db, &topic, &group).await?;
                    }
                    pending
                }
                Adapter::Nats(_) => outbox::count(&self.inner.db).await?,
            };
            if pending == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(InfraError::Timeout(format!(
                    "bus flush: {pending} events still pending after {timeout:?}; check consumer errors and lag"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to `timeout`) for the background tasks to end after the shutdown token was
    /// cancelled. Returns whether they all ended.
    pub async fn join(&self, timeout: Duration) -> bool {
        self.inner.tasks.close();
        tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_ok()
    }

    /// The database whose outbox this bus uses.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }
}

/// The exported span of one handled event (made only when spans are exported).
fn consumer_span(event: &Event, group: &str) -> tracing::Span {
    tracing::info_span!(
        target: trace::SPAN_TARGET,
        "consume",
        otel.name = format!("{} process", event.topic),
        otel.kind = "consumer",
        messaging.operation.type = "process",
        messaging.destination.name = %event.topic,
        messaging.consumer.group.name = group,
        messaging.message.id = %event.id,
    )
}

pub(crate) fn consumed(topic: &str, group: &str, result: &'static str) {
    metrics::counter!("praxis_bus_consumed_total", "topic" => topic.to_string(), "group" => group.to_string(), "result" => result)
        .increment(1);
}
