//! SMS and push gateways against the same verifying receiver.

use crate::support::{Receiver, Reply, delivery_id, outgoing, webhook_settings};
use praxis_notify::domain::channel::Channel;
use praxis_notify::workers::channels::{GatewayProvider, Provider, SendError};
use std::time::Duration;

#[tokio::test]
async fn sms_and_push_post_signed_to_title_text_data() {
    let rx = Receiver::start().await;
    let sms = GatewayProvider::new(
        Channel::Sms,
        &rx.url("/sms"),
        webhook_settings(Duration::from_secs(10)),
    )
    .unwrap();
    let push = GatewayProvider::new(
        Channel::Push,
        &rx.url("/push"),
        webhook_settings(Duration::from_secs(10)),
    )
    .unwrap();

    let (sms_id, push_id) = (delivery_id(), delivery_id());
    let receipt = sms.send(&outgoing(&sms_id, "+33612345678")).await.unwrap();
    assert_eq!(
        (receipt.provider.as_str(), receipt.detail.as_str()),
        ("sms-gateway", "HTTP 204")
    );
    let receipt = push
        .send(&outgoing(&push_id, "device-token-1"))
        .await
        .unwrap();
    assert_eq!(receipt.provider, "push-gateway");

    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/sms");
    assert_eq!(got[0].verified, Ok(()));
    assert_eq!(got[0].header("webhook-id"), sms_id);
    assert_eq!(
        got[0].json(),
        serde_json::json!({
            "to": "+33612345678",
            "title": "Héllo ✓",
            "text": "Hi Ada,\nyour order shipped.\n",
            "data": {"order": 42, "name": "Ada"},
        })
    );
    assert_eq!(got[1].path, "/push");
    assert_eq!(got[1].verified, Ok(()));
    assert_eq!(got[1].header("webhook-id"), push_id);
    assert_eq!(got[1].json()["to"], "device-token-1");
}

#[tokio::test]
async fn gateway_failures_are_classified_like_webhooks() {
    let rx = Receiver::start().await;
    rx.reply_with([
        Reply::status(502).header("retry-after", "3"),
        Reply::status(422),
    ]);
    let sms = GatewayProvider::new(
        Channel::Sms,
        &rx.url("/sms"),
        webhook_settings(Duration::from_secs(10)),
    )
    .unwrap();
    match sms
        .send(&outgoing(&delivery_id(), "+33612345678"))
        .await
        .unwrap_err()
    {
        SendError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(matches!(
        sms.send(&outgoing(&delivery_id(), "+33612345678"))
            .await
            .unwrap_err(),
        SendError::Permanent { .. }
    ));
    assert!(matches!(
        sms.send(&outgoing(&delivery_id(), " ")).await.unwrap_err(),
        SendError::Permanent { .. }
    ));
    assert_eq!(
        rx.received().len(),
        2,
        "an empty address is refused before any request"
    );
}
