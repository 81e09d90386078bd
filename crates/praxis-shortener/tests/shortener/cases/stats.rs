//! Visit statistics.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use praxis_shortener::domain::agent::AgentClass;
use praxis_shortener::domain::days::{day_of, now_ms};
use praxis_shortener::domain::visits::{STATS_GROUP, VISITS_TOPIC, Visit, VisitBatch, VisitTally};

use crate::support::{Harness, code, eventually};

const DEADLINE: Duration = Duration::from_secs(20);

pub async fn stats_count_visits(h: &Harness) {
    let c = code(
        &h.create(json!({"url": "https://example.com/counted"}))
            .await,
    );
    let other = code(&h.create(json!({"url": "https://example.com/other"})).await);
    for i in 0..5 {
        let ua = if i % 2 == 0 {
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile"
        } else {
            "curl/8.0"
        };
        let r = h
            .call_with(
                Method::GET,
                &format!("/{c}"),
                None,
                &[
                    ("user-agent", ua),
                    ("referer", "https://News.Example.org/x"),
                ],
            )
            .await;
        assert_eq!(r.status.as_u16(), 301);
    }
    // Not visits: HEAD, unknown codes, another link's redirect counts for that link only.
    h.call_with(Method::HEAD, &format!("/{c}"), None, &[]).await;
    h.follow("unknown1").await;
    h.follow(&other).await;

    let stats = eventually(DEADLINE, "stats reach 5 visits", || async {
        let s = h.stats(&c).await;
        (s["total"] == 5).then_some(s)
    })
    .await;
    let today = day_of(now_ms());
    assert_eq!(stats["daily"], json!([{"date": today, "visits": 5}]));
    assert_eq!(stats["in_range"], 5);
    assert_eq!(stats["agents"], json!({"bot": 2, "mobile": 3}));
    assert_eq!(
        stats["referrers"],
        json!([{"host": "news.example.org", "visits": 5}])
    );
    eventually(DEADLINE, "the other link counts 1", || async {
        (h.stats(&other).await["total"] == 1).then_some(())
    })
    .await;

    // Never more than the redirects served: wait until the bus has nothing left.
    eventually(DEADLINE, "bus drained", || async {
        let lag = h.platform.bus.lag(VISITS_TOPIC, STATS_GROUP).await.ok()?;
        (lag == 0).then_some(())
    })
    .await;
    assert_eq!(h.stats(&c).await["total"], 5);
    let view = h
        .call(Method::GET, &format!("/api/v1/links/{c}"), None)
        .await
        .ok(200);
    assert_eq!(view["visits"], 5);

    // Ranges.
    let s = h
        .call(
            Method::GET,
            &format!("/api/v1/links/{c}/stats?from=2000-01-01&to=2000-12-31"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(s["daily"], json!([]));
    assert_eq!(s["in_range"], 0);
    assert_eq!(s["total"], 5);
    let s = h
        .call(
            Method::GET,
            &format!("/api/v1/links/{c}/stats?from={today}&to={today}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(s["in_range"], 5);
    // `to` before `from`: an empty range, not an error.
    let s = h
        .call(
            Method::GET,
            &format!("/api/v1/links/{c}/stats?from={today}&to=2000-01-01"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        (s["in_range"].clone(), s["daily"].clone()),
        (json!(0), json!([]))
    );
    for bad in ["from=yesterday", "to=2026-13-01", "bogus=1"] {
        h.call(Method::GET, &format!("/api/v1/links/{c}/stats?{bad}"), None)
            .await
            .problem(400);
    }
}

pub async fn duplicate_batch_counts_once(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/dup"})).await);
    let visit = Visit {
        code: c.clone(),
        at_ms: now_ms(),
        referrer: None,
        agent: AgentClass::Desktop,
    };
    let mut tally = VisitTally::default();
    for _ in 0..3 {
        tally.add(visit.clone());
    }
    let batch = VisitBatch::new(tally.take());
    let payload = serde_json::to_vec(&batch).expect("serializes");
    let bus = &h.platform.bus;
    // The same batch delivered twice (as a redelivery or a duplicate publish would).
    bus.publish(VISITS_TOPIC, &batch.batch_id.to_string(), &payload)
        .await
        .expect("publish");
    bus.publish(VISITS_TOPIC, &batch.batch_id.to_string(), &payload)
        .await
        .expect("publish");
    eventually(DEADLINE, "both copies consumed", || async {
        let lag = bus.lag(VISITS_TOPIC, STATS_GROUP).await.ok()?;
        (lag == 0).then_some(())
    })
    .await;
    eventually(DEADLINE, "batch applied", || async {
        (h.stats(&c).await["total"] == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.stats(&c).await["total"], 3, "a batch counts once");

    // A garbage event is dead-lettered, not retried forever, and does not stop the group.
    bus.publish(VISITS_TOPIC, "junk", b"not json")
        .await
        .expect("publish");
    h.follow(&c).await;
    eventually(DEADLINE, "later visits still counted", || async {
        (h.stats(&c).await["total"] == 4).then_some(())
    })
    .await;
}

pub async fn shutdown_flushes_buffered_visits(h: &Harness) {
    // A second process whose visits would wait an hour in memory.
    let slow = h
        .another_process(praxis_shortener::ShortenerSettings {
            visit_flush_interval: Duration::from_secs(3600),
            ..crate::support::settings()
        })
        .await;
    let c = code(
        &slow
            .create(json!({"url": "https://example.com/flush"}))
            .await,
    );
    for _ in 0..3 {
        assert_eq!(slow.follow(&c).await.status.as_u16(), 301);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.stats(&c).await["total"],
        0,
        "still buffered in the slow process"
    );
    // Graceful shutdown of the slow process: its batcher publishes what it holds.
    slow.platform.shutdown.cancel();
    eventually(
        DEADLINE,
        "buffered visits counted after shutdown",
        || async { (h.stats(&c).await["total"] == 3).then_some(()) },
    )
    .await;

    // A process started later builds its Bloom filter from the database: it knows the link.
    let later = h.another_process(crate::support::settings()).await;
    assert_eq!(later.follow(&c).await.status.as_u16(), 301);
}
