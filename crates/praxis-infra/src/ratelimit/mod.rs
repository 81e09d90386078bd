//! Rate limiting as a port: one [`Limiter`], in-process or shared through Redis, deciding with
//! the pure algorithms of [`praxis_kit::ratelimit`].
//!
//! - [`Limiter::local`]: a sharded in-process map of per-key [`State`](praxis_kit::ratelimit::State)s
//!   on a monotonic clock. Exact within one process, and nothing is shared.
//! - [`Limiter::redis`]: one Lua script per algorithm, run with `EVALSHA` (falling back to
//!   `EVAL` once after a Redis restart): **one round trip per decision**, atomic on the server,
//!   timed with the server's clock (`TIME`), so every process sharing the Redis sees one limit
//!   whatever the process clocks say. When Redis fails or is slower than the call timeout
//!   (50 ms by default), the caller's [`OnStoreFailure`] decides: allow, deny, or decide with
//!   an in-process limiter kept by the Redis limiter.
//!
//! Keys are opaque strings chosen by callers (`login:ip:203.0.113.7`, `http:api:key:k1`); the
//! limiter namespaces them by algorithm and quota, so a changed rule starts from a fresh state
//! instead of reading a state of another shape.
//!
//! Metrics: `praxis_ratelimit_store_errors_total{kind=error|timeout}` counts failed Redis calls,
//! `praxis_ratelimit_store_fallbacks_total{mode=open|closed|local}` counts decisions taken
//! without Redis (including those taken while Redis is considered down after a failure).

mod local;
mod redis;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use praxis_kit::ratelimit::{Algorithm, Decision, Quota, QuotaError, UnknownAlgorithm};

use self::local::LocalLimiter;
use self::redis::RedisLimiter;

/// Counter of failed calls to the shared store, labelled `kind` (`error` | `timeout`).
pub const STORE_ERRORS_TOTAL: &str = "praxis_ratelimit_store_errors_total";
/// Counter of decisions taken without the shared store, labelled `mode` (`open` | `closed` |
/// `local`).
pub const STORE_FALLBACKS_TOTAL: &str = "praxis_ratelimit_store_fallbacks_total";

/// What to limit: an algorithm and its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The algorithm deciding.
    pub algorithm: Algorithm,
    /// The limit, period and burst.
    pub quota: Quota,
}

impl Rule {
    /// A rule of `algorithm` with `quota`.
    pub fn new(algorithm: Algorithm, quota: Quota) -> Self {
        Self { algorithm, quota }
    }

    /// The most hits the rule can allow at one instant (see [`Quota::capacity`]).
    pub fn capacity(&self) -> u64 {
        self.quota.capacity(self.algorithm)
    }
}

/// What a shared limiter does when its store (Redis) fails or does not answer in time.
///
/// An in-process limiter never fails; it ignores this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnStoreFailure {
    /// Allow the request ([`Source::FailedOpen`]): availability first; nothing is limited
    /// while the store is down.
    Open,
    /// Deny the request ([`Source::FailedClosed`], retry after 1 s): protection first; every
    /// request is refused while the store is down.
    Closed,
    /// Decide with an in-process limiter kept by the shared one ([`Source::Local`]): the limit
    /// holds per process, so `k` processes allow up to `k` times the limit while the store is
    /// down. The default.
    #[default]
    Local,
}

impl OnStoreFailure {
    /// `open`, `closed` or `local` (the configuration spelling and the metric label).
    pub fn name(self) -> &'static str {
        match self {
            OnStoreFailure::Open => "open",
            OnStoreFailure::Closed => "closed",
            OnStoreFailure::Local => "local",
        }
    }
}

impl fmt::Display for OnStoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not `open`, `closed` or `local`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store-failure mode {0:?}; expected one of open, closed, local")]
pub struct UnknownFailureMode(pub String);

impl FromStr for OnStoreFailure {
    type Err = UnknownFailureMode;

    /// Parses `open`, `closed` or `local`, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        [
            OnStoreFailure::Open,
            OnStoreFailure::Closed,
            OnStoreFailure::Local,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| UnknownFailureMode(s.to_owned()))
    }
}

/// Who took a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The shared store (Redis): the limit holds across processes.
    Shared,
    /// An in-process limiter: the local backend, or the fallback of a shared limiter whose
    /// store failed ([`OnStoreFailure::Local`]).
    Local,
    /// The store failed and the request was allowed ([`OnStoreFailure::Open`]).
    FailedOpen,
    /// The store failed and the request was denied ([`OnStoreFailure::Closed`]).
    FailedClosed,
}

