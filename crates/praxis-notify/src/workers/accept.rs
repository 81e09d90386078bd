//! Accepting send requests: validate everything that can be checked before queueing (template,
//! channels, recipient, addresses, data), deduplicate on the sender's idempotency key, and
//! write the message rows together with one `notify.accepted` bus event in one transaction.
//!
//! The bus is the durable accept queue: the event commits with the messages or not at all, and
//! the expander ([`crate::workers::expand`]) turns it into deliveries. A retried request with the same
//! idempotency key finds the first message (same id, 200 instead of 202); the same key with a
//! different request is a 422. A request with a `dedupe_window` (and no key) is a duplicate of
//! the same sender's last message to the same recipient with the same template accepted within
//! the window ([`crate::domain::dedupe`]); one with a `digest` is checked to render as a batch
//! ([`crate::workers::digest`]).
//!
//! **Group commit.** [`Accepter::accept`] does not open a transaction of its own: it queues
//! the request's messages for a writer task and awaits its answer. A writer takes one request,
//! then every other request already queued (up to [`MAX_BATCH_MESSAGES`] messages, no waiting
//! for more: batches form by themselves under load, an idle server writes each request at
//! once), writes them all in one transaction (each request its own `notify.accepted` event,
//! enqueued under that request's trace context) and answers each request after the commit.
//! If the batch transaction fails, each of its requests is written again in a transaction of
//! its own, so one request's failure fails only that request. SQLite has one writer (it has
//! one write lock anyway); PostgreSQL has [`PG_WRITERS`], each on its own connection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::http::StatusCode;
use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;
use praxis_infra::bus::Bus;
use praxis_infra::trace::TraceContext;
use praxis_infra::{Backend, trace};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{Mutex, Notify, OwnedRwLockWriteGuard, RwLock, mpsc, oneshot};

use crate::domain::address;
use crate::domain::channel::Channel;
use crate::domain::dedupe::{self, Window};
use crate::domain::model::{DigestSpec, MessageRecord, Subscriber};
use crate::settings::NotifySettings;
use crate::store::templates::{TemplateVersion, Templates};
use crate::store::{Inserted, Store};
use crate::workers::digest::{self, DigestRequest};

/// Topic of the accept events.
pub const ACCEPTED_TOPIC: &str = "notify.accepted";
/// Consumer group that expands accepted messages into deliveries.
pub const EXPAND_GROUP: &str = "notify-expand";
/// Longest idempotency key.
pub const MAX_KEY_LEN: usize = 255;
/// Longest event type.
pub const MAX_EVENT_TYPE: usize = 128;
/// Longest topic key.
pub const MAX_TOPIC_KEY: usize = 128;
/// Most messages one group commit writes (a single larger request is written alone).
pub const MAX_BATCH_MESSAGES: usize = 1000;
/// Accept writers on PostgreSQL, each committing its own batches on its own connection.
pub const PG_WRITERS: usize = 4;

/// Checks a topic key: 1 to 128 of `A-Z a-z 0-9 _ - . :`.
pub fn topic_key(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_TOPIC_KEY
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "must be 1 to {MAX_TOPIC_KEY} of A-Z a-z 0-9 _ - . : (got {:?})",
            text.chars().take(40).collect::<String>()
        ))
    }
}

/// Payload of a `notify.accepted` event: the messages accepted in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedEvent {
    /// Message ids.
    pub messages: Vec<String>,
}

/// A send request (one message).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The recipient: a subscriber id (`"user-42"`), `{"subscriber": "user-42"}`, a topic
    /// (`{"topic": "news"}`: every subscriber of the topic at expansion), or addresses
    /// `{"email": "..", "webhook": "https://..", "phone": "+1..", "push_token": ".."}`.
    #[schema(schema_with = crate::api::dto::recipient_schema, example = json!("user-42"))]
    pub to: Value,
    /// Channels to send on (`email`, `webhook`, `sms`, `push`, `in_app`; one named twice
    /// counts once). Default: every channel the template has a part for and the recipient has
    /// an address on.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Channel>>, min_items = 1)]
    pub channels: Option<Vec<String>>,
    /// Template name.
    #[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
    pub template: String,
    /// Template version; default the latest.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i64>,
    /// Template data: an object with every variable the template reads.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Deduplication key of the sender: the same key again returns the first message.
    /// (The `Idempotency-Key` header works as well.)
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// When to send (RFC 3339); default at once.
    #[serde(default)]
    #[schema(example = "2026-12-01T09:00:00Z", format = DateTime)]
    pub send_at: Option<String>,
    /// Webhook event type (`type` of the payload); default the template name.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub event_type: Option<String>,
    /// What the message is about, for the subscribers' preferences (`topics.<topic>` opts out
    /// of it); default the topic sent to, if any.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub topic: Option<String>,
    /// Digest mode (subscriber recipients only; not with `send_at`): events with the same key
    /// for the subscriber within `window` seconds of the first become one message per channel,
    /// rendered with the latest event's data plus `digest: {count, events}`.
    #[serde(default)]
    pub digest: Option<DigestRequest>,
    /// Seconds (1 to 604800; not with an idempotency key): while a message from this sender to
    /// the same recipient with the same template was accepted with a dedupe window less than
    /// this long ago, nothing is queued and the answer is 200 with that message's id.
    #[serde(default)]
    #[schema(example = 300, minimum = 1, maximum = 604_800)]
    pub dedupe_window: Option<i64>,
}

