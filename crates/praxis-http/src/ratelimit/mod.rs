//! Rate limiting: configured policies checked on every matching request, with the
//! platform's [`Limiter`] (Redis when the platform has it, in-process otherwise).
//!
//! It is not a layer of its own: the request stack (`crate::stack`) checks each request with
//! a `RateLimiting` after routing and before the handler, when
//! [`HttpOptions::rate_limit`](crate::HttpOptions::rate_limit) has policies, so 429s get the
//! request id, the access log and RED metrics, and the route pays no second wrapper (a layer
//! of its own cost a clone of the route service and a move of the whole handler future per
//! request, a third of the decision's cost; D57). A server without policies pays one branch,
//! and a route no policy matches one scan of the policy list.
//!
//! With the in-process limiter and keys that need no lookup (client IP, route, global) the
//! decision is taken in the stack's `call` on the borrowed request, at the request's arrival
//! time (the stack reads the clock anyway), with the route the stack looked up, and without a
//! boxed future: `ip` policies keyed by policy and address, other keys built in a reused
//! buffer, the `RateLimit-Policy` value cloned from configuration, two allocations for the
//! `RateLimit` value and the box the fields ride in through the handler (none when the
//! policy's [`HeadersMode`] leaves the fields out). Redis decisions and principal keys (which
//! may read the database) take a boxed future.
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
//! - Every answer of a limited route's handler (not the stack's own 500 or 503 when the
//!   handler panics or times out) carries (by default; a policy's `headers` setting,
//!   [`HeadersMode`], can keep them to responses near the limit or to denials), for each
//!   enforcing (non-shadow) policy checked, the fields of
//!   draft-ietf-httpapi-ratelimit-headers-11 (May 2026), in their Structured Field form:
//!   `RateLimit-Policy: "api";q=100;w=60` (quota and window in seconds, rounded up) and
//!   `RateLimit: "api";r=42;t=17` (remaining, and the effective window: seconds until the
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

mod config;
pub mod counters;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::future::BoxFuture;
use praxis_infra::ratelimit::{Decision, InProcess, KeyedLimiter, Limiter, Source, Verdict};
use tower::Service;

pub use crate::client_ip::Cidr;
pub use config::{
    HeadersMode, KeyKind, MatchConfig, PlanConfig, PolicyConfig, RateLimitConfig,
    RateLimitConfigError, RateLimits,
};
pub use counters::{DECISIONS_TOTAL, STORE_FAILURES_TOTAL};

use crate::context::RequestContext;
use crate::principal::Principal;
use crate::problem::{PROBLEM_JSON, Problem};
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

/// The rate limiting of the request stack: the configured policies and the limiter deciding
/// them, built by [`RateLimits::limiting`]. The stack ([`crate::stack`]) checks every request
/// with it before calling the handler; a router without policies has none (one branch).
#[derive(Clone)]
pub(crate) struct RateLimiting {
    shared: Arc<Shared>,
}

struct Shared {
    limits: RateLimits,
    limiter: Limiter,
    /// States of `ip` policies decided in-process on the synchronous path, keyed by policy and
    /// address (no key string to build or hash).
    ip_states: KeyedLimiter<IpKey>,
    warned_no_peer: AtomicBool,
}

impl std::fmt::Debug for RateLimiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiting")
            .field(
                "policies",
                &self.shared.limits.policy_names().collect::<Vec<_>>(),
            )
            .field("limiter", &self.shared.limiter)
            .finish()
    }
}

/// What [`RateLimiting::check`] decided.
pub(crate) enum Check {
    /// No policy applies, or every policy allowed: call the handler and add these fields to
    /// its response.
    Allowed(Fields),
    /// A policy denied: answer this instead of calling the handler.
    Denied(Response),
    /// The decision has to wait (Redis, or a principal to resolve): hand the request and
    /// the handler to [`Later::call`].
    Later(Later),
}

