//! Per-request cost of the HTTP stack in front of a redirect-shaped handler, driven with
//! `oneshot` (no sockets): a bare axum router versus the app with the access log and metrics
//! on, off, and each alone. The differences are the stack's overhead per request.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use praxis_http::{HttpOptions, Service, app, install_metrics_recorder};
use tower::ServiceExt;

async fn redirect() -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "https://example.com/landing")],
    )
}

fn routes() -> Router {
    Router::new().route("/{code}", get(redirect))
}

fn bench_stack(c: &mut Criterion) {
    // JSON access lines go to a sink: formatting is measured, not terminal I/O.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = rt.block_on(praxis_testkit::embedded());
    let handle = install_metrics_recorder();
    let with = |access_log: bool, metrics: bool| {
        let opts = HttpOptions {
            access_log,
            metrics: metrics.then(|| handle.clone()),
            request_timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        };
        let service = Service::new("bench", routes(), utoipa::openapi::OpenApi::default());
        app(vec![service], backend.platform.clone(), opts)
    };
    let variants = [
        ("bare_axum", routes()),
        ("stack_log_metrics", with(true, true)),
        ("stack_metrics_only", with(false, true)),
        ("stack_log_only", with(true, false)),
        ("stack_neither", with(false, false)),
    ];
    let mut g = c.benchmark_group("http_stack");
    for (name, router) in variants {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let req = Request::get("/abc1234")
                    .body(Body::empty())
                    .expect("request");
                let router = router.clone();
                async move {
                    let res = router.oneshot(req).await.expect("infallible");
                    assert_eq!(res.status(), StatusCode::FOUND);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_stack);
criterion_main!(benches);