/// The outcome of one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Message id.
    pub id: String,
    /// Whether it was accepted before (same idempotency key, or within its dedupe window).
    pub duplicate: bool,
}

impl Accepted {
    /// 202 for a new message, 200 for a duplicate.
    pub fn status(&self) -> StatusCode {
        if self.duplicate {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        }
    }
}

/// What validation needs from the database, fetched once per request (or bulk).
#[derive(Debug, Default)]
pub struct Lookups {
    subscribers: HashMap<String, Subscriber>,
    templates: HashMap<(String, Option<i64>), Option<Arc<TemplateVersion>>>,
    topics: HashSet<String>,
}

/// Accepts messages. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Accepter {
    validator: Validator,
    group: Arc<Group>,
}

/// Checks send requests against the settings and what the database holds. Cheap to clone.
#[derive(Clone, Debug)]
struct Validator {
    store: Store,
    templates: Templates,
    settings: Arc<NotifySettings>,
}

/// One send request of a [`Submission`], as it came.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The request.
    pub request: SendRequest,
    /// The `Idempotency-Key` header of a single send.
    pub header_key: Option<String>,
    /// What field errors are prefixed with (`messages[3].` in a bulk send, else empty).
    pub prefix: String,
}

/// Send requests of one sender, validated and written by a writer (see [`Accepter::send`]).
#[derive(Debug, Clone)]
pub struct Submission {
    /// Who sends (the token's subject).
    pub sender: String,
    /// When the requests arrived (their `created_at`, and the base of relative checks).
    pub now_ms: i64,
    /// The requests, answered in this order.
    pub requests: Vec<Pending>,
}

/// The answer to one queued request: its per-message results, or why its transaction failed.
type Answer = Result<Vec<Result<Accepted, Problem>>, InfraError>;

/// What a queued request holds.
enum Work {
    /// Messages already validated ([`Accepter::accept`]).
    Messages(Vec<MessageRecord>),
    /// Requests the writer validates, with what they name read inside its transaction.
    Requests(Submission),
}

/// One send request (single or bulk) waiting for a writer.
struct Job {
    work: Work,
    /// The trace context of the request, stored with its bus event.
    trace: Option<TraceContext>,
    reply: oneshot::Sender<Answer>,
}

/// The accepters' side of the group commit: the queue to the writers and what tests and
/// operators can see of it. The writers hold only [`GroupStats`], so they stop when the last
/// accepter is dropped.
#[derive(Debug)]
struct Group {
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<GroupStats>,
}

/// Counters shared by the accepters and the writers.
#[derive(Debug, Default)]
struct GroupStats {
    /// Requests queued and not yet taken into a batch.
    queued: AtomicUsize,
    /// Signalled whenever `queued` grows.
    queued_changed: Notify,
    /// Held for writing by [`Accepter::hold_writes`]: writers take no batch meanwhile.
    hold: Arc<RwLock<()>>,
    /// Batch transactions committed.
    batches: AtomicU64,
    /// Requests committed in them.
    requests: AtomicU64,
}

/// What the group commit has done so far (see [`Accepter::batch_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Batch transactions committed.
    pub batches: u64,
    /// Requests committed in them.
    pub requests: u64,
}

/// The recipient of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum To {
    Subscriber(String),
    Topic(String),
    Addresses(BTreeMap<Channel, String>),
}

/// The key of an inline address in `to`, per channel.
fn address_key(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Webhook => "webhook",
        Channel::Sms => "phone",
        Channel::Push => "push_token",
        Channel::InApp => "subscriber",
    }
}

