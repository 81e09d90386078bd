//! Fire-and-forget fan-out to every process (at-most-once): in-process only, Redis pub/sub or
//! NATS core subjects. Used for cache invalidation and other "tell everyone" signals.
//!
//! Every message published by a process is delivered to that process's own subscribers
//! directly, exactly once; the copy that comes back from Redis or NATS carries the sender's
//! instance id and is skipped.

mod frame;
mod hub;
mod nats;
mod redis;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::InfraError;
use crate::tls::TrustPolicy;
use hub::Hub;

/// Capacity of each channel's in-process queue; a subscriber that falls further behind gets
/// `RecvError::Lagged` and loses the oldest messages (at-most-once).
pub const CHANNEL_CAPACITY: usize = 1024;

/// Handle to the broadcast fabric of this process. Cheap to clone; the background receiver
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Broadcaster {
    inner: Arc<Inner>,
}

struct Inner {
    instance: Uuid,
    hub: Arc<Hub>,
    remote: Remote,
    _stop: Option<DropGuard>,
}

enum Remote {
    Local,
    Redis {
        conn: ::redis::aio::ConnectionManager,
        prefix: String,
    },
    Nats {
        client: async_nats::Client,
        prefix: String,
    },
}

impl std::fmt::Debug for Broadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcaster")
            .field("kind", &self.kind())
            .field("instance", &self.inner.instance)
            .finish()
    }
}

impl Broadcaster {
    /// In-process only (embedded mode): subscribers of this process receive every publish.
    pub fn local() -> Self {
        Broadcaster {
            inner: Arc::new(Inner {
                instance: Uuid::now_v7(),
                hub: Arc::new(Hub::default()),
                remote: Remote::Local,
                _stop: None,
            }),
        }
    }

    /// Redis pub/sub on channels `<prefix>:bcast:<channel>`, with a dedicated subscriber
    /// connection that resubscribes after a reconnect. A `rediss://` URL connects over TLS and
    /// trusts `trust`.
    pub async fn redis(url: &str, prefix: &str, trust: &TrustPolicy) -> Result<Self, InfraError> {
        crate::util::check_name("broadcast prefix", prefix)?;
        let client = crate::redis_conn::client(url, trust)?;
        let explain = |e| crate::redis_conn::explain(e, url, trust);
        let conn = crate::redis_conn::manager(client.clone())
            .await
            .map_err(explain)?;
        let instance = Uuid::now_v7();
        let hub = Arc::new(Hub::default());
        let stop = CancellationToken::new();
        redis::start_receiver(client, prefix, instance, hub.clone(), stop.clone())
            .await
            .map_err(explain)?;
        Ok(Broadcaster {
            inner: Arc::new(Inner {
                instance,
                hub,
                remote: Remote::Redis {
                    conn,
                    prefix: prefix.to_string(),
                },
                _stop: Some(stop.drop_guard()),
            }),
        })
    }

    /// NATS core subjects `<prefix>.bcast.<channel>` (the client reconnects and resubscribes
    /// on its own).
    pub async fn nats(client: async_nats::Client, prefix: &str) -> Result<Self, InfraError> {
        crate::util::check_name("broadcast prefix", prefix)?;
        let instance = Uuid::now_v7();
        let hub = Arc::new(Hub::default());
        let stop = CancellationToken::new();
        nats::start_receiver(client.clone(), prefix, instance, hub.clone(), stop.clone()).await?;
        Ok(Broadcaster {
            inner: Arc::new(Inner {
                instance,
                hub,
                remote: Remote::Nats {
                    client,
                    prefix: prefix.to_string(),
                },
                _stop: Some(stop.drop_guard()),
            }),
        })
    }

    /// Sends `payload` to every subscriber of `channel` in every process, this one included
    /// (delivered here directly, once). At-most-once: a process that is down or lagging misses it.
    pub async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), InfraError> {
        crate::util::check_name("broadcast channel", channel)?;
        self.inner.hub.deliver(channel, payload.clone());
        let framed = || frame::encode(self.inner.instance, &payload);
        match &self.inner.remote {
            Remote::Local => Ok(()),
            Remote::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let _receivers: i64 = ::redis::cmd("PUBLISH")
                    .arg(redis::channel_name(prefix, channel))
                    .arg(framed().as_ref())
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
            Remote::Nats { client, prefix } => client
                .publish(nats::subject(prefix, channel), framed())
                .await
                .map_err(|e| InfraError::nats("broadcast publish", e)),
        }
    }

    /// Receiver of every message published on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Bytes> {
        self.inner.hub.subscribe(channel)
    }

    /// Identifier of this broadcaster (used to skip its own messages coming back).
    pub fn instance_id(&self) -> Uuid {
        self.inner.instance
    }

    /// `"local"`, `"redis"` or `"nats"`.
    pub fn kind(&self) -> &'static str {
        match self.inner.remote {
            Remote::Local => "local",
            Remote::Redis { .. } => "redis",
            Remote::Nats { .. } => "nats",
        }
    }
}
