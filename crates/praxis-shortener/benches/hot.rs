//! Criterion benches of the redirect hot path's lookups at the size the benchmark uses
//! (1,000,000 links): the Bloom filter (a known and an unknown code) and the L1 cache (a hit,
//! through `Cache::get_or_load`, which is what the redirect calls).

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::cache::{CacheFactory, CacheOptions};
use praxis_shortener::domain::bloom::CodeFilter;
use praxis_shortener::domain::link::Target;

const LINKS: u64 = 1_000_000;

fn code(i: u64) -> String {
    format!("bk{i}")
}

fn bench_bloom(c: &mut Criterion) {
    let filter = CodeFilter::new(2 * LINKS, 0.01);
    for i in 0..LINKS {
        filter.insert(&code(i));
    }
    let known: Vec<String> = (0..1024).map(|i| code(i * 977)).collect();
    let unknown: Vec<String> = (0..1024).map(|i| format!("zz{i}x")).collect();
    let mut g = c.benchmark_group("bloom_1m");
    let mut i = 0usize;
    g.bench_function("might_contain_known", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            filter.might_contain(black_box(&known[i]))
        })
    });
    g.bench_function("might_contain_unknown", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            filter.might_contain(black_box(&unknown[i]))
        })
    });
    g.finish();
}

fn bench_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = rt.block_on(async {
        let factory = CacheFactory::new(None, Broadcaster::local(), "bench");
        let cache = factory.build::<Target>(
            "bench.links",
            CacheOptions {
                capacity: LINKS + LINKS / 10,
                ttl: Duration::from_secs(3600),
                ..CacheOptions::default()
            },
        );
        for i in 0..LINKS {
            let target = Target {
                url: Arc::from(format!("https://example.com/articles/{i}")),
                status: 301,
                expires_at: None,
                flags: 0,
            };
            cache
                .get_or_load(&code(i), || async { Ok(Some(target)) })
                .await
                .expect("load");
        }
        cache
    });
    // Spread over the whole cache, as Zipf traffic's long tail is (the head stays in CPU caches).
    let keys: Vec<String> = (0..4096).map(|i| code((i * 244_141) % LINKS)).collect();
    let mut g = c.benchmark_group("cache_1m");
    let mut i = 0usize;
    g.bench_function("get_or_load_hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) & 4095;
            let key = &keys[i];
            let cache = &cache;
            async move {
                cache
                    .get_or_load(black_box(key), || async { Ok(None) })
                    .await
                    .expect("hit")
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_bloom, bench_cache);
criterion_main!(benches);
