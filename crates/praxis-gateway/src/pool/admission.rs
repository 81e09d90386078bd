//! A pool's concurrency limit with a reserve for the premium tier: best-effort requests are
//! admitted while fewer than `limit - reserve` requests are in flight, premium ones while fewer
//! than `limit`. Under overload best-effort traffic is shed first and premium traffic keeps
//! `reserve` slots for itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The tier of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// May use the reserve.
    Premium,
    /// Shed first.
    BestEffort,
}

impl Tier {
    /// `premium` or `best_effort` (a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Premium => "premium",
            Tier::BestEffort => "best_effort",
        }
    }
}

/// Requests in flight to a pool against its limit.
#[derive(Debug)]
pub struct Admission {
    limit: u32,
    reserve: u32,
    in_flight: Arc<AtomicU32>,
}

/// A slot taken in a pool; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(Option<Arc<AtomicU32>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(n) = &self.0 {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Admission {
    /// A limit of `limit` requests (0: none) of which `reserve_share` (0 to 1, rounded down) is
    /// kept for premium requests.
    pub fn new(limit: u32, reserve_share: f64) -> Self {
        let reserve =
            ((f64::from(limit) * reserve_share.clamp(0.0, 1.0)).floor() as u32).min(limit);
        Self {
            limit,
            reserve,
            in_flight: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The slots kept for premium requests.
    pub fn reserve(&self) -> u32 {
        self.reserve
    }

    /// A slot for a request of `tier`, or `None` when it must be shed.
    pub fn try_admit(&self, tier: Tier) -> Option<Slot> {
        if self.limit == 0 {
            return Some(Slot(None));
        }
        let cap = match tier {
            Tier::Premium => self.limit,
            Tier::BestEffort => self.limit - self.reserve,
        };
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Some(self.in_flight.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_effort_stops_at_the_reserve_and_premium_at_the_limit() {
        let a = Admission::new(10, 0.3);
        let held: Vec<Slot> = (0..7)
            .filter_map(|_| a.try_admit(Tier::BestEffort))
            .collect();
        assert_eq!(held.len(), 7);
        assert!(a.try_admit(Tier::BestEffort).is_none());
        let premium: Vec<Slot> = (0..5).filter_map(|_| a.try_admit(Tier::Premium)).collect();
        assert_eq!(premium.len(), 3);
        drop(premium);
        assert_eq!(a.in_flight(), 7);
        drop(held);
        assert_eq!(a.in_flight(), 0);
    }

    #[test]
    fn no_limit_admits_everything() {
        let a = Admission::new(0, 0.5);
        assert!((0..1000).all(|_| a.try_admit(Tier::BestEffort).is_some()));
    }
}
