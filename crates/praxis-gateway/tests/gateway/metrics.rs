//! The gateway's RED metrics per route and upstream, and its counters, as Prometheus renders
//! them (the process's recorder is praxis-http's, as in the binary).

use crate::support::*;

/// The value of the first rendered sample whose line contains every one of `parts`.
fn sample(text: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_attempts_retries_and_shedding_are_counted() {
    let handle = praxis_http::metrics::install_metrics_recorder();
    let ups = upstreams("met", 2).await;
    ups[1].mode("status=503").await;
    let file = format!(
        "[pools.metpool]\ninstances = {}\nhealth.check = \"none\"\nmax_concurrency = 1\noutlier = {{ consecutive_5xx = 0, consecutive_gateway_errors = 0, latency_factor = 0 }}\n\n[[routes]]\nname = \"metroute\"\npool = \"metpool\"\n",
        instances(&ups)
    );
    let gw = gateway(&file).await;
    let http = client();
    for _ in 0..10 {
        assert_eq!(get(&http, &gw, "/").await.0, 200);
    }
    // One request held, the next shed.
    ups[0].mode("hold=true").await;
    ups[1].mode("hold=true").await;
    let held = {
        let (http, url) = (http.clone(), format!("{}/held", gw.base));
        tokio::spawn(async move { http.get(url).send().await.expect("held").status().as_u16() })
    };
    eventually(
        "a request held",
        std::time::Duration::from_secs(10),
        || async { ups[0].stats().await.in_flight + ups[1].stats().await.in_flight == 1 },
    )
    .await;
    assert_eq!(get(&http, &gw, "/shed").await.0, 503);
    ups[0].release().await;
    ups[1].release().await;
    held.await.expect("held");

    let text = handle.render();
    let route = [
        "praxis_gateway_requests_total{",
        "route=\"metroute\"",
        "pool=\"metpool\"",
    ];
    let ok = sample(&text, &[&route[..], &["status=\"200\""]].concat());
    assert!(
        ok.is_some_and(|v| v >= 10.0),
        "requests by route and status: {ok:?}"
    );
    let good = format!("upstream=\"{}\"", ups[0].addr);
    let bad = format!("upstream=\"{}\"", ups[1].addr);
    assert!(
        sample(
            &text,
            &[
                "praxis_gateway_upstream_requests_total{",
                &good,
                "outcome=\"success\""
            ]
        )
        .is_some_and(|v| v >= 10.0)
    );
    assert!(
        sample(
            &text,
            &[
                "praxis_gateway_upstream_requests_total{",
                &bad,
                "outcome=\"gateway_error\""
            ]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(
        sample(
            &text,
            &["praxis_gateway_retries_total{", "pool=\"metpool\""]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(
        sample(
            &text,
            &[
                "praxis_gateway_shed_total{",
                "pool=\"metpool\"",
                "tier=\"best_effort\""
            ]
        ) == Some(1.0)
    );
    assert!(
        sample(
            &text,
            &[
                "praxis_gateway_request_duration_seconds_count{",
                "route=\"metroute\""
            ]
        )
        .is_some_and(|v| v >= 10.0),
        "latency histogram by route"
    );
    assert!(
        sample(
            &text,
            &["praxis_gateway_upstream_duration_seconds_count{", &good]
        )
        .is_some_and(|v| v >= 10.0)
    );
}
