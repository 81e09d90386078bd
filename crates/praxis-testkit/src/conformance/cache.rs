//! Cache port: L1 hit/miss/negative, coalescing, TTLs, invalidation, and (scaled) the shared
//! L2 and cross-process invalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use praxis_infra::InfraError;
use praxis_infra::cache::{Cache, CacheOptions};

use crate::backend::{Services, TestBackend};
use crate::eventually;

/// Runs the cache port's cases on the cache of `services`: L1 only (no Redis), or with the
/// Redis L2 and invalidations over the platform's broadcaster (NATS or Redis).
pub async fn suite(services: Services) -> anyhow::Result<()> {
    cases!(
        services;
        hit_miss_and_negative,
        concurrent_loads_coalesce,
        entries_expire,
        loader_errors_are_not_cached,
        waiter_loads_after_a_failed_load,
        invalidate_and_insert,
    )?;
    if services.redis {
        cases!(services; second_process_is_served_by_l2_and_sees_invalidations)?;
    }
    Ok(())
}

fn opts() -> CacheOptions {
    CacheOptions {
        capacity: 1000,
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(60),
        jitter: 0.1,
        use_l2: true,
    }
}

/// A loader that counts its calls and returns `value`.
fn counting(
    calls: &Arc<AtomicUsize>,
    value: Option<u64>,
) -> impl FnOnce() -> std::future::Ready<Result<Option<u64>, InfraError>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

async fn hit_miss_and_negative(t: TestBackend) -> anyhow::Result<()> {
    let cache: Cache<u64> = t.platform.caches.build("conf_hits", opts());
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(cache.get("a").await, None);
    assert_eq!(
        cache.get_or_load("a", counting(&calls, Some(7))).await?,
        Some(7)
    );
    assert_eq!(cache.get("a").await, Some(Some(7)));
    assert_eq!(
        cache.get_or_load("a", counting(&calls, Some(8))).await?,
        Some(7)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    assert_eq!(
        cache.get_or_load("missing", counting(&calls, None)).await?,
        None
    );
    assert_eq!(
        cache.get("missing").await,
        Some(None),
        "negative entry cached"
    );
    assert_eq!(
        cache
            .get_or_load("missing", counting(&calls, Some(1)))
            .await?,
        None
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.entry_count(), 2);
    Ok(())
}

async fn concurrent_loads_coalesce(t: TestBackend) -> anyhow::Result<()> {
    let cache: Cache<u64> = t.platform.caches.build("conf_coalesce", opts());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let cache = cache.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("hot", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(Some(42))
                })
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await??, Some(42));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "50 concurrent misses ran the loader once"
    );
    Ok(())
}

async fn entries_expire(t: TestBackend) -> anyhow::Result<()> {
    let short = CacheOptions {
        ttl: Duration::from_millis(300),
        negative_ttl: Duration::from_millis(150),
        jitter: 0.0,
        ..opts()
    };
    let cache: Cache<u64> = t.platform.caches.build("conf_ttl", short);
    let calls = Arc::new(AtomicUsize::new(0));
    cache.get_or_load("k", counting(&calls, Some(1))).await?;
    cache.get_or_load("gone", counting(&calls, None)).await?;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The negative entry has the shorter TTL: it expires first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cache.get("gone").await, None, "negative entry expired");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(cache.get("k").await, None, "value expired");
    // L2 entries expire too (SET .. PX), so the loader runs again.
    cache.get_or_load("k", counting(&calls, Some(2))).await?;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    Ok(())
}

async fn loader_errors_are_not_cached(t: TestBackend) -> anyhow::Result<()> {
    let cache: Cache<u64> = t.platform.caches.build("conf_errors", opts());
    let failed = cache
        .get_or_load("k", || async {
            Err(InfraError::Timeout("source down".into()))
        })
        .await;
    assert!(matches!(failed, Err(InfraError::Timeout(_))), "{failed:?}");
    assert_eq!(cache.get("k").await, None);
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        cache.get_or_load("k", counting(&calls, Some(5))).await?,
        Some(5)
    );
    Ok(())
}

async fn waiter_loads_after_a_failed_load(t: TestBackend) -> anyhow::Result<()> {
    let cache: Cache<u64> = t.platform.caches.build("conf_failed_wait", opts());
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(InfraError::Timeout("source down".into()))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Waits for the first load; when that fails, loads itself instead of sharing the error.
    let second = cache.get_or_load("k", || async { Ok(Some(9)) }).await?;
    assert_eq!(second, Some(9));
    assert!(
        first.await?.is_err(),
        "the failed loader's caller sees its error"
    );
    assert_eq!(cache.get("k").await, Some(Some(9)));
    Ok(())
}

async fn invalidate_and_insert(t: TestBackend) -> anyhow::Result<()> {
    let cache: Cache<String> = t.platform.caches.build("conf_invalidate", opts());
    let v = cache
        .get_or_load("k", || async { Ok(Some("v1".to_string())) })
        .await?;
    assert_eq!(v.as_deref(), Some("v1"));
    cache.invalidate("k").await?;
    assert_eq!(cache.get("k").await, None);
    let v = cache
        .get_or_load("k", || async { Ok(Some("v2".to_string())) })
        .await?;
    assert_eq!(
        v.as_deref(),
        Some("v2"),
        "reloaded after invalidation (L2 dropped too)"
    );
    cache.insert("k", "v3".to_string()).await;
    assert_eq!(
        cache.get("k").await,
        Some(Some("v3".to_string())),
        "insert is not undone by its own broadcast"
    );
    // Give the own broadcast time to come back from Redis/NATS: it must be ignored.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cache.get("k").await, Some(Some("v3".to_string())));
    Ok(())
}

/// Two processes on one Redis: the second is served by the L2 and sees the first's
/// invalidations.
async fn second_process_is_served_by_l2_and_sees_invalidations(
    a: TestBackend,
) -> anyhow::Result<()> {
    let b = a.another_process().await;
    let cache_a: Cache<String> = a.platform.caches.build("conf_shared", opts());
    let cache_b: Cache<String> = b.platform.caches.build("conf_shared", opts());
    let calls = Arc::new(AtomicUsize::new(0));
    let load = |value: &'static str| {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(Some(value.to_string()))
        }
    };

    // B loads from the source and fills L2; A is then served by L2 without loading.
    assert_eq!(
        cache_b.get_or_load("k", load("v1")).await?.as_deref(),
        Some("v1")
    );
    assert_eq!(
        cache_a.get_or_load("k", load("other")).await?.as_deref(),
        Some("v1")
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "second process served by L2"
    );

    // A invalidates: B's L1 copy disappears.
    cache_a.invalidate("k").await?;
    eventually(
        Duration::from_secs(5),
        "B to drop the invalidated key",
        || async { cache_b.get("k").await.is_none().then_some(()) },
    )
    .await;

    // A writes a new value through: B drops its stale copy and reads the new one from L2.
    assert_eq!(
        cache_b.get_or_load("k", load("v2")).await?.as_deref(),
        Some("v2")
    );
    cache_a.insert("k", "v3".to_string()).await;
    eventually(
        Duration::from_secs(5),
        "B to drop its stale copy",
        || async { cache_b.get("k").await.is_none().then_some(()) },
    )
    .await;
    assert_eq!(
        cache_b.get_or_load("k", load("unused")).await?.as_deref(),
        Some("v3")
    );
    Ok(())
}
