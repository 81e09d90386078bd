//! Order emails: commerce order events published as raw JSON on the bus topic
//! `commerce.orders` (through the outbox, as the commerce system does, without its crate)
//! become emails to the buyer through the whole pipeline and a real SMTP server. Each case
//! runs on every backend. That something was *not* sent is shown by a later event that is:
//! the consumer handles one event at a time in order, so once the later event's message
//! exists every earlier event has been handled.

use axum::http::Method;
use serde_json::{Value, json};

use praxis_notify::domain::order_event::OrderEventKind;
use praxis_notify::workers::channels::email::{SmtpSettings, SmtpTls};
use praxis_notify::workers::order_events::{ORDER_EVENTS_GROUP, SENDER};

use crate::smtp_sink::{ReceivedMail, SmtpServer};
use crate::support::{DEADLINE, Harness, Kind, eventually, settings};

praxis_testkit::backend_matrix!(crate::order_events: [
    a_confirmed_event_emails_the_buyer_once,
    a_redelivered_event_sends_once,
    types_not_in_the_setting_send_nothing,
    a_malformed_event_is_skipped_and_the_next_one_arrives,
    a_user_template_overrides_the_built_in_one,
    a_buyer_without_subscriber_or_email_gets_nothing_and_is_recorded,
]);

/// An app emailing on `kinds` through a fresh SMTP server, and the buyer `ann` as a
/// subscriber with an email address.
async fn start(kind: Kind, kinds: &[OrderEventKind]) -> (Harness, SmtpServer) {
    let smtp = SmtpServer::start();
    let mut s = settings();
    s.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: s.email_from.clone(),
        timeout: s.provider_timeout,
        ca_file: None,
    });
    s.order_events = kinds.to_vec();
    let h = Harness::start(kind, s).await;
    h.subscriber("ann", json!({"email": "ann@example.com"}))
        .await;
    (h, smtp)
}

/// An order event as the contract writes it.
fn event(kind: &str, order_id: &str, buyer: &str) -> Value {
    json!({
        "type": kind, "order_id": order_id, "buyer": buyer, "total_cents": 9998,
        "currency": "EUR", "reason": null, "at": 1_796_670_072_000i64
    })
}

/// Publishes a raw payload on `commerce.orders` through the outbox, keyed `key`.
async fn publish_raw(h: &Harness, key: &str, payload: &[u8]) {
    h.platform
        .bus
        .publish("commerce.orders", key, payload)
        .await
        .expect("publish");
}

/// Publishes an order event.
async fn publish(h: &Harness, e: &Value) {
    let key = e["order_id"].as_str().unwrap_or_default().to_owned();
    publish_raw(h, &key, &serde_json::to_vec(e).expect("json")).await;
}

/// The id of the order-email message keyed `commerce-order:{order}:{kind}`, once it exists.
async fn message_of(h: &Harness, order: &str, kind: &str) -> String {
    let key = format!("commerce-order:{order}:{kind}");
    eventually(DEADLINE, &format!("a message keyed {key}"), || async {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM notify_messages WHERE sender = $1 AND idempotency_key = $2",
        )
        .bind(SENDER)
        .bind(&key)
        .fetch_optional(h.platform.db.pool())
        .await
        .expect("query")
    })
    .await
}

/// How many messages order events made.
async fn order_messages(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM notify_messages WHERE sender = $1")
        .bind(SENDER)
        .fetch_one(h.platform.db.pool())
        .await
        .expect("count")
}

/// The errors the order-email group dead-lettered.
async fn dead_letters(h: &Harness) -> Vec<String> {
    sqlx::query_scalar("SELECT error FROM praxis_bus_dead_letters WHERE grp = $1")
        .bind(ORDER_EVENTS_GROUP)
        .fetch_all(h.platform.db.pool())
        .await
        .expect("dead letters")
}

/// The next message the SMTP server accepted (without holding up the runtime meanwhile).
fn next_mail(smtp: &SmtpServer) -> ReceivedMail {
    tokio::task::block_in_place(|| smtp.next_mail())
}

