//! Rate limiter port: the same cases on the in-process limiter and on Redis (accuracy under a
//! concurrent burst, the fixed-window boundary burst, the kit's semantics). What only a
//! shared store has is tested with the Redis adapter in praxis-infra.
//!
//! Redis cases never skip: without a Redis at `PRAXIS_TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379) they fail and say how to start one. Each case uses its own key
//! prefix; every key it writes expires by itself (PEXPIRE = the state's idle time).

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use praxis_infra::ratelimit::{
    Algorithm, Limiter, OnStoreFailure, Quota, RedisLimiterOptions, Rule, Source, Verdict,
};
use redis::aio::ConnectionManager;

use crate::services;

/// Runs the rate limiter port's cases on limiters made by `make` (a fresh one per case).
pub async fn suite(make: impl AsyncFn() -> LimiterUnderTest) -> anyhow::Result<()> {
    let name = make().await.name;
    eprintln!("conformance cases of the {name} limiter");
    burst_of_three_n_allows_exactly_n(make().await)
        .await
        .with_context(|| format!("burst_of_three_n_allows_exactly_n on {name}"))?;
    decisions_follow_the_kit(make().await)
        .await
        .with_context(|| format!("decisions_follow_the_kit on {name}"))?;
    fixed_window_boundary_burst(make().await)
        .await
        .with_context(|| format!("fixed_window_boundary_burst on {name}"))
}

/// A limiter under test, and for Redis a connection to read the server clock.
pub struct LimiterUnderTest {
    name: &'static str,
    limiter: Limiter,
    redis: Option<ConnectionManager>,
    /// What decisions on this backend report when all is well.
    source: Source,
}

impl LimiterUnderTest {
    /// The in-process limiter.
    pub fn local() -> Self {
        Self {
            name: "local",
            limiter: Limiter::local(),
            redis: None,
            source: Source::Local,
        }
    }

    /// The Redis limiter on the test Redis, under a prefix of its own.
    pub async fn redis() -> Self {
        let conn = services::redis().await;
        let limiter = Limiter::redis_with(conn.clone(), &services::unique_prefix(), patient());
        Self::shared(limiter, conn)
    }

    /// A Redis `limiter`, with `conn` to read the server's clock.
    pub fn shared(limiter: Limiter, conn: ConnectionManager) -> Self {
        Self {
            name: "redis",
            limiter,
            redis: Some(conn),
            source: Source::Shared,
        }
    }

    /// Time until the next window boundary of `period` on this backend's clock: Redis server
    /// time (`TIME`, windows aligned on the Unix epoch) or, in-process, a fixed-window probe
    /// (its `reset_after` is the time left in its window; windows align on the limiter's
    /// creation).
    async fn time_to_boundary(&self, period: Duration) -> anyhow::Result<Duration> {
        let period_us = u64::try_from(period.as_micros())?;
        match &self.redis {
            Some(conn) => {
                let mut conn = conn.clone();
                let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
                let now_us = secs * 1_000_000 + micros;
                Ok(Duration::from_micros(period_us - now_us % period_us))
            }
            None => {
                let probe = Rule::new(Algorithm::FixedWindow, Quota::new(u64::MAX, period)?);
                let v = self
                    .limiter
                    .check("probe", &probe, 1, OnStoreFailure::Closed)
                    .await;
                Ok(v.decision.reset_after)
            }
        }
    }
}

/// Accuracy cases must not fall back because a loaded test machine was slow: a long timeout
/// and no cooldown (the failure cases use the 50 ms default).
pub fn patient() -> RedisLimiterOptions {
    RedisLimiterOptions {
        timeout: Duration::from_secs(5),
        cooldown: Duration::ZERO,
    }
}

/// A rule of `algorithm` allowing `limit` per `period`.
pub fn rule(algorithm: Algorithm, limit: u64, period: Duration) -> anyhow::Result<Rule> {
    Ok(Rule::new(algorithm, Quota::new(limit, period)?))
}

