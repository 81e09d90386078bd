//! One attempt at an instance: the request built for it, sent within its deadline, and its
//! outcome recorded (metrics, latency estimate, outlier detection).

use std::time::Instant;

use axum::body::Body;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use metrics::{counter, histogram};
use praxis_http::Problem;
use praxis_kit::outlier::Outcome;

use crate::metrics::{EJECTIONS_TOTAL, UPSTREAM_DURATION, UPSTREAM_REQUESTS_TOTAL};
use crate::pool::{InFlight, Members, Pool};

pub(super) fn outcome_of(status: StatusCode) -> Outcome {
    match status.as_u16() {
        502..=504 => Outcome::GatewayError,
        500..=599 => Outcome::ServerError,
        _ => Outcome::Success,
    }
}

pub(super) fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::ServerError => "server_error",
        Outcome::GatewayError => "gateway_error",
    }
}

pub(super) fn problem(p: Problem) -> Response<Body> {
    p.into_response()
}

/// The request body, kept for retries or streamed once.
pub(super) enum Outgoing {
    /// Read into memory, sent again on each attempt.
    Kept(Bytes),
    /// Streamed through once.
    Stream(Option<Incoming>),
}

impl Outgoing {
    pub(super) fn next(&mut self) -> Body {
        match self {
            Outgoing::Kept(b) => Body::from(b.clone()),
            Outgoing::Stream(s) => s.take().map(Body::new).unwrap_or_else(Body::empty),
        }
    }
}

/// Why no upstream response came back.
pub(super) enum Failure {
    /// The attempt's deadline passed.
    Timeout,
    /// No connection could be opened.
    Connect(String),
    /// The connection failed otherwise.
    Other(String),
}

/// How to build the request for an instance.
pub(super) struct Target<'a> {
    pub(super) parts: &'a http::request::Parts,
    pub(super) path_and_query: &'a str,
    pub(super) version: Version,
}

impl Target<'_> {
    pub(super) fn request(
        &self,
        addr: &str,
        body: &mut Outgoing,
    ) -> Result<Request<Body>, http::Error> {
        let mut req = Request::builder()
            .method(self.parts.method.clone())
            .uri(format!("http://{addr}{}", self.path_and_query))
            .version(self.version)
            .body(body.next())?;
        *req.headers_mut() = self.parts.headers.clone();
        Ok(req)
    }
}

pub(super) fn bad_target(e: http::Error) -> Response<Body> {
    problem(Problem::bad_request(
        "bad-target",
        format!("the request target cannot be forwarded: {e}"),
    ))
}

/// One attempt at an instance: what came back and how long it took, and the instance's
/// in-flight count, held until the response is done.
pub(super) struct Attempt {
    pub(super) i: usize,
    pub(super) in_flight: InFlight,
    pub(super) result: Result<Response<Incoming>, Failure>,
    pub(super) latency: std::time::Duration,
}

impl Attempt {
    pub(super) fn is_gateway_error(&self) -> bool {
        match &self.result {
            Ok(resp) => outcome_of(resp.status()) == Outcome::GatewayError,
            Err(_) => true,
        }
    }
}

/// Sends `req` to instance `i` of `members` within `per_try`.
pub(super) async fn attempt(
    pool: &Pool,
    members: &Members,
    i: usize,
    req: Request<Body>,
    per_try: std::time::Duration,
) -> Attempt {
    let in_flight = members.instances[i].start();
    let sent = Instant::now();
    let result = if per_try.is_zero() {
        Err(Failure::Timeout)
    } else {
        match tokio::time::timeout(per_try, pool.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) if e.is_connect() => Err(Failure::Connect(e.to_string())),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => Err(Failure::Timeout),
        }
    };
    Attempt {
        i,
        in_flight,
        result,
        latency: sent.elapsed(),
    }
}

/// Records an attempt's outcome: metrics, the instance's latency, outlier detection.
pub(super) fn record(pool: &Pool, members: &Members, a: &Attempt) {
    let outcome = match &a.result {
        Ok(resp) => outcome_of(resp.status()),
        Err(_) => Outcome::GatewayError,
    };
    let addr = &members.instances[a.i].addr;
    members.instances[a.i].breaker_record(outcome == Outcome::Success, pool.now_ms());
    counter!(UPSTREAM_REQUESTS_TOTAL, "pool" => pool.name.clone(), "upstream" => addr.clone(), "outcome" => outcome_label(outcome))
        .increment(1);
    histogram!(UPSTREAM_DURATION, "pool" => pool.name.clone(), "upstream" => addr.clone())
        .record(a.latency.as_secs_f64());
    if let Some(e) = pool.report(members, a.i, outcome, a.latency) {
        counter!(EJECTIONS_TOTAL, "pool" => pool.name.clone(), "upstream" => addr.clone(), "reason" => e.reason.as_str())
            .increment(1);
        tracing::warn!(
            pool = %pool.name,
            upstream = %addr,
            reason = e.reason.as_str(),
            times = e.times,
            "gateway: instance ejected"
        );
    }
}
