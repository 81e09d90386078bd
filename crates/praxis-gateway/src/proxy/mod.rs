//! The proxy: a request is matched to a route, admitted by its pool's concurrency limit (or
//! shed), sent to an instance the pool chooses, retried on a gateway error when it may be and
//! the budget allows, and answered with the upstream's response streamed back.

mod attempt;
pub mod blue_green;
pub mod body;
pub mod canary;
pub mod headers;
mod hedge;
pub mod key;
pub mod routes;
pub mod tier;
pub mod upgrade;
pub mod verdict;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::body::Body;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use metrics::{counter, gauge, histogram};
use praxis_http::Problem;
use praxis_kit::outlier::Outcome;

use crate::metrics::{
    BREAKER_REJECTIONS_TOTAL, BUDGET_EXHAUSTED_TOTAL, POOL_IN_FLIGHT, REQUEST_DURATION,
    REQUESTS_TOTAL, RETRIES_TOTAL, SHED_TOTAL,
};
use crate::pool::Pool;
use attempt::{
    Attempt, Failure, Outgoing, Target, attempt, bad_target, outcome_of, problem, record,
};
use body::Guarded;
use hedge::Hedge;
use routes::{Route, RouteTable};

/// What every request handler shares.
#[derive(Debug)]
pub struct Shared {
    /// The current version of the gateway file (swapped whole on a reload).
    pub table: ArcSwap<RouteTable>,
}

/// Whether a request may be sent again: its method is idempotent, or it carries an
/// `Idempotency-Key` (the upstream then deduplicates it).
pub fn may_retry(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    ) || headers.contains_key("idempotency-key")
}

/// Answers one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let table = shared.table.load();
    let host = headers::request_host(req.headers(), req.uri());
    let Some(route) = table.find(host.as_deref(), &path) else {
        counter!(REQUESTS_TOTAL, "route" => "no_route", "pool" => "", "status" => "404")
            .increment(1);
        return Ok(problem(Problem::new(
            StatusCode::NOT_FOUND,
            "no-route",
            "No route",
            format!(
                "no gateway route matches host {} and path {path}; add a [[routes]] entry to the gateway file",
                host.as_deref().unwrap_or("(none)")
            ),
        )));
    };
    // The side is chosen once: a request finishes on it whatever a switch does meanwhile.
    let split = route.split(req.headers());
    let pool = route.pool_for(split);
    let response = forward(&table, route, pool, req, peer, host, started).await;
    let status = response.status();
    let elapsed = started.elapsed();
    route.observe(split, status.is_server_error(), elapsed);
    counter!(REQUESTS_TOTAL, "route" => route.label.clone(), "pool" => pool.name.clone(), "status" => status.as_u16().to_string())
        .increment(1);
    histogram!(REQUEST_DURATION, "route" => route.label.clone(), "pool" => pool.name.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(
        target: "praxis_gateway::access",
        %method,
        path,
        route = %route.label,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "gateway request"
    );
    Ok(response)
}

