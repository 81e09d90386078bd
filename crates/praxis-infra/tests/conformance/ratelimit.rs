//! Rate limiter port: the same cases on the in-process limiter and on Redis (accuracy under a
//! concurrent burst, the fixed-window boundary burst, the kit's semantics), then what only a
//! shared store has: two processes sharing one limit, keys that expire, and the three failure
//! modes against a Redis that is unreachable, silent, or stops mid-way.
//!
//! Redis cases never skip: without a Redis at `PRAXIS_TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379) they fail and say how to start one. Each case uses its own key
//! prefix; every key it writes expires by itself (PEXPIRE = the state's idle time).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use praxis_infra::ratelimit::{
    Algorithm, Limiter, OnStoreFailure, Quota, RedisLimiterOptions, Rule, Source, Verdict,
};
use praxis_infra::testing::{self, TestBackend};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::net::TcpListener;

/// Runs `case(backend)` as one test per limiter backend: `local` and `redis`.
macro_rules! on_every_limiter {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn local() -> anyhow::Result<()> {
                    super::$case(super::Backend::local()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() -> anyhow::Result<()> {
                    super::$case(super::Backend::redis().await).await
                }
            }
        )*
    };
}

on_every_limiter!(
    burst_of_three_n_allows_exactly_n,
    decisions_follow_the_kit,
    fixed_window_boundary_burst
);

on_every_backend!(platform_limiter_follows_the_mode);

/// A limiter under test, and for Redis a connection to read the server clock.
struct Backend {
    name: &'static str,
    limiter: Limiter,
    redis: Option<ConnectionManager>,
    /// What decisions on this backend report when all is well.
    source: Source,
}

impl Backend {
    fn local() -> Self {
        Self {
            name: "local",
            limiter: Limiter::local(),
            redis: None,
            source: Source::Local,
        }
    }

    async fn redis() -> Self {
        let conn = redis_conn().await;
        Self {
            name: "redis",
            limiter: Limiter::redis_with(conn.clone(), &testing::unique_prefix(), patient()),
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

/// A connection to the test Redis, or a panic that says how to start one.
async fn redis_conn() -> ConnectionManager {
    let url = testing::redis_url();
    let attempt = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = praxis_infra::redis_conn::connect(&url).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, praxis_infra::InfraError>(conn)
    })
    .await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => no_redis(&url, &e.to_string()),
        Err(_) => no_redis(&url, "connection timed out"),
    }
}

fn no_redis(url: &str, error: &str) -> ! {
    panic!(
        "Redis is unreachable at {url} ({error}). Rate-limit tests never skip: set {} to a \
         running server or start the local one with: redis-server --daemonize yes --bind \
         127.0.0.1 --port 6379 --save \"\" --appendonly no",
        testing::REDIS_ENV
    )
}

/// Accuracy cases must not fall back because a loaded test machine was slow: a long timeout
/// and no cooldown (the failure cases use the 50 ms default).
fn patient() -> RedisLimiterOptions {
    RedisLimiterOptions {
        timeout: Duration::from_secs(5),
        cooldown: Duration::ZERO,
    }
}

fn rule(algorithm: Algorithm, limit: u64, period: Duration) -> anyhow::Result<Rule> {
    Ok(Rule::new(algorithm, Quota::new(limit, period)?))
}

