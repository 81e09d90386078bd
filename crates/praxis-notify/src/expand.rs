//! Expansion: the `notify-expand` bus consumer turns accepted messages into delivery rows, one
//! per channel and address, due at `send_at` (or at once).
//!
//! It is idempotent: deliveries are unique on `(message_id, channel, address)`, so an event
//! handled twice (a redelivery after a crash) creates nothing new. This is also where
//! per-subscriber policy belongs: preferences (opt-outs per channel and topic) will create the
//! delivery as `suppressed` with its reason, quiet hours will move its due time to the end of
//! the window, and topics will fan a message out to their subscribers ([`plan`]).

use std::collections::{BTreeSet, HashMap};

use praxis_infra::InfraError;
use praxis_infra::bus::{Bus, Event, HandlerError};

use crate::accept::{ACCEPTED_TOPIC, AcceptedEvent, EXPAND_GROUP, inline_address};
use crate::channels::Channel;
use crate::dispatch::Wakers;
use crate::model::{DeliveryState, MessageRecord, NewDelivery, Subscriber, now_ms};
use crate::store::Store;

/// Subscribes the `notify-expand` group.
pub fn subscribe(bus: &Bus, store: Store, wakers: Wakers) -> Result<(), InfraError> {
    bus.subscribe(ACCEPTED_TOPIC, EXPAND_GROUP, move |event: Event| {
        let store = store.clone();
        let wakers = wakers.clone();
        async move { handle(&store, &wakers, &event).await }
    })
}

/// Handles one `notify.accepted` event.
pub async fn handle(store: &Store, wakers: &Wakers, event: &Event) -> Result<(), HandlerError> {
    let accepted: AcceptedEvent = serde_json::from_slice(&event.payload).map_err(|e| {
        HandlerError::Permanent(format!("accept event {} does not parse: {e}", event.id))
    })?;
    let channels = expand(store, &accepted.messages).await?;
    for channel in channels {
        wakers.wake(channel);
    }
    Ok(())
}

/// Creates the deliveries of `message_ids` (those already expanded are skipped); returns the
/// channels that got new deliveries.
pub async fn expand(
    store: &Store,
    message_ids: &[String],
) -> Result<BTreeSet<Channel>, InfraError> {
    let messages: Vec<MessageRecord> = store
        .messages(message_ids)
        .await?
        .into_iter()
        .filter(|m| m.expanded_at.is_none())
        .collect();
    if messages.len() < message_ids.len() {
        tracing::debug!(
            requested = message_ids.len(),
            pending = messages.len(),
            "some accepted messages were expanded before (redelivered event) or do not exist"
        );
    }
    if messages.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.subscriber_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    let subscribers: HashMap<String, Subscriber> = store
        .subscribers(&ids)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let mut deliveries = Vec::new();
    for m in &messages {
        let subscriber = m.subscriber_id.as_ref().and_then(|id| subscribers.get(id));
        deliveries.extend(plan(m, subscriber));
    }
    let expanded: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let created = store.expand(&expanded, &deliveries, now_ms()).await?;
    tracing::debug!(
        messages = expanded.len(),
        deliveries = created,
        "messages expanded"
    );
    Ok(deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Queued)
        .map(|d| d.channel)
        .collect())
}

/// The deliveries of one message: one per requested channel, at the subscriber's (or the
/// request's) address on it. A subscriber that lost its address (or was deleted) since the
/// message was accepted gives a delivery that is failed from the start, with the reason.
///
/// Preferences and quiet hours go here: a channel the subscriber opted out of becomes a
/// `suppressed` delivery with its reason; quiet hours move `due_at` to the window's end.
pub fn plan(m: &MessageRecord, subscriber: Option<&Subscriber>) -> Vec<NewDelivery> {
    m.channels
        .iter()
        .map(|&channel| {
            let address = match (&m.subscriber_id, subscriber) {
                (Some(_), Some(s)) => s.address(channel).map(str::to_owned).ok_or_else(|| {
                    format!(
                        "subscriber {:?} has no {} address any more",
                        s.id,
                        channel.as_str()
                    )
                }),
                (Some(id), None) => Err(format!(
                    "subscriber {id:?} was deleted before the message was sent"
                )),
                (None, _) => inline_address(&m.recipient, channel)
                    .ok_or_else(|| format!("the message has no {} address", channel.as_str())),
            };
            let (address, state, reason) = match address {
                Ok(a) => (a, DeliveryState::Queued, None),
                Err(reason) => (String::new(), DeliveryState::Failed, Some(reason)),
            };
            NewDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                message_id: m.id.clone(),
                subscriber_id: m.subscriber_id.clone(),
                channel,
                address,
                state,
                due_at: m.due_at(),
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(
        to: serde_json::Value,
        subscriber: Option<&str>,
        channels: Vec<Channel>,
    ) -> MessageRecord {
        MessageRecord {
            id: "m1".into(),
            sender: "admin".into(),
            idempotency_key: None,
            fingerprint: String::new(),
            recipient: to,
            subscriber_id: subscriber.map(str::to_owned),
            template: "t".into(),
            template_version: 1,
            event_type: None,
            data: json!({}),
            channels,
            send_at: Some(5_000),
            created_at: 1_000,
            expanded_at: None,
        }
    }

    fn subscriber() -> Subscriber {
        Subscriber {
            id: "u1".into(),
            email: Some("u1@example.com".into()),
            phone: None,
            push_token: None,
            webhook_url: None,
            timezone: None,
            quiet_start: None,
            quiet_end: None,
            created_by: "admin".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn subscribers_get_their_addresses_or_a_failed_delivery() {
        let m = message(
            json!({"subscriber": "u1"}),
            Some("u1"),
            vec![Channel::Email, Channel::Sms, Channel::InApp],
        );
        let s = subscriber();
        let planned = plan(&m, Some(&s));
        assert_eq!(planned.len(), 3);
        assert_eq!(planned[0].address, "u1@example.com");
        assert_eq!(planned[0].state, DeliveryState::Queued);
        assert_eq!(planned[0].due_at, 5_000);
        assert_eq!(planned[1].state, DeliveryState::Failed);
        assert!(
            planned[1]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("no sms"))
        );
        assert_eq!(planned[2].address, "u1");

        let gone = plan(&m, None);
        assert!(gone.iter().all(|d| d.state == DeliveryState::Failed));
    }

    #[test]
    fn inline_addresses_are_used() {
        let m = message(
            json!({"webhook": "https://h.example/x"}),
            None,
            vec![Channel::Webhook],
        );
        let planned = plan(&m, None);
        assert_eq!(planned[0].address, "https://h.example/x");
        assert_eq!(planned[0].state, DeliveryState::Queued);
    }
}
