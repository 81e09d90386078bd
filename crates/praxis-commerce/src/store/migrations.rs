//! The commerce system's schema, per backend. Its tables belong to it alone (`commerce_*`).
//!
//! Integers are `BIGINT` on PostgreSQL; times are unix milliseconds (UTC).
//!
//! - `commerce_warehouses`: a warehouse and the region it belongs to.
//! - `commerce_stock`: per SKU per warehouse, `on_hand` (physically there) and `reserved`
//!   (held by reservations); available is `on_hand - reserved`. Every change is a relative,
//!   conditional update of one row.
//! - `commerce_reservations`: one line of a checkout held in one warehouse: `status` `held`,
//!   `confirmed` or `released` (`released_reason`: `cancelled`, `failed`, `expired`),
//!   `expires_at` while held.
//! - `commerce_ledger`: append-only; one entry per change (`receive`, `reserve`, `release`,
//!   `confirm`, `adjust`) with its quantity, in `seq` order. The stock rows can be derived
//!   from it (`Inventory::verify`).
//! - `commerce_orders` (v2): an order and its checkout saga: `step` (`placed`, `reserved`,
//!   `authorized`, `shipped`, then `confirmed`; or `compensating`, then `cancelled`), the
//!   payment authorization and shipment the providers returned, why it failed, the buyer's
//!   `Idempotency-Key`, and the lease (`lease_owner`, `lease_until` on the database's clock)
//!   of the process driving it. Its lines are JSON.
//! - `commerce_products` (v3): a product, its `version` (bumped by every change to it, its
//!   variants or their prices: the catalog cache's keys carry it); `commerce_variants`: a
//!   product's SKUs; `commerce_prices`: a SKU's price per currency, in cents.
//! - `commerce_carts` (v3): a buyer's cart, one row per SKU.
//! - v4: stock buckets. A stock row becomes one of `bucket` 0..N of its SKU and warehouse
//!   (N = 1 unless an admin split a hot SKU), and a reservation records the bucket it took
//!   from. The SKU's stock in a warehouse is the sum of its buckets.

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the commerce system.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "commerce",
    migrations: &[
        Migration {
            version: 1,
            name: "warehouses, stock, reservations, ledger",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "orders and their checkout saga",
            sqlite: SQLITE_V2,
            postgres: POSTGRES_V2,
        },
        Migration {
            version: 3,
            name: "catalog (products, variants, prices) and carts",
            sqlite: SQLITE_V3,
            postgres: POSTGRES_V3,
        },
        Migration {
            version: 4,
            name: "stock buckets (a hot SKU split into sub-rows)",
            sqlite: SQLITE_V4,
            postgres: POSTGRES_V4,
        },
        Migration {
            version: 5,
            name: "products by last change (each process polls the recent ones)",
            sqlite: V5,
            postgres: V5,
        },
    ],
};

const SQLITE_V1: &str = "
CREATE TABLE commerce_warehouses (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE commerce_stock (
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL REFERENCES commerce_warehouses (id),
    on_hand INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sku, warehouse)
);
CREATE TABLE commerce_reservations (
    id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    status TEXT NOT NULL,
    released_reason TEXT,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX commerce_reservations_expiry ON commerce_reservations (expires_at) WHERE status = 'held';
CREATE INDEX commerce_reservations_holder ON commerce_reservations (holder);
CREATE TABLE commerce_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    reservation_id TEXT,
    note TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX commerce_ledger_stock ON commerce_ledger (sku, warehouse);
";

const POSTGRES_V1: &str = "
CREATE TABLE commerce_warehouses (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE commerce_stock (
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL REFERENCES commerce_warehouses (id),
    on_hand BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sku, warehouse)
);
CREATE TABLE commerce_reservations (
    id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    status TEXT NOT NULL,
    released_reason TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX commerce_reservations_expiry ON commerce_reservations (expires_at) WHERE status = 'held';
CREATE INDEX commerce_reservations_holder ON commerce_reservations (holder);
CREATE TABLE commerce_ledger (
    seq BIGSERIAL PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    reservation_id TEXT,
    note TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX commerce_ledger_stock ON commerce_ledger (sku, warehouse);
";

const SQLITE_V2: &str = "
CREATE TABLE commerce_orders (
    id TEXT PRIMARY KEY,
    buyer TEXT NOT NULL,
    region TEXT,
    currency TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    lines TEXT NOT NULL,
    step TEXT NOT NULL,
    payment_auth TEXT,
    shipment TEXT,
    failure TEXT,
    idempotency_key TEXT,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX commerce_orders_idempotency ON commerce_orders (buyer, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX commerce_orders_buyer ON commerce_orders (buyer, id);
CREATE INDEX commerce_orders_open ON commerce_orders (lease_until)
    WHERE step NOT IN ('confirmed', 'cancelled');
";

const POSTGRES_V2: &str = "
CREATE TABLE commerce_orders (
    id TEXT PRIMARY KEY,
    buyer TEXT NOT NULL,
    region TEXT,
    currency TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    lines TEXT NOT NULL,
    step TEXT NOT NULL,
    payment_auth TEXT,
    shipment TEXT,
    failure TEXT,
    idempotency_key TEXT,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX commerce_orders_idempotency ON commerce_orders (buyer, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX commerce_orders_buyer ON commerce_orders (buyer, id);
CREATE INDEX commerce_orders_open ON commerce_orders (lease_until)
    WHERE step NOT IN ('confirmed', 'cancelled');
";

const SQLITE_V3: &str = "
CREATE TABLE commerce_products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE commerce_variants (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES commerce_products (id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX commerce_variants_product ON commerce_variants (product_id);
CREATE TABLE commerce_prices (
    sku TEXT NOT NULL REFERENCES commerce_variants (sku),
    currency TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (sku, currency)
);
CREATE TABLE commerce_carts (
    buyer TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (buyer, sku)
);
";

const POSTGRES_V3: &str = "
CREATE TABLE commerce_products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE commerce_variants (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES commerce_products (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX commerce_variants_product ON commerce_variants (product_id);
CREATE TABLE commerce_prices (
    sku TEXT NOT NULL REFERENCES commerce_variants (sku),
    currency TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    PRIMARY KEY (sku, currency)
);
CREATE TABLE commerce_carts (
    buyer TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (buyer, sku)
);
";

const V5: &str = "CREATE INDEX commerce_products_updated ON commerce_products (updated_at);";

const SQLITE_V4: &str = "
CREATE TABLE commerce_stock_v4 (
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL REFERENCES commerce_warehouses (id),
    bucket INTEGER NOT NULL DEFAULT 0,
    on_hand INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sku, warehouse, bucket)
);
INSERT INTO commerce_stock_v4 (sku, warehouse, bucket, on_hand, reserved)
    SELECT sku, warehouse, 0, on_hand, reserved FROM commerce_stock;
DROP TABLE commerce_stock;
ALTER TABLE commerce_stock_v4 RENAME TO commerce_stock;
ALTER TABLE commerce_reservations ADD COLUMN bucket INTEGER NOT NULL DEFAULT 0;
";

const POSTGRES_V4: &str = "
ALTER TABLE commerce_stock ADD COLUMN bucket BIGINT NOT NULL DEFAULT 0;
ALTER TABLE commerce_stock DROP CONSTRAINT commerce_stock_pkey;
ALTER TABLE commerce_stock ADD PRIMARY KEY (sku, warehouse, bucket);
ALTER TABLE commerce_reservations ADD COLUMN bucket BIGINT NOT NULL DEFAULT 0;
";
