//! A consistent-hash ring with virtual nodes, and the key ranges that move between two rings.
//!
//! A key's position is [`ring_hash`]: the first 8 bytes of its BLAKE3 digest, shifted to 63
//! bits so that it fits a non-negative SQL `BIGINT` and sorts the same in SQL as here (a
//! range of positions is a range scan on an indexed column). The hash is part of the data
//! format: stored rows carry their position, so it must never change.
//!
//! A ring is its spec: shard names and how many virtual nodes each has. Vnode `i` of shard
//! `s` sits at `ring_hash("s#i")`, so a shard's points depend on nothing but its name and
//! count: adding a shard adds points and moves only the keys those points now own (about
//! 1/(N+1) of them, all to the new shard); removing one moves only its keys; giving a shard
//! more vnodes moves keys only to it. A key belongs to the first point at or after its
//! position, going round.
//!
//! [`Ring::moves`] lists the arcs of positions whose owner differs between two rings, as
//! ranges that never wrap (`start < position <= end`), which is what a rebalance copies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest position: positions are in `0..=MAX_POSITION` (63 bits).
pub const MAX_POSITION: u64 = i64::MAX as u64;

/// Most vnodes one shard may have.
pub const MAX_VNODES: u32 = 4096;

/// Most shards in one ring.
pub const MAX_SHARDS: usize = 1024;

/// The position of `key` on every ring: the first 8 bytes of its BLAKE3 digest
/// (little-endian), shifted to 63 bits.
pub fn ring_hash(key: &[u8]) -> u64 {
    let digest = blake3::hash(key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first) >> 1
}

/// One shard of a ring's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Its name (1 to 64 of `A-Z a-z 0-9 . _ -`): what its vnodes are hashed from.
    pub name: String,
    /// Its virtual nodes (1 to [`MAX_VNODES`]): its share of the keys is about its share of
    /// all vnodes.
    pub vnodes: u32,
}

/// Why a spec is not a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// No shard.
    #[error("a ring needs at least one shard")]
    Empty,
    /// Too many shards.
    #[error("a ring has at most {MAX_SHARDS} shards")]
    TooManyShards,
    /// A name is not allowed.
    #[error("shard name {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// The same name twice.
    #[error("shard {0:?} appears twice")]
    Duplicate(String),
    /// A vnode count out of range.
    #[error("shard {0:?} must have 1 to {MAX_VNODES} vnodes")]
    BadVnodes(String),
}

/// A consistent-hash ring. Cheap lookups (a binary search); build it once per spec.
#[derive(Clone, PartialEq, Eq)]
pub struct Ring {
    spec: Vec<ShardSpec>,
    /// `(position, shard index)` sorted by position, then by shard name.
    points: Vec<(u64, u16)>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("spec", &self.spec)
            .field("points", &self.points.len())
            .finish()
    }
}

/// An arc of positions that changes owner: `start < position <= end`, never wrapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Positions after this one (ignored when `from_zero`)...
    pub start: u64,
    /// ...up to and including this one.
    pub end: u64,
    /// `true` when the arc includes position 0 (`0 <= position <= end`): the one arc a
    /// strict lower bound cannot express.
    pub from_zero: bool,
    /// The shard that owns it on the old ring.
    pub from: String,
    /// The shard that owns it on the new ring.
    pub to: String,
}

impl Move {
    /// Whether `position` is in this arc.
    pub fn contains(&self, position: u64) -> bool {
        (self.from_zero || position > self.start) && position <= self.end
    }

