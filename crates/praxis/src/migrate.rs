//! `praxis migrate`: applies the shared and every selected system's migrations, then exits.

use anyhow::Context;
use praxis_infra::Db;
use tracing::info;

use crate::config::{Config, values::mask_url};
use crate::systems;

/// Connects to `database_url` and applies every migration set in order.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let shown = mask_url(&config.database_url);
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot connect to {shown}"))?;
    let sets = systems::shared_migrations().into_iter().chain(
        systems::selected(&config.only)
            .into_iter()
            .map(|system| system.migrations),
    );
    for set in sets {
        db.migrate(set)
            .await
            .with_context(|| format!("cannot apply the {} migrations to {shown}", set.system))?;
        info!(system = set.system, database = %shown, "migrations applied");
    }
    db.pool().close().await;
    Ok(())
}
