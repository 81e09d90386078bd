//! All SQL of the inventory, one code path for SQLite and PostgreSQL (sqlx `Any`).
//!
//! Every change to a stock row is one relative update whose `WHERE` states what must hold
//! (`on_hand - reserved >= n` to reserve), in the same transaction as the reservation row it
//! concerns and the ledger entry that records it. On PostgreSQL a concurrent update of the
//! same row waits for the first to commit and then evaluates its condition again on the new
//! row (READ COMMITTED), so no two buyers can both take the last unit; on SQLite the write
//! transaction (`BEGIN IMMEDIATE`) serializes them.
//!
//! A SKU's stock in a warehouse is one row per bucket (`bucket` 0..N, N = 1 unless an admin
//! split it with [`Store::set_buckets`]). A reservation takes from one bucket, starting at a
//! bucket drawn from its id, so concurrent buyers of a split SKU lock different rows. Receipts
//! and adjustments spread over the buckets; the ledger and the views count the sum.

pub mod catalog;
pub mod migrations;
pub mod orders;

use praxis_infra::{Db, InfraError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::domain::model::{
    EntryKind, Line, ReleaseReason, Reservation, ReservationStatus, ledger_sums,
};
use crate::error::CommerceError;

const RESERVATION_COLUMNS: &str =
    "id, holder, sku, warehouse, bucket, quantity, status, expires_at";

/// How many warehouses one line tries before it is out of stock.
const CANDIDATES: usize = 8;

/// How many conditional updates (warehouses × buckets) one line tries before it is out of
/// stock: the bound on a reservation's work when concurrent buyers empty what it read.
const ATTEMPTS: usize = 16;

/// The most buckets a SKU's stock in one warehouse can be split into.
pub const MAX_BUCKETS: i64 = 64;

/// A SKU's stock in one warehouse (the sum of its buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse: String,
    /// How many rows (buckets) it is split into.
    pub buckets: i64,
    /// Physically there.
    pub on_hand: i64,
    /// Held by reservations.
    pub reserved: i64,
}

impl StockLevel {
    /// What a new reservation can take.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// One bucket's row of a SKU's stock in a warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse: String,
    /// The bucket.
    pub bucket: i64,
    /// Its part of what is on hand.
    pub on_hand: i64,
    /// Its part of what is reserved.
    pub reserved: i64,
}

/// Counts of one stock row from another source (the ledger, or the held reservations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// On hand.
    pub on_hand: i64,
    /// Reserved.
    pub reserved: i64,
}

/// What confirming a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now: its stock left.
    Now,
    /// It was confirmed before (a retry).
    Already,
    /// It expired or was released: nothing was taken.
    Gone,
    /// No such reservation.
    Missing,
}

/// The inventory's tables.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

