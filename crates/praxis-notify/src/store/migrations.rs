//! The notification service's schema, per backend. Its tables belong to it alone (`notify_*`).
//!
//! Integers are `BIGINT` on PostgreSQL (sqlx's `Any` driver decodes them as `i64`), times are
//! unix milliseconds (UTC), booleans are 0/1 integers, JSON documents are text.
//!
//! - `notify_subscribers`: who can be notified and where (caller-chosen ids). `timezone`,
//!   `quiet_start` and `quiet_end` are stored for quiet hours (applied in a later version).
//! - `notify_templates`: immutable versions of each template (per-channel sources as JSON).
//! - `notify_messages`: accepted send requests; `(sender, idempotency_key)` is unique, so a
//!   retried request finds the first one.
//! - `notify_deliveries`: one row per message, channel and address: the schedule of the
//!   dispatchers (`next_attempt_at`, leases) and the state of each delivery. Unique on
//!   `(message_id, channel, address)`, so expanding a message twice creates nothing new.
//! - `notify_attempts`: every attempt of every delivery (time, provider, result).
//! - `notify_inbox`: the in-app inbox; a row's id is its delivery's id, so it is written once.
//! - (v2) `notify_subscribers.preferences`: opt-outs per channel and topic (JSON, NULL: none).
//! - (v2) `notify_topics`, `notify_topic_subscribers`: topics and their members, for
//!   broadcasts (`to: {"topic": key}`), fanned out at expansion.
//! - (v3) `notify_messages.digest_window`, `.digest_key`, `.dedupe_window`: the request's
//!   digest and dedupe window. `notify_deliveries.digest_key` marks a digest batch (queued,
//!   `digest_count` events) or a delivery that joined one (state `digested`, `digest_of` = the
//!   batch's id); the partial index finds open batches. `notify_dedupe`: per `(sender,
//!   recipient, template)`, the last message accepted with a dedupe window and when.
//! - (v4) `notify_messages_created`: messages by creation time, for the retention task.
//! - (v5) `notify_deliveries.traceparent`: the trace context of the work that created the
//!   delivery (the expansion of its message), so its attempts continue that trace.

use praxis_infra::{Migration, MigrationSet};

/// (v4) Retention selects old messages by `created_at` in batches; without this index each
/// batch scanned `notify_messages`. Same SQL on both backends.
const MESSAGES_BY_AGE: &str =
    "CREATE INDEX notify_messages_created ON notify_messages (created_at);";

/// (v5) The `traceparent` a delivery's attempts continue. Same SQL on both backends.
const DELIVERY_TRACE: &str = "ALTER TABLE notify_deliveries ADD COLUMN traceparent TEXT;";

/// Every migration of the notification service, applied by [`crate::service`] at start.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "notify",
    migrations: &[
        Migration {
            version: 1,
            name: "subscribers, templates, messages, deliveries, attempts, inbox",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "subscriber preferences, topics and their subscribers",
            sqlite: SQLITE_V2,
            postgres: POSTGRES_V2,
        },
        Migration {
            version: 3,
            name: "digests (batch columns on deliveries) and the dedupe window",
            sqlite: SQLITE_V3,
            postgres: POSTGRES_V3,
        },
        Migration {
            version: 4,
            name: "index of messages by creation time (retention)",
            sqlite: MESSAGES_BY_AGE,
            postgres: MESSAGES_BY_AGE,
        },
        Migration {
            version: 5,
            name: "trace context of each delivery",
            sqlite: DELIVERY_TRACE,
            postgres: DELIVERY_TRACE,
        },
    ],
};

