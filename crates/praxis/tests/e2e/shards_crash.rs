//! `kill -9` of `praxis serve` in the middle of a rebalance, begun with `praxis shards add`:
//! the next process resumes the move from its recorded phase once the dead one's lease lapses,
//! and ends with every order readable, each on the shard the new ring names (`praxis shards
//! verify` exits 0), none twice. Embedded (SQLite files) and scaled (PostgreSQL databases).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_KEY, Scaled, Server, client, data_dir, describe, env_refs, run, temp_dir,
};

const ORDERS: usize = 600;

async fn call(server: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(method, server.url(path))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("praxis answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The `praxis shards` command against `server`, with the server's environment.
fn shards(
    dir: &std::path::Path,
    server: &Server,
    args: &[&str],
    env: &[(&'static str, String)],
) -> std::process::Output {
    let url = server.url("");
    let data = data_dir(dir).display().to_string();
    let mut all = vec!["shards"];
    all.extend_from_slice(args);
    all.extend(["--url", url.as_str(), "--data-dir", data.as_str()]);
    run(dir, &all, &env_refs(env))
}

async fn kill9_during_a_rebalance(mut env: Vec<(&'static str, String)>) {
    let dir = temp_dir();
    let data = data_dir(dir.path()).display().to_string();
    env.extend([
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY.to_owned()),
        // A slow copy, so the kill lands in its middle; a short lease, so the next process
        // resumes it soon.
        ("PRAXIS_ORDERS_MOVE_RATE", "200".to_owned()),
        ("PRAXIS_ORDERS_LEASE", "1s".to_owned()),
    ]);
    let args = ["--data-dir", data.as_str(), "--only", "orders"];
    let mut server = Server::start(dir.path(), &args, &env_refs(&env));
    let mut ids = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        let (status, order) = call(
            &server,
            Method::POST,
            "/api/v1/orders",
            Some(json!({"currency": "EUR", "lines": [{"sku": format!("S{i}"), "quantity": 1, "unit_price_cents": 100}]})),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        ids.push(order["id"].as_str().expect("an id").to_owned());
    }
    // The admin's orders go to the default region, us.
    let begun = shards(dir.path(), &server, &["add", "us", "s3"], &env);
    assert!(begun.status.success(), "{}", describe(&begun));
    let line = String::from_utf8_lossy(&begun.stdout).to_string();
    let id = line
        .split_whitespace()
        .nth(1)
        .expect("`move <id> of us: ...`")
        .to_owned();
    assert!(id.starts_with("mv-"), "{line}");
    // Kill it mid-copy.
    let copied = loop {
        let (_, m) = call(
            &server,
            Method::GET,
            &format!("/api/v1/orders/shards/us/moves/{id}"),
            None,
        )
        .await;
        let copied = m["copied"].as_i64().unwrap_or(0);
        if copied > 0 {
            assert_eq!(m["state"], "copying", "killed mid-copy: {m}");
            break copied;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill9();

    // The next process resumes the move once the lease lapses, and finishes it.
    let server = Server::start(dir.path(), &args, &env_refs(&env));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (_, m) = call(
            &server,
            Method::GET,
            &format!("/api/v1/orders/shards/us/moves/{id}"),
            None,
        )
        .await;
        if m["state"] == "done" {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the move was not resumed: {m}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(done["copied"].as_i64().unwrap_or(0) > copied, "{done}");
    let verified = shards(dir.path(), &server, &["verify", "us"], &env);
    assert!(verified.status.success(), "{}", describe(&verified));
    let status = shards(dir.path(), &server, &["status"], &env);
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.status.success() && text.contains("us: ring v2") && text.contains("s3"),
        "{text}"
    );
    // Every order once: readable, and the shards' counts add up.
    for id in &ids {
        let (status, _) = call(&server, Method::GET, &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200, "order {id} after the resumed move");
    }
    let (_, regions) = call(&server, Method::GET, "/api/v1/orders/shards", None).await;
    let us = regions
        .as_array()
        .and_then(|r| r.iter().find(|r| r["region"] == "us"))
        .expect("region us")
        .clone();
    let counts: Vec<i64> = us["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["orders"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(counts.len(), 3, "{us}");
    assert_eq!(counts.iter().sum::<i64>(), ORDERS as i64, "{us}");
    assert!(counts[2] > 0, "s3 received orders: {us}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_rebalance_resumes_on_restart_embedded() {
    kill9_during_a_rebalance(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_rebalance_resumes_on_restart_scaled() {
    let scaled = Scaled::new().await;
    kill9_during_a_rebalance(scaled.env()).await;
}