    /// How many positions it covers.
    pub fn width(&self) -> u64 {
        if self.from_zero {
            self.end + 1
        } else {
            self.end - self.start
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Ring {
    /// The ring of `spec` (its order does not matter).
    pub fn new(spec: &[ShardSpec]) -> Result<Ring, RingError> {
        if spec.is_empty() {
            return Err(RingError::Empty);
        }
        if spec.len() > MAX_SHARDS {
            return Err(RingError::TooManyShards);
        }
        let mut sorted: Vec<ShardSpec> = spec.to_vec();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, s) in sorted.iter().enumerate() {
            if !valid_name(&s.name) {
                return Err(RingError::BadName(s.name.clone()));
            }
            if !(1..=MAX_VNODES).contains(&s.vnodes) {
                return Err(RingError::BadVnodes(s.name.clone()));
            }
            if i > 0 && sorted[i - 1].name == s.name {
                return Err(RingError::Duplicate(s.name.clone()));
            }
        }
        let mut points = Vec::with_capacity(sorted.iter().map(|s| s.vnodes as usize).sum());
        for (index, s) in sorted.iter().enumerate() {
            let index = u16::try_from(index).map_err(|_| RingError::TooManyShards)?;
            for v in 0..s.vnodes {
                points.push((ring_hash(format!("{}#{v}", s.name).as_bytes()), index));
            }
        }
        // Ties (two vnodes at one position) go to the first name: the sort is total.
        points.sort_unstable();
        Ok(Ring {
            spec: sorted,
            points,
        })
    }

    /// `count` shards named `prefix0`, `prefix1`, ... with `vnodes` each.
    pub fn uniform(prefix: &str, count: usize, vnodes: u32) -> Result<Ring, RingError> {
        let spec: Vec<ShardSpec> = (0..count)
            .map(|i| ShardSpec {
                name: format!("{prefix}{i}"),
                vnodes,
            })
            .collect();
        Ring::new(&spec)
    }

    /// Its spec, by shard name.
    pub fn spec(&self) -> &[ShardSpec] {
        &self.spec
    }

    /// The shard names, sorted.
    pub fn shards(&self) -> impl Iterator<Item = &str> {
        self.spec.iter().map(|s| s.name.as_str())
    }

    /// The ring with shard `name` added (or its vnode count changed) to `vnodes`.
    pub fn with_shard(&self, name: &str, vnodes: u32) -> Result<Ring, RingError> {
        let mut spec: Vec<ShardSpec> = self
            .spec
            .iter()
            .filter(|s| s.name != name)
            .cloned()
            .collect();
        spec.push(ShardSpec {
            name: name.to_owned(),
            vnodes,
        });
        Ring::new(&spec)
    }

    /// The ring without shard `name` (its keys go to the next points round the ring).
    pub fn without_shard(&self, name: &str) -> Result<Ring, RingError> {
        let spec: Vec<ShardSpec> = self
            .spec
            .iter()
            .filter(|s| s.name != name)
            .cloned()
            .collect();
        Ring::new(&spec)
    }

    /// The shard that owns `position`.
    pub fn shard_at(&self, position: u64) -> &str {
        let i = self.points.partition_point(|&(p, _)| p < position);
        let (_, shard) = self.points[if i == self.points.len() { 0 } else { i }];
        &self.spec[usize::from(shard)].name
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> &str {
        self.shard_at(ring_hash(key))
    }

    /// Every shard once, in the order met going round the ring from `position`: the owner of
    /// `position` first, then the owners of the following points. What a bounded-load lookup
    /// walks when the owner is full ([`crate::balance::hash`]).
    pub fn walk(&self, position: u64) -> impl Iterator<Item = &str> + '_ {
        let start = self.points.partition_point(|&(p, _)| p < position);
        let n = self.points.len();
        let mut seen = vec![false; self.spec.len()];
        (0..n).filter_map(move |k| {
            let (_, shard) = self.points[(start + k) % n];
            let shard = usize::from(shard);
            if seen[shard] {
                None
            } else {
                seen[shard] = true;
                Some(self.spec[shard].name.as_str())
            }
        })
    }

    /// Each shard's share of all positions (0..1), by name.
    pub fn shares(&self) -> BTreeMap<&str, f64> {
        let mut shares: BTreeMap<&str, f64> = self.shards().map(|s| (s, 0.0)).collect();
        for arc in self.arcs() {
            *shares.entry(arc.2).or_default() += arc_width(arc.0, arc.1) as f64;
        }
        let total = MAX_POSITION as f64 + 1.0;
        for v in shares.values_mut() {
            *v /= total;
        }
        shares
    }

    /// The ring cut at every point: `(start, end, owner)` arcs with `start < p <= end`
    /// (`start = None` for the first arc, which includes 0), plus the wrap arc after the last
    /// point, owned by the first point.
    fn arcs(&self) -> Vec<(Option<u64>, u64, &str)> {
        let mut arcs = Vec::with_capacity(self.points.len() + 1);
        let mut prev: Option<u64> = None;
        for &(p, shard) in &self.points {
            if prev != Some(p) {
                arcs.push((prev, p, self.spec[usize::from(shard)].name.as_str()));
            }
            prev = Some(p);
        }
        if let Some(last) = prev
            && last < MAX_POSITION
        {
            arcs.push((Some(last), MAX_POSITION, self.shard_at(0)));
        }
        arcs
    }

    /// The arcs of positions whose owner differs between `self` (old) and `to` (new), merged
    /// where adjacent with the same pair of owners, in position order.
    pub fn moves(&self, to: &Ring) -> Vec<Move> {
        // Every point of either ring is a boundary; between two boundaries both owners are
        // constant.
        let mut cuts: Vec<u64> = self
            .points
            .iter()
            .chain(&to.points)
            .map(|&(p, _)| p)
            .collect();
        cuts.push(MAX_POSITION);
        cuts.sort_unstable();
        cuts.dedup();
        let mut moves: Vec<Move> = Vec::new();
        let mut prev: Option<u64> = None;
        for end in cuts {
            let (old, new) = (self.shard_at(end), to.shard_at(end));
            if old != new {
                match moves.last_mut() {
                    Some(m) if prev == Some(m.end) && m.from == old && m.to == new => m.end = end,
                    _ => moves.push(Move {
                        start: prev.unwrap_or(0),
                        end,
                        from_zero: prev.is_none(),
                        from: old.to_owned(),
                        to: new.to_owned(),
                    }),
                }
            }
            prev = Some(end);
        }
        moves
    }
}

fn arc_width(start: Option<u64>, end: u64) -> u64 {
    match start {
        None => end + 1,
        Some(s) => end - s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: the owner of `position` by a linear scan of every vnode.
    fn owner_by_scan(ring: &Ring, position: u64) -> String {
        let mut best: Option<(u64, &str)> = None;
        let mut first: Option<(u64, &str)> = None;
        for s in ring.spec() {
            for v in 0..s.vnodes {
                let p = ring_hash(format!("{}#{v}", s.name).as_bytes());
                let cand = (p, s.name.as_str());
                if first.is_none_or(|f| cand < f) {
                    first = Some(cand);
                }
                if p >= position && best.is_none_or(|b| cand < b) {
                    best = Some(cand);
                }
            }
        }
        best.or(first).unwrap().1.to_owned()
    }

    fn keys(n: usize, salt: u64) -> Vec<u64> {
        (0..n)
            .map(|i| ring_hash(format!("order-{salt}-{i}").as_bytes()))
            .collect()
    }

    /// `ring_hash(b"order-1")`, as computed when the ring was written.
    const PINNED: u64 = 6_518_807_043_586_952_585;

    #[test]
    fn the_hash_is_fixed_forever() {
        // Stored rows carry their position: this value must never change.
        assert_eq!(ring_hash(b"order-1"), PINNED);
        assert!(ring_hash(b"order-1") <= MAX_POSITION);
    }

    #[test]
    fn bad_specs_are_named() {
        assert_eq!(Ring::new(&[]), Err(RingError::Empty));
        let s = |name: &str, vnodes| ShardSpec {
            name: name.into(),
            vnodes,
        };
        assert_eq!(
            Ring::new(&[s("a b", 1)]),
            Err(RingError::BadName("a b".into()))
        );
        assert_eq!(
            Ring::new(&[s("a", 0)]),
            Err(RingError::BadVnodes("a".into()))
        );
        assert_eq!(
            Ring::new(&[s("a", 1), s("a", 2)]),
            Err(RingError::Duplicate("a".into()))
        );
    }

    #[test]
    fn one_shard_owns_everything() {
        let ring = Ring::uniform("s", 1, 8).unwrap();
        for p in [0, 1, MAX_POSITION / 2, MAX_POSITION] {
            assert_eq!(ring.shard_at(p), "s0");
        }
        assert!((ring.shares()["s0"] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn two_to_three_shards_moves_about_a_third_all_to_the_new_one() {
        let two = Ring::uniform("s", 2, 128).unwrap();
        let three = two.with_shard("s2", 128).unwrap();
        let keys = keys(100_000, 7);
        let moved: Vec<u64> = keys
            .iter()
            .copied()
            .filter(|&k| two.shard_at(k) != three.shard_at(k))
            .collect();
        let fraction = moved.len() as f64 / keys.len() as f64;
        assert!((0.28..0.39).contains(&fraction), "moved {fraction}");
        assert!(moved.iter().all(|&k| three.shard_at(k) == "s2"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn lookup_matches_a_linear_scan(n in 1usize..6, vnodes in 1u32..40, positions in prop::collection::vec(0..=MAX_POSITION, 1..50)) {
            let ring = Ring::uniform("s", n, vnodes).unwrap();
            for p in positions {
                prop_assert_eq!(ring.shard_at(p), owner_by_scan(&ring, p));
            }
        }

        #[test]
        fn a_walk_starts_at_the_owner_and_names_every_shard_once(n in 1usize..8, vnodes in 1u32..32, position in 0..=MAX_POSITION) {
            let ring = Ring::uniform("s", n, vnodes).unwrap();
            let walk: Vec<&str> = ring.walk(position).collect();
            prop_assert_eq!(walk[0], ring.shard_at(position));
            let mut sorted = walk.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), n);
            prop_assert_eq!(walk.len(), n);
        }

        #[test]
        fn the_spec_order_does_not_matter(n in 1usize..8, vnodes in 1u32..64) {
            let ring = Ring::uniform("s", n, vnodes).unwrap();
            let mut reversed = ring.spec().to_vec();
            reversed.reverse();
            prop_assert_eq!(Ring::new(&reversed).unwrap(), ring);
        }

        #[test]
        fn adding_a_shard_moves_about_its_share_and_only_to_it(n in 1usize..8, salt in any::<u64>()) {
            let old = Ring::uniform("s", n, 128).unwrap();
            let new = old.with_shard("new", 128).unwrap();
            let keys = keys(20_000, salt);
            let mut moved = 0;
            for &k in &keys {
                if old.shard_at(k) != new.shard_at(k) {
                    moved += 1;
                    prop_assert_eq!(new.shard_at(k), "new");
                }
            }
            let expected = 1.0 / (n as f64 + 1.0);
            let fraction = moved as f64 / keys.len() as f64;
            prop_assert!((fraction - expected).abs() < 0.35 * expected, "moved {} expected {}", fraction, expected);
        }

        #[test]
        fn removing_a_shard_moves_only_its_keys(n in 2usize..8, gone in 0usize..8, salt in any::<u64>()) {
            let old = Ring::uniform("s", n, 64).unwrap();
            let name = format!("s{}", gone % n);
            let new = old.without_shard(&name).unwrap();
            for k in keys(5_000, salt) {
                if old.shard_at(k) != name {
                    prop_assert_eq!(old.shard_at(k), new.shard_at(k));
                }
            }
        }

        #[test]
        fn moves_are_exactly_the_positions_that_change_owner(n in 1usize..6, vnodes in 1u32..64, change in 0u8..3, salt in any::<u64>()) {
            let old = Ring::uniform("s", n, vnodes).unwrap();
            let new = match change {
                0 => old.with_shard("new", vnodes).unwrap(),
                1 if n > 1 => old.without_shard("s0").unwrap(),
                _ => old.with_shard("s0", vnodes * 2).unwrap(),
            };
            let moves = old.moves(&new);
            for w in moves.windows(2) {
                prop_assert!(w[0].end <= w[1].start, "sorted and disjoint");
            }
            let mut probes = keys(3_000, salt);
            // The edges of every move, where an off-by-one would show.
            for m in &moves {
                probes.extend([m.start, m.start.saturating_add(1), m.end, m.end.saturating_add(1).min(MAX_POSITION)]);
            }
            probes.extend([0, MAX_POSITION]);
            for p in probes {
                let found = moves.iter().find(|m| m.contains(p));
                match found {
                    Some(m) => {
                        prop_assert_eq!(old.shard_at(p), m.from.as_str());
                        prop_assert_eq!(new.shard_at(p), m.to.as_str());
                    }
                    None => prop_assert_eq!(old.shard_at(p), new.shard_at(p)),
                }
            }
        }

        #[test]
        fn shares_add_up_and_are_balanced(n in 2usize..9) {
            let ring = Ring::uniform("s", n, 128).unwrap();
            let shares = ring.shares();
            let total: f64 = shares.values().sum();
            prop_assert!((total - 1.0).abs() < 1e-6);
            let fair = 1.0 / n as f64;
            for (shard, share) in shares {
                prop_assert!(share > 0.6 * fair && share < 1.45 * fair, "{} has {}", shard, share);
            }
        }
    }
}
