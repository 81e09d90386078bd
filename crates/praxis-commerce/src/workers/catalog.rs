//! The catalog (products, variants, prices) and the carts.
//!
//! **Reads** go through two caches: a product's current `version` (L1 only, dropped in every
//! process by a write's invalidation broadcast, and by each process's own poll of the
//! products changed lately, every half `version_ttl`), then the product itself under the key
//! `<id>@<version>` (L1 and the shared L2, kept long: a key's content never changes). A write
//! bumps the version in its transaction, so the next read anywhere that sees the new version
//! loads the new content; a process that missed the broadcast sees it within `version_ttl`
//! through its poll. A load racing a write can only fill an old version's key, which nobody
//! asks for any more. One poll per process replaces a database read per product per
//! `version_ttl` (D90).
//!
//! **Carts** are read from the database: their owner reads what it wrote, from any process.
//! **A checkout** takes its prices from the database too, never from a cache.

use std::sync::Arc;
use std::time::Duration;

use praxis_infra::Db;
use praxis_infra::cache::{Cache, CacheFactory, CacheOptions};
use praxis_infra::sql::now_ms;

use crate::domain::catalog::{CartLine, Product, check_currency, check_description, check_title};
use crate::domain::model::{Line, MAX_QUANTITY, check_name, check_quantity};
use crate::domain::order::{NewOrder, OrderLine};
use crate::error::CommerceError;
use crate::store::catalog::CatalogStore;

/// How far back each poll looks for changed products, beyond its own interval: room for a
/// write's commit to lag its `updated_at`, and for the writers' clocks to differ.
const POLL_OVERLAP: Duration = Duration::from_secs(5);

/// The most lines one order given by its lines ("buy now") may have.
pub const MAX_ORDER_LINES: usize = 100;

/// The catalog's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSettings {
    /// The longest a change stays invisible to a process that missed its invalidation: each
    /// process polls the products changed lately every half of it.
    pub version_ttl: Duration,
    /// How long a product's content stays cached (its key carries its version, so this only
    /// bounds memory).
    pub product_ttl: Duration,
    /// Products kept in each process's L1.
    pub cache_capacity: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            version_ttl: Duration::from_millis(500),
            product_ttl: Duration::from_secs(3600),
            cache_capacity: 10_000,
        }
    }
}

