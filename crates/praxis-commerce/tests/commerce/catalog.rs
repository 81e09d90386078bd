//! The catalog and carts: a price change reaches every process within a second through the
//! versioned caches; a cart reads its writes from any process; a cart checks out at the
//! database's prices.

use std::sync::Arc;
use std::time::Duration;

use praxis_commerce::domain::order::Step;
use praxis_commerce::providers::Scripted;
use praxis_commerce::{
    Catalog, CatalogSettings, Checkout, CommerceError, ReserveMode, SagaSettings,
};
use praxis_testkit::{Kind, TestBackend};

use crate::support::inventory_on;

async fn catalog_on(backend: &TestBackend) -> Catalog {
    // The inventory's harness applies the migrations.
    inventory_on(backend, ReserveMode::Conditional).await;
    let catalog = Catalog::new(
        backend.platform.db.clone(),
        &backend.platform.caches,
        CatalogSettings::default(),
    );
    // What the system starts in every process: the poll of the changed products.
    backend.platform.tasks.spawn(
        catalog
            .clone()
            .run_revalidation(backend.platform.shutdown.clone()),
    );
    catalog
}

fn price_of(
    p: &praxis_commerce::domain::catalog::Product,
    sku: &str,
    currency: &str,
) -> Option<i64> {
    p.variants
        .iter()
        .find(|v| v.sku == sku)
        .and_then(|v| v.prices.get(currency).copied())
}

