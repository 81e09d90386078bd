//! The per-request stack that wraps every route: request id, trace context, early body-limit
//! check, rate limiting, timeout, panic catching, problem finishing, RED metrics and the access
//! log.
//!
//! The trace context comes from the request's `traceparent` (a new trace when absent or
//! invalid); the request is a child span of it, and the whole request (the handler's polls,
//! the access log) runs with that span as the current trace context, so every log line of the
//! request carries its ids and every event it enqueues and call it makes carries the trace on.
//!
//! It is one hand-written tower layer with one future instead of six stacked middlewares: no
//! boxing and no allocation beyond the request id (a rate-limit decision that waits for Redis
//! or a principal is boxed, and so are rate-limit fields when a response carries them), and,
//! because it is the outermost wrapper of each route (added with `Router::layer`, so after
//! routing and with the matched path known), the access log and metrics see the final status,
//! including timeouts (503) and panics (500).
//!
//! Timeouts answer **503 `timeout`** rather than 504: 504 means a gateway got no answer from
//! an upstream, while here the server itself ran out of time (overload or a slow dependency);
//! 503 tells clients and load balancers that the server is the problem and retrying later is
//! reasonable. (408 would wrongly blame the client.)

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{BoxFuture, CatchUnwind};
use praxis_infra::trace::{self, TRACEPARENT, TraceContext};
use tokio::time::Sleep;
use tower::{Layer, Service};
use tracing::Span;

use crate::access_log;
use crate::context::RequestContext;
use crate::metrics::{RedMetrics, UNMATCHED_ROUTE, method_label};
use crate::principal::AuthSettings;
use crate::problem::{self, Problem};
use crate::ratelimit::{Check, Fields, Later, RateLimiting};
use crate::request_id::{RequestId, X_REQUEST_ID};

/// What the stack does; shared by every route.
pub(crate) struct StackConfig {
    /// Bodies declared larger than this (Content-Length) are refused with 413 before the
    /// handler runs; undeclared (streamed) bodies are cut at it by the extractors (axum's
    /// `DefaultBodyLimit`, set here per request, so axum's own extractors honour it too).
    pub body_limit: usize,
    /// Time allowed until the response head; `None` disables the timeout.
    pub timeout: Option<Duration>,
    /// Emit the access-log event.
    pub access_log: bool,
    /// Record RED metrics.
    pub metrics: Option<RedMetrics>,
    /// Added to each request for the `Caller` extractor.
    pub auth: Arc<AuthSettings>,
    /// Rate-limit policies checked after the body-limit check and before the handler; `None`
    /// when there are none.
    pub rate_limit: Option<RateLimiting>,
    /// Routes (path templates) whose handlers stream their bodies: no body limit and no
    /// timeout here (see `Service::streaming`). Usually empty or one or two entries.
    pub streaming: Vec<&'static str>,
}

/// Layer applying [`StackConfig`] to a route.
#[derive(Clone)]
pub(crate) struct StackLayer {
    cfg: Arc<StackConfig>,
}

impl StackLayer {
    pub(crate) fn new(cfg: StackConfig) -> Self {
        Self { cfg: Arc::new(cfg) }
    }
}

impl<S> Layer<S> for StackLayer {
    type Service = Stack<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Stack {
            inner,
            cfg: self.cfg.clone(),
        }
    }
}

/// The service produced by [`StackLayer`].
#[derive(Clone)]
pub(crate) struct Stack<S> {
    inner: S,
    cfg: Arc<StackConfig>,
}

impl<S> Service<Request> for Stack<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = StackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let id = RequestId::from_headers(req.headers());
        let method = method_label(req.method());
        let route = req.extensions().get::<MatchedPath>().cloned();
        let parent = req
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| TraceContext::parse(v.as_bytes()));
        let (span, trace) = trace::start(parent, || request_span(method, route.as_ref()));
        let _entered = span.enter();
        trace::sync_scope(trace, || self.call_traced(req, start, id, method, route))
            .traced(span.clone(), trace)
    }
}

