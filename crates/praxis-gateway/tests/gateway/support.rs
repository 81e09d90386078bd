//! Upstream processes, a gateway in this process, and a client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use praxis_gateway::{Gateway, GatewayConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// An HTTP client for the tests.
pub fn client() -> reqwest::Client {
    praxis_infra::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A `gateway-upstream` process.
pub struct Upstream {
    /// Its instance id.
    pub id: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    http: reqwest::Client,
}

/// What an upstream has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests served (its control routes excluded).
    pub served: u64,
    /// Requests in progress (held ones included).
    pub in_flight: u64,
}

impl Upstream {
    /// Starts one on a free port.
    pub async fn spawn(id: &str) -> Upstream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gateway-upstream"))
            .args(["--id", id, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start gateway-upstream");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("read the upstream's address");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Upstream {
            id: id.to_owned(),
            addr,
            child,
            http: client(),
        }
    }

    /// Changes how it answers (`status=503&delay_ms=10&hold=true&ready=false`).
    pub async fn mode(&self, query: &str) {
        let resp = self
            .http
            .put(format!("http://{}/_stub/mode?{query}", self.addr))
            .send()
            .await
            .expect("set mode");
        assert_eq!(resp.status(), 204, "mode {query}");
    }

    /// Lets held requests go.
    pub async fn release(&self) {
        self.http
            .post(format!("http://{}/_stub/release", self.addr))
            .send()
            .await
            .expect("release");
    }

    /// What it has seen.
    pub async fn stats(&self) -> Stats {
        let v: serde_json::Value = self
            .http
            .get(format!("http://{}/_stub/stats", self.addr))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json");
        Stats {
            served: v["served"].as_u64().expect("served"),
            in_flight: v["in_flight"].as_u64().expect("in_flight"),
        }
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the upstream");
    }
}

/// `n` upstreams named `prefix0`, `prefix1`, ...
pub async fn upstreams(prefix: &str, n: usize) -> Vec<Upstream> {
    let mut all = Vec::new();
    for i in 0..n {
        all.push(Upstream::spawn(&format!("{prefix}{i}")).await);
    }
    all
}

/// The `instances = [...]` value for these upstreams.
pub fn instances(ups: &[Upstream]) -> String {
    let list: Vec<String> = ups.iter().map(|u| format!("{:?}", u.addr)).collect();
    format!("[{}]", list.join(", "))
}

/// A gateway serving in this process; it stops when dropped.
pub struct Gw {
    /// The handle.
    pub gateway: Gateway,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shutdown: CancellationToken,
    _tasks: TaskTracker,
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a gateway from the text of a gateway file.
pub async fn gateway(toml: &str) -> Gw {
    let config = GatewayConfig::from_toml(toml).expect("gateway file");
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let gateway = Gateway::start(
        config,
        "127.0.0.1:0".parse().expect("addr"),
        shutdown.clone(),
        &tasks,
    )
    .await
    .expect("start the gateway");
    let base = format!("http://{}", gateway.local_addr());
    Gw {
        gateway,
        base,
        shutdown,
        _tasks: tasks,
    }
}

/// A pool `p` with these upstreams and `extra` lines, no active checks unless `extra` sets
/// them, and one route `/` to it with `route_extra` lines.
pub fn config(ups: &[Upstream], extra: &str, route_extra: &str) -> String {
    format!(
        "[pools.p]\ninstances = {}\n{extra}\n\n[[routes]]\npath_prefix = \"/\"\npool = \"p\"\n{route_extra}\n",
        instances(ups)
    )
}

/// GET `path` through the gateway; the status and the id of the upstream that answered.
pub async fn get(http: &reqwest::Client, gw: &Gw, path: &str) -> (u16, Option<String>) {
    get_with(http, gw, path, &[]).await
}

/// [`get`] with headers.
pub async fn get_with(
    http: &reqwest::Client,
    gw: &Gw,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>) {
    let mut req = http.get(format!("{}{path}", gw.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request through the gateway");
    let id = resp
        .headers()
        .get("x-upstream-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status().as_u16(), id)
}

/// Counts of answers by upstream id.
pub fn tally(ids: impl IntoIterator<Item = Option<String>>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids.into_iter().flatten() {
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// Waits until `check` holds, polling every 20 ms, for at most `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the gateway has the instance at `addr` of pool `p` ejected.
pub fn ejected(gw: &Gw, addr: &str) -> bool {
    gw.gateway
        .pool_status("p")
        .expect("pool p")
        .iter()
        .any(|s| s.addr == addr && s.ejected)
}

/// Whether the gateway's active checks have the instance at `addr` of pool `p` up.
pub fn up(gw: &Gw, addr: &str) -> bool {
    gw.gateway
        .pool_status("p")
        .expect("pool p")
        .iter()
        .any(|s| s.addr == addr && s.up)
}

/// The gateway started as the binary starts it (the plug-in on an embedded `backend`), serving
/// the gateway file at `routes` if there is one, and its admin API behind the app's stack, with
/// `admin` as the admin's key.
pub async fn plugin_api(
    backend: &praxis_testkit::TestBackend,
    routes: Option<&std::path::Path>,
    admin: &str,
) -> axum::Router {
    static SYSTEM: praxis_gateway::GatewaySystem = praxis_gateway::GatewaySystem;
    let path = routes.map(|p| p.to_string_lossy().into_owned());
    let settings: Vec<(&str, Option<&str>)> = match &path {
        Some(path) => vec![
            ("routes", Some(path.as_str())),
            ("listen", Some("127.0.0.1:0")),
        ],
        None => Vec::new(),
    };
    let started = backend
        .start_plugin(&SYSTEM, &settings)
        .await
        .expect("the gateway starts");
    praxis_testkit::http::app(
        vec![started.service],
        &backend.platform,
        praxis_testkit::TestAuthenticator::new().settings(admin),
    )
}
