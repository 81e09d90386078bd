//! The checkout saga, orchestrated: reserve inventory, authorize payment, create shipment,
//! confirm. On a failure at any step (or a cancellation), the completed steps are undone in
//! reverse: cancel the shipment, void the payment, give the stock back. The saga's state is
//! the order row; whoever holds the order's lease drives it, one step at a time, and every
//! step is safe to run again (the inventory by the order's reservations, the providers by the
//! order id as their idempotency key), so a process that dies mid-step leaves an order that
//! any process resumes once the lease expires ([`Checkout::recover`]).

use std::sync::Arc;
use std::time::Duration;

use praxis_infra::Db;
use praxis_infra::bus::Bus;
use praxis_infra::sql::now_ms;
use tokio_util::sync::CancellationToken;

use super::inventory::Inventory;
use crate::domain::model::{ReleaseReason, ReservationStatus};
use crate::domain::order::{NewOrder, Order, Step};
use crate::error::CommerceError;
use crate::providers::{Payments, ProviderError, Shipping};
use crate::store::orders::{Changes, Orders};

/// The saga's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaSettings {
    /// How long a provider call may take before the saga gives up on it (and compensates: a
    /// late answer is voided).
    pub step_timeout: Duration,
    /// Tries of a provider call that answers "unavailable" before the saga compensates.
    pub attempts: u32,
    /// How long a process holds an order's saga without renewing it; after that another
    /// process may resume it.
    pub lease: Duration,
    /// How often abandoned sagas are looked for.
    pub recover_interval: Duration,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(5),
            attempts: 3,
            lease: Duration::from_secs(30),
            recover_interval: Duration::from_secs(5),
        }
    }
}

/// The reason a buyer's cancellation records.
pub const CANCELLED_BY_BUYER: &str = "cancelled by the buyer";

/// How a step ended.
enum StepOutcome {
    /// Done: move on with these changes.
    Done(Changes),
    /// It cannot succeed: compensate, for this reason.
    Failed(String),
}

