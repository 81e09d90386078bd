//! The admin report that must ask every shard: orders per status and their totals, per
//! shard. It asks a bounded number of shards at once, gives each a timeout, and says which
//! shards did not answer instead of failing the whole report.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use praxis_infra::Backend;
use praxis_shard::{RingWatch, ShardSet};
use sqlx::Row;

use crate::domain::ORDERS;
use crate::error::OrdersError;

/// One shard's part of the report.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardCounts {
    /// The region.
    pub region: String,
    /// The shard.
    pub shard: String,
    /// Orders per status.
    pub by_status: BTreeMap<String, i64>,
    /// Sum of the orders' totals per currency (minor units).
    pub totals: BTreeMap<String, i64>,
}

/// A shard that did not answer in time, or failed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UnansweredShard {
    /// The region.
    pub region: String,
    /// The shard.
    pub shard: String,
    /// Why.
    pub error: String,
}

/// The report over every shard.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OrdersReport {
    /// The shards that answered.
    pub shards: Vec<ShardCounts>,
    /// The shards that did not.
    pub unanswered: Vec<UnansweredShard>,
    /// Whether every shard answered (the sums are only whole then).
    pub complete: bool,
    /// Orders per status over the shards that answered.
    pub by_status: BTreeMap<String, i64>,
}

/// The counts of one shard, per status and currency.
fn counts_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT json_extract(doc, '$.status') AS status, \
             json_extract(doc, '$.currency') AS currency, \
             CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(SUM(json_extract(doc, '$.total_cents')) AS BIGINT) AS total \
             FROM shard_docs WHERE collection = $1 GROUP BY 1, 2"
        }
        Backend::Postgres => {
            "SELECT (doc::json)->>'status' AS status, (doc::json)->>'currency' AS currency, \
             CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(SUM(((doc::json)->>'total_cents')::BIGINT) AS BIGINT) AS total \
             FROM shard_docs WHERE collection = $1 GROUP BY 1, 2"
        }
    }
}

/// Asks every shard of `regions`, `concurrency` at a time, each within `timeout`.
pub async fn scatter(
    rings: &RingWatch,
    shards: &ShardSet,
    regions: &[String],
    concurrency: usize,
    timeout: Duration,
) -> Result<OrdersReport, OrdersError> {
    let mut targets = Vec::new();
    for region in regions {
        if let Some(ring) = rings.current(region) {
            for shard in ring.ring.shards() {
                targets.push((region.clone(), shard.to_owned()));
            }
        }
    }
    let answers: Vec<_> = futures::stream::iter(targets)
        .map(|(region, shard)| async move {
            let asked = tokio::time::timeout(timeout, counts_of(shards, &region, &shard)).await;
            let result = match asked {
                Ok(Ok(counts)) => Ok(counts),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            };
            (region, shard, result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut report = OrdersReport {
        shards: Vec::new(),
        unanswered: Vec::new(),
        complete: true,
        by_status: BTreeMap::new(),
    };
    for (region, shard, result) in answers {
        match result {
            Ok(counts) => {
                for (status, n) in &counts.by_status {
                    *report.by_status.entry(status.clone()).or_default() += n;
                }
                report.shards.push(counts);
            }
            Err(error) => {
                metrics::counter!("praxis_orders_report_unanswered_total").increment(1);
                report.complete = false;
                report.unanswered.push(UnansweredShard {
                    region,
                    shard,
                    error,
                });
            }
        }
    }
    report
        .shards
        .sort_by(|a, b| (&a.region, &a.shard).cmp(&(&b.region, &b.shard)));
    report
        .unanswered
        .sort_by(|a, b| (&a.region, &a.shard).cmp(&(&b.region, &b.shard)));
    Ok(report)
}

async fn counts_of(
    shards: &ShardSet,
    region: &str,
    shard: &str,
) -> Result<ShardCounts, OrdersError> {
    let db = shards.db(region, shard).await?;
    let rows = sqlx::query(counts_sql(db.backend()))
        .bind(ORDERS)
        .fetch_all(db.pool())
        .await?;
    let mut counts = ShardCounts {
        region: region.to_owned(),
        shard: shard.to_owned(),
        by_status: BTreeMap::new(),
        totals: BTreeMap::new(),
    };
    for row in rows {
        let status: String = row.try_get("status")?;
        let currency: String = row.try_get("currency")?;
        let n: i64 = row.try_get("n")?;
        let total: i64 = row.try_get("total")?;
        *counts.by_status.entry(status).or_default() += n;
        *counts.totals.entry(currency).or_default() += total;
    }
    Ok(counts)
}