/// `count` concurrent single-hit checks of `key` (tokio tasks, `join_all`), spread over the
/// given limiters in turn.
async fn burst(
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

fn allowed(verdicts: &[Verdict]) -> usize {
    verdicts.iter().filter(|v| v.decision.allowed).count()
}

/// Waits, if needed, until a window boundary of `period` is at least `margin` away.
async fn clear_of_boundary(b: &Backend, period: Duration, margin: Duration) -> anyhow::Result<()> {
    let left = b.time_to_boundary(period).await?;
    if left < margin {
        tokio::time::sleep(left + Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A concurrent burst of 3N against a limit of N allows exactly N, for every algorithm.
async fn burst_of_three_n_allows_exactly_n(b: Backend) -> anyhow::Result<()> {
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
async fn decisions_follow_the_kit(b: Backend) -> anyhow::Result<()> {
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
async fn fixed_window_boundary_burst(b: Backend) -> anyhow::Result<()> {
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
        let before = join_all(Algorithm::ALL.map(|a| {
            let limiters = [b.limiter.clone()];
            let key = key.clone();
            async move {
                let r = rule(a, N, period)?;
                let v = burst(&limiters, &key, r, N as usize, OnStoreFailure::Closed).await?;
                anyhow::Ok(allowed(&v) as u64)
            }
        }))
        .await;
        let left = b.time_to_boundary(period).await?;
        // Just after the boundary (if the first batch ran past it, `left` is a whole period
        // and this attempt is retried below).
        tokio::time::sleep(left.min(lead) + Duration::from_millis(20)).await;
        let after = join_all(Algorithm::ALL.map(|a| {
            let limiters = [b.limiter.clone()];
            let key = key.clone();
            async move {
                let r = rule(a, N, period)?;
                let v = burst(&limiters, &key, r, N as usize, OnStoreFailure::Closed).await?;
                anyhow::Ok(allowed(&v) as u64)
            }
        }))
        .await;
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

/// The platform builds a shared limiter when it has Redis, an in-process one otherwise.
async fn platform_limiter_follows_the_mode(t: TestBackend) -> anyhow::Result<()> {
    let limiter = &t.platform.limiter;
    let rule = rule(Algorithm::Gcra, 2, Duration::from_secs(60))?;
    let v = limiter
        .check("platform", &rule, 1, OnStoreFailure::Closed)
        .await;
    assert!(v.decision.allowed);
    match t.name {
        "sqlite" => {
            assert!(!limiter.is_shared());
            assert_eq!(v.source, Source::Local);
        }
        _ => {
            assert!(limiter.is_shared());
            assert_eq!(v.source, Source::Shared);
        }
    }
    Ok(())
}

/// Two limiters on two connections (two processes) sharing one Redis and prefix: a concurrent
/// burst of 3N spread over both allows exactly N, for every algorithm. The tolerance is zero:
/// each decision is one atomic script on the server's clock, so the processes cannot race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit() -> anyhow::Result<()> {
    const N: usize = 40;
    let prefix = testing::unique_prefix();
    let a = Limiter::redis_with(redis_conn().await, &prefix, patient());
    let b = Limiter::redis_with(redis_conn().await, &prefix, patient());
    let backend = Backend {
        name: "redis",
        limiter: a.clone(),
        redis: Some(redis_conn().await),
        source: Source::Shared,
    };
    let period = Duration::from_secs(3600);
    clear_of_boundary(&backend, period, Duration::from_secs(10)).await?;
    for algorithm in Algorithm::ALL {
        let r = rule(algorithm, N as u64, period)?;
        let verdicts = burst(
            &[a.clone(), b.clone()],
            "shared",
            r,
            3 * N,
            OnStoreFailure::Closed,
        )
        .await?;
        assert!(
            verdicts.iter().all(|v| v.source == Source::Shared),
            "{algorithm}"
        );
        assert_eq!(
            allowed(&verdicts),
            N,
            "{algorithm}: exactly N across both processes"
        );
        // Whichever process took the N, the other one sees them.
        for (name, limiter) in [("a", &a), ("b", &b)] {
            let v = limiter.check("shared", &r, 1, OnStoreFailure::Closed).await;
            assert!(
                !v.decision.allowed,
                "{algorithm}: process {name} sees the shared count"
            );
        }
    }
    Ok(())
}

/// Every key gets a TTL equal to its state's idle time, so Redis forgets idle keys by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_expire_when_idle() -> anyhow::Result<()> {
    let prefix = testing::unique_prefix();
    let mut conn = redis_conn().await;
    let limiter = Limiter::redis_with(conn.clone(), &prefix, patient());
    let period = Duration::from_millis(300);
    for algorithm in Algorithm::ALL {
        let v = limiter
            .check(
                "ttl",
                &rule(algorithm, 5, period)?,
                2,
                OnStoreFailure::Closed,
            )
            .await;
        assert!(
            v.decision.allowed && v.source == Source::Shared,
            "{algorithm}"
        );
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rl:*"))
        .query_async(&mut conn)
        .await?;
    assert_eq!(keys.len(), 5, "one key per algorithm: {keys:?}");
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await?;
        // The sliding-window counter is idle two periods after its window start.
        assert!(ttl > 0 && ttl <= 2 * 300, "{key}: PTTL {ttl}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rl:*"))
        .query_async(&mut conn)
        .await?;
    assert!(left.is_empty(), "idle keys expired: {left:?}");
    Ok(())
}

/// A connection manager that connects on first use, with short timeouts (building it never
/// waits, whatever is at `url`).
fn lazy_conn(url: &str) -> anyhow::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(200)))
        .set_response_timeout(Some(Duration::from_millis(200)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(100));
    Ok(ConnectionManager::new_lazy_with_config(
        redis::Client::open(url)?,
        config,
    )?)
}

/// Checks the three failure modes against a limiter whose Redis does not answer: open allows,
/// closed denies with a retry of 1 s, local decides in-process (exactly N of a burst of 3N).
async fn assert_failure_modes(limiter: &Limiter, what: &str) -> anyhow::Result<()> {
    const N: usize = 10;
    let r = rule(
        Algorithm::SlidingWindow,
        N as u64,
        Duration::from_secs(3600),
    )?;
    let open = limiter.check("k", &r, 1, OnStoreFailure::Open).await;
    assert_eq!(open.source, Source::FailedOpen, "{what}");
    assert!(open.decision.allowed, "{what}: fail-open allows");
    let closed = limiter.check("k", &r, 1, OnStoreFailure::Closed).await;
    assert_eq!(closed.source, Source::FailedClosed, "{what}");
    assert!(!closed.decision.allowed, "{what}: fail-closed denies");
    assert_eq!(
        closed.decision.retry_after,
        Some(Duration::from_secs(1)),
        "{what}"
    );
    let verdicts = burst(
        std::slice::from_ref(limiter),
        "k",
        r,
        3 * N,
        OnStoreFailure::Local,
    )
    .await?;
    assert!(
        verdicts.iter().all(|v| v.source == Source::Local),
        "{what}: local fallback"
    );
    assert_eq!(
        allowed(&verdicts),
        N,
        "{what}: the local fallback still limits"
    );
    Ok(())
}

/// Redis at a port nothing listens on (connection refused): every mode falls back, and
/// neither building the connection nor deciding hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_falls_back() -> anyhow::Result<()> {
    let limiter = Limiter::redis(lazy_conn("redis://127.0.0.1:1")?, &testing::unique_prefix());
    tokio::time::timeout(
        Duration::from_secs(30),
        assert_failure_modes(&limiter, "port 1"),
    )
    .await
    .map_err(|_| anyhow::anyhow!("decisions against an unreachable Redis hung"))?
}

/// A server that accepts connections and never answers: the script call times out (50 ms by
/// default) and every mode falls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_redis_times_out_and_falls_back() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let limiter = Limiter::redis(
        lazy_conn(&format!("redis://{addr}"))?,
        &testing::unique_prefix(),
    );
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        assert_failure_modes(&limiter, "silent server"),
    )
    .await;
    silent.abort();
    outcome.map_err(|_| anyhow::anyhow!("decisions against a silent Redis hung"))?
}