/// A rate-limit decision that waits (Redis, a principal to resolve), from a policy on.
pub(crate) struct Later {
    shared: Arc<Shared>,
    first: usize,
    arrived: Instant,
}

impl Later {
    /// Decides the matching policies of `req` from the first that needed waiting, resolving
    /// principals and waiting for the limiter's store, then calls `inner` unless a policy
    /// denied; the response carries the rate-limit fields.
    pub(crate) fn call<S>(
        self,
        inner: S,
        req: Request,
    ) -> BoxFuture<'static, Result<Response, Infallible>>
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send,
    {
        let (parts, body) = req.into_parts();
        Box::pin(limit(
            self.shared,
            self.first,
            self.arrived,
            inner,
            parts,
            body,
        ))
    }
}

impl RateLimiting {
    /// Rate limiting of `limits` decided with `limiter`.
    pub(crate) fn new(limits: RateLimits, limiter: Limiter) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                limiter,
                ip_states: KeyedLimiter::new(),
                warned_no_peer: AtomicBool::new(false),
            }),
        }
    }

    /// Decides `req`, which arrived at `arrived` on the route template `route`, if that needs
    /// no waiting: with the in-process limiter and keys known without a lookup (client IP,
    /// route, global), on the borrowed request, without a boxed future.
    pub(crate) fn check(&self, req: &Request, route: Option<&str>, arrived: Instant) -> Check {
        let shared = &*self.shared;
        let head = Head::of_request(req, route);
        let Some(first) = next_match(&shared.limits.policies, 0, &head) else {
            return Check::Allowed(Fields::default());
        };
        match shared.limiter.in_process() {
            Some(limiter) if !needs_principal(shared, first, &head) => {
                decide_now(shared, limiter, first, &head, arrived)
            }
            _ => Check::Later(Later {
                shared: self.shared.clone(),
                first,
                arrived,
            }),
        }
    }
}

/// What the rate limit reads of a request: borrowed from the `Request` itself on the synchronous
/// path (no `into_parts`), from its `Parts` on the boxed one.
struct Head<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    /// The route template axum matched (`/{code}`), if any.
    route: Option<&'a str>,
}

impl<'a> Head<'a> {
    /// The request as borrowed by the stack, which has looked the route up already.
    fn of_request(req: &'a Request, route: Option<&'a str>) -> Self {
        Self {
            method: req.method(),
            path: req.uri().path(),
            headers: req.headers(),
            extensions: req.extensions(),
            route,
        }
    }

    fn of_parts(parts: &'a Parts) -> Self {
        Self {
            method: &parts.method,
            path: parts.uri.path(),
            headers: &parts.headers,
            extensions: &parts.extensions,
            route: parts
                .extensions
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        }
    }
}

/// The index of the first policy at or after `from` that applies to the request.
fn next_match(policies: &[Policy], from: usize, head: &Head<'_>) -> Option<usize> {
    (from..policies.len()).find(|&i| policies[i].matches(head.method, head.path, head.route))
}

/// Whether a policy matching the request (from `first` on) is keyed by a principal, which
/// may take a database read to resolve.
fn needs_principal(shared: &Shared, first: usize, head: &Head<'_>) -> bool {
    if !shared.limits.any_principal {
        return false;
    }
    let policies = &shared.limits.policies;
    let mut at = Some(first);
    while let Some(i) = at {
        if policies[i].key.uses_principal() {
            return true;
        }
        at = next_match(policies, i + 1, head);
    }
    false
}