/// The address of `channel` in a stored recipient (`{"email": ..}`); `None` for subscribers.
pub fn inline_address(recipient: &Value, channel: Channel) -> Option<String> {
    if channel == Channel::InApp {
        return None;
    }
    recipient
        .get(address_key(channel))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn parse_to(v: &Value, prefix: &str) -> Result<To, Vec<FieldError>> {
    let field = format!("{prefix}to");
    match v {
        Value::String(id) => address::subscriber_id(id)
            .map(To::Subscriber)
            .map_err(|m| vec![FieldError::new(field, m)]),
        Value::Object(map) => {
            if let Some(key) = map.get("topic") {
                if map.len() > 1 {
                    return Err(vec![FieldError::new(
                        field,
                        "give either a topic, a subscriber or addresses, not several",
                    )]);
                }
                return match key.as_str() {
                    Some(k) => topic_key(k)
                        .map(To::Topic)
                        .map_err(|m| vec![FieldError::new(format!("{field}.topic"), m)]),
                    None => Err(vec![FieldError::new(
                        format!("{field}.topic"),
                        "must be a string",
                    )]),
                };
            }
            if let Some(id) = map.get("subscriber") {
                if map.len() > 1 {
                    return Err(vec![FieldError::new(
                        field,
                        "give either a subscriber or addresses, not both",
                    )]);
                }
                return match id.as_str() {
                    Some(id) => address::subscriber_id(id)
                        .map(To::Subscriber)
                        .map_err(|m| vec![FieldError::new(format!("{field}.subscriber"), m)]),
                    None => Err(vec![FieldError::new(
                        format!("{field}.subscriber"),
                        "must be a string",
                    )]),
                };
            }
            if map.is_empty() {
                return Err(vec![FieldError::new(
                    field,
                    "must name a subscriber or at least one address (email, webhook, phone, push_token)",
                )]);
            }
            let mut errors = Vec::new();
            let mut addresses = BTreeMap::new();
            for (key, value) in map {
                let at = format!("{field}.{key}");
                let Some(channel) = [
                    Channel::Email,
                    Channel::Webhook,
                    Channel::Sms,
                    Channel::Push,
                ]
                .into_iter()
                .find(|c| address_key(*c) == key) else {
                    errors.push(FieldError::new(
                        at,
                        "is not an address kind (expected subscriber, email, webhook, phone or push_token)",
                    ));
                    continue;
                };
                let Some(text) = value.as_str() else {
                    errors.push(FieldError::new(at, "must be a string"));
                    continue;
                };
                match address::for_channel(channel, text) {
                    Ok(a) => {
                        addresses.insert(channel, a);
                    }
                    Err(m) => errors.push(FieldError::new(at, m)),
                }
            }
            if errors.is_empty() {
                Ok(To::Addresses(addresses))
            } else {
                Err(errors)
            }
        }
        _ => Err(vec![FieldError::new(
            field,
            "must be a subscriber id or an object of addresses",
        )]),
    }
}

fn recipient_json(to: &To) -> Value {
    match to {
        To::Subscriber(id) => json!({ "subscriber": id }),
        To::Topic(key) => json!({ "topic": key }),
        To::Addresses(map) => Value::Object(
            map.iter()
                .map(|(c, a)| (address_key(*c).to_owned(), Value::String(a.clone())))
                .collect(),
        ),
    }
}

/// Hex SHA-256 of the request's meaning (recipient, channels, template, version, data,
/// schedule, event type), to tell a retry from a different request with the same key.
fn fingerprint(req: &SendRequest, recipient: &Value, send_at: Option<i64>) -> String {
    let mut canonical = json!({
        "to": recipient,
        "channels": req.channels,
        "template": req.template,
        "version": req.version,
        "data": req.data,
        "send_at": send_at,
        "event_type": req.event_type,
    });
    // Only when set, so that the fingerprints of requests without a topic stay as they were.
    if let (Some(topic), Some(map)) = (&req.topic, canonical.as_object_mut()) {
        map.insert("topic".to_owned(), Value::String(topic.clone()));
    }
    if let (Some(d), Some(map)) = (&req.digest, canonical.as_object_mut()) {
        map.insert(
            "digest".to_owned(),
            json!({"window": d.window, "key": d.key}),
        );
    }
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks an idempotency key: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        Err(format!(
            "must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"
        ))
    } else {
        Ok(())
    }
}

impl Accepter {
    /// An accepter writing to `store` and `bus`.
    pub fn new(
        store: Store,
        templates: Templates,
        bus: Bus,
        settings: Arc<NotifySettings>,
    ) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(GroupStats::default());
        let writers = match store.db().backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => PG_WRITERS,
        };
        let rx = Arc::new(Mutex::new(rx));
        let validator = Validator {
            store,
            templates,
            settings,
        };
        for _ in 0..writers {
            tokio::spawn(write_batches(
                validator.clone(),
                bus.clone(),
                rx.clone(),
                stats.clone(),
            ));
        }
        Self {
            validator,
            group: Arc::new(Group { jobs, stats }),
        }
    }

    /// Stops the writers from taking new batches until the guard is dropped; requests queue
    /// meanwhile. For tests of the group commit (with [`Accepter::wait_queued`]).
    pub async fn hold_writes(&self) -> OwnedRwLockWriteGuard<()> {
        self.group.stats.hold.clone().write_owned().await
    }

    /// Waits until at least `n` requests are queued for the writers (not yet in a batch).
    pub async fn wait_queued(&self, n: usize) {
        let stats = &self.group.stats;
        loop {
            let changed = stats.queued_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if stats.queued.load(Ordering::Acquire) >= n {
                return;
            }
            changed.await;
        }
    }

    /// Batches committed so far by this accepter's writers, and the requests in them.
    pub fn batch_stats(&self) -> BatchStats {
        BatchStats {
            batches: self.group.stats.batches.load(Ordering::Acquire),
            requests: self.group.stats.requests.load(Ordering::Acquire),
        }
    }

    /// Fetches the subscribers, topics and templates the requests name (one query per chunk
    /// of subscribers or topics, one per distinct template).
    pub async fn lookups(&self, reqs: &[&SendRequest]) -> Result<Lookups, InfraError> {
        let mut conn = self.validator.store.db().pool().acquire().await?;
        self.validator.lookups_on(&mut conn, reqs).await
    }

    /// Validates one request and builds its message (field errors name `<prefix><field>`).
    /// `header_key` is the `Idempotency-Key` header of a single send.
    pub fn prepare(
        &self,
        lookups: &Lookups,
        sender: &str,
        req: &SendRequest,
        header_key: Option<&str>,
        now_ms: i64,
        prefix: &str,
    ) -> Result<MessageRecord, Refused> {
        self.validator
            .prepare(lookups, sender, req, header_key, now_ms, prefix)
    }
}

