//! Subscribers: the recipients of notifications and their addresses.

use axum::extract::State;
use axum::http::StatusCode;

use praxis_http::pagination::{Page, PageParams, clamp_limit, decode_cursor};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::Access;
use super::dto::{PutSubscriber, SubscriberPage, SubscriberView};
use super::{AppState, TAG};
use crate::address;
use crate::error::NotifyError;
use crate::model::{Subscriber, now_ms};

/// Default page size of the subscriber list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the subscriber list.
const MAX_LIMIT: u32 = 500;

/// Create or replace a subscriber (idempotent): its id is yours (your user id), its addresses
/// are checked (email, E.164 phone, http(s) webhook URL, push token, IANA time zone).
#[utoipa::path(
    put,
    path = "/api/v1/notify/subscribers/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Subscriber id: 1 to 128 of A-Z a-z 0-9 _ - . @ : +")),
    request_body = PutSubscriber,
    responses(
        (status = 201, description = "Created", body = SubscriberView),
        (status = 200, description = "Replaced", body = SubscriberView),
        (status = 400, description = "Invalid address; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope notify:write", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_subscriber(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    Json(req): Json<PutSubscriber>,
) -> Result<(StatusCode, Json<SubscriberView>), NotifyError> {
    let owner = access.writer()?;
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
            if req.timezone.is_none() {
                errors.push(FieldError::new(
                    "quiet_hours",
                    "needs timezone (quiet hours are in the subscriber's local time)",
                ));
            }
            (start, end)
        }
    };
    if !errors.is_empty() {
        return Err(NotifyError::Invalid(errors));
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
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope notify:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_subscriber(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, NotifyError> {
    access.reader()?;
    let missing = || NotifyError::NotFound(format!("no subscriber with id {id:?}"));
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
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope notify:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscriber", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_subscriber(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<StatusCode, NotifyError> {
    access.writer()?;
    let missing = || NotifyError::NotFound(format!("no subscriber with id {id:?}"));
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
    params(PageParams),
    responses(
        (status = 200, description = "A page of subscribers", body = SubscriberPage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope notify:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_subscribers(
    State(state): State<AppState>,
    access: Access,
    Query(params): Query<PageParams>,
) -> Result<Json<SubscriberPage>, NotifyError> {
    access.reader()?;
    let limit = clamp_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after: Option<String> = params.cursor.as_deref().map(decode_cursor).transpose()?;
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
