//! Rollouts over real upstream processes: a canary stepped up and promoted, or rolled back at
//! a step; blue/green switches over the admin API (through the plug-in, behind the app's
//! stack) and by the file, each checked and switched back when the new side does worse.

use std::time::Duration;

use axum::http::Method;
use praxis_gateway::config::Side;
use praxis_testkit::http::{Resp, bearer_request, send};
use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "gateway-rollout-admin-key";

/// The value of the first rendered sample whose line contains every one of `parts`.
fn sample(text: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Pools `p` (the baseline) and `c` (the canary) and a route `name` with a canary stepping
/// through `steps`, one check of 200 ms and 10 canary responses per step, no latency rule
/// worth the name (a busy machine must not fail a healthy canary).
fn promoting_file(name: &str, base: &[Upstream], canary: &[Upstream], steps: &str) -> String {
    format!(
        "[pools.p]\ninstances = {}\nhealth.check = \"none\"\n\n[pools.c]\ninstances = {}\nhealth.check = \"none\"\n\n[[routes]]\nname = \"{name}\"\npool = \"p\"\n[routes.canary]\npool = \"c\"\nsteps = {steps}\npromote_after = 1\nwindow = \"200ms\"\nmin_requests = 10\nmax_error_rate_increase = 0.05\nmin_p99_gap = \"2s\"\n",
        instances(base),
        instances(canary)
    )
}

/// Sends requests one at a time until `done` says so about the canary's state (or 6,000
/// requests); the shares seen, in order, and the requests sent. Every answer is the
/// upstream's: 200, or the 500 a failing canary was told to give.
async fn drive_canary(
    gw: &Gw,
    route: &str,
    done: impl Fn(&praxis_gateway::api::CanaryView) -> bool,
) -> (Vec<f64>, usize) {
    let http = client();
    let mut shares = Vec::new();
    let mut sent = 0;
    loop {
        let state = gw.gateway.canary(route).expect("the route's canary");
        if shares.last() != Some(&state.percent) {
            shares.push(state.percent);
        }
        if done(&state) {
            return (shares, sent);
        }
        assert!(sent < 6_000, "{sent} requests and still {state:?}");
        let (status, _) = get(&http, gw, "/").await;
        assert!(status == 200 || status == 500, "{status}");
        sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_stepped_up_and_promoted() {
    let handle = praxis_http::metrics::install_metrics_recorder();
    let base = upstreams("prb", 2).await;
    let canary = upstreams("prc", 1).await;
    let gw = gateway(&promoting_file("promo", &base, &canary, "[20, 50, 100]")).await;
    let start = gw.gateway.canary("promo").expect("canary");
    assert_eq!(
        (start.state.as_str(), start.percent, start.step),
        ("running", 20.0, Some(0))
    );

    let (shares, sent) = drive_canary(&gw, "promo", |c| c.state != "running").await;
    let state = gw.gateway.canary("promo").expect("canary");
    eprintln!("promotion: shares {shares:?} over {sent} requests; {state:?}");
    assert_eq!(state.state, "promoted");
    assert_eq!(shares, vec![20.0, 50.0, 100.0]);
    let verdict = state.last_verdict.expect("the promotion's verdict");
    assert_eq!(
        (verdict.verdict.as_str(), verdict.reason.as_str()),
        ("promote", "healthy")
    );
    assert!(verdict.candidate.requests >= 10, "{verdict:?}");
    assert_eq!(verdict.candidate.error_rate, 0.0);
    assert!(
        verdict.baseline.requests >= 10,
        "at 100% the check compares with the baseline recorded at 50%: {verdict:?}"
    );

    // Promoted: every request lands on the canary's pool.
    let before: u64 = futures::future::join_all(base.iter().map(|u| u.stats()))
        .await
        .iter()
        .map(|s| s.served)
        .sum();
    let http = client();
    for _ in 0..50 {
        assert_eq!(get(&http, &gw, "/").await, (200, Some("prc0".to_owned())));
    }
    let after: u64 = futures::future::join_all(base.iter().map(|u| u.stats()))
        .await
        .iter()
        .map(|s| s.served)
        .sum();
    assert_eq!(before, after, "nothing more reaches the baseline");

    let text = handle.render();
    let verdicts = |verdict: &str| {
        sample(
            &text,
            &[
                "praxis_gateway_canary_verdicts_total{",
                "route=\"promo\"",
                &format!("verdict=\"{verdict}\""),
            ],
        )
    };
    assert_eq!(verdicts("step"), Some(2.0), "20 -> 50 -> 100");
    assert_eq!(verdicts("promote"), Some(1.0));
    assert_eq!(verdicts("rollback"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_at_its_second_step_is_rolled_back_for_good() {
    let base = upstreams("rsb", 2).await;
    let canary = upstreams("rsc", 1).await;
    let gw = gateway(&promoting_file("steps", &base, &canary, "[20, 50, 100]")).await;

    // Requests go one at a time and the state is read between them, so the check of the
    // second step holds only what the canary answers after it starts failing.
    let (shares, _) = drive_canary(&gw, "steps", |c| c.step == Some(1)).await;
    assert_eq!(shares, vec![20.0, 50.0]);
    canary[0].mode("status=500").await;
    let (_, sent) = drive_canary(&gw, "steps", |c| c.state != "running").await;
    let state = gw.gateway.canary("steps").expect("canary");
    eprintln!("rolled back at step 2 after {sent} requests: {state:?}");
    assert_eq!(state.state, "rolled_back");
    assert!(state.rolled_back);
    assert_eq!(state.step, Some(1), "never went past the second step");
    let verdict = state.last_verdict.expect("the rollback's verdict");
    assert_eq!(
        (verdict.verdict.as_str(), verdict.reason.as_str()),
        ("rollback", "error_rate")
    );
    assert!(verdict.candidate.error_rate > verdict.baseline.error_rate + 0.05);

    // For good: nothing more reaches the canary.
    let served = canary[0].stats().await.served;
    let http = client();
    for _ in 0..40 {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
    }
    assert_eq!(canary[0].stats().await.served, served);
    assert_eq!(gw.gateway.canary_rolled_back("steps"), Some(true));
}

/// Pools `blue` and `green`, a blue/green route `bg` (`active` first) with a check of
/// `window` and 5 responses, and a plain route `plain` under `/plain/`.
fn blue_green_file(blue: &[Upstream], green: &[Upstream], active: &str, window: &str) -> String {
    format!(
        "[pools.blue]\ninstances = {}\nhealth.check = \"none\"\n\n[pools.green]\ninstances = {}\nhealth.check = \"none\"\n\n[[routes]]\nname = \"bg\"\n[routes.blue_green]\nblue = \"blue\"\ngreen = \"green\"\nactive = \"{active}\"\nwindow = \"{window}\"\nmin_requests = 5\nmin_p99_gap = \"2s\"\n\n[[routes]]\nname = \"plain\"\npath_prefix = \"/plain/\"\npool = \"blue\"\n",
        instances(blue),
        instances(green)
    )
}

/// The gateway through the plug-in interface, its admin API behind the app's stack, and the
/// proxy's address.
struct Admin {
    api: axum::Router,
    proxy: String,
    file: std::path::PathBuf,
    _backend: praxis_testkit::TestBackend,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Admin {
    async fn start(name: &str, text: &str) -> Admin {
        let backend = praxis_testkit::embedded().await;
        let file = std::env::temp_dir().join(format!(
            "praxis-gw-rollout-{name}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&file, text).expect("write the gateway file");
        let api = plugin_api(&backend, Some(&file), ADMIN).await;
        let mut admin = Admin {
            api,
            proxy: String::new(),
            file,
            _backend: backend,
        };
        admin.proxy = admin.status().await["listening"]
            .as_str()
            .expect("the proxy listens")
            .to_owned();
        admin
    }

    async fn status(&self) -> Value {
        let resp = send(
            &self.api,
            bearer_request(Method::GET, "/api/v1/gateway/status", Some(ADMIN), None),
        )
        .await;
        resp.ok(200)
    }

    /// The blue/green route `bg` as the status shows it.
    async fn bg(&self) -> Value {
        let status = self.status().await;
        status["blue_green"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["route"] == "bg"))
            .cloned()
            .unwrap_or_else(|| panic!("no route bg in {status}"))
    }

    async fn switch(&self, route: &str, body: Value) -> Resp {
        send(
            &self.api,
            bearer_request(
                Method::POST,
                &format!("/api/v1/gateway/routes/{route}/switch"),
                Some(ADMIN),
                Some(body),
            ),
        )
        .await
    }

    /// GET `path` through the proxy: the status and the upstream's id.
    async fn get(&self, http: &reqwest::Client, path: &str) -> (u16, Option<String>) {
        let resp = http
            .get(format!("http://{}{path}", self.proxy))
            .send()
            .await
            .expect("through the gateway");
        let id = resp
            .headers()
            .get("x-upstream-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (resp.status().as_u16(), id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_switch_over_the_api_moves_new_requests_at_once_and_is_confirmed() {
    let handle = praxis_http::metrics::install_metrics_recorder();
    let blue = upstreams("sblue", 1).await;
    let green = upstreams("sgreen", 1).await;
    let admin = Admin::start("switch", &blue_green_file(&blue, &green, "blue", "300ms")).await;
    let http = client();
    let bg = admin.bg().await;
    assert_eq!(
        (bg["active"].as_str(), bg["active_pool"].as_str()),
        (Some("blue"), Some("blue"))
    );
    assert_eq!(bg["check"], Value::Null);
    for _ in 0..10 {
        assert_eq!(
            admin.get(&http, "/").await,
            (200, Some("sblue0".to_owned()))
        );
    }

    // A request held at blue while the switch happens.
    blue[0].mode("hold=true").await;
    let held = {
        let (http, url) = (http.clone(), format!("http://{}/held", admin.proxy));
        tokio::spawn(async move {
            let resp = http.get(url).send().await.expect("held request");
            let id = resp
                .headers()
                .get("x-upstream-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (resp.status().as_u16(), id)
        })
    };
    eventually(
        "a request held at blue",
        Duration::from_secs(10),
        || async { blue[0].stats().await.in_flight == 1 },
    )
    .await;

    let switched = admin.switch("bg", json!({ "to": "green" })).await;
    let body = switched.ok(200);
    assert_eq!(body["active"], "green");
    assert_eq!(body["active_pool"], "green");
    assert_eq!(body["file_active"], "blue");
    assert_eq!(body["check"]["from"], "blue");
    assert_eq!(body["check"]["to"], "green");
    assert_eq!(body["check"]["trigger"], "admin");
    assert_eq!(
        body["check"]["baseline"]["requests"], 10,
        "blue's 10 answers"
    );

    // New requests go to green at once; the held one finishes on blue.
    for _ in 0..10 {
        assert_eq!(
            admin.get(&http, "/").await,
            (200, Some("sgreen0".to_owned()))
        );
    }
    assert_eq!(blue[0].stats().await.in_flight, 1);
    blue[0].release().await;
    assert_eq!(held.await.expect("held"), (200, Some("sblue0".to_owned())));

    // Confirmed after its window, with green still active.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let bg = loop {
        let bg = admin.bg().await;
        if !bg["last_verdict"].is_null() {
            break bg;
        }
        assert!(tokio::time::Instant::now() < deadline, "no verdict: {bg}");
        assert_eq!(
            admin.get(&http, "/").await,
            (200, Some("sgreen0".to_owned()))
        );
    };
    assert_eq!(bg["last_verdict"]["verdict"], "switch_confirmed");
    assert_eq!(bg["last_verdict"]["reason"], "healthy");
    assert_eq!(bg["active"], "green");
    assert_eq!(bg["check"], Value::Null);
    assert_eq!(bg["switches"], 1);

    let text = handle.render();
    assert_eq!(
        sample(
            &text,
            &[
                "praxis_gateway_switches_total{",
                "route=\"bg\"",
                "to=\"green\"",
                "trigger=\"admin\""
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &[
                "praxis_gateway_canary_verdicts_total{",
                "route=\"bg\"",
                "verdict=\"switch_confirmed\""
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_a_failing_side_switches_back_by_itself() {
    let blue = upstreams("fblue", 1).await;
    let green = upstreams("fgreen", 1).await;
    green[0].mode("status=500").await;
    let admin = Admin::start("back", &blue_green_file(&blue, &green, "blue", "30s")).await;
    let http = client();
    for _ in 0..20 {
        assert_eq!(admin.get(&http, "/").await.0, 200);
    }
    admin.switch("bg", json!({ "to": "green" })).await.ok(200);

    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let bg = loop {
        let bg = admin.bg().await;
        if bg["active"] == "blue" {
            break bg;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not switched back: {bg}"
        );
        let (status, id) = admin.get(&http, "/").await;
        assert_eq!((status, id.as_deref()), (500, Some("fgreen0")));
        failed += 1;
    };
    eprintln!("switched back after {failed} failed requests: {bg}");
    assert_eq!(
        failed, 5,
        "the verdict comes at the new side's 5th response (min_requests)"
    );
    assert_eq!(green[0].stats().await.served, 5);
    let verdict = &bg["last_verdict"];
    assert_eq!(verdict["verdict"], "switch_back");
    assert_eq!(verdict["reason"], "error_rate");
    assert_eq!(verdict["candidate"]["error_rate"], 1.0);
    assert_eq!(verdict["baseline"]["requests"], 20);
    assert_eq!(verdict["baseline"]["error_rate"], 0.0);
    assert_eq!(bg["switches"], 2, "the switch and the switch back");
    assert_eq!(bg["check"], Value::Null);

    // Back on blue, for good until the next switch.
    for _ in 0..20 {
        assert_eq!(
            admin.get(&http, "/").await,
            (200, Some("fblue0".to_owned()))
        );
    }
    assert_eq!(green[0].stats().await.served, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_switch_requests_are_problems_that_name_what_is_wrong() {
    let blue = upstreams("xblue", 1).await;
    let green = upstreams("xgreen", 1).await;
    let admin = Admin::start("bad", &blue_green_file(&blue, &green, "blue", "30s")).await;

    let anonymous = send(
        &admin.api,
        bearer_request(
            Method::POST,
            "/api/v1/gateway/routes/bg/switch",
            None,
            Some(json!({ "to": "green" })),
        ),
    )
    .await;
    anonymous.unauthorized();

    let missing = admin
        .switch("nope", json!({ "to": "green" }))
        .await
        .problem(404);
    assert!(
        missing["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nope")),
        "{missing}"
    );

    let plain = admin.switch("plain", json!({ "to": "green" })).await;
    let body = plain.problem(409);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/not-blue-green")),
        "{body}"
    );

    let red = admin.switch("bg", json!({ "to": "red" })).await;
    red.problem(400);
    assert_eq!(red.fields(), vec!["to"]);
    let nothing = admin.switch("bg", json!({})).await;
    nothing.problem(400);
    assert_eq!(nothing.fields(), vec!["to"]);
    let extra = admin
        .switch("bg", json!({ "to": "green", "force": true }))
        .await;
    extra.problem(400);

    let same = admin.switch("bg", json!({ "to": "blue" })).await;
    let body = same.problem(422);
    assert_eq!(same.fields(), vec!["to"]);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("already")),
        "{body}"
    );

    // Nothing was switched by any of them.
    let bg = admin.bg().await;
    assert_eq!(
        (bg["active"].as_str(), bg["switches"].as_u64()),
        (Some("blue"), Some(0))
    );

    // Without a gateway file there is nothing to switch.
    let backend = praxis_testkit::embedded().await;
    let idle = plugin_api(&backend, None, ADMIN).await;
    let resp = send(
        &idle,
        bearer_request(
            Method::POST,
            "/api/v1/gateway/routes/bg/switch",
            Some(ADMIN),
            Some(json!({ "to": "green" })),
        ),
    )
    .await;
    let body = resp.problem(409);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/gateway-not-running")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_switches_when_its_active_side_changes_and_otherwise_keeps_an_api_switch() {
    let blue = upstreams("lblue", 1).await;
    let green = upstreams("lgreen", 1).await;
    let gw = gateway(&blue_green_file(&blue, &green, "blue", "30s")).await;
    let http = client();
    let active = |gw: &Gw| gw.gateway.blue_green("bg").expect("bg").active;
    assert_eq!(get(&http, &gw, "/").await.1.as_deref(), Some("lblue0"));

    // Over the API (the Rust one here) to green; a reload for another reason keeps it.
    gw.gateway.switch("bg", Side::Green).await.expect("switch");
    let reload = |text: String| {
        let gateway = gw.gateway.clone();
        async move {
            gateway
                .reload(praxis_gateway::GatewayConfig::from_toml(&text).expect("file"))
                .await
                .expect("reload")
        }
    };
    reload(
        blue_green_file(&blue, &green, "blue", "30s")
            .replace("name = \"plain\"", "name = \"plain2\""),
    )
    .await;
    assert_eq!(active(&gw), Side::Green);
    assert_eq!(get(&http, &gw, "/").await.1.as_deref(), Some("lgreen0"));

    // The file now says green: it is green already, so nothing moves.
    reload(blue_green_file(&blue, &green, "green", "30s")).await;
    let state = gw.gateway.blue_green("bg").expect("bg");
    assert_eq!(
        (state.active, state.file_active, state.switches),
        (Side::Green, Side::Green, 1)
    );

    // The file says blue: a switch from the file, with its check.
    reload(blue_green_file(&blue, &green, "blue", "30s")).await;
    let state = gw.gateway.blue_green("bg").expect("bg");
    assert_eq!((state.active, state.switches), (Side::Blue, 2));
    let check = state.check.expect("the file's switch is checked");
    assert_eq!(
        (check.from, check.to, check.trigger.as_str()),
        (Side::Green, Side::Blue, "file")
    );
    assert_eq!(get(&http, &gw, "/").await.1.as_deref(), Some("lblue0"));

    // Changing the check's settings starts the route afresh on the file's side.
    reload(blue_green_file(&blue, &green, "blue", "20s")).await;
    let state = gw.gateway.blue_green("bg").expect("bg");
    assert_eq!((state.active, state.switches), (Side::Blue, 0));
    assert!(state.check.is_none());
}
