//! The inventory's use cases: warehouses and stock, reservations (reserve, confirm, release),
//! and the check that the stock agrees with its ledger.

use std::sync::Arc;

use praxis_infra::Db;
use praxis_infra::sql::now_ms;

use crate::domain::model::{
    Line, ReleaseReason, Reservation, check_name, check_quantity, checked_lines,
};
use crate::error::CommerceError;
use crate::settings::{InventorySettings, ReserveMode};
use crate::store::{Confirmed, Counts, MAX_BUCKETS, StockLevel, Store};

/// The inventory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Inventory {
    store: Store,
    settings: Arc<InventorySettings>,
}

/// A stock row that disagrees with its ledger or its held reservations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse: String,
    /// The stock row's counts (zero when there is no row).
    pub stock: Counts,
    /// What the ledger adds up to.
    pub ledger: Counts,
    /// What the held reservations add up to.
    pub held: i64,
    /// The buckets whose own row disagrees: `reserved` differs from the reservations held
    /// in that bucket, or less is on hand than is reserved.
    pub buckets: Vec<i64>,
}

/// The result of [`Inventory::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// Stocks (a SKU in a warehouse, all its buckets) checked.
    pub rows: usize,
    /// Rows whose counts differ from the ledger's, or whose `reserved` differs from the held
    /// reservations; empty when the inventory is consistent.
    pub mismatches: Vec<Mismatch>,
}