thread_local! {
    /// Reused buffer for limiter keys on the synchronous path (no allocation per request).
    static KEY_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Decides every matching policy (none keyed by a principal) with the in-process limiter, at
/// the request's arrival (the stack has read the clock already): the response fields when
/// allowed, the denial otherwise.
fn decide_now(
    shared: &Shared,
    limiter: InProcess<'_>,
    first: usize,
    head: &Head<'_>,
    arrived: Instant,
) -> Check {
    let policies = &shared.limits.policies;
    let mut caller = Caller::default();
    let mut fields = Fields::default();
    let mut at = Some(first);
    while let Some(i) = at {
        let policy = &policies[i];
        let plan_rule = &policy.base;
        let verdict = if policy.key == config::KeyKind::Ip {
            ip_verdict(shared, i, head, &mut caller, arrived)
        } else {
            KEY_BUFFER.with_borrow_mut(|key| {
                key.clear();
                plain_key(shared, policy, head, &mut caller, key);
                limiter.check_at(key, &plan_rule.rule, 1, arrived)
            })
        };
        if let Some(denied) = judge(
            shared,
            policy,
            plan_rule,
            &verdict,
            &mut fields,
            head.extensions,
        ) {
            return Check::Denied(denied);
        }
        at = next_match(policies, i + 1, head);
    }
    Check::Allowed(fields)
}

/// The in-process decision of `ip` policy `i` (keyed by policy and address in the stack's
/// own states, on both the synchronous and the waiting path, so one client has one count).
#[inline]
fn ip_verdict(
    shared: &Shared,
    i: usize,
    head: &Head<'_>,
    caller: &mut Caller,
    arrived: Instant,
) -> Verdict {
    let ip = client_ip_of(shared, head, caller);
    let key = IpKey {
        policy: i,
        ip: ip.map(|ip| crate::client_ip::key_addr(ip, shared.limits.ipv6_subnet)),
    };
    let rule = &shared.limits.policies[i].base.rule;
    Verdict {
        decision: shared.ip_states.check_at(&key, rule, 1, arrived),
        source: Source::Local,
    }
}

/// What the keys of one request are made of, resolved at most once.
#[derive(Default)]
struct Caller {
    /// The client IP key part (`None`: not resolved yet; `Some(None)`: unknown).
    ip: Option<Option<IpAddr>>,
    principal: Option<Option<Principal>>,
}

/// Decides the matching policies from `first` on, resolving principals and waiting for the
/// limiter's store as needed, then calls `inner` unless a policy denied.
async fn limit<S>(
    shared: Arc<Shared>,
    first: usize,
    arrived: Instant,
    mut inner: S,
    mut parts: Parts,
    body: Body,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let mut caller = Caller::default();
    let mut fields = Fields::default();
    let mut key = String::new();
    let mut at = Some(first);
    while let Some(i) = at {
        let policy = &shared.limits.policies[i];
        let (plan_rule, verdict) =
            if policy.key == config::KeyKind::Ip && shared.limiter.in_process().is_some() {
                let head = Head::of_parts(&parts);
                let verdict = ip_verdict(&shared, i, &head, &mut caller, arrived);
                (&policy.base, verdict)
            } else {
                key.clear();
                let plan_rule = key_for(&shared, policy, &mut parts, &mut caller, &mut key).await;
                let verdict = shared
                    .limiter
                    .check(&key, &plan_rule.rule, 1, policy.on_failure)
                    .await;
                (plan_rule, verdict)
            };
        if let Some(denied) = judge(
            &shared,
            policy,
            plan_rule,
            &verdict,
            &mut fields,
            &parts.extensions,
        ) {
            return Ok(denied);
        }
        at = next_match(&shared.limits.policies, i + 1, &Head::of_parts(&parts));
    }
    let mut res = inner.call(Request::from_parts(parts, body)).await?;
    fields.apply(res.headers_mut());
    Ok(res)
}

/// Appends `n` in decimal to `out` (what `write!(out, "{n}")` does, at a fraction of the
/// cost: `format!` and `Display` cost as much as the limiter's decision).
fn push_decimal(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Counts one policy's verdict and adds its fields; the answer to send instead of the
/// handler's when it denies.
fn judge(
    shared: &Shared,
    policy: &Policy,
    plan_rule: &PlanRule,
    verdict: &Verdict,
    fields: &mut Fields,
    extensions: &Extensions,
) -> Option<Response> {
    let metrics = policy
        .metrics
        .get_or_init(|| PolicyMetrics::new(&policy.name, policy.on_failure.name()));
    if shared.limiter.is_shared() && verdict.source != Source::Shared {
        metrics.store_failure();
    }
    let d = &verdict.decision;
    if d.allowed {
        let near = d.remaining.saturating_mul(10) < plan_rule.rule.capacity();
        metrics.record(if near {
            Outcome::NearLimit
        } else {
            Outcome::Allowed
        });
        if !policy.shadow && policy.headers.on_allowed(near) {
            fields.push(plan_rule, policy, d, d.reset_after_secs());
        }
        return None;
    }
    if policy.shadow {
        metrics.record(Outcome::ShadowLimited);
        return None;
    }
    metrics.record(Outcome::Limited);
    let retry = d
        .retry_after_secs()
        .unwrap_or_else(|| d.reset_after_secs())
        .max(1);
    fields.push(plan_rule, policy, d, retry);
    Some(denied(
        policy,
        plan_rule,
        verdict.source,
        retry,
        std::mem::take(fields),
        extensions,
    ))
}

/// Writes the limiter key of `policy` into `key` (empty on entry) and returns the rule of the
/// caller's plan, resolving the principal if the policy is keyed by one.
async fn key_for<'p>(
    shared: &Shared,
    policy: &'p Policy,
    parts: &mut Parts,
    caller: &mut Caller,
    key: &mut String,
) -> &'p PlanRule {
    if !policy.key.uses_principal() {
        plain_key(shared, policy, &Head::of_parts(parts), caller, key);
        return &policy.base;
    }
    if caller.principal.is_none() {
        // A rejected token limits like an anonymous caller; the handler answers 401.
        let resolved = crate::auth::principal(parts).await.ok().flatten();
        caller.principal = Some(resolved);
    }
    let name = &policy.name;
    let principal = caller.principal.as_ref().and_then(Option::as_ref);
    let Some(p) = principal else {
        plain_key(shared, policy, &Head::of_parts(parts), caller, key);
        return &policy.base;
    };
    let _ = match (policy.key, p.api_key_id()) {
        (config::KeyKind::ApiKey, Some(id)) => write!(key, "http:{name}:key:{id}"),
        _ => write!(key, "http:{name}:acct:{}", p.subject),
    };
    policy.rule_for(Some(&p.plan))
}

