//! Criterion benches of the hot-path pieces: base62 (redirect decode), the code scrambler,
//! the rate-limit algorithms and the shard ring.

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use praxis_kit::ratelimit::{Algorithm, Quota, State};
use praxis_kit::ring::{Ring, ring_hash};
use praxis_kit::{base62, scramble::CodeScrambler};
use std::hint::black_box;
use std::time::Duration;

fn bench_base62(c: &mut Criterion) {
    let mut g = c.benchmark_group("base62");
    g.bench_function("encode_padded_7", |b| {
        b.iter(|| base62::encode_padded(black_box(2_718_281_828_459), 7))
    });
    g.bench_function("decode_7", |b| {
        b.iter(|| base62::decode(black_box("kX3Zp9Q")))
    });
    g.bench_function("decode_11_max", |b| {
        b.iter(|| base62::decode(black_box("LygHa16AHYF")))
    });
    g.finish();
}

fn bench_scramble(c: &mut Criterion) {
    let s = CodeScrambler::new(7);
    let mut g = c.benchmark_group("scramble");
    g.bench_function("scramble_7", |b| {
        b.iter(|| s.scramble(black_box(123_456_789)))
    });
    g.bench_function("unscramble_7", |b| {
        b.iter(|| s.unscramble(black_box(987_654_321)))
    });
    g.finish();
}

/// One key, one hit per check, time advancing 1 µs per check against 1000 per second: after
/// the first burst about one check in a thousand is allowed, like a hot key over its limit.
fn bench_ratelimit(c: &mut Criterion) {
    let quota = Quota::new(1000, Duration::from_secs(1)).expect("valid quota");
    let mut g = c.benchmark_group("ratelimit");
    g.throughput(Throughput::Elements(1));
    for algorithm in Algorithm::ALL {
        let mut state = State::new(algorithm);
        let mut now = 0u64;
        g.bench_function(algorithm.name(), |b| {
            b.iter(|| {
                now += 1_000;
                state.check(&quota, black_box(now), 1)
            })
        });
    }
    g.finish();
}

/// A key's shard: its BLAKE3 position, then a binary search of the ring's points (3 and 64
/// shards of 128 vnodes); and the arcs a third shard takes.
fn bench_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    let key = "0193a4f2-7c1e-7d3a-9b2f-5e8c1a2b3c4d";
    g.bench_function("ring_hash_uuid", |b| {
        b.iter(|| ring_hash(black_box(key.as_bytes())))
    });
    for shards in [3, 64] {
        let ring = Ring::uniform("s", shards, 128).expect("a ring");
        g.bench_function(format!("shard_of_{shards}x128"), |b| {
            b.iter(|| ring.shard_of(black_box(key.as_bytes())).len())
        });
    }
    let two = Ring::uniform("s", 2, 128).expect("a ring");
    let three = two.with_shard("s2", 128).expect("a ring");
    g.bench_function("moves_2_to_3x128", |b| {
        b.iter(|| two.moves(black_box(&three)).len())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_base62,
    bench_scramble,
    bench_ratelimit,
    bench_ring
);
criterion_main!(benches);
