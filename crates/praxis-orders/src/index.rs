//! The per-user index, kept from the shards' change logs: for each shard, one process at a
//! time (a lease in the platform's database) tails the shard's log and writes the entry of
//! every order that changed, from the order as it is now. The writers index at once too
//! (read-your-writes); the tail is what makes the index right whatever happens to a writer
//! between its two writes. Entries carry the order's version, so nothing older replaces them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use praxis_infra::Db;
use praxis_shard::{RingWatch, ShardSet};
use tokio_util::sync::CancellationToken;

use crate::domain::ORDERS;
use crate::error::OrdersError;
use crate::store::OrderStore;

/// Changes read per round.
const BATCH: i64 = 500;
/// How often a tail looks for changes when nothing wakes it.
const POLL: Duration = Duration::from_millis(250);

/// The index tails of one process.
#[derive(Debug, Clone)]
pub struct IndexTail {
    store: OrderStore,
    rings: RingWatch,
    shards: ShardSet,
    control: Db,
    owner: String,
    lease: Duration,
    /// The tails this process holds: where each is, and until when its lease runs without
    /// renewing it.
    held: Arc<Mutex<HashMap<ShardKey, (i64, Instant)>>>,
}

/// A shard: its region and its name.
type ShardKey = (String, String);

impl IndexTail {
    /// The tails of `store`'s shards, leased as `owner` for `lease`.
    pub fn new(
        store: OrderStore,
        rings: RingWatch,
        shards: ShardSet,
        control: Db,
        owner: &str,
        lease: Duration,
    ) -> Self {
        IndexTail {
            store,
            rings,
            shards,
            control,
            owner: owner.to_owned(),
            lease,
            held: Arc::default(),
        }
    }

    /// Tails every shard this process can lease until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let written = self.store.written();
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "order index tail failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = written.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass over every shard of every region; how many changes it indexed.
    pub async fn round(&self) -> Result<usize, OrdersError> {
        let mut indexed = 0;
        for region in self.store.regions() {
            if self.rings.current(region).is_none() {
                continue;
            }
            for shard in self.tailed(region).await? {
                let Some(seq) = self.lease(region, &shard).await? else {
                    continue;
                };
                indexed += self.tail(region, &shard, seq).await?;
            }
        }
        Ok(indexed)
    }

    /// The shards of `region` to tail: those this process opened (it may have written them)
    /// and those any process tails already. A shard no process ever opened holds nothing, and
    /// stays closed (on PostgreSQL its database is not even created).
    async fn tailed(&self, region: &str) -> Result<Vec<String>, OrdersError> {
        let mut shards: Vec<String> =
            sqlx::query_scalar("SELECT shard FROM orders_tails WHERE region = $1")
                .bind(region)
                .fetch_all(self.control.pool())
                .await?;
        for shard in self.shards.opened(region) {
            if !shards.contains(&shard) {
                shards.push(shard);
            }
        }
        Ok(shards)
    }

    /// Indexes the changes of `shard` after `seq`; how many.
    async fn tail(&self, region: &str, shard: &str, mut seq: i64) -> Result<usize, OrdersError> {
        let mut indexed = 0;
        loop {
            let changes = self
                .store
                .docs()
                .changes_on(region, shard, seq, BATCH)
                .await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                return Ok(indexed);
            };
            for change in changes.iter().filter(|c| c.collection == ORDERS) {
                // The order as it is now (wherever the ring puts it): a change is only a
                // hint of which order to look at.
                if let Some((order, version)) = self.store.get(&change.id).await? {
                    self.store.index(&order, version).await?;
                    indexed += 1;
                }
            }
            seq = last;
            self.save(region, shard, seq).await?;
            metrics::counter!("praxis_orders_index_changes_total").increment(changes.len() as u64);
            if changes.len() < BATCH as usize {
                return Ok(indexed);
            }
        }
    }

    /// Takes or renews this process's lease of `shard`'s tail; where the tail is, or `None`
    /// when another process holds it.
    async fn lease(&self, region: &str, shard: &str) -> Result<Option<i64>, OrdersError> {
        let key = (region.to_owned(), shard.to_owned());
        if let Some(&(seq, until)) = self.held.lock().get(&key)
            && Instant::now() + self.lease / 2 < until
        {
            return Ok(Some(seq));
        }
        let asked = Instant::now();
        sqlx::query(
            "INSERT INTO orders_tails (region, shard, seq, holder, lease_until) \
             VALUES ($1, $2, 0, '', 0) ON CONFLICT (region, shard) DO NOTHING",
        )
        .bind(region)
        .bind(shard)
        .execute(self.control.pool())
        .await?;
        let now = self.control.backend().now_ms_sql();
        let sql = format!(
            "UPDATE orders_tails SET holder = $3, lease_until = {now} + $4 \
             WHERE region = $1 AND shard = $2 AND (holder = $3 OR lease_until < {now}) \
             RETURNING seq"
        );
        let seq: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(region)
            .bind(shard)
            .bind(&self.owner)
            .bind(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
            .fetch_optional(self.control.pool())
            .await?;
        let mut held = self.held.lock();
        match seq {
            Some(seq) => {
                held.insert(key, (seq, asked + self.lease));
            }
            None => {
                held.remove(&key);
            }
        }
        Ok(seq)
    }

    async fn save(&self, region: &str, shard: &str, seq: i64) -> Result<(), OrdersError> {
        sqlx::query(
            "UPDATE orders_tails SET seq = $3 WHERE region = $1 AND shard = $2 AND holder = $4",
        )
        .bind(region)
        .bind(shard)
        .bind(seq)
        .bind(&self.owner)
        .execute(self.control.pool())
        .await?;
        if let Some(held) = self
            .held
            .lock()
            .get_mut(&(region.to_owned(), shard.to_owned()))
        {
            held.0 = seq;
        }
        Ok(())
    }
}