/// Waits until `ids` are delivered, then takes exactly their emails from the SMTP server and
/// checks that it got no other.
async fn delivered_mails(h: &Harness, smtp: &SmtpServer, ids: &[&str]) -> Vec<ReceivedMail> {
    for id in ids {
        h.wait_state(id, "delivered").await;
    }
    let mails: Vec<ReceivedMail> = ids.iter().map(|_| next_mail(smtp)).collect();
    let extra = smtp.pending();
    assert!(
        extra.is_empty(),
        "unexpected emails: {:?}",
        extra
            .iter()
            .map(|m| &m.headers["subject"])
            .collect::<Vec<_>>()
    );
    mails
}

pub async fn a_confirmed_event_emails_the_buyer_once(kind: Kind) {
    let (h, smtp) = start(kind, &OrderEventKind::EMAILED_BY_DEFAULT).await;
    publish(&h, &event("confirmed", "order-1", "ann")).await;
    let id = message_of(&h, "order-1", "confirmed").await;
    let mails = delivered_mails(&h, &smtp, &[&id]).await;
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, ["ann@example.com"]);
    assert!(mail.defects.is_empty(), "{:?}", mail.defects);
    let subject = &mail.headers["subject"];
    assert!(subject.contains("Order confirmed"), "{subject}");
    assert!(subject.contains("order-1"), "{subject}");
    let text = mail.text.as_deref().unwrap_or_default();
    assert!(text.contains("order-1"), "{text}");
    assert!(text.contains("Total: 99.98 EUR"), "{text}");
    assert!(
        !text.contains("Reason"),
        "no reason, no reason line: {text}"
    );
    // The built-in template is stored under its key, visible through the template API.
    let t = h
        .call(
            Method::GET,
            "/api/v1/notify/templates/commerce-order-confirmed",
            None,
        )
        .await
        .ok(200);
    assert_eq!(t["version"], 1, "{t}");
    assert_eq!(order_messages(&h).await, 1);
    assert!(dead_letters(&h).await.is_empty());
}

pub async fn a_redelivered_event_sends_once(kind: Kind) {
    let (h, smtp) = start(kind, &OrderEventKind::EMAILED_BY_DEFAULT).await;
    let confirmed = event("confirmed", "order-2", "ann");
    // At least once: the same event comes twice (two outbox rows, as after a crash of the
    // producer between its publish and its bookkeeping).
    publish(&h, &confirmed).await;
    publish(&h, &confirmed).await;
    let mut compensated = event("compensated", "order-3", "ann");
    compensated["reason"] = json!("payment declined");
    publish(&h, &compensated).await;
    let first = message_of(&h, "order-2", "confirmed").await;
    let later = message_of(&h, "order-3", "compensated").await;
    assert_eq!(order_messages(&h).await, 2, "the redelivery queued nothing");
    let mails = delivered_mails(&h, &smtp, &[&first, &later]).await;
    let mut subjects: Vec<&str> = mails
        .iter()
        .map(|m| m.headers["subject"].as_str())
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        [
            "Order confirmed: order-2",
            "Order could not be completed: order-3"
        ]
    );
    let reasoned = mails
        .iter()
        .find(|m| m.headers["subject"].contains("order-3"))
        .and_then(|m| m.text.clone())
        .unwrap_or_default();
    assert!(reasoned.contains("Reason: payment declined"), "{reasoned}");
}

pub async fn types_not_in_the_setting_send_nothing(kind: Kind) {
    let (h, smtp) = start(kind, &[OrderEventKind::Confirmed]).await;
    for t in ["placed", "paid", "shipped", "refunded"] {
        publish(&h, &event(t, "order-4", "ann")).await;
    }
    publish(&h, &event("confirmed", "order-4", "ann")).await;
    let id = message_of(&h, "order-4", "confirmed").await;
    assert_eq!(
        order_messages(&h).await,
        1,
        "only the confirmed event sends"
    );
    let mails = delivered_mails(&h, &smtp, &[&id]).await;
    assert_eq!(mails[0].headers["subject"], "Order confirmed: order-4");
    // No template was stored for the types not emailed.
    h.call(
        Method::GET,
        "/api/v1/notify/templates/commerce-order-shipped",
        None,
    )
    .await
    .problem(404);
}

