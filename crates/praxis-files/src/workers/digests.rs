//! The file digests of uploads this process is receiving, kept between PATCH requests so a
//! completed upload's BLAKE3 and SHA-256 need no second read of its bytes. A digest is only
//! good at the offset it was computed to: an upload resumed in another process, or after a
//! restart, is hashed by reading its object back at completion.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::domain::digest::FileDigests;

/// Most uploads whose digests are kept (about 1 KiB each); beyond it, an arbitrary one is
/// dropped (and re-read at its completion).
const CAPACITY: usize = 4096;

/// Digests by upload id, at their offset.
#[derive(Debug, Default)]
pub struct DigestCache {
    map: Mutex<HashMap<String, (u64, FileDigests)>>,
}

impl DigestCache {
    /// Takes the digests of `id` if they were computed up to exactly `offset` (a fresh digest
    /// at offset 0). `None`: not known here; the completion will re-read.
    pub fn take(&self, id: &str, offset: u64) -> Option<FileDigests> {
        if offset == 0 {
            self.map.lock().remove(id);
            return Some(FileDigests::default());
        }
        match self.map.lock().remove(id) {
            Some((at, d)) if at == offset => Some(d),
            _ => None,
        }
    }

    /// Keeps the digests of `id` computed up to `offset`.
    pub fn put(&self, id: &str, offset: u64, digests: FileDigests) {
        let mut map = self.map.lock();
        if map.len() >= CAPACITY
            && !map.contains_key(id)
            && let Some(victim) = map.keys().next().cloned()
        {
            map.remove(&victim);
        }
        map.insert(id.to_owned(), (offset, digests));
    }

    /// Forgets `id`.
    pub fn forget(&self, id: &str) {
        self.map.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_good_only_at_their_offset() {
        let c = DigestCache::default();
        assert!(c.take("a", 0).is_some());
        c.put("a", 10, FileDigests::default());
        assert!(c.take("a", 5).is_none());
        assert!(c.take("a", 10).is_none(), "a wrong take drops it");
        c.put("a", 10, FileDigests::default());
        assert!(c.take("a", 10).is_some());
    }
}
