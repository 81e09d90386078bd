//! NATS JetStream adapter: a relay moves committed outbox rows to one stream per topic, and
//! each group is a durable pull consumer.
//!
//! The relay publishes a batch with `Nats-Msg-Id` = event id, awaits every ack, then deletes
//! the rows: an event is never lost between the database commit and the publish, and a
//! re-publish after a crash falls inside the stream's duplicate window and is dropped. On
//! PostgreSQL the batch is claimed with `FOR UPDATE SKIP LOCKED`, so several processes relay
//! one outbox without publishing a row twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, message::PublishMessage, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use parking_lot::Mutex;

use super::{
    Adapter, ConsumerOptions, DynHandler, Event, HandlerError, Inner, consumed, dead_letter,
    envelope, outbox,
};
use crate::InfraError;
use crate::sql::{Backend, Db};
use crate::trace::TraceContext;
use crate::util::{name_token, token};

/// JetStream context plus naming of streams and subjects for one prefix.
pub(crate) struct Js {
    ctx: jetstream::Context,
    prefix: String,
    max_age: Duration,
    ack_wait: Duration,
    ensured: Mutex<HashSet<String>>,
}

impl Js {
    pub(super) async fn connect(
        client: async_nats::Client,
        prefix: &str,
        opts: &super::BusOptions,
    ) -> Result<Js, InfraError> {
        // A cheap JetStream API call: "no responders" means the server runs without -js.
        let probe = tokio::time::timeout(
            Duration::from_secs(5),
            client.request("$JS.API.INFO", bytes::Bytes::new()),
        )
        .await;
        match probe {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(InfraError::nats(
                    "jetstream is not available (start nats-server with -js)",
                    e,
                ));
            }
            Err(_) => return Err(InfraError::nats("jetstream probe", "timed out")),
        }
        let ctx = jetstream::new(client);
        Ok(Js {
            ctx,
            prefix: name_token(prefix),
            max_age: opts.stream_max_age,
            ack_wait: opts.ack_wait,
            ensured: Mutex::new(HashSet::new()),
        })
    }

    /// `<prefix>_<topic>`; a topic with characters JetStream names do not allow (such as `.`)
    /// has them replaced by `_` and a hash of the original appended, so names stay distinct.
    pub(crate) fn stream_name(&self, topic: &str) -> String {
        format!("{}_{}", self.prefix, name_token(topic))
    }

    fn subject(&self, topic: &str, key: &str) -> String {
        format!("{}.{}.{}", self.prefix, name_token(topic), token(key, 64))
    }

    async fn stream(&self, topic: &str) -> Result<stream::Stream, InfraError> {
        let stream = self
            .ctx
            .get_or_create_stream(stream::Config {
                name: self.stream_name(topic),
                subjects: vec![format!("{}.{}.>", self.prefix, name_token(topic))],
                max_age: self.max_age,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120).min(self.max_age),
                ..Default::default()
            })
            .await
            .map_err(|e| InfraError::nats("create stream", e))?;
        self.ensured.lock().insert(topic.to_string());
        Ok(stream)
    }

    async fn ensure_stream(&self, topic: &str) -> Result<(), InfraError> {
        if self.ensured.lock().contains(topic) {
            return Ok(());
        }
        self.stream(topic).await.map(|_| ())
    }

    /// Publishes `events` in order and waits for every ack. On failure the stream cache is
    /// dropped, so a stream deleted meanwhile is created again on the next attempt.
    async fn publish_all(&self, events: &[(i64, Event)]) -> Result<(), InfraError> {
        let result = self.try_publish_all(events).await;
        if result.is_err() {
            self.ensured.lock().clear();
        }
        result
    }

    async fn try_publish_all(&self, events: &[(i64, Event)]) -> Result<(), InfraError> {
        let mut acks = Vec::with_capacity(events.len());
        for (_, event) in events {
            self.ensure_stream(&event.topic).await?;
            let mut message = PublishMessage::build()
                .payload(envelope::encode(event))
                .message_id(event.id.to_string());
            if let Some(ctx) = event.trace {
                message = message.header(crate::trace::TRACEPARENT, ctx.traceparent().as_str());
            }
            let ack = self
                .ctx
                .send_publish(self.subject(&event.topic, &event.key), message)
                .await
                .map_err(|e| InfraError::nats("publish", e))?;
            acks.push((event, ack));
        }
        for (event, ack) in acks {
            let ack = ack.await.map_err(|e| InfraError::nats("publish ack", e))?;
            if ack.duplicate {
                tracing::debug!(topic = %event.topic, event_id = %event.id, "bus relay: duplicate dropped by jetstream");
            }
            metrics::counter!("praxis_bus_relayed_total", "topic" => event.topic.clone())
                .increment(1);
        }
        Ok(())
    }

    /// Outbox rows of the topic + events the group's consumer has not acknowledged (all
    /// stream events if the group has no consumer yet).
    pub(super) async fn lag(&self, db: &Db, topic: &str, group: &str) -> Result<u64, InfraError> {
        let backlog = outbox::count_topic(db, topic).await?;
        let stream = match self.ctx.get_stream(self.stream_name(topic)).await {
            Ok(s) => s,
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(err)
                    if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    return Ok(backlog);
                }
                _ => return Err(InfraError::nats("stream info", e)),
            },
        };
        match stream.consumer_info(name_token(group)).await {
            Ok(info) => Ok(backlog + info.num_pending + info.num_ack_pending as u64),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                let info = stream
                    .get_info()
                    .await
                    .map_err(|e| InfraError::nats("stream info", e))?;
                Ok(backlog + info.state.messages)
            }
            Err(e) => Err(InfraError::nats("consumer info", e)),
        }
    }
}

