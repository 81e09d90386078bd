//! Reservations line by line: all or none, where the stock comes from, once-only transitions,
//! the ledger of receipts and adjustments, and bad input.

use praxis_commerce::domain::model::{ReleaseReason, ReservationStatus};
use praxis_commerce::{CommerceError, Inventory};
use praxis_testkit::Kind;

use crate::support::{line, scalar, start};

pub async fn a_checkout_reserves_every_line_or_none(kind: Kind) {
    let (backend, inventory) = start(kind).await;
    inventory.create_warehouse("w1", "eu").await.unwrap();
    inventory.receive("SHIRT", "w1", 5).await.unwrap();
    inventory.receive("HAT", "w1", 1).await.unwrap();
    let err = inventory
        .reserve("order-1", &[line("SHIRT", 2), line("HAT", 2)], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommerceError::OutOfStock { sku, requested: 2 } if sku == "HAT"),
        "{err:?}"
    );
    // The shirts the first line took went back with the transaction.
    assert_eq!(inventory.stock("SHIRT").await.unwrap()[0].available(), 5);
    assert_eq!(
        scalar(&backend, "SELECT COUNT(*) FROM commerce_reservations").await,
        0
    );
    let reserved = inventory
        .reserve("order-2", &[line("SHIRT", 2), line("HAT", 1)], None)
        .await
        .unwrap();
    assert_eq!(reserved.len(), 2);
    assert_eq!(inventory.stock("SHIRT").await.unwrap()[0].available(), 3);
    assert_eq!(inventory.stock("HAT").await.unwrap()[0].available(), 0);
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
}

pub async fn the_buyers_region_goes_first_then_the_fullest_warehouse(kind: Kind) {
    let (_backend, inventory) = start(kind).await;
    inventory.create_warehouse("eu-1", "eu").await.unwrap();
    inventory.create_warehouse("us-1", "us").await.unwrap();
    inventory.create_warehouse("us-2", "us").await.unwrap();
    inventory.receive("MUG", "eu-1", 5).await.unwrap();
    inventory.receive("MUG", "us-1", 50).await.unwrap();
    inventory.receive("MUG", "us-2", 20).await.unwrap();
    let r = inventory
        .reserve("a", &[line("MUG", 3)], Some("eu"))
        .await
        .unwrap();
    assert_eq!(r[0].warehouse, "eu-1");
    // The region's warehouse lacks 10: the fullest elsewhere gives them.
    let r = inventory
        .reserve("b", &[line("MUG", 10)], Some("eu"))
        .await
        .unwrap();
    assert_eq!(r[0].warehouse, "us-1");
    let r = inventory
        .reserve("c", &[line("MUG", 20)], Some("us"))
        .await
        .unwrap();
    assert_eq!(r[0].warehouse, "us-1", "40 left there, 20 in us-2");
    // A line is never split: 60 fit in no single warehouse.
    assert!(matches!(
        inventory.reserve("d", &[line("MUG", 60)], None).await,
        Err(CommerceError::OutOfStock { .. })
    ));
}

pub async fn release_and_confirm_happen_once(kind: Kind) {
    let (_backend, inventory) = start(kind).await;
    inventory.create_warehouse("w1", "eu").await.unwrap();
    inventory.receive("BOOK", "w1", 10).await.unwrap();
    let a = inventory
        .reserve("a", &[line("BOOK", 4)], None)
        .await
        .unwrap()
        .remove(0);
    let b = inventory
        .reserve("b", &[line("BOOK", 3)], None)
        .await
        .unwrap()
        .remove(0);
    assert!(
        inventory
            .release(&a.id, ReleaseReason::Cancelled)
            .await
            .unwrap()
    );
    assert!(
        !inventory
            .release(&a.id, ReleaseReason::Cancelled)
            .await
            .unwrap()
    );
    assert!(matches!(
        inventory.confirm(&a.id).await,
        Err(CommerceError::Conflict(_))
    ));
    inventory.confirm(&b.id).await.unwrap();
    inventory.confirm(&b.id).await.unwrap();
    assert!(
        !inventory
            .release(&b.id, ReleaseReason::Failed)
            .await
            .unwrap()
    );
    let level = &inventory.stock("BOOK").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (7, 0));
    let b = inventory.store().reservation(&b.id).await.unwrap().unwrap();
    assert_eq!(b.status, ReservationStatus::Confirmed);
    assert!(matches!(
        inventory.confirm("no-such-reservation").await,
        Err(CommerceError::NotFound(_))
    ));
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
}

