//! Micro-benchmarks of the per-request work of the generator (no network): building a
//! request, drawing a Zipf key, computing the next intended time, recording a latency.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use praxis_bench::record::Recorder;
use praxis_bench::scenario::Scenario;
use praxis_bench::schedule::{Arrival, ConnSchedule};
use praxis_bench::workload::{RequestGen, Workload};
use praxis_bench::zipf::Zipf;
use rand::SeedableRng;
use rand::rngs::SmallRng;

const SCENARIO: &str = r#"
name = "bench"
base_url = "http://127.0.0.1:8080"
[keys.key]
dist = "zipf"
n = 1000000
[[request]]
name = "redirect"
path = "/k{key}"
expect_status = 301
"#;

fn hot_path(c: &mut Criterion) {
    let zipf = Zipf::new(1_000_000, 1.0).expect("valid zipf");
    let mut rng = SmallRng::seed_from_u64(1);
    c.bench_function("zipf_sample_1m", |b| {
        b.iter(|| black_box(zipf.sample(&mut rng)))
    });

    let mut uniform = ConnSchedule::new(Arrival::Uniform, 100_000.0, 3, 64, 1);
    c.bench_function("schedule_uniform", |b| {
        b.iter(|| black_box(uniform.next_offset()))
    });
    let mut poisson = ConnSchedule::new(Arrival::Poisson, 100_000.0, 3, 64, 1);
    c.bench_function("schedule_poisson", |b| {
        b.iter(|| black_box(poisson.next_offset()))
    });

    let url = Arc::new(Workload::from_url("http://127.0.0.1:8080/abc", Some(301)).expect("url"));
    let mut static_gen = RequestGen::new(url, 1);
    c.bench_function("request_static", |b| {
        b.iter(|| black_box(static_gen.next_request().expect("request")))
    });
    let scenario = Scenario::parse(SCENARIO, "bench").expect("scenario");
    let workload = Arc::new(scenario.compile(None).expect("workload"));
    let mut zipf_gen = RequestGen::new(workload, 1);
    c.bench_function("request_zipf_path", |b| {
        b.iter(|| black_box(zipf_gen.next_request().expect("request")))
    });

    let mut recorder = Recorder::new(&["redirect".to_owned()]);
    c.bench_function("record_response", |b| {
        b.iter(|| {
            recorder.response(
                0,
                black_box(Duration::from_micros(137)),
                Duration::from_micros(120),
                None,
                true,
            )
        })
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
