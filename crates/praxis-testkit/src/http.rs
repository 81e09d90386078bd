//! Driving an app in tests: build a request, send it through the app with
//! `tower::ServiceExt::oneshot` (no sockets), read the answer whole, assert on problem+json.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use praxis_http::{AuthSettings, HttpOptions, Service};
use praxis_infra::Platform;
use serde_json::Value;
use tower::ServiceExt;

/// The full app serving `services` on `platform` with `auth`, without the access log (test
/// output stays readable).
pub fn app(services: Vec<Service>, platform: &Platform, auth: AuthSettings) -> Router {
    let opts = HttpOptions {
        access_log: false,
        auth,
        ..HttpOptions::default()
    };
    praxis_http::app(services, platform.clone(), opts)
}

/// A request with `headers`, and `body` as JSON when given.
pub fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .unwrap_or_else(|e| panic!("bad test request {path}: {e}"))
}

/// [`request`] with `bearer` as the `authorization` header (`None`: anonymous).
pub fn bearer_request(
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    request(method, path, &headers, body)
}

/// Sends `req` through `app` and reads the response whole.
pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let res = match app.clone().oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    Resp::read(res).await
}

impl Resp {
    /// Reads `res` whole.
    pub async fn read(res: axum::response::Response) -> Resp {
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_else(|e| panic!("the response body could not be read: {e}"));
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn assert_status(&self, status: u16) {
        let got = self.status;
        assert_eq!(
            got.as_u16(),
            status,
            "expected {status}, got {got}: {}",
            self.text()
        );
    }

    /// Asserts a problem+json answer with this status; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> Value {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "not a problem: {}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["status"].as_u64(), Some(u64::from(status)), "{body}");
        body
    }

    /// Asserts a 401 problem with the bearer challenge; returns its detail.
    #[track_caller]
    pub fn unauthorized(&self) -> String {
        let body = self.problem(401);
        assert_eq!(self.header("www-authenticate"), Some("Bearer"), "{body}");
        body["detail"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the status; returns the JSON body (or Null when empty).
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        self.assert_status(status);
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// The field names of a validation problem.
    pub fn fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
