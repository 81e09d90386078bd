//! `praxis migrate`: applies the migrations of every system this process would run, then exits.

use anyhow::Context;
use praxis_infra::Db;
use tracing::info;

use crate::config::{Config, values::mask_url};
use crate::systems;

/// Connects to `database_url` and applies every migration set once, in order.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let shown = mask_url(&config.database_url);
    let db = Db::connect_with(&config.database_url, &config.db_options()?)
        .await
        .with_context(|| format!("cannot connect to {shown}"))?;
    db.migrate(&praxis_infra::bus::MIGRATIONS)
        .await
        .with_context(|| format!("cannot apply the bus migrations to {shown}"))?;
    apply(&db, config, &shown).await?;
    db.pool().close().await;
    Ok(())
}

/// Applies the migrations of every system that runs with this selection, each set once: the
/// one place system migrations run (`serve` calls it before it starts any system; the event
/// bus's own table is the platform's, created when it connects).
pub async fn apply(db: &Db, config: &Config, shown: &str) -> anyhow::Result<()> {
    for set in systems::migrations(systems::running(&config.only)) {
        db.migrate(set)
            .await
            .with_context(|| format!("cannot apply the {} migrations to {shown}", set.system))?;
        info!(system = set.system, database = %shown, "migrations applied");
    }
    Ok(())
}
