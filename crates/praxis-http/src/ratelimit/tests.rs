//! Rate limiting through the request stack on a small router (tower `oneshot`), with the
//! in-process limiter and with Redis.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use praxis_infra::ratelimit::{Limiter, RedisLimiterOptions};
use praxis_infra::testing;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::auth::{AuthFailure, AuthSettings, Authenticator, Principal, PrincipalKind};

fn policy(name: &str, key: &str, algorithm: &str, limit: u64, period: &str) -> PolicyConfig {
    PolicyConfig {
        name: name.into(),
        key: key.into(),
        algorithm: Some(algorithm.into()),
        limit,
        period: period.into(),
        ..PolicyConfig::default()
    }
}

fn config(policies: Vec<PolicyConfig>) -> RateLimitConfig {
    RateLimitConfig {
        policies,
        ipv6_subnet: 64,
        ..RateLimitConfig::default()
    }
}

async fn ok() -> &'static str {
    "ok"
}

/// `/api/v1/things/{id}` (GET, POST), `/api/v1/other` and `/healthz`, behind the request
/// stack checking `limits`.
fn router(limits: &RateLimits, limiter: Limiter) -> Router {
    router_with_auth(limits, limiter, AuthSettings::default())
}

/// [`router`] whose stack resolves principals with `auth`.
fn router_with_auth(limits: &RateLimits, limiter: Limiter, auth: AuthSettings) -> Router {
    Router::new()
        .route("/api/v1/things/{id}", get(ok).post(ok))
        .route("/api/v1/other", get(ok))
        .route("/healthz", get(ok))
        .layer(stack(limits, limiter, auth))
}

/// The request stack checking `limits` (1 MiB body limit, no timeout, no log or metrics).
fn stack(limits: &RateLimits, limiter: Limiter, auth: AuthSettings) -> crate::stack::StackLayer {
    stack_with_timeout(limits, limiter, auth, None)
}

/// [`stack`] with a request timeout.
fn stack_with_timeout(
    limits: &RateLimits,
    limiter: Limiter,
    auth: AuthSettings,
    timeout: Option<Duration>,
) -> crate::stack::StackLayer {
    crate::stack::StackLayer::new(crate::stack::StackConfig {
        body_limit: 1 << 20,
        timeout,
        access_log: false,
        metrics: None,
        auth: Arc::new(auth),
        rate_limit: Some(limits.limiting(limiter)),
        streaming: Vec::new(),
    })
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes().to_vec(),
    }
}

/// A request from socket peer `peer` with extra headers.
fn request(method: &str, uri: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::empty()).expect("request");
    let ip: std::net::IpAddr = peer.parse().expect("ip");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    req
}

fn get_from(uri: &str, peer: &str) -> Request<Body> {
    request("GET", uri, peer, &[])
}

