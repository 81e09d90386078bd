//! Two `praxis serve` processes sharing one PostgreSQL database, Redis and NATS.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    ADMIN_KEY, Scaled, Server, client, create_code, dependencies_up, env_refs, settled_totals,
    temp_dir, visit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_links_visits_and_deletes() {
    let scaled = Scaled::new().await;
    let env = scaled.env();
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let data_a = dir_a.path().join("data").display().to_string();
    let data_b = dir_b.path().join("data").display().to_string();
    let a = Server::start(dir_a.path(), &["--data-dir", &data_a], &env_refs(&env));
    let b = Server::start(dir_b.path(), &["--data-dir", &data_b], &env_refs(&env));
    let http = client();

    for server in [&a, &b] {
        let ready: Value = http
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("readyz json");
        assert_eq!(
            dependencies_up(&ready),
            ["db", "redis", "nats", "blobs"],
            "{ready}"
        );
        let start = server
            .json_logs()
            .into_iter()
            .find(|l| l["message"] == "praxis listening")
            .expect("listening line");
        assert_eq!(start["mode"], "scaled", "{start}");
    }

    // Created on A, redirects on B (and the other way round).
    let from_a = create_code(&http, &a, "https://example.com/e2e/from-a").await;
    let from_b = create_code(&http, &b, "https://example.com/e2e/from-b").await;
    let (status, location) = visit(&http, &b, &from_a).await.expect("visit on b");
    assert_eq!(status, 301);
    assert_eq!(location.as_deref(), Some("https://example.com/e2e/from-a"));
    let (status, location) = visit(&http, &a, &from_b).await.expect("visit on a");
    assert_eq!(status, 301);
    assert_eq!(location.as_deref(), Some("https://example.com/e2e/from-b"));

    // Visits on both processes are counted once each, through NATS, into the shared database.
    for _ in 0..3 {
        assert_eq!(visit(&http, &a, &from_a).await.expect("visit").0, 301);
    }
    let codes = vec![from_a.clone()];
    let totals = settled_totals(
        &http,
        &b,
        &codes,
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(totals[&from_a], 4, "1 redirect on B + 3 on A");

    // B has the link cached now. Deleted on A, B answers 404 within one second.
    for _ in 0..3 {
        assert_eq!(visit(&http, &b, &from_a).await.expect("visit").0, 301);
    }
    let resp = http
        .delete(a.url(&format!("/api/v1/links/{from_a}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204, "delete on A");
    let deleted_at = Instant::now();
    let deadline = deleted_at + Duration::from_secs(1);
    loop {
        let (status, _) = visit(&http, &b, &from_a).await.expect("visit on b");
        if status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still answers {status} for a link deleted on A {:?} ago\n{}",
            deleted_at.elapsed(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "two-process: delete on A seen as 404 on B after {:?}",
        deleted_at.elapsed()
    );
    assert_eq!(visit(&http, &a, &from_a).await.expect("visit on a").0, 404);
}