impl Validator {
    /// [`Accepter::lookups`] on `conn`: inside a writer's transaction, what a request names
    /// is read in the same snapshot its messages are written in.
    async fn lookups_on(
        &self,
        conn: &mut AnyConnection,
        reqs: &[&SendRequest],
    ) -> Result<Lookups, InfraError> {
        let mut ids: Vec<String> = reqs
            .iter()
            .filter_map(|r| match &r.to {
                Value::String(id) => Some(id.clone()),
                Value::Object(map) => map
                    .get("subscriber")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            })
            .filter(|id| address::subscriber_id(id).is_ok())
            .collect();
        ids.sort();
        ids.dedup();
        let subscribers = self
            .store
            .subscribers_on(&mut *conn, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let mut keys: Vec<String> = reqs
            .iter()
            .filter_map(|r| r.to.get("topic").and_then(Value::as_str))
            .filter(|k| topic_key(k).is_ok())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys.dedup();
        let topics = self
            .store
            .existing_topics_on(&mut *conn, &keys)
            .await?
            .into_iter()
            .collect();
        let mut templates = HashMap::new();
        for r in reqs {
            let key = (r.template.clone(), r.version);
            if templates.contains_key(&key) || address::template_name(&r.template).is_err() {
                continue;
            }
            let found = match r.version {
                Some(v) if v < 1 => None,
                v => self.templates.get_on(&mut *conn, &r.template, v).await?,
            };
            templates.insert(key, found);
        }
        Ok(Lookups {
            subscribers,
            templates,
            topics,
        })
    }

    /// Validates one request and builds its message (field errors name `<prefix><field>`).
    /// `header_key` is the `Idempotency-Key` header of a single send. The steps run in a
    /// fixed order and each adds its field errors, so one answer lists every problem.
    fn prepare(
        &self,
        lookups: &Lookups,
        sender: &str,
        req: &SendRequest,
        header_key: Option<&str>,
        now_ms: i64,
        prefix: &str,
    ) -> Result<MessageRecord, Refused> {
        let mut errors = Errors {
            prefix,
            list: Vec::new(),
            unprocessable: Vec::new(),
        };
        let key = idempotency_key(req, header_key, &mut errors);
        let send_at = self.send_at(req, now_ms, &mut errors);
        check_event_type(req, &mut errors);
        let data = data_object(req, &mut errors);
        let dedupe_window_ms = dedupe_window(req, key.is_some(), &mut errors);
        let digest = digest_spec(req, &data, &mut errors);
        let (to, subscriber) = self.recipient(lookups, req, &mut errors);
        let topic = topic_of(req, to.as_ref(), &mut errors);
        let template = template_of(lookups, req, &mut errors);
        let channels = self.channels(req, to.as_ref(), subscriber, template.as_ref(), &mut errors);
        if let Some(t) = &template
            && errors.list.is_empty()
            && errors.unprocessable.is_empty()
        {
            trial_render(t, digest.is_some(), &data, &channels, &mut errors);
        }
        if !errors.list.is_empty() {
            return Err(Refused::Invalid(errors.list));
        }
        if !errors.unprocessable.is_empty() {
            return Err(Refused::Unprocessable(errors.unprocessable));
        }
        let (Some(to), Some(template)) = (to, template) else {
            return Err(Refused::Invalid(vec![FieldError::new(
                errors.at("to"),
                "is invalid",
            )]));
        };
        let recipient = recipient_json(&to);
        let fingerprint = fingerprint(req, &recipient, send_at);
        Ok(MessageRecord {
            id: uuid::Uuid::now_v7().to_string(),
            sender: sender.to_owned(),
            idempotency_key: key,
            fingerprint,
            recipient,
            subscriber_id: match &to {
                To::Subscriber(id) => Some(id.clone()),
                To::Topic(_) | To::Addresses(_) => None,
            },
            template: template.name.clone(),
            template_version: template.version,
            event_type: req.event_type.clone(),
            data,
            channels,
            topic,
            send_at: send_at.filter(|at| *at > now_ms),
            created_at: now_ms,
            expanded_at: None,
            digest,
            dedupe_window_ms,
        })
    }

    /// The scheduled time, at most `max_schedule_ahead` ahead.
    fn send_at(&self, req: &SendRequest, now_ms: i64, errors: &mut Errors<'_>) -> Option<i64> {
        let text = req.send_at.as_deref()?;
        match jiff::Timestamp::from_str(text.trim()) {
            Ok(t) => {
                let ms = t.as_millisecond();
                let horizon =
                    i64::try_from(self.settings.max_schedule_ahead.as_millis()).unwrap_or(i64::MAX);
                if ms > now_ms.saturating_add(horizon) {
                    errors.unprocessable(
                        "send_at",
                        format!(
                            "is more than {} days ahead",
                            self.settings.max_schedule_ahead.as_secs() / 86_400
                        ),
                    );
                }
                Some(ms)
            }
            Err(e) => {
                errors.push(
                    "send_at",
                    format!(
                        "is not an RFC 3339 time with an offset, e.g. 2026-12-01T09:00:00Z ({e})"
                    ),
                );
                None
            }
        }
    }

    /// The recipient, the SSRF guard on an inline webhook URL (literal IPs; names are judged
    /// at send time), and the subscriber or topic it names.
    fn recipient<'l>(
        &self,
        lookups: &'l Lookups,
        req: &SendRequest,
        errors: &mut Errors<'_>,
    ) -> (Option<To>, Option<&'l Subscriber>) {
        let to = match parse_to(&req.to, errors.prefix) {
            Ok(to) => Some(to),
            Err(mut e) => {
                errors.list.append(&mut e);
                None
            }
        };
        if let Some(To::Addresses(map)) = &to
            && let Some(url) = map.get(&Channel::Webhook)
            && let Err(m) = self.settings.ssrf_policy().check_url(url)
        {
            errors.push("to.webhook", m);
        }
        if req.digest.is_some() && matches!(to, Some(To::Topic(_) | To::Addresses(_))) {
            errors.unprocessable(
                "digest",
                "needs a subscriber as the recipient (to: \"id\" or {\"subscriber\": id}), not addresses or a topic",
            );
        }
        let subscriber = match &to {
            Some(To::Subscriber(id)) => match lookups.subscribers.get(id) {
                Some(s) => Some(s),
                None => {
                    errors.unprocessable(
                        "to",
                        format!("no subscriber with id {id:?}; create it with PUT /api/v1/notify/subscribers/{{id}} or send to addresses"),
                    );
                    None
                }
            },
            Some(To::Topic(key)) => {
                if !lookups.topics.contains(key) {
                    errors.unprocessable(
                        "to.topic",
                        format!("no topic with key {key:?}; create it with PUT /api/v1/notify/topics/{{key}}"),
                    );
                }
                None
            }
            _ => None,
        };
        (to, subscriber)
    }

