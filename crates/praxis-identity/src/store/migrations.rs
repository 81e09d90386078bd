//! The identity system's schema, per backend. Its tables belong to it alone (`identity_*`).
//!
//! Times are unix milliseconds (`BIGINT`), ids are UUIDv7 text, secrets are stored only as
//! BLAKE3 hex (refresh tokens, API keys) or argon2id PHC strings (passwords).

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the identity system, applied at start.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "identity",
    migrations: &[Migration {
        version: 1,
        name: "accounts, refresh token families, api keys",
        sqlite: SQLITE_V1,
        postgres: POSTGRES_V1,
    }],
};

const SQLITE_V1: &str = "
CREATE TABLE identity_accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    plan TEXT NOT NULL DEFAULT 'free',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);
CREATE TABLE identity_refresh_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES identity_accounts (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX identity_refresh_family ON identity_refresh_tokens (family_id);
CREATE INDEX identity_refresh_account ON identity_refresh_tokens (account_id);
CREATE TABLE identity_api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES identity_accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX identity_api_keys_account ON identity_api_keys (account_id, created_at DESC, id DESC);
";

const POSTGRES_V1: &str = "
CREATE TABLE identity_accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    plan TEXT NOT NULL DEFAULT 'free',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
CREATE TABLE identity_refresh_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES identity_accounts (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX identity_refresh_family ON identity_refresh_tokens (family_id);
CREATE INDEX identity_refresh_account ON identity_refresh_tokens (account_id);
CREATE TABLE identity_api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES identity_accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX identity_api_keys_account ON identity_api_keys (account_id, created_at DESC, id DESC);
";