/// The catalog and the carts. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: CatalogStore,
    versions: Cache<i64>,
    products: Cache<Product>,
    settings: Arc<CatalogSettings>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// The catalog on `db` (the commerce migrations applied), caching through `caches`.
    pub fn new(db: Db, caches: &CacheFactory, settings: CatalogSettings) -> Self {
        let versions = caches.build(
            "commerce.product-versions",
            CacheOptions {
                capacity: settings.cache_capacity,
                // Kept until a broadcast or this process's poll says the product changed.
                ttl: settings.product_ttl,
                negative_ttl: settings.version_ttl,
                jitter: 0.0,
                use_l2: false,
            },
        );
        let products = caches.build(
            "commerce.products",
            CacheOptions {
                capacity: settings.cache_capacity,
                ttl: settings.product_ttl,
                negative_ttl: settings.version_ttl,
                jitter: 0.1,
                use_l2: true,
            },
        );
        Self {
            store: CatalogStore::new(db),
            versions,
            products,
            settings: Arc::new(settings),
        }
    }

    /// Drops from this process's cache the versions of the products changed at or after
    /// `since` (unix ms) that it holds older; how many it dropped.
    pub async fn revalidate(&self, since: i64) -> Result<usize, CommerceError> {
        let mut dropped = 0;
        for (id, version) in self.store.changed_since(since).await? {
            let stale = match self.versions.get(&id).await {
                Some(Some(cached)) => cached < version,
                Some(None) => true,
                None => false,
            };
            if stale {
                self.versions.forget_local(&id);
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Polls the products changed lately every half `version_ttl` until `shutdown`, dropping
    /// the versions this process holds older ([`Catalog::revalidate`]).
    pub async fn run_revalidation(self, shutdown: tokio_util::sync::CancellationToken) {
        let every = self.settings.version_ttl / 2;
        let overlap = i64::try_from((every + POLL_OVERLAP).as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.revalidate(now_ms() - overlap).await {
                tracing::warn!(error = %e, "cannot poll the changed products; cached versions may be stale until the next poll");
            }
        }
    }

    /// Creates a product (no variants yet).
    pub async fn create_product(
        &self,
        name: &str,
        description: &str,
    ) -> Result<Product, CommerceError> {
        check_title("name", name)?;
        check_description(description)?;
        let id = uuid::Uuid::now_v7().to_string();
        self.store
            .create_product(&id, name, description, now_ms())
            .await?;
        self.fresh(&id).await
    }

    /// Renames or redescribes product `id`.
    pub async fn update_product(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Product, CommerceError> {
        if let Some(name) = name {
            check_title("name", name)?;
        }
        if let Some(description) = description {
            check_description(description)?;
        }
        if !self
            .store
            .update_product(id, name, description, now_ms())
            .await?
        {
            return Err(CommerceError::NotFound(format!("no product {id}")));
        }
        self.changed(id).await;
        self.fresh(id).await
    }

    /// Adds variant `sku` named `name` to product `product`.
    pub async fn add_variant(
        &self,
        product: &str,
        sku: &str,
        name: &str,
    ) -> Result<Product, CommerceError> {
        check_name("sku", sku)?;
        check_title("name", name)?;
        self.store.add_variant(product, sku, name, now_ms()).await?;
        self.changed(product).await;
        self.fresh(product).await
    }

    /// Sets `sku`'s price in `currency`.
    pub async fn set_price(
        &self,
        sku: &str,
        currency: &str,
        amount_cents: i64,
    ) -> Result<Product, CommerceError> {
        check_name("sku", sku)?;
        check_currency(currency)?;
        if !(0..=crate::domain::order::MAX_UNIT_CENTS).contains(&amount_cents) {
            return Err(CommerceError::invalid(
                "amount_cents",
                format!("must be from 0 to {}", crate::domain::order::MAX_UNIT_CENTS),
            ));
        }
        let Some(product) = self
            .store
            .set_price(sku, currency, amount_cents, now_ms())
            .await?
        else {
            return Err(CommerceError::NotFound(format!("no sku {sku}")));
        };
        self.changed(&product).await;
        self.fresh(&product).await
    }

    /// Product `id`, through the caches.
    pub async fn product(&self, id: &str) -> Result<Product, CommerceError> {
        let store = self.store.clone();
        let version = self
            .versions
            .get_or_load(id, || {
                let store = store.clone();
                let id = id.to_owned();
                async move { store.version(&id).await }
            })
            .await?
            .ok_or_else(|| CommerceError::NotFound(format!("no product {id}")))?;
        let key = format!("{id}@{version}");
        let found = self
            .products
            .get_or_load(&key, || {
                let store = store.clone();
                let id = id.to_owned();
                async move {
                    // The database may be a version ahead of this process's view: what it
                    // returns is cached under its own version's key.
                    Ok(store.product(&id).await?.filter(|p| p.version == version))
                }
            })
            .await?;
        match found {
            Some(p) => Ok(p),
            // A newer version exists: read it as it is now.
            None => self.fresh(id).await,
        }
    }

    /// Products after id `after`, up to `limit`, each through the caches.
    pub async fn products(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Product>, CommerceError> {
        let mut out = Vec::new();
        for id in self.store.product_ids(after, limit).await? {
            match self.product(&id).await {
                Ok(p) => out.push(p),
                Err(CommerceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Product `id` from the database, cached under its version.
    async fn fresh(&self, id: &str) -> Result<Product, CommerceError> {
        let p = self
            .store
            .product(id)
            .await?
            .ok_or_else(|| CommerceError::NotFound(format!("no product {id}")))?;
        self.products
            .insert(&format!("{id}@{}", p.version), p.clone())
            .await;
        Ok(p)
    }

    /// Tells every process that product `id` changed.
    async fn changed(&self, id: &str) {
        if let Err(e) = self.versions.invalidate(id).await {
            tracing::warn!(product = id, error = %e, "a product's change was not broadcast; other processes see it within version_ttl");
        }
    }

    /// Adds `quantity` of `sku` to `buyer`'s cart; the cart in `currency`.
    pub async fn add_to_cart(
        &self,
        buyer: &str,
        sku: &str,
        quantity: i64,
        currency: &str,
    ) -> Result<Vec<CartLine>, CommerceError> {
        check_name("buyer", buyer)?;
        check_name("sku", sku)?;
        check_quantity("quantity", quantity)?;
        check_currency(currency)?;
        if !self.store.has_sku(sku).await? {
            return Err(CommerceError::NotFound(format!(
                "no sku {sku} in the catalog"
            )));
        }
        if self
            .store
            .add_to_cart(buyer, sku, quantity, MAX_QUANTITY, now_ms())
            .await?
            .is_none()
        {
            // The request is valid; the cart's current line is what it conflicts with.
            return Err(CommerceError::Conflict(format!(
                "adding {quantity} of {sku} would pass the most a cart holds of one sku, \
                 {MAX_QUANTITY}; set the quantity instead"
            )));
        }
        Ok(self.store.cart(buyer, currency).await?)
    }

    /// Sets `sku`'s quantity in `buyer`'s cart (0 removes it); the cart in `currency`.
    pub async fn set_in_cart(
        &self,
        buyer: &str,
        sku: &str,
        quantity: i64,
        currency: &str,
    ) -> Result<Vec<CartLine>, CommerceError> {
        check_name("buyer", buyer)?;
        check_name("sku", sku)?;
        check_currency(currency)?;
        if quantity != 0 {
            check_quantity("quantity", quantity)?;
            if !self.store.has_sku(sku).await? {
                return Err(CommerceError::NotFound(format!(
                    "no sku {sku} in the catalog"
                )));
            }
        }
        self.store
            .set_in_cart(buyer, sku, quantity, now_ms())
            .await?;
        Ok(self.store.cart(buyer, currency).await?)
    }

    /// `buyer`'s cart, priced in `currency`.
    pub async fn cart(&self, buyer: &str, currency: &str) -> Result<Vec<CartLine>, CommerceError> {
        check_name("buyer", buyer)?;
        check_currency(currency)?;
        Ok(self.store.cart(buyer, currency).await?)
    }

    /// Empties `buyer`'s cart (after its checkout confirmed).
    pub async fn clear_cart(&self, buyer: &str) -> Result<(), CommerceError> {
        Ok(self.store.clear_cart(buyer).await?)
    }

    /// The order `buyer`'s cart makes in `currency`, priced from the database: an empty cart
    /// or a SKU without a price in that currency is refused, naming it.
    pub async fn order_from_cart(
        &self,
        buyer: &str,
        currency: &str,
        region: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<NewOrder, CommerceError> {
        let cart = self.cart(buyer, currency).await?;
        if cart.is_empty() {
            return Err(CommerceError::Conflict(
                "the cart is empty; add something first".to_owned(),
            ));
        }
        let skus: Vec<String> = cart.iter().map(|l| l.sku.clone()).collect();
        let prices = self.store.prices(&skus, currency).await?;
        let mut lines = Vec::with_capacity(cart.len());
        for l in cart {
            let Some(unit) = prices.get(&l.sku) else {
                return Err(CommerceError::Conflict(format!(
                    "sku {} has no price in {currency}; remove it or pay in another currency",
                    l.sku
                )));
            };
            lines.push(OrderLine {
                sku: l.sku,
                quantity: l.quantity,
                unit_cents: *unit,
            });
        }
        Ok(NewOrder {
            buyer: buyer.to_owned(),
            region: region.map(str::to_owned),
            currency: currency.to_owned(),
            lines,
            idempotency_key: idempotency_key.map(str::to_owned),
        })
    }

    /// The order of `lines` ("buy now", the cart untouched) in `currency`, priced from the
    /// database like [`Catalog::order_from_cart`]: 1 to [`MAX_ORDER_LINES`] lines, each with a
    /// quantity the cart would take (the lines of a SKU named twice are added up, to at most
    /// what a cart holds of one SKU); a SKU not in the catalog is not found, one without a
    /// price in the currency a conflict, each naming it.
    pub async fn order_from_lines(
        &self,
        buyer: &str,
        lines: &[Line],
        currency: &str,
        region: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<NewOrder, CommerceError> {
        check_name("buyer", buyer)?;
        check_currency(currency)?;
        if lines.len() > MAX_ORDER_LINES {
            return Err(CommerceError::invalid(
                "lines",
                format!("at most {MAX_ORDER_LINES} lines"),
            ));
        }
        if lines.is_empty() {
            return Err(CommerceError::invalid("lines", "needs at least one line"));
        }
        let mut merged: Vec<Line> = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            check_name(&format!("lines[{i}].sku"), &l.sku)?;
            check_quantity(&format!("lines[{i}].quantity"), l.quantity)?;
            match merged.iter_mut().find(|m| m.sku == l.sku) {
                None => merged.push(l.clone()),
                Some(m) if m.quantity <= MAX_QUANTITY - l.quantity => m.quantity += l.quantity,
                Some(_) => {
                    return Err(CommerceError::invalid(
                        format!("lines[{i}].quantity"),
                        format!(
                            "sku {} adds up to more than {MAX_QUANTITY} over its lines",
                            l.sku
                        ),
                    ));
                }
            }
        }
        let skus: Vec<String> = merged.iter().map(|l| l.sku.clone()).collect();
        let prices = self.store.prices(&skus, currency).await?;
        let mut out = Vec::with_capacity(merged.len());
        for l in &merged {
            let Some(unit) = prices.get(&l.sku) else {
                if !self.store.has_sku(&l.sku).await? {
                    return Err(CommerceError::NotFound(format!(
                        "no sku {} in the catalog",
                        l.sku
                    )));
                }
                return Err(CommerceError::Conflict(format!(
                    "sku {} has no price in {currency}; pay in another currency",
                    l.sku
                )));
            };
            out.push(OrderLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_cents: *unit,
            });
        }
        Ok(NewOrder {
            buyer: buyer.to_owned(),
            region: region.map(str::to_owned),
            currency: currency.to_owned(),
            lines: out,
            idempotency_key: idempotency_key.map(str::to_owned),
        })
    }
}
