//! Hedged requests.

use std::time::Instant;

use metrics::counter;

use crate::metrics::{BUDGET_EXHAUSTED_TOTAL, HEDGES_TOTAL};
use crate::pool::{Members, Pool};

use super::attempt::{Attempt, Outgoing, Target, attempt, record};

/// A hedged request: when the first attempt has not answered after `hedge_after`, a second
/// goes to another instance (a retry for the budget), and the first answer that is not a
/// gateway error wins; the other attempt is cancelled, and its instance's latency estimate
/// learns how long it had taken so far.
pub(super) struct Hedge<'a> {
    pub(super) pool: &'a Pool,
    pub(super) members: &'a Members,
    pub(super) key: Option<&'a [u8]>,
    pub(super) target: &'a Target<'a>,
    pub(super) deadline: Instant,
    pub(super) per_try_timeout: std::time::Duration,
}

impl Hedge<'_> {
    /// Runs `first`, hedged after `after`; `tried` and the body are shared with the caller.
    pub(super) async fn run(
        &self,
        first: impl std::future::Future<Output = Attempt>,
        after: std::time::Duration,
        tried: &mut Vec<usize>,
        outgoing: &mut Outgoing,
    ) -> Attempt {
        let first_i = tried.last().copied().unwrap_or(0);
        let started = Instant::now();
        tokio::pin!(first);
        tokio::select! {
            done = &mut first => return done,
            _ = tokio::time::sleep(after) => {}
        }
        let pool = self.pool;
        let second_i = match pool.pick(self.members, self.key, tried) {
            Some(j)
                if j != first_i
                    && self.members.instances[j]
                        .breaker_refuses(pool.now_ms())
                        .is_none() =>
            {
                j
            }
            _ => return first.await,
        };
        if !pool.try_retry() {
            counter!(BUDGET_EXHAUSTED_TOTAL, "pool" => pool.name.clone()).increment(1);
            return first.await;
        }
        counter!(HEDGES_TOTAL, "pool" => pool.name.clone()).increment(1);
        tried.push(second_i);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let req = match self
            .target
            .request(&self.members.instances[second_i].addr, outgoing)
        {
            Ok(req) => req,
            Err(_) => return first.await,
        };
        let second = attempt(
            pool,
            self.members,
            second_i,
            req,
            self.per_try_timeout.min(remaining),
        );
        tokio::pin!(second);
        let (winner, loser_i) = tokio::select! {
            a = &mut first => {
                if a.is_gateway_error() {
                    record(pool, self.members, &a);
                    return second.await;
                }
                (a, second_i)
            }
            b = &mut second => {
                if b.is_gateway_error() {
                    record(pool, self.members, &b);
                    return first.await;
                }
                (b, first_i)
            }
        };
        // The loser is cancelled when its future drops; it was at least this slow.
        let so_far = if loser_i == first_i {
            started.elapsed()
        } else {
            winner.latency
        };
        pool.observe_latency(self.members, loser_i, so_far);
        winner
    }
}
