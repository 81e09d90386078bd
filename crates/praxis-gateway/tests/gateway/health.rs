//! Active health checks and passive outlier ejection over real upstream processes.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_is_ejected_and_returns_after_its_ejection_time() {
    let ups = upstreams("ej", 3).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\noutlier = { consecutive_5xx = 3, consecutive_gateway_errors = 3, base_ejection = \"1s\", max_ejection_percent = 50, latency_factor = 0 }",
        "retries = false",
    ))
    .await;
    let http = client();
    let bad = &ups[2];
    bad.mode("status=500").await;
    let mut sent = 0;
    while !ejected(&gw, &bad.addr) {
        get(&http, &gw, "/").await;
        sent += 1;
        assert!(sent < 30, "not ejected after {sent} requests");
    }
    assert_eq!(
        bad.stats().await.served,
        3,
        "ejected at its third 5xx in a row"
    );

    // While it is out, nothing goes to it: every answer that came back while the gateway still
    // had it ejected came from another instance.
    let mut checked = 0;
    for _ in 0..20 {
        let (status, id) = get(&http, &gw, "/").await;
        if ejected(&gw, &bad.addr) {
            assert_eq!(status, 200);
            assert_ne!(id.as_deref(), Some(bad.id.as_str()));
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "the ejection ended before any request was checked"
    );

    // Fixed, it comes back when its time is up and takes its share again.
    bad.mode("status=200").await;
    eventually(
        "the instance to return",
        Duration::from_secs(10),
        || async { !ejected(&gw, &bad.addr) },
    )
    .await;
    let served = bad.stats().await.served;
    for _ in 0..30 {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
    }
    assert_eq!(
        bad.stats().await.served - served,
        10,
        "its round-robin share again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_checks_take_a_killed_instance_out_and_a_not_ready_one_out_and_back() {
    let mut ups = upstreams("hc", 3).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth = { check = \"http\", path = \"/readyz\", interval = \"100ms\", timeout = \"500ms\", healthy_threshold = 2, unhealthy_threshold = 2 }\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }",
        "retries = false",
    ))
    .await;
    let http = client();

    let killed = ups[0].addr.clone();
    ups[0].kill().await;
    eventually(
        "the killed instance to be down",
        Duration::from_secs(10),
        || async { !up(&gw, &killed) },
    )
    .await;
    for _ in 0..20 {
        let (status, id) = get(&http, &gw, "/").await;
        assert_eq!(status, 200, "no request goes to the killed instance");
        assert_ne!(id.as_deref(), Some("hc0"));
    }

    let unready = &ups[1];
    unready.mode("ready=false").await;
    eventually(
        "the not-ready instance to be down",
        Duration::from_secs(10),
        || async { !up(&gw, &unready.addr) },
    )
    .await;
    let before = unready.stats().await.served;
    for _ in 0..10 {
        assert_eq!(get(&http, &gw, "/").await, (200, Some("hc2".to_owned())));
    }
    assert_eq!(unready.stats().await.served, before);

    unready.mode("ready=true").await;
    eventually(
        "the ready instance to be up",
        Duration::from_secs(10),
        || async { up(&gw, &unready.addr) },
    )
    .await;
    let ids: Vec<Option<String>> = {
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(get(&http, &gw, "/").await.1);
        }
        ids
    };
    assert_eq!(tally(ids).get("hc1"), Some(&5), "back in rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_is_ejected_as_a_latency_outlier() {
    let ups = upstreams("lat", 3).await;
    ups[2].mode("delay_ms=80").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\noutlier = { latency_factor = 3, latency_min_gap = \"20ms\", latency_min_samples = 5, base_ejection = \"30s\", max_ejection_percent = 50 }",
        "",
    ))
    .await;
    let http = client();
    let mut sent = 0;
    while !ejected(&gw, &ups[2].addr) {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
        sent += 1;
        assert!(
            sent < 60,
            "the slow instance was not ejected after {sent} requests"
        );
    }
    let served = ups[2].stats().await.served;
    for _ in 0..20 {
        assert_ne!(get(&http, &gw, "/").await.1.as_deref(), Some("lat2"));
    }
    assert_eq!(ups[2].stats().await.served, served);
}

