//! What one receiver counted: which bench messages arrived (a bitset by sequence, so a loss or
//! a duplicate is found exactly), and the latency of each measured delivery from its
//! *intended* send time, in an HdrHistogram (nanoseconds, as the HTTP generator records).
//! Each receiver owns its tally; they are merged at the end.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::record::new_histogram;
use crate::ws::frames::Marker;

/// A set of message sequences (0, 1, 2, ...), one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; `false` when it was there already.
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.words[word] & mask == 0;
        if fresh {
            self.words[word] |= mask;
            self.len += 1;
        }
        fresh
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        self.words
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1u64 << (seq % 64)) != 0)
    }

    /// How many sequences it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many of `self`'s sequences are missing from `other`.
    pub fn missing_from(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let theirs = other.words.get(i).copied().unwrap_or(0);
                u64::from((w & !theirs).count_ones())
            })
            .sum()
    }
}

/// One receiver's count.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of measured deliveries from their intended send time, nanoseconds.
    pub latency: Histogram<u64>,
    /// The sequences received.
    pub seen: SeqSet,
    /// Deliveries of measured messages (first copies).
    pub measured: u64,
    /// Deliveries of warm-up messages (first copies).
    pub warmup: u64,
    /// Copies of a message already received.
    pub duplicates: u64,
    /// When the last measured delivery arrived.
    pub last_measured_at: Option<Instant>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: new_histogram(),
            seen: SeqSet::default(),
            measured: 0,
            warmup: 0,
            duplicates: 0,
            last_measured_at: None,
        }
    }
}

impl Tally {
    /// Records the delivery of `marker` received at `now`, for messages intended at
    /// `epoch + offset`.
    pub fn record(&mut self, marker: Marker, epoch: Instant, now: Instant) {
        if !self.seen.insert(marker.seq) {
            self.duplicates += 1;
            return;
        }
        if marker.measured {
            let intended = epoch + Duration::from_nanos(marker.offset_ns);
            let ns = u64::try_from(now.saturating_duration_since(intended).as_nanos())
                .unwrap_or(u64::MAX)
                .clamp(1, self.latency.high());
            // In bounds by the clamp, so recording cannot fail.
            let _ = self.latency.record(ns);
            self.measured += 1;
            self.last_measured_at = Some(now);
        } else {
            self.warmup += 1;
        }
    }

    /// Adds `other`'s counts and latencies (not its set: sets are per receiver).
    pub fn merge_counts(&mut self, other: &Tally) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        self.measured += other.measured;
        self.warmup += other.warmup;
        self.duplicates += other.duplicates;
        self.last_measured_at = self.last_measured_at.max(other.last_measured_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(seq: u64, offset_ms: u64, measured: bool) -> Marker {
        Marker {
            seq,
            offset_ns: offset_ms * 1_000_000,
            measured,
        }
    }

    #[test]
    fn seq_set_counts_and_compares() {
        let mut a = SeqSet::default();
        assert!(a.is_empty());
        assert!(a.insert(0));
        assert!(a.insert(64));
        assert!(a.insert(200));
        assert!(!a.insert(64));
        assert_eq!(a.len(), 3);
        assert!(a.contains(200) && !a.contains(199) && !a.contains(10_000));
        let mut b = SeqSet::default();
        b.insert(64);
        assert_eq!(a.missing_from(&b), 2);
        assert_eq!(b.missing_from(&a), 0);
        assert_eq!(a.missing_from(&SeqSet::default()), 3);
    }

    #[test]
    fn latency_is_measured_from_the_intended_time() {
        let epoch = Instant::now();
        let mut t = Tally::default();
        // Intended at +10 ms, received at +13 ms: 3 ms, whenever it was actually sent.
        t.record(
            marker(0, 10, true),
            epoch,
            epoch + Duration::from_millis(13),
        );
        // A warm-up message counts as received but not in the latency.
        t.record(
            marker(1, 11, false),
            epoch,
            epoch + Duration::from_millis(50),
        );
        // A duplicate is counted as such, once.
        t.record(
            marker(0, 10, true),
            epoch,
            epoch + Duration::from_millis(90),
        );
        assert_eq!((t.measured, t.warmup, t.duplicates), (1, 1, 1));
        assert_eq!(t.latency.len(), 1);
        let v = t.latency.max();
        assert!((2_990_000..=3_010_000).contains(&v), "{v}");
        assert_eq!(t.last_measured_at, Some(epoch + Duration::from_millis(13)));
        // Received "before" its intended time (cannot happen, but must not panic): 1 ns.
        t.record(marker(2, 100, true), epoch, epoch);
        assert_eq!(t.latency.min(), 1);
    }

    #[test]
    fn tallies_merge() {
        let epoch = Instant::now();
        let mut a = Tally::default();
        let mut b = Tally::default();
        a.record(marker(0, 0, true), epoch, epoch + Duration::from_millis(1));
        b.record(marker(0, 0, true), epoch, epoch + Duration::from_millis(2));
        b.record(marker(0, 0, true), epoch, epoch + Duration::from_millis(2));
        a.merge_counts(&b);
        assert_eq!((a.measured, a.duplicates, a.latency.len()), (2, 1, 2));
        assert_eq!(a.last_measured_at, Some(epoch + Duration::from_millis(2)));
    }
}
