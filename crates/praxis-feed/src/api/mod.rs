//! HTTP routes of the feed (axum + utoipa), under `/api/v1/feed`.
//!
//! - `POST /posts`, `GET /posts/{id}`, `PUT /posts/{id}`, `DELETE /posts/{id}`: posts.
//! - `POST|DELETE /follows/{user}`, `POST|DELETE /blocks/{user}`, `POST|DELETE /mutes/{user}`:
//!   the caller's relations.
//! - `GET /timelines/home`, `GET /users/{user}/posts`: timelines, Mastodon-style paging.
//! - `GET /timelines/home/stream`: Server-Sent Events of new posts in the home timeline.
//! - `POST /admin/follows`: bulk import of follows (admin).

pub mod auth;
pub mod dto;
mod graph;
mod posts;
mod timelines;

use std::sync::Arc;

use praxis_http::idempotency::IdempotencyStore;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::bus::Bus;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::settings::FeedSettings;
use crate::store::Store;
use crate::workers::fanout::Fanouts;
use crate::workers::home::Reader;

/// OpenAPI tag of the feed routes.
pub const TAG: &str = "feed";

/// Broadcast channel of new posts (every process's streams filter it per viewer).
pub const POSTS_CHANNEL: &str = "feed-posts";

/// What every handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    reader: Reader,
    fanouts: Fanouts,
    bus: Bus,
    broadcaster: Broadcaster,
    shutdown: CancellationToken,
    idempotency: IdempotencyStore,
    settings: Arc<FeedSettings>,
}

impl AppState {
    /// The state of the routes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        reader: Reader,
        fanouts: Fanouts,
        bus: Bus,
        broadcaster: Broadcaster,
        shutdown: CancellationToken,
        idempotency: IdempotencyStore,
        settings: Arc<FeedSettings>,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                store,
                reader,
                fanouts,
                bus,
                broadcaster,
                shutdown,
                idempotency,
                settings,
            }),
        }
    }
}

impl AppState {
    /// The read side.
    pub fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    /// The caches that hydrate pages (invalidated by the writing routes).
    pub(crate) fn hydrator(&self) -> &crate::workers::hydrate::Hydrator {
        self.inner.reader.hydrator()
    }
}

/// Every route with its OpenAPI description.
pub fn router(state: AppState) -> (axum::Router, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(posts::create_post))
        .routes(routes!(
            posts::get_post,
            posts::edit_post,
            posts::delete_post
        ))
        .routes(routes!(graph::follow, graph::unfollow))
        .routes(routes!(graph::block, graph::unblock))
        .routes(routes!(graph::mute, graph::unmute))
        .routes(routes!(graph::import_follows))
        .routes(routes!(timelines::home))
        .routes(routes!(timelines::user_posts))
        .routes(routes!(timelines::user_home))
        .routes(routes!(timelines::stream))
        .with_state(state)
        .split_for_parts();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    (router, doc)
}
