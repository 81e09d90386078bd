//! praxis-feed: a news feed.
//!
//! Posts (text, media references, replies), follows, blocks and mutes; home and user
//! timelines with Mastodon-style paging (`max_id`, `since_id`, `min_id`, `limit`, `Link`
//! headers); a Server-Sent Events stream of the home timeline.
//!
//! The design (docs/feed.md):
//! - **write** ([`store::Store::create_post`]): the post row and a `feed.posted` bus event in
//!   one transaction (outbox embedded, JetStream scaled). A post is `pull` when its author has
//!   at least `celebrity_threshold` followers at creation, `push` otherwise, for good.
//! - **fan-out** ([`workers::fanout`]): a consumer writes each push post's id into the
//!   timelines of the author's active followers, in a timeline store ([`store::timeline`]:
//!   Redis sorted sets scaled, an in-process map embedded), capped per user.
//! - **read** ([`workers::home`]): a built timeline is merged with the pull posts of the
//!   followees and filtered at read time; a missing one is answered from the database and
//!   rebuilt behind.
//!
//! Layout (each folder imports only those after it): `api/` (routes, DTOs, OpenAPI),
//! `workers/` (the fan-out consumer, the read path, metrics), `store/` (SQL, the timeline store,
//! migrations), `domain/` (records and rules); `settings.rs` is the `[feed]` section and
//! `system.rs` the plug-in.
//!
//! [`Feed::launch`] wires it onto a [`Platform`] whose migrations are applied; the binary
//! starts it through [`FeedSystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::idempotency::IdempotencyStore;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::{InfraError, Platform};

pub use error::FeedError;
pub use settings::FeedSettings;
pub use store::migrations::MIGRATIONS;
pub use system::FeedSystem;

use crate::api::AppState;
use crate::store::Store;
use crate::store::timeline::{DynTimelines, MemoryTimelines, RedisTimelines};
use crate::workers::fanout::Fanouts;
use crate::workers::home::Reader;
use crate::workers::hydrate::Hydrator;

/// The running feed of this process.
#[derive(Clone)]
pub struct Feed {
    state: AppState,
    timelines: DynTimelines,
    fanouts: Fanouts,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("timelines", &self.timelines.kind())
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// Checks the settings, picks the timeline store (Redis when the platform has it, memory
    /// otherwise) and subscribes the fan-out consumer. Its migrations must have been applied.
    pub async fn launch(platform: &Platform, settings: FeedSettings) -> Result<Feed, InfraError> {
        Settings::validate(&settings).map_err(|e| invalid_settings("feed", &e))?;
        let settings = Arc::new(settings);
        let store = Store::new(platform.db.clone());
        let timelines: DynTimelines = match platform.redis() {
            Some(conn) => Arc::new(RedisTimelines::new(
                conn.clone(),
                &settings.key_prefix,
                settings.timeline_cap,
                settings.active_window,
            )),
            None => Arc::new(MemoryTimelines::new(
                settings.timeline_cap,
                settings.active_window,
            )),
        };
        let fanouts = Fanouts::new(
            store.clone(),
            timelines.clone(),
            settings.clone(),
            platform.tasks.clone(),
        );
        fanouts.subscribe(&platform.bus)?;
        let hydrator = Hydrator::new(
            store.clone(),
            &platform.caches,
            settings.post_cache_capacity,
            settings.relations_cache_capacity,
        );
        let reader = Reader::new(
            store.clone(),
            timelines.clone(),
            fanouts.clone(),
            settings.clone(),
            hydrator,
        );
        reader.spawn_touch_flusher(&platform.tasks, platform.shutdown.clone());
        let idempotency = IdempotencyStore::new(platform.db.clone(), settings.idempotency_ttl);
        let state = AppState::new(
            store,
            reader,
            fanouts.clone(),
            platform.bus.clone(),
            platform.broadcaster.clone(),
            platform.shutdown.clone(),
            idempotency,
            settings,
        );
        Ok(Feed {
            state,
            timelines,
            fanouts,
        })
    }

    /// The HTTP routes under `/api/v1/feed`.
    pub fn service(&self) -> Service {
        let (router, openapi) = api::router(self.state.clone());
        Service::new("feed", router, openapi)
    }

    /// The timeline store of this process (operators and tests).
    pub fn timelines(&self) -> &DynTimelines {
        &self.timelines
    }

    /// The caches that hydrate home pages in this process (operators and tests).
    pub fn hydrator(&self) -> &Hydrator {
        self.state.reader().hydrator()
    }

    /// The fan-out of this process.
    pub fn fanouts(&self) -> &Fanouts {
        &self.fanouts
    }
}
