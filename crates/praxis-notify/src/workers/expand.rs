//! Expansion: the `notify-expand` bus consumer turns accepted messages into delivery rows, one
//! per channel and address, due at `send_at` (or at once).
//!
//! It is idempotent: deliveries are unique on `(message_id, channel, address)`, so an event
//! handled twice (a redelivery after a crash) creates nothing new. This is also where
//! per-subscriber policy is applied ([`plan`], [`plan_broadcast`]): a channel or topic the
//! subscriber opted out of gives a `suppressed` delivery with its reason (never sent), quiet
//! hours move the due time to the end of the window (in the subscriber's time zone), and a
//! message to a topic fans out to the topic's subscribers as they are at expansion. A message
//! with a digest gets deliveries carrying its digest key, due at the accept time + window: the
//! store joins each to an open batch or opens one ([`crate::workers::digest`]).

use std::collections::{BTreeSet, HashMap};

use praxis_infra::InfraError;
use praxis_infra::bus::{Bus, ConsumerOptions, Event, HandlerError};

use crate::domain::channel::Channel;
use crate::domain::model::{DeliveryState, MessageRecord, NewDelivery, Subscriber, now_ms};
use crate::domain::quiet_hours::QuietHours;
use crate::store::Store;
use crate::workers::accept::{ACCEPTED_TOPIC, AcceptedEvent, EXPAND_GROUP, inline_address};
use crate::workers::dispatch::Wakers;

/// Topic members read per query at expansion.
const MEMBER_PAGE: u32 = 1_000;

/// Accept events expanded at once per process where writes run in parallel (PostgreSQL). Expansion is idempotent and
/// needs no order (each event's messages are independent; digest joins lock their batch), and
/// one at a time it is bound by one commit after another (about 400/s measured, D53). SQLite
/// has a single writer: concurrent expansions would only queue on its lock, so one at a time.
const EXPAND_CONCURRENCY_PARALLEL: usize = 16;