/// The checkout. Cheap to clone.
#[derive(Clone)]
pub struct Checkout {
    orders: Orders,
    inventory: Inventory,
    payments: Arc<dyn Payments>,
    shipping: Arc<dyn Shipping>,
    settings: Arc<SagaSettings>,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// The checkout on `db` (the commerce migrations applied), publishing order events on
    /// `bus`, reserving from `inventory`, calling `payments` and `shipping`.
    pub fn new(
        db: Db,
        bus: Bus,
        inventory: Inventory,
        payments: Arc<dyn Payments>,
        shipping: Arc<dyn Shipping>,
        settings: SagaSettings,
    ) -> Self {
        Self {
            orders: Orders::new(db, bus),
            inventory,
            payments,
            shipping,
            settings: Arc::new(settings),
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Places an order and runs its saga to its end: the order comes back `confirmed` or
    /// `cancelled` (with its `failure`). The same `idempotency_key` from the same buyer gives
    /// back the first order (driven to its end if it had not got there).
    pub async fn place(&self, new: NewOrder) -> Result<Order, CommerceError> {
        let (_, total) = new.checked()?;
        let now = now_ms();
        let order = Order {
            id: uuid::Uuid::now_v7().to_string(),
            buyer: new.buyer.clone(),
            region: new.region.clone(),
            currency: new.currency.clone(),
            total_cents: total,
            lines: new.lines.clone(),
            step: Step::Placed,
            payment_auth: None,
            shipment: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        let token = uuid::Uuid::new_v4().to_string();
        let (order, inserted) = self
            .orders
            .insert(
                &order,
                new.idempotency_key.as_deref(),
                &token,
                self.lease_ms(),
            )
            .await?;
        if inserted {
            return self.run(&order.id, &token).await;
        }
        self.drive(&order.id).await
    }

    /// The order `buyer` placed with `idempotency_key`, driven to its end if its checkout
    /// had not got there (a retry of a request that did not get its answer).
    pub async fn order_by_key(
        &self,
        buyer: &str,
        idempotency_key: &str,
    ) -> Result<Option<Order>, CommerceError> {
        match self.orders.by_key(buyer, idempotency_key).await? {
            Some(o) if o.step.is_final() => Ok(Some(o)),
            Some(o) => Ok(Some(self.drive(&o.id).await?)),
            None => Ok(None),
        }
    }

    /// Order `id` of `buyer`.
    pub async fn order(&self, buyer: &str, id: &str) -> Result<Order, CommerceError> {
        self.orders
            .get(id)
            .await?
            .filter(|o| o.buyer == buyer)
            .ok_or_else(|| CommerceError::NotFound(format!("no order {id} among yours")))
    }

    /// `buyer`'s orders, newest first.
    pub async fn orders_of(
        &self,
        buyer: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Order>, CommerceError> {
        Ok(self.orders.of_buyer(buyer, before, limit).await?)
    }

    /// Cancels `buyer`'s order `id`: every completed step is undone (a confirmed order's
    /// shipment is cancelled, its payment voided and its stock put back). Cancelling a
    /// cancelled order is fine; an order whose saga another request is running is a conflict
    /// (retry shortly).
    pub async fn cancel(&self, buyer: &str, id: &str) -> Result<Order, CommerceError> {
        let order = self.order(buyer, id).await?;
        if order.step == Step::Cancelled {
            return Ok(order);
        }
        let token = uuid::Uuid::new_v4().to_string();
        // A confirmed order has no lease to take: reopen it first.
        let taken = if order.step == Step::Confirmed {
            self.orders
                .reopen(&order.id, &token, CANCELLED_BY_BUYER, self.lease_ms())
                .await?
        } else {
            self.orders
                .take_lease(&order.id, &token, self.lease_ms())
                .await?
        };
        if !taken {
            return Err(CommerceError::Conflict(format!(
                "order {id} is being checked out by another request; retry in a moment"
            )));
        }
        let order = self.reload(id).await?;
        if order.step != Step::Compensating {
            let changes = Changes {
                failure: Some(CANCELLED_BY_BUYER.to_owned()),
                ..Changes::default()
            };
            self.orders
                .advance(
                    &order,
                    &token,
                    Step::Compensating,
                    &changes,
                    None,
                    self.lease_ms(),
                    now_ms(),
                )
                .await?;
        }
        self.run(id, &token).await
    }

    /// Drives order `id`'s saga to its end if no live lease holds it; the order as it stands
    /// after.
    pub async fn drive(&self, id: &str) -> Result<Order, CommerceError> {
        let token = uuid::Uuid::new_v4().to_string();
        if !self.orders.take_lease(id, &token, self.lease_ms()).await? {
            return self.reload(id).await;
        }
        self.run(id, &token).await
    }

    /// Resumes up to `limit` sagas whose process died (their lease expired); how many ended.
    pub async fn recover(&self, limit: i64) -> Result<usize, CommerceError> {
        let mut ended = 0;
        for id in self.orders.abandoned(limit).await? {
            match self.drive(&id).await {
                Ok(o) if o.step.is_final() => ended += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(order = %id, error = %e, "an abandoned checkout could not be resumed; it is tried again")
                }
            }
        }
        Ok(ended)
    }

    async fn reload(&self, id: &str) -> Result<Order, CommerceError> {
        self.orders
            .get(id)
            .await?
            .ok_or_else(|| CommerceError::NotFound(format!("no order {id}")))
    }

    /// Runs the saga under `token`'s lease until it ends, the lease is lost, or a dependency
    /// fails (the lease then expires and [`Checkout::recover`] resumes it).
    async fn run(&self, id: &str, token: &str) -> Result<Order, CommerceError> {
        loop {
            let order = self.reload(id).await?;
            if order.step.is_final() {
                return Ok(order);
            }
            let (to, changes, event) = match order.step {
                Step::Compensating => {
                    self.compensate(&order).await?;
                    let event = if order.failure.as_deref() == Some(CANCELLED_BY_BUYER) {
                        "cancelled"
                    } else {
                        "compensated"
                    };
                    (Step::Cancelled, Changes::default(), Some(event))
                }
                step => match self.step(&order).await? {
                    StepOutcome::Done(changes) => {
                        let event = match step {
                            Step::Reserved => Some("paid"),
                            Step::Authorized => Some("shipped"),
                            Step::Shipped => Some("confirmed"),
                            _ => None,
                        };
                        (step.next(), changes, event)
                    }
                    StepOutcome::Failed(reason) => {
                        metrics::counter!("praxis_commerce_saga_failures_total", "step" => step.as_str())
                            .increment(1);
                        let changes = Changes {
                            failure: Some(reason),
                            ..Changes::default()
                        };
                        (Step::Compensating, changes, None)
                    }
                },
            };
            let moved = self
                .orders
                .advance(
                    &order,
                    token,
                    to,
                    &changes,
                    event,
                    self.lease_ms(),
                    now_ms(),
                )
                .await?;
            if !moved {
                // Another process took the saga over (this one stalled past its lease).
                return self.reload(id).await;
            }
        }
    }

    /// Runs the step after `order`'s current one.
    async fn step(&self, order: &Order) -> Result<StepOutcome, CommerceError> {
        match order.step {
            Step::Placed => self.reserve(order).await,
            Step::Reserved => {
                let auth = self
                    .call("payment", || {
                        self.payments
                            .authorize(&order.id, order.total_cents, &order.currency)
                    })
                    .await;
                Ok(match auth {
                    Ok(auth) => StepOutcome::Done(Changes {
                        payment_auth: Some(auth),
                        ..Changes::default()
                    }),
                    Err(reason) => StepOutcome::Failed(reason),
                })
            }
            Step::Authorized => {
                let shipment = self
                    .call("shipping", || self.shipping.create(&order.id))
                    .await;
                Ok(match shipment {
                    Ok(shipment) => StepOutcome::Done(Changes {
                        shipment: Some(shipment),
                        ..Changes::default()
                    }),
                    Err(reason) => StepOutcome::Failed(reason),
                })
            }
            Step::Shipped => self.confirm(order).await,
            Step::Confirmed | Step::Compensating | Step::Cancelled => {
                Ok(StepOutcome::Done(Changes::default()))
            }
        }
    }

    /// Reserves the order's lines, unless an earlier run did (its reservations exist).
    async fn reserve(&self, order: &Order) -> Result<StepOutcome, CommerceError> {
        if !self.inventory.reservations_of(&order.id).await?.is_empty() {
            return Ok(StepOutcome::Done(Changes::default()));
        }
        let lines: Vec<_> = order
            .lines
            .iter()
            .map(|l| crate::domain::model::Line {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
        match self
            .inventory
            .reserve(&order.id, &lines, order.region.as_deref())
            .await
        {
            Ok(_) => Ok(StepOutcome::Done(Changes::default())),
            Err(CommerceError::OutOfStock { sku, requested }) => Ok(StepOutcome::Failed(format!(
                "out of stock: {requested} of {sku} are not available"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Confirms every reservation; one that expired meanwhile fails the order.
    async fn confirm(&self, order: &Order) -> Result<StepOutcome, CommerceError> {
        for r in self.inventory.reservations_of(&order.id).await? {
            match self.inventory.confirm(&r.id).await {
                Ok(()) => {}
                Err(CommerceError::Conflict(_)) => {
                    return Ok(StepOutcome::Failed(format!(
                        "the reservation of {} expired before the order was confirmed",
                        r.sku
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(StepOutcome::Done(Changes::default()))
    }

    /// Undoes every step the order may have completed, each safe to run again: cancel the
    /// shipment and void the payment by the order's key (whether they happened or not: a
    /// call praxis gave up on may still land), release held reservations and put confirmed
    /// ones back on hand.
    async fn compensate(&self, order: &Order) -> Result<(), CommerceError> {
        let undo = |what: &str, r: Result<(), ProviderError>| {
            r.map_err(|e| {
                CommerceError::Infra(praxis_infra::InfraError::Timeout(format!(
                    "{what} of order {}: {e}; the compensation is retried",
                    order.id
                )))
            })
        };
        undo(
            "the shipment's cancellation",
            self.timed(self.shipping.cancel(&order.id)).await,
        )?;
        undo(
            "the payment's void",
            self.timed(self.payments.void(&order.id)).await,
        )?;
        let reason = if order.failure.as_deref() == Some(CANCELLED_BY_BUYER) {
            ReleaseReason::Cancelled
        } else {
            ReleaseReason::Failed
        };
        for r in self.inventory.reservations_of(&order.id).await? {
            match r.status {
                ReservationStatus::Held => {
                    self.inventory.release(&r.id, reason).await?;
                }
                ReservationStatus::Confirmed => {
                    self.inventory.restock(&r.id).await?;
                }
                ReservationStatus::Released | ReservationStatus::Returned => {}
            }
        }
        Ok(())
    }

    /// A provider call bounded by the step timeout.
    async fn timed<T>(
        &self,
        call: futures::future::BoxFuture<'_, Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.settings.step_timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(ProviderError::Unavailable(format!(
                "no answer within {} ms",
                self.settings.step_timeout.as_millis()
            ))),
        }
    }

    /// A forward provider call: tried up to `attempts` times while it is unavailable (or
    /// silent past the step timeout); the reason to compensate when it cannot succeed.
    async fn call<'a, T>(
        &'a self,
        what: &str,
        make: impl Fn() -> futures::future::BoxFuture<'a, Result<T, ProviderError>>,
    ) -> Result<T, String> {
        let mut last = String::new();
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            match self.timed(make()).await {
                Ok(v) => return Ok(v),
                Err(ProviderError::Declined(why)) => return Err(format!("{what} declined: {why}")),
                Err(ProviderError::Unavailable(why)) => last = why,
            }
        }
        Err(format!("{what} unavailable: {last}"))
    }
}

/// Resumes abandoned sagas every `recover_interval` until `shutdown`.
pub async fn run_recovery(checkout: Checkout, shutdown: CancellationToken) {
    let every = checkout.settings.recover_interval;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = checkout.recover(100).await {
            tracing::warn!(error = %e, "the checkout recovery pass failed; it retries");
        }
    }
}