const SQLITE_V1: &str = "
CREATE TABLE notify_subscribers (
    id TEXT PRIMARY KEY,
    email TEXT,
    phone TEXT,
    push_token TEXT,
    webhook_url TEXT,
    timezone TEXT,
    quiet_start TEXT,
    quiet_end TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE notify_templates (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    sources TEXT NOT NULL,
    example_data TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE notify_messages (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    idempotency_key TEXT,
    fingerprint TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subscriber_id TEXT,
    template TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    event_type TEXT,
    data TEXT NOT NULL,
    channels TEXT NOT NULL,
    topic TEXT,
    send_at INTEGER,
    created_at INTEGER NOT NULL,
    expanded_at INTEGER,
    UNIQUE (sender, idempotency_key)
);
CREATE INDEX notify_messages_sender ON notify_messages (sender, created_at);
CREATE TABLE notify_deliveries (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    subscriber_id TEXT,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_base INTEGER NOT NULL DEFAULT 0,
    scheduled_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    provider TEXT,
    last_error TEXT,
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (message_id, channel, address)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (channel, next_attempt_at)
    WHERE state IN ('queued', 'sending');
CREATE INDEX notify_deliveries_failed ON notify_deliveries (updated_at, id)
    WHERE state = 'failed';
CREATE TABLE notify_attempts (
    delivery_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    at INTEGER NOT NULL,
    provider TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
CREATE TABLE notify_inbox (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at INTEGER
);
CREATE INDEX notify_inbox_subscriber ON notify_inbox (subscriber_id, created_at DESC, id DESC);
";

const POSTGRES_V1: &str = r#"
CREATE TABLE notify_subscribers (
    id TEXT COLLATE "C" PRIMARY KEY,
    email TEXT,
    phone TEXT,
    push_token TEXT,
    webhook_url TEXT,
    timezone TEXT,
    quiet_start TEXT,
    quiet_end TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE notify_templates (
    name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    sources TEXT NOT NULL,
    example_data TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE notify_messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    sender TEXT NOT NULL,
    idempotency_key TEXT,
    fingerprint TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subscriber_id TEXT,
    template TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    event_type TEXT,
    data TEXT NOT NULL,
    channels TEXT NOT NULL,
    topic TEXT,
    send_at BIGINT,
    created_at BIGINT NOT NULL,
    expanded_at BIGINT,
    UNIQUE (sender, idempotency_key)
);
CREATE INDEX notify_messages_sender ON notify_messages (sender, created_at);
CREATE TABLE notify_deliveries (
    id TEXT COLLATE "C" PRIMARY KEY,
    message_id TEXT COLLATE "C" NOT NULL,
    subscriber_id TEXT,
    channel TEXT COLLATE "C" NOT NULL,
    address TEXT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    retry_base BIGINT NOT NULL DEFAULT 0,
    scheduled_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    provider TEXT,
    last_error TEXT,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (message_id, channel, address)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (channel, next_attempt_at)
    WHERE state IN ('queued', 'sending');
CREATE INDEX notify_deliveries_failed ON notify_deliveries (updated_at, id)
    WHERE state = 'failed';
CREATE TABLE notify_attempts (
    delivery_id TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    at BIGINT NOT NULL,
    provider TEXT NOT NULL,
    ok BIGINT NOT NULL,
    detail TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
CREATE TABLE notify_inbox (
    id TEXT COLLATE "C" PRIMARY KEY,
    subscriber_id TEXT COLLATE "C" NOT NULL,
    message_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notify_inbox_subscriber ON notify_inbox (subscriber_id, created_at DESC, id DESC);
"#;

const SQLITE_V2: &str = "
ALTER TABLE notify_subscribers ADD COLUMN preferences TEXT;
CREATE TABLE notify_topics (
    key TEXT PRIMARY KEY,
    name TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE notify_topic_subscribers (
    topic_key TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (topic_key, subscriber_id)
);
CREATE INDEX notify_topic_subscribers_subscriber ON notify_topic_subscribers (subscriber_id);
";

const POSTGRES_V2: &str = r#"
ALTER TABLE notify_subscribers ADD COLUMN preferences TEXT;
CREATE TABLE notify_topics (
    key TEXT COLLATE "C" PRIMARY KEY,
    name TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE notify_topic_subscribers (
    topic_key TEXT COLLATE "C" NOT NULL,
    subscriber_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (topic_key, subscriber_id)
);
CREATE INDEX notify_topic_subscribers_subscriber ON notify_topic_subscribers (subscriber_id);
"#;

const SQLITE_V3: &str = "
ALTER TABLE notify_messages ADD COLUMN digest_window INTEGER;
ALTER TABLE notify_messages ADD COLUMN digest_key TEXT;
ALTER TABLE notify_messages ADD COLUMN dedupe_window INTEGER;
ALTER TABLE notify_deliveries ADD COLUMN digest_key TEXT;
ALTER TABLE notify_deliveries ADD COLUMN digest_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notify_deliveries ADD COLUMN digest_of TEXT;
CREATE INDEX notify_deliveries_digest_open ON notify_deliveries (subscriber_id, channel, digest_key)
    WHERE state = 'queued' AND digest_key IS NOT NULL;
CREATE INDEX notify_deliveries_digest_of ON notify_deliveries (digest_of)
    WHERE digest_of IS NOT NULL;
CREATE TABLE notify_dedupe (
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    message_id TEXT NOT NULL,
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (sender, recipient, template)
);
";

const POSTGRES_V3: &str = r#"
ALTER TABLE notify_messages ADD COLUMN digest_window BIGINT;
ALTER TABLE notify_messages ADD COLUMN digest_key TEXT;
ALTER TABLE notify_messages ADD COLUMN dedupe_window BIGINT;
ALTER TABLE notify_deliveries ADD COLUMN digest_key TEXT COLLATE "C";
ALTER TABLE notify_deliveries ADD COLUMN digest_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notify_deliveries ADD COLUMN digest_of TEXT COLLATE "C";
CREATE INDEX notify_deliveries_digest_open ON notify_deliveries (subscriber_id, channel, digest_key)
    WHERE state = 'queued' AND digest_key IS NOT NULL;
CREATE INDEX notify_deliveries_digest_of ON notify_deliveries (digest_of)
    WHERE digest_of IS NOT NULL;
CREATE TABLE notify_dedupe (
    sender TEXT COLLATE "C" NOT NULL,
    recipient TEXT COLLATE "C" NOT NULL,
    template TEXT COLLATE "C" NOT NULL,
    message_id TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (sender, recipient, template)
);
"#;
