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
//! The catalog, the cart, the checkout saga and the routes build on it (not built yet: see
//! docs/commerce.md).

pub mod domain;
pub mod error;
pub mod providers;
pub mod settings;
pub mod store;
pub mod workers;

pub use error::CommerceError;
pub use settings::{InventorySettings, ReserveMode};
pub use store::migrations::MIGRATIONS;
pub use workers::catalog::{Catalog, CatalogSettings};
pub use workers::checkout::{Checkout, SagaSettings};
pub use workers::inventory::Inventory;