pub async fn a_price_change_is_seen_by_every_process_within_a_second(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let writer = catalog_on(&a).await;
    let reader = catalog_on(&b).await;
    let p = writer
        .create_product("Trail shoe", "Light, grippy.")
        .await
        .unwrap();
    writer
        .add_variant(&p.id, "TRAIL-42", "size 42")
        .await
        .unwrap();
    writer.set_price("TRAIL-42", "EUR", 12_000).await.unwrap();
    // Both processes read (and cache) it.
    for c in [&writer, &reader] {
        let got = c.product(&p.id).await.unwrap();
        assert_eq!(price_of(&got, "TRAIL-42", "EUR"), Some(12_000));
    }
    let changed = writer.set_price("TRAIL-42", "EUR", 9_900).await.unwrap();
    assert_eq!(changed.version, 4, "created, a variant, two prices");
    assert_eq!(
        price_of(&writer.product(&p.id).await.unwrap(), "TRAIL-42", "EUR"),
        Some(9_900),
        "the writing process reads its write"
    );
    let seen = praxis_testkit::eventually::eventually(
        Duration::from_secs(1),
        "the other process sees the new price",
        || async {
            let got = reader.product(&p.id).await.unwrap();
            (price_of(&got, "TRAIL-42", "EUR") == Some(9_900)).then_some(got)
        },
    )
    .await;
    assert_eq!(seen.version, 4);
    let listed = reader.products(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(matches!(
        reader.product("no-such-product").await,
        Err(CommerceError::NotFound(_))
    ));
}

pub async fn a_cart_reads_its_writes_in_every_process(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let here = catalog_on(&a).await;
    let there = catalog_on(&b).await;
    let p = here.create_product("Mug", "").await.unwrap();
    here.add_variant(&p.id, "MUG-W", "white").await.unwrap();
    here.set_price("MUG-W", "EUR", 800).await.unwrap();
    here.add_to_cart("ann", "MUG-W", 2, "EUR").await.unwrap();
    let cart = there.cart("ann", "EUR").await.unwrap();
    assert_eq!((cart[0].quantity, cart[0].unit_cents), (2, Some(800)));
    there.add_to_cart("ann", "MUG-W", 1, "EUR").await.unwrap();
    assert_eq!(here.cart("ann", "EUR").await.unwrap()[0].quantity, 3);
    // Priced in a currency it has no price in: listed without a price.
    assert_eq!(here.cart("ann", "USD").await.unwrap()[0].unit_cents, None);
    there.set_in_cart("ann", "MUG-W", 0, "EUR").await.unwrap();
    assert!(here.cart("ann", "EUR").await.unwrap().is_empty());
    assert!(here.cart("bob", "EUR").await.unwrap().is_empty());
}

pub async fn a_cart_checks_out_at_the_database_prices(kind: Kind) {
    let backend = kind.start().await;
    let catalog = catalog_on(&backend).await;
    let inventory = inventory_on(&backend, ReserveMode::Conditional).await;
    let checkout = Checkout::new(
        backend.platform.db.clone(),
        backend.platform.bus.clone(),
        inventory.clone(),
        Arc::new(Scripted::new("pay")),
        Arc::new(Scripted::new("ship")),
        SagaSettings::default(),
    );
    inventory.create_warehouse("w1", "eu").await.unwrap();
    let p = catalog.create_product("Sock", "").await.unwrap();
    for (sku, cents) in [("SOCK-B", 500), ("SOCK-R", 700)] {
        catalog.add_variant(&p.id, sku, sku).await.unwrap();
        catalog.set_price(sku, "EUR", cents).await.unwrap();
        inventory.receive(sku, "w1", 10).await.unwrap();
    }
    assert!(matches!(
        catalog.order_from_cart("ann", "EUR", None, None).await,
        Err(CommerceError::Conflict(_))
    ));
    catalog
        .add_to_cart("ann", "SOCK-B", 2, "EUR")
        .await
        .unwrap();
    catalog
        .add_to_cart("ann", "SOCK-R", 1, "EUR")
        .await
        .unwrap();
    assert!(matches!(
        catalog.order_from_cart("ann", "USD", None, None).await,
        Err(CommerceError::Conflict(_))
    ));
    let new = catalog
        .order_from_cart("ann", "EUR", Some("eu"), Some("cart-1"))
        .await
        .unwrap();
    let o = checkout.place(new).await.unwrap();
    assert_eq!(o.step, Step::Confirmed, "{o:?}");
    assert_eq!(o.total_cents, 2 * 500 + 700);
    catalog.clear_cart("ann").await.unwrap();
    assert!(catalog.cart("ann", "EUR").await.unwrap().is_empty());
    assert_eq!(inventory.stock("SOCK-B").await.unwrap()[0].on_hand, 8);
}

pub async fn bad_catalog_input_is_named(kind: Kind) {
    let backend = kind.start().await;
    let catalog = catalog_on(&backend).await;
    let field = |e: CommerceError| match e {
        CommerceError::Invalid { field, .. } => field,
        other => panic!("not a validation error: {other:?}"),
    };
    assert_eq!(
        field(catalog.create_product("", "").await.unwrap_err()),
        "name"
    );
    assert_eq!(
        field(
            catalog
                .create_product("x", &"d".repeat(10_001))
                .await
                .unwrap_err()
        ),
        "description"
    );
    let p = catalog.create_product("Cap", "").await.unwrap();
    assert_eq!(
        field(
            catalog
                .add_variant(&p.id, "bad sku", "x")
                .await
                .unwrap_err()
        ),
        "sku"
    );
    catalog
        .add_variant(&p.id, "CAP-1", "one size")
        .await
        .unwrap();
    assert!(matches!(
        catalog.add_variant(&p.id, "CAP-1", "again").await,
        Err(CommerceError::Conflict(_))
    ));
    assert!(matches!(
        catalog.add_variant("no-such-product", "CAP-2", "x").await,
        Err(CommerceError::NotFound(_))
    ));
    assert_eq!(
        field(catalog.set_price("CAP-1", "eur", 100).await.unwrap_err()),
        "currency"
    );
    assert_eq!(
        field(catalog.set_price("CAP-1", "EUR", -1).await.unwrap_err()),
        "amount_cents"
    );
    assert!(matches!(
        catalog.set_price("NONE", "EUR", 100).await,
        Err(CommerceError::NotFound(_))
    ));
    assert!(matches!(
        catalog.add_to_cart("ann", "NONE", 1, "EUR").await,
        Err(CommerceError::NotFound(_))
    ));
    assert_eq!(
        field(
            catalog
                .add_to_cart("ann", "CAP-1", 0, "EUR")
                .await
                .unwrap_err()
        ),
        "quantity"
    );
}
