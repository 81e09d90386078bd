//! Login abuse limits: failures per account and attempts per client IP, both answered 429
//! with `Retry-After` whatever the password; successful logins do not use up the account's
//! failures.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use praxis_identity::{IdentitySettings, Limit};

use crate::support::{Harness, PASSWORD, Resp, settings};

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([198, 51, 100, last]))
}

async fn login(h: &Harness, from: Option<IpAddr>, email: &str, password: &str) -> Resp {
    h.call_from(
        from,
        Method::POST,
        "/api/v1/identity/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

#[track_caller]
fn limited(r: &Resp) {
    let body = r.problem(429);
    assert_eq!(
        body["type"], "https://praxis.dev/problems/too-many-attempts",
        "{body}"
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
}

pub async fn login_attempts_are_limited_per_account_and_ip(h: &Harness) {
    let h = h
        .sibling(IdentitySettings {
            login_limit_account: Limit {
                limit: 3,
                period: Duration::from_secs(3600),
            },
            login_limit_ip: Limit {
                limit: 6,
                period: Duration::from_secs(3600),
            },
            ..settings()
        })
        .await;
    h.sign_up("victim@example.com").await;
    h.sign_up("user@example.com").await;

    // Successful logins do not count against the account.
    for _ in 0..4 {
        login(&h, ip(9), "user@example.com", PASSWORD).await.ok(200);
    }

    // Three wrong passwords for the victim, from two addresses...
    for from in [ip(1), ip(1), ip(2)] {
        login(&h, from, "victim@example.com", "wrong password guess")
            .await
            .problem(401);
    }
    // ...and the account refuses further attempts from anywhere, even with the right password,
    // with the same answer either way.
    limited(&login(&h, ip(3), "victim@example.com", "another wrong guess").await);
    limited(&login(&h, ip(3), "victim@example.com", PASSWORD).await);
    limited(&login(&h, None, "VICTIM@example.com", PASSWORD).await);
    // Unknown accounts are limited the same way (no hint that they do not exist).
    for _ in 0..3 {
        login(&h, ip(4), "ghost@example.com", "guess guess guess")
            .await
            .problem(401);
    }
    limited(&login(&h, ip(5), "ghost@example.com", "guess guess guess").await);

    // Per IP: every attempt counts. ip(1) has made 2 attempts; 4 more are allowed, the 7th is
    // refused even for another, healthy account.
    for _ in 0..4 {
        login(&h, ip(1), "user@example.com", PASSWORD).await.ok(200);
    }
    limited(&login(&h, ip(1), "user@example.com", PASSWORD).await);
    // Another address is not affected.
    login(&h, ip(6), "user@example.com", PASSWORD).await.ok(200);
}

/// A login from `peer` carrying `X-Forwarded-For: forwarded`.
async fn login_via(h: &Harness, peer: IpAddr, forwarded: &str) -> Resp {
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/identity/login")
        .header("content-type", "application/json")
        .header("x-forwarded-for", forwarded)
        .body(axum::body::Body::from(
            json!({"email": "user@example.com", "password": PASSWORD}).to_string(),
        ))
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            peer, 40_000,
        )));
    h.send(req).await
}

pub async fn login_limits_see_the_client_behind_a_trusted_proxy(h: &Harness) {
    let h = h
        .sibling(IdentitySettings {
            login_limit_ip: Limit {
                limit: 2,
                period: Duration::from_secs(3600),
            },
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("cidr")],
            ..settings()
        })
        .await;
    h.sign_up("user@example.com").await;
    let proxy = IpAddr::from([10, 0, 0, 1]);

    // Through the trusted proxy, each client has its own budget of two attempts.
    for _ in 0..2 {
        login_via(&h, proxy, "203.0.113.7").await.ok(200);
    }
    limited(&login_via(&h, proxy, "203.0.113.7").await);
    // A forged left-most entry does not help: the right-most untrusted hop is the client.
    limited(&login_via(&h, proxy, "192.0.2.99, 203.0.113.7").await);
    login_via(&h, proxy, "203.0.113.8").await.ok(200);

    // From an untrusted peer the header is ignored: the peer itself is the client.
    let direct = IpAddr::from([198, 51, 100, 20]);
    for i in 0..2 {
        login_via(&h, direct, &format!("203.0.113.{}", 100 + i))
            .await
            .ok(200);
    }
    limited(&login_via(&h, direct, "203.0.113.200").await);
}
