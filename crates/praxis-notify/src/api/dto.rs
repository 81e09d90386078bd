//! Request and response bodies of the notification API (serde + OpenAPI schemas). Times are
//! RFC 3339 UTC strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use praxis_http::Problem;

use crate::domain::channel::Channel;
use crate::domain::model::{
    AttemptRecord, DeliveryRecord, DeliveryState, MessageRecord, Subscriber, rfc3339,
};
use crate::domain::template::TemplateSource;
use crate::store::templates::TemplateVersion;

/// Answer of an accepted send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendAccepted {
    /// Message id (UUIDv7): `GET /api/v1/notify/messages/{id}`.
    pub id: String,
}

/// Body of `POST /api/v1/notify/send/bulk`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSend {
    /// 1 to 1000 send requests, each like the body of `POST /api/v1/notify/send`
    /// (`SendRequest`). Each item is checked on its own: any JSON value is taken, and a bad
    /// item fails alone (its result says why), so the items' schema is open.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    pub messages: Vec<Value>,
}

/// The result of one bulk item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkSendItem {
    /// Position in the request.
    pub index: usize,
    /// What a single send would have answered: 202 (accepted), 200 (duplicate), 400, 422.
    pub status: u16,
    /// The message id when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The problem when not accepted (fields named `messages[i].field`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// Answer of a bulk send.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkSendResult {
    /// New messages accepted.
    pub accepted: usize,
    /// Messages accepted before (same idempotency key).
    pub duplicates: usize,
    /// Items refused.
    pub failed: usize,
    /// One result per item, in request order.
    pub results: Vec<BulkSendItem>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    /// Attempt number, from 1.
    pub n: i64,
    /// When it ended.
    pub at: String,
    /// Provider that handled it (`webhook`, `smtp`, `eml-file`, `in_app`, `render`, ...).
    pub provider: String,
    /// Whether the provider accepted the message.
    pub ok: bool,
    /// What the provider answered, or the error.
    pub detail: String,
    /// How long it took, ms.
    pub duration_ms: i64,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            n: a.n,
            at: rfc3339(a.at),
            provider: a.provider.clone(),
            ok: a.ok,
            detail: a.detail.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

/// One delivery (a message on one channel to one address).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Delivery id: the receiver's deduplication key (`webhook-id`, the email's
    /// `Message-ID`).
    pub id: String,
    /// Its message.
    pub message_id: String,
    /// Channel.
    pub channel: Channel,
    /// Address on that channel.
    pub address: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// While queued: when it is due; while sending: when its lease ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// When it was first due.
    pub scheduled_at: String,
    /// Provider of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Error of the last failed attempt, or why it failed or was suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the provider accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// Last change.
    pub updated_at: String,
    /// The digest key, on a digest batch and on a delivery that joined one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_key: Option<String>,
    /// On a digest batch: how many events it carries (its own message's included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_count: Option<i64>,
    /// On a `digested` delivery: the id of the batch delivery it joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_of: Option<String>,
    /// On a `digested` delivery: the message of the batch it joined (`GET
    /// /api/v1/notify/messages/{id}` shows how the batch went).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_message_id: Option<String>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

impl DeliveryView {
    /// The view of `d` with its attempts.
    pub fn new(d: &DeliveryRecord, attempts: &[AttemptRecord]) -> Self {
        Self {
            id: d.id.clone(),
            message_id: d.message_id.clone(),
            channel: d.channel,
            address: d.address.clone(),
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: (!d.state.is_final()).then(|| rfc3339(d.next_attempt_at)),
            scheduled_at: rfc3339(d.scheduled_at),
            provider: d.provider.clone(),
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at.map(rfc3339),
            updated_at: rfc3339(d.updated_at),
            digest_key: d.digest_key.clone(),
            digest_count: (d.digest_key.is_some() && d.digest_of.is_none())
                .then_some(d.digest_count),
            digest_of: d.digest_of.clone(),
            digest_message_id: None,
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(AttemptView::from)
                .collect(),
        }
    }
}

/// A message with every delivery and attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    /// Message id.
    pub id: String,
    /// Overall state: `queued` until every delivery is final (`sending` while one is in
    /// flight), then `delivered`, `failed` (at least one failed), `digested` (every delivery
    /// sent went into a digest batch) or `suppressed`.
    pub state: DeliveryState,
    /// The recipient as sent: `{"subscriber": id}` or addresses.
    #[schema(value_type = Object)]
    pub to: Value,
    /// Requested channels.
    pub channels: Vec<Channel>,
    /// Template name.
    pub template: String,
    /// Template version used.
    pub version: i64,
    /// Webhook event type, when chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Template data.
    #[schema(value_type = Object)]
    pub data: Value,
    /// When it is (or was) to be sent, when scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// The sender's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Its digest, when sent in digest mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::workers::digest::DigestRequest>,
    /// Its dedupe window, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe_window: Option<i64>,
    /// When it was accepted.
    pub created_at: String,
    /// Deliveries (empty until the message is expanded, a moment after acceptance).
    pub deliveries: Vec<DeliveryView>,
}

