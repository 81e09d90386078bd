//! End-to-end tests of the generator against local servers (loopback only, a few hundred
//! requests each). No assertion depends on how fast this machine is: counts come from the
//! schedule, and latency bounds are relative to the delays the servers inject.
#![allow(clippy::unwrap_used)]

#[path = "integration/ws.rs"]
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use praxis_bench::record::{ErrorKind, KindStats};
use praxis_bench::reference::{ReferenceArgs, ReferenceServer};
use praxis_bench::result::BenchResult;
use praxis_bench::scenario::Scenario;
use praxis_bench::schedule::Arrival;
use praxis_bench::seed::{SeedOutcome, seed};
use praxis_bench::workload::Workload;
use praxis_bench::{LoadPlan, RunOutcome, run_load};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

fn plan(workload: Workload, rate: f64, duration_ms: u64, connections: usize) -> LoadPlan {
    LoadPlan {
        workload: Arc::new(workload),
        rate,
        duration: Duration::from_millis(duration_ms),
        warmup: Duration::ZERO,
        connections,
        threads: 1,
        arrival: Arrival::Uniform,
        timeout: Duration::from_secs(5),
        spin: Duration::from_millis(2),
        seed: 7,
        progress: false,
    }
}

async fn run(plan: &LoadPlan) -> RunOutcome {
    run_load(plan, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap()
}

fn count_at_least(h: &hdrhistogram::Histogram<u64>, ns: u64) -> u64 {
    h.iter_recorded()
        .filter(|v| v.value_iterated_to() >= ns)
        .map(|v| v.count_at_value())
        .sum()
}

/// Every request due in the window is either a response or an error.
fn assert_accounted(outcome: &RunOutcome) {
    let all: KindStats = outcome.recorder.overall();
    assert_eq!(
        all.responses + all.total_errors() - all_status_errors(&all),
        outcome.scheduled,
        "responses {} errors {} scheduled {}",
        all.responses,
        all.total_errors(),
        outcome.scheduled
    );
}

/// Status errors are responses too; they must not be counted twice.
fn all_status_errors(k: &KindStats) -> u64 {
    k.errors(ErrorKind::Status4xx)
        + k.errors(ErrorKind::Status5xx)
        + k.errors(ErrorKind::UnexpectedStatus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_is_charged_to_every_request_scheduled_during_it() {
    const STALL: Duration = Duration::from_millis(500);
    let counter = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                // The 21st request (due at 200 ms) stalls the single connection for 500 ms.
                if n.fetch_add(1, Ordering::SeqCst) == 20 {
                    tokio::time::sleep(STALL).await;
                }
                "ok"
            }),
        )
        .with_state(Arc::clone(&counter));
    let addr = serve(app).await;
    let workload = Workload::from_url(&format!("http://{addr}/"), Some(200)).unwrap();
    // One connection, 100 req/s: requests are due every 10 ms for 1.5 s.
    let p = plan(workload, 100.0, 1500, 1);
    let outcome = run(&p).await;
    assert!(!outcome.interrupted);
    assert_accounted(&outcome);
    let k = outcome.recorder.kind("default").unwrap();
    assert_eq!(k.total_errors(), 0);
    assert!(
        (149..=151).contains(&outcome.scheduled),
        "{}",
        outcome.scheduled
    );

    let stall_ns = STALL.as_nanos() as u64;
    // The stalled request itself waited at least the stall.
    assert!(
        k.latency.max() >= stall_ns * 99 / 100,
        "max {}",
        k.latency.max()
    );
    // The ~49 requests due during the stall queued behind it; those due in its first half
    // (about 25) waited at least half of it, measured from their intended times.
    let slow = count_at_least(&k.latency, stall_ns / 2);
    assert!(slow >= 20, "only {slow} requests recorded >= 250 ms");
    // A closed-loop measurement (from the actual send) sees the stall essentially once.
    let slow_service = count_at_least(&k.service, stall_ns / 2);
    assert!(
        slow_service < slow,
        "service {slow_service} vs latency {slow}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_against_reference_with_outputs() {
    let server = ReferenceServer::start(ReferenceArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 1,
        status: 301,
        location: "https://example.com/".into(),
    })
    .await
    .unwrap();
    let workload = Workload::from_url(&format!("http://{}/x", server.addr), Some(301)).unwrap();
    let mut p = plan(workload, 200.0, 1000, 4);
    p.threads = 2;
    p.warmup = Duration::from_millis(200);
    p.arrival = Arrival::Poisson;
    let outcome = run(&p).await;
    assert_accounted(&outcome);
    let all = outcome.recorder.overall();
    assert_eq!(all.total_errors(), 0, "{all:?}");
    // Poisson with rate 200/s over 1 s: 200 ± a few standard deviations (sd ≈ 14).
    assert!(
        (120..=280).contains(&outcome.scheduled),
        "{}",
        outcome.scheduled
    );
    assert_eq!(all.responses, outcome.scheduled);

    let result = BenchResult::from_outcome(&p, &outcome, "2026-01-01T00:00:00Z".into());
    assert_eq!(result.responses, outcome.scheduled);
    assert_eq!(result.kinds.len(), 1);
    assert!(result.latency.p50_us > 0.0);
    assert!(result.latency.p50_us <= result.latency.p99_us);
    assert!(result.latency.p99_us <= result.latency.max_us);

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    result.write_json(&json).unwrap();
    assert_eq!(BenchResult::read_json(&json).unwrap(), result);
    let md = dir.path().join("run.md");
    praxis_bench::report::write_report(&md, &result).unwrap();
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("| default |")
    );
    assert!(dir.path().join("run.svg").exists());
    let same = praxis_bench::compare::compare(&result, &result);
    assert!(
        same.overall
            .iter()
            .all(|r| r.change_pct().is_none_or(|c| c == 0.0))
    );
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let workload = Workload::from_url(&format!("http://{addr}/"), None).unwrap();
    let p = plan(workload, 100.0, 300, 2);
    let outcome = run(&p).await;
    let all = outcome.recorder.overall();
    assert_eq!(all.responses, 0);
    assert_eq!(all.errors(ErrorKind::Connect), outcome.scheduled);
    assert!(outcome.scheduled >= 29, "{}", outcome.scheduled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_time_out_and_unsent_backlog_is_accounted() {
    let app = Router::new().route(
        "/",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let addr = serve(app).await;
    let workload = Workload::from_url(&format!("http://{addr}/"), None).unwrap();
    let mut p = plan(workload, 50.0, 400, 1);
    p.timeout = Duration::from_millis(150);
    let outcome = run(&p).await;
    assert_accounted(&outcome);
    let all = outcome.recorder.overall();
    assert_eq!(all.responses, 0);
    assert_eq!(all.errors(ErrorKind::Timeout), outcome.scheduled);
    assert!(
        (19..=21).contains(&outcome.scheduled),
        "{}",
        outcome.scheduled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closing_keep_alive_is_not_an_error_and_statuses_are_classified() {
    let n = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/close",
            get(|| async { ([(header::CONNECTION, "close")], "bye") }),
        )
        .route(
            "/mixed",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                match n.fetch_add(1, Ordering::SeqCst) % 4 {
                    0 => StatusCode::NOT_FOUND.into_response(),
                    1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    2 => StatusCode::OK.into_response(),
                    _ => StatusCode::MOVED_PERMANENTLY.into_response(),
                }
            }),
        )
        .with_state(n);
    let addr = serve(app).await;

    let workload = Workload::from_url(&format!("http://{addr}/close"), Some(200)).unwrap();
    let outcome = run(&plan(workload, 100.0, 300, 1)).await;
    assert_accounted(&outcome);
    let all = outcome.recorder.overall();
    assert_eq!(all.total_errors(), 0, "{all:?}");
    assert_eq!(all.responses, outcome.scheduled);

    let workload = Workload::from_url(&format!("http://{addr}/mixed"), Some(301)).unwrap();
    let outcome = run(&plan(workload, 100.0, 400, 1)).await;
    let all = outcome.recorder.overall();
    assert_eq!(all.responses, outcome.scheduled);
    let s4 = all.errors(ErrorKind::Status4xx);
    let s5 = all.errors(ErrorKind::Status5xx);
    let other = all.errors(ErrorKind::UnexpectedStatus);
    // Round robin over 404, 503, 200 and the expected 301: a quarter each.
    assert!(s4 >= 9 && s5 >= 9 && other >= 9, "{s4} {s5} {other}");
    let (lo, hi) = (s4.min(s5).min(other), s4.max(s5).max(other));
    assert!(hi - lo <= 1, "{s4} {s5} {other}");
    assert!(s4 + s5 + other < all.responses);
}

#[derive(Default)]
struct Fake {
    items: AtomicU64,
    requests: AtomicU64,
    auth: std::sync::Mutex<Option<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_seeds_then_runs_its_mix() {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route(
            "/api/v1/links/bulk",
            post(
                |State(f): State<Arc<Fake>>, headers: axum::http::HeaderMap, body: String| async move {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let n = v["links"].as_array().unwrap().len() as u64;
                    f.items.fetch_add(n, Ordering::SeqCst);
                    f.requests.fetch_add(1, Ordering::SeqCst);
                    let auth = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
                    *f.auth.lock().unwrap() = auth;
                    (StatusCode::OK, "{}")
                },
            ),
        )
        .route(
            "/{code}",
            get(|State(f): State<Arc<Fake>>, axum::extract::Path(code): axum::extract::Path<String>| async move {
                let seeded = f.items.load(Ordering::SeqCst);
                match code.strip_prefix("bk").and_then(|k| k.parse::<u64>().ok()) {
                    Some(k) if k < seeded => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "https://e/")]).into_response(),
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .with_state(Arc::clone(&fake));
    let addr = serve(app).await;
    // Setting a variable is unsafe in edition 2024 (and the workspace forbids unsafe code),
    // so the bearer token comes from PATH, which every test process has.
    let token = std::env::var("PATH").unwrap_or_default();
    let text = format!(
        r#"
name = "it"
base_url = "http://{addr}"
[seed]
path = "/api/v1/links/bulk"
count = 2500
batch = 1000
concurrency = 2
auth_env = "PATH"
item = '{{"url": "https://example.com/{{key}}", "alias": "bk{{key}}"}}'
body = '{{"links": [{{items}}]}}'
check = {{ path = "/bk2499", status = 301 }}
[keys.key]
dist = "zipf"
n = 2500
s = 1.1
[[request]]
name = "redirect"
weight = 3
path = "/bk{{key}}"
expect_status = 301
[[request]]
name = "missing"
weight = 1
path = "/nope{{key}}"
expect_status = 404
"#
    );
    let scenario = Scenario::parse(&text, "<it>").unwrap();
    let spec = scenario.seed.clone().unwrap();
    let workload = scenario.compile(None).unwrap();
    let out = seed(&spec, &workload.target, &workload.prefix, false)
        .await
        .unwrap();
    assert_eq!(
        out,
        SeedOutcome::Created {
            items: 2500,
            requests: 3
        }
    );
    assert_eq!(fake.items.load(Ordering::SeqCst), 2500);
    assert_eq!(
        fake.auth.lock().unwrap().as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    // The check now finds the data and seeding is skipped.
    let again = seed(&spec, &workload.target, &workload.prefix, false)
        .await
        .unwrap();
    assert_eq!(again, SeedOutcome::Skipped);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);

    let outcome = run(&plan(workload, 200.0, 1000, 4)).await;
    assert_accounted(&outcome);
    let redirect = outcome.recorder.kind("redirect").unwrap();
    let missing = outcome.recorder.kind("missing").unwrap();
    assert_eq!(redirect.total_errors() + missing.total_errors(), 0);
    assert_eq!(redirect.responses + missing.responses, outcome.scheduled);
    assert!(
        redirect.responses > missing.responses,
        "{} vs {}",
        redirect.responses,
        missing.responses
    );
}
