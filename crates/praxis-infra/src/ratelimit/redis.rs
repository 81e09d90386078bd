//! The Redis backend: one Lua script per algorithm, one `EVALSHA` per decision.
//!
//! Each script reads the server clock (`TIME`), loads the key's state, applies the kit's rule
//! in integer microseconds, writes the state back only when the hits are allowed (all or
//! nothing), and sets `PEXPIRE` to the time after which the state is fresh again, so idle keys
//! disappear by themselves. Scripts run atomically, so concurrent checks from any number of
//! processes serialize on the server: a burst of `3N` against a limit of `N` allows exactly
//! `N`, whichever process sends them.
//!
//! Differences from the in-process kit: times are microseconds (the kit uses nanoseconds;
//! periods are rounded up to whole microseconds) of the Redis server's wall clock, and windows
//! are aligned on multiples of the period since the Unix epoch. The arithmetic stays exact
//! while `burst * period_us` (token bucket, GCRA) and `limit * period_us` (sliding window) stay
//! below 2^53 (about 9 * 10^15: 1,000,000 per day is 8.6 * 10^16 and is not exact, 100,000 per
//! day is); beyond that Lua's doubles round and decisions may differ from the kit by a hit.
//! Token bucket runs the GCRA script (the kit proves both decide the same), so its key holds
//! one value.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::Script;
use ::redis::aio::ConnectionManager;
use praxis_kit::ratelimit::{Algorithm, Decision};

use super::local::LocalLimiter;
use super::{
    OnStoreFailure, RedisLimiterOptions, Rule, STORE_ERRORS_TOTAL, STORE_FALLBACKS_TOTAL, Source,
    Verdict, failed_closed, failed_open,
};

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

static GCRA: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/gcra.lua")));
static FIXED_WINDOW: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/fixed_window.lua")));
static SLIDING_LOG: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/sliding_log.lua")));
static SLIDING_WINDOW: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/sliding_window.lua")));

fn script_for(algorithm: Algorithm) -> &'static Script {
    match algorithm {
        Algorithm::TokenBucket | Algorithm::Gcra => &GCRA,
        Algorithm::FixedWindow => &FIXED_WINDOW,
        Algorithm::SlidingLog => &SLIDING_LOG,
        Algorithm::SlidingWindow => &SLIDING_WINDOW,
    }
}

pub(crate) struct RedisLimiter {
    conn: ConnectionManager,
    /// `<prefix>:rl:`
    namespace: String,
    options: RedisLimiterOptions,
    /// Decides when Redis fails and the caller chose [`OnStoreFailure::Local`].
    fallback: LocalLimiter,
    origin: Instant,
    /// Until when (ns since `origin`) decisions skip Redis; 0 when Redis is considered up.
    down_until: AtomicU64,
}

/// Why a call to Redis gave no decision.
enum Failure {
    Timeout,
    Error(String),
}

