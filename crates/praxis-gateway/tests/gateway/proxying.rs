//! What the proxy forwards and answers: trace context, X-Forwarded-For, unmatched routes, and
//! no retries for requests that are not idempotent.

use crate::support::*;

async fn echo(http: &reqwest::Client, gw: &Gw, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut req = http.get(format!("{}/echo", gw.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("echo json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_is_kept_or_started_and_the_client_is_forwarded() {
    let ups = upstreams("hdr", 1).await;
    let gw = gateway(&config(&ups, "health.check = \"none\"", "")).await;
    let http = client();

    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let seen = echo(&http, &gw, &[("traceparent", given)]).await;
    assert_eq!(seen["traceparent"], given);
    let started = echo(&http, &gw, &[]).await;
    let tp = started["traceparent"]
        .as_str()
        .expect("a traceparent was started");
    assert!(
        praxis_gateway::proxy::headers::valid_traceparent(tp),
        "{tp}"
    );
    assert_eq!(started["x_forwarded_for"], "127.0.0.1");
    assert_eq!(started["version"], "HTTP/1.1");
    let chained = echo(&http, &gw, &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(chained["x_forwarded_for"], "203.0.113.7, 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmatched_request_is_a_404_problem() {
    let ups = upstreams("nr", 1).await;
    let file = format!(
        "[pools.p]\ninstances = {}\nhealth.check = \"none\"\n[[routes]]\npath_prefix = \"/api/\"\npool = \"p\"\n",
        instances(&ups)
    );
    let gw = gateway(&file).await;
    let http = client();
    let resp = http
        .get(format!("{}/elsewhere", gw.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.expect("problem");
    assert_eq!(body["type"], "https://praxis.dev/problems/no-route");
    assert_eq!(get(&http, &gw, "/api/x").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_retried_only_with_an_idempotency_key() {
    let ups = upstreams("post", 2).await;
    ups[0].mode("status=503").await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }",
        "",
    ))
    .await;
    let http = client();
    // Round robin starts at the failing instance.
    let plain = http
        .post(format!("{}/orders", gw.base))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(plain.status(), 503, "a POST without a key is not retried");
    let _ = http
        .post(format!("{}/orders", gw.base))
        .body("{}")
        .send()
        .await;
    let keyed = http
        .post(format!("{}/orders", gw.base))
        .header("idempotency-key", "k-1")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(
        keyed.status(),
        200,
        "a POST with an Idempotency-Key is retried"
    );
    assert_eq!(keyed.headers()["x-upstream-id"], "post1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_written_as_a_name_is_its_addresses() {
    let ups = upstreams("dns", 1).await;
    let port = ups[0].addr.rsplit_once(':').expect("port").1;
    let file = format!(
        "[pools.p]\ninstances = [\"localhost:{port}\"]\nhealth.check = \"none\"\nresolve_interval = \"100ms\"\n[[routes]]\npool = \"p\"\n"
    );
    let gw = gateway(&file).await;
    let addrs: Vec<String> = gw
        .gateway
        .pool_status("p")
        .expect("pool")
        .into_iter()
        .map(|s| s.addr)
        .collect();
    assert!(addrs.contains(&format!("127.0.0.1:{port}")), "{addrs:?}");
    let http = client();
    for _ in 0..5 {
        assert_eq!(get(&http, &gw, "/").await, (200, Some("dns0".to_owned())));
    }
}
