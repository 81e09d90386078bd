//! The sharding layer's tables in the control database (the platform's own database, not a
//! shard's). Times are unix milliseconds.
//!
//! - `shard_rings`: every version of every region's ring: its spec (JSON, the shards and
//!   their vnodes) and why it was made. The highest version of a region is its ring.
//! - `shard_databases`: where each shard of each region lives (a database URL).

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the sharding layer.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "shard",
    migrations: &[
        Migration {
            version: 1,
            name: "versioned rings per region",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "where each shard lives",
            sqlite: V2,
            postgres: V2,
        },
    ],
};

const SQLITE_V1: &str = "
CREATE TABLE shard_rings (
    region TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (region, version)
);
";

const POSTGRES_V1: &str = "
CREATE TABLE shard_rings (
    region TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (region, version)
);
";

const V2: &str = "
CREATE TABLE shard_databases (
    region TEXT NOT NULL,
    shard TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (region, shard)
);
";