    /// The channels asked for (each enabled, reachable and in the template), or without a
    /// list every channel of the template the recipient can be reached on.
    fn channels(
        &self,
        req: &SendRequest,
        to: Option<&To>,
        subscriber: Option<&Subscriber>,
        template: Option<&Arc<TemplateVersion>>,
        errors: &mut Errors<'_>,
    ) -> Vec<Channel> {
        let has_address = |channel: Channel| -> bool {
            match (to, subscriber) {
                (Some(To::Subscriber(_)), Some(s)) => s.address(channel).is_some(),
                (Some(To::Addresses(map)), _) => map.contains_key(&channel),
                _ => true,
            }
        };
        let mut channels = Vec::new();
        let Some(list) = &req.channels else {
            if let Some(t) = template {
                channels = t
                    .compiled
                    .keys()
                    .copied()
                    .filter(|c| self.settings.channel_enabled(*c))
                    .filter(|c| {
                        *c != Channel::InApp || matches!(to, Some(To::Subscriber(_) | To::Topic(_)))
                    })
                    .filter(|c| has_address(*c))
                    .collect();
                if channels.is_empty()
                    && to.is_some()
                    && (subscriber.is_some() || matches!(to, Some(To::Addresses(_))))
                {
                    errors.unprocessable(
                        "channels",
                        format!(
                            "the recipient has no address on any channel of template {:?} ({})",
                            t.name,
                            t.compiled
                                .keys()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            return channels;
        };
        if list.is_empty() {
            errors.push("channels", "must name at least one channel");
        }
        for (i, name) in list.iter().enumerate() {
            let field = format!("channels[{i}]");
            let Some(channel) = Channel::parse(name) else {
                errors.push(
                    &field,
                    format!(
                        "{name:?} is not a channel (expected email, webhook, sms, push or in_app)"
                    ),
                );
                continue;
            };
            if channels.contains(&channel) {
                // Named twice: once is enough.
                continue;
            }
            if !self.settings.channel_enabled(channel) {
                errors.unprocessable(
                    &field,
                    format!(
                        "the {name} channel is not configured on this server (set notify_{name}_url)"
                    ),
                );
                continue;
            }
            if channel == Channel::InApp
                && !matches!(to, Some(To::Subscriber(_) | To::Topic(_)) | None)
            {
                errors.unprocessable(
                    &field,
                    "in_app needs a subscriber as the recipient (its inbox)",
                );
                continue;
            }
            if !has_address(channel) {
                let who = match to {
                    Some(To::Subscriber(id)) => format!("subscriber {id:?} has"),
                    _ => "to has".to_owned(),
                };
                errors.unprocessable(&field, format!("{who} no {} address", address_key(channel)));
                continue;
            }
            if let Some(t) = template
                && !t.compiled.contains_key(&channel)
            {
                errors.unprocessable(
                    &field,
                    format!(
                        "template {:?} version {} has no {name} part",
                        t.name, t.version
                    ),
                );
                continue;
            }
            channels.push(channel);
        }
        channels
    }
}

impl Accepter {
    /// Validates the requests and stores the valid ones' messages, each request's bus event
    /// with them, in one transaction: the common path of the send routes. A writer does the
    /// whole of it, reading the subscribers, topics and templates the requests name inside
    /// its transaction, once for every request of its batch. One result per request, in
    /// order: the message's id (new or duplicate: same idempotency key, or within its dedupe
    /// window), the 400 or 422 of a request that does not validate, or a 422 when its
    /// idempotency key was used for another request. The answer comes after the commit.
    pub async fn send(&self, send: Submission) -> Answer {
        self.submit(Work::Requests(send)).await
    }

    /// Stores messages already validated (by [`Accepter::prepare`]) and their bus event in
    /// one transaction; each result as for [`Accepter::send`]. The transaction may hold other
    /// requests' messages too (group commit, see the [module docs](self)); the answer comes
    /// after it has committed.
    pub async fn accept(&self, messages: &[MessageRecord]) -> Answer {
        self.submit(Work::Messages(messages.to_vec())).await
    }

    /// Queues `work` for a writer and waits for its answer.
    async fn submit(&self, work: Work) -> Answer {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            trace: trace::current(),
            reply,
        };
        let stats = &self.group.stats;
        stats.queued.fetch_add(1, Ordering::AcqRel);
        if self.group.jobs.send(job).is_err() {
            stats.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(InfraError::Shutdown(
                "the notify accept writers have stopped; restart the process".into(),
            ));
        }
        stats.queued_changed.notify_waiters();
        answer.await.map_err(|_| {
            InfraError::Shutdown(
                "the notify accept writer stopped before answering; retry the request".into(),
            )
        })?
    }
}

/// A writer: takes a request, then every request already queued (up to
/// [`MAX_BATCH_MESSAGES`] messages), writes them in one transaction and answers each; ends when
/// every accepter is dropped. It keeps its connection while requests keep coming, and gives it
/// back to the pool when the queue is empty.
async fn write_batches(
    validator: Validator,
    bus: Bus,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    stats: Arc<GroupStats>,
) {
    let db = validator.store.db().clone();
    let mut held: Option<PoolConnection<Any>> = None;
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let _hold = stats.hold.read().await;
            let mut size = first.size();
            batch.push(first);
            while size < MAX_BATCH_MESSAGES {
                let Ok(job) = rx.try_recv() else { break };
                size += job.size();
                batch.push(job);
            }
        }
        stats.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        let conn = match held.take() {
            Some(conn) => Ok(conn),
            None => db.pool().acquire().await.map_err(InfraError::from),
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        let written = write(&mut conn, &validator, &bus, &batch).await;
        let failed = written.is_err();
        match written {
            Ok(answers) => {
                stats.batches.fetch_add(1, Ordering::AcqRel);
                stats
                    .requests
                    .fetch_add(batch.len() as u64, Ordering::AcqRel);
                metrics::histogram!(crate::workers::metrics::ACCEPT_BATCH)
                    .record(batch.len() as f64);
                for (job, answer) in batch.into_iter().zip(answers) {
                    // The request may have gone (client closed): its messages are accepted.
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(job) = batch.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, requests = batch.len(), "accept batch failed; writing its requests one by one");
                for job in batch {
                    let answer = write(&mut conn, &validator, &bus, std::slice::from_ref(&job))
                        .await
                        .map(|mut a| a.pop().unwrap_or_default());
                    if answer.is_ok() {
                        stats.batches.fetch_add(1, Ordering::AcqRel);
                        stats.requests.fetch_add(1, Ordering::AcqRel);
                        metrics::histogram!(crate::workers::metrics::ACCEPT_BATCH).record(1.0);
                    }
                    let _ = job.reply.send(answer);
                }
            }
        }
        // An idle writer holds no connection; a failed one gets a fresh one next time.
        if !failed && stats.queued.load(Ordering::Acquire) > 0 {
            held = Some(conn);
        }
    }
}

impl Job {
    /// How many messages the job can add to a batch.
    fn size(&self) -> usize {
        match &self.work {
            Work::Messages(messages) => messages.len(),
            Work::Requests(send) => send.requests.len(),
        }
    }
}

/// Writes the requests of `jobs` in one transaction on `conn`, each with its own bus event
/// enqueued under its own trace context; one answer per job. Requests not yet validated are
/// validated first, against subscribers, topics and templates read in the transaction.
async fn write(
    conn: &mut AnyConnection,
    validator: &Validator,
    bus: &Bus,
    jobs: &[Job],
) -> Result<Vec<Vec<Result<Accepted, Problem>>>, InfraError> {
    let mut tx = validator.store.db().begin_write_on(conn).await?;
    let requests: Vec<&SendRequest> = jobs
        .iter()
        .filter_map(|job| match &job.work {
            Work::Requests(send) => Some(send.requests.iter().map(|p| &p.request)),
            Work::Messages(_) => None,
        })
        .flatten()
        .collect();
    let lookups = if requests.is_empty() {
        Lookups::default()
    } else {
        validator.lookups_on(&mut tx, &requests).await?
    };
    let mut answers = Vec::with_capacity(jobs.len());
    let mut accepted = 0;
    for job in jobs {
        let prepared: Vec<Result<MessageRecord, Problem>> = match &job.work {
            Work::Messages(messages) => messages.iter().cloned().map(Ok).collect(),
            Work::Requests(send) => send
                .requests
                .iter()
                .map(|p| {
                    validator
                        .prepare(
                            &lookups,
                            &send.sender,
                            &p.request,
                            p.header_key.as_deref(),
                            send.now_ms,
                            &p.prefix,
                        )
                        .map_err(Problem::from)
                })
                .collect(),
        };
        let mut results = Vec::with_capacity(prepared.len());
        let mut new_ids = Vec::new();
        for m in prepared {
            let m = match m {
                Ok(m) => m,
                Err(refused) => {
                    results.push(Err(refused));
                    continue;
                }
            };
            if m.dedupe_window_ms.is_some()
                && let Window::Duplicate(id) = dedupe::claim(&mut tx, &m).await?
            {
                results.push(Ok(Accepted {
                    id,
                    duplicate: true,
                }));
                continue;
            }
            match Store::insert_message(&mut tx, &m).await? {
                Inserted::New => {
                    results.push(Ok(Accepted {
                        id: m.id.clone(),
                        duplicate: false,
                    }));
                    new_ids.push(m.id);
                }
                Inserted::Existing { id, fingerprint } if fingerprint == m.fingerprint => {
                    results.push(Ok(Accepted {
                        id,
                        duplicate: true,
                    }));
                }
                Inserted::Existing { .. } => results.push(Err(key_reused())),
            }
        }
        if let Some(first) = new_ids.first().cloned() {
            accepted += new_ids.len();
            let payload = serde_json::to_vec(&AcceptedEvent { messages: new_ids })?;
            let enqueue = bus.enqueue(&mut tx, ACCEPTED_TOPIC, &first, &payload);
            match job.trace {
                Some(ctx) => trace::in_scope(ctx, enqueue).await?,
                None => enqueue.await?,
            };
        }
        answers.push(results);
    }
    tx.commit().await?;
    if accepted > 0 {
        bus.notify_committed();
        metrics::counter!(crate::workers::metrics::ACCEPTED_TOTAL).increment(accepted as u64);
    }
    Ok(answers)
}

/// The field errors of one request, each named `<prefix><field>`: those of its shape (what
/// the OpenAPI schema states: 400) and those of its meaning (fields that exclude each other,
/// names of things that do not exist, channels the server or recipient lacks, data a template
/// misses: 422, a well-formed request that cannot be carried out).
struct Errors<'p> {
    prefix: &'p str,
    list: Vec<FieldError>,
    unprocessable: Vec<FieldError>,
}

impl Errors<'_> {
    /// The full name of `field`.
    fn at(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Adds an error of shape at `field`.
    fn push(&mut self, field: &str, message: impl Into<String>) {
        let field = self.at(field);
        self.list.push(FieldError::new(field, message));
    }

    /// Adds an error of meaning at `field`.
    fn unprocessable(&mut self, field: &str, message: impl Into<String>) {
        let field = self.at(field);
        self.unprocessable.push(FieldError::new(field, message));
    }
}

/// Why a send request was refused: its shape (400) or its meaning (422); each names fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The request does not have the documented shape.
    Invalid(Vec<FieldError>),
    /// The request is well formed but cannot be carried out as it stands.
    Unprocessable(Vec<FieldError>),
}

