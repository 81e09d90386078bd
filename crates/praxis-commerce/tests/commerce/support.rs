//! The harness: an inventory on a fresh test backend, and what the cases check after a race.

use praxis_commerce::domain::model::Line;
use praxis_commerce::{Inventory, InventorySettings, ReserveMode};
use praxis_testkit::{Kind, TestBackend};

/// An inventory on `backend` (migrated), reserving in `mode`.
pub async fn inventory_on(backend: &TestBackend, mode: ReserveMode) -> Inventory {
    backend
        .platform
        .db
        .migrate(&praxis_commerce::MIGRATIONS)
        .await
        .unwrap_or_else(|e| panic!("commerce migrations failed on {}: {e}", backend.name));
    Inventory::new(
        backend.platform.db.clone(),
        InventorySettings {
            reserve_mode: mode,
            ..InventorySettings::default()
        },
    )
}

/// A fresh backend of `kind` and its inventory (conditional reservations).
pub async fn start(kind: Kind) -> (TestBackend, Inventory) {
    let backend = kind.start().await;
    let inventory = inventory_on(&backend, ReserveMode::Conditional).await;
    (backend, inventory)
}

/// One line.
pub fn line(sku: &str, quantity: i64) -> Line {
    Line {
        sku: sku.to_owned(),
        quantity,
    }
}

/// Runs a SQL statement on `backend`'s database (to age rows).
pub async fn sql(backend: &TestBackend, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(backend.platform.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// One integer from `backend`'s database.
pub async fn scalar(backend: &TestBackend, query: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_owned()))
        .fetch_one(backend.platform.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}
