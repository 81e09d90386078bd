//! Tables of the bus: the outbox, group offsets (with an ownership lease) and dead letters.
//! Version 2 adds each event's trace context (`traceparent`).

use crate::sql::{Migration, MigrationSet};

/// Migrations of system `"bus"`: `praxis_outbox`, `praxis_bus_offsets`, `praxis_bus_dead_letters`.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "bus",
    migrations: &[
        Migration {
            version: 1,
            name: "outbox, offsets and dead letters",
            // AUTOINCREMENT: sequence numbers are never reused after pruning, so offsets stay valid.
            sqlite: "
CREATE TABLE praxis_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX praxis_outbox_topic_seq ON praxis_outbox (topic, seq);
CREATE TABLE praxis_bus_offsets (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    seq BIGINT NOT NULL,
    owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (topic, grp)
);
CREATE TABLE praxis_bus_dead_letters (
    id TEXT NOT NULL,
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    failed_at BIGINT NOT NULL,
    PRIMARY KEY (id, grp)
);",
            postgres: "
CREATE TABLE praxis_outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX praxis_outbox_topic_seq ON praxis_outbox (topic, seq);
CREATE TABLE praxis_bus_offsets (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    seq BIGINT NOT NULL,
    owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (topic, grp)
);
CREATE TABLE praxis_bus_dead_letters (
    id TEXT NOT NULL,
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    failed_at BIGINT NOT NULL,
    PRIMARY KEY (id, grp)
);",
        },
        Migration {
            version: 2,
            name: "trace context of each event",
            // The `traceparent` of the work that enqueued the event (NULL: none).
            sqlite: "ALTER TABLE praxis_outbox ADD COLUMN traceparent TEXT;",
            postgres: "ALTER TABLE praxis_outbox ADD COLUMN traceparent TEXT;",
        },
    ],
};
