//! The file storage's schema, per backend. Its tables belong to it alone (`files_*`).
//!
//! Integers are `BIGINT` on PostgreSQL; times are unix milliseconds (UTC).
//!
//! - `files_uploads`: one row per tus upload (and per simple upload while it streams).
//!   `upload_offset` is the durable offset: the bytes a client may resume after.
//!   `append_state` is the blob store's state of the object being written (JSON, see
//!   `praxis_infra::blobs::Appending`), recorded in the same statement as the offset.
//!   `length` is NULL while deferred. `kind` is `single`, `partial` or `final`; a final upload
//!   lists its partial uploads in `parts` (JSON array). `lock_owner` and `lock_until` are the
//!   lease a PATCH holds, so two processes never append to one upload at once.
//!   `completed_at` is set once the object is sealed and (for a single or final upload) its
//!   file row exists.
//! - `files_blobs`: content addressing. One row per distinct content, keyed by its BLAKE3;
//!   `blob_key` names the object in the store (the key of the upload that first brought it),
//!   `refs` counts the files that use it, `tier` is `hot` or `cold`. A row is deleted only when
//!   `refs` is 0, and its object only after that delete commits.
//! - `files_files`: the files. The id is the upload's, so the upload URL downloads it.
//!   `sha256` is NULL until the checksum worker has read the content (the upload path computes
//!   only the BLAKE3 that addresses it).
//!   `scan_retry_at` and `checksum_retry_at` (v2) put off a file whose scan or checksum failed,
//!   so one failing file never holds up the queue behind it.
//! - `files_usage`: per account, bytes and files held or reserved by uploads in progress: the
//!   quota check is a conditional update of this row.
//! - `files_quotas`: per-account quotas set by an admin (the settings' defaults otherwise).
//! - `files_links`: public links (a token per link, revocable).

use praxis_infra::{Migration, MigrationSet};

/// Every migration of the file storage.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "files",
    migrations: &[
        Migration {
            version: 1,
            name: "uploads, blobs, files, usage, quotas, links",
            sqlite: SQLITE_V1,
            postgres: POSTGRES_V1,
        },
        Migration {
            version: 2,
            name: "retry times of the scan and checksum queues",
            sqlite: SQLITE_V2,
            postgres: POSTGRES_V2,
        },
    ],
};

const SQLITE_V1: &str = "
CREATE TABLE files_uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    length INTEGER,
    upload_offset INTEGER NOT NULL DEFAULT 0,
    append_state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    parts TEXT,
    blob_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    completed_at INTEGER,
    lock_owner TEXT,
    lock_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_uploads_expiry ON files_uploads (expires_at) WHERE completed_at IS NULL;
CREATE TABLE files_blobs (
    hash TEXT PRIMARY KEY,
    blob_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    refs INTEGER NOT NULL,
    tier TEXT NOT NULL DEFAULT 'hot',
    created_at INTEGER NOT NULL
);
CREATE TABLE files_files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sniffed_type TEXT,
    size INTEGER NOT NULL,
    blake3 TEXT NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX files_files_owner ON files_files (owner, created_at, id);
CREATE INDEX files_files_expiry ON files_files (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX files_files_status ON files_files (status);
CREATE INDEX files_files_unsummed ON files_files (created_at) WHERE sha256 IS NULL;
CREATE TABLE files_usage (
    owner TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL DEFAULT 0,
    files INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE files_quotas (
    owner TEXT PRIMARY KEY,
    max_bytes INTEGER NOT NULL,
    max_files INTEGER NOT NULL
);
CREATE TABLE files_links (
    token TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX files_links_file ON files_links (file_id);
";

const POSTGRES_V1: &str = "
CREATE TABLE files_uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    length BIGINT,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    append_state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    parts TEXT,
    blob_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT,
    lock_owner TEXT,
    lock_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX files_uploads_expiry ON files_uploads (expires_at) WHERE completed_at IS NULL;
CREATE TABLE files_blobs (
    hash TEXT PRIMARY KEY,
    blob_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    tier TEXT NOT NULL DEFAULT 'hot',
    created_at BIGINT NOT NULL
);
CREATE TABLE files_files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sniffed_type TEXT,
    size BIGINT NOT NULL,
    blake3 TEXT NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX files_files_owner ON files_files (owner, created_at, id);
CREATE INDEX files_files_expiry ON files_files (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX files_files_status ON files_files (status);
CREATE INDEX files_files_unsummed ON files_files (created_at) WHERE sha256 IS NULL;
CREATE TABLE files_usage (
    owner TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL DEFAULT 0,
    files BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE files_quotas (
    owner TEXT PRIMARY KEY,
    max_bytes BIGINT NOT NULL,
    max_files BIGINT NOT NULL
);
CREATE TABLE files_links (
    token TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX files_links_file ON files_links (file_id);
";

const SQLITE_V2: &str = "
ALTER TABLE files_files ADD COLUMN scan_retry_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files_files ADD COLUMN checksum_retry_at INTEGER NOT NULL DEFAULT 0;
";

const POSTGRES_V2: &str = "
ALTER TABLE files_files ADD COLUMN scan_retry_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE files_files ADD COLUMN checksum_retry_at BIGINT NOT NULL DEFAULT 0;
";
