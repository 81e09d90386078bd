//! Decisions per second of `praxis_infra::ratelimit::Limiter`, per algorithm:
//! - `local/one_key`: the in-process limiter, every check on one hot key;
//! - `local/10k_keys`: the in-process limiter, checks cycling over 10,000 keys;
//! - `redis/sequential`: through Redis, one check at a time (one round trip each), keys cycling
//!   over 10,000;
//! - `redis/concurrent_32`: through Redis, the same checks spread over 32 tasks sharing one
//!   multiplexed connection (so requests are pipelined; time per decision).
//!
//! Quota: 1,000 per second (burst 1,000). On one hot key nearly every check after the first
//! thousand is a denial; over 10,000 keys nearly every check is allowed.
//!
//! Run: `cargo bench -p praxis-infra --bench ratelimit` (Redis at `PRAXIS_TEST_REDIS_URL`,
//! default redis://127.0.0.1:6379; keys under a fresh `ptest_*` prefix expire by themselves).

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use praxis_infra::ratelimit::{
    Algorithm, Limiter, OnStoreFailure, Quota, RedisLimiterOptions, Rule,
};

fn rule(algorithm: Algorithm) -> Rule {
    Rule::new(
        algorithm,
        Quota::new(1_000, Duration::from_secs(1)).expect("valid quota"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench_local(c: &mut Criterion) {
    let rt = runtime();
    let keys: Vec<String> = (0..10_000).map(|i| format!("user:{i}")).collect();
    let mut g = c.benchmark_group("ratelimit/local");
    g.throughput(Throughput::Elements(1));
    for algorithm in Algorithm::ALL {
        let r = rule(algorithm);
        let limiter = Limiter::local();
        g.bench_function(BenchmarkId::new("one_key", algorithm), |b| {
            b.to_async(&rt).iter(|| {
                let limiter = &limiter;
                async move { black_box(limiter.check("hot", &r, 1, OnStoreFailure::Local).await) }
            })
        });
        let limiter = Limiter::local();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("10k_keys", algorithm), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % keys.len();
                let (limiter, key) = (&limiter, keys[i].as_str());
                async move { black_box(limiter.check(key, &r, 1, OnStoreFailure::Local).await) }
            })
        });
    }
    g.finish();
}

/// Where the Redis of the bench is (the tests' variable, the local port by default).
const REDIS_ENV: &str = "PRAXIS_TEST_REDIS_URL";

fn bench_redis(c: &mut Criterion) {
    let rt = runtime();
    let url = std::env::var(REDIS_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let conn = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                praxis_infra::redis_conn::connect(&url),
            )
            .await
        })
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            panic!(
                "Redis is unreachable at {url}: set {} or start redis-server",
                REDIS_ENV
            )
        });
    // A generous timeout: a slow moment must not turn into fallback decisions.
    let options = RedisLimiterOptions {
        timeout: Duration::from_secs(5),
        cooldown: Duration::ZERO,
    };
    let prefix = format!("pbench_{}", uuid::Uuid::new_v4().simple());
    let limiter = Limiter::redis_with(conn, &prefix, options);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user:{i}")).collect();
    let mut g = c.benchmark_group("ratelimit/redis");
    g.throughput(Throughput::Elements(1));
    for algorithm in Algorithm::ALL {
        let r = rule(algorithm);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("sequential", algorithm), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % keys.len();
                let (limiter, key) = (&limiter, keys[i].as_str());
                async move { black_box(limiter.check(key, &r, 1, OnStoreFailure::Closed).await) }
            })
        });
        g.bench_function(BenchmarkId::new("concurrent_32", algorithm), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let limiter = limiter.clone();
                async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..32u64)
                        .map(|t| {
                            let limiter = limiter.clone();
                            tokio::spawn(async move {
                                let mut n = t;
                                while n < iters {
                                    let key = format!("user:{}", n % 10_000);
                                    black_box(
                                        limiter.check(&key, &r, 1, OnStoreFailure::Closed).await,
                                    );
                                    n += 32;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("bench task");
                    }
                    start.elapsed()
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_local, bench_redis);
criterion_main!(benches);
