//! One hot SKU (a flash sale): BUYERS concurrent buyers each reserve one unit of UNITS, on
//! the inventory's conditional reservation and, as the reference in the same run, on a bare
//! conditional `UPDATE` of one row (the least any correct reservation does). Prints the
//! latency percentiles of every attempt (reserved or out of stock) and the wall time.
//!
//! ```sh
//! cargo run --release -p praxis-commerce --example hot_sku -- sqlite:///tmp/hot.db 1000 100 3 1,8
//! cargo run --release -p praxis-commerce --example hot_sku -- postgres://postgres@127.0.0.1:5432/hot 1000 100 3 1,8
//! ```
//!
//! Arguments: database URL (an empty database, or one this example used before), buyers,
//! units, rounds, and the bucket counts to measure the reservation with (comma separated;
//! default 1: the SKU's stock in one row). Each round and bucket count uses a SKU of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use praxis_commerce::domain::model::Line;
use praxis_commerce::{CommerceError, Inventory, InventorySettings};
use praxis_infra::Db;
use praxis_infra::sql::DbOptions;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(what: &str, mut lat: Vec<Duration>, wall: Duration, sold: usize) {
    lat.sort();
    println!(
        "{what:<10} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  wall {:>7.1} ms  sold {sold}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        wall.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("a database URL");
    let buyers: usize = args.get(2).map_or(1000, |a| a.parse().unwrap());
    let units: i64 = args.get(3).map_or(100, |a| a.parse().unwrap());
    let rounds: usize = args.get(4).map_or(3, |a| a.parse().unwrap());
    let bucket_counts: Vec<i64> = args.get(5).map_or(vec![1], |a| {
        a.split(',').map(|b| b.trim().parse().unwrap()).collect()
    });
    let db = Db::connect_with(url, &DbOptions::default()).await.unwrap();
    db.migrate(&praxis_commerce::MIGRATIONS).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS bench_stock (sku TEXT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let inventory = Inventory::new(db.clone(), InventorySettings::default());
    inventory.create_warehouse("hot-w1", "eu").await.unwrap();
    println!("{buyers} buyers, {units} units, one SKU, {url}");
    for round in 0..rounds {
        let sku = format!("HOT-{}", uuid::Uuid::now_v7().simple());
        // The reference: one conditional UPDATE per buyer.
        sqlx::query("INSERT INTO bench_stock (sku, on_hand, reserved) VALUES ($1, $2, 0)")
            .bind(&sku)
            .bind(units)
            .execute(db.pool())
            .await
            .unwrap();
        let start = Instant::now();
        let tasks: Vec<_> = (0..buyers)
            .map(|_| {
                let db = db.clone();
                let sku = sku.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let done = sqlx::query(
                        "UPDATE bench_stock SET reserved = reserved + 1 WHERE sku = $1 AND on_hand - reserved >= 1",
                    )
                    .bind(&sku)
                    .execute(db.pool())
                    .await
                    .unwrap()
                    .rows_affected();
                    (t.elapsed(), done == 1)
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(buyers);
        let mut sold = 0;
        for t in tasks {
            let (d, ok) = t.await.unwrap();
            lat.push(d);
            sold += usize::from(ok);
        }
        report(&format!("r{round} bare"), lat, start.elapsed(), sold);
        // The inventory's reservation (the reservation row and the ledger entry included),
        // with the SKU's stock in one row or split into buckets.
        for &buckets in &bucket_counts {
            reserve_round(
                &inventory,
                &format!("{sku}-b{buckets}"),
                buckets,
                buyers,
                units,
                round,
            )
            .await;
        }
    }
}

/// One round of the inventory's reservation on a SKU split into `buckets`.
async fn reserve_round(
    inventory: &Inventory,
    sku: &str,
    buckets: i64,
    buyers: usize,
    units: i64,
    round: usize,
) {
    inventory.receive(sku, "hot-w1", units).await.unwrap();
    inventory.set_buckets(sku, "hot-w1", buckets).await.unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..buyers)
        .map(|n| {
            let inventory = inventory.clone();
            let line = Line {
                sku: sku.to_owned(),
                quantity: 1,
            };
            tokio::spawn(async move {
                let t = Instant::now();
                let r = inventory.reserve(&format!("b{n}"), &[line], None).await;
                let ok = match r {
                    Ok(_) => true,
                    Err(CommerceError::OutOfStock { .. }) => false,
                    Err(e) => panic!("{e}"),
                };
                (t.elapsed(), ok)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(buyers);
    let mut sold = 0;
    for t in tasks {
        let (d, ok) = t.await.unwrap();
        lat.push(d);
        sold += usize::from(ok);
    }
    report(
        &format!("r{round} reserve, {buckets} bucket(s)"),
        lat,
        start.elapsed(),
        sold,
    );
    assert_eq!(
        sold,
        units.min(buyers as i64) as usize,
        "no oversell, no unsold unit"
    );
}
