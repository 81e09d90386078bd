//! kill -9 in the middle of a burst of creates and redirects, then a restart: no created link
//! is lost, and visits are never over-counted (some may be lost: at most what was buffered).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::support::{
    ADMIN_KEY, Scaled, Server, client, env_refs, settled_totals, temp_dir, visit,
};

/// Creates acknowledged before the kill (at least).
const KILL_AFTER_CREATES: usize = 100;
/// Burst length before the kill (at least): several visit flush intervals (1 s), so part of
/// the visits is already stored and part still buffered when the process dies.
const KILL_AFTER: Duration = Duration::from_secs(3);
/// Pause between two creates of one creator (keeps the number of links checked afterwards
/// in the hundreds).
const CREATE_PACE: Duration = Duration::from_millis(10);
const CREATORS: usize = 3;
const VISITORS: usize = 3;

/// What the clients saw before the kill.
#[derive(Default)]
struct Tally {
    /// Code -> target of every create answered 201.
    created: HashMap<String, String>,
    /// Codes in creation order (visitors pick from them).
    codes: Vec<String>,
    /// Code -> redirects answered 3xx.
    redirects: HashMap<String, i64>,
}

/// Runs creators and visitors against `server`, kills it with SIGKILL once `KILL_AFTER`
/// passed and `KILL_AFTER_CREATES` creates succeeded (with requests still in flight), and
/// returns what the clients saw.
async fn burst_then_kill(server: &mut Server) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = client();
    let mut tasks = Vec::new();
    for worker in 0..CREATORS {
        let (tally, stop, http) = (tally.clone(), stop.clone(), http.clone());
        let base = server.url("");
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(CREATE_PACE).await;
                n += 1;
                let url = format!("https://example.com/e2e/crash/{worker}/{n}");
                let resp = http
                    .post(format!("{base}/api/v1/links"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&serde_json::json!({ "url": url }))
                    .send()
                    .await;
                let Ok(resp) = resp else { continue };
                if resp.status().as_u16() != 201 {
                    continue;
                }
                let Ok(body) = resp.json::<serde_json::Value>().await else {
                    continue;
                };
                if let Some(code) = body["code"].as_str() {
                    let mut t = tally.lock().await;
                    t.created.insert(code.to_owned(), url);
                    t.codes.push(code.to_owned());
                }
            }
        }));
    }
    for worker in 0..VISITORS {
        let (tally, stop, http) = (tally.clone(), stop.clone(), http.clone());
        let base = server.url("");
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let code = {
                    let t = tally.lock().await;
                    if t.codes.is_empty() {
                        None
                    } else {
                        // Favour recent links, revisit old ones too.
                        i = i.wrapping_mul(31).wrapping_add(7);
                        Some(t.codes[i % t.codes.len()].clone())
                    }
                };
                let Some(code) = code else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let Ok(resp) = http.get(format!("{base}/{code}")).send().await else {
                    continue;
                };
                if resp.status().is_redirection() {
                    *tally.lock().await.redirects.entry(code).or_default() += 1;
                }
            }
        }));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        if started.elapsed() >= KILL_AFTER && tally.lock().await.created.len() >= KILL_AFTER_CREATES
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the burst did not reach {KILL_AFTER_CREATES} creates\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Requests are in flight right now.
    server.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(tally)
        .map(Mutex::into_inner)
        .unwrap_or_else(|_| panic!("tally still shared"))
}

/// Restarted server: every acknowledged link still redirects; visits never exceed the 3xx seen.
async fn check_after_restart(label: &str, server: &Server, tally: &Tally) {
    let http = client();
    let codes: Vec<String> = tally.created.keys().cloned().collect();

    // Stats first (the checks below add visits of their own).
    let totals = settled_totals(
        &http,
        server,
        &codes,
        Duration::from_secs(4),
        Duration::from_secs(60),
    )
    .await;
    let mut counted = 0i64;
    let mut seen = 0i64;
    for code in &codes {
        let served = tally.redirects.get(code).copied().unwrap_or(0);
        let stored = totals[code];
        assert!(
            stored <= served,
            "{label}: {code} has {stored} visits stored but only {served} redirects were answered"
        );
        counted += stored;
        seen += served;
    }

    let mut lost_links = Vec::new();
    for (code, url) in &tally.created {
        let (status, location) = visit(&http, server, code)
            .await
            .expect("visit after restart");
        if !(300..400).contains(&status) || location.as_deref() != Some(url.as_str()) {
            lost_links.push(format!("{code} -> {status} {location:?}"));
        }
    }
    eprintln!(
        "{label}: {} links created (201) before kill -9, {} lost; {seen} redirects answered 3xx, {counted} visits stored after restart ({} not counted)",
        tally.created.len(),
        lost_links.len(),
        seen - counted
    );
    assert!(
        lost_links.is_empty(),
        "{label}: acknowledged links lost after kill -9: {lost_links:?}\n{}",
        server.logs()
    );
    assert!(seen > 0, "{label}: the burst served no redirect");
    assert!(
        counted > 0,
        "{label}: no visit was stored although the burst outlasted several flush intervals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_embedded_loses_no_created_link_and_never_overcounts() {
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let env = [
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("PRAXIS_ACCESS_LOG", "false"),
    ];
    let mut server = Server::start(dir.path(), &["--data-dir", &data], &env);
    let tally = burst_then_kill(&mut server).await;
    drop(server);

    let restarted = Server::start(dir.path(), &["--data-dir", &data], &env);
    check_after_restart("embedded", &restarted, &tally).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_scaled_loses_no_created_link_and_never_overcounts() {
    let scaled = Scaled::new().await;
    let mut env = scaled.env();
    env.push(("PRAXIS_ACCESS_LOG", "false".to_owned()));
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let mut server = Server::start(dir.path(), &["--data-dir", &data], &env_refs(&env));
    let tally = burst_then_kill(&mut server).await;
    drop(server);

    let restarted = Server::start(dir.path(), &["--data-dir", &data], &env_refs(&env));
    check_after_restart("scaled", &restarted, &tally).await;
}
