//! The gateway as the binary starts it (`GatewaySystem` through the plug-in interface, on an
//! embedded platform) and its admin API behind the app's stack.

use axum::http::Method;
use praxis_testkit::http::{bearer_request, send};
use serde_json::json;

use crate::support::*;

const ADMIN: &str = "gateway-admin-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plug_in_starts_the_proxy_and_its_admin_api_shows_it_and_sets_weights() {
    let ups = upstreams("api", 2).await;
    let backend = praxis_testkit::embedded().await;
    let file = std::env::temp_dir().join(format!("praxis-gw-api-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        config(
            &ups,
            "algorithm = \"weighted\"\nhealth.check = \"none\"",
            "",
        ),
    )
    .expect("write the gateway file");
    let api = plugin_api(&backend, Some(&file), ADMIN).await;

    let anonymous = send(
        &api,
        bearer_request(Method::GET, "/api/v1/gateway/status", None, None),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let status = send(
        &api,
        bearer_request(Method::GET, "/api/v1/gateway/status", Some(ADMIN), None),
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.text());
    let body = status.json();
    assert_eq!(body["applied"], 1);
    assert_eq!(body["pools"][0]["name"], "p");
    assert_eq!(body["pools"][0]["algorithm"], "weighted");
    assert_eq!(
        body["pools"][0]["instances"].as_array().map(Vec::len),
        Some(2)
    );
    let listening = body["listening"]
        .as_str()
        .expect("the proxy listens")
        .to_owned();

    let http = client();
    let through = |path: &'static str| {
        let (http, url) = (http.clone(), format!("http://{listening}{path}"));
        async move {
            let resp = http.get(url).send().await.expect("through the gateway");
            resp.headers()
                .get("x-upstream-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }
    };
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(through("/").await);
    }
    assert_eq!(tally(ids).get("api1"), Some(&5), "weights 1:1");

    let weight_url = format!("/api/v1/gateway/pools/p/weights/{}", ups[1].addr);
    let set = send(
        &api,
        bearer_request(
            Method::PUT,
            &weight_url,
            Some(ADMIN),
            Some(json!({ "weight": 0 })),
        ),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["weight"], 0);
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(through("/").await);
    }
    assert_eq!(tally(ids).get("api0"), Some(&10), "weight 0 takes api1 out");

    let missing = send(
        &api,
        bearer_request(
            Method::PUT,
            "/api/v1/gateway/pools/p/weights/10.9.9.9:1",
            Some(ADMIN),
            Some(json!({ "weight": 1 })),
        ),
    )
    .await;
    missing.problem(404);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_gateway_file_the_plug_in_does_not_listen() {
    let backend = praxis_testkit::embedded().await;
    let api = plugin_api(&backend, None, ADMIN).await;
    let status = send(
        &api,
        bearer_request(Method::GET, "/api/v1/gateway/status", Some(ADMIN), None),
    )
    .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["listening"], serde_json::Value::Null);
}
