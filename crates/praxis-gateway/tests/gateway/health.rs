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
