//! The checkout saga always ends: confirmed, or compensated with nothing left held, charged
//! or shipped, whichever step fails, when praxis gives up on a late answer, when the process
//! driving it dies at a step, and when the buyer cancels.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use praxis_commerce::domain::model::ReservationStatus;
use praxis_commerce::domain::order::{NewOrder, ORDERS_TOPIC, Order, OrderEvent, OrderLine, Step};
use praxis_commerce::providers::{Behaviour, Scripted};
use praxis_commerce::{Checkout, CommerceError, Inventory, ReserveMode, SagaSettings};
use praxis_testkit::{Kind, TestBackend};

use crate::support::{inventory_on, sql};

/// A checkout on `backend` with shared scripted providers.
struct Shop {
    inventory: Inventory,
    checkout: Checkout,
}

async fn shop_on(
    backend: &TestBackend,
    payments: &Scripted,
    shipping: &Scripted,
    settings: SagaSettings,
) -> Shop {
    let inventory = inventory_on(backend, ReserveMode::Conditional).await;
    let checkout = Checkout::new(
        backend.platform.db.clone(),
        backend.platform.bus.clone(),
        inventory.clone(),
        Arc::new(payments.clone()),
        Arc::new(shipping.clone()),
        settings,
    );
    Shop {
        inventory,
        checkout,
    }
}

fn quick() -> SagaSettings {
    SagaSettings {
        step_timeout: Duration::from_millis(300),
        ..SagaSettings::default()
    }
}

async fn stocked(shop: &Shop, units: i64) {
    shop.inventory.create_warehouse("w1", "eu").await.unwrap();
    shop.inventory.receive("SHOE", "w1", units).await.unwrap();
}

fn order(buyer: &str, quantity: i64, key: Option<&str>) -> NewOrder {
    NewOrder {
        buyer: buyer.to_owned(),
        region: Some("eu".to_owned()),
        currency: "EUR".to_owned(),
        lines: vec![OrderLine {
            sku: "SHOE".to_owned(),
            quantity,
            unit_cents: 4_999,
        }],
        idempotency_key: key.map(str::to_owned),
    }
}

/// Every event of the orders topic, as the notifications system would receive them.
fn listen(backend: &TestBackend, group: &str) -> Arc<Mutex<Vec<OrderEvent>>> {
    let seen: Arc<Mutex<Vec<OrderEvent>>> = Arc::default();
    let sink = seen.clone();
    backend
        .platform
        .bus
        .subscribe(ORDERS_TOPIC, group, move |event| {
            let sink = sink.clone();
            async move {
                let e: OrderEvent = serde_json::from_slice(&event.payload).map_err(|e| {
                    praxis_infra::bus::HandlerError::Permanent(format!("not an order event: {e}"))
                })?;
                sink.lock().push(e);
                Ok(())
            }
        })
        .unwrap();
    seen
}

async fn events_of(seen: &Arc<Mutex<Vec<OrderEvent>>>, order: &str, last: &str) -> Vec<String> {
    praxis_testkit::eventually::eventually(
        Duration::from_secs(20),
        &format!("the {last} event of order {order}"),
        || async {
            let kinds: Vec<String> = seen
                .lock()
                .iter()
                .filter(|e| e.order_id == order)
                .map(|e| e.kind.clone())
                .collect();
            kinds.iter().any(|k| k == last).then_some(kinds)
        },
    )
    .await
}

/// An order that ended cancelled holds nothing: no reservation, no charge, no shipment,
/// and the stock and its ledger agree.
async fn assert_nothing_left(
    shop: &Shop,
    payments: &Scripted,
    shipping: &Scripted,
    o: &Order,
    units: i64,
) {
    assert_eq!(o.step, Step::Cancelled, "{o:?}");
    for r in shop.inventory.reservations_of(&o.id).await.unwrap() {
        assert!(
            matches!(
                r.status,
                ReservationStatus::Released | ReservationStatus::Returned
            ),
            "{r:?}"
        );
    }
    for (provider, r) in [
        ("payment", payments.record(&o.id)),
        ("shipment", shipping.record(&o.id)),
    ] {
        assert!(
            r.done == 0 || r.undone,
            "the {provider} of {} is left: {r:?}",
            o.id
        );
    }
    let level = &shop.inventory.stock("SHOE").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (units, 0));
    assert!(shop.inventory.verify().await.unwrap().mismatches.is_empty());
}