/// `count` concurrent single-hit checks of `key` (tokio tasks, `join_all`), spread over the
/// given limiters in turn.
pub async fn burst(
    limiters: &[Limiter],
    key: &str,
    rule: Rule,
    count: usize,
    on_failure: OnStoreFailure,
) -> anyhow::Result<Vec<Verdict>> {
    let tasks = (0..count).map(|i| {
        let limiter = limiters[i % limiters.len()].clone();
        let key = key.to_owned();
        tokio::spawn(async move { limiter.check(&key, &rule, 1, on_failure).await })
    });
    let mut out = Vec::with_capacity(count);
    for joined in join_all(tasks).await {
        out.push(joined?);
    }
    Ok(out)
}

/// How many of `verdicts` allowed their request.
pub fn allowed(verdicts: &[Verdict]) -> usize {
    verdicts.iter().filter(|v| v.decision.allowed).count()
}

/// A concurrent burst of `n` on `key` for each algorithm (a limit of `n` per `period`): how
/// many each allowed.
async fn burst_every_algorithm(
    limiter: &Limiter,
    key: &str,
    n: u64,
    period: Duration,
) -> Vec<anyhow::Result<u64>> {
    join_all(Algorithm::ALL.map(|a| async move {
        let v = burst(
            std::slice::from_ref(limiter),
            key,
            rule(a, n, period)?,
            n as usize,
            OnStoreFailure::Closed,
        )
        .await?;
        anyhow::Ok(allowed(&v) as u64)
    }))
    .await
}

