//! Order emails: the `notify-order-events` bus consumer of the commerce system's
//! `commerce.orders` events sends the buyer a notification for each event whose type the
//! `order_events` setting lists.
//!
//! Each event becomes one send request through the same accept path as
//! `POST /api/v1/notify/send` ([`Accepter::send`]): to the subscriber whose id is the
//! event's `buyer`, with the template [`OrderEventKind::template_key`] (its latest version:
//! the built-in one of [`crate::domain::order_templates`] until one is created through the
//! template API), the event's [`OrderEvent::template_data`], the topic `commerce.orders` (a
//! subscriber's preferences can opt out of it) and the idempotency key
//! [`OrderEvent::dedupe_key`] of the sender [`SENDER`]. So templates, opt-outs, quiet hours,
//! channels, retries and dead letters are those of any send, and a redelivered event (the bus
//! is at least once) finds the first message instead of sending again.
//!
//! What becomes of an event (the `outcome` of `praxis_notify_order_events_total`):
//! - `accepted`: a new message was queued; `duplicate`: its key had been used (a redelivery);
//! - `ignored`: its type is not in the setting, or not a type notify knows;
//! - `malformed`: it does not parse as an order event ([`OrderEvent::parse`]);
//! - `refused`: the send was refused as an HTTP send would be (a 400 or 422: no subscriber
//!   with the buyer's id, no address on the template's channels, a user template that reads
//!   data the event lacks).
//!
//! Malformed and refused events are logged, counted and handed back to the bus as permanent
//! failures: recorded with the reason in `praxis_bus_dead_letters`, never retried. A database
//! that is down is a transient failure: the bus delivers the event again with backoff. The
//! consumer runs one event at a time, so one order's events are accepted in their order.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::http::StatusCode;
use parking_lot::Mutex;
use praxis_http::Problem;
use praxis_infra::InfraError;
use praxis_infra::bus::{Bus, Event, HandlerError};

use crate::domain::model::now_ms;
use crate::domain::order_event::{ORDERS_TOPIC, OrderEvent, OrderEventKind};
use crate::domain::order_templates::{self, BUILT_IN_AUTHOR};
use crate::store::Store;
use crate::store::templates::Templates;
use crate::workers::accept::{Accepter, Pending, SendRequest, Submission};
use crate::workers::metrics;

/// Consumer group of the order emails.
pub const ORDER_EVENTS_GROUP: &str = "notify-order-events";
/// The sender of order emails (their idempotency keys are scoped to it).
pub const SENDER: &str = "bus:commerce.orders";

/// What became of one order event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new message was queued.
    Accepted,
    /// Its idempotency key had been used: a redelivery, nothing sent.
    Duplicate,
    /// Its type is not emailed.
    Ignored,
    /// It is not an order event.
    Malformed,
    /// The send was refused (the buyer is no subscriber, has no address, ...).
    Refused,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Malformed => "malformed",
            Outcome::Refused => "refused",
        }
    }
}

/// The order-email consumer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OrderEmails {
    accepter: Accepter,
    store: Store,
    templates: Templates,
    kinds: Arc<BTreeSet<OrderEventKind>>,
    /// Kinds whose template this process has made sure of.
    ensured: Arc<Mutex<HashSet<OrderEventKind>>>,
}

