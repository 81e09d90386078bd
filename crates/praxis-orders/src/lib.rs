//! praxis-orders: order records sharded by region and hash over several databases (issue 20).
//!
//! - A user's **home region** is pinned at the first order and never changes; an order id
//!   carries its region (`eu_0193…`), so reading one needs no directory ([`store`]).
//! - Within a region, orders live on the shard the region's consistent-hash ring gives their
//!   id (`praxis_shard::Docs`); each user's **order list** is a per-user index, a collection
//!   placed by the user id, so a list is one shard's read. Writers index at once, and a tail
//!   of each shard's change log keeps the index right whatever happens to a writer
//!   ([`index`]).
//! - The **scatter report** asks every shard with bounded concurrency and a timeout per shard,
//!   and names the shards that did not answer ([`report`]).
//! - The **shards** are the admin's: status, dry runs, online moves (add a shard, or any new
//!   ring), abort, placement checks, and moves resumed when their process dies ([`admin`]).

pub mod admin;
pub mod api;
pub mod domain;
pub mod error;
pub mod index;
pub mod migrations;
pub mod report;
pub mod scopes;
pub mod settings;
pub mod store;
mod system;

use std::time::Duration;

use praxis_http::Service;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::sql::DbOptions;
use praxis_infra::{Backend, InfraError, Platform};
use praxis_shard::{Docs, Placement, Rebalancer, RingStore, RingWatch, Shadow, ShardSet};

pub use admin::ShardAdmin;
pub use error::OrdersError;
pub use migrations::MIGRATIONS;
pub use settings::OrdersSettings;
pub use store::OrderStore;
pub use system::OrdersSystem;

/// The running orders system. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrdersApp {
    store: OrderStore,
    admin: ShardAdmin,
    rings: RingWatch,
    shards: ShardSet,
    settings: OrdersSettings,
}

/// Where the shards' databases are, from the settings and the platform's database.
fn placement(settings: &OrdersSettings, platform: &Platform) -> Result<Placement, InfraError> {
    Ok(match (&settings.shard_url, platform.db.backend()) {
        (Some(template), _) => Placement::Template(template.clone()),
        (None, Backend::Sqlite) => Placement::Files(platform.data_dir.join("shards")),
        (None, Backend::Postgres) => Placement::same_server(platform.db.url())
            .map_err(|e| InfraError::Config(format!("[orders] shard_url: {e}")))?,
    })
}

impl OrdersApp {
    /// Checks the settings, creates each region's first ring if it has none, and starts the
    /// ring watch, the index tails and the resumption of orphaned moves (the migrations of
    /// [`MIGRATIONS`] and `praxis_shard::MIGRATIONS` must have been applied).
    pub async fn launch(
        platform: &Platform,
        settings: OrdersSettings,
    ) -> Result<OrdersApp, InfraError> {
        Settings::validate(&settings).map_err(|e| invalid_settings("orders", &e))?;
        let shard_error = |e: praxis_shard::ShardError| InfraError::Config(format!("[orders] {e}"));
        let rings = RingWatch::start(
            RingStore::new(platform.db.clone()),
            platform.broadcaster.clone(),
            settings.ring_poll,
            platform.shutdown.clone(),
            &platform.tasks,
        )
        .await
        .map_err(shard_error)?;
        let shards = ShardSet::new(
            platform.db.clone(),
            placement(&settings, platform)?,
            DbOptions {
                max_connections: settings.shard_connections,
                ..DbOptions::default()
            },
            vec![&praxis_shard::DOC_MIGRATIONS],
        );
        let shadow = Shadow::start(
            platform.db.clone(),
            shards.clone(),
            u64::from(settings.shadow_every),
            Duration::from_secs(1),
            platform.shutdown.clone(),
            &platform.tasks,
        );
        let docs = Docs::new(rings.clone(), shards.clone()).with_shadow(shadow);
        let store = OrderStore::new(
            docs,
            platform.db.clone(),
            &settings.regions,
            &settings.default_region,
        );
        let rebalancer = Rebalancer::new(
            platform.db.clone(),
            rings.clone(),
            shards.clone(),
            &platform.instance_id,
            settings.lease,
            i64::from(settings.move_batch),
        )
        .with_rate(settings.move_rate);
        let admin = ShardAdmin::new(
            rings.clone(),
            shards.clone(),
            store.docs().clone(),
            rebalancer,
            platform.tasks.clone(),
            settings.vnodes,
        );
        admin
            .ensure_regions(&settings.regions, settings.initial_shards)
            .await
            .map_err(|e| InfraError::Config(format!("[orders] cannot create the rings: {e}")))?;
        let tail = index::IndexTail::new(
            store.clone(),
            rings.clone(),
            shards.clone(),
            platform.db.clone(),
            &platform.instance_id,
            settings.lease,
        );
        platform.tasks.spawn(tail.run(platform.shutdown.clone()));
        platform
            .tasks
            .spawn(admin.clone().resume_orphans(platform.shutdown.clone()));
        let trigger = match settings.trigger.as_str() {
            "dry_run" => Some(admin::TriggerMode::DryRun),
            "on" => Some(admin::TriggerMode::On),
            _ => None,
        };
        if let Some(mode) = trigger.filter(|_| settings.trigger_documents > 0) {
            platform.tasks.spawn(admin.clone().run_trigger(
                settings.trigger_documents,
                mode,
                settings.trigger_interval,
                platform.shutdown.clone(),
            ));
        }
        Ok(OrdersApp {
            store,
            admin,
            rings,
            shards,
            settings,
        })
    }

    /// The orders.
    pub fn store(&self) -> &OrderStore {
        &self.store
    }

    /// The shards' admin.
    pub fn admin(&self) -> &ShardAdmin {
        &self.admin
    }

    /// Its routes and their description.
    pub fn service(&self) -> Service {
        let state = api::AppState {
            store: self.store.clone(),
            admin: self.admin.clone(),
            rings: self.rings.clone(),
            shards: self.shards.clone(),
            page_max: self.settings.page_max,
            report_timeout: self.settings.report_timeout,
            report_concurrency: self.settings.report_concurrency as usize,
        };
        let (router, doc) = api::router(state);
        Service::new("orders", router, doc)
    }
}
