//! praxis-shortener: the URL shortener of praxis.
//!
//! - Create links (one or a thousand at once) with generated or custom codes, expiry, visit
//!   limits, tags, redirect status and query forwarding; `Idempotency-Key` and
//!   `find_if_exists` make retries safe.
//! - Redirect at `/{code}` from an in-process cache (then Redis, then the database) behind a
//!   Bloom filter of existing codes ([`workers::hot`]).
//! - Count visits through a bounded buffer, batched bus events and an exactly-once consumer
//!   ([`workers::visits`], [`workers::maintenance`]).
//! - Manage, list, QR-code and report on links ([`api`]).
//!
//! [`launch`] wires it onto a [`Platform`] whose migrations are applied and returns the routes;
//! the binary starts it through [`ShortenerSystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use tokio::sync::Notify;

use praxis_http::Service;
use praxis_http::idempotency::IdempotencyStore;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::cache::CacheOptions;
use praxis_infra::{InfraError, Platform};

pub use error::ShortenerError;
pub use settings::ShortenerSettings;
pub use store::migrations::MIGRATIONS;
pub use system::ShortenerSystem;

use crate::api::AppState;
use crate::domain::bloom::CodeFilter;
use crate::domain::codes::CodeFormat;
use crate::domain::link::Target;
use crate::store::Store;
use crate::store::allocator::CodeAllocator;
use crate::workers::hot::Resolver;
use crate::workers::links::{CREATED_CHANNEL, Links};
use crate::workers::maintenance::{self, Maintenance};
use crate::workers::visits::{BatchOptions, VisitSink};

/// Name of the redirect cache (L1 per process, L2 key space in Redis).
pub const CACHE_NAME: &str = "shortener.links";

/// Builds the shortener on `platform`: checks the settings, loads the Bloom filter of existing
/// codes, starts its background tasks (visit batcher, statistics consumer, created-code
/// listener, maintenance), all bound to `platform.shutdown`, and returns its routes. Its
/// migrations must have been applied.
///
/// On shutdown the visit batcher publishes what it holds when the token is cancelled, so the
/// binary should cancel the token and give tasks a moment before closing the bus and pool.
pub async fn launch(
    platform: &Platform,
    settings: ShortenerSettings,
) -> Result<Service, InfraError> {
    Settings::validate(&settings).map_err(|e| invalid_settings("shortener", &e))?;
    let settings = Arc::new(settings);
    let store = Store::new(platform.db.clone());

    let filter = Arc::new(CodeFilter::new(
        settings.bloom_capacity,
        settings.bloom_false_positive_rate,
    ));
    let rebuild = Arc::new(Notify::new());
    // Subscribe before the first build so announcements made meanwhile are not missed.
    let created_rx = platform.broadcaster.subscribe(CREATED_CHANNEL);
    maintenance::rebuild_filter(&store, &filter, settings.bloom_capacity).await?;

    let cache = platform.caches.build::<Target>(
        CACHE_NAME,
        CacheOptions {
            capacity: settings.cache_capacity,
            ttl: settings.cache_ttl,
            negative_ttl: settings.negative_ttl,
            jitter: 0.1,
            use_l2: settings.cache_use_l2,
        },
    );
    let format =
        CodeFormat::new(settings.code_length).map_err(|e| InfraError::Config(e.to_string()))?;
    let allocator = CodeAllocator::new(store.clone(), format, u64::from(settings.block_size));
    let links = Links::new(
        store.clone(),
        allocator,
        filter.clone(),
        cache.clone(),
        platform.broadcaster.clone(),
        settings.clone(),
        rebuild.clone(),
    );
    let resolver = Resolver::new(store.clone(), cache, filter.clone());

    // Visits are stored by the process that served them (workers::visits); the consumer still
    // applies batches that earlier versions published on the bus (left in an outbox or a
    // stream across an upgrade, or published by a process of the previous version during a
    // rolling one).
    maintenance::subscribe_stats(&platform.bus, store.clone())?;
    let shutdown = platform.shutdown.clone();
    let sink = if settings.visit_stats {
        let sink = VisitSink::new(settings.visit_buffer, settings.visit_batch_max);
        platform.tasks.spawn(crate::workers::visits::run_flusher(
            sink.clone(),
            store.clone(),
            BatchOptions {
                max: settings.visit_batch_max,
                interval: settings.visit_flush_interval,
            },
            shutdown.clone(),
        ));
        sink
    } else {
        VisitSink::disabled()
    };
    platform.tasks.spawn(maintenance::run_created_listener(
        created_rx,
        filter.clone(),
        rebuild.clone(),
        shutdown.clone(),
    ));
    platform.tasks.spawn(maintenance::run_maintenance(
        store,
        filter,
        rebuild,
        Maintenance {
            min_capacity: settings.bloom_capacity,
            rebuild_every: settings.bloom_rebuild_interval,
        },
        shutdown,
    ));

    let idempotency = IdempotencyStore::new(platform.db.clone(), settings.idempotency_ttl);
    let state = AppState::new(links, resolver, sink, idempotency, settings);
    let (router, openapi) = api::router(state);
    Ok(Service::new("shortener", router, openapi))
}
