//! The rate-limit layer: configured policies checked on every matching request, with the
//! platform's [`Limiter`] (Redis when the platform has it, in-process otherwise).
//!
//! [`app`](crate::app::app) adds it (a separate tower layer, inside the request stack, so 429s
//! get the request id, the access log and RED metrics) only when
//! [`HttpOptions::rate_limit`](crate::HttpOptions::rate_limit) has policies: a server without
//! policies pays nothing, and a route no policy matches pays one scan of the policy list.
//!
//! For each request, the policies that match it (method, and path prefix or route template)
//! are checked in configuration order, one hit each, keyed by client IP, account, API key,
//! route or nothing (global). The first denial of a policy that is not in shadow mode answers
//! at once, and the policies after it are not charged; policies before it keep their hit.
//! Shadow policies are counted in metrics and never block.
//!
//! # Answers
//!
//! - Denied: **429** `application/problem+json`, type `https://praxis.dev/problems/rate-limited`,
//!   with a `violated-policies` member (as the draft's `quota-exceeded` problem has) and
//!   `Retry-After` in whole seconds, rounded up. When the store is down and the policy fails
//!   closed: **503** `rate-limit-unavailable` with `Retry-After: 1` (the client did nothing
//!   wrong; the draft's `temporary-reduced-capacity` problem is also a 503).
//! - Every response of a limited route carries, for each enforcing (non-shadow) policy checked,
//!   the fields of draft-ietf-httpapi-ratelimit-headers-11 (May 2026), in their Structured
//!   Field form: `RateLimit-Policy: "api";q=100;w=60` (quota and window in seconds, rounded up)
//!   and `RateLimit: "api";r=42;t=17` (remaining, and the effective window: seconds until the
//!   quota is whole again when allowed; on a denial the same value as `Retry-After`, since the
//!   draft says Retry-After should not point before the end of the effective window).
//!
//! # Client IP and principals
//!
//! The client IP is the socket peer (`ConnectInfo<SocketAddr>`, which the server must provide:
//! `into_make_service_with_connect_info::<SocketAddr>()`); `X-Forwarded-For` is believed only
//! from `trusted_proxies` (rightmost untrusted hop, see [`Cidr`]). Without a peer address every
//! client is keyed `unknown` (one shared counter; a warning is logged once). `account` and
//! `api_key` policies resolve the caller with [`crate::auth::principal`] (cached for the
//! handler); anonymous callers and rejected tokens are keyed by client IP, and the principal's
//! `plan` picks the plan's limits.
//!
//! # Metrics
//!
//! [`DECISIONS_TOTAL`] `{policy, result}` and [`STORE_FAILURES_TOTAL`] `{policy, mode}`.

mod client_ip;
mod config;
mod counters;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::future::{BoxFuture, Either};
use praxis_infra::ratelimit::{Decision, Limiter, Source};
use tower::{Layer, Service};

pub use client_ip::Cidr;
pub use config::{
    KeyKind, MatchConfig, PlanConfig, PolicyConfig, RateLimitConfig, RateLimitConfigError,
    RateLimits,
};
pub use counters::{DECISIONS_TOTAL, STORE_FAILURES_TOTAL};

use crate::auth::Principal;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::stack::RequestContext;
use config::{PlanRule, Policy};
use counters::{Outcome, PolicyMetrics};

/// The `RateLimit` response field (remaining quota per policy).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The `RateLimit-Policy` response field (quota and window per policy).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Problem type slug of a rate-limited request (429).
pub const RATE_LIMITED: &str = "rate-limited";
/// Problem type slug of a request refused because the limiter's store is down and the policy
/// fails closed (503).
pub const RATE_LIMIT_UNAVAILABLE: &str = "rate-limit-unavailable";

/// Applies [`RateLimits`] to a router's routes (`Router::layer`).
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limits: RateLimits,
    limiter: Limiter,
    warned_no_peer: AtomicBool,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field(
                "policies",
                &self.shared.limits.policy_names().collect::<Vec<_>>(),
            )
            .field("limiter", &self.shared.limiter)
            .finish()
    }
}

impl RateLimitLayer {
    /// The layer deciding `limits` with `limiter`.
    pub fn new(limits: RateLimits, limiter: Limiter) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                limiter,
                warned_no_peer: AtomicBool::new(false),
            }),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service produced by [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let policies = &self.shared.limits.policies;
        let matched: Vec<usize> = {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            let (method, path) = (req.method(), req.uri().path());
            let Some(first) = policies.iter().position(|p| p.matches(method, path, route)) else {
                return Either::Left(self.inner.call(req));
            };
            std::iter::once(first)
                .chain(
                    (first + 1..policies.len())
                        .filter(|&i| policies[i].matches(method, path, route)),
                )
                .collect()
        };
        // The usual tower dance: call the clone that was driven to readiness.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(limit(self.shared.clone(), matched, inner, req)))
    }
}

/// What the keys of one request are made of, resolved at most once.
#[derive(Default)]
struct Caller {
    ip: Option<String>,
    principal: Option<Option<Principal>>,
}

