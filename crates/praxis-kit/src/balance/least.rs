//! Least connections: the eligible instance with the fewest requests in flight.

/// The eligible index in `0..n` with the smallest `load`, scanning from `start` so that ties go
/// to the first one met (a caller that moves `start` on each pick spreads ties round the pool);
/// `None` when no index is eligible.
pub fn least_loaded(
    n: usize,
    start: usize,
    eligible: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> u64,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let mut best: Option<(u64, usize)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if !eligible(i) {
            continue;
        }
        let l = load(i);
        if best.is_none_or(|(b, _)| l < b) {
            best = Some((l, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn picks_a_minimum(loads in prop::collection::vec(0u64..5, 1..10), mask in prop::collection::vec(any::<bool>(), 10), start in 0usize..20) {
            let n = loads.len();
            let min = (0..n).filter(|&i| mask[i]).map(|i| loads[i]).min();
            match least_loaded(n, start, |i| mask[i], |i| loads[i]) {
                Some(i) => {
                    prop_assert!(mask[i]);
                    prop_assert_eq!(Some(loads[i]), min);
                }
                None => prop_assert_eq!(min, None),
            }
        }

        #[test]
        fn ties_rotate_with_start(n in 1usize..10) {
            let picked: Vec<usize> = (0..n).filter_map(|s| least_loaded(n, s, |_| true, |_| 0)).collect();
            prop_assert_eq!(picked, (0..n).collect::<Vec<_>>());
        }
    }
}