/// Starts the relay task of this process.
pub(super) fn spawn_relay(inner: &Arc<Inner>) {
    let inner = inner.clone();
    inner.tasks.clone().spawn(async move {
        let Adapter::Nats(js) = &inner.adapter else { return };
        let mut failures = 0u32;
        while !inner.shutdown.is_cancelled() {
            let wake = inner.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            match relay_batch(&inner.db, js, inner.opts.batch_size).await {
                Ok(n) if n >= inner.opts.batch_size as usize => {
                    failures = 0;
                    continue;
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = crate::util::backoff(inner.opts.retry_base, inner.opts.retry_max, failures);
                    tracing::warn!(error = %e, failures, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "bus relay failed; rows stay in the outbox and are retried");
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = inner.shutdown.cancelled() => break,
                _ = &mut wake => {}
                _ = tokio::time::sleep(inner.opts.poll_interval) => {}
            }
        }
        tracing::debug!("bus relay stopped");
    });
}

const SELECT_BATCH: &str = "SELECT seq, id, topic, key, payload, created_at, traceparent FROM praxis_outbox ORDER BY seq LIMIT $1";
const SELECT_BATCH_PG: &str = "SELECT seq, id, topic, key, payload, created_at, traceparent FROM praxis_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Relays one batch; returns how many rows it moved.
async fn relay_batch(db: &Db, js: &Js, batch: u32) -> Result<usize, InfraError> {
    let limit = i64::from(batch.max(1));
    match db.backend() {
        Backend::Postgres => {
            // Rows stay locked until the commit, so no other relay publishes them meanwhile.
            let mut tx = db.pool().begin().await?;
            let rows = sqlx::query(SELECT_BATCH_PG)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let events = rows
                .iter()
                .map(outbox::event_of)
                .collect::<Result<Vec<_>, _>>()?;
            if events.is_empty() {
                return Ok(0);
            }
            js.publish_all(&events).await?;
            delete(&mut tx, &events).await?;
            tx.commit().await?;
            Ok(events.len())
        }
        Backend::Sqlite => {
            // SQLite has one writer: holding a write transaction across network I/O would block
            // every other writer, so read, publish, then delete (a crash in between re-publishes,
            // which the duplicate window drops).
            let rows = sqlx::query(SELECT_BATCH)
                .bind(limit)
                .fetch_all(db.pool())
                .await?;
            let events = rows
                .iter()
                .map(outbox::event_of)
                .collect::<Result<Vec<_>, _>>()?;
            if events.is_empty() {
                return Ok(0);
            }
            js.publish_all(&events).await?;
            let mut conn = db.pool().acquire().await?;
            delete(&mut conn, &events).await?;
            Ok(events.len())
        }
    }
}

async fn delete(conn: &mut sqlx::AnyConnection, events: &[(i64, Event)]) -> Result<(), InfraError> {
    let placeholders: Vec<String> = (1..=events.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "DELETE FROM praxis_outbox WHERE seq IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (seq, _) in events {
        query = query.bind(*seq);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Starts the durable pull consumer of `group` on `topic`, with up to `options.concurrency`
/// messages handled at once (each acknowledged on its own).
pub(super) fn spawn_consumer(
    inner: &Arc<Inner>,
    topic: String,
    group: String,
    options: ConsumerOptions,
    handler: DynHandler,
) {
    let concurrency = options.concurrency.max(1);
    let inner = inner.clone();
    inner.tasks.clone().spawn(async move {
        let Adapter::Nats(js) = &inner.adapter else { return };
        let durable = name_token(&group);
        let mut failures = 0u32;
        tracing::info!(topic = %topic, group = %group, stream = %js.stream_name(&topic), "bus consumer started (jetstream)");
        'session: while !inner.shutdown.is_cancelled() {
            let mut messages = match open(js, &topic, &durable, inner.opts.batch_size).await {
                Ok(m) => {
                    failures = 0;
                    m
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = crate::util::backoff(inner.opts.retry_base, inner.opts.retry_max, failures);
                    tracing::warn!(topic = %topic, group = %group, error = %e, failures, "bus consumer setup failed; retrying");
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            };
            let mut errors = 0u32;
            let mut lag_reported = tokio::time::Instant::now();
            // Handlers running now; a new message is pulled only below `concurrency`.
            let mut running = FuturesUnordered::new();
            loop {
                let next = tokio::select! {
                    _ = inner.shutdown.cancelled() => {
                        // Let the handlers running finish (and acknowledge) their messages.
                        while running.next().await.is_some() {}
                        break 'session;
                    }
                    Some(()) = running.next(), if !running.is_empty() => continue,
                    next = messages.next(), if running.len() < concurrency => next,
                };
                match next {
                    Some(Ok(msg)) => {
                        errors = 0;
                        running.push(handle(&inner, &handler, &topic, &group, msg));
                    }
                    Some(Err(e)) => {
                        errors += 1;
                        tracing::warn!(topic = %topic, group = %group, error = %e, "bus consumer receive error");
                        // Finish the running handlers first: they are not polled while this
                        // task sleeps (or reopens), and may hold pooled connections.
                        while running.next().await.is_some() {}
                        if errors >= 10 {
                            continue 'session;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    None => {
                        tracing::warn!(topic = %topic, group = %group, "bus consumer stream ended; reopening");
                        while running.next().await.is_some() {}
                        continue 'session;
                    }
                }
                if lag_reported.elapsed() >= Duration::from_secs(5) {
                    lag_reported = tokio::time::Instant::now();
                    // In a task of its own: awaiting the query here would stop polling the
                    // running handlers, which may hold every pooled connection it needs (a
                    // stall until the pool's acquire timeout).
                    let (inner, topic, group) = (inner.clone(), topic.clone(), group.clone());
                    inner.tasks.clone().spawn(async move {
                        let Adapter::Nats(js) = &inner.adapter else { return };
                        if let Ok(n) = js.lag(&inner.db, &topic, &group).await {
                            metrics::gauge!("praxis_bus_lag", "topic" => topic, "group" => group).set(n as f64);
                        }
                    });
                }
            }
        }
        tracing::info!(topic = %topic, group = %group, "bus consumer stopped");
    });
}

async fn open(
    js: &Js,
    topic: &str,
    durable: &str,
    batch: u32,
) -> Result<consumer::pull::Stream, InfraError> {
    let stream = js.stream(topic).await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            durable,
            consumer::pull::Config {
                durable_name: Some(durable.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: js.ack_wait,
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| InfraError::nats("create consumer", e))?;
    consumer
        .stream()
        .max_messages_per_batch(batch.max(1) as usize)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| InfraError::nats("consume", e))
}

/// Runs the handler on one message and acknowledges according to its result.
async fn handle(
    inner: &Inner,
    handler: &DynHandler,
    topic: &str,
    group: &str,
    msg: jetstream::Message,
) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let trace = msg
        .headers
        .as_ref()
        .and_then(|headers| headers.get(crate::trace::TRACEPARENT))
        .and_then(|value| TraceContext::parse(value.as_str().as_bytes()));
    let event = match envelope::decode(topic, msg.payload.clone()).map(|e| Event { trace, ..e }) {
        // Another topic whose name maps to the same stream: not ours.
        Ok(event) if event.topic != topic => {
            if let Err(e) = msg.ack().await {
                tracing::debug!(topic, group, error = %e, "bus ack of a foreign topic failed");
            }
            return;
        }
        Ok(event) => event,
        Err(e) => {
            tracing::error!(topic, group, error = %e, "bus message is not a praxis event; terminating it");
            if let Err(e) = msg.ack_with(AckKind::Term).await {
                tracing::warn!(topic, group, error = %e, "bus term failed");
            }
            return;
        }
    };
    let ack = match handler(event.clone()).await {
        Ok(()) => {
            consumed(topic, group, "ok");
            AckKind::Ack
        }
        Err(HandlerError::Transient(reason)) => {
            consumed(topic, group, "transient");
            let attempt = u32::try_from(delivered.saturating_sub(1)).unwrap_or(u32::MAX);
            let delay = crate::util::backoff(inner.opts.retry_base, inner.opts.retry_max, attempt);
            tracing::warn!(topic, group, event_id = %event.id, delivered, reason = %reason,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "bus handler failed transiently; redelivering later");
            AckKind::Nak(Some(delay))
        }
        Err(HandlerError::Permanent(reason)) => {
            consumed(topic, group, "permanent");
            match dead_letter::record(&inner.db, group, &event, &reason).await {
                Ok(()) => AckKind::Ack,
                Err(e) => {
                    tracing::warn!(topic, group, event_id = %event.id, error = %e, "bus dead letter write failed; redelivering later");
                    AckKind::Nak(Some(inner.opts.retry_max))
                }
            }
        }
    };
    if let Err(e) = msg.ack_with(ack).await {
        tracing::warn!(topic, group, event_id = %event.id, error = %e, "bus ack failed; the event may be redelivered");
    }
}
