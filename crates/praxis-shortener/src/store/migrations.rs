//! The shortener's schema, per backend. Its tables belong to it alone (`shortener_*`).
//!
//! Integers are `BIGINT` on PostgreSQL (sqlx's `Any` driver decodes them as `i64`), times are
//! unix milliseconds, days are `YYYY-MM-DD` text, booleans are 0/1 integers.

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the shortener, applied once per start by the binary.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "shortener",
    migrations: &[
        Migration {
            version: 1,
            name: "links, tags, sequence, visit statistics",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "agent classes in the day row of visit statistics",
            sqlite: SQLITE_V2,
            postgres: POSTGRES_V2,
        },
    ],
};

/// The agent classes move into the (code, day) row: one upsert per link and day instead of
/// one more per class. Agent rows already in `shortener_visit_dims` stay and are still read
/// (summed with the columns), so nothing is copied and a process of the previous version
/// that still writes them during a rolling upgrade is counted too.
const SQLITE_V2: &str = "
ALTER TABLE shortener_daily_visits ADD COLUMN agent_bot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shortener_daily_visits ADD COLUMN agent_mobile INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shortener_daily_visits ADD COLUMN agent_desktop INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shortener_daily_visits ADD COLUMN agent_other INTEGER NOT NULL DEFAULT 0;
";

const POSTGRES_V2: &str = "
ALTER TABLE shortener_daily_visits
    ADD COLUMN agent_bot BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN agent_mobile BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN agent_desktop BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN agent_other BIGINT NOT NULL DEFAULT 0;
";

const SQLITE_V1: &str = "
CREATE TABLE shortener_links (
    code TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    url_hash TEXT NOT NULL,
    custom INTEGER NOT NULL DEFAULT 0,
    redirect INTEGER NOT NULL,
    forward_query INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    max_visits INTEGER,
    visit_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX shortener_links_owner_created ON shortener_links (owner, created_at DESC, code DESC);
CREATE INDEX shortener_links_owner_url ON shortener_links (owner, url_hash);
CREATE TABLE shortener_link_tags (
    code TEXT NOT NULL REFERENCES shortener_links (code) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (code, tag)
);
CREATE INDEX shortener_link_tags_list ON shortener_link_tags (owner, tag, created_at DESC, code DESC);
CREATE TABLE shortener_sequence (
    id INTEGER PRIMARY KEY,
    next_value INTEGER NOT NULL
);
INSERT INTO shortener_sequence (id, next_value) VALUES (1, 0);
CREATE TABLE shortener_daily_visits (
    code TEXT NOT NULL,
    day TEXT NOT NULL,
    visits INTEGER NOT NULL,
    PRIMARY KEY (code, day)
);
CREATE TABLE shortener_visit_dims (
    code TEXT NOT NULL,
    day TEXT NOT NULL,
    dim TEXT NOT NULL,
    value TEXT NOT NULL,
    visits INTEGER NOT NULL,
    PRIMARY KEY (code, day, dim, value)
);
CREATE TABLE shortener_visit_totals (
    code TEXT PRIMARY KEY,
    visits INTEGER NOT NULL,
    last_visit_at INTEGER NOT NULL
);
CREATE TABLE shortener_applied_batches (
    batch_id TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
);
CREATE INDEX shortener_applied_batches_at ON shortener_applied_batches (applied_at);
";

const POSTGRES_V1: &str = r#"
CREATE TABLE shortener_links (
    code TEXT COLLATE "C" PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    url_hash TEXT NOT NULL,
    custom BIGINT NOT NULL DEFAULT 0,
    redirect BIGINT NOT NULL,
    forward_query BIGINT NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    max_visits BIGINT,
    visit_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX shortener_links_owner_created ON shortener_links (owner, created_at DESC, code DESC);
CREATE INDEX shortener_links_owner_url ON shortener_links (owner, url_hash);
CREATE TABLE shortener_link_tags (
    code TEXT COLLATE "C" NOT NULL REFERENCES shortener_links (code) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (code, tag)
);
CREATE INDEX shortener_link_tags_list ON shortener_link_tags (owner, tag, created_at DESC, code DESC);
CREATE TABLE shortener_sequence (
    id BIGINT PRIMARY KEY,
    next_value BIGINT NOT NULL
);
INSERT INTO shortener_sequence (id, next_value) VALUES (1, 0);
CREATE TABLE shortener_daily_visits (
    code TEXT COLLATE "C" NOT NULL,
    day TEXT COLLATE "C" NOT NULL,
    visits BIGINT NOT NULL,
    PRIMARY KEY (code, day)
);
CREATE TABLE shortener_visit_dims (
    code TEXT COLLATE "C" NOT NULL,
    day TEXT COLLATE "C" NOT NULL,
    dim TEXT NOT NULL,
    value TEXT NOT NULL,
    visits BIGINT NOT NULL,
    PRIMARY KEY (code, day, dim, value)
);
CREATE TABLE shortener_visit_totals (
    code TEXT COLLATE "C" PRIMARY KEY,
    visits BIGINT NOT NULL,
    last_visit_at BIGINT NOT NULL
);
CREATE TABLE shortener_applied_batches (
    batch_id TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
CREATE INDEX shortener_applied_batches_at ON shortener_applied_batches (applied_at);
"#;
