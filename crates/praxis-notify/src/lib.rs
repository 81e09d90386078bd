//! praxis-notify: a notification delivery service.
//!
//! Accept a send request, queue it durably, deliver it through a worker pool per channel
//! (email, webhook, SMS, push, in-app inbox) with retries, idempotency, per-provider rate
//! limits and circuit breakers.
//!
//! The pipeline:
//! 1. **accept** ([`accept`]): `POST /api/v1/notify/send` validates the request, deduplicates
//!    on the sender's idempotency key and writes the message with a `notify.accepted` bus event
//!    in one transaction (the bus is the durable accept queue: an outbox table embedded, NATS
//!    JetStream scaled);
//! 2. **expand** ([`expand`]): the `notify-expand` consumer turns each message into delivery
//!    rows, one per channel and address, idempotently (a message in digest mode joins or
//!    opens a batch: [`digest`]; the accept step's dedupe window is [`dedupe`]);
//! 3. **dispatch** ([`dispatch`]): a worker per channel claims due deliveries with a lease
//!    ([`queue`]) and runs them on a bounded pool: breaker, rate limit, render, send, record;
//!    retries with exponential backoff and full jitter; dead letters after the last attempt.
//!
//! [`service`] wires it onto a [`Platform`] and returns the routes for the app.

pub mod accept;
pub mod address;
pub mod api;
pub mod channels;
pub mod dedupe;
pub mod digest;
pub mod dispatch;
pub mod error;
pub mod expand;
pub mod inapp;
pub mod metrics;
mod migrations;
pub mod model;
pub mod queue;
pub mod quiet_hours;
pub mod retention;
pub mod section;
pub mod settings;
pub mod ssrf;
pub mod store;
mod system;
pub mod template;
pub mod templates;
pub mod unsubscribe;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::idempotency::IdempotencyStore;
use praxis_http::system::{System, apply_migrations};
use praxis_infra::{InfraError, Platform};

pub use error::NotifyError;
pub use migrations::MIGRATIONS;
pub use section::NotifySection;
pub use settings::{BreakerSettings, NotifySettings, PerChannel, ProviderLimit};
pub use system::NotifySystem;

use crate::accept::Accepter;
use crate::api::AppState;
use crate::dispatch::{Dispatch, Wakers, build_senders};
use crate::queue::Queue;
use crate::store::Store;
use crate::templates::Templates;

/// The running notification service of this process.
#[derive(Debug, Clone)]
pub struct Notify {
    state: AppState,
    dispatch: Dispatch,
}

impl Notify {
    /// Applies the notify migrations (and the idempotency table's), then [`Notify::launch`]:
    /// for tests and programs that run notify without the binary.
    pub async fn start(
        platform: &Platform,
        settings: NotifySettings,
    ) -> Result<Notify, InfraError> {
        apply_migrations(platform, System::migrations(&NotifySystem)).await?;
        Notify::launch(platform, settings).await
    }

    /// Checks the settings, builds the providers, subscribes the expander and starts a
    /// dispatcher per enabled channel, the metrics sampler and the retention task
    /// ([`retention`]), all bound to `platform.shutdown`. Its migrations must have been
    /// applied (the binary applies every migration once, then launches).
    pub async fn launch(
        platform: &Platform,
        settings: NotifySettings,
    ) -> Result<Notify, InfraError> {
        settings
            .validate()
            .map_err(|e| InfraError::Config(format!("notify: {e}")))?;
        let settings = Arc::new(settings);
        let store = Store::new(platform.db.clone());
        let queue = Queue::new(platform.db.clone(), settings.lease);
        let templates = Templates::new(store.clone());
        let wakers = Wakers::new();
        let senders = build_senders(&settings, &platform.data_dir)
            .map_err(|e| InfraError::Config(format!("notify: {e}")))?;
        let dispatch = Dispatch::start(
            platform, &store, &queue, &templates, &settings, senders, &wakers,
        )?;
        expand::subscribe(&platform.bus, store.clone(), wakers.clone())?;
        platform.tasks.spawn(metrics::run_sampler(
            queue.clone(),
            settings.metrics_interval,
            platform.shutdown.clone(),
        ));
        platform.tasks.spawn(retention::run(
            retention::Pruner::new(store.clone(), settings.retention, settings.idempotency_ttl),
            settings.retention_interval,
            platform.shutdown.clone(),
        ));
        let accepter = Accepter::new(
            store.clone(),
            templates.clone(),
            platform.bus.clone(),
            settings.clone(),
        );
        let idempotency = IdempotencyStore::new(platform.db.clone(), settings.idempotency_ttl);
        let state = AppState::new(
            accepter,
            store,
            queue,
            templates,
            dispatch.clone(),
            wakers,
            idempotency,
            settings.clone(),
            inapp::Inbox::new(
                platform.db.clone(),
                platform.broadcaster.clone(),
                platform.shutdown.clone(),
                &settings.token_secret,
            ),
        );
        Ok(Notify { state, dispatch })
    }

    /// The HTTP routes under `/api/v1/notify`.
    pub fn service(&self) -> Service {
        let (router, openapi) = api::router(self.state.clone());
        Service::new("notify", router, openapi)
    }

    /// The dispatchers of this process.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
}

/// Starts the notification service on `platform` and returns its routes (see
/// [`Notify::start`]).
pub async fn service(platform: &Platform, settings: NotifySettings) -> Result<Service, InfraError> {
    Ok(Notify::start(platform, settings).await?.service())
}