/// Waits, if needed, until a window boundary of `period` is at least `margin` away.
pub async fn clear_of_boundary(
    b: &LimiterUnderTest,
    period: Duration,
    margin: Duration,
) -> anyhow::Result<()> {
    let left = b.time_to_boundary(period).await?;
    if left < margin {
        tokio::time::sleep(left + Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A concurrent burst of 3N against a limit of N allows exactly N, for every algorithm.
async fn burst_of_three_n_allows_exactly_n(b: LimiterUnderTest) -> anyhow::Result<()> {
    const N: usize = 50;
    let period = Duration::from_secs(3600);
    // A burst straddling an hourly boundary would see two fixed windows.
    clear_of_boundary(&b, period, Duration::from_secs(10)).await?;
    for algorithm in Algorithm::ALL {
        let rule = rule(algorithm, N as u64, period)?;
        let verdicts = burst(
            std::slice::from_ref(&b.limiter),
            "burst",
            rule,
            3 * N,
            OnStoreFailure::Closed,
        )
        .await?;
        assert!(
            verdicts.iter().all(|v| v.source == b.source),
            "{}/{algorithm}: every decision from {:?}",
            b.name,
            b.source
        );
        assert_eq!(allowed(&verdicts), N, "{}/{algorithm}", b.name);
        let mut remaining: Vec<u64> = verdicts
            .iter()
            .filter(|v| v.decision.allowed)
            .map(|v| v.decision.remaining)
            .collect();
        remaining.sort_unstable();
        assert_eq!(
            remaining,
            (0..N as u64).collect::<Vec<_>>(),
            "{}/{algorithm}: each allowed hit saw one less remaining",
            b.name
        );
    }
    Ok(())
}

/// Sequential semantics shared with the kit: exact `remaining`, all-or-nothing multi-hit
/// requests, peeks that consume nothing, `retry_after` within the period, and no retry for a
/// request above the capacity.
async fn decisions_follow_the_kit(b: LimiterUnderTest) -> anyhow::Result<()> {
    let period = Duration::from_secs(3600);
    clear_of_boundary(&b, period, Duration::from_secs(10)).await?;
    for algorithm in Algorithm::ALL {
        let rule = rule(algorithm, 3, period)?;
        let check = |hits: u64| {
            let limiter = b.limiter.clone();
            async move {
                limiter
                    .check("seq", &rule, hits, OnStoreFailure::Closed)
                    .await
                    .decision
            }
        };
        let peek = check(0).await;
        assert!(
            peek.allowed && peek.remaining == 3,
            "{}/{algorithm}: fresh peek {peek:?}",
            b.name
        );
        assert_eq!(
            peek.reset_after,
            Duration::ZERO,
            "{}/{algorithm}: fresh",
            b.name
        );
        let d = check(2).await;
        assert!(d.allowed, "{}/{algorithm}", b.name);
        assert_eq!((d.limit, d.remaining), (3, 1), "{}/{algorithm}", b.name);
        assert!(d.reset_after > Duration::ZERO && d.reset_after <= 2 * period);
        let denied = check(2).await;
        assert!(!denied.allowed, "{}/{algorithm}: 2 > 1 remaining", b.name);
        assert_eq!(
            denied.remaining, 1,
            "{}/{algorithm}: a denial consumes nothing",
            b.name
        );
        let retry = denied
            .retry_after
            .expect("a request within capacity can be retried");
        assert!(
            retry > Duration::ZERO && retry <= 2 * period,
            "{}/{algorithm}: retry {retry:?}",
            b.name
        );
        assert!(
            check(1).await.allowed,
            "{}/{algorithm}: the last one fits",
            b.name
        );
        let empty = check(1).await;
        assert!(
            !empty.allowed && empty.remaining == 0,
            "{}/{algorithm}",
            b.name
        );
        let huge = check(4).await;
        assert!(!huge.allowed, "{}/{algorithm}", b.name);
        assert_eq!(huge.retry_after, None, "{}/{algorithm}: never fits", b.name);
        assert_eq!(
            check(0).await.remaining,
            0,
            "{}/{algorithm}: peeks change nothing",
            b.name
        );
    }
    Ok(())
}

/// N hits just before a window boundary and N just after: the fixed window allows all 2N;
/// GCRA, token bucket and the sliding windows allow at most N plus what refills or slides in
/// during the span (for this span well below 2N), as the kit's test shows with exact times.
/// Windows are aligned with the backend's own clock (Redis: server `TIME`).
async fn fixed_window_boundary_burst(b: LimiterUnderTest) -> anyhow::Result<()> {
    const N: u64 = 20;
    let period = Duration::from_secs(1);
    let lead = Duration::from_millis(100);
    let mut observed = Vec::new();
    for attempt in 0..3 {
        // Start `lead` before a boundary (skipping one that is too close).
        let mut left = b.time_to_boundary(period).await?;
        if left < lead + Duration::from_millis(20) {
            tokio::time::sleep(left).await;
            left = b.time_to_boundary(period).await?;
        }
        tokio::time::sleep(left.saturating_sub(lead)).await;
        let key = format!("boundary-{attempt}");
        let start = Instant::now();
        let before = burst_every_algorithm(&b.limiter, &key, N, period).await;
        let left = b.time_to_boundary(period).await?;
        // Just after the boundary (if the first batch ran past it, `left` is a whole period
        // and this attempt is retried below).
        tokio::time::sleep(left.min(lead) + Duration::from_millis(20)).await;
        let after = burst_every_algorithm(&b.limiter, &key, N, period).await;
        // An upper bound of the span between the first hit and the last, on any clock.
        let span = start.elapsed();
        let mut totals = Vec::new();
        for (a, (x, y)) in Algorithm::ALL.iter().zip(before.into_iter().zip(after)) {
            let (x, y) = (x?, y?);
            totals.push((*a, x, y));
        }
        observed.push((span, totals.clone()));
        let refill = N * u64::try_from(span.as_micros())? / u64::try_from(period.as_micros())?;
        for &(a, x, y) in &totals {
            if a != Algorithm::FixedWindow {
                assert_eq!(x, N, "{}/{a}: the first N fit a fresh state", b.name);
                assert!(
                    x + y <= N + refill && x + y < 2 * N,
                    "{}/{a}: {x} + {y} allowed across the boundary within {span:?} (at most \
                     N + {refill})",
                    b.name
                );
            }
        }
        let fixed = totals
            .iter()
            .find(|(a, ..)| *a == Algorithm::FixedWindow)
            .map(|&(_, x, y)| x + y);
        if fixed == Some(2 * N) {
            return Ok(());
        }
        // The batches did not land on both sides of one boundary (a slow machine): retry.
    }
    anyhow::bail!(
        "{}: the fixed window never allowed 2N = {} across a boundary; observed (span, \
         [(algorithm, before, after)]): {observed:?}",
        b.name,
        2 * N
    )
}
