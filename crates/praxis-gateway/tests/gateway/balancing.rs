//! Round robin, weighted round robin and P2C on peak EWMA over real upstream processes.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_even() {
    let ups = upstreams("rr", 3).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"",
        "",
    ))
    .await;
    let http = client();
    let mut ids = Vec::new();
    for i in 0..300 {
        let (status, id) = get(&http, &gw, &format!("/item/{i}")).await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    let counts = tally(ids);
    for u in &ups {
        assert_eq!(counts.get(&u.id), Some(&100), "{counts:?}");
        assert_eq!(
            u.stats().await.served,
            100,
            "{} counted what it served",
            u.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_set_the_shares_and_change_at_runtime() {
    let ups = upstreams("w", 2).await;
    let file = format!(
        "[pools.p]\nalgorithm = \"weighted\"\nhealth.check = \"none\"\ninstances = [{{ addr = {:?}, weight = 3 }}, {{ addr = {:?}, weight = 1 }}]\n\n[[routes]]\npool = \"p\"\n",
        ups[0].addr, ups[1].addr
    );
    let gw = gateway(&file).await;
    let http = client();
    let mut ids = Vec::new();
    for _ in 0..400 {
        ids.push(get(&http, &gw, "/").await.1);
    }
    let counts = tally(ids);
    assert_eq!(counts.get("w0"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("w1"), Some(&100), "{counts:?}");

    gw.gateway
        .set_weight("p", &ups[1].addr, 3)
        .expect("set weight");
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(get(&http, &gw, "/").await.1);
    }
    let counts = tally(ids);
    assert_eq!(counts.get("w0"), Some(&150), "{counts:?}");
    assert_eq!(counts.get("w1"), Some(&150), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_avoids_a_slow_instance_and_one_that_fails_fast() {
    // Three fast instances, one that takes 50 ms, one that answers 503 at once. Outlier
    // detection is off: the balancer alone must steer away from both.
    let ups = upstreams("p2c", 5).await;
    ups[3].mode("delay_ms=50").await;
    ups[4].mode("status=503").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"p2c_ewma\"\nhealth.check = \"none\"\nerror_penalty = \"1s\"\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }",
        "",
    ))
    .await;
    let http = client();
    let requests = 400;
    for i in 0..requests {
        let (status, _) = get(&http, &gw, &format!("/r/{i}")).await;
        // A 503 from the failing one is retried on another instance.
        assert_eq!(status, 200, "request {i}");
    }
    let mut served = Vec::new();
    for u in &ups {
        served.push(u.stats().await.served as f64);
    }
    let total: f64 = served.iter().sum();
    let (slow, failing) = (served[3] / total, served[4] / total);
    eprintln!("p2c attempts by instance (fast, fast, fast, slow, failing): {served:?}");
    // Round robin would give each a fifth (0.2). P2C picks the slow one only when it draws it
    // with the failing one (1 pair in 10); the failing one, only before its first error.
    assert!(
        slow < 0.15,
        "slow instance got {slow:.3} of {total} attempts: {served:?}"
    );
    assert!(
        failing < 0.03,
        "failing instance got {failing:.3} of {total} attempts: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_avoids_the_instance_with_requests_in_flight() {
    let ups = upstreams("lc", 2).await;
    ups[0].mode("hold=true").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"least_connections\"\nhealth.check = \"none\"",
        "",
    ))
    .await;
    let http = client();
    // The first request goes to lc0 (ties go round) and stays there.
    let held = {
        let (http, url) = (http.clone(), format!("{}/held", gw.base));
        tokio::spawn(async move { http.get(url).send().await.expect("held").status().as_u16() })
    };
    eventually(
        "one request held at lc0",
        std::time::Duration::from_secs(10),
        || async { ups[0].stats().await.in_flight == 1 },
    )
    .await;
    for _ in 0..20 {
        assert_eq!(get(&http, &gw, "/").await, (200, Some("lc1".to_owned())));
    }
    ups[0].release().await;
    assert_eq!(held.await.expect("held"), 200);
    let ids: Vec<Option<String>> = {
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(get(&http, &gw, "/").await.1);
        }
        ids
    };
    assert_eq!(tally(ids).len(), 2, "both take requests once idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_pools_speak_h2c_to_their_instances() {
    let ups = upstreams("h2", 2).await;
    let gw = gateway(&config(&ups, "http2 = true\nhealth.check = \"none\"", "")).await;
    let http = client();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (status, id) = get(&http, &gw, "/").await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    assert_eq!(tally(ids).get("h20"), Some(&10));
    let seen: serde_json::Value = http
        .get(format!("{}/echo", gw.base))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("echo");
    assert_eq!(
        seen["version"], "HTTP/2.0",
        "the upstream was spoken to in HTTP/2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_weights_follow_live_latency() {
    let ups = upstreams("dyn", 2).await;
    ups[1].mode("delay_ms=20").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"weighted\"\ndynamic_weights = true\nweight_interval = \"100ms\"\nhealth.check = \"none\"\noutlier = { latency_factor = 0 }",
        "",
    ))
    .await;
    let http = client();
    // Equal weights until the first refresh has seen both instances.
    for _ in 0..4 {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
    }
    let weights = || {
        let s = gw.gateway.pool_status("p").expect("pool");
        (s[0].effective_weight, s[1].effective_weight)
    };
    eventually(
        "the weights to follow latency",
        std::time::Duration::from_secs(10),
        || async {
            let (fast, slow) = weights();
            fast > 4 * slow
        },
    )
    .await;
    eprintln!("dynamic weights (fast, slow): {:?}", weights());
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(get(&http, &gw, "/").await.1);
    }
    let fast = tally(ids).get("dyn0").copied().unwrap_or(0);
    assert!(fast >= 80, "the fast instance took {fast} of 100");
}
