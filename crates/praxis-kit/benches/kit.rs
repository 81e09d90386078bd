//! Criterion benches of the hot-path pieces: base62 (redirect decode) and the code scrambler.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use praxis_kit::{base62, scramble::CodeScrambler};
use std::hint::black_box;

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

criterion_group!(benches, bench_base62, bench_scramble);
criterion_main!(benches);