impl<S> Stack<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    /// [`Service::call`] inside the request's trace scope.
    #[inline(always)]
    fn call_traced(
        &mut self,
        mut req: Request,
        start: Instant,
        id: RequestId,
        method: &'static str,
        route: Option<MatchedPath>,
    ) -> StackFuture<S::Future> {
        // One extension for the request id and the auth settings (each insert is a box).
        req.extensions_mut().insert(RequestContext {
            id: id.clone(),
            auth: self.cfg.auth.clone(),
        });
        let streaming = !self.cfg.streaming.is_empty()
            && route
                .as_ref()
                .is_some_and(|r| self.cfg.streaming.contains(&r.as_str()));
        if streaming {
            DefaultBodyLimit::disable().apply(&mut req);
        } else {
            DefaultBodyLimit::max(self.cfg.body_limit).apply(&mut req);
        }

        let state = if !streaming && declared_len(&req).is_some_and(|n| n > self.cfg.body_limit) {
            let detail = format!(
                "the request body is larger than {} bytes",
                self.cfg.body_limit
            );
            State::Early {
                res: Some(Problem::payload_too_large(detail).into_response()),
            }
        } else {
            match self.check_rate_limit(&req, route.as_ref(), start, &id) {
                Check::Allowed(fields) => self.call_inner(req, &id, fields),
                Check::Denied(res) => State::Early { res: Some(res) },
                Check::Later(later) => self.call_rate_limited(later, req),
            }
        };
        StackFuture {
            state,
            sleep: None,
            done: Some(Done {
                start,
                id,
                method,
                route,
                timeout: if streaming { None } else { self.cfg.timeout },
                cfg: self.cfg.clone(),
            }),
            span: Span::none(),
            trace: None,
        }
    }

    /// The rate-limit decision for a request that arrived at `arrived` (every request is
    /// allowed, with no fields, when there are no policies).
    #[inline(always)]
    fn check_rate_limit(
        &self,
        req: &Request,
        route: Option<&MatchedPath>,
        arrived: Instant,
        id: &RequestId,
    ) -> Check {
        let Some(limiting) = &self.cfg.rate_limit else {
            return Check::Allowed(Fields::default());
        };
        let route = route.map(MatchedPath::as_str);
        std::panic::catch_unwind(AssertUnwindSafe(|| limiting.check(req, route, arrived)))
            .unwrap_or_else(|panic| Check::Denied(panic_response(panic, id, "rate-limit decision")))
    }

    /// Calls the handler; `fields` go on its response.
    #[inline(always)]
    fn call_inner(&mut self, req: Request, id: &RequestId, fields: Fields) -> State<S::Future> {
        let mut ready = self.take_ready();
        match std::panic::catch_unwind(AssertUnwindSafe(move || ready.call(req))) {
            Ok(fut) => State::Running {
                fut: AssertUnwindSafe(fut).catch_unwind(),
                fields,
            },
            Err(panic) => State::Early {
                res: Some(panic_response(panic, id, "handler")),
            },
        }
    }

    /// Hands the request to a rate-limit decision that waits (Redis, a principal); the
    /// handler is called once it allows.
    fn call_rate_limited(&mut self, later: Later, req: Request) -> State<S::Future> {
        State::Deciding {
            fut: AssertUnwindSafe(later.call(self.take_ready(), req)).catch_unwind(),
        }
    }

    /// The usual tower dance: the inner service that was driven to readiness, leaving a clone
    /// in its place.
    #[inline(always)]
    fn take_ready(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

fn declared_len(req: &Request) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// What the future needs once the response is known.
struct Done {
    start: Instant,
    id: RequestId,
    method: &'static str,
    route: Option<MatchedPath>,
    /// The stack's timeout for this request (none for a streaming route).
    timeout: Option<Duration>,
    cfg: Arc<StackConfig>,
}

impl Done {
    fn finish(self, res: Response) -> Response {
        let mut res = problem::finish(res, Some(&self.id.0));
        res.headers_mut()
            .insert(X_REQUEST_ID.clone(), self.id.0.clone());
        let took = self.start.elapsed();
        let route = self
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        if let Some(red) = &self.cfg.metrics {
            red.record(self.method, route, res.status(), took);
        }
        if self.cfg.access_log {
            access_log::emit(
                self.id.as_str(),
                self.method,
                route,
                res.status().as_u16(),
                took,
            );
        }
        res
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        // The handler's future, and the rate-limit fields for its response (not for a 500 or
        // 503 the stack answers instead).
        Running { #[pin] fut: CatchUnwind<AssertUnwindSafe<F>>, fields: Fields },
        // A rate-limit decision that waits (Redis, a principal), then the handler.
        Deciding { #[pin] fut: CatchUnwind<AssertUnwindSafe<BoxFuture<'static, Result<Response, Infallible>>>> },
        // The answer is known without the handler.
        Early { res: Option<Response> },
        Finished,
    }
}

pin_project_lite::pin_project! {
    /// Future of [`Stack`].
    pub(crate) struct StackFuture<F> {
        #[pin]
        state: State<F>,
        // Armed (and boxed) only when the inner future first returns Pending: answers ready
        // on the first poll (cache hits) never touch the timer wheel.
        sleep: Option<Pin<Box<Sleep>>>,
        done: Option<Done>,
        // The exported span of the request (`Span::none()` unless spans are exported).
        span: Span,
        // The request's trace context, current in every poll (set by `traced`).
        trace: Option<TraceContext>,
    }
}

impl<F> StackFuture<F> {
    fn traced(mut self, span: Span, trace: TraceContext) -> Self {
        self.span = span;
        self.trace = Some(trace);
        self
    }
}

/// The exported span of one request (made only when spans are exported).
fn request_span(method: &'static str, route: Option<&MatchedPath>) -> Span {
    let route = route.map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    tracing::info_span!(
        target: trace::SPAN_TARGET,
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

impl<F> Future for StackFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let polled = match *this.trace {
            Some(trace) => {
                trace::sync_scope(trace, || poll_stack(this.state, this.sleep, this.done, cx))
            }
            None => poll_stack(this.state, this.sleep, this.done, cx),
        };
        if let Poll::Ready(Ok(res)) = &polled
            && !this.span.is_none()
        {
            let status = res.status().as_u16();
            this.span.record("http.response.status_code", status);
            if status >= 500 {
                this.span.record("otel.status_code", "ERROR");
            }
        }
        polled
    }
}

/// The body of [`StackFuture::poll`], run inside the request's trace scope.
#[inline(always)]
fn poll_stack<F>(
    mut state: Pin<&mut State<F>>,
    sleep: &mut Option<Pin<Box<Sleep>>>,
    done: &mut Option<Done>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response, Infallible>>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let res = match state.as_mut().project() {
        StateProj::Early { res } => res.take(),
        StateProj::Running { fut, fields } => {
            match ready!(handler_response(fut.poll(cx), sleep, done, cx)) {
                Ok(mut res) => {
                    std::mem::take(fields).apply(res.headers_mut());
                    Some(res)
                }
                Err(res) => Some(res),
            }
        }
        StateProj::Deciding { fut } => {
            match ready!(handler_response(fut.poll(cx), sleep, done, cx)) {
                Ok(res) | Err(res) => Some(res),
            }
        }
        StateProj::Finished => None,
    };
    state.set(State::Finished);
    *sleep = None;
    // Polled after completion: answer a bug-shaped 500 rather than panic.
    let res = res.unwrap_or_else(|| {
        Problem::internal("stack future polled after completion").into_response()
    });
    let res = match done.take() {
        Some(done) => done.finish(res),
        None => res,
    };
    Poll::Ready(Ok(res))
}

/// Once the handler's future (`polled`) is ready: `Ok` with its response, or `Err` with the
/// stack's own answer: a 503 when the timeout (armed on the first `Pending`) fired first, a
/// 500 when the handler panicked.
#[inline(always)]
fn handler_response(
    polled: Poll<std::thread::Result<Result<Response, Infallible>>>,
    sleep: &mut Option<Pin<Box<Sleep>>>,
    done: &Option<Done>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response, Response>> {
    if polled.is_pending()
        && sleep.is_none()
        && let Some(done) = done.as_ref()
        && let Some(limit) = done.timeout
    {
        *sleep = Some(Box::pin(tokio::time::sleep_until(
            (done.start + limit).into(),
        )));
    }
    let out = ready!(ready_or_timeout(
        polled,
        sleep.as_mut().map(Pin::as_mut),
        cx
    ));
    Poll::Ready(match out {
        Some(Ok(Ok(res))) => Ok(res),
        Some(Ok(Err(never))) => match never {},
        Some(Err(panic)) => {
            let id = done
                .as_ref()
                .map_or_else(RequestId::generate, |d| d.id.clone());
            Err(panic_response(panic, &id, "handler"))
        }
        None => Err(timeout_response(done.as_ref().and_then(|d| d.timeout))),
    })
}

/// `Ready(Some(out))` when the inner future finished, `Ready(None)` when the timer fired first.
fn ready_or_timeout<T>(
    inner: Poll<T>,
    sleep: Option<Pin<&mut Sleep>>,
    cx: &mut Context<'_>,
) -> Poll<Option<T>> {
    if let Poll::Ready(out) = inner {
        return Poll::Ready(Some(out));
    }
    let Some(sleep) = sleep else {
        return Poll::Pending;
    };
    ready!(sleep.poll(cx));
    Poll::Ready(None)
}

fn timeout_response(limit: Option<Duration>) -> Response {
    let ms = limit.map_or(0, |d| d.as_millis());
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "Request timed out",
        format!("the server did not finish the request within {ms} ms; retry later"),
    )
    .into_response()
}

/// The 500 answer to a panic in `what` (the handler, the rate-limit decision), logged.
fn panic_response(panic: Box<dyn Any + Send>, id: &RequestId, what: &str) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    tracing::error!(request_id = id.as_str(), panic = message, "{what} panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal server error",
        "the server failed to handle the request; it has been logged",
    )
    .into_response()
}
