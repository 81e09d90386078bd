//! Cache port: an in-process L1 (quick_cache, with negative entries and jittered per-entry
//! TTLs checked on read), an optional shared Redis L2, load coalescing, and invalidation
//! broadcast to every process.
//!
//! Read path of [`Cache::get_or_load`]: L1 -> L2 -> loader; concurrent misses of one key
//! in one process run a single L2 lookup / load and share its result. Writes
//! ([`Cache::insert`], [`Cache::invalidate`]) update L1 and L2 and tell the other processes
//! (broadcast channel `cache.<name>`) to drop their L1 copy.
//!
//! A load racing with an invalidation of the same key may re-insert the value it read before
//! the invalidation; the entry's TTL bounds that staleness.

mod l1;
mod l2;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::InfraError;
use crate::broadcast::Broadcaster;
use l1::{L1, Lookup};
use l2::L2;
use metrics::CacheMetrics;

/// Settings of one named cache.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// Maximum number of L1 entries (negative entries included).
    pub capacity: u64,
    /// Time to live of a present value (before jitter), in L1 and L2.
    pub ttl: Duration,
    /// Time to live of a negative entry ("no such key"), usually much shorter than `ttl`.
    pub negative_ttl: Duration,
    /// Relative TTL jitter in `0.0..=1.0` (0.1 = +/-10%), so entries loaded together do not
    /// expire together.
    pub jitter: f64,
    /// Whether to use the Redis L2 when the factory has Redis.
    pub use_l2: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            capacity: 10_000,
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            jitter: 0.1,
            use_l2: true,
        }
    }
}

/// Builds named caches that share one Redis connection, broadcaster and key prefix.
#[derive(Clone)]
pub struct CacheFactory {
    redis: Option<redis::aio::ConnectionManager>,
    broadcaster: Broadcaster,
    prefix: Arc<str>,
}

impl std::fmt::Debug for CacheFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheFactory")
            .field("redis", &self.redis.is_some())
            .field("broadcaster", &self.broadcaster)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl CacheFactory {
    /// A factory; `redis` enables the L2 (keys `<prefix>:cache:<name>:<key>`).
    pub fn new(
        redis: Option<redis::aio::ConnectionManager>,
        broadcaster: Broadcaster,
        prefix: &str,
    ) -> Self {
        CacheFactory {
            redis,
            broadcaster,
            prefix: Arc::from(prefix),
        }
    }

    /// Whether caches built here can use a Redis L2.
    pub fn has_l2(&self) -> bool {
        self.redis.is_some()
    }

    /// Builds the cache `name` (must be unique per process; use `[a-z0-9_-.]`). Must be called
    /// inside a tokio runtime: it starts the task that applies other processes' invalidations.
    pub fn build<V>(&self, name: &str, opts: CacheOptions) -> Cache<V>
    where
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        if !crate::util::is_valid_name(name) {
            tracing::warn!(
                cache = name,
                "cache name should use only A-Z a-z 0-9 _ - .; invalidation broadcasts will fail"
            );
        }
        let l1 = L1::new(opts.capacity);
        let l2 = match (&self.redis, opts.use_l2) {
            (Some(conn), true) => Some(L2::new(conn.clone(), &self.prefix, name)),
            _ => None,
        };
        let stop = CancellationToken::new();
        let inner = Arc::new(Inner {
            id: Uuid::now_v7(),
            channel: format!("cache.{name}"),
            metrics: CacheMetrics::new(name),
            name: name.to_string(),
            l1,
            l2,
            broadcaster: self.broadcaster.clone(),
            opts,
            _stop: stop.clone().drop_guard(),
        });
        spawn_invalidation_listener(&inner, stop);
        Cache { inner }
    }
}

/// A named two-level cache of `V` by string key. Cheap to clone.
#[derive(Clone)]
pub struct Cache<V: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

struct Inner<V: Clone + Send + Sync + 'static> {
    id: Uuid,
    name: String,
    channel: String,
    l1: L1<V>,
    l2: Option<L2>,
    broadcaster: Broadcaster,
    opts: CacheOptions,
    metrics: CacheMetrics,
    _stop: DropGuard,
}

