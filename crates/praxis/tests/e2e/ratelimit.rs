//! Rate limiting through the real binary: `[rate_limit]` policies from praxis.toml answering
//! 429 with the headers, `praxis config` printing and checking them, and the decision service
//! (`--only ratelimit`) over HTTP and gRPC with its limits reloaded without restart.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    RateLimitDescriptor, rate_limit_descriptor,
};
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, Server, client, describe, run, temp_dir};

const POLICIES: &str = r#"
[rate_limit]

[[rate_limit.policies]]
name = "login"
match = { methods = ["POST"], route = "/api/v1/identity/login" }
key = "ip"
algorithm = "sliding-log"
limit = 2
period = "1h"

[[rate_limit.policies]]
name = "redirect-shadow"
match = { methods = ["GET"], route = "/{code}" }
key = "ip"
limit = 1
period = "1h"
shadow = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_policy_answers_429_with_the_headers() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("praxis.toml"), POLICIES).expect("write praxis.toml");
    let server = Server::start(dir.path(), &["--data-dir", "data"], &[]);
    let http = client();
    let login = json!({"email": "nobody@example.com", "password": "wrong password 123"});
    for remaining in [1, 0] {
        let resp = http
            .post(server.url("/api/v1/identity/login"))
            .json(&login)
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status().as_u16(), 401, "{}", server.logs());
        let h = resp.headers();
        assert_eq!(h["ratelimit-policy"], "\"login\";q=2;w=3600");
        let limit = h["ratelimit"].to_str().expect("ascii");
        assert!(
            limit.starts_with(&format!("\"login\";r={remaining};t=")),
            "{limit}"
        );
    }
    let resp = http
        .post(server.url("/api/v1/identity/login"))
        .json(&login)
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 429);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/problem+json");
    let retry: u64 = h["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-policy"], "\"login\";q=2;w=3600");
    assert_eq!(
        h["ratelimit"].to_str().expect("ascii"),
        format!("\"login\";r=0;t={retry}")
    );
    let body: Value = resp.json().await.expect("problem");
    assert_eq!(body["type"], "https://praxis.dev/problems/rate-limited");
    assert_eq!(body["violated-policies"], json!(["login"]));
    // The shadow policy never blocks and announces nothing.
    for _ in 0..3 {
        let resp = http
            .get(server.url("/nosuchcode"))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 404);
        assert!(resp.headers().get("ratelimit").is_none());
    }

    // praxis config prints the policies with their file.
    let out = run(dir.path(), &["config"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# [rate_limit]: 2 policies, from "), "{text}");
    let printed: toml::Table = toml::from_str(&text).expect("config prints TOML");
    let policies = printed["rate_limit"]["policies"]
        .as_array()
        .expect("policies");
    assert_eq!(policies[0]["name"].as_str(), Some("login"));
    assert_eq!(policies[1]["shadow"].as_bool(), Some(true));
}

#[test]
fn invalid_policies_stop_the_start_naming_file_policy_and_field() {
    let dir = temp_dir();
    let path = dir.path().join("praxis.toml");
    std::fs::write(
        &path,
        POLICIES.replace("period = \"1h\"\nshadow", "period = \"an hour\"\nshadow"),
    )
    .expect("write");
    for cmd in ["config", "serve"] {
        let out = run(dir.path(), &[cmd], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("rate_limit in ")
                && err.contains(
                    "praxis.toml: policy \"redirect-shadow\": period: \"an hour\" is not a period"
                ),
            "{err}"
        );
    }
}

fn limits(n: u32) -> String {
    format!(
        "domain = \"edge\"\n\n[[descriptors]]\nkey = \"remote_address\"\nrate_limit = {{ unit = \"day\", requests_per_unit = {n} }}\n"
    )
}

/// The address of the gRPC server from the log.
fn grpc_addr(server: &Server) -> String {
    server.wait_for_log("rate-limit gRPC listening", Duration::from_secs(10));
    server
        .json_logs()
        .iter()
        .find(|l| l["message"] == "rate-limit gRPC listening")
        .and_then(|l| l["addr"].as_str().map(str::to_owned))
        .expect("addr in the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_service_over_http_and_grpc_reloads_without_restart() {
    let dir = temp_dir();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, limits(2)).expect("write limits");
    let file_arg = file.display().to_string();
    let server = Server::start(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "--only",
            "ratelimit",
            "--ratelimit-limits",
            &file_arg,
            "--ratelimit-grpc-listen",
            "127.0.0.1:0",
        ],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    let http = client();
    let check = |ip: &'static str| {
        let http = http.clone();
        let url = server.url("/api/v1/ratelimit/check");
        async move {
            let resp = http
                .post(url)
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"domain": "edge", "descriptors": [{"entries": [{"key": "remote_address", "value": ip}]}]}))
                .send()
                .await
                .expect("check");
            assert_eq!(resp.status().as_u16(), 200);
            resp.json::<Value>().await.expect("json")
        }
    };
    assert_eq!(check("192.0.2.1").await["overall_code"], "OK");
    let mut grpc = RateLimitServiceClient::connect(format!("http://{}", grpc_addr(&server)))
        .await
        .expect("grpc connects");
    let mut req = tonic::Request::new(RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![rate_limit_descriptor::Entry {
                key: "remote_address".into(),
                value: "192.0.2.1".into(),
            }],
            ..RateLimitDescriptor::default()
        }],
        hits_addend: 0,
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().expect("metadata"),
    );
    let res = grpc
        .should_rate_limit(req)
        .await
        .expect("grpc")
        .into_inner();
    assert_eq!(res.overall_code, Code::Ok as i32);
    assert_eq!(res.statuses[0].limit_remaining, 0);
    let body = check("192.0.2.1").await;
    assert_eq!(body["overall_code"], "OVER_LIMIT", "{body}");

    // Rewrite the limits: the running server picks them up.
    let tmp = dir.path().join("edge.toml.tmp");
    std::fs::write(&tmp, limits(5)).expect("write");
    std::fs::rename(&tmp, &file).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cfg: Value = http
            .get(server.url("/api/v1/ratelimit/config"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("config")
            .json()
            .await
            .expect("json");
        if cfg["generation"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new limits were not loaded: {cfg}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = check("192.0.2.1").await;
    assert_eq!(body["overall_code"], "OK", "{body}");
    assert_eq!(body["statuses"][0]["current_limit"]["requests_per_unit"], 5);
    assert_eq!(body["statuses"][0]["limit_remaining"], 4);
}

/// What an Envoy deployment does: an admin account creates an API key with the scope
/// `ratelimit:check`, and Envoy sends it as gRPC metadata; keys without the scope are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_with_the_check_scope_is_accepted_over_grpc() {
    let dir = temp_dir();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, limits(1)).expect("write limits");
    let file_arg = file.display().to_string();
    let server = Server::start(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "--ratelimit-limits",
            &file_arg,
            "--ratelimit-grpc-listen",
            "127.0.0.1:0",
        ],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    let http = client();
    let creds = json!({"email": "ops@example.com", "password": "correct horse battery staple"});
    let resp = http
        .post(server.url("/api/v1/identity/signup"))
        .json(&creds)
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resp = http
        .patch(server.url(&format!("/api/v1/identity/accounts/{id}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect("promote");
    assert_eq!(resp.status().as_u16(), 200);
    let login: Value = http
        .post(server.url("/api/v1/identity/login"))
        .json(&creds)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = login["access_token"].as_str().expect("token");
    let mut keys = Vec::new();
    for scopes in [json!(["ratelimit:check"]), json!(["links:read"])] {
        let resp = http
            .post(server.url("/api/v1/identity/keys"))
            .bearer_auth(access)
            .json(&json!({"name": "envoy", "scopes": scopes}))
            .send()
            .await
            .expect("create key");
        assert_eq!(resp.status().as_u16(), 201);
        let body: Value = resp.json().await.expect("json");
        keys.push(body["key"].as_str().expect("key").to_owned());
    }

    let mut grpc = RateLimitServiceClient::connect(format!("http://{}", grpc_addr(&server)))
        .await
        .expect("grpc connects");
    let call = |key: &str| {
        let mut req = tonic::Request::new(RateLimitRequest {
            domain: "edge".into(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![rate_limit_descriptor::Entry {
                    key: "remote_address".into(),
                    value: "198.51.100.4".into(),
                }],
                ..RateLimitDescriptor::default()
            }],
            hits_addend: 0,
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("metadata"),
        );
        req
    };
    let codes = [Code::Ok as i32, Code::OverLimit as i32];
    for expected in codes {
        let res = grpc
            .should_rate_limit(call(&keys[0]))
            .await
            .expect("the key with the scope is accepted")
            .into_inner();
        assert_eq!(res.overall_code, expected);
    }
    let status = grpc
        .should_rate_limit(call(&keys[1]))
        .await
        .expect_err("no scope");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
}
