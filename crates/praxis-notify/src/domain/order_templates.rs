//! The built-in templates of order emails, one per [`OrderEventKind`], stored under its
//! [`OrderEventKind::template_key`] the first time an event of that kind is handled (by
//! [`crate::workers::order_events`]). A template created through the template API under the
//! same key is a newer version and wins; the built-in one is never written over it.
//!
//! Each has an email part only (subject and text) and reads the data of
//! [`crate::domain::order_event::OrderEvent::template_data`]: `order_id`, `total` and, when
//! present, `reason`.

use std::collections::BTreeMap;

use crate::domain::channel::Channel;
use crate::domain::order_event::OrderEventKind;
use crate::domain::template::TemplateSource;

/// The `created_by` of built-in template versions: a template whose latest version has it was
/// not changed through the API, so a newer built-in text may replace it.
pub const BUILT_IN_AUTHOR: &str = "praxis:built-in";

/// The body every built-in template shares; `{sentence}` is the kind's own line.
const BODY: &str = "Hello,

{sentence}

Order: {{ order_id }}
Total: {{ total }}
{% if reason %}Reason: {{ reason }}
{% endif %}";

/// The subject and the first sentence of a kind's email.
fn wording(kind: OrderEventKind) -> (&'static str, &'static str) {
    match kind {
        OrderEventKind::Placed => (
            "Order received: {{ order_id }}",
            "we have received your order {{ order_id }} and are processing it.",
        ),
        OrderEventKind::Paid => (
            "Payment authorized: {{ order_id }}",
            "the payment for your order {{ order_id }} was authorized.",
        ),
        OrderEventKind::Shipped => (
            "Order shipped: {{ order_id }}",
            "your order {{ order_id }} has shipped.",
        ),
        OrderEventKind::Confirmed => (
            "Order confirmed: {{ order_id }}",
            "your order {{ order_id }} is confirmed. Thank you!",
        ),
        OrderEventKind::Cancelled => (
            "Order cancelled: {{ order_id }}",
            "your order {{ order_id }} was cancelled as you asked; its payment was voided and nothing ships.",
        ),
        OrderEventKind::Compensated => (
            "Order could not be completed: {{ order_id }}",
            "we could not complete your order {{ order_id }}: it was cancelled, its payment voided and nothing ships.",
        ),
    }
}

/// The built-in source of `kind`'s email.
pub fn source(kind: OrderEventKind) -> TemplateSource {
    let (subject, sentence) = wording(kind);
    TemplateSource {
        subject: Some(subject.to_owned()),
        text: BODY.replace("{sentence}", sentence),
        html: None,
    }
}

/// The built-in template of `kind`, per channel (as the template API takes and stores it).
pub fn sources(kind: OrderEventKind) -> BTreeMap<Channel, TemplateSource> {
    BTreeMap::from([(Channel::Email, source(kind))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order_event::OrderEvent;
    use crate::domain::template::compile;

    #[test]
    fn every_built_in_template_renders_an_event() {
        for kind in OrderEventKind::ALL {
            let payload = format!(
                r#"{{"type":"{kind}","order_id":"o-42","buyer":"ann","total_cents":9998,"currency":"EUR","reason":"payment declined","at":1}}"#
            );
            let event = OrderEvent::parse(payload.as_bytes()).expect("event");
            let compiled = compile(&kind.template_key(), &source(kind)).expect("compiles");
            let r = compiled.render(&event.template_data()).expect("renders");
            assert!(r.subject.contains("o-42"), "{kind}: {r:?}");
            assert!(r.text.contains("Total: 99.98 EUR"), "{kind}: {r:?}");
            assert!(r.text.contains("Reason: payment declined"), "{kind}: {r:?}");
            let mut data = event.template_data();
            data["reason"] = serde_json::Value::Null;
            let r = compiled.render(&data).expect("renders without a reason");
            assert!(!r.text.contains("Reason"), "{kind}: {r:?}");
        }
        assert!(
            source(OrderEventKind::Confirmed)
                .subject
                .is_some_and(|s| s.starts_with("Order confirmed"))
        );
    }
}