impl<V> Cache<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// L1 only, no I/O: `Some(Some(v))` hit, `Some(None)` cached negative, `None` unknown.
    /// Counts hits and negative hits; a miss is counted by the `get_or_load` that follows it.
    pub async fn get(&self, key: &str) -> Option<Option<V>> {
        let found = self.inner.l1.get(key);
        match &found {
            Some(Some(_)) => self.inner.metrics.hit.increment(1),
            Some(None) => self.inner.metrics.negative_hit.increment(1),
            None => {}
        }
        found
    }

    /// L1, then L2, then `load`; the result (including `None`, "does not exist") is cached with
    /// the jittered `ttl` or `negative_ttl`. Concurrent calls for one key share one L2 lookup
    /// and one load. A loader error is returned to its caller and nothing is cached; callers
    /// that were waiting for that load then try it themselves, one at a time. L2 errors are
    /// logged and fall through to the loader.
    pub async fn get_or_load<F, Fut>(&self, key: &str, load: F) -> Result<Option<V>, InfraError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, InfraError>>,
    {
        if let Some(found) = self.get(key).await {
            return Ok(found);
        }
        let inner = &self.inner;
        inner.metrics.miss.increment(1);
        let guard = match inner.l1.get_or_guard(key).await {
            Lookup::Found(value) => return Ok(value),
            Lookup::Load(guard) => guard,
        };
        let value = self.read_through(key, load).await?;
        guard.fill(inner.l1.slot(value.clone(), self.ttl(&value)));
        inner.metrics.entries.set(inner.l1.len() as f64);
        Ok(value)
    }

    /// L2, then the loader (whose result is written to L2).
    async fn read_through<F, Fut>(&self, key: &str, load: F) -> Result<Option<V>, InfraError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, InfraError>>,
    {
        let inner = &self.inner;
        if let Some(l2) = &inner.l2 {
            match l2.get::<V>(key).await {
                Ok(Some(v)) => {
                    inner.metrics.l2_hit.increment(1);
                    return Ok(v);
                }
                Ok(None) => inner.metrics.l2_miss.increment(1),
                Err(e) => {
                    inner.metrics.l2_error.increment(1);
                    tracing::warn!(cache = %inner.name, error = %e, "cache l2 read failed; loading from the source");
                }
            }
        }
        inner.metrics.loads.increment(1);
        let value = load().await?;
        if let Some(l2) = &inner.l2
            && let Err(e) = l2.set(key, &value, self.ttl(&value)).await
        {
            inner.metrics.l2_error.increment(1);
            tracing::warn!(cache = %inner.name, error = %e, "cache l2 write failed");
        }
        Ok(value)
    }

    /// Write-through: stores `value` in L1 and L2 and tells other processes to drop their
    /// stale L1 copy. L2 and broadcast failures are logged (the TTL bounds staleness).
    pub async fn insert(&self, key: &str, value: V) {
        let inner = &self.inner;
        let stored = Some(value);
        if let Some(l2) = &inner.l2
            && let Err(e) = l2.set(key, &stored, self.ttl(&stored)).await
        {
            inner.metrics.l2_error.increment(1);
            tracing::warn!(cache = %inner.name, error = %e, "cache l2 write failed");
        }
        let ttl = self.ttl(&stored);
        inner.l1.insert(key, inner.l1.slot(stored, ttl));
        inner.metrics.entries.set(inner.l1.len() as f64);
        if let Err(e) = self.broadcast_drop(key).await {
            tracing::warn!(cache = %inner.name, error = %e, "cache invalidation broadcast failed");
        }
    }

    /// Removes `key` from L1 and L2 and broadcasts the invalidation so every process drops
    /// it. Returns the first failure (L1 is always cleared).
    pub async fn invalidate(&self, key: &str) -> Result<(), InfraError> {
        let inner = &self.inner;
        inner.l1.remove(key);
        inner.metrics.entries.set(inner.l1.len() as f64);
        let l2 = match &inner.l2 {
            Some(l2) => l2.delete(key).await,
            None => Ok(()),
        };
        let sent = self.broadcast_drop(key).await;
        l2.and(sent)
    }

    /// Drops `key` from this process's L1 only: no L2 change, no broadcast (for a process
    /// that learned of a change by other means, such as polling the source).
    pub fn forget_local(&self, key: &str) {
        let inner = &self.inner;
        inner.l1.remove(key);
        inner.metrics.entries.set(inner.l1.len() as f64);
    }

    /// Number of L1 entries (expired entries count until they are read or evicted).
    pub fn entry_count(&self) -> u64 {
        self.inner.l1.len()
    }

    /// Name given at build time.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The jittered TTL of a value (`ttl`) or of a negative entry (`negative_ttl`), in L1 and
    /// L2 alike.
    fn ttl(&self, value: &Option<V>) -> Duration {
        let base = if value.is_some() {
            self.inner.opts.ttl
        } else {
            self.inner.opts.negative_ttl
        };
        praxis_kit::jitter::jittered(base, self.inner.opts.jitter)
    }

    async fn broadcast_drop(&self, key: &str) -> Result<(), InfraError> {
        let mut msg = BytesMut::with_capacity(16 + key.len());
        msg.put_slice(self.inner.id.as_bytes());
        msg.put_slice(key.as_bytes());
        self.inner
            .broadcaster
            .publish(&self.inner.channel, msg.freeze())
            .await
    }
}

/// Drops L1 entries that other cache instances (usually other processes) invalidate.
/// Stops when the cache's last handle is dropped.
fn spawn_invalidation_listener<V: Clone + Send + Sync + 'static>(
    inner: &Arc<Inner<V>>,
    stop: CancellationToken,
) {
    let mut rx = inner.broadcaster.subscribe(&inner.channel);
    let l1 = inner.l1.clone();
    let own = inner.id;
    let name = inner.name.clone();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                msg = rx.recv() => msg,
            };
            match msg {
                Ok(payload) => {
                    if let Some(key) = decode_drop(&payload, own) {
                        l1.remove(key);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(cache = %name, missed, "cache invalidations were dropped; clearing L1");
                    l1.clear();
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// The key of an invalidation message, unless it came from `own` cache instance.
fn decode_drop(payload: &Bytes, own: Uuid) -> Option<&str> {
    if payload.len() < 16 || &payload[..16] == own.as_bytes() {
        return None;
    }
    std::str::from_utf8(&payload[16..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_messages_skip_own_instance() {
        let own = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mut msg = other.as_bytes().to_vec();
        msg.extend_from_slice(b"k1");
        assert_eq!(decode_drop(&Bytes::from(msg), own), Some("k1"));
        let mut mine = own.as_bytes().to_vec();
        mine.extend_from_slice(b"k1");
        assert_eq!(decode_drop(&Bytes::from(mine), own), None);
        assert_eq!(decode_drop(&Bytes::from_static(b"short"), own), None);
    }
}
