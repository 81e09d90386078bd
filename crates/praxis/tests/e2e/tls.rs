//! `praxis serve` scaled over TLS: PostgreSQL (`sslmode=verify-full`), Redis (`rediss://`) and
//! NATS (`tls://`) with certificates of a private CA made for the run by scripts/test, trusted
//! through `tls_ca_file`. Without it, the start fails naming the setting.

use serde_json::Value;

use crate::support::{
    ADMIN_KEY, JWT_SECRET, Server, client, create_code, dependencies_up, describe, run, temp_dir,
    visit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_scaled_over_tls_is_ready_and_serves() {
    let tls = praxis_testkit::services::tls();
    let database = tls.database().await;
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let prefix = praxis_testkit::services::unique_prefix();
    let ca = tls.ca_file.display().to_string();
    let env = [
        ("PRAXIS_DATABASE_URL", database.url.as_str()),
        ("PRAXIS_REDIS_URL", tls.redis_url.as_str()),
        ("PRAXIS_NATS_URL", tls.nats_url.as_str()),
        ("PRAXIS_TLS_CA_FILE", ca.as_str()),
        ("PRAXIS_PREFIX", prefix.as_str()),
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("PRAXIS_JWT_SECRET", JWT_SECRET),
    ];
    let server = Server::start(dir.path(), &["--data-dir", &data], &env);
    let http = client();

    let resp = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(resp.status(), 200, "{}", server.logs());
    let ready: Value = resp.json().await.expect("readyz json");
    assert_eq!(
        dependencies_up(&ready),
        ["db", "redis", "nats", "blobs"],
        "{ready}"
    );

    // Real work over TLS: a link written to PostgreSQL, its redirect through the cache (Redis);
    // /readyz above reached all three.
    let code = create_code(&http, &server, "https://example.com/e2e/tls").await;
    let (status, location) = visit(&http, &server, &code).await.expect("visit");
    assert_eq!(status, 301);
    assert_eq!(location.as_deref(), Some("https://example.com/e2e/tls"));
}

#[test]
fn serve_without_the_ca_file_fails_naming_it() {
    let tls = praxis_testkit::services::tls();
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let prefix = praxis_testkit::services::unique_prefix();
    let env = [
        ("PRAXIS_REDIS_URL", tls.redis_url.as_str()),
        ("PRAXIS_PREFIX", prefix.as_str()),
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("PRAXIS_JWT_SECRET", JWT_SECRET),
    ];
    let out = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &env,
    );
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("redis_url") && text.contains("set tls_ca_file"),
        "{}",
        describe(&out)
    );
}
