//! The retry budget during an outage, load shedding at the concurrency limit, and the premium
//! tier's reserve, over real upstream processes.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_full_outage_attempts_stay_within_the_retry_budget() {
    let ups = upstreams("out", 3).await;
    for u in &ups {
        u.mode("status=503").await;
    }
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\nmax_retries = 2\nretry_budget = { ratio = 0.2, min_per_sec = 3, ttl = \"10s\" }\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }",
        "",
    ))
    .await;
    let http = client();
    let requests = 400u64;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (http, base) = (http.clone(), gw.base.clone());
        tasks.spawn(async move {
            for i in 0..requests / 8 {
                let resp = http
                    .get(format!("{base}/w/{worker}/{i}"))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status(), 503);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("worker");
    }
    let mut attempts = 0;
    for u in &ups {
        attempts += u.stats().await.served;
    }
    eprintln!("outage: {attempts} upstream attempts for {requests} client requests");
    // Without a budget each request would be tried three times (1,200 attempts).
    assert!(attempts > requests, "some retries were sent ({attempts})");
    assert!(
        attempts as f64 <= 1.2 * requests as f64,
        "{attempts} upstream attempts for {requests} client requests"
    );
}

async fn hold(
    http: &reqwest::Client,
    gw: &Gw,
    n: usize,
    headers: &'static [(&'static str, &'static str)],
) -> Vec<tokio::task::JoinHandle<u16>> {
    (0..n)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}/slow", gw.base));
            tokio::spawn(async move {
                let mut req = http.get(url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send().await.expect("held request").status().as_u16()
            })
        })
        .collect()
}

async fn wait_in_flight(up: &Upstream, n: u64) {
    eventually(
        &format!("{n} requests in flight at the upstream"),
        Duration::from_secs(10),
        || async { up.stats().await.in_flight == n },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_requests_are_shed_with_503_and_retry_after() {
    let ups = upstreams("shed", 1).await;
    ups[0].mode("hold=true").await;
    let gw = gateway(&config(
        &ups,
        "health.check = \"none\"\nmax_concurrency = 4",
        "",
    ))
    .await;
    let http = client();
    let held = hold(&http, &gw, 4, &[]).await;
    wait_in_flight(&ups[0], 4).await;

    let resp = http
        .get(format!("{}/one-more", gw.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.expect("problem");
    assert_eq!(body["type"], "https://praxis.dev/problems/overloaded");
    assert_eq!(
        ups[0].stats().await.served,
        4,
        "the shed request never reached the upstream"
    );

    ups[0].release().await;
    for h in held {
        assert_eq!(h.await.expect("held"), 200);
    }
    assert_eq!(get(&http, &gw, "/after").await.0, 200, "slots are freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_traffic_keeps_its_reserve_when_best_effort_saturates_the_pool() {
    let ups = upstreams("tier", 1).await;
    ups[0].mode("hold=true").await;
    let file = format!(
        "{}\n[tiers]\nheader = \"x-tier\"\n",
        config(
            &ups,
            "health.check = \"none\"\nmax_concurrency = 10\npremium_reserve = 0.3",
            ""
        )
    );
    let gw = gateway(&file).await;
    let http = client();
    const PREMIUM: &[(&str, &str)] = &[("x-tier", "premium")];

    // Best effort fills what is not reserved, then is shed.
    let mut held = hold(&http, &gw, 7, &[]).await;
    wait_in_flight(&ups[0], 7).await;
    for _ in 0..5 {
        assert_eq!(get(&http, &gw, "/best-effort").await.0, 503);
    }
    // Premium still gets the three reserved slots, and only those.
    held.extend(hold(&http, &gw, 3, PREMIUM).await);
    wait_in_flight(&ups[0], 10).await;
    assert_eq!(get_with(&http, &gw, "/premium", PREMIUM).await.0, 503);
    assert_eq!(get(&http, &gw, "/best-effort").await.0, 503);

    ups[0].release().await;
    for h in held {
        assert_eq!(h.await.expect("held"), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_request_is_answered_by_the_other_instance_when_the_first_is_slow() {
    let ups = upstreams("hedge", 2).await;
    ups[0].mode("delay_ms=5000").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\noutlier = { latency_factor = 0 }",
        "hedge_after = \"50ms\"\ntimeout = \"20s\"",
    ))
    .await;
    let http = client();
    for i in 0..10 {
        let (status, id) = get(&http, &gw, &format!("/h/{i}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            id.as_deref(),
            Some("hedge1"),
            "request {i} answered by the fast instance"
        );
    }
    assert!(
        ups[0].stats().await.served >= 5,
        "the slow instance was tried first"
    );
}
