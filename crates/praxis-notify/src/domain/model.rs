//! The records of the notification service, as stored and as the pipeline passes them on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::channel::Channel;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its `next_attempt_at` (first attempt, retry or `send_at`).
    Queued,
    /// Leased by a dispatcher: an attempt is running (or its process died and the lease will
    /// expire).
    Sending,
    /// The provider accepted it.
    Delivered,
    /// Permanently failed or out of attempts: a dead letter (can be requeued).
    Failed,
    /// Not sent on purpose (preferences); recorded so the sender can see why.
    Suppressed,
    /// Joined a digest batch: sent as part of the batch delivery `digest_of`.
    Digested,
}

impl DeliveryState {
    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Suppressed => "suppressed",
            DeliveryState::Digested => "digested",
        }
    }

    /// Parses [`DeliveryState::as_str`].
    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Queued,
            DeliveryState::Sending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Suppressed,
            DeliveryState::Digested,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether nothing more will happen to the delivery (unless a dead letter is requeued).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered
                | DeliveryState::Failed
                | DeliveryState::Suppressed
                | DeliveryState::Digested
        )
    }
}

/// A subscriber: someone who can be notified, with an address per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Caller-chosen id (the application's user id).
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number (E.164).
    pub phone: Option<String>,
    /// Push token.
    pub push_token: Option<String>,
    /// Webhook URL.
    pub webhook_url: Option<String>,
    /// IANA time zone, for quiet hours.
    pub timezone: Option<String>,
    /// Start of quiet hours, `HH:MM` local time.
    pub quiet_start: Option<String>,
    /// End of quiet hours, `HH:MM` local time.
    pub quiet_end: Option<String>,
    /// Opt-outs per channel and topic.
    pub preferences: Preferences,
    /// Principal that created it.
    pub created_by: String,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl Subscriber {
    /// The subscriber's address on `channel` (in-app: its id).
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Webhook => self.webhook_url.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            Channel::Push => self.push_token.as_deref(),
            Channel::InApp => Some(&self.id),
        }
    }
}

/// A subscriber's preferences: which channels it accepts, overall and per topic. A channel
/// not mentioned is accepted. The most specific setting wins: `topics.<topic>.<channel>` for a
/// message of that topic, else `channels.<channel>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Per channel: `false` opts out.
    #[serde(default)]
    pub channels: BTreeMap<Channel, bool>,
    /// Per topic, per channel: `false` opts out of that topic on that channel.
    #[serde(default)]
    pub topics: BTreeMap<String, BTreeMap<Channel, bool>>,
}

impl Preferences {
    /// Why a message of `topic` on `channel` is not to be sent; `None` when it is accepted.
    pub fn opted_out(&self, channel: Channel, topic: Option<&str>) -> Option<String> {
        if let Some(t) = topic
            && let Some(&on) = self.topics.get(t).and_then(|c| c.get(&channel))
        {
            return (!on).then(|| {
                format!(
                    "the subscriber opted out of {} for topic {t:?}",
                    channel.as_str()
                )
            });
        }
        match self.channels.get(&channel) {
            Some(false) => Some(format!("the subscriber opted out of {}", channel.as_str())),
            _ => None,
        }
    }

    /// Whether nothing is set (stored as NULL).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.topics.is_empty()
    }
}

/// A topic: a named list of subscribers that a send can address (`to: {"topic": key}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Caller-chosen key.
    pub key: String,
    /// Display name.
    pub name: Option<String>,
    /// Principal that created it.
    pub created_by: String,
    /// Creation time, unix ms.
    pub created_at: i64,
}

/// One stored version of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRecord {
    /// Template name.
    pub name: String,
    /// Version, from 1.
    pub version: i64,
    /// Per-channel sources: a JSON object `{channel: {subject, text, html}}`.
    pub sources: Value,
    /// Example data the template was checked with, if given.
    pub example_data: Option<Value>,
    /// Principal that created the version.
    pub created_by: String,
    /// Creation time, unix ms.
    pub created_at: i64,
}

/// An accepted message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// UUIDv7.
    pub id: String,
    /// Principal that sent it (owner id).
    pub sender: String,
    /// The sender's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// Hash of the request, to tell a retry from a different request with the same key.
    pub fingerprint: String,
    /// The `to` of the request, normalized: `{"subscriber": id}` or addresses by channel.
    pub recipient: Value,
    /// The subscriber, when the recipient is one.
    pub subscriber_id: Option<String>,
    /// Template name.
    pub template: String,
    /// Template version used.
    pub template_version: i64,
    /// Event type of webhooks (`None`: the template name).
    pub event_type: Option<String>,
    /// Template data (a JSON object).
    pub data: Value,
    /// Requested channels.
    pub channels: Vec<Channel>,
    /// The topic the message is about (preferences refer to it); for a broadcast to a topic
    /// (`recipient` `{"topic": key}`), that topic unless the request named another.
    pub topic: Option<String>,
    /// When to send, unix ms (`None`: at once).
    pub send_at: Option<i64>,
    /// When it was accepted, unix ms.
    pub created_at: i64,
    /// When its deliveries were created, unix ms.
    pub expanded_at: Option<i64>,
    /// Digest mode: its deliveries join (or open) a batch ([`crate::workers::digest`]).
    pub digest: Option<DigestSpec>,
    /// Its dedupe window, ms ([`crate::domain::dedupe`]).
    pub dedupe_window_ms: Option<i64>,
}