pub async fn a_malformed_event_is_skipped_and_the_next_one_arrives(kind: Kind) {
    let (h, smtp) = start(kind, &OrderEventKind::EMAILED_BY_DEFAULT).await;
    publish_raw(&h, "order-5", b"{not json").await;
    publish_raw(
        &h,
        "order-5",
        br#"{"type": "confirmed", "order_id": "order-5"}"#,
    )
    .await;
    publish(&h, &event("confirmed", "order-5", "ann")).await;
    let id = message_of(&h, "order-5", "confirmed").await;
    let mails = delivered_mails(&h, &smtp, &[&id]).await;
    assert!(mails[0].headers["subject"].contains("order-5"));
    assert_eq!(order_messages(&h).await, 1);
    let errors = dead_letters(&h).await;
    assert_eq!(
        errors.len(),
        2,
        "both malformed events are recorded: {errors:?}"
    );
    assert!(
        errors.iter().all(|e| e.contains("malformed order event")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("missing field `buyer`")),
        "{errors:?}"
    );
}

pub async fn a_user_template_overrides_the_built_in_one(kind: Kind) {
    let (h, smtp) = start(kind, &OrderEventKind::EMAILED_BY_DEFAULT).await;
    // The first event stores the built-in template (version 1) and uses it.
    publish(&h, &event("shipped", "order-6", "ann")).await;
    let built_in = message_of(&h, "order-6", "shipped").await;
    let mails = delivered_mails(&h, &smtp, &[&built_in]).await;
    assert_eq!(mails[0].headers["subject"], "Order shipped: order-6");
    // A template created through the API under the key is the next version, and wins.
    let t = h
        .template(
            "commerce-order-shipped",
            json!({"email": {
                "subject": "On its way: {{ order_id }}",
                "text": "Parcel for order {{ order_id }} ({{ total }}) left the warehouse.\n"
            }}),
        )
        .await;
    assert_eq!(t["version"], 2, "{t}");
    publish(&h, &event("shipped", "order-7", "ann")).await;
    let custom = message_of(&h, "order-7", "shipped").await;
    let mails = delivered_mails(&h, &smtp, &[&custom]).await;
    assert_eq!(mails[0].headers["subject"], "On its way: order-7");
    let text = mails[0].text.as_deref().unwrap_or_default();
    assert!(
        text.contains("Parcel for order order-7 (99.98 EUR) left the warehouse."),
        "{text}"
    );
    // A user template created before any event is never replaced by the built-in one.
    h.template(
        "commerce-order-cancelled",
        json!({"email": {"subject": "Cancelled {{ order_id }}", "text": "{{ reason }}\n"}}),
    )
    .await;
    let mut cancelled = event("cancelled", "order-8", "ann");
    cancelled["reason"] = json!("changed my mind");
    publish(&h, &cancelled).await;
    let id = message_of(&h, "order-8", "cancelled").await;
    let mails = delivered_mails(&h, &smtp, &[&id]).await;
    assert_eq!(mails[0].headers["subject"], "Cancelled order-8");
    let latest = h
        .call(
            Method::GET,
            "/api/v1/notify/templates/commerce-order-cancelled",
            None,
        )
        .await
        .ok(200);
    assert_eq!(latest["version"], 1, "{latest}");
}

pub async fn a_buyer_without_subscriber_or_email_gets_nothing_and_is_recorded(kind: Kind) {
    let (h, smtp) = start(kind, &OrderEventKind::EMAILED_BY_DEFAULT).await;
    h.subscriber("bob", json!({"timezone": "Europe/Paris"}))
        .await;
    publish(&h, &event("confirmed", "order-9", "nobody")).await;
    publish(&h, &event("confirmed", "order-10", "bob")).await;
    publish(&h, &event("confirmed", "order-11", "ann")).await;
    let id = message_of(&h, "order-11", "confirmed").await;
    let mails = delivered_mails(&h, &smtp, &[&id]).await;
    assert_eq!(mails[0].rcpt_tos, ["ann@example.com"]);
    assert_eq!(order_messages(&h).await, 1);
    let errors = dead_letters(&h).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("order-9") && e.contains("no subscriber")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("order-10") && e.contains("no address")),
        "{errors:?}"
    );
}