impl OrderEmails {
    /// Emails on the events of `kinds`, accepted through `accepter`.
    pub fn new(
        accepter: Accepter,
        store: Store,
        templates: Templates,
        kinds: impl IntoIterator<Item = OrderEventKind>,
    ) -> Self {
        Self {
            accepter,
            store,
            templates,
            kinds: Arc::new(kinds.into_iter().collect()),
            ensured: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Subscribes the `notify-order-events` group to `commerce.orders`.
    pub fn subscribe(&self, bus: &Bus) -> Result<(), InfraError> {
        let this = self.clone();
        bus.subscribe(ORDERS_TOPIC, ORDER_EVENTS_GROUP, move |event: Event| {
            let this = this.clone();
            async move { this.handle(&event).await }
        })
    }

    /// Handles one `commerce.orders` event; counts and logs its [`Outcome`].
    pub async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let order = match OrderEvent::parse(&event.payload) {
            Ok(order) => order,
            Err(e) => {
                count("other", Outcome::Malformed);
                tracing::warn!(event_id = %event.id, key = %event.key, error = %e, "order event skipped: malformed");
                return Err(HandlerError::Permanent(format!(
                    "order event {}: {e}",
                    event.id
                )));
            }
        };
        let Some(kind) = order.kind().filter(|k| self.kinds.contains(k)) else {
            count(label(&order), Outcome::Ignored);
            tracing::debug!(order_id = %order.order_id, r#type = %order.kind_name, "order event not emailed");
            return Ok(());
        };
        self.ensure_template(kind).await?;
        let outcome = self.send(&order, kind).await;
        let (outcome, result) = match outcome? {
            Ok(accepted) => (accepted, Ok(())),
            Err(problem) => (
                Outcome::Refused,
                Err(HandlerError::Permanent(format!(
                    "order event {} ({} of order {} to {:?}): send refused: {}",
                    event.id,
                    order.kind_name,
                    order.order_id,
                    order.buyer,
                    describe(&problem)
                ))),
            ),
        };
        count(kind.as_str(), outcome);
        match outcome {
            Outcome::Refused => {
                tracing::warn!(order_id = %order.order_id, r#type = %order.kind_name, buyer = %order.buyer, "order email refused; the event is dead-lettered");
            }
            _ => {
                tracing::debug!(order_id = %order.order_id, r#type = %order.kind_name, outcome = outcome.as_str(), "order event handled");
            }
        }
        result
    }

    /// Accepts the notification of `order`: `Ok(Accepted | Duplicate)`, or the problem an HTTP
    /// send would have answered.
    async fn send(
        &self,
        order: &OrderEvent,
        kind: OrderEventKind,
    ) -> Result<Result<Outcome, Problem>, InfraError> {
        let submission = Submission {
            sender: SENDER.to_owned(),
            now_ms: now_ms(),
            requests: vec![Pending {
                request: send_request(order, kind),
                header_key: None,
                prefix: String::new(),
            }],
        };
        let answer = self.accepter.send(submission).await?.pop();
        Ok(match answer {
            Some(Ok(a)) if a.duplicate => Ok(Outcome::Duplicate),
            Some(Ok(_)) => Ok(Outcome::Accepted),
            // The key was used with other data (the producer changed the event): it was
            // notified once already.
            Some(Err(p)) if p.slug == "idempotency-key-reused" => Ok(Outcome::Duplicate),
            Some(Err(p)) => Err(p),
            None => Err(Problem::internal("accept returned no result")),
        })
    }

    /// Stores the built-in template of `kind` unless a template of its key exists (once per
    /// kind in this process). A latest version that is an older built-in text is replaced
    /// by the current one; a version created through the API is left alone.
    pub async fn ensure_template(&self, kind: OrderEventKind) -> Result<(), InfraError> {
        if self.ensured.lock().contains(&kind) {
            return Ok(());
        }
        let key = kind.template_key();
        let sources = order_templates::sources(kind);
        let store_it = match self.templates.get(&key, None).await? {
            None => true,
            Some(latest) => latest.created_by == BUILT_IN_AUTHOR && latest.sources != sources,
        };
        if store_it {
            let value = serde_json::to_value(&sources)?;
            let version = self
                .store
                .insert_template_version(&key, &value, None, BUILT_IN_AUTHOR, now_ms())
                .await?;
            tracing::info!(template = %key, version, "built-in order email template stored");
        }
        self.ensured.lock().insert(kind);
        Ok(())
    }
}

/// The send request of `order`'s notification.
pub fn send_request(order: &OrderEvent, kind: OrderEventKind) -> SendRequest {
    SendRequest {
        to: serde_json::Value::String(order.buyer.clone()),
        channels: None,
        template: kind.template_key(),
        version: None,
        data: Some(order.template_data()),
        idempotency_key: Some(order.dedupe_key()),
        send_at: None,
        event_type: Some(format!("commerce.order.{}", kind.as_str())),
        topic: Some(ORDERS_TOPIC.to_owned()),
        digest: None,
        dedupe_window: None,
    }
}

/// The metric label of an event's type: a known type, or `other`.
fn label(order: &OrderEvent) -> &'static str {
    order.kind().map_or("other", OrderEventKind::as_str)
}

fn count(kind: &'static str, outcome: Outcome) {
    ::metrics::counter!(metrics::ORDER_EVENTS_TOTAL, "type" => kind, "outcome" => outcome.as_str())
        .increment(1);
}

/// A refusal in one line: its detail and each field error.
fn describe(p: &Problem) -> String {
    let mut text = format!("{} {}", p.status.as_u16(), p.detail);
    for e in &p.errors {
        text.push_str(&format!("; {}: {}", e.field, e.message));
    }
    if p.status == StatusCode::INTERNAL_SERVER_ERROR {
        text.push_str(" (a bug)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_a_keyed_send_to_the_buyer() {
        let order = OrderEvent::parse(
            br#"{"type":"shipped","order_id":"o-7","buyer":"ann","total_cents":1500,"currency":"EUR","at":1}"#,
        )
        .expect("event");
        let r = send_request(&order, OrderEventKind::Shipped);
        assert_eq!(r.to, "ann");
        assert_eq!(r.template, "commerce-order-shipped");
        assert_eq!(
            r.idempotency_key.as_deref(),
            Some("commerce-order:o-7:shipped")
        );
        assert_eq!(r.topic.as_deref(), Some("commerce.orders"));
        assert_eq!(
            r.data.as_ref().map(|d| d["total"].clone()),
            Some("15.00 EUR".into())
        );
        let key = r.idempotency_key.expect("key");
        assert!(crate::workers::accept::check_key(&key).is_ok());
    }
}