pub async fn a_checkout_confirms_and_publishes_its_events(kind: Kind) {
    let backend = kind.start().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let shop = shop_on(&backend, &payments, &shipping, quick()).await;
    let seen = listen(&backend, "test-confirm");
    stocked(&shop, 10).await;
    let o = shop.checkout.place(order("ann", 2, None)).await.unwrap();
    assert_eq!(o.step, Step::Confirmed, "{o:?}");
    assert_eq!(o.total_cents, 9_998);
    assert_eq!(
        o.payment_auth.as_deref(),
        Some(format!("pay-{}", o.id).as_str())
    );
    assert_eq!(payments.record(&o.id).done, 1);
    assert_eq!(shipping.record(&o.id).done, 1);
    let level = &shop.inventory.stock("SHOE").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (8, 0));
    assert!(shop.inventory.verify().await.unwrap().mismatches.is_empty());
    assert_eq!(
        events_of(&seen, &o.id, "confirmed").await,
        ["placed", "paid", "shipped", "confirmed"]
    );
    assert_eq!(shop.checkout.order("ann", &o.id).await.unwrap(), o);
    assert!(matches!(
        shop.checkout.order("bob", &o.id).await,
        Err(CommerceError::NotFound(_))
    ));
    assert_eq!(
        shop.checkout.orders_of("ann", None, 10).await.unwrap(),
        vec![o]
    );
}

pub async fn each_failing_step_is_compensated(kind: Kind) {
    let backend = kind.start().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let shop = shop_on(&backend, &payments, &shipping, quick()).await;
    let seen = listen(&backend, "test-failures");
    stocked(&shop, 10).await;
    // Not enough stock: nothing is charged.
    let o = shop.checkout.place(order("ann", 11, None)).await.unwrap();
    assert!(
        o.failure.as_deref().unwrap().contains("out of stock"),
        "{o:?}"
    );
    assert_eq!(payments.record(&o.id).done, 0);
    assert_nothing_left(&shop, &payments, &shipping, &o, 10).await;
    // The payment is declined; then unavailable on every try.
    for (behaviour, why) in [
        (Behaviour::Decline, "payment declined"),
        (Behaviour::Fail, "payment unavailable"),
    ] {
        payments.set(behaviour);
        let o = shop.checkout.place(order("ann", 3, None)).await.unwrap();
        assert!(o.failure.as_deref().unwrap().starts_with(why), "{o:?}");
        assert_nothing_left(&shop, &payments, &shipping, &o, 10).await;
    }
    payments.set(Behaviour::Succeed);
    // Shipping refuses, then is down: the authorized payment is voided.
    for behaviour in [Behaviour::Decline, Behaviour::Fail] {
        shipping.set(behaviour);
        let o = shop.checkout.place(order("ann", 3, None)).await.unwrap();
        assert!(
            o.failure.as_deref().unwrap().starts_with("shipping"),
            "{o:?}"
        );
        let paid = payments.record(&o.id);
        assert!(
            paid.done == 1 && paid.undone,
            "the authorization is voided: {paid:?}"
        );
        assert_nothing_left(&shop, &payments, &shipping, &o, 10).await;
        assert_eq!(
            events_of(&seen, &o.id, "compensated").await,
            ["placed", "paid", "compensated"]
        );
    }
}

pub async fn a_late_payment_is_voided_when_it_lands(kind: Kind) {
    let backend = kind.start().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let settings = SagaSettings {
        step_timeout: Duration::from_millis(100),
        attempts: 1,
        ..SagaSettings::default()
    };
    let shop = shop_on(&backend, &payments, &shipping, settings).await;
    stocked(&shop, 10).await;
    // The provider authorizes after praxis gave up waiting.
    payments.set(Behaviour::Late(Duration::from_millis(400)));
    let o = shop.checkout.place(order("ann", 1, None)).await.unwrap();
    assert!(
        o.failure
            .as_deref()
            .unwrap()
            .starts_with("payment unavailable"),
        "{o:?}"
    );
    let landed = praxis_testkit::eventually::eventually(
        Duration::from_secs(10),
        "the late authorization",
        || async { Some(payments.record(&o.id)).filter(|r| r.done == 1) },
    )
    .await;
    assert!(landed.undone, "the void recorded before it cancels it");
    assert_nothing_left(&shop, &payments, &shipping, &o, 10).await;
}