impl Source {
    /// `shared`, `local`, `failed_open` or `failed_closed`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Shared => "shared",
            Source::Local => "local",
            Source::FailedOpen => "failed_open",
            Source::FailedClosed => "failed_closed",
        }
    }
}

/// A decision and who took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed or not, remaining, reset and retry times.
    pub decision: Decision,
    /// Who decided.
    pub source: Source,
}

/// Tuning of [`Limiter::redis_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisLimiterOptions {
    /// Longest wait for the script's answer; past it the decision falls back
    /// ([`OnStoreFailure`]). 50 ms by default: a rate limiter must not make a request slow.
    pub timeout: Duration,
    /// After a failure, how long decisions skip Redis and fall back at once (so an outage
    /// costs one timeout per cooldown, not one per request). 250 ms by default; zero retries
    /// Redis on every call.
    pub cooldown: Duration,
}

impl Default for RedisLimiterOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(50),
            cooldown: Duration::from_millis(250),
        }
    }
}

/// The rate limiter port. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Limiter {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(Arc<LocalLimiter>),
    Redis(Arc<RedisLimiter>),
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local(_) => f.write_str("Limiter(local)"),
            Backend::Redis(r) => write!(f, "Limiter(redis, prefix {:?})", r.prefix()),
        }
    }
}

impl Limiter {
    /// An in-process limiter: 64 mutex-guarded shards of per-key states on a monotonic clock
    /// (nanoseconds since the limiter was created; windows are aligned on that origin).
    ///
    /// Idle states (those a fresh state would decide the same as) are evicted on access: each
    /// shard sweeps itself once per `max(1024, keys its last sweep kept)` checks, so the cost is
    /// amortized O(1) per check, and an idle key lingers at most until that many more checks
    /// reach its shard (memory stays within about twice the live keys, plus 64 * 1024).
    pub fn local() -> Limiter {
        Limiter {
            backend: Backend::Local(Arc::new(LocalLimiter::new())),
        }
    }

    /// A limiter shared through Redis, with [`RedisLimiterOptions::default`]. Keys live under
    /// `<prefix>:rl:`.
    pub fn redis(conn: ::redis::aio::ConnectionManager, prefix: &str) -> Limiter {
        Limiter::redis_with(conn, prefix, RedisLimiterOptions::default())
    }

    /// [`Limiter::redis`] with explicit tuning.
    pub fn redis_with(
        conn: ::redis::aio::ConnectionManager,
        prefix: &str,
        options: RedisLimiterOptions,
    ) -> Limiter {
        Limiter {
            backend: Backend::Redis(Arc::new(RedisLimiter::new(conn, prefix, options))),
        }
    }

    /// Whether decisions are shared with other processes (Redis).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// The in-process limiter, whose decisions need no awaiting; `None` for a shared (Redis)
    /// limiter, whose decisions need a round trip. Lets a caller on a hot path decide without
    /// boxing a future.
    pub fn in_process(&self) -> Option<InProcess<'_>> {
        match &self.backend {
            Backend::Local(local) => Some(InProcess(local)),
            Backend::Redis(_) => None,
        }
    }

    /// `"local"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Local(_) => "local",
            Backend::Redis(_) => "redis",
        }
    }

    /// Checks `hits` against `rule` for `key` and counts them if allowed (all or nothing;
    /// `hits == 0` peeks). `on_failure` applies when a shared store fails.
    pub async fn check(
        &self,
        key: &str,
        rule: &Rule,
        hits: u64,
        on_failure: OnStoreFailure,
    ) -> Verdict {
        match &self.backend {
            Backend::Local(local) => Verdict {
                decision: local.check(key, rule, hits),
                source: Source::Local,
            },
            Backend::Redis(redis) => redis.check(key, rule, hits, on_failure).await,
        }
    }
}

/// A borrowed in-process limiter ([`Limiter::in_process`]): decides synchronously.
#[derive(Clone, Copy)]
pub struct InProcess<'a>(&'a LocalLimiter);