pub async fn receipts_and_adjustments_keep_the_ledger(kind: Kind) {
    let (backend, inventory) = start(kind).await;
    inventory.create_warehouse("w1", "eu").await.unwrap();
    assert!(!inventory.create_warehouse("w1", "eu").await.unwrap());
    assert!(matches!(
        inventory.create_warehouse("w1", "us").await,
        Err(CommerceError::Conflict(_))
    ));
    inventory.receive("PEN", "w1", 10).await.unwrap();
    inventory.receive("PEN", "w1", 5).await.unwrap();
    inventory
        .reserve("a", &[line("PEN", 12)], None)
        .await
        .unwrap();
    inventory
        .adjust("PEN", "w1", -3, "stocktake")
        .await
        .unwrap();
    // A count found right records nothing.
    inventory.adjust("PEN", "w1", 0, "stocktake").await.unwrap();
    // 12 reserved of 12 on hand: no adjustment may go below what is reserved.
    assert!(matches!(
        inventory.adjust("PEN", "w1", -1, "stocktake").await,
        Err(CommerceError::Conflict(_))
    ));
    let level = &inventory.stock("PEN").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (12, 12));
    assert_eq!(
        scalar(&backend, "SELECT COUNT(*) FROM commerce_ledger").await,
        4,
        "two receipts, a reservation, an adjustment"
    );
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
    // A change made behind the ledger's back is found.
    crate::support::sql(
        &backend,
        "UPDATE commerce_stock SET on_hand = on_hand + 1 WHERE sku = 'PEN'",
    )
    .await;
    let verified = inventory.verify().await.unwrap();
    assert_eq!(verified.mismatches.len(), 1, "{verified:?}");
    assert_eq!(verified.mismatches[0].stock.on_hand, 13);
    assert_eq!(verified.mismatches[0].ledger.on_hand, 12);
}

pub async fn bad_input_is_named(kind: Kind) {
    let (_backend, inventory) = start(kind).await;
    inventory.create_warehouse("w1", "eu").await.unwrap();
    let field = |e: CommerceError| match e {
        CommerceError::Invalid { field, .. } => field,
        other => panic!("not a validation error: {other:?}"),
    };
    assert_eq!(
        field(inventory.receive("bad sku", "w1", 1).await.unwrap_err()),
        "sku"
    );
    assert_eq!(
        field(inventory.receive("OK", "w1", 0).await.unwrap_err()),
        "quantity"
    );
    assert_eq!(
        field(
            inventory
                .reserve("h", &[line("A", 1), line("A", 2)], None)
                .await
                .unwrap_err()
        ),
        "lines"
    );
    assert_eq!(
        field(
            inventory
                .reserve("h", &[line("A", -1)], None)
                .await
                .unwrap_err()
        ),
        "lines[0].quantity"
    );
    assert_eq!(
        field(inventory.reserve("h", &[], None).await.unwrap_err()),
        "lines"
    );
    assert_eq!(
        field(
            inventory
                .adjust("OK", "w1", 2_000_000_000, "x")
                .await
                .unwrap_err()
        ),
        "delta"
    );
    assert!(matches!(
        inventory.receive("OK", "nowhere", 1).await,
        Err(CommerceError::NotFound(_))
    ));
    assert!(matches!(
        inventory.adjust("NONE", "w1", 1, "x").await,
        Err(CommerceError::NotFound(_))
    ));
}

/// The stock of `sku` in `warehouse` per bucket: `(bucket, on_hand, reserved)`.
async fn buckets_of(inventory: &Inventory, sku: &str) -> Vec<(i64, i64, i64)> {
    inventory
        .store()
        .all_buckets()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.sku == sku)
        .map(|b| (b.bucket, b.on_hand, b.reserved))
        .collect()
}

