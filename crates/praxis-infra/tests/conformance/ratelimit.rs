//! Rate limiter: what only the shared (Redis) store has: two processes sharing one limit,
//! keys that expire, and the three failure modes against a Redis that is unreachable, silent,
//! or stops mid-way (the conformance suite runs on every adapter).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use praxis_infra::ratelimit::{Algorithm, Limiter, OnStoreFailure, Source};
use praxis_testkit::conformance::ratelimit::{
    LimiterUnderTest, allowed, burst, clear_of_boundary, patient, rule,
};
use praxis_testkit::services;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::net::TcpListener;

/// Two limiters on two connections (two processes) sharing one Redis and prefix: a concurrent
/// burst of 3N spread over both allows exactly N, for every algorithm. The tolerance is zero:
/// each decision is one atomic script on the server's clock, so the processes cannot race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit() -> anyhow::Result<()> {
    const N: usize = 40;
    let prefix = services::unique_prefix();
    let a = Limiter::redis_with(services::redis().await, &prefix, patient());
    let b = Limiter::redis_with(services::redis().await, &prefix, patient());
    let backend = LimiterUnderTest::shared(a.clone(), services::redis().await);
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
    let prefix = services::unique_prefix();
    let mut conn = services::redis().await;
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
        // The sliding-window counter is idle two periods after its window start. -2: it has
        // expired already (a slow machine), so it had a TTL; -1 (no TTL) is the failure.
        assert!(
            ttl == -2 || (ttl > 0 && ttl <= 2 * 300),
            "{key}: PTTL {ttl}"
        );
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
    let limiter = Limiter::redis(
        lazy_conn("redis://127.0.0.1:1")?,
        &services::unique_prefix(),
    );
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
        &services::unique_prefix(),
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
        let upstream = url::Url::parse(&services::redis_url())?;
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
    let limiter = Limiter::redis(lazy_conn(&proxy.url())?, &services::unique_prefix());
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