impl MessageView {
    /// The view of `m` with its deliveries and attempts.
    pub fn new(
        m: &MessageRecord,
        deliveries: &[DeliveryRecord],
        attempts: &[AttemptRecord],
    ) -> Self {
        Self {
            id: m.id.clone(),
            state: overall_state(deliveries),
            to: m.recipient.clone(),
            channels: m.channels.clone(),
            template: m.template.clone(),
            version: m.template_version,
            event_type: m.event_type.clone(),
            data: m.data.clone(),
            send_at: m.send_at.map(rfc3339),
            idempotency_key: m.idempotency_key.clone(),
            digest: m
                .digest
                .as_ref()
                .map(|d| crate::workers::digest::DigestRequest {
                    window: d.window_ms / 1000,
                    key: Some(d.key.clone()),
                }),
            dedupe_window: m.dedupe_window_ms.map(|ms| ms / 1000),
            created_at: rfc3339(m.created_at),
            deliveries: deliveries
                .iter()
                .map(|d| DeliveryView::new(d, attempts))
                .collect(),
        }
    }
}

/// The state of a message from its deliveries' states.
pub fn overall_state(deliveries: &[DeliveryRecord]) -> DeliveryState {
    let has = |s: DeliveryState| deliveries.iter().any(|d| d.state == s);
    if deliveries.is_empty() || has(DeliveryState::Queued) && !has(DeliveryState::Sending) {
        DeliveryState::Queued
    } else if has(DeliveryState::Sending) {
        DeliveryState::Sending
    } else if has(DeliveryState::Failed) {
        DeliveryState::Failed
    } else if has(DeliveryState::Delivered) {
        DeliveryState::Delivered
    } else if has(DeliveryState::Digested) {
        DeliveryState::Digested
    } else {
        DeliveryState::Suppressed
    }
}

/// Body of `POST /api/v1/notify/templates`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    /// Template name: 1 to 64 of `a-z 0-9 _ - .`, starting with a letter or digit.
    #[schema(example = "order-shipped", pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
    pub name: String,
    /// Sources per channel: `{"email": {"subject": .., "text": .., "html": ..}, "webhook":
    /// {"text": ..}, "sms": {"text": ..}, "push": {"subject": .., "text": ..}, "in_app":
    /// {"subject": .., "text": ..}}` (minijinja syntax), at least one channel.
    #[schema(value_type = TemplateChannels)]
    pub channels: Value,
    /// Data the template must render with (checked at creation: a missing variable is a 400
    /// naming the part, line and column).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub example_data: Option<Value>,
}

/// One version of a template.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateView {
    /// Name.
    pub name: String,
    /// Version (versions are immutable; a send uses the latest unless it names one).
    pub version: i64,
    /// Sources per channel.
    pub channels: BTreeMap<Channel, TemplateSource>,
    /// Top-level variables the parts read: a send's `data` must have each.
    pub variables: Vec<String>,
    /// Example data given at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub example_data: Option<Value>,
    /// Who created the version.
    pub created_by: String,
    /// When.
    pub created_at: String,
}