impl RedisLimiter {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str, options: RedisLimiterOptions) -> Self {
        Self {
            conn,
            namespace: format!("{prefix}:rl:"),
            options,
            fallback: LocalLimiter::new(),
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        self.namespace.trim_end_matches(":rl:")
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The Redis key of `key` under `rule`: `<prefix>:rl:<algorithm>:<limit>:<period_us>:<burst>:<key>`.
    fn redis_key(&self, key: &str, rule: &Rule, period_us: u64) -> String {
        let q = &rule.quota;
        format!(
            "{}{}:{}:{}:{}:{}",
            self.namespace,
            rule.algorithm.name(),
            q.limit(),
            period_us,
            q.burst(),
            key
        )
    }

    pub(crate) async fn check(
        &self,
        key: &str,
        rule: &Rule,
        hits: u64,
        on_failure: OnStoreFailure,
    ) -> Verdict {
        let down_until = self.down_until.load(Ordering::Relaxed);
        if down_until != 0 && self.now_ns() < down_until {
            return self.fall_back(key, rule, hits, on_failure);
        }
        match self.call(key, rule, hits).await {
            Ok(decision) => {
                if down_until != 0 {
                    self.down_until.store(0, Ordering::Relaxed);
                    tracing::info!(prefix = self.prefix(), "rate-limit store answers again");
                }
                Verdict {
                    decision,
                    source: Source::Shared,
                }
            }
            Err(failure) => {
                let (kind, detail) = match &failure {
                    Failure::Timeout => (
                        "timeout",
                        format!("no answer within {:?}", self.options.timeout),
                    ),
                    Failure::Error(e) => ("error", e.clone()),
                };
                metrics::counter!(STORE_ERRORS_TOTAL, "kind" => kind).increment(1);
                if !self.options.cooldown.is_zero() {
                    let cooldown =
                        u64::try_from(self.options.cooldown.as_nanos()).unwrap_or(u64::MAX);
                    let until = self.now_ns().saturating_add(cooldown).max(1);
                    self.down_until.store(until, Ordering::Relaxed);
                }
                if down_until == 0 {
                    tracing::warn!(prefix = self.prefix(), error = %detail, mode = on_failure.name(),
                        "rate-limit store failed; deciding without it");
                } else {
                    tracing::debug!(prefix = self.prefix(), error = %detail, "rate-limit store still failing");
                }
                self.fall_back(key, rule, hits, on_failure)
            }
        }
    }

    async fn call(&self, key: &str, rule: &Rule, hits: u64) -> Result<Decision, Failure> {
        // At least 1 us: the kit's periods are at least 1 ns.
        let period_us = rule.quota.period_ns().div_ceil(1000);
        let redis_key = self.redis_key(key, rule, period_us);
        let mut invocation = script_for(rule.algorithm).key(redis_key);
        invocation
            .arg(rule.quota.limit())
            .arg(period_us)
            .arg(rule.quota.burst())
            .arg(hits);
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(
            self.options.timeout,
            invocation.invoke_async::<Vec<i64>>(&mut conn),
        )
        .await;
        match answer {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(Failure::Error(e.to_string())),
            Ok(Ok(values)) => decode(rule, &values)
                .ok_or_else(|| Failure::Error(format!("unexpected script answer {values:?}"))),
        }
    }

    fn fall_back(&self, key: &str, rule: &Rule, hits: u64, on_failure: OnStoreFailure) -> Verdict {
        metrics::counter!(STORE_FALLBACKS_TOTAL, "mode" => on_failure.name()).increment(1);
        match on_failure {
            OnStoreFailure::Open => Verdict {
                decision: failed_open(rule, hits),
                source: Source::FailedOpen,
            },
            OnStoreFailure::Closed => Verdict {
                decision: failed_closed(rule),
                source: Source::FailedClosed,
            },
            OnStoreFailure::Local => Verdict {
                decision: self.fallback.check(key, rule, hits),
                source: Source::Local,
            },
        }
    }
}

/// `{allowed, remaining, reset_us, retry_us | -1}` as a [`Decision`].
fn decode(rule: &Rule, values: &[i64]) -> Option<Decision> {
    let &[allowed, remaining, reset_us, retry_us] = values else {
        return None;
    };
    let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    let allowed = match allowed {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(Decision {
        allowed,
        limit: rule.quota.limit(),
        remaining: u64::try_from(remaining).unwrap_or(0),
        reset_after: micros(reset_us),
        // A denial always waits at least one microsecond.
        retry_after: (!allowed && retry_us >= 0).then(|| micros(retry_us.max(1))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use praxis_kit::ratelimit::Quota;

    #[test]
    fn decodes_script_answers() {
        let rule = Rule::new(
            Algorithm::FixedWindow,
            Quota::new(5, Duration::from_secs(1)).expect("valid"),
        );
        let d = decode(&rule, &[1, 4, 900_000, -1]).expect("decodes");
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (5, 4));
        assert_eq!(d.reset_after, Duration::from_millis(900));
        assert_eq!(d.retry_after, None);
        let d = decode(&rule, &[0, 0, 10, 0]).expect("decodes");
        assert_eq!(d.retry_after, Some(Duration::from_micros(1)));
        let d = decode(&rule, &[0, 0, 10, -1]).expect("decodes");
        assert_eq!(d.retry_after, None, "never allowed");
        assert!(decode(&rule, &[2, 0, 0, 0]).is_none());
        assert!(decode(&rule, &[1, 0, 0]).is_none());
    }

    #[test]
    fn scripts_are_distinct_per_window_shape() {
        assert_eq!(
            script_for(Algorithm::TokenBucket).get_hash(),
            script_for(Algorithm::Gcra).get_hash()
        );
        let hashes: std::collections::HashSet<_> = [
            Algorithm::Gcra,
            Algorithm::FixedWindow,
            Algorithm::SlidingLog,
            Algorithm::SlidingWindow,
        ]
        .into_iter()
        .map(|a| script_for(a).get_hash().to_owned())
        .collect();
        assert_eq!(hashes.len(), 4);
    }
}
