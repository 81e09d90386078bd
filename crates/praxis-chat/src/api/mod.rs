//! HTTP routes of the chat (axum + utoipa), under `/api/v1/chat`.
//!
//! - `POST /conversations` (direct or group), `GET /conversations` (mine, with unread counts),
//!   `GET /conversations/{id}`.
//! - `POST /conversations/{id}/members`, `DELETE /conversations/{id}/members/{account}`.
//! - `POST|GET /conversations/{id}/messages` (send, history by sequence),
//!   `PATCH|DELETE /conversations/{id}/messages/{seq}`, `POST /conversations/{id}/read`.
//! - `GET /ws`: the WebSocket (frames in [`ws`]); `GET /events`: the same frames as
//!   Server-Sent Events ([`sse`]); `GET /presence`: contacts' presence ([`presence`]).
//! - End-to-end encryption's key directory ([`keys`]): `PUT /devices/{device_id}/keys`,
//!   `DELETE /devices/{device_id}`, `GET /accounts/{account}/devices`, `POST /keys/claim`.

pub mod auth;
mod conversations;
pub mod dto;
pub mod keys;
mod messages;
pub mod presence;
mod session;
pub mod sse;
pub mod ws;

use std::sync::Arc;

use praxis_http::Problem;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::workers::UseCases;

/// OpenAPI tag of the chat routes.
pub const TAG: &str = "chat";

/// Page size when a request names none.
const DEFAULT_LIMIT: u32 = 50;

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    chat: UseCases,
    shutdown: CancellationToken,
}

impl AppState {
    /// The state of the routes; open sockets close when `shutdown` is cancelled.
    pub fn new(chat: UseCases, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Shared { chat, shutdown }),
        }
    }
}

/// An account id as the API states it (paths and bodies): 1 to 128 visible ASCII characters.
/// The domain takes any id without spaces or control characters; the API narrows that to what
/// its OpenAPI pattern says, so the document and the answers agree.
fn check_account(field: &str, account: &str) -> Result<(), Problem> {
    if !account.is_empty() && account.len() <= 128 && account.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            "must be an account id of 1 to 128 visible ASCII characters",
        ))
    }
}

/// The page size: the default when absent; outside 1..=`max` is 400 naming `limit`.
fn page_limit(limit: Option<u32>, max: u32) -> Result<u32, Problem> {
    match limit {
        None => Ok(DEFAULT_LIMIT.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Problem::invalid(
            "limit",
            format!("must be from 1 to {max} (the page_max setting), got {n}"),
        )),
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let page_max = state.inner.chat.settings().page_max;
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(conversations::create, conversations::list))
        .routes(routes!(conversations::get))
        .routes(routes!(conversations::add_member))
        .routes(routes!(conversations::remove_member))
        .routes(routes!(messages::send, messages::history))
        .routes(routes!(messages::edit, messages::delete))
        .routes(routes!(messages::mark_read))
        .routes(routes!(ws::connect))
        .routes(routes!(sse::events))
        .routes(routes!(presence::presence))
        .routes(routes!(keys::upload))
        .routes(routes!(keys::delete))
        .routes(routes!(keys::devices))
        .routes(routes!(keys::claim))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    // The page size maximum is a setting: the document states the configured one.
    praxis_http::openapi::set_query_maximum(&mut doc, "limit", page_max.into());
    (router, doc)
}