impl Inventory {
    /// The inventory on `db` (the commerce migrations applied).
    pub fn new(db: Db, settings: InventorySettings) -> Self {
        Self {
            store: Store::new(db),
            settings: Arc::new(settings),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &InventorySettings {
        &self.settings
    }

    /// The store (tests and tools inspect rows through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates warehouse `id` in `region` (again: no change).
    pub async fn create_warehouse(&self, id: &str, region: &str) -> Result<bool, CommerceError> {
        check_name("warehouse", id)?;
        check_name("region", region)?;
        self.store.create_warehouse(id, region, now_ms()).await
    }

    /// Adds `quantity` of `sku` to `warehouse`.
    pub async fn receive(
        &self,
        sku: &str,
        warehouse: &str,
        quantity: i64,
    ) -> Result<(), CommerceError> {
        check_name("sku", sku)?;
        check_name("warehouse", warehouse)?;
        check_quantity("quantity", quantity)?;
        self.store
            .receive(sku, warehouse, quantity, None, now_ms())
            .await
    }

    /// Corrects `warehouse`'s count of `sku` by `delta` (not below what is reserved; 0
    /// records nothing).
    pub async fn adjust(
        &self,
        sku: &str,
        warehouse: &str,
        delta: i64,
        note: &str,
    ) -> Result<(), CommerceError> {
        check_name("sku", sku)?;
        check_name("warehouse", warehouse)?;
        if delta.abs() > crate::domain::model::MAX_QUANTITY {
            return Err(CommerceError::invalid(
                "delta",
                "must be a change of at most 1,000,000,000 either way",
            ));
        }
        if delta == 0 {
            // A stocktake that found the count right: nothing to record.
            return match self.store.level(sku, warehouse).await? {
                Some(_) => Ok(()),
                None => Err(CommerceError::NotFound(format!(
                    "no stock of {sku} in {warehouse}"
                ))),
            };
        }
        self.store
            .adjust(sku, warehouse, delta, note, now_ms())
            .await
    }

    /// Splits the stock of `sku` in `warehouse` into `buckets` rows (1 to 64; 1 merges it):
    /// concurrent reservations of a hot SKU then lock different rows. See
    /// [`Store::set_buckets`].
    pub async fn set_buckets(
        &self,
        sku: &str,
        warehouse: &str,
        buckets: i64,
    ) -> Result<(), CommerceError> {
        check_name("sku", sku)?;
        check_name("warehouse", warehouse)?;
        if !(1..=MAX_BUCKETS).contains(&buckets) {
            return Err(CommerceError::invalid("buckets", "must be from 1 to 64"));
        }
        if self.store.set_buckets(sku, warehouse, buckets).await? {
            Ok(())
        } else {
            Err(CommerceError::NotFound(format!(
                "no stock of {sku} in {warehouse}; receive some first"
            )))
        }
    }

    /// The stock of `sku` in every warehouse.
    pub async fn stock(&self, sku: &str) -> Result<Vec<StockLevel>, CommerceError> {
        check_name("sku", sku)?;
        Ok(self.store.levels(sku).await?)
    }

    /// Reserves `lines` for `holder` (an order or a checkout) for the reservation TTL, all or
    /// none, each line in one warehouse (`region`'s first). Stock drops at once; it comes back
    /// on [`Inventory::release`] or when the TTL passes.
    pub async fn reserve(
        &self,
        holder: &str,
        lines: &[Line],
        region: Option<&str>,
    ) -> Result<Vec<Reservation>, CommerceError> {
        check_name("holder", holder)?;
        if let Some(region) = region {
            check_name("region", region)?;
        }
        let lines = checked_lines(lines)?;
        let now = now_ms();
        let ttl = i64::try_from(self.settings.reservation_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        let reserved = match self.settings.reserve_mode {
            ReserveMode::Conditional => {
                self.store
                    .reserve(holder, &lines, region, expires_at, now)
                    .await
            }
            ReserveMode::NaiveReadModifyWrite => {
                let mut out = Vec::with_capacity(lines.len());
                for line in &lines {
                    out.push(
                        self.store
                            .reserve_naively(holder, line, expires_at, now)
                            .await?,
                    );
                }
                Ok(out)
            }
        };
        let outcome = match &reserved {
            Ok(_) => "reserved",
            Err(CommerceError::OutOfStock { .. }) => "out_of_stock",
            Err(_) => "error",
        };
        metrics::counter!("praxis_commerce_reservations_total", "outcome" => outcome).increment(1);
        reserved
    }

    /// Confirms reservation `id`: its stock leaves with the order. Confirming twice is fine;
    /// a reservation that expired or was released is a conflict (its stock went back: the
    /// order must not be fulfilled from it).
    pub async fn confirm(&self, id: &str) -> Result<(), CommerceError> {
        match self.store.confirm(id, now_ms()).await? {
            Confirmed::Now | Confirmed::Already => Ok(()),
            Confirmed::Gone => Err(CommerceError::Conflict(format!(
                "reservation {id} expired or was released; its stock went back"
            ))),
            Confirmed::Missing => Err(CommerceError::NotFound(format!("no reservation {id}"))),
        }
    }

    /// Releases reservation `id` for `reason`; `false` when it was not held any more (released
    /// or confirmed already, or expired and swept): a release happens once.
    pub async fn release(&self, id: &str, reason: ReleaseReason) -> Result<bool, CommerceError> {
        Ok(self.store.release(id, reason, now_ms()).await?)
    }

    /// Puts confirmed reservation `id`'s stock back on hand (its order was cancelled after
    /// confirmation); `false` when it was not confirmed: a return happens once.
    pub async fn restock(&self, id: &str) -> Result<bool, CommerceError> {
        Ok(self.store.restock(id, now_ms()).await?)
    }

    /// The reservations made for `holder` (an order).
    pub async fn reservations_of(&self, holder: &str) -> Result<Vec<Reservation>, CommerceError> {
        Ok(self.store.reservations_of(holder).await?)
    }

    /// Releases up to `limit` reservations whose TTL passed; how many this call released.
    /// Several sweepers may run at once: each reservation is released by exactly one.
    pub async fn release_expired(&self, limit: i64) -> Result<usize, CommerceError> {
        let now = now_ms();
        let mut released = 0;
        for id in self.store.expired(now, limit).await? {
            if self.store.release(&id, ReleaseReason::Expired, now).await? {
                released += 1;
            }
        }
        if released > 0 {
            metrics::counter!("praxis_commerce_reservations_expired_total")
                .increment(released as u64);
        }
        Ok(released)
    }

    /// Checks that every SKU's stock in a warehouse equals what its ledger adds up to, that
    /// its `reserved` equals its held reservations, and that each of its buckets holds what
    /// the reservations made from that bucket hold.
    pub async fn verify(&self) -> Result<Verified, CommerceError> {
        use std::collections::BTreeMap;
        #[derive(Default)]
        struct Seen {
            stock: Counts,
            ledger: Counts,
            held: i64,
            buckets: Vec<i64>,
        }
        let mut rows: BTreeMap<(String, String), Seen> = BTreeMap::new();
        let mut held: BTreeMap<(String, String, i64), i64> =
            self.store.held_counts().await?.into_iter().collect();
        for b in self.store.all_buckets().await? {
            let held_here = held
                .remove(&(b.sku.clone(), b.warehouse.clone(), b.bucket))
                .unwrap_or(0);
            rows.entry((b.sku.clone(), b.warehouse.clone()))
                .or_default()
                .held += held_here;
            let seen = rows.entry((b.sku, b.warehouse)).or_default();
            seen.stock.on_hand += b.on_hand;
            seen.stock.reserved += b.reserved;
            if b.reserved != held_here || b.on_hand < b.reserved {
                seen.buckets.push(b.bucket);
            }
        }
        let count = rows.len();
        // Held reservations in a bucket that has no row.
        for ((sku, warehouse, bucket), n) in held {
            let seen = rows.entry((sku, warehouse)).or_default();
            seen.held += n;
            seen.buckets.push(bucket);
        }
        for (key, counts) in self.store.ledger_counts().await? {
            rows.entry(key).or_default().ledger = counts;
        }
        let mismatches = rows
            .into_iter()
            .filter(|(_, s)| {
                s.stock != s.ledger || s.stock.reserved != s.held || !s.buckets.is_empty()
            })
            .map(|((sku, warehouse), s)| Mismatch {
                sku,
                warehouse,
                stock: s.stock,
                ledger: s.ledger,
                held: s.held,
                buckets: s.buckets,
            })
            .collect();
        Ok(Verified {
            rows: count,
            mismatches,
        })
    }
}
