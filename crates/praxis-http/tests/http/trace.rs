//! The stack runs every handler in the request's trace: a child of the caller's `traceparent`,
//! or a new trace when there is none or it is invalid.

use axum::body::Body;
use axum::http::Request;
use praxis_infra::trace::TraceContext;

use crate::support::TestApp;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn handler_trace(reply: &crate::support::Reply) -> TraceContext {
    let text = reply.json()["traceparent"]
        .as_str()
        .map(str::to_owned)
        .expect("the handler runs in a trace");
    TraceContext::parse(text.as_bytes()).expect("a valid traceparent")
}

#[tokio::test]
async fn a_handler_runs_as_a_child_of_the_callers_trace() {
    let app = TestApp::new().await;
    let req = Request::get("/api/v1/test/trace")
        .header("traceparent", CALLER)
        .body(Body::empty())
        .unwrap();
    let reply = app.send(req).await;
    let caller = TraceContext::parse(CALLER.as_bytes()).unwrap();
    let inside = handler_trace(&reply);
    assert_eq!(inside.trace_id(), caller.trace_id());
    assert_ne!(inside.span_id(), caller.span_id());
    assert!(inside.sampled(), "the caller's sampling decision is kept");
}

#[tokio::test]
async fn without_a_valid_traceparent_each_request_starts_a_trace() {
    let app = TestApp::new().await;
    let first = handler_trace(&app.get("/api/v1/test/trace").await);
    let second = handler_trace(&app.get("/api/v1/test/trace").await);
    assert_ne!(first.trace_id(), second.trace_id());
    let req = Request::get("/api/v1/test/trace")
        .header(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let reply = app.send(req).await;
    assert_eq!(reply.status, 200);
    let caller = TraceContext::parse(CALLER.as_bytes()).unwrap();
    assert_ne!(handler_trace(&reply).trace_id(), caller.trace_id());
}
