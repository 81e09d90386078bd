//! The sharding layer's tables in the control database (the platform's own database, not a
//! shard's). Times are unix milliseconds.
//!
//! - `shard_rings`: every version of every region's ring: its spec (JSON, the shards and
//!   their vnodes) and why it was made. The highest version of a region is its ring.
//! - `shard_databases`: where each shard of each region lives (a database URL).
//! - `shard_moves`: every rebalance: its region, the ring version it moves from and the ring
//!   it moves to, its phase, the change-log marks of its sources, its progress, and the lease
//!   of the process driving it, and whether an abort was asked for. At most one per region
//!   has not ended.

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
        Migration {
            version: 3,
            name: "rebalances",
            sqlite: V3,
            postgres: V3,
        },
        Migration {
            version: 4,
            name: "abort requests, seen by whichever process drives the move",
            sqlite: V4,
            postgres: V4,
        },
        Migration {
            version: 5,
            name: "shadow reads' verdicts per move",
            sqlite: V5,
            postgres: V5,
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

const V3: &str = "
CREATE TABLE shard_moves (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    from_version BIGINT NOT NULL,
    target TEXT NOT NULL,
    note TEXT NOT NULL,
    state TEXT NOT NULL,
    marks TEXT NOT NULL,
    copied BIGINT NOT NULL,
    total BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL,
    error TEXT,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX shard_moves_active ON shard_moves (region) WHERE state NOT IN ('done', 'aborted');
";

const V4: &str = "ALTER TABLE shard_moves ADD COLUMN abort_requested BIGINT NOT NULL DEFAULT 0;";

const V5: &str = "
ALTER TABLE shard_moves ADD COLUMN shadow_compared BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shard_moves ADD COLUMN shadow_behind BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shard_moves ADD COLUMN shadow_differed BIGINT NOT NULL DEFAULT 0;
";