pub async fn a_checkout_whose_process_dies_is_resumed_by_another(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let patient = SagaSettings {
        step_timeout: Duration::from_secs(600),
        ..SagaSettings::default()
    };
    let first = shop_on(&a, &payments, &shipping, patient.clone()).await;
    let second = shop_on(&b, &payments, &shipping, patient).await;
    stocked(&first, 10).await;
    // The process dies while the payment, then the shipping, provider is called.
    for (n, (hung, step)) in [(&payments, Step::Reserved), (&shipping, Step::Authorized)]
        .into_iter()
        .enumerate()
    {
        hung.set(Behaviour::Hang);
        let buyer = format!("buyer-{n}");
        let place = {
            let checkout = first.checkout.clone();
            let new = order(&buyer, 2, None);
            tokio::spawn(async move { checkout.place(new).await })
        };
        let stuck: Order = praxis_testkit::eventually::eventually(
            Duration::from_secs(20),
            "the saga reaches the hung provider",
            || async {
                let mine = second.checkout.orders_of(&buyer, None, 1).await.unwrap();
                mine.into_iter().next().filter(|o| o.step == step)
            },
        )
        .await;
        // While its process lives, its lease keeps every other process's recovery off it.
        assert_eq!(second.checkout.recover(10).await.unwrap(), 0);
        place.abort();
        let _ = place.await;
        hung.set(Behaviour::Succeed);
        // Its lease lapses; the other process's recovery finishes the checkout.
        sql(
            &a,
            &format!(
                "UPDATE commerce_orders SET lease_until = 1 WHERE id = '{}'",
                stuck.id
            ),
        )
        .await;
        assert_eq!(second.checkout.recover(10).await.unwrap(), 1);
        let o = second.checkout.order(&buyer, &stuck.id).await.unwrap();
        assert_eq!(o.step, Step::Confirmed, "{o:?}");
        assert_eq!(payments.record(&o.id).done, 1, "one authorization, not two");
        assert_eq!(shipping.record(&o.id).done, 1);
    }
    let level = &first.inventory.stock("SHOE").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (6, 0));
    assert!(
        first
            .inventory
            .verify()
            .await
            .unwrap()
            .mismatches
            .is_empty()
    );
    // A checkout that dies while compensating is compensated by the other process.
    payments.set(Behaviour::Decline);
    let o = first
        .checkout
        .place(order("buyer-x", 1, None))
        .await
        .unwrap();
    assert_eq!(o.step, Step::Cancelled);
    sql(
        &a,
        &format!(
            "UPDATE commerce_orders SET step = 'compensating', lease_owner = 'dead', lease_until = 1 WHERE id = '{}'",
            o.id
        ),
    )
    .await;
    assert_eq!(second.checkout.recover(10).await.unwrap(), 1);
    assert_nothing_left(
        &second,
        &payments,
        &shipping,
        &second.checkout.order("buyer-x", &o.id).await.unwrap(),
        6,
    )
    .await;
}

pub async fn the_same_idempotency_key_gives_the_same_order(kind: Kind) {
    let backend = kind.start().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let shop = shop_on(&backend, &payments, &shipping, quick()).await;
    stocked(&shop, 10).await;
    let first = shop
        .checkout
        .place(order("ann", 4, Some("key-1")))
        .await
        .unwrap();
    let again = shop
        .checkout
        .place(order("ann", 4, Some("key-1")))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(shop.inventory.stock("SHOE").await.unwrap()[0].on_hand, 6);
    // Another buyer's same key is another order.
    let other = shop
        .checkout
        .place(order("bob", 1, Some("key-1")))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
}

pub async fn a_buyer_cancels_a_confirmed_order(kind: Kind) {
    let backend = kind.start().await;
    let (payments, shipping) = (Scripted::new("pay"), Scripted::new("ship"));
    let shop = shop_on(&backend, &payments, &shipping, quick()).await;
    let seen = listen(&backend, "test-cancel");
    stocked(&shop, 10).await;
    let o = shop.checkout.place(order("ann", 3, None)).await.unwrap();
    assert_eq!(o.step, Step::Confirmed);
    assert!(matches!(
        shop.checkout.cancel("bob", &o.id).await,
        Err(CommerceError::NotFound(_))
    ));
    let cancelled = shop.checkout.cancel("ann", &o.id).await.unwrap();
    assert_eq!(cancelled.failure.as_deref(), Some("cancelled by the buyer"));
    assert_nothing_left(&shop, &payments, &shipping, &cancelled, 10).await;
    assert_eq!(
        shop.checkout.cancel("ann", &o.id).await.unwrap().step,
        Step::Cancelled
    );
    assert_eq!(
        events_of(&seen, &o.id, "cancelled").await,
        ["placed", "paid", "shipped", "confirmed", "cancelled"]
    );
}
