//! Webhooks against a real axum receiver that verifies the Standard Webhooks signature.

use crate::support::{Receiver, Reply, closed_port, delivery_id, outgoing, webhook_settings};
use praxis_notify::workers::channels::{Provider, SendError, WebhookProvider};
use std::time::Duration;

fn provider() -> WebhookProvider {
    WebhookProvider::new(webhook_settings(Duration::from_secs(10))).unwrap()
}

fn transient(err: SendError) -> (String, Option<Duration>) {
    match err {
        SendError::Transient {
            detail,
            retry_after,
        } => (detail, retry_after),
        other => panic!("expected transient, got {other:?}"),
    }
}

fn permanent(err: SendError) -> String {
    match err {
        SendError::Permanent { detail } => detail,
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn delivers_a_signed_payload() {
    let rx = Receiver::start().await;
    let id = delivery_id();
    let p = provider();
    assert_eq!(p.name(), "webhook");
    let receipt = p
        .send(&outgoing(&id, &rx.url("/hooks/orders")))
        .await
        .unwrap();
    assert_eq!(receipt.provider, "webhook");
    assert_eq!(receipt.detail, "HTTP 204");

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let hook = &got[0];
    assert_eq!(hook.path, "/hooks/orders");
    assert_eq!(hook.verified, Ok(()));
    assert_eq!(hook.header("webhook-id"), id);
    assert!(hook.header("webhook-signature").starts_with("v1,"));
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(hook.header("user-agent"), "praxis-notify-test/1");
    let body = hook.json();
    assert_eq!(body["type"], "order.shipped");
    assert_eq!(
        body["data"],
        serde_json::json!({"order": 42, "name": "Ada"})
    );
    let ts: jiff::Timestamp = body["timestamp"].as_str().unwrap().parse().unwrap();
    let header_ts: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert_eq!(ts.as_second(), header_ts);
}

#[tokio::test]
async fn a_retry_has_the_same_id_and_a_valid_signature() {
    let rx = Receiver::start().await;
    rx.reply_with([Reply::status(500)]);
    let id = delivery_id();
    let m = outgoing(&id, &rx.url("/"));
    transient(provider().send(&m).await.unwrap_err());
    provider().send(&m).await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 2);
    for hook in &got {
        assert_eq!(hook.header("webhook-id"), id);
        assert_eq!(hook.verified, Ok(()));
    }
}

#[tokio::test]
async fn tampered_requests_do_not_verify() {
    // The receiver's own check must be able to fail: a request signed with another key.
    let rx = Receiver::start().await;
    let other = WebhookProvider::new(praxis_notify::workers::channels::WebhookSettings {
        secret: praxis_notify::workers::channels::standard_webhooks::Secret::from_bytes(&[9; 32])
            .unwrap()
            .to_whsec(),
        timeout: Duration::from_secs(10),
        user_agent: "x".into(),
        ssrf: praxis_notify::domain::ssrf::SsrfPolicy::allow_all(),
        trust: praxis_infra::tls::TrustPolicy::system(),
    })
    .unwrap();
    other
        .send(&outgoing(&delivery_id(), &rx.url("/")))
        .await
        .unwrap();
    assert_eq!(
        rx.received()[0].verified,
        Err(praxis_notify::workers::channels::standard_webhooks::VerifyError::NoMatchingSignature)
    );
}

#[tokio::test]
async fn server_errors_are_transient_with_retry_after_seconds() {
    let rx = Receiver::start().await;
    rx.reply_with([Reply::status(503)
        .header("retry-after", "7")
        .body("down for\nmaintenance")]);
    let err = provider()
        .send(&outgoing(&delivery_id(), &rx.url("/")))
        .await
        .unwrap_err();
    let (detail, retry_after) = transient(err);
    assert_eq!(detail, "HTTP 503: down for maintenance");
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn too_many_requests_is_transient_with_an_http_date() {
    let rx = Receiver::start().await;
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&later)
        .unwrap();
    rx.reply_with([Reply::status(429).header("retry-after", date)]);
    let err = provider()
        .send(&outgoing(&delivery_id(), &rx.url("/")))
        .await
        .unwrap_err();
    let (detail, retry_after) = transient(err);
    assert_eq!(detail, "HTTP 429");
    // The date has second precision and some time passed: between 1 and 2 minutes.
    let retry_after = retry_after.expect("retry-after parsed");
    assert!(
        retry_after > Duration::from_secs(60) && retry_after <= Duration::from_secs(120),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn request_timeout_is_transient_and_client_errors_are_permanent() {
    let rx = Receiver::start().await;
    rx.reply_with([
        Reply::status(408),
        Reply::status(400).body("{\"error\":\"bad payload\"}"),
        Reply::status(404),
        Reply::status(410),
        Reply::status(301).header("location", "http://127.0.0.1:1/elsewhere"),
    ]);
    let p = provider();
    let url = rx.url("/");
    let (detail, retry_after) =
        transient(p.send(&outgoing(&delivery_id(), &url)).await.unwrap_err());
    assert_eq!((detail.as_str(), retry_after), ("HTTP 408", None));
    assert_eq!(
        permanent(p.send(&outgoing(&delivery_id(), &url)).await.unwrap_err()),
        "HTTP 400: {\"error\":\"bad payload\"}"
    );
    assert_eq!(
        permanent(p.send(&outgoing(&delivery_id(), &url)).await.unwrap_err()),
        "HTTP 404"
    );
    assert_eq!(
        permanent(p.send(&outgoing(&delivery_id(), &url)).await.unwrap_err()),
        "HTTP 410"
    );
    // Redirects are not followed.
    assert_eq!(
        permanent(p.send(&outgoing(&delivery_id(), &url)).await.unwrap_err()),
        "HTTP 301"
    );
    assert_eq!(rx.received().len(), 5);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let url = format!("http://127.0.0.1:{}/hook", closed_port());
    let (detail, retry_after) = transient(
        provider()
            .send(&outgoing(&delivery_id(), &url))
            .await
            .unwrap_err(),
    );
    assert!(detail.starts_with("connection failed"), "{detail}");
    assert_eq!(retry_after, None);
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_transient() {
    let rx = Receiver::start().await;
    rx.reply_with([Reply::status(200).delay(Duration::from_secs(30))]);
    let p = WebhookProvider::new(webhook_settings(Duration::from_millis(300))).unwrap();
    let (detail, _) = transient(
        p.send(&outgoing(&delivery_id(), &rx.url("/")))
            .await
            .unwrap_err(),
    );
    assert!(detail.starts_with("timeout"), "{detail}");
}

#[tokio::test]
async fn addresses_that_are_not_http_urls_are_permanent() {
    let p = provider();
    for address in ["not a url", "ftp://example.org/x", "mailto:a@example.org"] {
        let detail = permanent(
            p.send(&outgoing(&delivery_id(), address))
                .await
                .unwrap_err(),
        );
        assert!(detail.starts_with("invalid URL"), "{detail}");
    }
}