async fn forward(
    table: &RouteTable,
    route: &Route,
    pool: &Arc<Pool>,
    req: Request<Incoming>,
    peer: SocketAddr,
    host: Option<String>,
    started: Instant,
) -> Response<Body> {
    let tier = table.tiers.classify(req.headers());
    let Some(slot) = pool.admission.try_admit(tier) else {
        counter!(SHED_TOTAL, "pool" => pool.name.clone(), "tier" => tier.as_str()).increment(1);
        return problem(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                format!(
                    "pool {} is at its concurrency limit; retry after the time in Retry-After",
                    pool.name
                ),
            )
            .with_retry_after(1),
        );
    };
    gauge!(POOL_IN_FLIGHT, "pool" => pool.name.clone()).set(f64::from(pool.admission.in_flight()));

    let mut req = req;
    let upgrade = upgrade::requested(&req).then(|| {
        let protocol = req.headers().get(http::header::UPGRADE).cloned();
        (hyper::upgrade::on(&mut req), protocol)
    });
    let (mut parts, incoming) = req.into_parts();
    let key = pool
        .config
        .hash_key
        .as_ref()
        .and_then(|k| key::extract(k, &parts.headers, parts.uri.path()));
    let mut retryable =
        route.retries && pool.config.max_retries > 0 && may_retry(&parts.method, &parts.headers);
    headers::strip_hop_by_hop(&mut parts.headers);
    if let Some((_, Some(protocol))) = &upgrade {
        parts.headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        parts
            .headers
            .insert(http::header::UPGRADE, protocol.clone());
    }
    headers::add_forwarded(&mut parts.headers, peer.ip(), host.as_deref());
    headers::ensure_traceparent(&mut parts.headers);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());

    let mut outgoing = match incoming.size_hint().upper() {
        Some(n) if retryable && n <= route.retry_body_limit as u64 => {
            match incoming.collect().await {
                Ok(collected) => Outgoing::Kept(collected.to_bytes()),
                Err(e) => {
                    return problem(Problem::bad_request(
                        "unreadable-body",
                        format!("the request body could not be read: {e}"),
                    ));
                }
            }
        }
        _ => {
            retryable = false;
            Outgoing::Stream(Some(incoming))
        }
    };

    pool.deposit();
    let members = pool.members();
    let deadline = started + route.timeout;
    let version = if pool.config.http2 && upgrade.is_none() {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let mut tried: Vec<usize> = Vec::new();
    let mut retries = 0u32;
    let mut refused = 0usize;
    let target = Target {
        parts: &parts,
        path_and_query: &path_and_query,
        version,
    };
    loop {
        let Some(i) = pool.pick(&members, key.as_deref(), &tried) else {
            return problem(Problem::unavailable(format!(
                "pool {} has no instance to send to",
                pool.name
            )));
        };
        tried.push(i);
        if let Some(wait_ms) = members.instances[i].breaker_refuses(pool.now_ms()) {
            counter!(BREAKER_REJECTIONS_TOTAL, "pool" => pool.name.clone(), "upstream" => members.instances[i].addr.clone())
                .increment(1);
            refused += 1;
            if refused >= members.instances.len() {
                return problem(
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "circuit-open",
                        "Circuit open",
                        format!(
                            "every instance of pool {} failed repeatedly and its circuit breaker is open; retry after the time in Retry-After",
                            pool.name
                        ),
                    )
                    .with_retry_after(u32::try_from(wait_ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1)),
                );
            }
            continue;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let per_try = route.per_try_timeout.min(remaining);
        let first = match target.request(&members.instances[i].addr, &mut outgoing) {
            Ok(req) => attempt(pool, &members, i, req, per_try),
            Err(e) => return bad_target(e),
        };
        let hedge = route
            .hedge_after
            .filter(|after| retryable && upgrade.is_none() && *after < per_try);
        let done = match hedge {
            None => first.await,
            Some(after) => {
                let hedged = Hedge {
                    pool,
                    members: &members,
                    key: key.as_deref(),
                    target: &target,
                    deadline,
                    per_try_timeout: route.per_try_timeout,
                };
                hedged.run(first, after, &mut tried, &mut outgoing).await
            }
        };
        record(pool, &members, &done);
        let Attempt {
            result, in_flight, ..
        } = done;
        let outcome = match &result {
            Ok(resp) => outcome_of(resp.status()),
            Err(_) => Outcome::GatewayError,
        };
        if outcome == Outcome::GatewayError
            && retryable
            && retries < pool.config.max_retries
            && Instant::now() < deadline
        {
            if pool.try_retry() {
                retries += 1;
                counter!(RETRIES_TOTAL, "pool" => pool.name.clone()).increment(1);
                continue;
            }
            counter!(BUDGET_EXHAUSTED_TOTAL, "pool" => pool.name.clone()).increment(1);
        }
        return match result {
            Ok(mut resp)
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() =>
            {
                let Some((server_side, _)) = upgrade else {
                    return problem(Problem::internal("an upgrade without its request"));
                };
                let upstream_side = hyper::upgrade::on(&mut resp);
                tokio::spawn(upgrade::tunnel(
                    server_side,
                    upstream_side,
                    (slot, in_flight),
                ));
                let (rparts, _) = resp.into_parts();
                Response::from_parts(rparts, Body::empty())
            }
            Ok(resp) => {
                let (mut rparts, rbody) = resp.into_parts();
                headers::strip_hop_by_hop(&mut rparts.headers);
                Response::from_parts(rparts, Body::new(Guarded::new(rbody, (slot, in_flight))))
            }
            Err(Failure::Timeout) => problem(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "Upstream timeout",
                format!(
                    "pool {} did not answer within the route's timeout; retrying later may work",
                    pool.name
                ),
            )),
            Err(Failure::Connect(e)) => problem(Problem::new(
                StatusCode::BAD_GATEWAY,
                "upstream-unreachable",
                "Upstream unreachable",
                format!(
                    "no instance of pool {} accepted a connection ({e})",
                    pool.name
                ),
            )),
            Err(Failure::Other(e)) => problem(Problem::new(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                format!("the upstream connection of pool {} failed ({e})", pool.name),
            )),
        };
    }
}