impl InProcess<'_> {
    /// The same decision as [`Limiter::check`] on an in-process limiter, without awaiting.
    pub fn check(&self, key: &str, rule: &Rule, hits: u64) -> Verdict {
        self.check_at(key, rule, hits, Instant::now())
    }

    /// [`check`](Self::check) taken at `at`, a time the caller has read already (a request's
    /// arrival): no clock read. `at` must not be later than now (a time in the future would
    /// move the whole shard's time forward). Per key the time never goes back: an `at` before
    /// the latest check of the key's shard counts as that check's time.
    pub fn check_at(&self, key: &str, rule: &Rule, hits: u64, at: Instant) -> Verdict {
        Verdict {
            decision: self.0.check_at(key, rule, hits, at),
            source: Source::Local,
        }
    }
}

/// An in-process limiter over typed keys: the same sharded states, clock and eviction as
/// [`Limiter::local`], keyed by any small `Copy + Hash + Eq` value (a policy and an address,
/// say) instead of a string, so a hot path has nothing to format and only a few bytes to hash.
/// Its states are its own: keys of a `KeyedLimiter` never meet a [`Limiter`]'s.
pub struct KeyedLimiter<K>(LocalLimiter<K>);

impl<K: Copy + std::hash::Hash + Eq> KeyedLimiter<K> {
    /// An empty limiter.
    pub fn new() -> Self {
        Self(LocalLimiter::new())
    }

    /// Takes `hits` from `key`'s state of `rule` if they fit (the same decision as
    /// [`InProcess::check`]).
    pub fn check(&self, key: &K, rule: &Rule, hits: u64) -> Decision {
        self.0.check(key, rule, hits)
    }

    /// [`check`](Self::check) taken at `at`, as [`InProcess::check_at`].
    pub fn check_at(&self, key: &K, rule: &Rule, hits: u64, at: Instant) -> Decision {
        self.0.check_at(key, rule, hits, at)
    }
}

impl<K: Copy + std::hash::Hash + Eq> Default for KeyedLimiter<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedLimiter")
    }
}

/// The decision of a limiter that failed open: allowed, with the full capacity reported.
fn failed_open(rule: &Rule, hits: u64) -> Decision {
    Decision {
        allowed: true,
        limit: rule.quota.limit(),
        remaining: rule.capacity().saturating_sub(hits),
        reset_after: Duration::ZERO,
        retry_after: None,
    }
}

/// The decision of a limiter that failed closed: denied, retry in one second.
fn failed_closed(rule: &Rule) -> Decision {
    Decision {
        allowed: false,
        limit: rule.quota.limit(),
        remaining: 0,
        reset_after: Duration::from_secs(1),
        retry_after: Some(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_modes_parse_and_print() {
        for m in [
            OnStoreFailure::Open,
            OnStoreFailure::Closed,
            OnStoreFailure::Local,
        ] {
            assert_eq!(m.to_string().parse::<OnStoreFailure>(), Ok(m));
        }
        assert_eq!(" CLOSED ".parse(), Ok(OnStoreFailure::Closed));
        let err = "shut".parse::<OnStoreFailure>().expect_err("unknown");
        assert!(err.to_string().contains("\"shut\""));
        assert_eq!(OnStoreFailure::default(), OnStoreFailure::Local);
    }

    #[test]
    fn failure_decisions() {
        let rule = Rule::new(
            Algorithm::Gcra,
            Quota::new(10, Duration::from_secs(1))
                .and_then(|q| q.with_burst(4))
                .expect("valid"),
        );
        let open = failed_open(&rule, 1);
        assert!(open.allowed);
        assert_eq!((open.limit, open.remaining), (10, 3));
        let closed = failed_closed(&rule);
        assert!(!closed.allowed);
        assert_eq!(closed.retry_after_secs(), Some(1));
    }

    #[tokio::test]
    async fn local_limiter_is_not_shared() {
        let limiter = Limiter::local();
        assert!(!limiter.is_shared());
        assert_eq!(limiter.kind(), "local");
        let rule = Rule::new(
            Algorithm::FixedWindow,
            Quota::new(2, Duration::from_secs(3600)).expect("valid"),
        );
        let mut allowed = 0;
        for _ in 0..5 {
            let v = limiter.check("k", &rule, 1, OnStoreFailure::Closed).await;
            assert_eq!(v.source, Source::Local);
            allowed += usize::from(v.decision.allowed);
        }
        assert_eq!(allowed, 2);
        assert_eq!(format!("{limiter:?}"), "Limiter(local)");
    }
}
