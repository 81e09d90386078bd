//! The set of existing codes as a Bloom filter, so a flood of unknown codes is answered 404
//! without touching the cache or the database.
//!
//! Reads are lock-free (an `ArcSwap` load and a few atomic bit tests); writers (creates, and
//! creates of other processes arriving by broadcast) insert atomically and serialize among
//! themselves on a small mutex that the redirect path never takes. A rebuild (at start, when
//! the count passes the design capacity, and periodically to repair a lost broadcast) pages
//! through every code into a new filter while the old one keeps serving; codes inserted
//! meanwhile are recorded and replayed into the new filter before it is swapped in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use fastbloom::AtomicBloomFilter;
use parking_lot::Mutex;

/// One generation of the filter.
struct Generation {
    filter: AtomicBloomFilter,
    capacity: u64,
    items: AtomicU64,
}

impl Generation {
    fn new(capacity: u64, fp_rate: f64) -> Self {
        let capacity = capacity.max(1);
        Self {
            filter: AtomicBloomFilter::with_false_pos(fp_rate)
                .expected_items(usize::try_from(capacity).unwrap_or(usize::MAX)),
            capacity,
            items: AtomicU64::new(0),
        }
    }
}

/// A filter being rebuilt, filled outside any lock, swapped in by [`CodeFilter::finish_rebuild`].
pub struct Rebuild {
    next: Generation,
}

impl Rebuild {
    /// Adds a code from the database pages.
    pub fn insert(&self, code: &str) {
        self.next.filter.insert(code);
        self.next.items.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bloom filter of every existing code; see the module docs.
pub struct CodeFilter {
    current: ArcSwap<Generation>,
    fp_rate: f64,
    /// Codes inserted while a rebuild runs (`Some` during a rebuild). Also serializes writers.
    pending: Mutex<Option<Vec<String>>>,
}

impl std::fmt::Debug for CodeFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.current.load();
        f.debug_struct("CodeFilter")
            .field("capacity", &g.capacity)
            .field("items", &g.items.load(Ordering::Relaxed))
            .finish()
    }
}

impl CodeFilter {
    /// An empty filter sized for `capacity` codes at `fp_rate` false positives.
    pub fn new(capacity: u64, fp_rate: f64) -> Self {
        Self {
            current: ArcSwap::from_pointee(Generation::new(capacity, fp_rate)),
            fp_rate,
            pending: Mutex::new(None),
        }
    }

    /// Whether `code` may exist; `false` means it certainly does not.
    pub fn might_contain(&self, code: &str) -> bool {
        self.current.load().filter.contains(code)
    }

    /// Adds a code. Returns true when the filter now holds more codes than it was sized for
    /// (time to rebuild it bigger).
    pub fn insert(&self, code: &str) -> bool {
        let mut pending = self.pending.lock();
        let g = self.current.load();
        g.filter.insert(code);
        let items = g.items.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = pending.as_mut() {
            p.push(code.to_owned());
        }
        items > g.capacity
    }

    /// Codes inserted so far (with repeats) and the design capacity of the current filter.
    pub fn load(&self) -> (u64, u64) {
        let g = self.current.load();
        (g.items.load(Ordering::Relaxed), g.capacity)
    }

    /// Starts a rebuild sized for `capacity` codes; inserts from now on are also recorded for
    /// the new filter.
    pub fn begin_rebuild(&self, capacity: u64) -> Rebuild {
        *self.pending.lock() = Some(Vec::new());
        Rebuild {
            next: Generation::new(capacity, self.fp_rate),
        }
    }

    /// Replays the codes inserted during the rebuild into the new filter and swaps it in.
    pub fn finish_rebuild(&self, rebuild: Rebuild) {
        let mut pending = self.pending.lock();
        for code in pending.take().unwrap_or_default() {
            rebuild.insert(&code);
        }
        self.current.store(Arc::new(rebuild.next));
    }

    /// Abandons a rebuild (the database failed); the current filter stays.
    pub fn abort_rebuild(&self, _rebuild: Rebuild) {
        *self.pending.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_no_for_absent_codes() {
        let f = CodeFilter::new(1000, 0.01);
        assert!(!f.might_contain("abc"));
        f.insert("abc");
        assert!(f.might_contain("abc"));
        let false_positives = (0..10_000)
            .filter(|i| f.might_contain(&format!("x{i}")))
            .count();
        assert!(false_positives < 200, "{false_positives}");
    }

    #[test]
    fn rebuild_keeps_codes_inserted_meanwhile() {
        let f = CodeFilter::new(2, 0.01);
        f.insert("old");
        assert!(!f.insert("a"));
        assert!(f.insert("b"), "over capacity");
        let r = f.begin_rebuild(100);
        r.insert("old");
        f.insert("during");
        f.finish_rebuild(r);
        assert!(f.might_contain("old"));
        assert!(f.might_contain("during"));
        assert_eq!(f.load(), (2, 100));
        // "a" and "b" were not in the database pages: a rebuild drops what the database lacks.
        let r = f.begin_rebuild(100);
        f.abort_rebuild(r);
        f.insert("after");
        assert!(f.might_contain("after"));
    }
}
