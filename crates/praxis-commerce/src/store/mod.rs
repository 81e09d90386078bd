//! All SQL of the inventory, one code path for SQLite and PostgreSQL (sqlx `Any`).
//!
//! Every change to a stock row is one relative update whose `WHERE` states what must hold
//! (`on_hand - reserved >= n` to reserve), in the same transaction as the reservation row it
//! concerns and the ledger entry that records it. On PostgreSQL a concurrent update of the
//! same row waits for the first to commit and then evaluates its condition again on the new
//! row (READ COMMITTED), so no two buyers can both take the last unit; on SQLite the write
//! transaction (`BEGIN IMMEDIATE`) serializes them.

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

const RESERVATION_COLUMNS: &str = "id, holder, sku, warehouse, quantity, status, expires_at";

/// How many warehouses one line tries before it is out of stock.
const CANDIDATES: i64 = 8;

/// A stock row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse: String,
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

/// Moves reservation `r`'s stock row by `kind`'s effect (the table the ledger's sums use too)
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
         WHERE sku = $1 AND warehouse = $2",
    )
    .bind(&r.sku)
    .bind(&r.warehouse)
    .bind(on_hand)
    .bind(reserved)
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
         expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $7)",
    )
    .bind(&r.id)
    .bind(&r.holder)
    .bind(&r.sku)
    .bind(&r.warehouse)
    .bind(r.quantity)
    .bind(r.expires_at)
    .bind(now)
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

/// The warehouses that hold at least `quantity` available of `sku`, those of `region` first,
/// then the fullest.
async fn candidates(
    conn: &mut AnyConnection,
    sku: &str,
    quantity: i64,
    region: Option<&str>,
) -> Result<Vec<String>, InfraError> {
    let rows = sqlx::query(
        "SELECT s.warehouse FROM commerce_stock s JOIN commerce_warehouses w ON w.id = s.warehouse \
         WHERE s.sku = $1 AND s.on_hand - s.reserved >= $2 \
         ORDER BY CASE WHEN w.region = $3 THEN 0 ELSE 1 END, s.on_hand - s.reserved DESC, s.warehouse \
         LIMIT $4",
    )
    .bind(sku)
    .bind(quantity)
    .bind(region)
    .bind(CANDIDATES)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("warehouse")?)).collect()
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
        sqlx::query(
            "INSERT INTO commerce_stock (sku, warehouse, on_hand, reserved) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = commerce_stock.on_hand + $3",
        )
        .bind(sku)
        .bind(warehouse)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
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
        let done = sqlx::query(
            "UPDATE commerce_stock SET on_hand = on_hand + $3 \
             WHERE sku = $1 AND warehouse = $2 AND on_hand + $3 >= reserved",
        )
        .bind(sku)
        .bind(warehouse)
        .bind(delta)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(match self.level(sku, warehouse).await? {
                None => CommerceError::NotFound(format!("no stock of {sku} in {warehouse}")),
                Some(s) => CommerceError::Conflict(format!(
                    "{sku} in {warehouse} has {} on hand and {} reserved: {delta} would leave less than is reserved",
                    s.on_hand, s.reserved
                )),
            });
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
        let row = sqlx::query(
            "SELECT sku, warehouse, on_hand, reserved FROM commerce_stock WHERE sku = $1 AND warehouse = $2",
        )
        .bind(sku)
        .bind(warehouse)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(level_of).transpose()
    }

    /// Every stock row of `sku`.
    pub async fn levels(&self, sku: &str) -> Result<Vec<StockLevel>, InfraError> {
        let rows = sqlx::query(
            "SELECT sku, warehouse, on_hand, reserved FROM commerce_stock WHERE sku = $1 ORDER BY warehouse",
        )
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
            let mut taken = None;
            for warehouse in candidates(&mut tx, &line.sku, line.quantity, region).await? {
                let done = sqlx::query(
                    "UPDATE commerce_stock SET reserved = reserved + $3 \
                     WHERE sku = $1 AND warehouse = $2 AND on_hand - reserved >= $3",
                )
                .bind(&line.sku)
                .bind(&warehouse)
                .bind(line.quantity)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    taken = Some(warehouse);
                    break;
                }
            }
            let Some(warehouse) = taken else {
                return Err(CommerceError::OutOfStock {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                });
            };
            let r = Reservation {
                id: uuid::Uuid::now_v7().to_string(),
                holder: holder.to_owned(),
                sku: line.sku.clone(),
                warehouse,
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
            "SELECT sku, warehouse, on_hand, reserved FROM commerce_stock \
             WHERE sku = $1 AND on_hand - reserved >= $2 ORDER BY warehouse LIMIT 1",
        )
        .bind(&line.sku)
        .bind(line.quantity)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(level) = row.as_ref().map(level_of).transpose()? else {
            return Err(CommerceError::OutOfStock {
                sku: line.sku.clone(),
                requested: line.quantity,
            });
        };
        // The gap a service call (a price check, a remote stock service) opens in a real
        // checkout between reading and writing.
        tokio::task::yield_now().await;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE commerce_stock SET reserved = $3 WHERE sku = $1 AND warehouse = $2")
            .bind(&level.sku)
            .bind(&level.warehouse)
            .bind(level.reserved + line.quantity)
            .execute(&mut *tx)
            .await?;
        let r = Reservation {
            id: uuid::Uuid::now_v7().to_string(),
            holder: holder.to_owned(),
            sku: level.sku,
            warehouse: level.warehouse,
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

    /// Every stock row, by SKU and warehouse.
    pub async fn all_levels(&self) -> Result<Vec<StockLevel>, InfraError> {
        let rows = sqlx::query(
            "SELECT sku, warehouse, on_hand, reserved FROM commerce_stock ORDER BY sku, warehouse",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(level_of).collect()
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

    /// What the held reservations add up to, per SKU and warehouse.
    pub async fn held_counts(&self) -> Result<Vec<((String, String), i64)>, InfraError> {
        let rows = sqlx::query(
            "SELECT sku, warehouse, CAST(SUM(quantity) AS BIGINT) AS held FROM commerce_reservations \
             WHERE status = 'held' GROUP BY sku, warehouse ORDER BY sku, warehouse",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.try_get("sku")?, r.try_get("warehouse")?),
                    r.try_get("held")?,
                ))
            })
            .collect()
    }
}

fn level_of(row: &AnyRow) -> Result<StockLevel, InfraError> {
    Ok(StockLevel {
        sku: row.try_get("sku")?,
        warehouse: row.try_get("warehouse")?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}