impl Refused {
    /// The field errors.
    pub fn errors(&self) -> &[FieldError] {
        match self {
            Refused::Invalid(e) | Refused::Unprocessable(e) => e,
        }
    }
}

impl From<Refused> for Problem {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Invalid(errors) => Problem::validation(errors),
            Refused::Unprocessable(errors) => {
                let mut p = Problem::validation(errors);
                p.status = StatusCode::UNPROCESSABLE_ENTITY;
                p.title = "Unprocessable request";
                p
            }
        }
    }
}

/// The idempotency key: the body's or the header's (the same when both are given).
fn idempotency_key(
    req: &SendRequest,
    header_key: Option<&str>,
    errors: &mut Errors<'_>,
) -> Option<String> {
    match (req.idempotency_key.as_deref(), header_key) {
        (Some(a), Some(b)) if a != b => {
            errors.unprocessable(
                "idempotency_key",
                "differs from the Idempotency-Key header; send one of them",
            );
            None
        }
        (Some(k), _) | (None, Some(k)) => {
            if let Err(m) = check_key(k) {
                errors.push("idempotency_key", m);
            }
            Some(k.to_owned())
        }
        (None, None) => None,
    }
}

/// The event type: 1 to [`MAX_EVENT_TYPE`] visible ASCII characters.
fn check_event_type(req: &SendRequest, errors: &mut Errors<'_>) {
    if let Some(t) = req.event_type.as_deref()
        && (t.is_empty() || t.len() > MAX_EVENT_TYPE || !t.bytes().all(|b| b.is_ascii_graphic()))
    {
        errors.push(
            "event_type",
            format!("must be 1 to {MAX_EVENT_TYPE} visible ASCII characters"),
        );
    }
}

