//! One JSON access-log line per request, with the final status (panics and timeouts too).

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{TestApp, options};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn access_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["target"] == "access")
            .collect()
    }
}

fn subscriber(capture: &Capture) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .json()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::INFO)
        .finish()
}

#[tokio::test(flavor = "current_thread")]
async fn one_line_per_request_with_route_template() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(subscriber(&capture));
    let app = TestApp::new().await;
    let req = Request::get("/api/v1/test/items/42")
        .header("x-request-id", "log-me")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, 200);
    app.get("/api/v1/test/panic").await;
    app.get("/api/v1/test/slow").await;
    app.get("/nowhere").await;

    let lines = capture.access_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(f["request_id"], "log-me");
    assert_eq!(f["method"], "GET");
    assert_eq!(
        f["route"], "/api/v1/test/items/{id}",
        "template, not raw path"
    );
    assert_eq!(f["status"], 200);
    assert!(f["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[1]["fields"]["status"], 500);
    assert_eq!(lines[2]["fields"]["status"], 503);
    assert_eq!(lines[3]["fields"]["status"], 404);
    assert_eq!(lines[3]["fields"]["route"], "unmatched");
}

#[tokio::test(flavor = "current_thread")]
async fn access_log_can_be_switched_off() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(subscriber(&capture));
    let app = TestApp::with_options(praxis_http::HttpOptions {
        access_log: false,
        ..options()
    })
    .await;
    app.get("/healthz").await;
    assert!(capture.access_lines().is_empty());
}
