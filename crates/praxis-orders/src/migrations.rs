//! The orders system's own tables in the platform's database (the shards' tables are
//! `praxis_shard::DOC_MIGRATIONS`, the rings' `praxis_shard::MIGRATIONS`).

use praxis_infra::{Migration, MigrationSet};

const V1: &str = "
CREATE TABLE orders_homes (
    user_id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE orders_tails (
    region TEXT NOT NULL,
    shard TEXT NOT NULL,
    seq BIGINT NOT NULL,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (region, shard)
);
";

/// The users' home regions, and where each shard's index tail is.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "orders",
    migrations: &[Migration {
        version: 1,
        name: "home regions and index tails",
        sqlite: V1,
        postgres: V1,
    }],
};