/// Subscribes the `notify-expand` group.
pub fn subscribe(bus: &Bus, store: Store, wakers: Wakers) -> Result<(), InfraError> {
    let concurrency = if store.db().backend().parallel_writes() {
        EXPAND_CONCURRENCY_PARALLEL
    } else {
        1
    };
    bus.subscribe_with(
        ACCEPTED_TOPIC,
        EXPAND_GROUP,
        ConsumerOptions { concurrency },
        move |event: Event| {
            let store = store.clone();
            let wakers = wakers.clone();
            async move { handle(&store, &wakers, &event).await }
        },
    )
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
    // The members of the topics broadcast to, as they are now.
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for m in &messages {
        let Some(topic) = m.broadcast_topic() else {
            continue;
        };
        if members.contains_key(topic) {
            continue;
        }
        let mut list: Vec<String> = Vec::new();
        loop {
            let page = store
                .topic_subscribers(topic, list.last().map(String::as_str), MEMBER_PAGE)
                .await?;
            let done = page.len() < MEMBER_PAGE as usize;
            list.extend(page);
            if done {
                break;
            }
        }
        ids.extend(list.iter().cloned());
        members.insert(topic.to_owned(), list);
    }
    ids.sort();
    ids.dedup();
    let subscribers: HashMap<String, Subscriber> = store
        .subscribers(&ids)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let now = now_ms();
    let mut deliveries = Vec::new();
    for m in &messages {
        if let Some(topic) = m.broadcast_topic() {
            let list: Vec<&Subscriber> = members
                .get(topic)
                .into_iter()
                .flatten()
                .filter_map(|id| subscribers.get(id))
                .collect();
            deliveries.extend(plan_broadcast(m, &list, now));
            continue;
        }
        let subscriber = m.subscriber_id.as_ref().and_then(|id| subscribers.get(id));
        deliveries.extend(plan(m, subscriber, now));
    }
    let expanded: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let created = store.expand(&expanded, &deliveries, now).await?;
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
/// message was accepted gives a delivery that is failed from the start, with the reason. For a
/// subscriber, its preferences and quiet hours apply (see [`for_subscriber`]); `now_ms` is the
/// expansion time.
pub fn plan(m: &MessageRecord, subscriber: Option<&Subscriber>, now_ms: i64) -> Vec<NewDelivery> {
    m.channels
        .iter()
        .map(|&channel| match (&m.subscriber_id, subscriber) {
            (Some(_), Some(s)) => match s.address(channel) {
                Some(address) => for_subscriber(m, s, channel, address, now_ms),
                None => failed(
                    m,
                    channel,
                    format!(
                        "subscriber {:?} has no {} address any more",
                        s.id,
                        channel.as_str()
                    ),
                ),
            },
            (Some(id), None) => failed(
                m,
                channel,
                format!("subscriber {id:?} was deleted before the message was sent"),
            ),
            (None, _) => match inline_address(&m.recipient, channel) {
                Some(address) => delivery(m, None, channel, address, DeliveryState::Queued, None),
                None => failed(
                    m,
                    channel,
                    format!("the message has no {} address", channel.as_str()),
                ),
            },
        })
        .collect()
}

/// The deliveries of a message to a topic: one per member and requested channel the member
/// has an address on (a member without one is skipped on that channel), with each member's
/// preferences and quiet hours.
pub fn plan_broadcast(m: &MessageRecord, members: &[&Subscriber], now_ms: i64) -> Vec<NewDelivery> {
    members
        .iter()
        .flat_map(|s| {
            m.channels.iter().filter_map(move |&channel| {
                s.address(channel)
                    .map(|address| for_subscriber(m, s, channel, address, now_ms))
            })
        })
        .collect()
}

/// A subscriber's delivery on `channel`: `suppressed` when it opted out of the channel (or of
/// the message's topic on it), else queued, due at the message's due time (with a digest: the
/// accept time + the digest window, and the digest key set) or, when that falls in the
/// subscriber's quiet hours, at the end of the window.
pub fn for_subscriber(
    m: &MessageRecord,
    s: &Subscriber,
    channel: Channel,
    address: &str,
    now_ms: i64,
) -> NewDelivery {
    if let Some(reason) = s.preferences.opted_out(channel, m.topic.as_deref()) {
        return delivery(
            m,
            Some(&s.id),
            channel,
            address.to_owned(),
            DeliveryState::Suppressed,
            Some(reason),
        );
    }
    let mut d = delivery(
        m,
        Some(&s.id),
        channel,
        address.to_owned(),
        DeliveryState::Queued,
        None,
    );
    if let Some(digest) = &m.digest {
        d.due_at = m.created_at.saturating_add(digest.window_ms);
        d.digest_key = Some(digest.key.clone());
    }
    if let Some(release) = quiet_hours(s).and_then(|q| q.release_at(d.due_at.max(now_ms))) {
        d.due_at = release;
    }
    d
}

/// The subscriber's quiet hours, when set, in its time zone (UTC without one; stored values
/// were checked when written; a value that no longer parses is ignored with a warning).
fn quiet_hours(s: &Subscriber) -> Option<QuietHours> {
    let (start, end, tz) = (
        s.quiet_start.as_deref()?,
        s.quiet_end.as_deref()?,
        s.timezone.as_deref().unwrap_or("UTC"),
    );
    QuietHours::parse(start, end, tz)
        .map_err(|e| tracing::warn!(subscriber = %s.id, error = %e, "quiet hours ignored"))
        .ok()
}

fn delivery(
    m: &MessageRecord,
    subscriber_id: Option<&str>,
    channel: Channel,
    address: String,
    state: DeliveryState,
    reason: Option<String>,
) -> NewDelivery {
    NewDelivery {
        id: uuid::Uuid::now_v7().to_string(),
        message_id: m.id.clone(),
        subscriber_id: subscriber_id.map(str::to_owned),
        channel,
        address,
        state,
        due_at: m.due_at(),
        reason,
        digest_key: None,
    }
}

fn failed(m: &MessageRecord, channel: Channel, reason: String) -> NewDelivery {
    delivery(
        m,
        m.subscriber_id.as_deref(),
        channel,
        String::new(),
        DeliveryState::Failed,
        Some(reason),
    )
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
            topic: None,
            send_at: Some(5_000),
            created_at: 1_000,
            expanded_at: None,
            digest: None,
            dedupe_window_ms: None,
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
            preferences: Default::default(),
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
        let planned = plan(&m, Some(&s), 0);
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

        let gone = plan(&m, None, 0);
        assert!(gone.iter().all(|d| d.state == DeliveryState::Failed));
    }

    #[test]
    fn inline_addresses_are_used() {
        let m = message(
            json!({"webhook": "https://h.example/x"}),
            None,
            vec![Channel::Webhook],
        );
        let planned = plan(&m, None, 0);
        assert_eq!(planned[0].address, "https://h.example/x");
        assert_eq!(planned[0].state, DeliveryState::Queued);
    }

    #[test]
    fn opt_outs_suppress_and_quiet_hours_delay() {
        let mut m = message(
            json!({"subscriber": "u1"}),
            Some("u1"),
            vec![Channel::Email, Channel::InApp],
        );
        m.topic = Some("marketing".into());
        let mut s = subscriber();
        s.preferences = serde_json::from_value(json!({"topics": {"marketing": {"email": false}}}))
            .expect("preferences");
        let planned = plan(&m, Some(&s), 0);
        assert_eq!(planned[0].state, DeliveryState::Suppressed);
        assert!(
            planned[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("marketing"))
        );
        assert_eq!(planned[1].state, DeliveryState::Queued);

        // 2026-01-15T23:30:00Z is inside 22:00-07:00 UTC: due at 2026-01-16T07:00:00Z.
        let due = 1_768_519_800_000;
        m.send_at = Some(due);
        m.topic = None;
        s.timezone = Some("UTC".into());
        s.quiet_start = Some("22:00".into());
        s.quiet_end = Some("07:00".into());
        let planned = plan(&m, Some(&s), 0);
        assert_eq!(planned[0].state, DeliveryState::Queued);
        assert_eq!(planned[0].due_at, 1_768_546_800_000);
        // Outside the window: unchanged.
        m.send_at = Some(due - 3 * 3_600_000);
        assert_eq!(plan(&m, Some(&s), 0)[0].due_at, due - 3 * 3_600_000);
    }

    #[test]
    fn digests_are_due_after_the_window_unless_suppressed() {
        let mut m = message(
            json!({"subscriber": "u1"}),
            Some("u1"),
            vec![Channel::Email, Channel::InApp],
        );
        m.send_at = None;
        m.digest = Some(crate::domain::model::DigestSpec {
            window_ms: 60_000,
            key: "comments".into(),
        });
        let mut s = subscriber();
        s.preferences =
            serde_json::from_value(json!({"channels": {"email": false}})).expect("preferences");
        let planned = plan(&m, Some(&s), 2_000);
        assert_eq!(planned[0].state, DeliveryState::Suppressed);
        assert_eq!(planned[0].digest_key, None);
        assert_eq!(planned[1].state, DeliveryState::Queued);
        assert_eq!(planned[1].due_at, 61_000);
        assert_eq!(planned[1].digest_key.as_deref(), Some("comments"));
    }

    #[test]
    fn broadcasts_fan_out_to_members_with_an_address() {
        let mut m = message(
            json!({"topic": "news"}),
            None,
            vec![Channel::Email, Channel::InApp],
        );
        m.topic = Some("news".into());
        let a = subscriber();
        let mut b = subscriber();
        b.id = "u2".into();
        b.email = None;
        let planned = plan_broadcast(&m, &[&a, &b], 0);
        let got: Vec<(&str, &str)> = planned
            .iter()
            .map(|d| (d.subscriber_id.as_deref().unwrap_or(""), d.address.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("u1", "u1@example.com"), ("u1", "u1"), ("u2", "u2")]
        );
    }
}
