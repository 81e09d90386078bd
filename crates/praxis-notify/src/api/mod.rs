//! HTTP routes of the notification service (axum + utoipa), under `/api/v1/notify`.
//!
//! - `POST /send`, `POST /send/bulk`: accept messages (202 / 200 for a duplicate).
//! - `GET /messages/{id}`: a message, its deliveries and every attempt.
//! - `POST /templates`, `GET /templates`, `GET /templates/{name}`,
//!   `GET /templates/{name}/versions/{version}`: versioned templates.
//! - `PUT|GET|DELETE /subscribers/{id}`, `GET /subscribers`: recipients and their addresses.
//! - `GET /dead-letters`, `POST /dead-letters/{id}/requeue`: failed deliveries.
//! - `GET /providers`: channels, providers, in-flight sends and breakers of this process.
//! - `GET /inbox/{subscriber}`, `POST /inbox/{subscriber}/{item}/read`,
//!   `POST /inbox/{subscriber}/read-all`, `GET /inbox/{subscriber}/unread-count`,
//!   `GET /inbox/{subscriber}/stream` (SSE), `POST /subscribers/{id}/inbox-token`: the in-app
//!   inbox, readable by the subscriber itself with its token.
//! - `PUT|GET /subscribers/{id}/preferences`: opt-outs per channel and topic.
//! - `PUT|GET /topics/{key}`, `POST /topics/{key}/subscribers`,
//!   `DELETE /topics/{key}/subscribers/{id}`: topics, for broadcasts (`to: {"topic": key}`).
//! - `POST|GET /unsubscribe?token=`: one-click unsubscribe (RFC 8058) of the links in emails;
//!   no credentials, the signed token is one (GET only shows a confirmation page).

pub mod auth;
pub mod dto;
mod inbox;
mod messages;
mod ops;
mod send;
mod subscribers;
mod templates;
mod topics;
mod unsubscribe;

use std::sync::Arc;

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use praxis_http::idempotency::IdempotencyStore;

use crate::settings::NotifySettings;
use crate::store::Store;
use crate::store::queue::Queue;
use crate::store::templates::Templates;
use crate::workers::accept::Accepter;
use crate::workers::dispatch::{Dispatch, Wakers};
use crate::workers::inapp::Inbox;

/// OpenAPI tag of the notification routes.
pub const TAG: &str = "notify";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    accepter: Accepter,
    store: Store,
    queue: Queue,
    templates: Templates,
    dispatch: Dispatch,
    wakers: Wakers,
    idempotency: IdempotencyStore,
    settings: Arc<NotifySettings>,
    inbox: Inbox,
}

impl AppState {
    /// The state of the routes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        accepter: Accepter,
        store: Store,
        queue: Queue,
        templates: Templates,
        dispatch: Dispatch,
        wakers: Wakers,
        idempotency: IdempotencyStore,
        settings: Arc<NotifySettings>,
        inbox: Inbox,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                accepter,
                store,
                queue,
                templates,
                dispatch,
                wakers,
                idempotency,
                settings,
                inbox,
            }),
        }
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(send::send))
        .routes(routes!(send::send_bulk))
        .routes(routes!(messages::get_message))
        .routes(routes!(
            templates::create_template,
            templates::list_templates
        ))
        .routes(routes!(templates::get_template))
        .routes(routes!(templates::get_template_version))
        .routes(routes!(subscribers::list_subscribers))
        .routes(routes!(
            subscribers::put_subscriber,
            subscribers::get_subscriber,
            subscribers::delete_subscriber
        ))
        .routes(routes!(ops::list_dead_letters))
        .routes(routes!(ops::requeue_dead_letter))
        .routes(routes!(ops::providers))
        .routes(routes!(
            subscribers::put_preferences,
            subscribers::get_preferences
        ))
        .routes(routes!(topics::put_topic, topics::get_topic))
        .routes(routes!(topics::add_subscribers))
        .routes(routes!(topics::remove_subscriber))
        .routes(routes!(inbox::list_inbox))
        .routes(routes!(inbox::mark_read))
        .routes(routes!(inbox::read_all))
        .routes(routes!(inbox::unread_count))
        .routes(routes!(inbox::stream))
        .routes(routes!(inbox::inbox_token))
        .routes(routes!(
            unsubscribe::unsubscribe,
            unsubscribe::unsubscribe_page
        ))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    // A subscriber's time zone is one the bundled database knows (`null`: none).
    let zones = jiff::tz::db()
        .available()
        .map(|name| serde_json::Value::from(name.as_str()))
        .chain([serde_json::Value::Null]);
    praxis_http::openapi::set_property_enum(&mut doc, "PutSubscriber", "timezone", zones);
    (router, doc)
}