async fn limit<S>(
    shared: Arc<Shared>,
    matched: Vec<usize>,
    mut inner: S,
    req: Request,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let (mut parts, body) = req.into_parts();
    let mut caller = Caller::default();
    let mut fields = Fields::default();
    for i in matched {
        let policy = &shared.limits.policies[i];
        let (key, plan_rule) = key_for(&shared, policy, &mut parts, &mut caller).await;
        let verdict = shared
            .limiter
            .check(&key, &plan_rule.rule, 1, policy.on_failure)
            .await;
        let metrics = policy
            .metrics
            .get_or_init(|| PolicyMetrics::new(&policy.name, policy.on_failure.name()));
        if shared.limiter.is_shared() && verdict.source != Source::Shared {
            metrics.store_failure();
        }
        let d = verdict.decision;
        if d.allowed {
            let near = d.remaining.saturating_mul(10) < plan_rule.rule.capacity();
            metrics.record(if near {
                Outcome::NearLimit
            } else {
                Outcome::Allowed
            });
            if !policy.shadow {
                fields.push(plan_rule, &policy.name, &d, d.reset_after_secs());
            }
            continue;
        }
        if policy.shadow {
            metrics.record(Outcome::ShadowLimited);
            continue;
        }
        metrics.record(Outcome::Limited);
        let retry = d
            .retry_after_secs()
            .unwrap_or_else(|| d.reset_after_secs())
            .max(1);
        fields.push(plan_rule, &policy.name, &d, retry);
        return Ok(denied(
            policy,
            plan_rule,
            verdict.source,
            retry,
            &fields,
            &parts,
        ));
    }
    let mut res = inner.call(Request::from_parts(parts, body)).await?;
    fields.apply(res.headers_mut());
    Ok(res)
}

/// The limiter key of `policy` for this request, and the rule of the caller's plan.
async fn key_for<'p>(
    shared: &Shared,
    policy: &'p Policy,
    parts: &mut Parts,
    caller: &mut Caller,
) -> (String, &'p PlanRule) {
    let name = &policy.name;
    match policy.key {
        config::KeyKind::Global => (format!("http:{name}:global"), &policy.base),
        config::KeyKind::Route => {
            // Unmatched paths share one key: a flood of random 404s creates no keys.
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map_or(crate::metrics::UNMATCHED_ROUTE, MatchedPath::as_str);
            (
                format!("http:{name}:route:{} {route}", parts.method),
                &policy.base,
            )
        }
        config::KeyKind::Ip => {
            let ip = client_ip_key(shared, parts, caller);
            (format!("http:{name}:ip:{ip}"), &policy.base)
        }
        config::KeyKind::Account | config::KeyKind::ApiKey => {
            if caller.principal.is_none() {
                // A rejected token limits like an anonymous caller; the handler answers 401.
                let resolved = crate::auth::principal(parts).await.ok().flatten();
                caller.principal = Some(resolved);
            }
            let principal = caller.principal.as_ref().and_then(Option::as_ref);
            let Some(p) = principal else {
                let ip = client_ip_key(shared, parts, caller);
                return (format!("http:{name}:ip:{ip}"), &policy.base);
            };
            let key = match (policy.key, p.api_key_id()) {
                (config::KeyKind::ApiKey, Some(id)) => format!("http:{name}:key:{id}"),
                _ => format!("http:{name}:acct:{}", p.subject),
            };
            (key, policy.rule_for(Some(&p.plan)))
        }
    }
}

fn client_ip_key(shared: &Shared, parts: &Parts, caller: &mut Caller) -> String {
    if let Some(ip) = &caller.ip {
        return ip.clone();
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if peer.is_none() && !shared.warned_no_peer.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "rate limit by client IP without the peer address: every client shares the key \
             `unknown`; serve with into_make_service_with_connect_info::<SocketAddr>()"
        );
    }
    let limits = &shared.limits;
    let ip = client_ip::client_ip(peer, &parts.headers, &limits.trusted).map_or_else(
        || "unknown".to_owned(),
        |ip| client_ip::ip_key(ip, limits.ipv6_subnet),
    );
    caller.ip = Some(ip.clone());
    ip
}

/// The `RateLimit-Policy` and `RateLimit` lists of a response.
#[derive(Default)]
struct Fields {
    policy: String,
    limit: String,
}

impl Fields {
    fn push(&mut self, plan_rule: &PlanRule, name: &str, d: &Decision, t: u64) {
        use std::fmt::Write as _;
        if !self.policy.is_empty() {
            self.policy.push_str(", ");
            self.limit.push_str(", ");
        }
        self.policy.push_str(&plan_rule.policy_item);
        let _ = write!(self.limit, "\"{name}\";r={};t={t}", d.remaining);
    }

    fn apply(&self, headers: &mut HeaderMap) {
        if self.policy.is_empty() {
            return;
        }
        // Policy names are plain ASCII (checked at validation): always valid values.
        if let Ok(v) = HeaderValue::from_str(&self.policy) {
            headers.insert(RATELIMIT_POLICY.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.limit) {
            headers.insert(RATELIMIT.clone(), v);
        }
    }
}

/// The 429 (or 503 when failing closed) answer to a denied request.
fn denied(
    policy: &Policy,
    plan_rule: &PlanRule,
    source: Source,
    retry: u64,
    fields: &Fields,
    parts: &Parts,
) -> Response {
    let name = &policy.name;
    let mut problem = if source == Source::FailedClosed {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RATE_LIMIT_UNAVAILABLE,
            "Rate limiter unavailable",
            format!(
                "the rate limiter cannot reach its store and policy \"{name}\" fails closed; \
                 retry in {retry} s"
            ),
        )
    } else {
        let quota = &plan_rule.rule.quota;
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            RATE_LIMITED,
            "Too many requests",
            format!(
                "rate limit \"{name}\" exceeded: {} requests per {:?}; retry in {retry} s",
                quota.limit(),
                quota.period()
            ),
        )
    };
    // With the request id already set, the stack keeps this body (and its extra member).
    if let Some(ctx) = parts.extensions.get::<RequestContext>() {
        problem.request_id = Some(ctx.id.as_str().to_owned());
    }
    let mut body = serde_json::to_value(&problem).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("violated-policies".to_owned(), serde_json::json!([name]));
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = problem.status;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry));
    fields.apply(headers);
    res.extensions_mut().insert(problem);
    res
}
