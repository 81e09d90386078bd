//! praxis-commerce: the commerce system. This first part is its inventory, the piece that must
//! never oversell:
//!
//! - stock per SKU per warehouse (a warehouse belongs to a region), as `on_hand` and
//!   `reserved` counts ([`store`]);
//! - reservations with a TTL that take stock at once through a conditional update in the
//!   database, never a read-modify-write, and are confirmed, released, or expired by a sweeper
//!   exactly once ([`workers::inventory`], [`workers::sweeper`]);
//! - an append-only ledger of every change (receive, reserve, release, confirm, adjust) from
//!   which the stock can be derived, and a check that the two agree ([`Inventory::verify`]).
//!
//! On top: the catalog with versioned caches and the carts ([`workers::catalog`]), the
//! checkout saga ([`workers::checkout`]) with its providers ([`providers`]), and the routes
//! ([`api`]). [`CommerceApp::launch`] wires it onto a [`Platform`]; the binary starts it
//! through [`CommerceSystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod providers;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::{InfraError, Platform};

pub use error::CommerceError;
pub use settings::{CommerceSettings, InventorySettings, ReserveMode};
pub use store::migrations::MIGRATIONS;
pub use system::CommerceSystem;
pub use workers::catalog::{Catalog, CatalogSettings};
pub use workers::checkout::{Checkout, SagaSettings};
pub use workers::inventory::Inventory;

/// The running commerce system. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CommerceApp {
    catalog: Catalog,
    inventory: Inventory,
    checkout: Checkout,
    page_max: u32,
}

impl CommerceApp {
    /// Checks the settings, builds the use cases on `platform` (the migrations must have been
    /// applied) and starts the reservation sweeper and the checkout recovery. Payment and
    /// shipping go to the providers at `payment_url` and `shipping_url` over HTTP, or, unset,
    /// to built-in scripted providers that accept every call.
    pub async fn launch(
        platform: &Platform,
        settings: CommerceSettings,
    ) -> Result<CommerceApp, InfraError> {
        Settings::validate(&settings).map_err(|e| invalid_settings("commerce", &e))?;
        let inventory = Inventory::new(platform.db.clone(), settings.inventory());
        let catalog = Catalog::new(platform.db.clone(), &platform.caches, settings.catalog());
        let checkout = Checkout::new(
            platform.db.clone(),
            platform.bus.clone(),
            inventory.clone(),
            payments(&settings, platform)?,
            shipping(&settings, platform)?,
            settings.saga(),
        );
        platform
            .tasks
            .spawn(catalog.clone().run_revalidation(platform.shutdown.clone()));
        platform.tasks.spawn(workers::sweeper::run(
            inventory.clone(),
            platform.shutdown.clone(),
        ));
        platform.tasks.spawn(workers::checkout::run_recovery(
            checkout.clone(),
            platform.shutdown.clone(),
        ));
        Ok(CommerceApp {
            catalog,
            inventory,
            checkout,
            page_max: settings.page_max,
        })
    }

    /// The catalog and carts.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The checkout.
    pub fn checkout(&self) -> &Checkout {
        &self.checkout
    }

    /// Its routes and their description.
    pub fn service(&self) -> Service {
        let state = api::AppState::new(
            self.catalog.clone(),
            self.inventory.clone(),
            self.checkout.clone(),
            self.page_max,
        );
        let (router, doc) = api::router(state);
        Service::new("commerce", router, doc)
    }
}

/// The payment provider the settings name.
fn payments(
    settings: &CommerceSettings,
    platform: &Platform,
) -> Result<Arc<dyn providers::Payments>, InfraError> {
    Ok(match settings.payment_url.as_deref() {
        None => Arc::new(providers::Scripted::new("payment")),
        Some(url) => Arc::new(
            providers::HttpPayments::new(&provider_url_of("payment_url", url)?, &platform.tls)
                .map_err(InfraError::Config)?,
        ),
    })
}

/// The shipping provider the settings name.
fn shipping(
    settings: &CommerceSettings,
    platform: &Platform,
) -> Result<Arc<dyn providers::Shipping>, InfraError> {
    Ok(match settings.shipping_url.as_deref() {
        None => Arc::new(providers::Scripted::new("shipment")),
        Some(url) => Arc::new(
            providers::HttpShipping::new(&provider_url_of("shipping_url", url)?, &platform.tls)
                .map_err(InfraError::Config)?,
        ),
    })
}

fn provider_url_of(key: &str, text: &str) -> Result<url::Url, InfraError> {
    settings::provider_url(text).map_err(|e| InfraError::Config(format!("[commerce] {key} {e}")))
}