/// A TCP proxy to the test Redis that can be stopped (the shared Redis itself is never
/// stopped): stopping it closes every connection and refuses new ones.
struct StoppableProxy {
    addr: std::net::SocketAddr,
    stopped: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl StoppableProxy {
    async fn start() -> anyhow::Result<Self> {
        let upstream = url::Url::parse(&testing::redis_url())?;
        let target = format!(
            "{}:{}",
            upstream.host_str().unwrap_or("127.0.0.1"),
            upstream.port().unwrap_or(6379)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Self {
            addr,
            stopped,
            task,
        })
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Drops the listener and every proxied connection.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

/// Redis reachable, then gone mid-way (its proxy stopped): decisions switch from the shared
/// store to the failure mode, without hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopping_mid_way_falls_back() -> anyhow::Result<()> {
    let proxy = StoppableProxy::start().await?;
    let limiter = Limiter::redis(lazy_conn(&proxy.url())?, &testing::unique_prefix());
    let r = rule(Algorithm::Gcra, 100, Duration::from_secs(3600))?;
    // Through the proxy, the shared store decides (a generous first wait: the first call also
    // connects and loads the script).
    let mut shared = false;
    for _ in 0..50 {
        if limiter
            .check("k", &r, 1, OnStoreFailure::Closed)
            .await
            .source
            == Source::Shared
        {
            shared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shared, "the limiter reaches Redis through the proxy");
    proxy.stop();
    assert!(proxy.stopped.load(Ordering::SeqCst));
    tokio::time::timeout(
        Duration::from_secs(30),
        assert_failure_modes(&limiter, "stopped proxy"),
    )
    .await
    .map_err(|_| anyhow::anyhow!("decisions after Redis went away hung"))?
}
