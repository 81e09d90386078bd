//! The SQL of the catalog and the carts. Every change to a product, its variants or their
//! prices bumps the product's `version` in the same transaction.

use std::collections::BTreeMap;

use praxis_infra::{Db, InfraError};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::domain::catalog::{CartLine, Product, Variant};
use crate::error::CommerceError;

/// The catalog's and carts' tables.
#[derive(Debug, Clone)]
pub struct CatalogStore {
    db: Db,
}

async fn bump(conn: &mut AnyConnection, product: &str, now: i64) -> Result<bool, InfraError> {
    let done = sqlx::query(
        "UPDATE commerce_products SET version = version + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(product)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

impl CatalogStore {
    /// The store on `db` (the commerce migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a new product (version 1).
    pub async fn create_product(
        &self,
        id: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO commerce_products (id, name, description, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Renames or redescribes product `id`; `false` when it does not exist.
    pub async fn update_product(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        now: i64,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE commerce_products SET name = COALESCE($2, name), \
             description = COALESCE($3, description), version = version + 1, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Adds variant `sku` to product `product`.
    pub async fn add_variant(
        &self,
        product: &str,
        sku: &str,
        name: &str,
        now: i64,
    ) -> Result<(), CommerceError> {
        let mut tx = self.db.begin_write().await?;
        if !bump(&mut tx, product, now).await? {
            return Err(CommerceError::NotFound(format!("no product {product}")));
        }
        let added = sqlx::query(
            "INSERT INTO commerce_variants (sku, product_id, name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sku) DO NOTHING",
        )
        .bind(sku)
        .bind(product)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added == 0 {
            return Err(CommerceError::Conflict(format!(
                "sku {sku} exists already; SKUs are unique across the catalog"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets `sku`'s price in `currency`; the product it belongs to, or `None` when the SKU
    /// does not exist.
    pub async fn set_price(
        &self,
        sku: &str,
        currency: &str,
        amount_cents: i64,
        now: i64,
    ) -> Result<Option<String>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let product: Option<String> =
            sqlx::query_scalar("SELECT product_id FROM commerce_variants WHERE sku = $1")
                .bind(sku)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(product) = product else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO commerce_prices (sku, currency, amount_cents) VALUES ($1, $2, $3) \
             ON CONFLICT (sku, currency) DO UPDATE SET amount_cents = $3",
        )
        .bind(sku)
        .bind(currency)
        .bind(amount_cents)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx, &product, now).await?;
        tx.commit().await?;
        Ok(Some(product))
    }

    /// Product `id`'s version.
    pub async fn version(&self, id: &str) -> Result<Option<i64>, InfraError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM commerce_products WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?,
        )
    }

    /// The products changed at or after `since` (unix ms, the writers' clocks) and their
    /// versions.
    pub async fn changed_since(&self, since: i64) -> Result<Vec<(String, i64)>, InfraError> {
        let rows = sqlx::query("SELECT id, version FROM commerce_products WHERE updated_at >= $1")
            .bind(since)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("version")?)))
            .collect()
    }

    /// Product `id` with its variants and prices, all of one version: the reads sit between
    /// two reads of the version, and are made again when a change committed in between.
    pub async fn product(&self, id: &str) -> Result<Option<Product>, InfraError> {
        loop {
            let Some(before) = self.version(id).await? else {
                return Ok(None);
            };
            let product = self.product_rows(id).await?;
            if self.version(id).await? == Some(before)
                && let Some(p) = product
                && p.version == before
            {
                return Ok(Some(p));
            }
        }
    }

    async fn product_rows(&self, id: &str) -> Result<Option<Product>, InfraError> {
        let pool = self.db.pool();
        let row = sqlx::query(
            "SELECT id, name, description, version FROM commerce_products WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let variants = sqlx::query(
            "SELECT sku, name FROM commerce_variants WHERE product_id = $1 ORDER BY sku",
        )
        .bind(id)
        .fetch_all(pool)
        .await?;
        let prices = sqlx::query(
            "SELECT p.sku, p.currency, p.amount_cents FROM commerce_prices p \
             JOIN commerce_variants v ON v.sku = p.sku WHERE v.product_id = $1",
        )
        .bind(id)
        .fetch_all(pool)
        .await?;
        let mut by_sku: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for p in &prices {
            by_sku
                .entry(p.try_get("sku")?)
                .or_default()
                .insert(p.try_get("currency")?, p.try_get("amount_cents")?);
        }
        let variants = variants
            .iter()
            .map(|v| {
                let sku: String = v.try_get("sku")?;
                Ok(Variant {
                    prices: by_sku.remove(&sku).unwrap_or_default(),
                    sku,
                    name: v.try_get("name")?,
                })
            })
            .collect::<Result<Vec<_>, InfraError>>()?;
        Ok(Some(Product {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            version: row.try_get("version")?,
            variants,
        }))
    }

    /// The ids of products after `after` (by id), up to `limit`.
    pub async fn product_ids(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, InfraError> {
        let rows = sqlx::query(
            "SELECT id FROM commerce_products WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The prices of `skus` in `currency`, from the database (a checkout never pays a cached
    /// price).
    pub async fn prices(
        &self,
        skus: &[String],
        currency: &str,
    ) -> Result<BTreeMap<String, i64>, InfraError> {
        if skus.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT sku, amount_cents FROM commerce_prices WHERE sku IN ({}) AND currency = ${}",
            self.db.backend().placeholders(1, skus.len(), 1),
            skus.len() + 1
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for sku in skus {
            q = q.bind(sku);
        }
        let rows = q.bind(currency).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("sku")?, r.try_get("amount_cents")?)))
            .collect()
    }

    /// Whether `sku` is in the catalog.
    pub async fn has_sku(&self, sku: &str) -> Result<bool, InfraError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM commerce_variants WHERE sku = $1")
            .bind(sku)
            .fetch_one(self.db.pool())
            .await?;
        Ok(n > 0)
    }

    /// Adds `quantity` of `sku` to `buyer`'s cart (up to `max` of one SKU); the new quantity.
    pub async fn add_to_cart(
        &self,
        buyer: &str,
        sku: &str,
        quantity: i64,
        max: i64,
        now: i64,
    ) -> Result<Option<i64>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO commerce_carts (buyer, sku, quantity, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (buyer, sku) DO NOTHING",
        )
        .bind(buyer)
        .bind(sku)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "UPDATE commerce_carts SET quantity = quantity + $3, updated_at = $4 \
             WHERE buyer = $1 AND sku = $2 AND quantity + $3 <= $5 RETURNING quantity",
        )
        .bind(buyer)
        .bind(sku)
        .bind(quantity)
        .bind(now)
        .bind(max)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let total: i64 = row.try_get("quantity")?;
        tx.commit().await?;
        Ok(Some(total))
    }

    /// Sets `sku`'s quantity in `buyer`'s cart (0 removes it).
    pub async fn set_in_cart(
        &self,
        buyer: &str,
        sku: &str,
        quantity: i64,
        now: i64,
    ) -> Result<(), InfraError> {
        if quantity == 0 {
            sqlx::query("DELETE FROM commerce_carts WHERE buyer = $1 AND sku = $2")
                .bind(buyer)
                .bind(sku)
                .execute(self.db.pool())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO commerce_carts (buyer, sku, quantity, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (buyer, sku) DO UPDATE SET quantity = $3, updated_at = $4",
        )
        .bind(buyer)
        .bind(sku)
        .bind(quantity)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// `buyer`'s cart with each line's price in `currency`, from the database (its owner reads
    /// what it wrote, from any process).
    pub async fn cart(&self, buyer: &str, currency: &str) -> Result<Vec<CartLine>, InfraError> {
        let rows = sqlx::query(
            "SELECT c.sku, c.quantity, p.amount_cents FROM commerce_carts c \
             LEFT JOIN commerce_prices p ON p.sku = c.sku AND p.currency = $2 \
             WHERE c.buyer = $1 ORDER BY c.sku",
        )
        .bind(buyer)
        .bind(currency)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CartLine {
                    sku: r.try_get("sku")?,
                    quantity: r.try_get("quantity")?,
                    unit_cents: r.try_get("amount_cents")?,
                })
            })
            .collect()
    }

    /// Empties `buyer`'s cart.
    pub async fn clear_cart(&self, buyer: &str) -> Result<(), InfraError> {
        sqlx::query("DELETE FROM commerce_carts WHERE buyer = $1")
            .bind(buyer)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