/// The template data: a JSON object (none is an empty one).
fn data_object(req: &SendRequest, errors: &mut Errors<'_>) -> Value {
    match &req.data {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            errors.push("data", "must be a JSON object");
            Value::Object(serde_json::Map::new())
        }
    }
}

/// The dedupe window (D41: not together with an idempotency key).
fn dedupe_window(req: &SendRequest, has_key: bool, errors: &mut Errors<'_>) -> Option<i64> {
    match digest::check_window(req.dedupe_window?) {
        Ok(ms) if !has_key => Some(ms),
        Ok(_) => {
            errors.unprocessable(
                "dedupe_window",
                "cannot be combined with an idempotency key (idempotency_key or the Idempotency-Key header): send one of them",
            );
            None
        }
        Err(m) => {
            errors.push("dedupe_window", m);
            None
        }
    }
}

/// The digest (its recipient is checked with the recipient).
fn digest_spec(req: &SendRequest, data: &Value, errors: &mut Errors<'_>) -> Option<DigestSpec> {
    let d = req.digest.as_ref()?;
    if req.send_at.is_some() {
        errors.unprocessable(
            "digest",
            "cannot be combined with send_at (a digest is sent when its window ends)",
        );
    }
    if data.get("digest").is_some() {
        errors.unprocessable(
            "data.digest",
            "is reserved in digest mode: the template reads digest.count and digest.events",
        );
    }
    match digest::check(d, &req.template) {
        Ok(spec) => Some(spec),
        Err(list) => {
            for (f, m) in list {
                errors.push(f, m);
            }
            None
        }
    }
}