impl MessageRecord {
    /// The topic whose subscribers receive it, when it is a broadcast (`to: {"topic": key}`).
    pub fn broadcast_topic(&self) -> Option<&str> {
        self.recipient.get("topic").and_then(Value::as_str)
    }

    /// When its deliveries become due: `send_at`, or the accept time.
    pub fn due_at(&self) -> i64 {
        self.send_at.unwrap_or(self.created_at).max(self.created_at)
    }
}

/// A delivery to create when a message is expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// UUIDv7: the receiver's deduplication key.
    pub id: String,
    /// Its message.
    pub message_id: String,
    /// The subscriber, when the recipient is one.
    pub subscriber_id: Option<String>,
    /// Channel.
    pub channel: Channel,
    /// Address on that channel (empty when the subscriber has none: then `state` is failed).
    pub address: String,
    /// Initial state: queued, or failed / suppressed with a reason.
    pub state: DeliveryState,
    /// When it is due, unix ms.
    pub due_at: i64,
    /// Why it is failed or suppressed from the start.
    pub reason: Option<String>,
    /// The digest key, when the message is digested: a queued delivery then joins an open
    /// batch or opens one.
    pub digest_key: Option<String>,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// UUIDv7.
    pub id: String,
    /// Its message.
    pub message_id: String,
    /// The subscriber, when the recipient is one.
    pub subscriber_id: Option<String>,
    /// Channel.
    pub channel: Channel,
    /// Address.
    pub address: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    /// Attempts made before the last requeue (they do not count against the maximum).
    pub retry_base: i64,
    /// When it was first due, unix ms.
    pub scheduled_at: i64,
    /// When it is due next (while queued) or when its lease ends (while sending), unix ms.
    pub next_attempt_at: i64,
    /// Provider of the last attempt.
    pub provider: Option<String>,
    /// Error of the last failed attempt, or why it is failed or suppressed.
    pub last_error: Option<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// When the provider accepted it, unix ms.
    pub delivered_at: Option<i64>,
    /// The digest key of a batch (or of a delivery that joined one).
    pub digest_key: Option<String>,
    /// Of a batch: how many events it carries (0 for other deliveries).
    pub digest_count: i64,
    /// Of a `digested` delivery: the batch delivery it joined.
    pub digest_of: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// Its delivery.
    pub delivery_id: String,
    /// Attempt number, from 1.
    pub n: i64,
    /// When it ended, unix ms.
    pub at: i64,
    /// Provider that handled it.
    pub provider: String,
    /// Whether the provider accepted the message.
    pub ok: bool,
    /// What the provider answered, or the error.
    pub detail: String,
    /// How long it took, ms.
    pub duration_ms: i64,
}

/// The clock of every table: unix milliseconds (UTC).
pub use praxis_infra::sql::now_ms;

/// A unix-millisecond time as RFC 3339 (UTC, milliseconds).
pub use praxis_kit::text::rfc3339_ms as rfc3339;

/// The digest of an accepted message, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSpec {
    /// Window, ms.
    pub window_ms: i64,
    /// Batch key.
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            DeliveryState::Queued,
            DeliveryState::Sending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Suppressed,
            DeliveryState::Digested,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("lost"), None);
        assert!(DeliveryState::Failed.is_final() && !DeliveryState::Sending.is_final());
    }

    #[test]
    fn the_most_specific_preference_wins() {
        let p: Preferences = serde_json::from_value(serde_json::json!({
            "channels": {"email": false, "sms": true},
            "topics": {"marketing": {"sms": false}, "security": {"email": true}}
        }))
        .expect("preferences");
        assert!(p.opted_out(Channel::Email, None).is_some());
        assert!(p.opted_out(Channel::Email, Some("marketing")).is_some());
        assert!(p.opted_out(Channel::Email, Some("security")).is_none());
        assert!(p.opted_out(Channel::Sms, None).is_none());
        assert!(
            p.opted_out(Channel::Sms, Some("marketing"))
                .is_some_and(|r| r.contains("marketing"))
        );
        assert!(p.opted_out(Channel::Webhook, Some("marketing")).is_none());
        assert!(Preferences::default().is_empty());
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
