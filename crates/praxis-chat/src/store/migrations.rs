//! The chat's schema, per backend. Its tables belong to it alone (`chat_*`).
//!
//! Integers are `BIGINT` on PostgreSQL (sqlx's `Any` driver decodes them as `i64`); times are
//! unix milliseconds (UTC).
//!
//! - `chat_conversations`: one row per conversation. `last_seq` is the sequence number of its
//!   newest message: a send increments it in the transaction that inserts the message, so
//!   sequences are gapless and the row lock orders the senders of one conversation only.
//!   `direct_key` (the two accounts, sorted) makes a direct conversation unique per pair.
//!   `last_at` (the newest activity) orders a member's list.
//! - `chat_members`: who is in a conversation, their role (`owner` | `member`), their read
//!   marker (`read_seq`, the highest sequence they have read) and (v2) their delivery marker
//!   (`delivered_seq`, the highest sequence one of their devices acknowledged; never below
//!   `read_seq`).
//! - `chat_messages`: the messages, keyed by (conversation, sequence); `client_id` is unique per
//!   sender and conversation, so a resend finds the first copy. A deleted message keeps its row
//!   with `body` NULL and `deleted_at` set (a tombstone), so sequences stay gapless. (v3) An
//!   index by `created_at` lets the retention delete the oldest messages in batches.
//! - (v4) End-to-end encryption. `chat_conversations.encrypted` (0 or 1) is fixed at creation;
//!   the messages of an encrypted conversation have `body` NULL and `encrypted` set: the
//!   client's envelope as JSON (algorithm, sender device, ciphertext), never read by the
//!   server. `chat_devices` is the key directory: one row per device of an account with its
//!   public identity keys and its signed prekey. `chat_one_time_keys` holds each device's
//!   one-time prekeys; a claim sets `claimed_at` (the row stays, so a key id is never handed
//!   out twice, even if a client uploads it again).

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the chat.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "chat",
    migrations: &[
        Migration {
            version: 1,
            name: "conversations, members, messages",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "delivery markers",
            sqlite: "ALTER TABLE chat_members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;",
            postgres: "ALTER TABLE chat_members ADD COLUMN delivered_seq BIGINT NOT NULL DEFAULT 0;",
        },
        Migration {
            version: 3,
            name: "messages by age, for the retention",
            sqlite: CREATED_INDEX,
            postgres: CREATED_INDEX,
        },
        Migration {
            version: 4,
            name: "end-to-end encryption: encrypted conversations, device keys, one-time prekeys",
            sqlite: SQLITE_V4,
            postgres: POSTGRES_V4,
        },
    ],
};

/// Same SQL on both backends.
const CREATED_INDEX: &str = "CREATE INDEX chat_messages_created ON chat_messages (created_at);";

const SQLITE_V1: &str = "
CREATE TABLE chat_conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT,
    direct_key TEXT UNIQUE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_at INTEGER NOT NULL
);
CREATE TABLE chat_members (
    conversation_id TEXT NOT NULL REFERENCES chat_conversations (id),
    account TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, account)
);
CREATE INDEX chat_members_account ON chat_members (account);
CREATE TABLE chat_messages (
    conversation_id TEXT NOT NULL REFERENCES chat_conversations (id),
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted_at INTEGER,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (conversation_id, sender, client_id);
";

const POSTGRES_V1: &str = "
CREATE TABLE chat_conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT,
    direct_key TEXT UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_at BIGINT NOT NULL
);
CREATE TABLE chat_members (
    conversation_id TEXT NOT NULL REFERENCES chat_conversations (id),
    account TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, account)
);
CREATE INDEX chat_members_account ON chat_members (account);
CREATE TABLE chat_messages (
    conversation_id TEXT NOT NULL REFERENCES chat_conversations (id),
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted_at BIGINT,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (conversation_id, sender, client_id);
";

const SQLITE_V4: &str = "
ALTER TABLE chat_conversations ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN encrypted TEXT;
CREATE TABLE chat_devices (
    account TEXT NOT NULL,
    device_id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    prekey_id TEXT,
    prekey TEXT,
    prekey_signature TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account, device_id)
);
CREATE TABLE chat_one_time_keys (
    account TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key TEXT NOT NULL,
    signature TEXT,
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    claimed_by TEXT,
    PRIMARY KEY (account, device_id, key_id)
);
CREATE INDEX chat_one_time_keys_free ON chat_one_time_keys (account, device_id, created_at)
    WHERE claimed_at IS NULL;
";

const POSTGRES_V4: &str = "
ALTER TABLE chat_conversations ADD COLUMN encrypted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN encrypted TEXT;
CREATE TABLE chat_devices (
    account TEXT NOT NULL,
    device_id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    prekey_id TEXT,
    prekey TEXT,
    prekey_signature TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account, device_id)
);
CREATE TABLE chat_one_time_keys (
    account TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key TEXT NOT NULL,
    signature TEXT,
    created_at BIGINT NOT NULL,
    claimed_at BIGINT,
    claimed_by TEXT,
    PRIMARY KEY (account, device_id, key_id)
);
CREATE INDEX chat_one_time_keys_free ON chat_one_time_keys (account, device_id, created_at)
    WHERE claimed_at IS NULL;
";
