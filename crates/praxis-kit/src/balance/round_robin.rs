//! Round robin: each eligible instance in turn, skipping the others.

/// A round-robin cursor over `0..n`.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// A cursor that starts at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next eligible index at or after the cursor, going round `0..n`; `None` when no
    /// index is eligible. Eligible instances are chosen in cyclic order, so over any run of
    /// picks with the same eligible set their counts differ by at most one.
    pub fn pick(&mut self, n: usize, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let start = self.next % n;
        let chosen = (0..n).map(|k| (start + k) % n).find(|&i| eligible(i))?;
        self.next = (chosen + 1) % n;
        Some(chosen)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn eligible_ones_take_turns(mask in prop::collection::vec(any::<bool>(), 1..12), picks in 1usize..200) {
            let n = mask.len();
            let mut rr = RoundRobin::new();
            let mut counts = vec![0usize; n];
            for _ in 0..picks {
                match rr.pick(n, |i| mask[i]) {
                    Some(i) => {
                        prop_assert!(mask[i]);
                        counts[i] += 1;
                    }
                    None => prop_assert!(mask.iter().all(|m| !m)),
                }
            }
            let eligible: Vec<usize> = (0..n).filter(|&i| mask[i]).map(|i| counts[i]).collect();
            if let (Some(max), Some(min)) = (eligible.iter().max(), eligible.iter().min()) {
                prop_assert!(max - min <= 1, "{:?}", counts);
            }
        }
    }

    #[test]
    fn nothing_to_pick_from() {
        let mut rr = RoundRobin::new();
        assert_eq!(rr.pick(0, |_| true), None);
        assert_eq!(rr.pick(3, |_| false), None);
        assert_eq!(rr.pick(3, |i| i == 2), Some(2));
        assert_eq!(rr.pick(3, |_| true), Some(0));
    }
}
