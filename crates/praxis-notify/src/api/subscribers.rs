//! Subscribers: the recipients of notifications, their addresses, quiet hours and
//! preferences (opt-outs per channel and topic).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use praxis_http::Require;
use praxis_http::pagination::{Page, PageParams, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::{NotifyRead, NotifyWrite};
use super::dto::{PutSubscriber, SubscriberPage, SubscriberView};
use super::{AppState, TAG};
use crate::domain::address;
use crate::domain::channel::Channel;
use crate::domain::model::{Preferences, Subscriber, now_ms};
use crate::domain::quiet_hours::QuietHours;
use crate::workers::accept::topic_key;

/// Default page size of the subscriber list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the subscriber list.
const MAX_LIMIT: u32 = 500;

/// Create or replace a subscriber (idempotent): its id is yours (your user id), its addresses
/// are checked (email, E.164 phone, http(s) webhook URL, push token, IANA time zone). A
/// webhook URL whose host is a literal IP address in a range the SSRF guard refuses
/// (loopback, private, link-local, ...) is a 400 unless the deployment allows it.
#[utoipa::path(
    put,
    path = "/api/v1/notify/subscribers/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id: 1 to 128 of A-Z a-z 0-9 _ - . @ : +", pattern = "^[A-Za-z0-9_.@:+-]{1,128}$")),
    request_body = PutSubscriber,
    responses(
        (status = 201, description = "Created", body = SubscriberView),
        (status = 200, description = "Replaced", body = SubscriberView),
        (status = 400, description = "Invalid address; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn put_subscriber(
    State(state): State<AppState>,
    who: Require<NotifyWrite>,
    Path(id): Path<String>,
    Json(req): Json<PutSubscriber>,
) -> Result<(StatusCode, Json<SubscriberView>), Problem> {
    let owner = who.subject();
    let mut errors = Vec::new();
    let id = address::subscriber_id(&id)
        .map_err(|m| errors.push(FieldError::new("id", m)))
        .unwrap_or_default();
    let mut check = |field: &str, value: &Option<String>, f: fn(&str) -> Result<String, String>| {
        value.as_deref().and_then(|v| match f(v) {
            Ok(v) => Some(v),
            Err(m) => {
                errors.push(FieldError::new(field, m));
                None
            }
        })
    };
    let email = check("email", &req.email, address::email);
    let phone = check("phone", &req.phone, address::phone);
    let push_token = check("push_token", &req.push_token, address::push_token);
    let webhook_url = check("webhook_url", &req.webhook_url, address::webhook_url);
    let timezone = check("timezone", &req.timezone, address::timezone);
    let (quiet_start, quiet_end) = match &req.quiet_hours {
        None => (None, None),
        Some(q) => {
            let start = check(
                "quiet_hours.start",
                &Some(q.start.clone()),
                address::time_of_day,
            );
            let end = check(
                "quiet_hours.end",
                &Some(q.end.clone()),
                address::time_of_day,
            );
            // Without a time zone, quiet hours are in UTC.
            let tz = if req.timezone.is_some() {
                timezone.as_deref()
            } else {
                Some("UTC")
            };
            if let (Some(start), Some(end), Some(tz)) = (&start, &end, tz)
                && let Err(m) = QuietHours::parse(start, end, tz)
            {
                errors.push(FieldError::new("quiet_hours", m));
            }
            (start, end)
        }
    };
    if let Some(url) = &webhook_url
        && let Err(m) = state.inner.settings.ssrf_policy().check_url(url)
    {
        errors.push(FieldError::new("webhook_url", m));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let now = now_ms();
    let subscriber = Subscriber {
        id,
        email,
        phone,
        push_token,
        webhook_url,
        timezone,
        quiet_start,
        quiet_end,
        preferences: Preferences::default(),
        created_by: owner.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let created = state.inner.store.upsert_subscriber(&subscriber).await?;
    let stored = state
        .inner
        .store
        .subscriber(&subscriber.id)
        .await?
        .ok_or_else(|| Problem::internal("the subscriber just written is missing"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SubscriberView::from(&stored))))
}

/// One subscriber.
#[utoipa::path(
    get,
    path = "/api/v1/notify/subscribers/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id")),
    responses(
        (status = 200, description = "The subscriber", body = SubscriberView),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_subscriber(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, Problem> {
    let missing = || Problem::not_found(format!("no subscriber with id {id:?}"));
    if address::subscriber_id(&id).is_err() {
        return Err(missing());
    }
    let s = state
        .inner
        .store
        .subscriber(&id)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(SubscriberView::from(&s)))
}

/// Delete a subscriber. Messages already accepted for it fail with that reason unless their
/// deliveries were created before (those keep their addresses and are still sent).
#[utoipa::path(
    delete,
    path = "/api/v1/notify/subscribers/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn delete_subscriber(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let missing = || Problem::not_found(format!("no subscriber with id {id:?}"));
    if address::subscriber_id(&id).is_err() {
        return Err(missing());
    }
    if state.inner.store.delete_subscriber(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing())
    }
}