impl From<&TemplateVersion> for TemplateView {
    fn from(t: &TemplateVersion) -> Self {
        Self {
            name: t.name.clone(),
            version: t.version,
            channels: t.sources.clone(),
            variables: t.variables(),
            example_data: t.example_data.clone(),
            created_by: t.created_by.clone(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// A page of templates (latest versions).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplatePage {
    /// Templates in name order.
    pub items: Vec<TemplateView>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Quiet hours of a subscriber: a daily window in its time zone (may wrap midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursDto {
    /// Start, `HH:MM` local time (not the same as `end`).
    #[schema(
        example = "22:00",
        pattern = "^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*([01][0-9]|2[0-3]):[0-5][0-9][\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub start: String,
    /// End, `HH:MM` local time.
    #[schema(
        example = "07:00",
        pattern = "^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*([01][0-9]|2[0-3]):[0-5][0-9][\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub end: String,
}

/// Body of `PUT /api/v1/notify/subscribers/{id}`: the subscriber's addresses (absent = none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSubscriber {
    /// Email address, at most 254 characters.
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Phone number, E.164 (`+` and 8 to 15 digits; spaces, dashes, dots and brackets are
    /// removed first).
    #[serde(default)]
    #[schema(
        pattern = "^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[ .()-]*\\+[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub phone: Option<String>,
    /// Push token: 1 to 4096 visible ASCII characters.
    #[serde(default)]
    #[schema(
        pattern = "^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[!-~]{1,4096}[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub push_token: Option<String>,
    /// Webhook URL (http or https, a DNS name; at most 2048 characters).
    #[serde(default)]
    #[schema(
        pattern = "^[hH][tT][tT][pP][sS]?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$",
        max_length = 2048
    )]
    pub webhook_url: Option<String>,
    /// IANA time zone (for quiet hours; UTC when absent).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Quiet hours, in `timezone` (UTC when there is none).
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursDto>,
}

/// A subscriber.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriberView {
    /// Id.
    pub id: String,
    /// Email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Push token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
    /// Webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// IANA time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Quiet hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHoursDto>,
    /// When it was created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        Self {
            id: s.id.clone(),
            email: s.email.clone(),
            phone: s.phone.clone(),
            push_token: s.push_token.clone(),
            webhook_url: s.webhook_url.clone(),
            timezone: s.timezone.clone(),
            quiet_hours: match (&s.quiet_start, &s.quiet_end) {
                (Some(start), Some(end)) => Some(QuietHoursDto {
                    start: start.clone(),
                    end: end.clone(),
                }),
                _ => None,
            },
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
        }
    }
}

/// A page of subscribers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriberPage {
    /// Subscribers in id order.
    pub items: Vec<SubscriberView>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/notify/dead-letters`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// Only this channel.
    #[param(inline, value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50); outside that range is 400.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A page of dead letters (failed deliveries), most recently failed first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterPage {
    /// Failed deliveries with their attempts.
    pub items: Vec<DeliveryView>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The dispatch state of this process.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvidersView {
    /// One entry per enabled channel.
    pub channels: Vec<crate::workers::dispatch::ChannelStatus>,
}

/// A subscriber id (OpenAPI only): 1 to 128 of `A-Z a-z 0-9 _ - . @ : +`.
#[derive(ToSchema)]
#[schema(pattern = "^[A-Za-z0-9_.@:+-]{1,128}$")]
#[expect(dead_code, reason = "describes subscriber ids in the OpenAPI document")]
pub struct SubscriberId(String);

/// A template name (OpenAPI only): 1 to 64 of `a-z 0-9 _ - .`, starting with a letter or digit.
#[derive(ToSchema)]
#[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
#[expect(dead_code, reason = "describes template names in the OpenAPI document")]
pub struct TemplateName(String);

/// The sources of a template per channel (OpenAPI only): at least one channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[expect(
    dead_code,
    reason = "describes CreateTemplate::channels in the OpenAPI document"
)]
pub struct TemplateChannels {
    #[schema(value_type = TemplateSource, required = false)]
    email: Option<TemplateSource>,
    #[schema(value_type = TemplateSource, required = false)]
    webhook: Option<TemplateSource>,
    #[schema(value_type = TemplateSource, required = false)]
    sms: Option<TemplateSource>,
    #[schema(value_type = TemplateSource, required = false)]
    push: Option<TemplateSource>,
    #[schema(value_type = TemplateSource, required = false)]
    in_app: Option<TemplateSource>,
}

/// The recipient of a send (`to`): a subscriber id, `{"subscriber": id}`, `{"topic": key}`, or
/// an object of 1 to 4 addresses.
pub fn recipient_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{Schema, Type};
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder};
    let text = |pattern: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern.to_owned()))
    };
    let subscriber = || text("^[A-Za-z0-9_.@:+-]{1,128}$");
    let one = |name: &str, value: ObjectBuilder| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(name, value)
            .required(name)
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
    };
    let addresses = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "email",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Email,
                )))
                .max_length(Some(254)),
        )
        .property("webhook", text("^[hH][tT][tT][pP][sS]?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$").max_length(Some(2048)))
        .property(
            "phone",
            text("^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[ .()-]*\\+[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"),
        )
        .property("push_token", text("^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[!-~]{1,4096}[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"))
        .min_properties(Some(1))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    Schema::OneOf(
        OneOfBuilder::new()
            .item(subscriber())
            .item(one("subscriber", subscriber()))
            .item(one("topic", text("^[A-Za-z0-9_.:-]{1,128}$")))
            .item(addresses)
            .build(),
    )
}
