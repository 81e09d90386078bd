//! The in-process L1: a `quick_cache` (S3-FIFO eviction, about 20-30 bytes of bookkeeping per
//! entry) holding each value with its own expiry time. Expiry is checked on read (an expired
//! entry is a miss and is replaced by the load that follows), so nothing runs in the background
//! and no timer structure costs memory per entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache as Quick, DefaultLifecycle, PlaceholderGuard};
use quick_cache::{DefaultHashBuilder, UnitWeighter};

/// A cached value (`None` = "does not exist") and when it stops being served.
#[derive(Clone)]
pub(super) struct Slot<V> {
    pub(super) value: Option<V>,
    /// Milliseconds since the L1's epoch.
    expires_at_ms: u64,
}

/// What a coalesced read found: a live value, or the right to load it.
pub(super) enum Lookup<'a, V: Clone> {
    /// A live entry (possibly loaded meanwhile by another caller).
    Found(Option<V>),
    /// No live entry: the holder loads and calls [`LoadGuard::fill`]; other callers wait.
    Load(LoadGuard<'a, V>),
}

/// The right to fill one key; dropping it unfilled lets the next waiter load instead.
pub(super) struct LoadGuard<'a, V: Clone> {
    guard: PlaceholderGuard<
        'a,
        String,
        Slot<V>,
        UnitWeighter,
        DefaultHashBuilder,
        DefaultLifecycle<String, Slot<V>>,
    >,
}

impl<V: Clone> LoadGuard<'_, V> {
    /// Stores the loaded value unless the key was invalidated or overwritten meanwhile.
    pub(super) fn fill(self, slot: Slot<V>) {
        let _ = self.guard.insert(slot);
    }
}

/// In-process cache of `Option<V>` by string key with per-entry expiry.
pub(super) struct L1<V: Clone> {
    map: Arc<Quick<String, Slot<V>>>,
    epoch: Instant,
}

impl<V: Clone> Clone for L1<V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            epoch: self.epoch,
        }
    }
}

/// How many times a coalesced read retries when it keeps finding expired entries (each retry
/// removes the expired entry first, so more than one is rare).
const EXPIRED_RETRIES: usize = 3;

impl<V: Clone> L1<V> {
    /// An empty L1 for about `capacity` entries.
    pub(super) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity.max(1)).unwrap_or(usize::MAX);
        Self {
            map: Arc::new(Quick::new(capacity)),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A slot holding `value` for `ttl` from now.
    pub(super) fn slot(&self, value: Option<V>, ttl: Duration) -> Slot<V> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Slot {
            value,
            expires_at_ms: self.now_ms().saturating_add(ttl_ms),
        }
    }

    /// The live entry of `key`, if any (an expired one is removed).
    pub(super) fn get(&self, key: &str) -> Option<Option<V>> {
        let slot = self.map.get(key)?;
        let now = self.now_ms();
        if slot.expires_at_ms > now {
            return Some(slot.value);
        }
        self.remove_expired(key, now);
        None
    }

    /// The live entry of `key`, or the right to load it; concurrent callers for one key wait
    /// for the holder's [`LoadGuard::fill`].
    pub(super) async fn get_or_guard(&self, key: &str) -> Lookup<'_, V> {
        for _ in 0..EXPIRED_RETRIES {
            match self.map.get_value_or_guard_async(key).await {
                Ok(slot) => {
                    let now = self.now_ms();
                    if slot.expires_at_ms > now {
                        return Lookup::Found(slot.value);
                    }
                    self.remove_expired(key, now);
                }
                Err(guard) => return Lookup::Load(LoadGuard { guard }),
            }
        }
        // Expired entries kept reappearing (other callers re-inserting them): serve what is
        // there rather than spin.
        match self.map.get_value_or_guard_async(key).await {
            Ok(slot) => Lookup::Found(slot.value),
            Err(guard) => Lookup::Load(LoadGuard { guard }),
        }
    }

    fn remove_expired(&self, key: &str, now: u64) {
        self.map.remove_if(key, |slot| slot.expires_at_ms <= now);
    }

    /// Stores `slot` under `key`, replacing any entry (and any load in progress).
    pub(super) fn insert(&self, key: &str, slot: Slot<V>) {
        self.map.insert(key.to_owned(), slot);
    }

    /// Drops `key`.
    pub(super) fn remove(&self, key: &str) {
        self.map.remove(key);
    }

    /// Drops every entry.
    pub(super) fn clear(&self) {
        self.map.clear();
    }

    /// Number of entries (expired ones not yet read count too).
    pub(super) fn len(&self) -> u64 {
        self.map.len() as u64
    }
}
