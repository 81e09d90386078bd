//! The in-process backend: 64 shards, each a mutex-guarded map from key to the states of the
//! rules checked under that key, on a monotonic clock.
//!
//! Keys are strings by default (`Box<str>`, looked up by `&str`: no allocation once a key
//! exists), or any small hashable type ([`KeyedLimiter`](super::KeyedLimiter): nothing to
//! format or to hash beyond a few bytes). Keys are hashed with
//! foldhash, randomly seeded per process: SipHash (std's default) cost a third of a decision,
//! and foldhash keeps a per-process seed against precomputed collisions. A key usually has one
//! rule; a second rule on the same key (another algorithm or quota) gets its own state.
//!
//! Eviction is on access and amortized: a shard sweeps out its idle states once per
//! `max(SWEEP_EVERY, entries kept by its last sweep)` checks that reach it. A sweep costs
//! O(entries of the shard) = O(kept + checks since), so the cost per check is O(1) amortized;
//! between sweeps an idle key keeps its memory. States
//! that are idle right after a check (a denied or zero-hit check on a fresh key) are never
//! stored at all.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use parking_lot::Mutex;
use praxis_kit::ratelimit::{Decision, State};

use super::Rule;

/// Number of shards (a power of two).
const SHARDS: usize = 64;
/// A shard sweeps at least this many checks apart.
const SWEEP_EVERY: u64 = 1024;

pub(crate) struct LocalLimiter<K = Box<str>> {
    origin: Instant,
    hasher: foldhash::quality::RandomState,
    shards: Box<[Shard<K>]>,
}

/// The owned key stored for a borrowed one on first use (`Box<str>` for `&str`, a copy for
/// a `Copy` key).
pub(crate) trait OwnedKey<Q: ?Sized> {
    fn owned(key: &Q) -> Self;
}

impl OwnedKey<str> for Box<str> {
    fn owned(key: &str) -> Self {
        Box::from(key)
    }
}

impl<K: Copy> OwnedKey<K> for K {
    fn owned(key: &K) -> Self {
        *key
    }
}

/// One shard, on its own cache lines so neighbouring locks do not false-share.
#[repr(align(128))]
struct Shard<K> {
    map: Mutex<ShardMap<K>>,
}

impl<K> Default for Shard<K> {
    fn default() -> Self {
        Self {
            map: Mutex::new(ShardMap {
                entries: HashMap::default(),
                ops: 0,
                kept: 0,
                last_ns: 0,
            }),
        }
    }
}

struct ShardMap<K> {
    entries: HashMap<K, Vec<(Rule, State)>, foldhash::quality::RandomState>,
    /// Checks since the last sweep.
    ops: u64,
    /// Entries the last sweep kept.
    kept: u64,
    /// The latest time a check here was taken at (ns since the limiter's origin).
    last_ns: u64,
}

impl<K> ShardMap<K> {
    /// Drops every state that is idle at `now`, and keys left without states.
    fn sweep(&mut self, now: u64) {
        self.entries.retain(|_, states| {
            states.retain(|(rule, state)| !state.is_idle(&rule.quota, now));
            !states.is_empty()
        });
        self.ops = 0;
        self.kept = self.entries.len() as u64;
    }
}

