//! Canary releases with automatic rollback, over real upstream processes.

use crate::support::*;

fn canary_file(base: &[Upstream], canary: &[Upstream], percent: u32) -> String {
    format!(
        "[pools.p]\ninstances = {}\nhealth.check = \"none\"\n\n[pools.c]\ninstances = {}\nhealth.check = \"none\"\n\n[[routes]]\nname = \"api\"\npool = \"p\"\n[routes.canary]\npool = \"c\"\npercent = {percent}\nheader = \"x-canary\"\nwindow = \"60s\"\nmin_requests = 20\nmax_error_rate_increase = 0.05\n",
        instances(base),
        instances(canary)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_injected_errors_is_rolled_back() {
    let base = upstreams("base", 2).await;
    let canary = upstreams("canary", 1).await;
    canary[0].mode("status=500").await;
    let gw = gateway(&canary_file(&base, &canary, 50)).await;
    let http = client();
    assert_eq!(gw.gateway.canary_rolled_back("api"), Some(false));
    let mut sent = 0;
    while gw.gateway.canary_rolled_back("api") != Some(true) {
        get(&http, &gw, "/").await;
        sent += 1;
        assert!(sent < 500, "not rolled back after {sent} requests");
    }
    let served = canary[0].stats().await.served;
    eprintln!("canary: rolled back after {sent} requests, {served} of them to the canary");
    assert_eq!(
        served, 20,
        "the verdict comes at the canary's 20th response"
    );

    // Rolled back: everything goes to the baseline, the header included.
    for _ in 0..30 {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
    }
    assert_eq!(get_with(&http, &gw, "/", &[("x-canary", "1")]).await.0, 200);
    assert_eq!(canary[0].stats().await.served, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_keeps_its_share_and_the_header_selects_it() {
    let base = upstreams("okb", 2).await;
    let canary = upstreams("okc", 1).await;
    let gw = gateway(&canary_file(&base, &canary, 20)).await;
    let http = client();
    let mut ids = Vec::new();
    for _ in 0..300 {
        let (status, id) = get(&http, &gw, "/").await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    let to_canary = tally(ids).get("okc0").copied().unwrap_or(0);
    eprintln!("canary at 20%: {to_canary} of 300 requests");
    assert!(
        (30..=90).contains(&to_canary),
        "{to_canary} of 300 to the canary at 20%"
    );
    assert_eq!(gw.gateway.canary_rolled_back("api"), Some(false));
    for _ in 0..10 {
        assert_eq!(
            get_with(&http, &gw, "/", &[("x-canary", "1")]).await,
            (200, Some("okc0".to_owned()))
        );
    }
}
