//! The SQL of orders and their saga. Every step change is one conditional update (the saga's
//! lease token and the step it leaves), with the order's event enqueued on the bus's outbox in
//! the same transaction: a step and its event commit together or not at all.

use praxis_infra::bus::Bus;
use praxis_infra::{Db, InfraError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::domain::order::{ORDERS_TOPIC, Order, OrderEvent, Step};

const ORDER_COLUMNS: &str = "id, buyer, region, currency, total_cents, lines, step, payment_auth, \
     shipment, failure, created_at, updated_at";

/// What a step change sets besides the step (each only when `Some`).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The payment authorization.
    pub payment_auth: Option<String>,
    /// The shipment.
    pub shipment: Option<String>,
    /// Why the order is being cancelled.
    pub failure: Option<String>,
}

/// The orders table.
#[derive(Debug, Clone)]
pub struct Orders {
    db: Db,
    bus: Bus,
}

fn order_of(row: &AnyRow) -> Result<Order, InfraError> {
    let step: String = row.try_get("step")?;
    let lines: String = row.try_get("lines")?;
    Ok(Order {
        id: row.try_get("id")?,
        buyer: row.try_get("buyer")?,
        region: row.try_get("region")?,
        currency: row.try_get("currency")?,
        total_cents: row.try_get("total_cents")?,
        lines: serde_json::from_str(&lines)
            .map_err(|e| InfraError::Codec(format!("order lines: {e}")))?,
        step: Step::parse(&step)
            .ok_or_else(|| InfraError::Codec(format!("unknown order step {step:?}")))?,
        payment_auth: row.try_get("payment_auth")?,
        shipment: row.try_get("shipment")?,
        failure: row.try_get("failure")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Enqueues `kind`'s event for `order` on the outbox.
async fn publish(
    bus: &Bus,
    conn: &mut AnyConnection,
    order: &Order,
    kind: &str,
    reason: Option<&str>,
    at: i64,
) -> Result<(), InfraError> {
    let event = OrderEvent {
        kind: kind.to_owned(),
        order_id: order.id.clone(),
        buyer: order.buyer.clone(),
        total_cents: order.total_cents,
        currency: order.currency.clone(),
        reason: reason.map(str::to_owned),
        at,
    };
    let payload =
        serde_json::to_vec(&event).map_err(|e| InfraError::Codec(format!("order event: {e}")))?;
    bus.enqueue(conn, ORDERS_TOPIC, &order.id, &payload).await?;
    Ok(())
}

impl Orders {
    /// The orders on `db`, publishing on `bus`.
    pub fn new(db: Db, bus: Bus) -> Self {
        Self { db, bus }
    }

    /// Stores a new order (step `placed`, its saga leased to `token` for `lease_ms`) and its
    /// `placed` event. With an idempotency key the buyer used before, stores nothing and
    /// returns that order instead (`false`).
    pub async fn insert(
        &self,
        order: &Order,
        idempotency_key: Option<&str>,
        token: &str,
        lease_ms: i64,
    ) -> Result<(Order, bool), InfraError> {
        let mut tx = self.db.begin_write().await?;
        let lines = serde_json::to_string(&order.lines)
            .map_err(|e| InfraError::Codec(format!("order lines: {e}")))?;
        // Born leased to the request that places it: no recovery pass takes it meanwhile.
        let clock = self.db.backend().now_ms_sql();
        let sql = format!(
            "INSERT INTO commerce_orders (id, buyer, region, currency, total_cents, lines, step, \
             idempotency_key, created_at, updated_at, lease_owner, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, 'placed', $7, $8, $8, $9, {clock} + $10) \
             ON CONFLICT DO NOTHING"
        );
        let inserted = sqlx::query(AssertSqlSafe(sql))
            .bind(&order.id)
            .bind(&order.buyer)
            .bind(&order.region)
            .bind(&order.currency)
            .bind(order.total_cents)
            .bind(&lines)
            .bind(idempotency_key)
            .bind(order.created_at)
            .bind(token)
            .bind(lease_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            drop(tx);
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM commerce_orders WHERE buyer = $1 AND idempotency_key = $2"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(&order.buyer)
                .bind(idempotency_key)
                .fetch_one(self.db.pool())
                .await?;
            return Ok((order_of(&row)?, false));
        }
        publish(&self.bus, &mut tx, order, "placed", None, order.created_at).await?;
        tx.commit().await?;
        self.bus.notify_committed();
        Ok((order.clone(), true))
    }

    /// Order `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, InfraError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM commerce_orders WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(order_of).transpose()
    }

    /// `buyer`'s order made with `idempotency_key`.
    pub async fn by_key(
        &self,
        buyer: &str,
        idempotency_key: &str,
    ) -> Result<Option<Order>, InfraError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM commerce_orders WHERE buyer = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(buyer)
            .bind(idempotency_key)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(order_of).transpose()
    }

    /// `buyer`'s orders, newest first, up to `limit`, before order id `before` when given.
    pub async fn of_buyer(
        &self,
        buyer: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Order>, InfraError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM commerce_orders WHERE buyer = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(buyer)
            .bind(before)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(order_of).collect()
    }

    /// Takes (or renews) the saga lease of order `id` for `token`, for `lease_ms` on the
    /// database's clock; `false` when the order has ended or another live lease holds it.
    pub async fn take_lease(
        &self,
        id: &str,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, InfraError> {
        let now = self.db.backend().now_ms_sql();
        let sql = format!(
            "UPDATE commerce_orders SET lease_owner = $2, lease_until = {now} + $3 \
             WHERE id = $1 AND step NOT IN ('confirmed', 'cancelled') \
             AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < {now})"
        );
        let taken = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(token)
            .bind(lease_ms)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(taken == 1)
    }

    /// Reopens confirmed order `id` for compensation (a cancellation after confirmation):
    /// step `compensating`, `failure` set, the lease taken for `token`; `false` when it is not
    /// confirmed any more.
    pub async fn reopen(
        &self,
        id: &str,
        token: &str,
        failure: &str,
        lease_ms: i64,
    ) -> Result<bool, InfraError> {
        let now = self.db.backend().now_ms_sql();
        let sql = format!(
            "UPDATE commerce_orders SET step = 'compensating', failure = $3, lease_owner = $2, \
             lease_until = {now} + $4 WHERE id = $1 AND step = 'confirmed'"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(token)
            .bind(failure)
            .bind(lease_ms)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    /// Moves `order` from its step to `to` under `token`'s lease, with `changes` and (when
    /// `event` is given) that event, in one transaction; renews the lease, or gives it up when
    /// the saga ends. `false` when the lease or the step changed meanwhile (nothing done).
    #[allow(clippy::too_many_arguments)]
    pub async fn advance(
        &self,
        order: &Order,
        token: &str,
        to: Step,
        changes: &Changes,
        event: Option<&str>,
        lease_ms: i64,
        now: i64,
    ) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let clock = self.db.backend().now_ms_sql();
        // $8: 1 when the saga ends (the lease is given up).
        let sql = format!(
            "UPDATE commerce_orders SET step = $3, payment_auth = COALESCE($4, payment_auth), \
             shipment = COALESCE($5, shipment), failure = COALESCE($6, failure), updated_at = $7, \
             lease_owner = CASE WHEN $8 = 1 THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN $8 = 1 THEN 0 ELSE {clock} + $9 END \
             WHERE id = $1 AND lease_owner = $2 AND step = $10"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(&order.id)
            .bind(token)
            .bind(to.as_str())
            .bind(&changes.payment_auth)
            .bind(&changes.shipment)
            .bind(&changes.failure)
            .bind(now)
            .bind(i64::from(to.is_final()))
            .bind(lease_ms)
            .bind(order.step.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        if let Some(kind) = event {
            let reason = changes.failure.as_deref().or(order.failure.as_deref());
            publish(&self.bus, &mut tx, order, kind, reason, now).await?;
        }
        tx.commit().await?;
        if event.is_some() {
            self.bus.notify_committed();
        }
        Ok(true)
    }

    /// Up to `limit` orders whose saga has not ended and whose lease expired (the process
    /// driving them died), oldest first.
    pub async fn abandoned(&self, limit: i64) -> Result<Vec<String>, InfraError> {
        let clock = self.db.backend().now_ms_sql();
        let sql = format!(
            "SELECT id FROM commerce_orders WHERE step NOT IN ('confirmed', 'cancelled') \
             AND lease_until < {clock} ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}
