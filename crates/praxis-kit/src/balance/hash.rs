//! Consistent hashing with bounded load (Mirrokni, Thorup and Zadimoghaddam, "Consistent
//! Hashing with Bounded Loads", 2016; HAProxy's `hash-balance-factor`): a key goes to the
//! instance that owns it on the [`Ring`] unless that instance already carries
//! `ceil(factor × (total + 1) / n)` requests, in which case it goes to the next instance round
//! the ring that is below the bound. Keys stay where they are while loads are even; a hot key
//! spills over to the same neighbour every time instead of overloading its owner.
//!
//! Instances are named on the ring by a stable name (the gateway uses their address), so adding
//! one moves only the keys its points take, about `1/(n+1)` of them.

use crate::ring::{Ring, RingError, ShardSpec, ring_hash};

/// A ring over named instances that answers with their index.
#[derive(Debug, Clone)]
pub struct HashRing {
    ring: Ring,
    /// The index of each instance, by its name on the ring.
    index: std::collections::HashMap<String, usize>,
}

/// The most requests one instance may carry before keys spill over: `ceil(factor × (total + 1)
/// / n)`, at least 1 (`factor` below 1 is taken as 1).
pub fn capacity(total_load: u64, n: usize, factor: f64) -> u64 {
    if n == 0 {
        return 0;
    }
    let bound = (factor.max(1.0) * (total_load as f64 + 1.0) / n as f64).ceil();
    (bound as u64).max(1)
}

impl HashRing {
    /// A ring over `names` (index `i` is `names[i]`), each with `vnodes` points. Names follow
    /// the ring's rules (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub fn new(names: &[String], vnodes: u32) -> Result<Self, RingError> {
        let spec: Vec<ShardSpec> = names
            .iter()
            .map(|name| ShardSpec {
                name: name.clone(),
                vnodes,
            })
            .collect();
        let ring = Ring::new(&spec)?;
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(Self { ring, index })
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The instance that owns `key`, ignoring load and eligibility.
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        self.index.get(self.ring.shard_of(key)).copied()
    }

    /// The first eligible instance round the ring from `key` whose `load` is below
    /// [`capacity`]`(total, n, factor)`, where `total` is the sum of the eligible loads; the
    /// first eligible one if every one is at the bound; `None` if none is eligible.
    pub fn pick(
        &self,
        key: &[u8],
        factor: f64,
        eligible: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> u64,
    ) -> Option<usize> {
        let n = self.index.len();
        let total: u64 = (0..n).filter(|&i| eligible(i)).map(&load).sum();
        let eligible_count = (0..n).filter(|&i| eligible(i)).count();
        let cap = capacity(total, eligible_count, factor);
        let mut first = None;
        for name in self.ring.walk(ring_hash(key)) {
            let Some(&i) = self.index.get(name) else {
                continue;
            };
            if !eligible(i) {
                continue;
            }
            if load(i) < cap {
                return Some(i);
            }
            first.get_or_insert(i);
        }
        first
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}_80")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn unloaded_keys_go_to_their_owner(n in 1usize..8, keys in prop::collection::vec(any::<u64>(), 1..50)) {
            let ring = HashRing::new(&names(n), 64).unwrap();
            for k in keys {
                let key = k.to_le_bytes();
                prop_assert_eq!(ring.pick(&key, 1.25, |_| true, |_| 0), ring.owner(&key));
            }
        }

        #[test]
        fn loads_stay_under_the_bound(n in 2usize..8, keys in prop::collection::vec(0u64..20, 1..300), factor in 1.0f64..2.0) {
            // Requests that never finish: every instance's load stays within the bound of the
            // moment it was chosen, even when all keys are the same few hot ones.
            let ring = HashRing::new(&names(n), 64).unwrap();
            let mut loads = vec![0u64; n];
            for k in keys {
                let total: u64 = loads.iter().sum();
                let i = ring.pick(&k.to_le_bytes(), factor, |_| true, |i| loads[i]).unwrap();
                prop_assert!(loads[i] < capacity(total, n, factor));
                loads[i] += 1;
            }
        }

        #[test]
        fn an_ineligible_owner_hands_its_keys_to_one_neighbour_each(n in 2usize..8, gone in 0usize..8, keys in prop::collection::vec(any::<u64>(), 1..100)) {
            let ring = HashRing::new(&names(n), 64).unwrap();
            let gone = gone % n;
            for k in keys {
                let key = k.to_le_bytes();
                let picked = ring.pick(&key, 1.25, |i| i != gone, |_| 0).unwrap();
                prop_assert!(picked != gone);
                if ring.owner(&key) != Some(gone) {
                    prop_assert_eq!(Some(picked), ring.owner(&key));
                }
            }
        }
    }

    #[test]
    fn adding_an_instance_moves_about_a_quarter_of_keys_from_three() {
        let three = HashRing::new(&names(3), 128).unwrap();
        let four = HashRing::new(&names(4), 128).unwrap();
        let keys: Vec<[u8; 8]> = (0u64..10_000).map(u64::to_le_bytes).collect();
        let moved = keys
            .iter()
            .filter(|k| three.owner(&k[..]) != four.owner(&k[..]))
            .count();
        let fraction = moved as f64 / keys.len() as f64;
        assert!((0.18..0.32).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn capacity_is_at_least_one() {
        assert_eq!(capacity(0, 3, 1.25), 1);
        assert_eq!(capacity(10, 2, 1.0), 6);
        assert_eq!(capacity(5, 0, 1.25), 0);
    }
}