#[tokio::test]
async fn allows_exactly_n_then_answers_429_with_headers() {
    let limits =
        RateLimits::new(&config(vec![policy("api", "ip", "gcra", 5, "1m")])).expect("valid");
    let app = router(&limits, Limiter::local());
    for i in 0..5u64 {
        let r = send(&app, get_from("/api/v1/things/1", "203.0.113.1")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        assert_eq!(r.header("ratelimit-policy"), Some("\"api\";q=5;w=60"));
        let remaining = 4 - i;
        // GCRA at 5 per minute: full again 12 s per hit taken.
        let t = 12 * (i + 1);
        assert_eq!(
            r.header("ratelimit"),
            Some(format!("\"api\";r={remaining};t={t}").as_str()),
            "request {i}"
        );
    }
    let r = send(&app, get_from("/api/v1/things/2", "203.0.113.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("content-type"), Some(PROBLEM_JSON));
    // The next hit drips in 12 s later (just under, as time passed: rounded up).
    assert_eq!(r.header("retry-after"), Some("12"));
    assert_eq!(r.header("ratelimit"), Some("\"api\";r=0;t=12"));
    assert_eq!(r.header("ratelimit-policy"), Some("\"api\";q=5;w=60"));
    let body = r.json();
    assert_eq!(body["type"], "https://praxis.dev/problems/rate-limited");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too many requests");
    assert_eq!(body["violated-policies"], serde_json::json!(["api"]));
    assert!(body["detail"].as_str().expect("detail").contains("\"api\""));
    // Another client is not affected.
    let other = send(&app, get_from("/api/v1/things/1", "203.0.113.2")).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("ratelimit"), Some("\"api\";r=4;t=12"));
}

#[tokio::test]
async fn retry_after_is_rounded_up_to_whole_seconds() {
    let cfg = config(vec![
        policy("slow", "ip", "gcra", 1, "10s"),
        // 3 per 2 s: one hit every 666.7 ms, announced as 1 s.
        policy("fast", "global", "token-bucket", 3, "2s"),
    ]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, Limiter::local());
    let r = send(&app, get_from("/healthz", "198.51.100.1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"slow\";q=1;w=10, \"fast\";q=3;w=2")
    );
    let r = send(&app, get_from("/healthz", "198.51.100.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("10"));
    assert_eq!(
        r.header("ratelimit"),
        Some("\"slow\";r=0;t=10"),
        "later policies not charged"
    );
    for peer in ["198.51.100.2", "198.51.100.3"] {
        assert_eq!(
            send(&app, get_from("/healthz", peer)).await.status,
            StatusCode::OK
        );
    }
    let r = send(&app, get_from("/healthz", "198.51.100.4")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        r.header("ratelimit"),
        Some("\"slow\";r=0;t=10, \"fast\";r=0;t=1"),
        "the policies checked before keep their hit"
    );
    assert_eq!(r.json()["violated-policies"], serde_json::json!(["fast"]));
}

#[tokio::test]
async fn headers_mode_keeps_the_fields_to_near_limit_or_denials() {
    // Three policies of 20 per hour, one per mode, each on its own route prefix.
    let mode = |name: &str, prefix: &str, headers: &str| {
        let mut p = policy(name, "ip", "fixed-window", 20, "1h");
        p.matches.path_prefix = Some(prefix.into());
        p.headers = Some(headers.into());
        p
    };
    let cfg = config(vec![
        mode("all", "/api/v1/things/a", "always"),
        mode("near", "/api/v1/things/n", "near_limit"),
        mode("deny", "/api/v1/things/d", "denied"),
    ]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, Limiter::local());
    for (path, name) in [
        ("/api/v1/things/a", "all"),
        ("/api/v1/things/n", "near"),
        ("/api/v1/things/d", "deny"),
    ] {
        for i in 1..=21u64 {
            let r = send(&app, get_from(path, "192.0.2.50")).await;
            let remaining = 20u64.saturating_sub(i);
            // Less than 10 % of 20 left: remaining 0 or 1 (the 19th and 20th requests).
            let near = remaining < 2;
            let denied = i == 21;
            assert_eq!(
                r.status,
                if denied {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::OK
                },
                "{name} request {i}"
            );
            let expected = match name {
                "all" => true,
                "near" => near || denied,
                _ => denied,
            };
            assert_eq!(
                r.header("ratelimit").is_some(),
                expected,
                "{name} request {i}: RateLimit field"
            );
            assert_eq!(
                r.header("ratelimit-policy").is_some(),
                expected,
                "{name} request {i}: RateLimit-Policy field"
            );
            if expected {
                assert!(
                    r.header("ratelimit")
                        .expect("field")
                        .starts_with(&format!("\"{name}\";r={remaining};")),
                    "{name} request {i}: {:?}",
                    r.header("ratelimit")
                );
            }
            if denied {
                assert!(r.header("retry-after").is_some(), "{name}: Retry-After");
            }
        }
    }
}

#[tokio::test]
async fn mixed_headers_modes_list_only_the_policies_that_send() {
    let mut near = policy("near", "ip", "fixed-window", 10, "1h");
    near.headers = Some("near_limit".into());
    let cfg = config(vec![
        policy("all", "global", "fixed-window", 100, "1h"),
        near,
    ]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, Limiter::local());
    for i in 1..=10u64 {
        let r = send(&app, get_from("/api/v1/other", "192.0.2.60")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        let (policy, limit) = if i < 10 {
            // 10 - i >= 1 left of 10: at least 10 %, so only `all` is announced.
            (
                "\"all\";q=100;w=3600".to_owned(),
                format!("\"all\";r={};t=3600", 100 - i),
            )
        } else {
            (
                "\"all\";q=100;w=3600, \"near\";q=10;w=3600".to_owned(),
                format!("\"all\";r={};t=3600, \"near\";r=0;t=3600", 100 - i),
            )
        };
        assert_eq!(
            r.header("ratelimit-policy"),
            Some(policy.as_str()),
            "request {i}"
        );
        let got = r.header("ratelimit").expect("RateLimit");
        // `t` of a fixed window is the time left in the hour: compare the items without it.
        let strip = |v: &str| {
            v.split(", ")
                .map(|item| item.split(";t=").next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(got), strip(&limit), "request {i}: {got}");
    }
}

#[tokio::test]
async fn ip_policies_with_the_same_rule_keep_separate_counters() {
    // Two in-process `ip` policies with one rule on every request: each counts once per
    // request, so both allow two requests (a shared state would deny the second).
    let cfg = config(vec![
        policy("first", "ip", "fixed-window", 2, "1h"),
        policy("second", "ip", "fixed-window", 2, "1h"),
    ]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, Limiter::local());
    for i in 1..=2u64 {
        let r = send(&app, get_from("/api/v1/other", "192.0.2.70")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        let left = 2 - i;
        let got = r.header("ratelimit").expect("RateLimit");
        assert!(
            got.starts_with(&format!("\"first\";r={left};"))
                && got.contains(&format!("\"second\";r={left};")),
            "request {i}: {got}"
        );
    }
    let r = send(&app, get_from("/api/v1/other", "192.0.2.70")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["violated-policies"], serde_json::json!(["first"]));
}

#[test]
fn limiter_keys_are_stable() {
    // Redis keys outlive a deploy: the key of each kind is pinned here.
    let mut v6 = policy("p-ip", "ip", "gcra", 10, "1m");
    v6.matches.path_prefix = Some("/".into());
    let cfg = config(vec![
        v6,
        policy("p-route", "route", "gcra", 10, "1m"),
        policy("p-global", "global", "gcra", 10, "1m"),
        policy("p-acct", "account", "gcra", 10, "1m"),
    ]);
    let limiting = RateLimits::new(&cfg)
        .expect("valid")
        .limiting(Limiter::local());
    let shared = &limiting.shared;
    let key_of = |index: usize, req: &Request<Body>| {
        let mut key = String::new();
        plain_key(
            shared,
            &shared.limits.policies[index],
            &Head::of_request(req, None),
            &mut Caller::default(),
            &mut key,
        );
        key
    };
    let v4 = get_from("/x", "203.0.113.9");
    let v6 = get_from("/x", "2001:db8:1:2:3:4:5:6");
    let no_peer = Request::builder()
        .uri("/x")
        .body(Body::empty())
        .expect("request");
    assert_eq!(key_of(0, &v4), "http:p-ip:ip:203.0.113.9");
    assert_eq!(key_of(0, &v6), "http:p-ip:ip:2001:db8:1:2::/64");
    assert_eq!(key_of(0, &no_peer), "http:p-ip:ip:unknown");
    assert_eq!(
        key_of(1, &v4),
        format!("http:p-route:route:GET {}", crate::metrics::UNMATCHED_ROUTE)
    );
    assert_eq!(key_of(2, &v4), "http:p-global:global");
    // An anonymous caller of an account policy is keyed by IP.
    assert_eq!(key_of(3, &v4), "http:p-acct:ip:203.0.113.9");
}

/// The value of `praxis_ratelimit_decisions_total{policy, result}` in the global recorder.
fn decisions(policy: &str, result: &str) -> u64 {
    let text = crate::metrics::install_metrics_recorder().render();
    text.lines()
        .find(|l| {
            l.starts_with(DECISIONS_TOTAL)
                && l.contains(&format!("policy=\"{policy}\""))
                && l.contains(&format!("result=\"{result}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn shadow_mode_counts_but_never_blocks() {
    crate::metrics::install_metrics_recorder();
    let name = format!("shadow-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut p = policy(&name, "global", "fixed-window", 2, "1h");
    p.shadow = true;
    let limits = RateLimits::new(&config(vec![p])).expect("valid");
    let app = router(&limits, Limiter::local());
    for _ in 0..6 {
        let r = send(&app, get_from("/api/v1/other", "192.0.2.1")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("ratelimit"),
            None,
            "shadow policies announce nothing"
        );
        assert_eq!(r.header("ratelimit-policy"), None);
    }
    assert_eq!(decisions(&name, "shadow_limited"), 4);
    // Allowed: 2 (one with half the quota left, one with none: near the limit).
    assert_eq!(
        decisions(&name, "allowed") + decisions(&name, "near_limit"),
        2
    );
    assert_eq!(decisions(&name, "near_limit"), 1);
    assert_eq!(decisions(&name, "limited"), 0);
}

#[tokio::test]
async fn limited_decisions_are_counted() {
    crate::metrics::install_metrics_recorder();
    let name = format!("count-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let limits = RateLimits::new(&config(vec![policy(&name, "ip", "sliding-log", 20, "1h")]))
        .expect("valid");
    let app = router(&limits, Limiter::local());
    for _ in 0..25 {
        send(&app, get_from("/api/v1/other", "192.0.2.9")).await;
    }
    // remaining after each allowed hit: 19..=0; below 10 % of 20 means 0 or 1.
    assert_eq!(decisions(&name, "allowed"), 18);
    assert_eq!(decisions(&name, "near_limit"), 2);
    assert_eq!(decisions(&name, "limited"), 5);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let mut cfg = config(vec![policy("per-ip", "ip", "fixed-window", 1, "1h")]);
    cfg.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, Limiter::local());
    let via =
        |peer: &str, xff: &str| request("GET", "/api/v1/other", peer, &[("x-forwarded-for", xff)]);

    // An untrusted peer cannot pick its key with X-Forwarded-For.
    assert_eq!(
        send(&app, via("203.0.113.9", "1.1.1.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("203.0.113.9", "2.2.2.2")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind a trusted proxy each forwarded client has its own key.
    assert_eq!(
        send(&app, via("10.1.1.1", "198.51.100.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("10.1.1.1", "198.51.100.2")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("10.2.2.2", "198.51.100.1")).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "same client through another proxy"
    );
    // The client cannot escape by prepending forged hops: the rightmost untrusted hop counts.
    assert_eq!(
        send(&app, via("10.1.1.1", "9.9.9.9, 198.51.100.2"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A trusted proxy without the header is keyed as itself.
    assert_eq!(
        send(&app, get_from("/api/v1/other", "10.1.1.1"))
            .await
            .status,
        StatusCode::OK
    );
    // IPv6 clients share their /64.
    assert_eq!(
        send(&app, via("::1", "2001:db8:1:2::5")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("::1", "2001:db8:1:2::6")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via("::1", "2001:db8:1:3::6")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_peer_address_clients_share_one_key() {
    let limits =
        RateLimits::new(&config(vec![policy("ip", "ip", "gcra", 1, "1h")])).expect("valid");
    let app = router(&limits, Limiter::local());
    let bare = || {
        Request::get("/api/v1/other")
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(send(&app, bare()).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, bare()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn policies_match_by_method_prefix_and_route() {
    let mut writes = policy("writes", "route", "fixed-window", 1, "1h");
    writes.matches = MatchConfig {
        methods: vec!["post".into()],
        route: Some("/api/v1/things/{id}".into()),
        ..MatchConfig::default()
    };
    let mut api = policy("api", "ip", "fixed-window", 100, "1h");
    api.matches.path_prefix = Some("/api/v1/things".into());
    let limits = RateLimits::new(&config(vec![writes, api])).expect("valid");
    let app = router(&limits, Limiter::local());

    let r = send(&app, get_from("/api/v1/other", "192.0.2.1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("ratelimit"),
        None,
        "no policy matches /api/v1/other"
    );
    let r = send(&app, get_from("/api/v1/things/1", "192.0.2.1")).await;
    assert_eq!(
        r.header("ratelimit"),
        Some("\"api\";r=99;t=3600"),
        "GET: only the prefix policy"
    );
    let r = send(&app, request("POST", "/api/v1/things/1", "192.0.2.1", &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"writes\";q=1;w=3600, \"api\";q=100;w=3600")
    );
    // `route` keys by route template: another id and another client share the counter.
    let r = send(&app, request("POST", "/api/v1/things/2", "192.0.2.2", &[])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Principals from bearer tokens: `t-<subject>-<plan>` (an account) or `k-<id>-<plan>` (an API
/// key of account `owner`).
struct Tokens;

#[async_trait::async_trait]
impl Authenticator for Tokens {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        let mut parts = bearer.splitn(3, '-');
        let (kind, id, plan) = (parts.next(), parts.next(), parts.next());
        let (Some(kind), Some(id), Some(plan)) = (kind, id, plan) else {
            return Err(AuthFailure::rejected("unknown token"));
        };
        let (subject, kind) = match kind {
            "t" => (id.to_owned(), PrincipalKind::Account),
            "k" => (
                "owner".to_owned(),
                PrincipalKind::ApiKey {
                    key_id: id.to_owned(),
                },
            ),
            _ => return Err(AuthFailure::rejected("unknown token")),
        };
        Ok(Principal {
            subject,
            kind,
            scopes: Vec::new(),
            admin: false,
            plan: plan.to_owned(),
        })
    }
}

#[tokio::test]
async fn account_and_api_key_policies_use_the_principal_and_its_plan() {
    let mut cfg = config(vec![
        policy("per-account", "account", "fixed-window", 2, "1h"),
        policy("per-key", "api_key", "fixed-window", 3, "1h"),
    ]);
    cfg.plans.insert(
        "pro".into(),
        PlanConfig {
            multiplier: Some(2.0),
            limits: [("per-key".to_owned(), 10)].into_iter().collect(),
        },
    );
    let limits = RateLimits::new(&cfg).expect("valid");
    let settings = AuthSettings {
        authenticator: Some(Arc::new(Tokens)),
        ..AuthSettings::default()
    };
    let app = router_with_auth(&limits, Limiter::local(), settings);
    let as_token = |token: &str, peer: &str| {
        request(
            "GET",
            "/api/v1/other",
            peer,
            &[("authorization", &format!("Bearer {token}"))],
        )
    };

    // Account alice (free): 2 per hour whatever her IP; the API-key policy keys her by account.
    let r = send(&app, as_token("t-alice-free", "192.0.2.1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("ratelimit"),
        Some("\"per-account\";r=1;t=3600, \"per-key\";r=2;t=3600")
    );
    assert_eq!(
        send(&app, as_token("t-alice-free", "192.0.2.2"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, as_token("t-alice-free", "192.0.2.3"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Bob on the pro plan: the multiplier doubles the account policy, the per-policy limit
    // sets the key policy.
    let r = send(&app, as_token("t-bob-pro", "192.0.2.1")).await;
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"per-account\";q=4;w=3600, \"per-key\";q=10;w=3600")
    );
    // Two API keys of one account: the account policy is shared, the key policy is not.
    let r = send(&app, as_token("k-key1-free", "192.0.2.1")).await;
    assert_eq!(
        r.header("ratelimit"),
        Some("\"per-account\";r=1;t=3600, \"per-key\";r=2;t=3600")
    );
    let r = send(&app, as_token("k-key2-free", "192.0.2.1")).await;
    assert_eq!(
        r.header("ratelimit"),
        Some("\"per-account\";r=0;t=3600, \"per-key\";r=2;t=3600")
    );
    // Anonymous callers and rejected tokens are keyed by client IP.
    let anon = send(&app, get_from("/api/v1/other", "192.0.2.50")).await;
    assert_eq!(
        anon.header("ratelimit"),
        Some("\"per-account\";r=1;t=3600, \"per-key\";r=2;t=3600")
    );
    let bad = send(&app, as_token("garbage", "192.0.2.50")).await;
    assert_eq!(
        bad.header("ratelimit"),
        Some("\"per-account\";r=0;t=3600, \"per-key\";r=1;t=3600")
    );
}

fn error_of(cfg: &RateLimitConfig) -> RateLimitConfigError {
    RateLimits::new(cfg).expect_err("invalid config")
}

#[test]
fn validation_errors_name_the_policy_and_field() {
    let base = || policy("api", "ip", "gcra", 10, "1m");
    let case = |edit: &dyn Fn(&mut PolicyConfig)| {
        let mut p = base();
        edit(&mut p);
        error_of(&config(vec![p]))
    };
    let e = case(&|p| p.key = "ipp".into());
    assert_eq!(
        (e.location.as_str(), e.field.as_str()),
        ("policy \"api\"", "key")
    );
    assert!(
        e.message.contains("\"ipp\"") && e.message.contains("api_key"),
        "{e}"
    );
    let e = case(&|p| p.algorithm = Some("leaky".into()));
    assert_eq!(e.field, "algorithm");
    let e = case(&|p| p.limit = 0);
    assert_eq!(e.field, "limit");
    for bad in ["", "0s", "1", "10x", "1m-", "m"] {
        let e = case(&|p| p.period = bad.into());
        assert_eq!(e.field, "period", "{bad:?}");
    }
    let e = case(&|p| {
        p.algorithm = Some("fixed-window".into());
        p.burst = Some(5);
    });
    assert_eq!(e.field, "burst");
    let e = case(&|p| p.burst = Some(0));
    assert_eq!(e.field, "burst");
    let e = case(&|p| p.on_store_failure = Some("maybe".into()));
    assert_eq!(e.field, "on_store_failure");
    let e = case(&|p| p.headers = Some("sometimes".into()));
    assert_eq!(e.field, "headers");
    assert!(e.message.contains("near_limit"), "{e}");
    let e = case(&|p| {
        p.shadow = true;
        p.headers = Some("denied".into());
    });
    assert_eq!(e.field, "headers");
    assert!(e.message.contains("shadow"), "{e}");
    let e = case(&|p| p.matches.methods = vec!["GE T".into()]);
    assert_eq!(e.field, "match.methods");
    let e = case(&|p| p.matches.path_prefix = Some("api".into()));
    assert_eq!(e.field, "match.path_prefix");
    let e = case(&|p| {
        p.matches.path_prefix = Some("/api".into());
        p.matches.route = Some("/api/x".into());
    });
    assert_eq!(e.field, "match");
    let e = case(&|p| p.name = "has space".into());
    assert_eq!(
        (e.location.as_str(), e.field.as_str()),
        ("policies[0]", "name")
    );

    let e = error_of(&config(vec![base(), base()]));
    assert_eq!(
        (e.location.as_str(), e.field.as_str()),
        ("policies[1]", "name")
    );
    let mut cfg = config(vec![base()]);
    cfg.trusted_proxies = vec!["10.0.0.0/8".into(), "10.0.0.300".into()];
    let e = error_of(&cfg);
    assert_eq!(e.location, "trusted_proxies[1]");
    let mut cfg = config(vec![base()]);
    cfg.ipv6_subnet = 0;
    assert_eq!(error_of(&cfg).field, "ipv6_subnet");
    let mut cfg = config(vec![base()]);
    cfg.plans.insert(
        "pro".into(),
        PlanConfig {
            multiplier: Some(-1.0),
            ..PlanConfig::default()
        },
    );
    let e = error_of(&cfg);
    assert_eq!(
        (e.location.as_str(), e.field.as_str()),
        ("plan \"pro\"", "multiplier")
    );
    let mut cfg = config(vec![base()]);
    cfg.plans.insert(
        "pro".into(),
        PlanConfig {
            limits: [("nope".to_owned(), 5)].into_iter().collect(),
            ..PlanConfig::default()
        },
    );
    assert_eq!(error_of(&cfg).field, "limits.nope");
    let mut cfg = config(vec![base()]);
    cfg.plans.insert(
        "pro".into(),
        PlanConfig {
            limits: [("api".to_owned(), 5)].into_iter().collect(),
            ..PlanConfig::default()
        },
    );
    let e = error_of(&cfg);
    assert!(e.message.contains("account and api_key"), "{e}");
    assert_eq!(
        e.to_string(),
        format!("rate_limit plan \"pro\": limits.api: {}", e.message)
    );
}

#[test]
fn config_deserializes() {
    // What `[rate_limit]` of praxis.toml holds, here as JSON (any serde format works).
    let text = r#"{
        "trusted_proxies": ["10.0.0.0/8"],
        "policies": [
            {"name": "login", "match": {"methods": ["POST"], "route": "/api/v1/identity/login"},
             "key": "ip", "algorithm": "sliding-window", "limit": 10, "period": "1m",
             "on_store_failure": "closed", "headers": "near_limit"},
            {"name": "api", "match": {"path_prefix": "/api/"}, "key": "api_key",
             "limit": 100, "period": "1m", "burst": 20, "shadow": true}
        ],
        "plans": {"pro": {"multiplier": 10.0}}
    }"#;
    let cfg: RateLimitConfig = serde_json::from_str(text).expect("parses");
    assert_eq!(cfg.ipv6_subnet, 64);
    let limits = RateLimits::new(&cfg).expect("valid");
    assert_eq!(limits.policy_names().collect::<Vec<_>>(), ["login", "api"]);
    let login = &limits.policies[0];
    assert_eq!(
        login.on_failure,
        praxis_infra::ratelimit::OnStoreFailure::Closed
    );
    assert_eq!(
        login.base.rule.algorithm,
        praxis_infra::ratelimit::Algorithm::SlidingWindow
    );
    let api = &limits.policies[1];
    assert_eq!(
        api.base.rule.algorithm,
        praxis_infra::ratelimit::Algorithm::Gcra,
        "the default"
    );
    assert!(api.shadow);
    assert_eq!(login.headers, HeadersMode::NearLimit);
    assert_eq!(api.headers, HeadersMode::Always, "the default");
    assert_eq!(api.rule_for(Some("pro")).rule.quota.limit(), 1000);
    assert_eq!(api.rule_for(Some("pro")).rule.quota.burst(), 200);
    assert_eq!(api.rule_for(Some("free")).rule.quota.limit(), 100);
    assert_eq!(api.rule_for(Some("free")).rule.quota.burst(), 20);
    let typo = serde_json::from_str::<RateLimitConfig>(r#"{"policies": [{"nmae": "x"}]}"#);
    assert!(typo.is_err(), "unknown fields are rejected");
}

/// A TCP proxy to the test Redis that can be stopped (the shared Redis itself never is).
struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Self {
        let upstream = url::Url::parse(&testing::redis_url()).expect("redis url");
        let target = format!(
            "{}:{}",
            upstream.host_str().unwrap_or("127.0.0.1"),
            upstream.port().unwrap_or(6379)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self { addr, task }
    }
}

/// A limiter on the test Redis (at `url`), or a panic saying how to start Redis.
async fn redis_limiter(url: &str, prefix: &str, options: RedisLimiterOptions) -> Limiter {
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        praxis_infra::redis_conn::connect(url),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_else(|| {
        panic!(
            "Redis is unreachable at {url}. Rate-limit tests never skip: set {} to a running \
                 server or start the local one with: redis-server --daemonize yes --bind \
                 127.0.0.1 --port 6379 --save \"\" --appendonly no",
            testing::REDIS_ENV
        )
    });
    Limiter::redis_with(conn, prefix, options)
}

/// Accuracy cases must not fall back because a loaded machine was slow.
fn patient() -> RedisLimiterOptions {
    RedisLimiterOptions {
        timeout: Duration::from_secs(5),
        cooldown: Duration::ZERO,
    }
}

/// Two servers ("processes") on two Redis connections share one limit: N allowed in total,
/// then 429 from either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limiter_shares_the_limit_between_servers() {
    let prefix = testing::unique_prefix();
    let cfg = config(vec![policy("shared", "ip", "sliding-window", 6, "1h")]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let a = router(
        &limits,
        redis_limiter(&testing::redis_url(), &prefix, patient()).await,
    );
    let b = router(
        &limits,
        redis_limiter(&testing::redis_url(), &prefix, patient()).await,
    );
    let mut allowed = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = send(app, get_from("/api/v1/other", "192.0.2.77")).await;
        if r.status == StatusCode::OK {
            allowed += 1;
        } else {
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(r.json()["type"], "https://praxis.dev/problems/rate-limited");
            let retry: u64 = r
                .header("retry-after")
                .expect("retry-after")
                .parse()
                .expect("secs");
            assert!((1..=7200).contains(&retry), "retry {retry}");
        }
    }
    assert_eq!(allowed, 6);
}

/// The store goes away: `closed` answers 503 with `Retry-After: 1`, `open` lets requests
/// through, `local` keeps limiting in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failure_modes_per_policy() {
    let proxy = Proxy::start().await;
    // The default 250 ms cooldown; a 1 s call timeout so a loaded machine cannot fail the first
    // (working) call. Once the proxy is gone, calls fail at once (connection refused).
    let limiter = redis_limiter(
        &format!("redis://{}", proxy.addr),
        &testing::unique_prefix(),
        RedisLimiterOptions {
            timeout: Duration::from_secs(1),
            ..RedisLimiterOptions::default()
        },
    )
    .await;
    let mode = |name: &str, mode: &str, prefix: &str| {
        let mut p = policy(name, "ip", "gcra", 2, "1h");
        p.on_store_failure = Some(mode.into());
        p.matches.path_prefix = Some(prefix.into());
        p
    };
    let cfg = config(vec![
        mode("closed", "closed", "/api/v1/things"),
        mode("open", "open", "/api/v1/other"),
        mode("local", "local", "/healthz"),
    ]);
    let limits = RateLimits::new(&cfg).expect("valid");
    let app = router(&limits, limiter.clone());
    assert_eq!(
        send(&app, get_from("/api/v1/things/1", "192.0.2.1"))
            .await
            .status,
        StatusCode::OK
    );
    proxy.task.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = send(&app, get_from("/api/v1/things/1", "192.0.2.1")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        r.json()["type"],
        "https://praxis.dev/problems/rate-limit-unavailable"
    );
    for _ in 0..5 {
        assert_eq!(
            send(&app, get_from("/api/v1/other", "192.0.2.1"))
                .await
                .status,
            StatusCode::OK
        );
    }
    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(send(&app, get_from("/healthz", "192.0.2.1")).await.status);
        }
        v
    };
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Through `app::app`: the stack checks the policies (the 429 carries the request id in its
/// header and body) with the platform's limiter, and checks nothing without policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_checks_policies_in_the_request_stack() {
    let backend = praxis_testkit::embedded().await;
    let service = || {
        crate::service::Service::new(
            "test",
            Router::new().route("/api/v1/test/ping", get(ok)),
            utoipa::openapi::OpenApi::default(),
        )
    };
    let mut p = policy("ping", "ip", "fixed-window", 1, "1h");
    p.matches.path_prefix = Some("/api/v1/test".into());
    let opts = crate::HttpOptions {
        access_log: false,
        rate_limit: Some(RateLimits::new(&config(vec![p])).expect("valid")),
        ..crate::HttpOptions::default()
    };
    let app = crate::app::app(vec![service()], backend.platform.clone(), opts);
    let first = send(&app, get_from("/api/v1/test/ping", "192.0.2.10")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("ratelimit"), Some("\"ping\";r=0;t=3600"));
    let r = send(
        &app,
        request(
            "GET",
            "/api/v1/test/ping",
            "192.0.2.10",
            &[("x-request-id", "rl-test-1")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("x-request-id"), Some("rl-test-1"));
    let body = r.json();
    assert_eq!(body["request_id"], "rl-test-1");
    assert_eq!(body["violated-policies"], serde_json::json!(["ping"]));
    // Unmatched routes are untouched.
    let health = send(&app, get_from("/healthz", "192.0.2.10")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.header("ratelimit"), None);

    // No policies: nothing checked.
    let opts = crate::HttpOptions {
        access_log: false,
        rate_limit: Some(RateLimits::new(&config(Vec::new())).expect("valid")),
        ..crate::HttpOptions::default()
    };
    let plain = crate::app::app(vec![service()], backend.platform.clone(), opts);
    for _ in 0..3 {
        let r = send(&plain, get_from("/api/v1/test/ping", "192.0.2.10")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("ratelimit"), None);
    }
}

#[test]
fn decimals_are_written_like_display() {
    for n in [0, 7, 10, 99, 100, 65_535, 1_000_000_007, u64::MAX] {
        let mut out = String::from("x");
        super::push_decimal(&mut out, n);
        assert_eq!(out, format!("x{n}"));
    }
}

/// A request that needs a principal (an account policy also matches) waits for its decision;
/// an `ip` policy it also matches still counts in the same place as on the synchronous path,
/// so the client has one count, not one per path.
#[tokio::test]
async fn ip_policy_counts_once_whether_or_not_the_decision_waits() {
    let mut per_ip = policy("per-ip", "ip", "fixed-window", 2, "1h");
    per_ip.matches.path_prefix = Some("/api/".into());
    let mut per_account = policy("writes", "account", "fixed-window", 100, "1h");
    per_account.matches.methods = vec!["POST".into()];
    let limits = RateLimits::new(&config(vec![per_ip, per_account])).expect("valid");
    let app = router(&limits, Limiter::local());
    let peer = "198.51.100.40";
    let r = send(&app, get_from("/api/v1/other", peer)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, request("POST", "/api/v1/things/1", peer, &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("ratelimit"),
        Some("\"per-ip\";r=0;t=3600, \"writes\";r=99;t=3600")
    );
    let r = send(&app, get_from("/api/v1/other", peer)).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "third request of the client"
    );
    assert_eq!(r.json()["violated-policies"], serde_json::json!(["per-ip"]));
}

/// A body declared over the limit is refused (413) before the rate limit is checked, so it
/// takes no hit.
#[tokio::test]
async fn a_refused_body_takes_no_hit() {
    let mut p = policy("one", "ip", "fixed-window", 1, "1h");
    p.matches.path_prefix = Some("/api/".into());
    let limits = RateLimits::new(&config(vec![p])).expect("valid");
    let app = router(&limits, Limiter::local());
    let peer = "198.51.100.41";
    let big = request(
        "POST",
        "/api/v1/things/1",
        peer,
        &[("content-length", "2000000")],
    );
    assert_eq!(send(&app, big).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = send(&app, get_from("/api/v1/other", peer)).await;
    assert_eq!(r.status, StatusCode::OK, "the 413 took no hit");
    assert_eq!(r.header("ratelimit"), Some("\"one\";r=0;t=3600"));
    let r = send(&app, get_from("/api/v1/other", peer)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// The fields describe the handler's answer: a 500 the stack answers for a panicking handler
/// carries none (the hit is still taken).
#[tokio::test]
async fn a_panicking_handler_gets_a_500_without_fields() {
    async fn boom() -> &'static str {
        panic!("boom")
    }
    let mut p = policy("boom", "ip", "fixed-window", 2, "1h");
    p.matches.path_prefix = Some("/".into());
    let limits = RateLimits::new(&config(vec![p])).expect("valid");
    let app = Router::new()
        .route("/boom", get(boom))
        .route("/fine", get(ok))
        .layer(stack(&limits, Limiter::local(), AuthSettings::default()));
    let peer = "198.51.100.42";
    let r = send(&app, get_from("/boom", peer)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.header("ratelimit"), None);
    assert_eq!(r.header("ratelimit-policy"), None);
    let r = send(&app, get_from("/fine", peer)).await;
    assert_eq!(r.status, StatusCode::OK);
    // The window opened with the first request; the panic's report may take a second on a
    // loaded machine, so the reset is 3600 or 3599 seconds away.
    let field = r.header("ratelimit");
    assert!(
        matches!(field, Some("\"boom\";r=0;t=3600" | "\"boom\";r=0;t=3599")),
        "{field:?}"
    );
}

/// Resolves tokens as [`Tokens`] does, after a long pause (a slow identity store).
struct SlowTokens;

#[async_trait::async_trait]
impl Authenticator for SlowTokens {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Tokens.authenticate(bearer).await
    }
}

/// A decision that waits (here for a slow principal lookup) runs under the stack's timeout
/// like a handler: 503 `timeout` with the request id, no rate-limit fields, handler not called.
#[tokio::test]
async fn a_waiting_decision_is_bounded_by_the_request_timeout() {
    let limits = RateLimits::new(&config(vec![policy(
        "per-account",
        "account",
        "fixed-window",
        10,
        "1h",
    )]))
    .expect("valid");
    let auth = AuthSettings {
        authenticator: Some(Arc::new(SlowTokens)),
        ..AuthSettings::default()
    };
    let app = Router::new()
        .route("/api/v1/other", get(ok))
        .layer(stack_with_timeout(
            &limits,
            Limiter::local(),
            auth,
            Some(Duration::from_millis(100)),
        ));
    let started = std::time::Instant::now();
    let r = send(
        &app,
        request(
            "GET",
            "/api/v1/other",
            "198.51.100.43",
            &[
                ("authorization", "Bearer t-alice-free"),
                ("x-request-id", "rl-slow-1"),
            ],
        ),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered at the timeout"
    );
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["type"], "https://praxis.dev/problems/timeout");
    assert_eq!(r.header("x-request-id"), Some("rl-slow-1"));
    assert_eq!(r.header("ratelimit"), None);
}
