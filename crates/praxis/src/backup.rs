//! `praxis backup --to DIR`: an online backup of an embedded deployment.
//!
//! The database is copied with SQLite's `VACUUM INTO`: one read transaction, so the copy is a
//! consistent snapshot while the server keeps reading and writing (WAL mode: writers do not
//! wait for it). The secrets generated into the data dir are copied beside it (owner-only), so
//! a restored server accepts the same admin key and access tokens and signs webhooks the same
//! way. The local blob folder (files' contents, when `blobs_url` is unset or `file://`) is
//! copied after the snapshot, so every file the snapshot holds has its bytes, except one
//! deleted during the copy. The directory is created by the command and must not exist: a
//! backup never overwrites anything.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use praxis_infra::Db;
use tracing::info;

use crate::config::Config;
use crate::config::values::{DatabaseKind, mask_url};

/// The database file name in a data dir (and so in a backup).
const DATABASE_FILE: &str = "praxis.db";

/// The blob folder's name in a data dir (and so in a backup).
const BLOBS_DIR: &str = "blobs";

/// The local blob folder of `cfg`: `<data_dir>/blobs` when `blobs_url` is unset, the folder of
/// a `file://` URL or a path; `None` for S3.
fn local_blobs(cfg: &Config) -> Option<std::path::PathBuf> {
    match cfg.blobs_url.as_deref().map(str::trim) {
        None | Some("") => Some(cfg.data_dir.join(BLOBS_DIR)),
        Some(url) if url.starts_with("s3://") => None,
        Some(url) => Some(std::path::PathBuf::from(
            url.strip_prefix("file://").unwrap_or(url),
        )),
    }
}

/// Copies the folder `from` into the new folder `to`, recursively (owner-only folders);
/// the number of files copied.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<usize> {
    std::fs::DirBuilder::new().mode(0o700).create(to)?;
    let mut n = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            n += copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes the backup into `to`, which must not exist.
pub async fn run(cfg: &Config, to: &Path) -> anyhow::Result<()> {
    if cfg.database != DatabaseKind::Sqlite {
        bail!(
            "praxis backup copies an embedded (SQLite) database; {} is PostgreSQL: back it up \
             with pg_dump or your provider's snapshots",
            mask_url(&cfg.database_url)
        );
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .with_context(|| {
            format!(
                "cannot create the backup directory {} (it must not exist yet)",
                to.display()
            )
        })?;
    let target = std::path::absolute(to.join(DATABASE_FILE))?;
    let db = Db::connect_with(&cfg.database_url, &cfg.db_options()?)
        .await
        .with_context(|| format!("cannot open {}", mask_url(&cfg.database_url)))?;
    let snapshot = db
        .snapshot_into(&target)
        .await
        .with_context(|| format!("cannot write the snapshot {}", target.display()));
    db.close().await;
    snapshot?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
    let mut copied = Vec::new();
    let generated = [
        cfg.generated_admin_key_path(),
        cfg.generated_jwt_secret_path(),
    ]
    .into_iter()
    .chain(
        cfg.system_secrets
            .iter()
            .map(|s| cfg.data_dir.join(s.spec.file)),
    );
    for file in generated.filter(|f| f.exists()) {
        let Some(name) = file.file_name() else {
            continue;
        };
        let dest = to.join(name);
        std::fs::copy(&file, &dest)
            .with_context(|| format!("cannot copy {} into the backup", file.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600))?;
        copied.push(name.to_string_lossy().into_owned());
    }
    let blobs = match local_blobs(cfg) {
        Some(from) if from.exists() => {
            let n = copy_tree(&from, &to.join(BLOBS_DIR))
                .with_context(|| format!("cannot copy the blobs of {}", from.display()))?;
            format!("{n} files from {}", from.display())
        }
        Some(_) => "none yet".to_owned(),
        None => "in S3 (back up the bucket with its own tools)".to_owned(),
    };
    info!(
        backup = %to.display(),
        database = %target.display(),
        secrets = %copied.join(", "),
        blobs = %blobs,
        "backup written; restore by starting praxis serve --data-dir on it"
    );
    Ok(())
}