/// Writes the key of a policy not keyed by a principal (global, route, client IP).
fn plain_key(
    shared: &Shared,
    policy: &Policy,
    head: &Head<'_>,
    caller: &mut Caller,
    key: &mut String,
) {
    match policy.key {
        config::KeyKind::Global => {
            key.push_str(&policy.key_prefix);
            key.push_str("global");
        }
        config::KeyKind::Route => {
            key.push_str(&policy.key_prefix);
            // Unmatched paths share one key: a flood of random 404s creates no keys.
            let route = head.route.unwrap_or(crate::metrics::UNMATCHED_ROUTE);
            key.push_str("route:");
            key.push_str(head.method.as_str());
            key.push(' ');
            key.push_str(route);
        }
        // Principal keys reach this only for callers without a principal (keyed by IP).
        config::KeyKind::Ip | config::KeyKind::Account | config::KeyKind::ApiKey => {
            key.push_str(&policy.ip_key_prefix);
            write_client_ip(shared, head, caller, key);
        }
    }
}

/// The in-process key of an `ip` policy on the synchronous path: the policy's index and the
/// client address as keyed (IPv6 by its subnet; `None`: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct IpKey {
    policy: usize,
    ip: Option<IpAddr>,
}

/// Appends the client IP key part (resolved once per request) to `key`.
fn write_client_ip(shared: &Shared, head: &Head<'_>, caller: &mut Caller, key: &mut String) {
    let ip = client_ip_of(shared, head, caller);
    crate::client_ip::write_ip_key(key, ip, shared.limits.ipv6_subnet);
}

