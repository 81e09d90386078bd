//! `praxis backup --to DIR`: an online backup of an embedded deployment.
//!
//! The database is copied with SQLite's `VACUUM INTO`: one read transaction, so the copy is a
//! consistent snapshot while the server keeps reading and writing (WAL mode: writers do not
//! wait for it). The secrets generated into the data dir are copied beside it (owner-only), so
//! a restored server accepts the same admin key and access tokens and signs webhooks the same
//! way. The directory is created by the command and must not exist: a backup never
//! overwrites anything.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use praxis_infra::Db;
use tracing::info;

use crate::config::Config;
use crate::config::values::{DatabaseKind, mask_url};

/// The database file name in a data dir (and so in a backup).
const DATABASE_FILE: &str = "praxis.db";

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
    info!(
        backup = %to.display(),
        database = %target.display(),
        secrets = %copied.join(", "),
        "backup written; restore by starting praxis serve --data-dir on it"
    );
    Ok(())
}