/// Four clients in closed loops through the gateway while one of three instances is killed
/// with SIGKILL; returns (client errors, ms from the kill to the last error), and checks that
/// no request sent after the active check took the instance out failed.
async fn kill_9_under_load(retries: bool) -> (usize, f64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::time::Instant;

    let mut ups = upstreams(if retries { "k9r" } else { "k9n" }, 3).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth = { check = \"tcp\", interval = \"200ms\", timeout = \"100ms\", unhealthy_threshold = 1 }",
        &format!("retries = {retries}"),
    ))
    .await;
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url, stop) = (http.clone(), format!("{}/load", gw.base), stop.clone());
        workers.spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let status = http
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.push((sent, Instant::now(), status));
            }
            seen
        });
    }
    // Let traffic reach every instance, then kill one.
    eventually(
        "traffic on every instance",
        Duration::from_secs(10),
        || async {
            let mut all = true;
            for u in &ups {
                all &= u.stats().await.served > 10;
            }
            all
        },
    )
    .await;
    let killed = ups[0].addr.clone();
    let t_kill = Instant::now();
    ups[0].kill().await;
    eventually(
        "the killed instance to be down",
        Duration::from_secs(10),
        || async { !up(&gw, &killed) },
    )
    .await;
    let t_down = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    while let Some(done) = workers.join_next().await {
        results.extend(done.expect("worker"));
    }
    let errors: Vec<_> = results.iter().filter(|(_, _, s)| *s != 200).collect();
    for (sent, _, status) in &errors {
        assert!(
            *sent < t_down,
            "a request sent after the instance was out failed with {status}"
        );
    }
    let last = errors
        .iter()
        .map(|(_, done, _)| done.duration_since(t_kill).as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    eprintln!(
        "kill -9 (retries {retries}): {} requests, {} errors, last error {last:.1} ms after the kill, instance down after {:.1} ms",
        results.len(),
        errors.len(),
        t_down.duration_since(t_kill).as_secs_f64() * 1000.0
    );
    (errors.len(), last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_with_retries_costs_no_client_errors() {
    let (errors, _) = kill_9_under_load(true).await;
    assert_eq!(
        errors, 0,
        "idempotent requests to the dead instance are retried elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_without_retries_errors_stop_once_it_is_out() {
    kill_9_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breakers_stop_calls_to_a_failing_instance_and_answer_503_when_all_are_open() {
    let ups = upstreams("cb", 2).await;
    ups[1].mode("status=500").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }\nbreaker = { failures = 3, open_for = \"30s\", max_open = \"60s\" }",
        "retries = false",
    ))
    .await;
    let http = client();
    for _ in 0..20 {
        get(&http, &gw, "/").await;
    }
    assert_eq!(
        ups[1].stats().await.served,
        3,
        "open after 3 failures in a row"
    );
    let status = gw.gateway.pool_status("p").expect("pool");
    assert_eq!(status[1].breaker.as_deref(), Some("open"));
    assert_eq!(status[0].breaker.as_deref(), Some("closed"));
    for _ in 0..5 {
        assert_eq!(get(&http, &gw, "/").await, (200, Some("cb0".to_owned())));
    }

    // Both failing: once both breakers are open the gateway answers at once.
    ups[0].mode("status=500").await;
    for _ in 0..3 {
        get(&http, &gw, "/").await;
    }
    let served = ups[0].stats().await.served;
    let resp = http
        .get(format!("{}/", gw.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.expect("problem");
    assert_eq!(body["type"], "https://praxis.dev/problems/circuit-open");
    assert_eq!(
        ups[0].stats().await.served,
        served,
        "nothing sent while every breaker is open"
    );
}
