//! The identity system through the real binary: accounts, tokens and API keys used on the
//! shortener's routes, the generated JWT secret, and two scaled processes sharing tokens and
//! key revocations.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    JWT_SECRET, Scaled, Server, client, data_dir, describe, env_refs, run, temp_dir,
};

const PASSWORD: &str = "correct horse battery staple";

/// Sends a JSON request; returns status and body.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs up and logs in; returns the access token.
pub(crate) async fn account(http: &reqwest::Client, server: &Server, email: &str) -> String {
    let creds = json!({"email": email, "password": PASSWORD});
    let (status, body) = send(
        http,
        reqwest::Method::POST,
        server.url("/api/v1/identity/signup"),
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}\n{}", server.logs());
    let (status, body) = send(
        http,
        reqwest::Method::POST,
        server.url("/api/v1/identity/login"),
        None,
        Some(creds),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_accounts_own_their_links_and_tokens_survive_a_restart() {
    let dir = temp_dir();
    let data = data_dir(dir.path());
    let data_arg = data.display().to_string();
    let secret_path = data.join("jwt.secret");
    let mut first = Server::start(dir.path(), &["--data-dir", &data_arg], &[]);
    let secret = std::fs::read_to_string(&secret_path).expect("jwt.secret written");
    let secret = secret.trim().to_owned();
    assert!(secret.len() >= 32);
    let mode = std::fs::metadata(&secret_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "jwt.secret must be private");
    assert!(
        first.logs().contains("jwt secret: generated"),
        "{}",
        first.logs()
    );
    assert!(!first.logs().contains(&secret), "the secret was logged");

    let http = client();
    let ada = account(&http, &first, "ada@example.com").await;
    let bob = account(&http, &first, "bob@example.com").await;
    let (status, link) = send(
        &http,
        reqwest::Method::POST,
        first.url("/api/v1/links"),
        Some(&ada),
        Some(json!({"url": "https://example.com/ada"})),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let code = link["code"].as_str().expect("code").to_owned();
    let (status, _) = send(
        &http,
        reqwest::Method::GET,
        first.url(&format!("/api/v1/links/{code}")),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 404, "bob must not see ada's link");
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(30)).success());

    // The secret is reused: ada's access token still works after the restart.
    let second = Server::start(dir.path(), &["--data-dir", &data_arg], &[]);
    assert!(
        second.logs().contains("jwt secret: read from the file"),
        "{}",
        second.logs()
    );
    let (status, body) = send(
        &http,
        reqwest::Method::GET,
        second.url(&format!("/api/v1/links/{code}")),
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["owner"], link["owner"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_serve_requires_a_jwt_secret() {
    let scaled = Scaled::new().await;
    let dir = temp_dir();
    let mut env = scaled.env();
    env.retain(|(k, _)| *k != "PRAXIS_JWT_SECRET");
    let out = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &env_refs(&env),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a JWT secret"), "{}", describe(&out));
    assert!(!err.contains(JWT_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_processes_share_tokens_and_key_revocations() {
    let scaled = Scaled::new().await;
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let env = scaled.env();
    let a = Server::start(dir_a.path(), &["--only", "identity"], &env_refs(&env));
    let b = Server::start(dir_b.path(), &["--only", "shortener"], &env_refs(&env));
    let http = client();

    // Logged in on A (identity), the token works on B (shortener only).
    let token = account(&http, &a, "scaled@example.com").await;
    let (status, body) = send(
        &http,
        reqwest::Method::POST,
        b.url("/api/v1/links"),
        Some(&token),
        Some(json!({"url": "https://example.com/scaled"})),
    )
    .await;
    assert_eq!(status, 201, "{body}\n{}", b.logs());

    // An API key made on A works on B, and B refuses it soon after A revokes it.
    let (status, key) = send(
        &http,
        reqwest::Method::POST,
        a.url("/api/v1/identity/keys"),
        Some(&token),
        Some(json!({"name": "scaled", "scopes": ["links:read"]})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().expect("key").to_owned();
    let list = || {
        send(
            &http,
            reqwest::Method::GET,
            b.url("/api/v1/links"),
            Some(&secret),
            None,
        )
    };
    assert_eq!(list().await.0, 200, "B resolves (and caches) the key");
    let (status, _) = send(
        &http,
        reqwest::Method::DELETE,
        a.url(&format!(
            "/api/v1/identity/keys/{}",
            key["id"].as_str().expect("id")
        )),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = list().await;
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "B still accepts a key revoked on A {:?} ago",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "two-process: key revoked on A refused on B after {:?}",
        revoked_at.elapsed()
    );
}