/// The topic a message counts under: the one given, or the topic it is sent to.
fn topic_of(req: &SendRequest, to: Option<&To>, errors: &mut Errors<'_>) -> Option<String> {
    match req.topic.as_deref() {
        Some(t) => match topic_key(t) {
            Ok(t) => Some(t),
            Err(m) => {
                errors.push("topic", m);
                None
            }
        },
        None => match to {
            Some(To::Topic(key)) => Some(key.clone()),
            _ => None,
        },
    }
}

/// The template version asked for (the latest without `version`).
fn template_of(
    lookups: &Lookups,
    req: &SendRequest,
    errors: &mut Errors<'_>,
) -> Option<Arc<TemplateVersion>> {
    if let Err(m) = address::template_name(&req.template) {
        errors.push("template", m);
        return None;
    }
    if let Some(v) = req.version
        && v < 1
    {
        errors.push("version", "must be 1 or more");
    }
    if let Some(Some(t)) = lookups.templates.get(&(req.template.clone(), req.version)) {
        return Some(t.clone());
    }
    match req.version {
        Some(v) if v >= 1 => errors.unprocessable(
            "version",
            format!("template {:?} has no version {v}", req.template),
        ),
        Some(_) => {}
        None => errors.unprocessable(
            "template",
            format!(
                "no template named {:?}; create it with POST /api/v1/notify/templates",
                req.template
            ),
        ),
    }
    None
}

/// A trial render of every channel's parts (strict: reading a variable the data lacks is an
/// error, while `{% if x is defined %}` keeps optional ones optional). A missing variable is
/// reported as `data.<path>`, any other error at the part.
fn trial_render(
    t: &TemplateVersion,
    digest: bool,
    data: &Value,
    channels: &[Channel],
    errors: &mut Errors<'_>,
) {
    let trial = if digest {
        digest::trial_data(data)
    } else {
        data.clone()
    };
    for channel in channels {
        let Some(compiled) = t.compiled.get(channel) else {
            continue;
        };
        let Err(e) = compiled.render(&trial) else {
            continue;
        };
        let missing = e
            .detail
            .strip_prefix("undefined variable \"")
            .and_then(|rest| rest.strip_suffix('"'));
        let (field, message) = match missing {
            Some(path) => (
                format!("data.{path}"),
                format!(
                    "is missing: template {:?} version {} reads it ({} {})",
                    t.name,
                    t.version,
                    channel.as_str(),
                    e
                ),
            ),
            None => (
                format!("template.{}.{}", channel.as_str(), e.part),
                e.to_string(),
            ),
        };
        let full = errors.at(&field);
        if !errors.unprocessable.iter().any(|x| x.field == full) {
            errors.unprocessable(&field, message);
        }
    }
}

/// 422: the idempotency key was used for a different request.
pub fn key_reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency key reused",
        "this idempotency key was already used for a different message; use a new key",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_parse() {
        assert_eq!(
            parse_to(&json!("user-1"), ""),
            Ok(To::Subscriber("user-1".into()))
        );
        assert_eq!(
            parse_to(&json!({"subscriber": "u"}), ""),
            Ok(To::Subscriber("u".into()))
        );
        let To::Addresses(map) =
            parse_to(&json!({"email": "a@b.co", "phone": "+14155550123"}), "").expect("ok")
        else {
            panic!("addresses expected");
        };
        assert_eq!(
            map.get(&Channel::Sms).map(String::as_str),
            Some("+14155550123")
        );
        let errors =
            parse_to(&json!({"email": "nope", "fax": "1"}), "messages[2].").expect_err("bad");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["messages[2].to.email", "messages[2].to.fax"]);
        assert!(parse_to(&json!({"subscriber": "u", "email": "a@b.co"}), "").is_err());
        assert!(parse_to(&json!(3), "").is_err());
        assert_eq!(
            parse_to(&json!({"topic": "news"}), ""),
            Ok(To::Topic("news".into()))
        );
        assert!(parse_to(&json!({"topic": "a b"}), "").is_err());
        assert!(parse_to(&json!({"topic": "news", "email": "a@b.co"}), "").is_err());
        assert!(parse_to(&json!({}), "").is_err());
    }

    #[test]
    fn stored_recipients_give_addresses() {
        let r = recipient_json(&To::Addresses(BTreeMap::from([(
            Channel::Webhook,
            "https://h.example/x".to_owned(),
        )])));
        assert_eq!(
            inline_address(&r, Channel::Webhook).as_deref(),
            Some("https://h.example/x")
        );
        assert_eq!(inline_address(&r, Channel::Email), None);
        assert_eq!(inline_address(&r, Channel::InApp), None);
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-42").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
    }
}
