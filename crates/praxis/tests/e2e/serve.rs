//! `praxis serve` in embedded mode: operational routes, access log, admin key handling.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ADMIN_KEY, Scaled, Server, client, create_code, data_dir, describe, env_refs, run, temp_dir,
    visit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_health_readiness_metrics_and_openapi() {
    let dir = temp_dir();
    let data = data_dir(dir.path()).display().to_string();
    let server = Server::start(
        dir.path(),
        &["--data-dir", &data],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    let http = client();

    let resp = http
        .get(server.url("/healthz"))
        .header("x-request-id", "e2e-request-1")
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("e2e-request-1")
    );

    let resp = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("readyz json");
    assert_eq!(body["dependencies"][0]["name"], "db", "{body}");
    assert_eq!(body["dependencies"][0]["ok"], true, "{body}");

    let resp = http
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.expect("openapi json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{doc}"
    );
    assert!(doc["paths"]["/api/v1/links"].is_object(), "{doc}");

    // The API page for humans, served from the binary (no CDN), over that document.
    let page = http
        .get(server.url("/api/docs/"))
        .send()
        .await
        .expect("api page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("api page html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no asset from a CDN: {html}");
    let config = http
        .get(server.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("api page script")
        .text()
        .await
        .expect("script");
    assert!(config.contains("/api/openapi.json"), "{config}");
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js"] {
        let resp = http
            .get(server.url(&format!("/api/docs/{asset}")))
            .send()
            .await
            .expect("asset");
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
    }
    assert!(doc["paths"]["/{code}"].is_object(), "{doc}");

    // A link round trip, so the shortener is really wired.
    let code = create_code(&http, &server, "https://example.com/e2e/serve").await;
    let (status, location) = visit(&http, &server, &code).await.expect("redirect");
    assert_eq!(status, 301, "default_redirect is 301");
    assert_eq!(location.as_deref(), Some("https://example.com/e2e/serve"));

    let resp = http
        .get(server.url("/no/such/route"))
        .send()
        .await
        .expect("404");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );

    let resp = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.expect("metrics text");
    assert!(text.contains("praxis_http_requests_total"), "{text}");

    // One access-log line per request, with the request id.
    server.wait_for_log("request", Duration::from_secs(5));
    let logs = server.json_logs();
    let line = logs
        .iter()
        .find(|l| l["target"] == "access" && l["request_id"] == "e2e-request-1")
        .unwrap_or_else(|| panic!("no access line for e2e-request-1\n{}", server.logs()));
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["route"], "/healthz", "{line}");
    let start = logs
        .iter()
        .find(|l| l["message"] == "praxis listening")
        .expect("listening line");
    assert_eq!(start["mode"], "embedded", "{start}");
    assert!(
        !server.logs().contains(ADMIN_KEY),
        "the admin key was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_serve_generates_an_admin_key_once_and_never_logs_it() {
    let dir = temp_dir();
    let data = data_dir(dir.path());
    let data_arg = data.display().to_string();
    let key_path = data.join("admin.key");

    let mut first = Server::start(dir.path(), &["--data-dir", &data_arg], &[]);
    let key = std::fs::read_to_string(&key_path).expect("admin.key written");
    let key = key.trim().to_owned();
    assert!(key.len() >= 32, "generated key too short");
    let mode = std::fs::metadata(&key_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.key must be private");
    assert!(first.logs().contains("admin.key"), "{}", first.logs());
    assert!(!first.logs().contains(&key), "the generated key was logged");

    let http = client();
    let status = |server: &Server, key: String| {
        let http = http.clone();
        let url = server.url("/api/v1/links");
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({ "url": "https://example.com/e2e/key" }))
                .send()
                .await
                .expect("create")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(&first, key.clone()).await, 201);
    assert_eq!(status(&first, "not-the-admin-key-000".into()).await, 401);
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(30)).success());

    // The next start reuses it.
    let second = Server::start(dir.path(), &["--data-dir", &data_arg], &[]);
    assert_eq!(status(&second, key.clone()).await, 201);
    assert_eq!(
        std::fs::read_to_string(&key_path)
            .expect("still there")
            .trim(),
        key
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_serve_requires_a_configured_admin_key() {
    let scaled = Scaled::new().await;
    let dir = temp_dir();
    let mut env = scaled.env();
    env.retain(|(k, _)| *k != "PRAXIS_ADMIN_KEY");
    let out = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &env_refs(&env),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scaled mode needs an admin key"),
        "{}",
        describe(&out)
    );
    assert!(err.contains("PRAXIS_ADMIN_KEY"), "{}", describe(&out));
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = temp_dir();
    let data = data_dir(dir.path()).display().to_string();
    let out = run(
        dir.path(),
        &["serve", "--listen", &addr, "--data-dir", &data],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")),
        "{}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_filters_unless_log_level_is_set() {
    let dir = temp_dir();
    let data = |name: &str| dir.path().join(name).display().to_string();
    let (quiet_data, loud_data) = (data("quiet"), data("loud"));
    let http = client();
    let access_lines = |server: &Server| {
        server
            .json_logs()
            .iter()
            .filter(|l| l["target"] == "access")
            .count()
    };
    let ping = |server: &Server| {
        let url = server.url("/healthz");
        let http = http.clone();
        async move {
            let resp = http.get(url).send().await.expect("healthz");
            assert_eq!(resp.status().as_u16(), 200);
        }
    };
    let env = [
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("RUST_LOG", "info,access=off"),
    ];
    // RUST_LOG turns the access log's target off when log_level is not configured...
    let quiet = Server::start(dir.path(), &["--data-dir", &quiet_data], &env);
    ping(&quiet).await;
    // ...and a configured log_level wins over it.
    let loud = Server::start(
        dir.path(),
        &["--data-dir", &loud_data, "--log-level", "info"],
        &env,
    );
    ping(&loud).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while access_lines(&loud) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(access_lines(&loud), 1, "{}", loud.logs());
    assert_eq!(access_lines(&quiet), 0, "{}", quiet.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_serves_metrics_with_help_build_info_and_process_metrics() {
    let dir = temp_dir();
    let data = data_dir(dir.path()).display().to_string();
    let server = Server::start(
        dir.path(),
        &["--data-dir", &data, "--admin-listen", "127.0.0.1:0"],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    let admin = server
        .json_logs()
        .iter()
        .find_map(|l| l["admin_addr"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no admin listener logged\n{}", server.logs()));
    let http = client();
    // Some traffic, so that the request and system families exist.
    create_code(&http, &server, "https://example.com/metrics").await;
    let public = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("public metrics");
    assert_eq!(
        public.status().as_u16(),
        404,
        "/metrics left the public listener"
    );
    for path in ["/healthz", "/readyz"] {
        let resp = http
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .expect("admin probe");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let text = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("admin metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        text.contains(&format!(
            "praxis_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    for family in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "praxis_http_requests_total",
        "praxis_shortener_links_created_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}\n{text}"
        );
    }
    // Every family has its help text.
    let helped: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !helped.contains(name))
        .collect();
    assert!(missing.is_empty(), "families without # HELP: {missing:?}");
}
