//! Zero oversell: concurrent buyers, one or two processes, the naive variant that oversells,
//! and expiry under racing sweepers.

use std::sync::Arc;

use praxis_commerce::{CommerceError, Inventory, ReserveMode};
use praxis_testkit::Kind;

use crate::support::{inventory_on, line, scalar, sql, start};

const BUYERS: usize = 1_000;
const UNITS: i64 = 100;
const SKU: &str = "FLASH-1";

/// What a race ended with.
#[derive(Debug, Default)]
struct Outcome {
    confirmed: usize,
    out_of_stock: usize,
}

/// `BUYERS` buyers at once, spread over `inventories`, each reserving one unit of [`SKU`] and
/// confirming it.
async fn race(inventories: &[Inventory]) -> Outcome {
    let mut tasks = Vec::with_capacity(BUYERS);
    for n in 0..BUYERS {
        let inventory = inventories[n % inventories.len()].clone();
        tasks.push(tokio::spawn(async move {
            let holder = format!("buyer-{n}");
            match inventory.reserve(&holder, &[line(SKU, 1)], None).await {
                Ok(reserved) => {
                    inventory.confirm(&reserved[0].id).await.unwrap();
                    true
                }
                Err(CommerceError::OutOfStock { .. }) => false,
                Err(e) => panic!("buyer {n}: {e}"),
            }
        }));
    }
    let mut outcome = Outcome::default();
    for t in tasks {
        if t.await.unwrap() {
            outcome.confirmed += 1;
        } else {
            outcome.out_of_stock += 1;
        }
    }
    outcome
}

async fn stocked(inventory: &Inventory) {
    inventory.create_warehouse("w1", "eu").await.unwrap();
    inventory.receive(SKU, "w1", UNITS).await.unwrap();
}

/// Exactly `UNITS` confirmed, the stock at zero, and the ledger agreeing.
async fn assert_sold_out_exactly(inventory: &Inventory, outcome: &Outcome) {
    assert_eq!(outcome.confirmed, UNITS as usize, "{outcome:?}");
    assert_eq!(outcome.out_of_stock, BUYERS - UNITS as usize);
    let level = &inventory.stock(SKU).await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (0, 0));
    let verified = inventory.verify().await.unwrap();
    assert!(verified.mismatches.is_empty(), "{verified:?}");
}

pub async fn a_thousand_buyers_race_for_a_hundred_units(kind: Kind) {
    let (_backend, inventory) = start(kind).await;
    stocked(&inventory).await;
    let outcome = race(std::slice::from_ref(&inventory)).await;
    assert_sold_out_exactly(&inventory, &outcome).await;
}

pub async fn a_split_hot_sku_sells_exactly_its_units(kind: Kind) {
    let (backend, inventory) = start(kind).await;
    stocked(&inventory).await;
    inventory.set_buckets(SKU, "w1", 8).await.unwrap();
    let outcome = race(std::slice::from_ref(&inventory)).await;
    assert_sold_out_exactly(&inventory, &outcome).await;
    // The buyers took from every bucket (each held 12 or 13 units and all were sold).
    assert_eq!(
        scalar(
            &backend,
            "SELECT COUNT(DISTINCT bucket) FROM commerce_reservations WHERE status = 'confirmed'"
        )
        .await,
        8
    );
}

pub async fn two_processes_race_for_the_same_units(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let first = inventory_on(&a, ReserveMode::Conditional).await;
    let second = inventory_on(&b, ReserveMode::Conditional).await;
    stocked(&first).await;
    let outcome = race(&[first.clone(), second]).await;
    assert_sold_out_exactly(&first, &outcome).await;
}

pub async fn the_naive_read_modify_write_oversells(kind: Kind) {
    let backend = kind.start().await;
    let inventory = inventory_on(&backend, ReserveMode::NaiveReadModifyWrite).await;
    stocked(&inventory).await;
    let outcome = race(std::slice::from_ref(&inventory)).await;
    // The same race, the same stock: the read-modify-write lets buyers overwrite each other's
    // counts, so more orders are confirmed than there were units.
    assert!(
        outcome.confirmed > UNITS as usize,
        "the naive variant sold {} of {UNITS}",
        outcome.confirmed
    );
    let level = &inventory.stock(SKU).await.unwrap()[0];
    assert!(level.on_hand < 0, "{level:?}");
    let verified = inventory.verify().await.unwrap();
    assert!(
        !verified.mismatches.is_empty(),
        "the ledger shows the lost updates"
    );
}

pub async fn expired_reservations_return_once_with_two_sweepers(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let first = inventory_on(&a, ReserveMode::Conditional).await;
    let second = inventory_on(&b, ReserveMode::Conditional).await;
    stocked(&first).await;
    let mut ids = Vec::new();
    for n in 0..50 {
        let r = first
            .reserve(&format!("cart-{n}"), &[line(SKU, 1)], None)
            .await
            .unwrap();
        ids.push(r[0].id.clone());
    }
    assert_eq!(first.stock(SKU).await.unwrap()[0].available(), UNITS - 50);
    // Their TTL passes.
    sql(
        &a,
        "UPDATE commerce_reservations SET expires_at = 1 WHERE status = 'held'",
    )
    .await;
    let sweepers = Arc::new(tokio::sync::Barrier::new(2));
    let run = |inventory: Inventory| {
        let sweepers = sweepers.clone();
        async move {
            sweepers.wait().await;
            inventory.release_expired(1_000).await.unwrap()
        }
    };
    let (x, y) = tokio::join!(run(first.clone()), run(second.clone()));
    assert_eq!(
        x + y,
        50,
        "each expired reservation is released once ({x} + {y})"
    );
    let level = &first.stock(SKU).await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (UNITS, 0));
    assert_eq!(
        scalar(
            &a,
            "SELECT COUNT(*) FROM commerce_ledger WHERE kind = 'release' AND note = 'expired'"
        )
        .await,
        50
    );
    assert!(first.verify().await.unwrap().mismatches.is_empty());
    // An expired reservation cannot be confirmed: its stock went back.
    assert!(matches!(
        second.confirm(&ids[0]).await,
        Err(CommerceError::Conflict(_))
    ));
    assert_eq!(first.release_expired(1_000).await.unwrap(), 0);
}