pub async fn a_split_sku_keeps_its_counts_and_its_ledger(kind: Kind) {
    let (backend, inventory) = start(kind).await;
    inventory.create_warehouse("w1", "eu").await.unwrap();
    inventory.receive("HOT", "w1", 10).await.unwrap();
    let mut held = Vec::new();
    for n in 0..3 {
        let r = inventory
            .reserve(&format!("early-{n}"), &[line("HOT", 1)], None)
            .await
            .unwrap();
        assert_eq!(r[0].bucket, 0, "one row until it is split");
        held.push(r[0].id.clone());
    }
    // Split into 4: the 7 available are spread, bucket 0 keeps what its reservations hold.
    inventory.set_buckets("HOT", "w1", 4).await.unwrap();
    assert_eq!(
        buckets_of(&inventory, "HOT").await,
        vec![(0, 5, 3), (1, 2, 0), (2, 2, 0), (3, 1, 0)]
    );
    let level = &inventory.stock("HOT").await.unwrap()[0];
    assert_eq!((level.buckets, level.on_hand, level.reserved), (4, 10, 3));
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
    // Every available unit can still be reserved, from whichever bucket holds it.
    let mut late = Vec::new();
    for n in 0..7 {
        let r = inventory
            .reserve(&format!("late-{n}"), &[line("HOT", 1)], None)
            .await
            .unwrap();
        late.push(r[0].clone());
    }
    let used: std::collections::BTreeSet<i64> = late.iter().map(|r| r.bucket).collect();
    assert_eq!(used.len(), 4, "the 7 came from every bucket: {late:?}");
    assert!(matches!(
        inventory.reserve("one-more", &[line("HOT", 1)], None).await,
        Err(CommerceError::OutOfStock { .. })
    ));
    // A release goes back to its own bucket; receipts spread; an adjustment takes from the
    // fullest buckets.
    assert!(
        inventory
            .release(&late[6].id, ReleaseReason::Cancelled)
            .await
            .unwrap()
    );
    inventory.receive("HOT", "w1", 8).await.unwrap();
    inventory
        .adjust("HOT", "w1", -5, "stocktake")
        .await
        .unwrap();
    let level = &inventory.stock("HOT").await.unwrap()[0];
    assert_eq!((level.on_hand, level.reserved), (13, 9));
    assert!(matches!(
        inventory.adjust("HOT", "w1", -5, "stocktake").await,
        Err(CommerceError::Conflict(_))
    ));
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
    // Merged back into one: buckets that still hold reservations stay until those end.
    inventory.set_buckets("HOT", "w1", 1).await.unwrap();
    let rows = buckets_of(&inventory, "HOT").await;
    assert_eq!(rows[0].0, 0);
    assert_eq!(
        rows[0].1 - rows[0].2,
        4,
        "all that is available is in bucket 0"
    );
    assert!(
        rows[1..]
            .iter()
            .all(|(_, on_hand, reserved)| on_hand == reserved)
    );
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
    for r in held.iter().chain(late.iter().take(6).map(|r| &r.id)) {
        inventory.confirm(r).await.unwrap();
    }
    inventory.set_buckets("HOT", "w1", 1).await.unwrap();
    assert_eq!(buckets_of(&inventory, "HOT").await, vec![(0, 4, 0)]);
    assert!(inventory.verify().await.unwrap().mismatches.is_empty());
    // A bucket whose row disagrees with its own reservations is named, even when the sums
    // agree.
    inventory.set_buckets("HOT", "w1", 2).await.unwrap();
    inventory
        .reserve("x", &[line("HOT", 1)], None)
        .await
        .unwrap();
    crate::support::sql(
        &backend,
        "UPDATE commerce_stock SET reserved = 1 - reserved WHERE sku = 'HOT'",
    )
    .await;
    let verified = inventory.verify().await.unwrap();
    assert_eq!(verified.mismatches.len(), 1, "{verified:?}");
    assert_eq!(verified.mismatches[0].buckets, vec![0, 1]);
    // Bad splits are named.
    for bad in [0, 65] {
        assert!(matches!(
            inventory.set_buckets("HOT", "w1", bad).await,
            Err(CommerceError::Invalid { field, .. }) if field == "buckets"
        ));
    }
    assert!(matches!(
        inventory.set_buckets("COLD", "w1", 2).await,
        Err(CommerceError::NotFound(_))
    ));
}
