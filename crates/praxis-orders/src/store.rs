//! Orders on the shards: placing one in its user's home region, reading it by id (the id
//! names the region), changing its status with a compare-and-set, and a user's list from
//! the per-user index.

use std::sync::Arc;

use praxis_infra::Db;
use praxis_infra::sql::now_ms;
use praxis_shard::{Doc, Docs, ShardError};
use tokio::sync::Notify;

use crate::domain::{
    ORDERS, Order, OrderEntry, OrderItem, OrderStatus, USER_ORDERS, check_new, entry_id,
    new_order_id, region_of,
};
use crate::error::OrdersError;

/// Most tries of a status change that lost a race with another change.
const CAS_TRIES: usize = 8;

/// The orders of every region. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderStore {
    docs: Docs,
    control: Db,
    regions: Arc<[String]>,
    default_region: Arc<str>,
    written: Arc<Notify>,
}

/// Decodes a stored JSON document.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(doc: &Doc) -> Result<T, OrdersError> {
    serde_json::from_str(&doc.doc).map_err(|e| {
        OrdersError::Infra(praxis_infra::InfraError::Codec(format!(
            "stored {} {} is unreadable: {e}",
            doc.collection, doc.id
        )))
    })
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl OrderStore {
    /// The store over `docs`, with the users' home regions in `control`.
    pub fn new(docs: Docs, control: Db, regions: &[String], default_region: &str) -> Self {
        OrderStore {
            docs,
            control,
            regions: regions.into(),
            default_region: default_region.into(),
            written: Arc::new(Notify::new()),
        }
    }

    /// The documents underneath.
    pub fn docs(&self) -> &Docs {
        &self.docs
    }

    /// Woken at each write of this process (the index tail listens).
    pub(crate) fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    /// The regions.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// `user`'s home region, if it has placed an order.
    pub async fn home(&self, user: &str) -> Result<Option<String>, OrdersError> {
        Ok(
            sqlx::query_scalar("SELECT region FROM orders_homes WHERE user_id = $1")
                .bind(user)
                .fetch_optional(self.control.pool())
                .await?,
        )
    }

    /// Pins `user`'s home region at its first order: `asked`, or the default. It never
    /// changes: asking for another region later is a conflict (the data-residency rule).
    pub async fn pin_home(&self, user: &str, asked: Option<&str>) -> Result<String, OrdersError> {
        if let Some(asked) = asked
            && !self.regions.iter().any(|r| r == asked)
        {
            return Err(OrdersError::Unprocessable {
                field: "region".to_owned(),
                message: format!(
                    "this deployment serves the regions {}",
                    self.regions.join(", ")
                ),
            });
        }
        sqlx::query(
            "INSERT INTO orders_homes (user_id, region, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user)
        .bind(asked.unwrap_or(&self.default_region))
        .bind(now_ms())
        .execute(self.control.pool())
        .await?;
        let home = self
            .home(user)
            .await?
            .ok_or_else(|| OrdersError::Conflict(format!("user {user} has no home region")))?;
        if let Some(asked) = asked
            && asked != home
        {
            return Err(OrdersError::Conflict(format!(
                "user {user}'s home region is {home}; a user's orders never leave it (asked for {asked})"
            )));
        }
        Ok(home)
    }

    /// Places an order for `user` in the user's home region; the order as stored. Its entry
    /// in the user's list is written at once (read-your-writes), and again by the index tail
    /// should this process die between the two writes.
    pub async fn place(
        &self,
        user: &str,
        region: Option<&str>,
        lines: Vec<OrderItem>,
        currency: &str,
    ) -> Result<Order, OrdersError> {
        let total_cents = check_new(&lines, currency)?;
        let region = self.pin_home(user, region).await?;
        let now = now_ms();
        let order = Order {
            id: new_order_id(&region),
            user_id: user.to_owned(),
            region: region.clone(),
            status: OrderStatus::Placed,
            currency: currency.to_owned(),
            total_cents,
            lines,
            created_at: now,
            updated_at: now,
        };
        let stored = self
            .docs
            .put(&region, ORDERS, &order.id, &encode(&order))
            .await?;
        self.written.notify_one();
        self.index_after_write(&order, stored.version).await;
        metrics::counter!("praxis_orders_placed_total", "region" => region).increment(1);
        Ok(order)
    }

    /// Stores an order made elsewhere under its own `id` (`<region>_<32 hex>`: history
    /// loaded from another system), creating or replacing it; whether it was created. The
    /// id's region must be the user's home region (pinned now if the user has none).
    pub async fn import(&self, id: &str, mut order: Order) -> Result<(Order, bool), OrdersError> {
        let region = region_of(id)
            .ok_or_else(|| OrdersError::invalid("id", "must be <region>_<32 hex digits>"))?;
        if !self.regions.iter().any(|x| x == region) {
            return Err(OrdersError::NotFound(format!(
                "no region {region} here (this deployment serves {})",
                self.regions.join(", ")
            )));
        }
        let region = region.to_owned();
        let user_chars = order.user_id.chars().count();
        if !(1..=128).contains(&user_chars) || order.user_id.contains('/') {
            return Err(OrdersError::invalid(
                "user_id",
                "must be 1 to 128 characters without /",
            ));
        }
        if order.created_at < 0 {
            return Err(OrdersError::invalid(
                "created_at",
                "must be unix ms, 0 or more",
            ));
        }
        order.total_cents = check_new(&order.lines, &order.currency)?;
        self.pin_home(&order.user_id, Some(&region)).await?;
        order.id = id.to_owned();
        order.region = region.clone();
        order.updated_at = now_ms();
        let stored = self.docs.put(&region, ORDERS, id, &encode(&order)).await?;
        self.written.notify_one();
        self.index_after_write(&order, stored.version).await;
        metrics::counter!("praxis_orders_imported_total", "region" => region).increment(1);
        Ok((order, stored.version == 1))
    }

    /// Order `id` with its stored version, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<(Order, i64)>, OrdersError> {
        let Some(region) = region_of(id).filter(|r| self.regions.iter().any(|x| x == r)) else {
            return Ok(None);
        };
        match self.docs.get(region, ORDERS, id).await? {
            Some(doc) => Ok(Some((decode(&doc)?, doc.version))),
            None => Ok(None),
        }
    }

    /// Sets order `id`'s status (see [`OrderStatus::may_become`]); the order as stored. A change
    /// made meanwhile by another caller is read again, never overwritten.
    pub async fn set_status(&self, id: &str, status: OrderStatus) -> Result<Order, OrdersError> {
        for _ in 0..CAS_TRIES {
            let (mut order, version) = self
                .get(id)
                .await?
                .ok_or_else(|| OrdersError::NotFound(format!("no order {id}")))?;
            if !order.status.may_become(status) {
                return Err(OrdersError::Conflict(format!(
                    "order {id} is {:?}; it cannot become {status:?}",
                    order.status
                )));
            }
            if order.status == status {
                return Ok(order);
            }
            order.status = status;
            order.updated_at = now_ms();
            let written = self
                .docs
                .replace_keyed(&order.region, ORDERS, id, id, &encode(&order), version)
                .await;
            match written {
                Ok(stored) => {
                    self.written.notify_one();
                    self.index_after_write(&order, stored.version).await;
                    return Ok(order);
                }
                Err(ShardError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrdersError::Conflict(format!(
            "order {id} kept changing under {CAS_TRIES} tries; try again"
        )))
    }

    /// Indexes an order just written. The order is stored whatever happens here, so a failure
    /// (the user's shard switching, say) must not fail the request, whose retry would place
    /// the order twice: the index tail writes the entry instead.
    async fn index_after_write(&self, order: &Order, version: i64) {
        if let Err(e) = self.index(order, version).await {
            metrics::counter!("praxis_orders_index_deferred_total").increment(1);
            tracing::warn!(order = %order.id, error = %e, "order stored; its list entry is left to the index tail");
        }
    }

    /// Writes the entry of `order` (at its stored `version`) in its user's list, unless the
    /// entry is already of that version or a later one: writers racing with each other (and
    /// with the index tail) never put an older status back.
    pub async fn index(&self, order: &Order, version: i64) -> Result<(), OrdersError> {
        let entry = OrderEntry::of(order, version);
        let id = entry_id(&order.user_id, &order.id);
        let (region, user) = (&order.region, &order.user_id);
        for _ in 0..CAS_TRIES {
            let stored = self.docs.get_keyed(region, USER_ORDERS, user, &id).await?;
            let written = match stored {
                Some(doc) => {
                    if decode::<OrderEntry>(&doc).is_ok_and(|e| e.version >= version) {
                        return Ok(());
                    }
                    self.docs
                        .replace_keyed(region, USER_ORDERS, user, &id, &encode(&entry), doc.version)
                        .await
                }
                None => {
                    self.docs
                        .put_keyed(region, USER_ORDERS, user, &id, &encode(&entry))
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                Err(ShardError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrdersError::Conflict(format!(
            "the index entry of order {} kept changing; the index tail writes it",
            order.id
        )))
    }

    /// `user`'s orders, newest first, placed before order `before` (exclusive): one shard's
    /// read of the user's index, in the user's home region.
    pub async fn list(
        &self,
        user: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrderEntry>, OrdersError> {
        let Some(region) = self.home(user).await? else {
            return Ok(Vec::new());
        };
        let prefix = entry_id(user, "");
        let before = before.map(|order| entry_id(user, order));
        let docs = self
            .docs
            .list_keyed(
                &region,
                USER_ORDERS,
                user,
                &prefix,
                before.as_deref(),
                limit,
            )
            .await?;
        docs.iter().map(decode).collect()
    }
}