fn reservation_of(row: &AnyRow) -> Result<Reservation, InfraError> {
    let status: String = row.try_get("status")?;
    Ok(Reservation {
        id: row.try_get("id")?,
        holder: row.try_get("holder")?,
        sku: row.try_get("sku")?,
        warehouse: row.try_get("warehouse")?,
        bucket: row.try_get("bucket")?,
        quantity: row.try_get("quantity")?,
        status: ReservationStatus::parse(&status)
            .ok_or_else(|| InfraError::Codec(format!("unknown reservation status {status:?}")))?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Appends one ledger entry.
async fn record(
    conn: &mut AnyConnection,
    (sku, warehouse): (&str, &str),
    kind: EntryKind,
    quantity: i64,
    reservation: Option<&str>,
    note: Option<&str>,
    at: i64,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO commerce_ledger (sku, warehouse, kind, quantity, reservation_id, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(sku)
    .bind(warehouse)
    .bind(kind.as_str())
    .bind(quantity)
    .bind(reservation)
    .bind(note)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves reservation `r`'s bucket by `kind`'s effect (the table the ledger's sums use too)
/// and records the entry.
async fn move_stock(
    conn: &mut AnyConnection,
    r: &Reservation,
    kind: EntryKind,
    note: Option<&str>,
    at: i64,
) -> Result<(), InfraError> {
    let (on_hand, reserved) = kind.effect(r.quantity);
    sqlx::query(
        "UPDATE commerce_stock SET on_hand = on_hand + $3, reserved = reserved + $4 \
         WHERE sku = $1 AND warehouse = $2 AND bucket = $5",
    )
    .bind(&r.sku)
    .bind(&r.warehouse)
    .bind(on_hand)
    .bind(reserved)
    .bind(r.bucket)
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        (&r.sku, &r.warehouse),
        kind,
        r.quantity,
        Some(&r.id),
        note,
        at,
    )
    .await
}

/// Inserts a held reservation and its ledger entry.
async fn insert_reservation(
    conn: &mut AnyConnection,
    r: &Reservation,
    now: i64,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO commerce_reservations (id, holder, sku, warehouse, quantity, status, \
         expires_at, created_at, updated_at, bucket) \
         VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.holder)
    .bind(&r.sku)
    .bind(&r.warehouse)
    .bind(r.quantity)
    .bind(r.expires_at)
    .bind(now)
    .bind(r.bucket)
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        (&r.sku, &r.warehouse),
        EntryKind::Reserve,
        r.quantity,
        Some(&r.id),
        None,
        now,
    )
    .await
}

/// The buckets to try for a line of `quantity` of `sku`, at most [`ATTEMPTS`]: those of
/// `region`'s warehouses first, then of the warehouses with the most available, up to
/// [`CANDIDATES`] warehouses; within a warehouse every bucket that holds `quantity`, in a
/// rotation starting at `spread` (so concurrent buyers start at different rows).
async fn candidates(
    conn: &mut AnyConnection,
    sku: &str,
    quantity: i64,
    region: Option<&str>,
    spread: u64,
) -> Result<Vec<(String, i64)>, InfraError> {
    let rows = sqlx::query(
        "SELECT s.warehouse, s.bucket, \
         CASE WHEN w.region = $3 THEN 0 ELSE 1 END AS away, \
         CAST(SUM(s.on_hand - s.reserved) OVER (PARTITION BY s.warehouse) AS BIGINT) AS total \
         FROM commerce_stock s JOIN commerce_warehouses w ON w.id = s.warehouse \
         WHERE s.sku = $1 AND s.on_hand - s.reserved >= $2 \
         ORDER BY away, total DESC, s.warehouse, s.bucket LIMIT $4",
    )
    .bind(sku)
    .bind(quantity)
    .bind(region)
    .bind((CANDIDATES as i64) * MAX_BUCKETS)
    .fetch_all(conn)
    .await?;
    let mut warehouses: Vec<(String, Vec<i64>)> = Vec::new();
    for row in &rows {
        let warehouse: String = row.try_get("warehouse")?;
        let bucket: i64 = row.try_get("bucket")?;
        if let Some((w, buckets)) = warehouses.last_mut()
            && *w == warehouse
        {
            buckets.push(bucket);
        } else if warehouses.len() == CANDIDATES {
            break;
        } else {
            warehouses.push((warehouse, vec![bucket]));
        }
    }
    Ok(warehouses
        .into_iter()
        .flat_map(|(warehouse, mut buckets)| {
            let start = (spread % buckets.len() as u64) as usize;
            buckets.rotate_left(start);
            buckets.into_iter().map(move |b| (warehouse.clone(), b))
        })
        .take(ATTEMPTS)
        .collect())
}

/// The share of `total` each of `n` buckets gets: equal parts, the remainder to the first.
fn shares(total: i64, n: usize) -> Vec<i64> {
    let n_i = i64::try_from(n.max(1)).unwrap_or(i64::MAX);
    let (each, rest) = (total / n_i, total % n_i);
    (0..n_i).map(|i| each + i64::from(i < rest)).collect()
}

/// Adds `quantity` to the on-hand stock of `sku` in `warehouse`, spread over its buckets
/// (a new SKU gets bucket 0). A bucket removed concurrently gives its share to bucket 0.
async fn add_on_hand(
    conn: &mut AnyConnection,
    sku: &str,
    warehouse: &str,
    quantity: i64,
) -> Result<(), InfraError> {
    let buckets: Vec<i64> = sqlx::query_scalar(
        "SELECT bucket FROM commerce_stock WHERE sku = $1 AND warehouse = $2 ORDER BY bucket",
    )
    .bind(sku)
    .bind(warehouse)
    .fetch_all(&mut *conn)
    .await?;
    let mut unplaced = if buckets.is_empty() { quantity } else { 0 };
    for (bucket, share) in buckets.iter().zip(shares(quantity, buckets.len())) {
        if share == 0 {
            continue;
        }
        let done = sqlx::query(
            "UPDATE commerce_stock SET on_hand = on_hand + $3 \
             WHERE sku = $1 AND warehouse = $2 AND bucket = $4",
        )
        .bind(sku)
        .bind(warehouse)
        .bind(share)
        .bind(bucket)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if done == 0 {
            unplaced += share;
        }
    }
    if unplaced > 0 {
        sqlx::query(
            "INSERT INTO commerce_stock (sku, warehouse, bucket, on_hand, reserved) \
             VALUES ($1, $2, 0, $3, 0) ON CONFLICT (sku, warehouse, bucket) \
             DO UPDATE SET on_hand = commerce_stock.on_hand + $3",
        )
        .bind(sku)
        .bind(warehouse)
        .bind(unplaced)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Locks every bucket row of `sku` in `warehouse` for the rest of the transaction (a no-op
/// update: PostgreSQL locks the rows; SQLite's write transaction holds the database) and
/// reads them, by bucket.
async fn lock_buckets(
    conn: &mut AnyConnection,
    sku: &str,
    warehouse: &str,
) -> Result<Vec<BucketRow>, InfraError> {
    sqlx::query("UPDATE commerce_stock SET on_hand = on_hand WHERE sku = $1 AND warehouse = $2")
        .bind(sku)
        .bind(warehouse)
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT sku, warehouse, bucket, on_hand, reserved FROM commerce_stock \
         WHERE sku = $1 AND warehouse = $2 ORDER BY bucket",
    )
    .bind(sku)
    .bind(warehouse)
    .fetch_all(conn)
    .await?;
    rows.iter().map(bucket_of).collect()
}

/// Sets one bucket's on-hand count (inserting the bucket when it is new).
async fn set_on_hand(
    conn: &mut AnyConnection,
    row: &BucketRow,
    on_hand: i64,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO commerce_stock (sku, warehouse, bucket, on_hand, reserved) \
         VALUES ($1, $2, $3, $4, 0) ON CONFLICT (sku, warehouse, bucket) \
         DO UPDATE SET on_hand = $4",
    )
    .bind(&row.sku)
    .bind(&row.warehouse)
    .bind(row.bucket)
    .bind(on_hand)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The store on `db` (the commerce migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates warehouse `id` in `region`; `Ok(false)` when it exists already in that region,
    /// a conflict when it exists in another.
    pub async fn create_warehouse(
        &self,
        id: &str,
        region: &str,
        now: i64,
    ) -> Result<bool, CommerceError> {
        let created = sqlx::query(
            "INSERT INTO commerce_warehouses (id, region, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(region)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if created == 1 {
            return Ok(true);
        }
        let existing: String =
            sqlx::query_scalar("SELECT region FROM commerce_warehouses WHERE id = $1")
                .bind(id)
                .fetch_one(self.db.pool())
                .await?;
        if existing != region {
            return Err(CommerceError::Conflict(format!(
                "warehouse {id} exists in region {existing}, not {region}"
            )));
        }
        Ok(false)
    }

    /// Adds `quantity` of `sku` to `warehouse`'s stock.
    pub async fn receive(
        &self,
        sku: &str,
        warehouse: &str,
        quantity: i64,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), CommerceError> {
        let mut tx = self.db.begin_write().await?;
        let known: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM commerce_warehouses WHERE id = $1")
                .bind(warehouse)
                .fetch_one(&mut *tx)
                .await?;
        if known == 0 {
            return Err(CommerceError::NotFound(format!(
                "no warehouse {warehouse}; create it first"
            )));
        }
        add_on_hand(&mut tx, sku, warehouse, quantity).await?;
        record(
            &mut tx,
            (sku, warehouse),
            EntryKind::Receive,
            quantity,
            None,
            note,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Corrects `warehouse`'s count of `sku` by `delta` (a count after a stocktake); never
    /// below what is reserved.
    pub async fn adjust(
        &self,
        sku: &str,
        warehouse: &str,
        delta: i64,
        note: &str,
        now: i64,
    ) -> Result<(), CommerceError> {
        let mut tx = self.db.begin_write().await?;
        let rows = lock_buckets(&mut tx, sku, warehouse).await?;
        if rows.is_empty() {
            return Err(CommerceError::NotFound(format!(
                "no stock of {sku} in {warehouse}"
            )));
        }
        if delta > 0 {
            add_on_hand(&mut tx, sku, warehouse, delta).await?;
        } else {
            let on_hand: i64 = rows.iter().map(|r| r.on_hand).sum();
            let reserved: i64 = rows.iter().map(|r| r.reserved).sum();
            if on_hand + delta < reserved {
                return Err(CommerceError::Conflict(format!(
                    "{sku} in {warehouse} has {on_hand} on hand and {reserved} reserved: {delta} would leave less than is reserved"
                )));
            }
            let mut left = -delta;
            let mut fullest: Vec<&BucketRow> = rows.iter().collect();
            fullest.sort_by_key(|r| std::cmp::Reverse(r.on_hand - r.reserved));
            for row in fullest {
                let take = left.min(row.on_hand - row.reserved);
                if take > 0 {
                    set_on_hand(&mut tx, row, row.on_hand - take).await?;
                    left -= take;
                }
            }
        }
        record(
            &mut tx,
            (sku, warehouse),
            EntryKind::Adjust,
            delta,
            None,
            Some(note),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stock row of `sku` in `warehouse`.
    pub async fn level(
        &self,
        sku: &str,
        warehouse: &str,
    ) -> Result<Option<StockLevel>, InfraError> {
        let sql =
            format!("{LEVEL_SELECT} WHERE sku = $1 AND warehouse = $2 GROUP BY sku, warehouse");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(sku)
            .bind(warehouse)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(level_of).transpose()
    }

    /// Every stock row of `sku`.
    pub async fn levels(&self, sku: &str) -> Result<Vec<StockLevel>, InfraError> {
        let sql =
            format!("{LEVEL_SELECT} WHERE sku = $1 GROUP BY sku, warehouse ORDER BY warehouse");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(sku)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(level_of).collect()
    }

    /// Reserves every line for `holder` until `expires_at`, each in one warehouse (`region`'s
    /// first), all or none: one conditional update per line, in one transaction.
    pub async fn reserve(
        &self,
        holder: &str,
        lines: &[Line],
        region: Option<&str>,
        expires_at: i64,
        now: i64,
    ) -> Result<Vec<Reservation>, CommerceError> {
        let mut tx = self.db.begin_write().await?;
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            let id = uuid::Uuid::now_v7();
            // A v7 id's last 62 bits are random: where this buyer starts among the buckets.
            let spread = id.as_u128() as u64;
            let mut taken = None;
            let tries = candidates(&mut tx, &line.sku, line.quantity, region, spread).await?;
            for (warehouse, bucket) in tries {
                let done = sqlx::query(
                    "UPDATE commerce_stock SET reserved = reserved + $3 \
                     WHERE sku = $1 AND warehouse = $2 AND bucket = $4 AND on_hand - reserved >= $3",
                )
                .bind(&line.sku)
                .bind(&warehouse)
                .bind(line.quantity)
                .bind(bucket)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    taken = Some((warehouse, bucket));
                    break;
                }
            }
            let Some((warehouse, bucket)) = taken else {
                return Err(CommerceError::OutOfStock {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                });
            };
            let r = Reservation {
                id: id.to_string(),
                holder: holder.to_owned(),
                sku: line.sku.clone(),
                warehouse,
                bucket,
                quantity: line.quantity,
                status: ReservationStatus::Held,
                expires_at,
            };
            insert_reservation(&mut tx, &r, now).await?;
            out.push(r);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The lab's naive reservation of one line: reads the available stock, then writes the
    /// count it computed, in separate statements (a read-modify-write). Concurrent buyers
    /// overwrite each other's counts and take more than there is.
    pub async fn reserve_naively(
        &self,
        holder: &str,
        line: &Line,
        expires_at: i64,
        now: i64,
    ) -> Result<Reservation, CommerceError> {
        let row = sqlx::query(
            "SELECT sku, warehouse, bucket, on_hand, reserved FROM commerce_stock \
             WHERE sku = $1 AND on_hand - reserved >= $2 ORDER BY warehouse, bucket LIMIT 1",
        )
        .bind(&line.sku)
        .bind(line.quantity)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(level) = row.as_ref().map(bucket_of).transpose()? else {
            return Err(CommerceError::OutOfStock {
                sku: line.sku.clone(),
                requested: line.quantity,
            });
        };
        // The gap a service call (a price check, a remote stock service) opens in a real
        // checkout between reading and writing.
        tokio::task::yield_now().await;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE commerce_stock SET reserved = $3 WHERE sku = $1 AND warehouse = $2 AND bucket = $4",
        )
        .bind(&level.sku)
        .bind(&level.warehouse)
        .bind(level.reserved + line.quantity)
        .bind(level.bucket)
        .execute(&mut *tx)
        .await?;
        let r = Reservation {
            id: uuid::Uuid::now_v7().to_string(),
            holder: holder.to_owned(),
            sku: level.sku,
            warehouse: level.warehouse,
            bucket: level.bucket,
            quantity: line.quantity,
            status: ReservationStatus::Held,
            expires_at,
        };
        insert_reservation(&mut tx, &r, now).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Reservation `id`.
    pub async fn reservation(&self, id: &str) -> Result<Option<Reservation>, InfraError> {
        let sql = format!("SELECT {RESERVATION_COLUMNS} FROM commerce_reservations WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(reservation_of).transpose()
    }

    /// The reservations of `holder`, oldest first.
    pub async fn reservations_of(&self, holder: &str) -> Result<Vec<Reservation>, InfraError> {
        let sql = format!(
            "SELECT {RESERVATION_COLUMNS} FROM commerce_reservations WHERE holder = $1 ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(holder)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(reservation_of).collect()
    }

    /// Confirms held reservation `id` if it has not expired at `now`: its stock leaves
    /// (`on_hand - n`, `reserved - n`).
    pub async fn confirm(&self, id: &str, now: i64) -> Result<Confirmed, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "UPDATE commerce_reservations SET status = 'confirmed', updated_at = $2 \
             WHERE id = $1 AND status = 'held' AND expires_at >= $2 RETURNING {RESERVATION_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            drop(tx);
            return Ok(match self.reservation(id).await? {
                None => Confirmed::Missing,
                Some(r) if r.status == ReservationStatus::Confirmed => Confirmed::Already,
                Some(_) => Confirmed::Gone,
            });
        };
        let r = reservation_of(&row)?;
        move_stock(&mut tx, &r, EntryKind::Confirm, None, now).await?;
        tx.commit().await?;
        Ok(Confirmed::Now)
    }

    /// Releases held reservation `id` (its stock goes back); `false` when it is not held
    /// (released, expired or confirmed already): a release happens once.
    pub async fn release(
        &self,
        id: &str,
        reason: ReleaseReason,
        now: i64,
    ) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "UPDATE commerce_reservations SET status = 'released', released_reason = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'held' RETURNING {RESERVATION_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(reason.as_str())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let r = reservation_of(&row)?;
        move_stock(&mut tx, &r, EntryKind::Release, Some(reason.as_str()), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts confirmed reservation `id`'s stock back on hand (its order was cancelled after
    /// confirmation); `false` when it is not confirmed (returned already, or never
    /// confirmed): a return happens once. The ledger records a `receive` noted `returned`.
    pub async fn restock(&self, id: &str, now: i64) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "UPDATE commerce_reservations SET status = 'returned', updated_at = $2 \
             WHERE id = $1 AND status = 'confirmed' RETURNING {RESERVATION_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let r = reservation_of(&row)?;
        move_stock(&mut tx, &r, EntryKind::Receive, Some("returned"), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Up to `limit` held reservations whose TTL passed before `now`, oldest first.
    pub async fn expired(&self, now: i64, limit: i64) -> Result<Vec<String>, InfraError> {
        let rows = sqlx::query(
            "SELECT id FROM commerce_reservations WHERE status = 'held' AND expires_at < $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Every bucket row, by SKU, warehouse and bucket.
    pub async fn all_buckets(&self) -> Result<Vec<BucketRow>, InfraError> {
        let rows = sqlx::query(
            "SELECT sku, warehouse, bucket, on_hand, reserved FROM commerce_stock \
             ORDER BY sku, warehouse, bucket",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(bucket_of).collect()
    }

    /// Splits the stock of `sku` in `warehouse` into `buckets` rows (1 merges it back;
    /// clamped to 1..=[`MAX_BUCKETS`]): the available stock is spread evenly over buckets
    /// `0..buckets`; a bucket beyond them keeps only what its held reservations hold, and is
    /// removed when it holds nothing (now, or at a later split once they are gone). Nothing
    /// arrives or leaves, so the ledger records nothing. `Ok(false)` when there is no such
    /// stock.
    pub async fn set_buckets(
        &self,
        sku: &str,
        warehouse: &str,
        buckets: i64,
    ) -> Result<bool, InfraError> {
        let buckets = buckets.clamp(1, MAX_BUCKETS);
        let mut tx = self.db.begin_write().await?;
        let rows = lock_buckets(&mut tx, sku, warehouse).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let available: i64 = rows.iter().map(|r| r.on_hand - r.reserved).sum();
        let wanted = usize::try_from(buckets).unwrap_or(1);
        let targets = shares(available, wanted);
        for (bucket, share) in (0_i64..).zip(&targets) {
            let reserved = rows
                .iter()
                .find(|r| r.bucket == bucket)
                .map_or(0, |r| r.reserved);
            let row = BucketRow {
                sku: sku.to_owned(),
                warehouse: warehouse.to_owned(),
                bucket,
                on_hand: 0,
                reserved,
            };
            set_on_hand(&mut tx, &row, reserved + share).await?;
        }
        for row in rows.iter().filter(|r| r.bucket >= buckets) {
            set_on_hand(&mut tx, row, row.reserved).await?;
        }
        sqlx::query(
            "DELETE FROM commerce_stock WHERE sku = $1 AND warehouse = $2 AND bucket >= $3 \
             AND on_hand = 0 AND reserved = 0",
        )
        .bind(sku)
        .bind(warehouse)
        .bind(buckets)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The counts the ledger adds up to, per SKU and warehouse.
    pub async fn ledger_counts(&self) -> Result<Vec<((String, String), Counts)>, InfraError> {
        let (on_hand, reserved) = ledger_sums();
        let sql = format!(
            "SELECT sku, warehouse, {on_hand} AS on_hand, {reserved} AS reserved \
             FROM commerce_ledger GROUP BY sku, warehouse ORDER BY sku, warehouse"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.try_get("sku")?, r.try_get("warehouse")?),
                    Counts {
                        on_hand: r.try_get("on_hand")?,
                        reserved: r.try_get("reserved")?,
                    },
                ))
            })
            .collect()
    }

    /// What the held reservations add up to, per SKU, warehouse and bucket.
    pub async fn held_counts(&self) -> Result<Vec<((String, String, i64), i64)>, InfraError> {
        let rows = sqlx::query(
            "SELECT sku, warehouse, bucket, CAST(SUM(quantity) AS BIGINT) AS held \
             FROM commerce_reservations WHERE status = 'held' \
             GROUP BY sku, warehouse, bucket ORDER BY sku, warehouse, bucket",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    (
                        r.try_get("sku")?,
                        r.try_get("warehouse")?,
                        r.try_get("bucket")?,
                    ),
                    r.try_get("held")?,
                ))
            })
            .collect()
    }
}

/// The views' query: a SKU's stock in a warehouse is the sum of its buckets.
const LEVEL_SELECT: &str = "SELECT sku, warehouse, CAST(COUNT(*) AS BIGINT) AS buckets, \
     CAST(SUM(on_hand) AS BIGINT) AS on_hand, CAST(SUM(reserved) AS BIGINT) AS reserved \
     FROM commerce_stock";

fn level_of(row: &AnyRow) -> Result<StockLevel, InfraError> {
    Ok(StockLevel {
        sku: row.try_get("sku")?,
        warehouse: row.try_get("warehouse")?,
        buckets: row.try_get("buckets")?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}

fn bucket_of(row: &AnyRow) -> Result<BucketRow, InfraError> {
    Ok(BucketRow {
        sku: row.try_get("sku")?,
        warehouse: row.try_get("warehouse")?,
        bucket: row.try_get("bucket")?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}
