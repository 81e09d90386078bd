//! nginx's smooth weighted round robin: every pick adds each eligible instance's weight to its
//! current score, takes the highest score and subtracts the total weight from it. Over a cycle
//! of `sum(weights)` picks each instance is chosen exactly `weight` times, interleaved (5, 1, 1
//! gives `a a b a c a a`, not `a a a a a b c`).

/// Smooth weighted round robin over `0..n`, weights changeable at runtime.
#[derive(Debug, Clone)]
pub struct SmoothWeighted {
    weights: Vec<u32>,
    current: Vec<i64>,
}

impl SmoothWeighted {
    /// A picker with these weights (0 takes an instance out of rotation).
    pub fn new(weights: Vec<u32>) -> Self {
        let current = vec![0; weights.len()];
        Self { weights, current }
    }

    /// The weights.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Sets the weight of instance `i` (ignored when out of range) and restarts the cycle, so
    /// the next `sum(weights)` picks follow the new weights exactly.
    pub fn set_weight(&mut self, i: usize, weight: u32) {
        if let Some(w) = self.weights.get_mut(i) {
            *w = weight;
            self.current.iter_mut().for_each(|c| *c = 0);
        }
    }

    /// Sets every weight at once (a list of another length is ignored) and restarts the cycle.
    pub fn set_weights(&mut self, weights: &[u32]) {
        if weights.len() == self.weights.len() {
            self.weights.copy_from_slice(weights);
            self.current.iter_mut().for_each(|c| *c = 0);
        }
    }

    /// The next eligible instance with a weight above zero; `None` when there is none.
    pub fn pick(&mut self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            let w = i64::from(self.weights[i]);
            if w == 0 || !eligible(i) {
                continue;
            }
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}

/// Weights derived from live load ("dynamic weights"): instance `i` gets `base[i] × resolution
/// × min(cost) / cost[i]`, rounded, at least 1 (0 for a base of 0), where a cost is what a balancer compares
/// (latency × (in flight + 1)). Equal costs give weights in proportion to `base`; an instance
/// twice as costly gets half the weight. Costs that are not positive numbers count as the
/// cheapest.
pub fn weights_from_costs(base: &[u32], costs: &[f64], resolution: u32) -> Vec<u32> {
    let valid = |c: f64| c.is_finite() && c > 0.0;
    let cheapest = costs
        .iter()
        .copied()
        .filter(|&c| valid(c))
        .fold(f64::INFINITY, f64::min);
    base.iter()
        .enumerate()
        .map(|(i, &b)| {
            if b == 0 {
                return 0;
            }
            let cost = costs.get(i).copied().filter(|&c| valid(c));
            let ratio = match cost {
                Some(c) if cheapest.is_finite() => cheapest / c,
                _ => 1.0,
            };
            let w = (f64::from(b) * f64::from(resolution.max(1)) * ratio).round();
            (w.min(f64::from(u32::MAX)) as u32).max(1)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nginx_order_for_5_1_1() {
        let mut p = SmoothWeighted::new(vec![5, 1, 1]);
        let order: Vec<usize> = (0..7).filter_map(|_| p.pick(|_| true)).collect();
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0]);
    }

    proptest! {
        #[test]
        fn cheaper_instances_never_weigh_less(costs in prop::collection::vec(0.001f64..1000.0, 1..8)) {
            let base = vec![1; costs.len()];
            let w = weights_from_costs(&base, &costs, 100);
            for i in 0..costs.len() {
                prop_assert!(w[i] >= 1 && w[i] <= 100);
                for j in 0..costs.len() {
                    if costs[i] < costs[j] {
                        prop_assert!(w[i] >= w[j], "{:?} -> {:?}", costs, w);
                    }
                }
            }
        }

        #[test]
        fn equal_costs_keep_the_base_proportions(base in prop::collection::vec(0u32..10, 1..8), cost in 0.1f64..100.0) {
            let costs = vec![cost; base.len()];
            let w = weights_from_costs(&base, &costs, 10);
            let expected: Vec<u32> = base.iter().map(|&b| b * 10).collect();
            prop_assert_eq!(w, expected);
        }

        #[test]
        fn a_cycle_gives_each_its_weight(weights in prop::collection::vec(0u32..20, 1..8), cycles in 1usize..4) {
            let total: u32 = weights.iter().sum();
            let mut p = SmoothWeighted::new(weights.clone());
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..(total as usize * cycles) {
                let i = p.pick(|_| true).unwrap_or(usize::MAX);
                prop_assert!(i < weights.len());
                counts[i] += 1;
            }
            for (c, w) in counts.iter().zip(&weights) {
                prop_assert_eq!(*c, w * cycles as u32);
            }
        }

        #[test]
        fn prefixes_stay_close_to_the_shares(weights in prop::collection::vec(1u32..20, 1..8), picks in 1usize..300) {
            let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
            let mut p = SmoothWeighted::new(weights.clone());
            let mut counts = vec![0f64; weights.len()];
            for t in 1..=picks {
                let i = p.pick(|_| true).unwrap_or(0);
                counts[i] += 1.0;
                for (c, w) in counts.iter().zip(&weights) {
                    let ideal = t as f64 * f64::from(*w) / total;
                    prop_assert!((c - ideal).abs() < weights.len() as f64, "{} vs {}", c, ideal);
                }
            }
        }

        #[test]
        fn a_changed_weight_holds_from_the_next_cycle(weights in prop::collection::vec(1u32..10, 2..6), i in 0usize..6, w in 0u32..10, before in 0usize..30) {
            let mut p = SmoothWeighted::new(weights.clone());
            for _ in 0..before {
                p.pick(|_| true);
            }
            let i = i % weights.len();
            p.set_weight(i, w);
            let total: u32 = p.weights().iter().sum();
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..total {
                if let Some(k) = p.pick(|_| true) {
                    counts[k] += 1;
                }
            }
            prop_assert_eq!(counts.as_slice(), p.weights());
        }

        #[test]
        fn ineligible_and_zero_weight_are_never_picked(weights in prop::collection::vec(0u32..5, 1..8), mask in prop::collection::vec(any::<bool>(), 8)) {
            let mut p = SmoothWeighted::new(weights.clone());
            for _ in 0..50 {
                match p.pick(|i| mask[i]) {
                    Some(i) => prop_assert!(mask[i] && weights[i] > 0),
                    None => prop_assert!((0..weights.len()).all(|i| !mask[i] || weights[i] == 0)),
                }
            }
        }
    }
}