/// The client IP of the request, resolved once per request.
fn client_ip_of(shared: &Shared, head: &Head<'_>, caller: &mut Caller) -> Option<IpAddr> {
    let limits = &shared.limits;
    *caller.ip.get_or_insert_with(|| {
        let peer = head
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if peer.is_none() && !shared.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "rate limit by client IP without the peer address: every client shares the key \
                 `unknown`; serve with into_make_service_with_connect_info::<SocketAddr>()"
            );
        }
        crate::client_ip::client_ip(peer, head.headers, &limits.trusted)
    })
}

/// The `RateLimit-Policy` and `RateLimit` fields of a response: built once per response,
/// with the policy field cloned from configuration when one policy applies. Boxed, since the
/// stack's future carries them through the handler: a response without fields (no policy, or
/// a policy whose [`HeadersMode`] leaves them out) costs a null pointer there.
#[derive(Default)]
pub(crate) struct Fields(Option<Box<FieldValues>>);

enum FieldValues {
    /// One policy: its precomputed `RateLimit-Policy` value and this request's `RateLimit`.
    One {
        /// `RateLimit-Policy`.
        policy: HeaderValue,
        /// `RateLimit`.
        limit: HeaderValue,
    },
    /// Several policies: comma-separated lists.
    Many {
        /// `RateLimit-Policy` list.
        policy: String,
        /// `RateLimit` list.
        limit: String,
    },
}

impl Fields {
    fn push(&mut self, plan_rule: &PlanRule, policy: &Policy, d: &Decision, t: u64) {
        // Built by hand: `format!` costs about as much as the whole limiter decision.
        let mut item = String::with_capacity(policy.remaining_prefix.len() + 26);
        item.push_str(&policy.remaining_prefix);
        push_decimal(&mut item, d.remaining);
        item.push_str(";t=");
        push_decimal(&mut item, t);
        let next = match self.0.take().map(|values| *values) {
            None => match HeaderValue::from_maybe_shared(bytes::Bytes::from(item)) {
                Ok(limit) => FieldValues::One {
                    policy: plan_rule.policy_header.clone(),
                    limit,
                },
                // Policy names are plain ASCII (checked at validation): not reached.
                Err(_) => return,
            },
            Some(FieldValues::One { policy, limit }) => FieldValues::Many {
                policy: format!(
                    "{}, {}",
                    policy.to_str().unwrap_or_default(),
                    plan_rule.policy_item
                ),
                limit: format!("{}, {item}", limit.to_str().unwrap_or_default()),
            },
            Some(FieldValues::Many {
                mut policy,
                mut limit,
            }) => {
                policy.push_str(", ");
                policy.push_str(&plan_rule.policy_item);
                limit.push_str(", ");
                limit.push_str(&item);
                FieldValues::Many { policy, limit }
            }
        };
        self.0 = Some(Box::new(next));
    }

    /// Adds the fields to a response's headers.
    #[inline]
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        if let Some(values) = self.0 {
            (*values).apply(headers);
        }
    }
}

impl FieldValues {
    fn apply(self, headers: &mut HeaderMap) {
        match self {
            FieldValues::One { policy, limit } => {
                headers.insert(RATELIMIT_POLICY.clone(), policy);
                headers.insert(RATELIMIT.clone(), limit);
            }
            FieldValues::Many { policy, limit } => {
                // Policy names are plain ASCII (checked at validation): always valid values.
                if let Ok(v) = HeaderValue::from_str(&policy) {
                    headers.insert(RATELIMIT_POLICY.clone(), v);
                }
                if let Ok(v) = HeaderValue::from_str(&limit) {
                    headers.insert(RATELIMIT.clone(), v);
                }
            }
        }
    }
}

/// The 429 (or 503 when failing closed) answer to a denied request.
fn denied(
    policy: &Policy,
    plan_rule: &PlanRule,
    source: Source,
    retry: u64,
    fields: Fields,
    extensions: &Extensions,
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
    if let Some(ctx) = extensions.get::<RequestContext>() {
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