impl<K: Hash + Eq> LocalLimiter<K> {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            hasher: foldhash::quality::RandomState::default(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// Nanoseconds from the limiter's creation to `at`.
    fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Shard<K> {
        let h = self.hasher.hash_one(key);
        // The top bits: the map inside the shard uses its own hasher anyway.
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    /// Takes `hits` from `key`'s state of `rule` now.
    pub(crate) fn check<Q>(&self, key: &Q, rule: &Rule, hits: u64) -> Decision
    where
        K: Borrow<Q> + OwnedKey<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.check_at(key, rule, hits, Instant::now())
    }

    /// Takes `hits` from `key`'s state of `rule` at `at` (a time the caller has read already,
    /// such as the request's arrival; never later than now, or the shard's time would jump
    /// ahead for every key in it). Times read before taking the lock may arrive out of order:
    /// a check is taken at the later of `at` and the shard's latest, so per key the time never
    /// goes back (a late arrival is charged as of the check before it), and a state a sweep
    /// dropped as idle at the shard's time is never replaced by a fresh one at an earlier time.
    pub(crate) fn check_at<Q>(&self, key: &Q, rule: &Rule, hits: u64, at: Instant) -> Decision
    where
        K: Borrow<Q> + OwnedKey<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key);
        let at_ns = self.ns_at(at);
        let mut map = shard.map.lock();
        let now = at_ns.max(map.last_ns);
        map.last_ns = now;
        map.ops += 1;
        // A sweep costs O(kept + ops) and comes at most every max(SWEEP_EVERY, kept) checks:
        // amortized O(1) per check.
        if map.ops >= SWEEP_EVERY.max(map.kept) {
            map.sweep(now);
        }
        if let Some(states) = map.entries.get_mut(key) {
            if let Some((_, state)) = states.iter_mut().find(|(r, _)| r == rule) {
                return state.check(&rule.quota, now, hits);
            }
            let mut state = State::new(rule.algorithm);
            let d = state.check(&rule.quota, now, hits);
            if !state.is_idle(&rule.quota, now) {
                states.push((*rule, state));
            }
            return d;
        }
        let mut state = State::new(rule.algorithm);
        let d = state.check(&rule.quota, now, hits);
        if !state.is_idle(&rule.quota, now) {
            map.entries.insert(K::owned(key), vec![(*rule, state)]);
        }
        d
    }

    /// Keys currently held (idle ones included until their shard sweeps).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.lock().entries.len()).sum()
    }

    /// Sweeps every shard now.
    #[cfg(test)]
    fn sweep_all(&self) {
        let now = self.ns_at(Instant::now());
        for s in self.shards.iter() {
            s.map.lock().sweep(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use praxis_kit::ratelimit::{Algorithm, Quota};
    use std::time::Duration;

    fn rule(algorithm: Algorithm, limit: u64, period: Duration) -> Rule {
        Rule::new(algorithm, Quota::new(limit, period).expect("valid"))
    }

    #[test]
    fn rules_on_one_key_are_separate() {
        let l: LocalLimiter = LocalLimiter::new();
        let a = rule(Algorithm::FixedWindow, 1, Duration::from_secs(3600));
        let b = rule(Algorithm::FixedWindow, 2, Duration::from_secs(3600));
        assert!(l.check("k", &a, 1).allowed);
        assert!(!l.check("k", &a, 1).allowed);
        assert!(l.check("k", &b, 2).allowed);
        assert!(l.check("other", &a, 1).allowed);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn a_check_at_an_earlier_time_counts_as_the_latest() {
        // Times read before the lock (request arrivals) can reach a shard out of order: the
        // earlier one is decided as of the latest, the same answer (and Retry-After) as a
        // check at 1.5 s. Taken at its own time it would get a later Retry-After.
        let l: LocalLimiter = LocalLimiter::new();
        let r = rule(Algorithm::FixedWindow, 1, Duration::from_secs(1));
        let later = l.origin + Duration::from_millis(1_500);
        let earlier = l.origin + Duration::from_millis(500);
        assert!(l.check_at("k", &r, 1, later).allowed);
        let d = l.check_at("k", &r, 1, earlier);
        assert!(!d.allowed, "charged in the window of the latest check");
        // Retry after the end of that window, seen from 1.5 s.
        assert_eq!(d.retry_after, Some(Duration::from_millis(500)));
    }

    #[test]
    fn fresh_idle_states_are_not_stored() {
        let l: LocalLimiter = LocalLimiter::new();
        let r = rule(Algorithm::SlidingLog, 3, Duration::from_secs(60));
        assert!(l.check("peek", &r, 0).allowed);
        assert!(!l.check("too-big", &r, 4).allowed);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn idle_states_are_swept() {
        let l: LocalLimiter = LocalLimiter::new();
        let period = Duration::from_millis(20);
        for a in Algorithm::ALL {
            let r = rule(a, 5, period);
            for i in 0..100 {
                assert!(l.check(format!("{a}-{i}").as_str(), &r, 1).allowed);
            }
        }
        assert_eq!(l.len(), 500);
        // The sliding-window counter is idle two periods after its last hit.
        std::thread::sleep(period * 3);
        l.sweep_all();
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn sweeping_on_access_bounds_memory() {
        let l: LocalLimiter = LocalLimiter::new();
        let r = rule(Algorithm::Gcra, 1, Duration::from_millis(1));
        // Each key is idle 1 ms after its hit; checks keep arriving on new keys. A shard sweeps
        // every 1024 checks that reach it (about 65,000 checks over the 64 shards), so at most
        // about 64 * 1024 keys are held whatever the number of keys seen.
        for i in 0..200_000u32 {
            l.check(i.to_string().as_str(), &r, 1);
            if i % 10_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(l.len() < 100_000, "held {}", l.len());
    }

    #[test]
    fn concurrent_threads_allow_exactly_the_limit() {
        let l: std::sync::Arc<LocalLimiter> = std::sync::Arc::new(LocalLimiter::new());
        for a in Algorithm::ALL {
            let r = rule(a, 100, Duration::from_secs(3600));
            let allowed: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let l = l.clone();
                        s.spawn(move || (0..75).filter(|_| l.check("burst", &r, 1).allowed).count())
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("thread")).sum()
            });
            assert_eq!(allowed, 100, "{a}");
        }
    }
}