/// List subscribers in id order.
#[utoipa::path(
    get,
    path = "/api/v1/notify/subscribers",
    tag = TAG,
    params(("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `next_cursor`; absent for the first page"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size, 1 to 500 (default 50); outside that range is 400")),
    responses(
        (status = 200, description = "A page of subscribers", body = SubscriberPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_subscribers(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Query(params): Query<PageParams>,
) -> Result<Json<SubscriberPage>, Problem> {
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after: Option<String> = cursor_param(params.cursor.as_deref())?;
    let rows = state
        .inner
        .store
        .list_subscribers(after.as_deref(), limit + 1)
        .await?;
    let page = Page::from_overfetch(rows, limit, |s| s.id.clone());
    Ok(Json(SubscriberPage {
        items: page.items.iter().map(SubscriberView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A subscriber's preferences (body of `PUT /subscribers/{id}/preferences`, and its answer).
/// A channel not mentioned is accepted; for a message of a topic, `topics.<topic>.<channel>`
/// wins over `channels.<channel>`. An opted-out delivery is recorded as `suppressed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesView {
    /// Per channel (`email`, `webhook`, `sms`, `push`, `in_app`): `false` opts out.
    #[schema(value_type = ChannelFlags, example = json!({"email": false}))]
    #[serde(default)]
    pub channels: BTreeMap<Channel, bool>,
    /// Per topic (a topic key), per channel: `false` opts out of that topic on that channel.
    #[schema(schema_with = topic_flags_schema, example = json!({"marketing": {"email": false}}))]
    #[serde(default)]
    pub topics: BTreeMap<String, BTreeMap<Channel, bool>>,
}

/// Opt-outs per channel (OpenAPI only): a channel not named is accepted.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the channel flags of preferences in the OpenAPI document"
)]
pub struct ChannelFlags {
    #[serde(default)]
    email: bool,
    #[serde(default)]
    webhook: bool,
    #[serde(default)]
    sms: bool,
    #[serde(default)]
    push: bool,
    #[serde(default)]
    in_app: bool,
}

/// `topics` of preferences: topic keys to [`ChannelFlags`].
fn topic_flags_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Ref, schema::AdditionalProperties};
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[A-Za-z0-9_.:-]{1,128}$")),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            Ref::from_schema_name("ChannelFlags").into(),
        )))
        .build()
}

impl From<&Preferences> for PreferencesView {
    fn from(p: &Preferences) -> Self {
        Self {
            channels: p.channels.clone(),
            topics: p.topics.clone(),
        }
    }
}

/// Parses `{channel: bool}` at `field`.
fn channel_flags(v: &Value, field: &str, errors: &mut Vec<FieldError>) -> BTreeMap<Channel, bool> {
    let mut out = BTreeMap::new();
    let Some(map) = v.as_object() else {
        errors.push(FieldError::new(
            field,
            "must be an object of channel: true|false",
        ));
        return out;
    };
    for (name, flag) in map {
        let at = format!("{field}.{name}");
        let Some(channel) = Channel::parse(name) else {
            errors.push(FieldError::new(
                at,
                "is not a channel (expected email, webhook, sms, push or in_app)",
            ));
            continue;
        };
        match flag.as_bool() {
            Some(b) => {
                out.insert(channel, b);
            }
            None => errors.push(FieldError::new(at, "must be true or false")),
        }
    }
    out
}

/// Parses and checks a preferences document; errors name each field.
pub fn parse_preferences(body: &Value) -> Result<Preferences, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut prefs = Preferences::default();
    let Some(map) = body.as_object() else {
        return Err(vec![FieldError::new(
            "body",
            "must be an object {channels, topics}",
        )]);
    };
    for (key, value) in map {
        match key.as_str() {
            "channels" => prefs.channels = channel_flags(value, "channels", &mut errors),
            "topics" => match value.as_object() {
                Some(topics) => {
                    for (topic, flags) in topics {
                        let at = format!("topics.{topic}");
                        if let Err(m) = topic_key(topic) {
                            errors.push(FieldError::new(at, m));
                            continue;
                        }
                        let flags = channel_flags(flags, &at, &mut errors);
                        prefs.topics.insert(topic.clone(), flags);
                    }
                }
                None => errors.push(FieldError::new(
                    "topics",
                    "must be an object of topic: {channel: true|false}",
                )),
            },
            other => errors.push(FieldError::new(
                other,
                "is not a preference (expected channels or topics)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(prefs)
    } else {
        Err(errors)
    }
}

/// Replace a subscriber's preferences (opt-outs per channel and per topic and channel).
#[utoipa::path(
    put,
    path = "/api/v1/notify/subscribers/{id}/preferences",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id")),
    request_body = PreferencesView,
    responses(
        (status = 200, description = "The stored preferences", body = PreferencesView),
        (status = 400, description = "Unknown channel, bad topic key or flag; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn put_preferences(
    State(state): State<AppState>,
    _: Require<NotifyWrite>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<PreferencesView>, Problem> {
    let missing = || Problem::not_found(format!("no subscriber with id {id:?}"));
    if address::subscriber_id(&id).is_err() {
        return Err(missing());
    }
    let prefs = parse_preferences(&body).map_err(Problem::validation)?;
    if !state
        .inner
        .store
        .set_preferences(&id, &prefs, now_ms())
        .await?
    {
        return Err(missing());
    }
    Ok(Json(PreferencesView::from(&prefs)))
}

/// A subscriber's preferences.
#[utoipa::path(
    get,
    path = "/api/v1/notify/subscribers/{id}/preferences",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id")),
    responses(
        (status = 200, description = "The preferences", body = PreferencesView),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_preferences(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Path(id): Path<String>,
) -> Result<Json<PreferencesView>, Problem> {
    let missing = || Problem::not_found(format!("no subscriber with id {id:?}"));
    if address::subscriber_id(&id).is_err() {
        return Err(missing());
    }
    let s = state
        .inner
        .store
        .subscriber(&id)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(PreferencesView::from(&s.preferences)))
}
