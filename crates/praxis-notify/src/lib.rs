//! praxis-notify: a notification delivery service.
//!
//! Accept a send request, queue it durably, deliver it through a worker pool per channel
//! (email, webhook, SMS, push, in-app inbox) with retries, idempotency, per-provider rate
//! limits and circuit breakers.
//!
//! The pipeline:
//! 1. **accept** ([`workers::accept`]): `POST /api/v1/notify/send` validates the request, deduplicates
//!    on the sender's idempotency key and writes the message with a `notify.accepted` bus event
//!    in one transaction (the bus is the durable accept queue: an outbox table embedded, NATS
//!    JetStream scaled);
//! 2. **expand** ([`workers::expand`]): the `notify-expand` consumer turns each message into delivery
//!    rows, one per channel and address, idempotently (a message in digest mode joins or
//!    opens a batch: [`workers::digest`]; the accept step's dedupe window is [`domain::dedupe`]);
//! 3. **dispatch** ([`workers::dispatch`]): a worker per channel claims due deliveries with a lease
//!    ([`store::queue`]) and runs them on a bounded pool: breaker, rate limit, render, send, record;
//!    retries with exponential backoff and full jitter; dead letters after the last attempt.
//!
//! Besides the API, the commerce system's order events feed the pipeline: the
//! `notify-order-events` consumer ([`workers::order_events`]) accepts an email to the buyer
//! for each event type `order_events` lists, as a send request with an idempotency key.
//!
//! [`Notify::launch`] wires it onto a [`Platform`] whose migrations are applied; the binary
//! starts it through [`NotifySystem`].
//!
//! The crate has the shape of every system crate (imports only go down this list, never up):
//! - [`api`]: the HTTP routes, their DTOs and the OpenAPI document; imports everything below;
//! - [`workers`]: the pipeline stages and the background work (accept, expand, dispatch with
//!   the channel senders, digest batches, the in-app inbox, the metrics sampler, retention);
//!   imports `store` and `domain`;
//! - [`store`]: the SQL (messages, deliveries, subscribers, topics, templates, the deliveries
//!   queue, the unsubscribe write) and the migrations; imports `domain` only;
//! - [`domain`]: the pure rules and types (channels, addresses, templates, quiet hours, the
//!   SSRF checks, the dedupe window, unsubscribe tokens, the model); imports none of the others;
//! - at the top: [`settings`], [`section`] (the config section), the system plug-in, [`error`].

pub mod api;
pub mod domain;
pub mod error;
pub mod section;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::idempotency::IdempotencyStore;

use praxis_infra::{InfraError, Platform};

pub use error::NotifyError;
pub use section::NotifySection;
pub use settings::{BreakerSettings, NotifySettings, PerChannel, ProviderLimit};
pub use store::migrations::MIGRATIONS;
pub use system::NotifySystem;

use crate::api::AppState;
use crate::store::Store;
use crate::store::queue::Queue;
use crate::store::templates::Templates;
use crate::workers::accept::Accepter;
use crate::workers::dispatch::{Dispatch, Wakers, build_senders};
use crate::workers::order_events::OrderEmails;
use crate::workers::{expand, inapp, metrics, retention};

/// The running notification service of this process.
#[derive(Debug, Clone)]
pub struct Notify {
    state: AppState,
    dispatch: Dispatch,
}

impl Notify {
    /// Checks the settings, builds the providers, subscribes the expander and the order-email
    /// consumer ([`workers::order_events`], when `settings.order_events` lists a type) and
    /// starts a dispatcher per enabled channel (unless `settings.workers` is off), the metrics sampler
    /// and the retention task ([`workers::retention`]), all bound to `platform.shutdown`. Its migrations must have been
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
        let senders = build_senders(&settings, &platform.data_dir, &platform.tls)
            .map_err(|e| InfraError::Config(format!("notify: {e}")))?;
        // Built either way, so a process without workers still refuses bad provider settings.
        let senders = if settings.workers {
            senders
        } else {
            Default::default()
        };
        let dispatch = Dispatch::start(
            platform, &store, &queue, &templates, &settings, senders, &wakers,
        )?;
        let accepter = Accepter::new(
            store.clone(),
            templates.clone(),
            platform.bus.clone(),
            settings.clone(),
        );
        if settings.workers {
            expand::subscribe(&platform.bus, store.clone(), wakers.clone())?;
            if !settings.order_events.is_empty() {
                OrderEmails::new(
                    accepter.clone(),
                    store.clone(),
                    templates.clone(),
                    settings.order_events.iter().copied(),
                )
                .subscribe(&platform.bus)?;
            }
        }
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
