//! Online rebalancing: move the keys a new ring gives to other shards while the region keeps
//! serving, verify the copy, switch, clean up; abort or resume at any point before the switch.
//!
//! A move is a row in the control database (`shard_moves`) with a lease, so one process
//! drives it and another takes over when that one dies. Its phases:
//!
//! 1. **copying**: note each source shard's change-log high-water mark, copy every document
//!    of the moving arcs to its new shard in `(position, collection, id)` batches, then tail
//!    the change log from the marks, re-copying what changed, until it is quiet;
//! 2. **fenced**: fence the moving arcs on their sources (a write in flight finishes first,
//!    every later write there is refused and waits), copy the last changes, verify every arc
//!    on both sides document by document, lift the fences the new owners hold over the arcs
//!    they receive, and publish the new ring;
//! 3. **switched**: once every process routes by the new ring (two seconds: the watchers'
//!    one-second bound, doubled), delete the moved documents from their sources; the
//!    sources keep refusing writes there, so a process that still routes by the old ring
//!    retries on the new owner;
//! 4. **done**. Before the switch, [`Rebalancer::abort`] deletes what was copied and lifts
//!    the fences: the data is exactly as before.
//!
//! Every step is safe to run again (copies overwrite with the source's current state), so a
//! process that dies in any phase leaves a move that the next lease holder resumes from its
//! recorded phase.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use praxis_infra::Db;
use praxis_infra::sql::now_ms;
use praxis_kit::ring::{Move, Ring, ShardSpec};
use sqlx::Row;

use crate::docs::{DOC_COLUMNS, Doc, doc_of, read_doc};
use crate::error::ShardError;
use crate::rings::{RingStore, RingWatch};
use crate::shards::ShardSet;

/// How long after the switch the sources keep the moved documents (every process must have
/// seen the new ring: the watchers promise one second).
const CLEANUP_DELAY: Duration = Duration::from_secs(2);

/// Tail rounds before fencing: the copy has caught up when a round finds fewer changes than
/// this, or after [`TAIL_ROUNDS`] rounds.
const QUIET: usize = 16;
const TAIL_ROUNDS: usize = 20;

/// Where a move stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveState {
    /// Copying the moving arcs and tailing their changes.
    Copying,
    /// The arcs are fenced on their sources; verifying and switching.
    Fenced,
    /// The new ring is published; the sources still hold the moved documents.
    Switched,
    /// Finished: the sources no longer hold them.
    Done,
    /// Given up before the switch: the data is as before.
    Aborted,
}

impl MoveState {
    /// Its name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveState::Copying => "copying",
            MoveState::Fenced => "fenced",
            MoveState::Switched => "switched",
            MoveState::Done => "done",
            MoveState::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Option<MoveState> {
        Some(match s {
            "copying" => MoveState::Copying,
            "fenced" => MoveState::Fenced,
            "switched" => MoveState::Switched,
            "done" => MoveState::Done,
            "aborted" => MoveState::Aborted,
            _ => return None,
        })
    }
}

/// A move and its progress.
#[derive(Debug, Clone)]
pub struct MoveStatus {
    /// Its id.
    pub id: String,
    /// The region.
    pub region: String,
    /// The ring version it moves from.
    pub from_version: i64,
    /// The ring it moves to.
    pub target: Ring,
    /// Where it stands.
    pub state: MoveState,
    /// Documents copied so far (tail re-copies included).
    pub copied: i64,
    /// Documents in the moving arcs when it began.
    pub total: i64,
    /// Began (unix ms).
    pub started_at: i64,
    /// Last progress (unix ms).
    pub updated_at: i64,
    /// Why it stopped, when it did.
    pub error: Option<String>,
    /// Live reads repeated on the target ring's shard ([`crate::shadow`]).
    pub shadow_compared: i64,
    /// Of those, answers the target had not caught up with.
    pub shadow_behind: i64,
    /// Of those, answers that differed at the same version (the move will not switch).
    pub shadow_differed: i64,
}

impl MoveStatus {
    /// Documents copied per second so far.
    pub fn rate(&self) -> f64 {
        let secs = (self.updated_at - self.started_at).max(1) as f64 / 1000.0;
        self.copied as f64 / secs
    }

    /// Seconds left at the current rate (`None` before any progress).
    pub fn eta_secs(&self) -> Option<f64> {
        let rate = self.rate();
        (self.copied > 0 && rate > 0.0).then(|| (self.total - self.copied).max(0) as f64 / rate)
    }
}

/// Drives moves. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rebalancer {
    control: Db,
    store: RingStore,
    rings: RingWatch,
    shards: ShardSet,
    owner: String,
    lease: Duration,
    batch: i64,
    /// Most documents copied per second (`None`: no limit).
    rate: Option<u32>,
}

/// An arc as SQL bounds: `start_excl < position <= end_incl` (`-1` includes 0).
fn bounds(m: &Move) -> (i64, i64) {
    let start = if m.from_zero {
        -1
    } else {
        i64::try_from(m.start).unwrap_or(i64::MAX)
    };
    (start, i64::try_from(m.end).unwrap_or(i64::MAX))
}

fn codec(e: impl std::fmt::Display) -> ShardError {
    ShardError::Infra(praxis_infra::InfraError::Codec(e.to_string()))
}

impl Rebalancer {
    /// A rebalancer of the rings in `control` over `shards`, known as `owner` in the moves'
    /// leases (the process's instance id), holding a lease for `lease`, copying `batch`
    /// documents per statement.
    pub fn new(
        control: Db,
        rings: RingWatch,
        shards: ShardSet,
        owner: &str,
        lease: Duration,
        batch: i64,
    ) -> Rebalancer {
        Rebalancer {
            store: RingStore::new(control.clone()),
            control,
            rings,
            shards,
            owner: owner.to_owned(),
            lease,
            batch: batch.max(1),
            rate: None,
        }
    }

    /// The same, copying at most `docs_per_sec` documents per second (0: no limit): a
    /// throttle that keeps a move's load off the shards' live traffic.
    pub fn with_rate(mut self, docs_per_sec: u32) -> Rebalancer {
        self.rate = (docs_per_sec > 0).then_some(docs_per_sec);
        if docs_per_sec > 0 {
            // A batch takes at most half a second, so the lease renews in time.
            self.batch = self.batch.min(i64::from(docs_per_sec / 2).max(1));
        }
        self
    }

    /// What moving `region` from its current ring to `target` would move, without moving
    /// anything: each arc that changes owner with the documents in it now (the dry run).
    pub async fn plan(&self, region: &str, target: &Ring) -> Result<Vec<(Move, i64)>, ShardError> {
        let current = self
            .store
            .current(region)
            .await?
            .ok_or_else(|| ShardError::NoRing(region.to_owned()))?;
        let mut plan = Vec::new();
        for m in current.ring.moves(target) {
            let n = self.count_in(region, &m.from, &m).await?;
            plan.push((m, n));
        }
        Ok(plan)
    }

    /// Begins moving `region` from its current ring to `target` (every target shard
    /// registered). One move per region at a time.
    pub async fn begin(
        &self,
        region: &str,
        target: &Ring,
        note: &str,
    ) -> Result<MoveStatus, ShardError> {
        let current = self
            .store
            .current(region)
            .await?
            .ok_or_else(|| ShardError::NoRing(region.to_owned()))?;
        let moves = current.ring.moves(target);
        if moves.is_empty() {
            return Err(ShardError::NothingToMove(region.to_owned()));
        }
        for shard in target.shards() {
            self.shards.place(region, shard).await?;
        }
        let mut total = 0;
        for m in &moves {
            total += self.count_in(region, &m.from, m).await?;
        }
        let id = format!("mv-{}", uuid::Uuid::now_v7().simple());
        let now = now_ms();
        let target_json = serde_json::to_string(target.spec()).map_err(codec)?;
        let inserted = sqlx::query(
            "INSERT INTO shard_moves (id, region, from_version, target, note, state, marks, copied, \
             total, lease_until, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'copying', '{}', 0, $6, 0, $7, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(region)
        .bind(current.version)
        .bind(&target_json)
        .bind(note)
        .bind(total)
        .bind(now)
        .execute(self.control.pool())
        .await?
        .rows_affected();
        if inserted == 0 {
            let active = self.active(region).await?;
            return Err(ShardError::Busy {
                region: region.to_owned(),
                id: active.map(|m| m.id).unwrap_or_default(),
            });
        }
        metrics::counter!("praxis_shard_moves_total", "event" => "begun").increment(1);
        self.status(&id).await
    }

    /// Move `id`.
    pub async fn status(&self, id: &str) -> Result<MoveStatus, ShardError> {
        let row = sqlx::query(
            "SELECT id, region, from_version, target, state, copied, total, started_at, updated_at, \
             error, shadow_compared, shadow_behind, shadow_differed FROM shard_moves WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.control.pool())
        .await?
        .ok_or_else(|| ShardError::NoMove(id.to_owned()))?;
        let spec: Vec<ShardSpec> =
            serde_json::from_str(&row.try_get::<String, _>("target")?).map_err(codec)?;
        let state: String = row.try_get("state")?;
        Ok(MoveStatus {
            id: row.try_get("id")?,
            region: row.try_get("region")?,
            from_version: row.try_get("from_version")?,
            target: Ring::new(&spec)?,
            state: MoveState::parse(&state).ok_or_else(|| codec(format!("state {state:?}")))?,
            copied: row.try_get("copied")?,
            total: row.try_get("total")?,
            started_at: row.try_get("started_at")?,
            updated_at: row.try_get("updated_at")?,
            error: row.try_get("error")?,
            shadow_compared: row.try_get("shadow_compared")?,
            shadow_behind: row.try_get("shadow_behind")?,
            shadow_differed: row.try_get("shadow_differed")?,
        })
    }

    /// The move of `region` that has not ended, if any.
    pub async fn active(&self, region: &str) -> Result<Option<MoveStatus>, ShardError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM shard_moves WHERE region = $1 AND state NOT IN ('done', 'aborted')",
        )
        .bind(region)
        .fetch_optional(self.control.pool())
        .await?;
        match id {
            Some(id) => Ok(Some(self.status(&id).await?)),
            None => Ok(None),
        }
    }

    /// The moves that have not ended and whose driver's lease lapsed (its process died).
    pub async fn orphans(&self) -> Result<Vec<String>, ShardError> {
        let sql = format!(
            "SELECT id FROM shard_moves WHERE state NOT IN ('done', 'aborted') AND lease_until < {}",
            self.control.backend().now_ms_sql()
        );
        let ids = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.control.pool())
            .await?;
        Ok(ids)
    }

    /// Drives move `id` to its end (done, or aborted if it was), phase by phase.
    pub async fn run(&self, id: &str) -> Result<MoveStatus, ShardError> {
        self.run_until(id, MoveState::Done).await
    }

    /// Drives move `id` until it reaches `stop` (or ends).
    pub async fn run_until(&self, id: &str, stop: MoveState) -> Result<MoveStatus, ShardError> {
        // Each run holds the lease under a name of its own: a second run of the same move in
        // this process (or a stalled one that lost its lease) cannot take it from a live one.
        let me = Rebalancer {
            owner: format!("{}/{}", self.owner, uuid::Uuid::now_v7().simple()),
            ..self.clone()
        };
        let ended = me.drive_until(id, stop).await;
        // A run that stops (at `stop`, at the end, or on an error) lets go of the move at once,
        // so an abort or another process need not wait for the lease to lapse.
        if !matches!(ended, Err(ShardError::Leased(_))) {
            let _ = sqlx::query(
                "UPDATE shard_moves SET lease_until = 0 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(&me.owner)
            .execute(self.control.pool())
            .await;
        }
        ended
    }

    async fn drive_until(&self, id: &str, stop: MoveState) -> Result<MoveStatus, ShardError> {
        loop {
            let status = self.status(id).await?;
            if status.state == stop || matches!(status.state, MoveState::Done | MoveState::Aborted)
            {
                return Ok(status);
            }
            self.take_lease(id).await?;
            let before_switch = matches!(status.state, MoveState::Copying | MoveState::Fenced);
            if before_switch && self.abort_requested(id).await? {
                return self.undo(&status).await;
            }
            let result = match status.state {
                MoveState::Copying => self.copy_phase(&status).await,
                MoveState::Fenced => self.switch_phase(&status).await,
                MoveState::Switched => self.cleanup_phase(&status).await,
                MoveState::Done | MoveState::Aborted => Ok(()),
            };
            if let Err(ShardError::AbortRequested(_)) = result {
                continue;
            }
            if let Err(e) = result {
                self.record_error(id, &e).await;
                return Err(e);
            }
        }
    }

    /// Gives move `id` up before its switch: deletes what it copied and lifts its fences, so
    /// the data is exactly as before. A conflict once it switched. The abort is asked for in
    /// the control database: the process driving the move (this one or another) sees it at
    /// its next batch and undoes the move itself; a move nobody drives is undone here. Waits
    /// up to `wait` for the move to end.
    pub async fn abort(&self, id: &str, wait: Duration) -> Result<MoveStatus, ShardError> {
        let deadline = tokio::time::Instant::now() + wait;
        sqlx::query(
            "UPDATE shard_moves SET abort_requested = 1 WHERE id = $1 \
             AND state IN ('copying', 'fenced')",
        )
        .bind(id)
        .execute(self.control.pool())
        .await?;
        loop {
            let status = self.status(id).await?;
            match status.state {
                MoveState::Aborted => return Ok(status),
                MoveState::Switched | MoveState::Done => {
                    return Err(ShardError::Switched(id.to_owned()));
                }
                MoveState::Copying | MoveState::Fenced => {}
            }
            // Nobody drives it (or its driver died): undo it here.
            if self.try_lease(id).await? {
                return self.undo(&status).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ShardError::Leased(id.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes what move `status` copied and lifts its fences (its lease held).
    async fn undo(&self, status: &MoveStatus) -> Result<MoveStatus, ShardError> {
        let id = &status.id;
        for m in self.arcs(status).await? {
            let target = self.shards.db(&status.region, &m.to).await?;
            delete_arc(&target, &m).await?;
        }
        for shard in self.sources(status).await? {
            let db = self.shards.db(&status.region, &shard).await?;
            set_fences(&db, id, &[]).await?;
        }
        self.set_state(id, MoveState::Aborted).await?;
        metrics::counter!("praxis_shard_moves_total", "event" => "aborted").increment(1);
        self.status(id).await
    }

    /// Whether an abort of `id` was asked for.
    async fn abort_requested(&self, id: &str) -> Result<bool, ShardError> {
        let n: i64 = sqlx::query_scalar("SELECT abort_requested FROM shard_moves WHERE id = $1")
            .bind(id)
            .fetch_one(self.control.pool())
            .await?;
        Ok(n != 0)
    }

    /// Compares every moving arc on its source and its target, document by document; the
    /// arcs that differ (empty: identical).
    pub async fn verify(&self, id: &str) -> Result<Vec<Move>, ShardError> {
        let status = self.status(id).await?;
        let mut differ = Vec::new();
        for m in self.arcs(&status).await? {
            let source = self.shards.db(&status.region, &m.from).await?;
            let target = self.shards.db(&status.region, &m.to).await?;
            if !self.same_arc(&source, &target, &m).await? {
                differ.push(m);
            }
        }
        Ok(differ)
    }

    async fn arcs(&self, status: &MoveStatus) -> Result<Vec<Move>, ShardError> {
        let from = self
            .store
            .version(&status.region, status.from_version)
            .await?
            .ok_or_else(|| ShardError::NoRing(status.region.clone()))?;
        Ok(from.ring.moves(&status.target))
    }

    async fn sources(&self, status: &MoveStatus) -> Result<BTreeSet<String>, ShardError> {
        Ok(self
            .arcs(status)
            .await?
            .into_iter()
            .map(|m| m.from)
            .collect())
    }

    async fn count_in(&self, region: &str, shard: &str, m: &Move) -> Result<i64, ShardError> {
        let db = self.shards.db(region, shard).await?;
        let (start, end) = bounds(m);
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM shard_docs WHERE position > $1 AND position <= $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(db.pool())
        .await?)
    }

    /// Copies every document, tails the changes until they are quiet, then fences.
    async fn copy_phase(&self, status: &MoveStatus) -> Result<(), ShardError> {
        let arcs = self.arcs(status).await?;
        let mut marks = self.marks(&status.id).await?;
        for shard in arcs.iter().map(|m| m.from.clone()).collect::<BTreeSet<_>>() {
            if let std::collections::btree_map::Entry::Vacant(slot) = marks.entry(shard) {
                let db = self.shards.db(&status.region, slot.key()).await?;
                let mark: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM shard_changes",
                )
                .fetch_one(db.pool())
                .await?;
                slot.insert(mark);
            }
        }
        self.save_marks(&status.id, &marks).await?;
        for m in &arcs {
            self.copy_arc(status, m).await?;
        }
        for _ in 0..TAIL_ROUNDS {
            if self.tail(status, &arcs, &mut marks).await? < QUIET {
                break;
            }
        }
        // Fence the arcs on their sources: writes in flight finish first.
        let mut by_source: BTreeMap<String, Vec<Move>> = BTreeMap::new();
        for m in &arcs {
            by_source.entry(m.from.clone()).or_default().push(m.clone());
        }
        for (shard, out) in &by_source {
            let db = self.shards.db(&status.region, shard).await?;
            set_fences(&db, &status.id, out).await?;
        }
        self.set_state(&status.id, MoveState::Fenced).await
    }

    /// Copies the last changes, verifies, lifts the new owners' fences, publishes the ring.
    async fn switch_phase(&self, status: &MoveStatus) -> Result<(), ShardError> {
        let arcs = self.arcs(status).await?;
        let mut marks = self.marks(&status.id).await?;
        // The last changes: the fences stop new ones in the arcs, other arcs keep writing.
        for _ in 0..TAIL_ROUNDS {
            if self.tail(status, &arcs, &mut marks).await? < QUIET {
                break;
            }
        }
        // A change the tail could not see (on PostgreSQL a sequence number is taken before
        // its transaction commits, so a late commit can fall behind the mark) shows up here:
        // such an arc is copied again while it is fenced, then compared again.
        self.renew(&status.id).await?;
        let differ = self.verify(&status.id).await?;
        for m in &differ {
            metrics::counter!("praxis_shard_arcs_recopied_total").increment(1);
            self.recopy_arc(status, m).await?;
        }
        if !differ.is_empty() {
            let still = self.verify(&status.id).await?;
            if !still.is_empty() {
                return Err(ShardError::VerifyFailed {
                    id: status.id.clone(),
                    arcs: still.len(),
                });
            }
        }
        // Live reads repeated on the target must never have found another document at the
        // same version.
        let shadowed = self.status(&status.id).await?;
        if shadowed.shadow_differed > 0 {
            return Err(ShardError::ShadowDiffered {
                id: status.id.clone(),
                reads: shadowed.shadow_differed,
            });
        }
        self.renew(&status.id).await?;
        let mut incoming: BTreeMap<String, Vec<Move>> = BTreeMap::new();
        for m in &arcs {
            incoming.entry(m.to.clone()).or_default().push(m.clone());
        }
        for (shard, arcs_in) in &incoming {
            let db = self.shards.db(&status.region, shard).await?;
            lift_fences(&db, arcs_in).await?;
        }
        let published = self
            .rings
            .publish(
                &status.region,
                status.from_version,
                &status.target,
                &format!("move {}", status.id),
            )
            .await;
        match published {
            Ok(_) => {}
            // Published by an earlier run that died before recording it.
            Err(ShardError::Conflict { current, .. }) if current == status.from_version + 1 => {
                let now = self.store.current(&status.region).await?;
                if now.is_none_or(|r| r.ring != status.target) {
                    return Err(ShardError::Conflict {
                        region: status.region.clone(),
                        expected: status.from_version,
                        current,
                    });
                }
            }
            Err(e) => return Err(e),
        }
        self.set_state(&status.id, MoveState::Switched).await?;
        metrics::counter!("praxis_shard_moves_total", "event" => "switched").increment(1);
        Ok(())
    }

    /// Deletes the moved documents from their sources, once every process routes by the new
    /// ring.
    async fn cleanup_phase(&self, status: &MoveStatus) -> Result<(), ShardError> {
        let since = Duration::from_millis(u64::try_from(now_ms() - status.updated_at).unwrap_or(0));
        if since < CLEANUP_DELAY {
            tokio::time::sleep(CLEANUP_DELAY - since).await;
        }
        for m in self.arcs(status).await? {
            self.renew(&status.id).await?;
            let source = self.shards.db(&status.region, &m.from).await?;
            delete_arc(&source, &m).await?;
        }
        self.set_state(&status.id, MoveState::Done).await?;
        metrics::counter!("praxis_shard_moves_total", "event" => "done").increment(1);
        Ok(())
    }

    /// Empties arc `m` on its target, then copies it again (while it is fenced: exact).
    async fn recopy_arc(&self, status: &MoveStatus, m: &Move) -> Result<(), ShardError> {
        self.renew(&status.id).await?;
        let target = self.shards.db(&status.region, &m.to).await?;
        delete_arc(&target, m).await?;
        self.copy_arc(status, m).await
    }

    /// Copies arc `m` in batches, overwriting the target with the source's current state.
    async fn copy_arc(&self, status: &MoveStatus, m: &Move) -> Result<(), ShardError> {
        let source = self.shards.db(&status.region, &m.from).await?;
        let target = self.shards.db(&status.region, &m.to).await?;
        let mut after = Cursor::start(m);
        let began = tokio::time::Instant::now();
        let mut copied = 0u64;
        loop {
            let docs = arc_page(&source, m, &after, self.batch).await?;
            let Some(last) = docs.last() else {
                return Ok(());
            };
            after = Cursor::after(last);
            write_docs(&target, &docs).await?;
            self.progress(&status.id, docs.len()).await?;
            copied += docs.len() as u64;
            if let Some(rate) = self.rate {
                // Not ahead of `rate`: sleep until the copy is on schedule.
                let due = began + Duration::from_secs_f64(copied as f64 / f64::from(rate));
                tokio::time::sleep_until(due).await;
            }
        }
    }

    /// Re-copies what changed on the sources in the moving arcs since the marks; how many
    /// changes it found.
    async fn tail(
        &self,
        status: &MoveStatus,
        arcs: &[Move],
        marks: &mut BTreeMap<String, i64>,
    ) -> Result<usize, ShardError> {
        let mut found = 0;
        for (shard, mark) in marks.iter_mut() {
            self.renew(&status.id).await?;
            let out: Vec<&Move> = arcs.iter().filter(|m| &m.from == shard).collect();
            let source = self.shards.db(&status.region, shard).await?;
            let rows = sqlx::query(
                "SELECT seq, collection, id, position FROM shard_changes WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
            )
            .bind(*mark)
            .bind(self.batch)
            .fetch_all(source.pool())
            .await?;
            let mut changed: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                *mark = (*mark).max(seq);
                found += 1;
                let position: i64 = row.try_get("position")?;
                let p = u64::try_from(position).unwrap_or(0);
                if let Some(m) = out.iter().find(|m| m.contains(p)) {
                    changed
                        .entry(m.to.clone())
                        .or_default()
                        .insert((row.try_get("collection")?, row.try_get("id")?));
                }
            }
            for (to, keys) in changed {
                let target = self.shards.db(&status.region, &to).await?;
                for (collection, id) in keys {
                    self.sync_one(&source, &target, &collection, &id).await?;
                }
            }
        }
        self.save_marks(&status.id, marks).await?;
        Ok(found)
    }

    /// Makes `target`'s copy of one document what `source` holds now (or deletes it).
    async fn sync_one(
        &self,
        source: &Db,
        target: &Db,
        collection: &str,
        id: &str,
    ) -> Result<(), ShardError> {
        match read_doc(source, collection, id).await? {
            Some(doc) => write_docs(target, &[doc]).await?,
            None => {
                sqlx::query("DELETE FROM shard_docs WHERE collection = $1 AND id = $2")
                    .bind(collection)
                    .bind(id)
                    .execute(target.pool())
                    .await?;
            }
        }
        self.progress_count(1);
        Ok(())
    }

    /// Whether arc `m` holds the same documents on both sides.
    async fn same_arc(&self, source: &Db, target: &Db, m: &Move) -> Result<bool, ShardError> {
        let mut after = Cursor::start(m);
        loop {
            let a = arc_page(source, m, &after, self.batch).await?;
            let b = arc_page(target, m, &after, self.batch).await?;
            let same = a.len() == b.len()
                && a.iter().zip(&b).all(|(x, y)| {
                    (&x.collection, &x.id, x.version, &x.doc)
                        == (&y.collection, &y.id, y.version, &y.doc)
                });
            if !same {
                return Ok(false);
            }
            let Some(last) = a.last() else {
                return Ok(true);
            };
            after = Cursor::after(last);
        }
    }

    async fn take_lease(&self, id: &str) -> Result<(), ShardError> {
        if self.try_lease(id).await? {
            Ok(())
        } else {
            Err(ShardError::Leased(id.to_owned()))
        }
    }

    /// Takes or renews the lease of `id`; whether this process holds it now.
    async fn try_lease(&self, id: &str) -> Result<bool, ShardError> {
        let now = self.control.backend().now_ms_sql();
        let sql = format!(
            "UPDATE shard_moves SET lease_owner = $2, lease_until = {now} + $3 \
             WHERE id = $1 AND (lease_owner = $2 OR lease_until < {now})"
        );
        let taken = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(&self.owner)
            .bind(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
            .execute(self.control.pool())
            .await?
            .rows_affected();
        Ok(taken > 0)
    }

    async fn progress(&self, id: &str, copied: usize) -> Result<(), ShardError> {
        let now = self.control.backend().now_ms_sql();
        let sql = format!(
            "UPDATE shard_moves SET copied = copied + $2, updated_at = $3, lease_until = {now} + $5 \
             WHERE id = $1 AND lease_owner = $4 AND abort_requested = 0"
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(i64::try_from(copied).unwrap_or(i64::MAX))
            .bind(now_ms())
            .bind(&self.owner)
            .bind(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
            .execute(self.control.pool())
            .await?
            .rows_affected();
        self.progress_count(copied);
        if renewed == 0 {
            if self.abort_requested(id).await? {
                return Err(ShardError::AbortRequested(id.to_owned()));
            }
            // Another process took the move over (this one stalled past its lease).
            return Err(ShardError::Leased(id.to_owned()));
        }
        Ok(())
    }

    fn progress_count(&self, n: usize) {
        metrics::counter!("praxis_shard_docs_copied_total").increment(n as u64);
    }

    async fn marks(&self, id: &str) -> Result<BTreeMap<String, i64>, ShardError> {
        let marks: String = sqlx::query_scalar("SELECT marks FROM shard_moves WHERE id = $1")
            .bind(id)
            .fetch_one(self.control.pool())
            .await?;
        serde_json::from_str(&marks).map_err(codec)
    }

    async fn save_marks(&self, id: &str, marks: &BTreeMap<String, i64>) -> Result<(), ShardError> {
        sqlx::query("UPDATE shard_moves SET marks = $2 WHERE id = $1")
            .bind(id)
            .bind(serde_json::to_string(marks).map_err(codec)?)
            .execute(self.control.pool())
            .await?;
        Ok(())
    }

    /// Records the move's next phase, only while this run holds its lease.
    async fn set_state(&self, id: &str, state: MoveState) -> Result<(), ShardError> {
        // Past the switch an abort can no longer be honoured: its request is dropped.
        let sql = if matches!(state, MoveState::Switched | MoveState::Done) {
            "UPDATE shard_moves SET state = $2, updated_at = $3, error = NULL, abort_requested = 0 \
             WHERE id = $1 AND lease_owner = $4"
        } else {
            "UPDATE shard_moves SET state = $2, updated_at = $3, error = NULL \
             WHERE id = $1 AND lease_owner = $4"
        };
        let set = sqlx::query(sql)
            .bind(id)
            .bind(state.as_str())
            .bind(now_ms())
            .bind(&self.owner)
            .execute(self.control.pool())
            .await?
            .rows_affected();
        if set == 0 {
            return Err(ShardError::Leased(id.to_owned()));
        }
        Ok(())
    }

    /// Renews this run's lease before a step that writes: fails if another run took the move
    /// (this one stalled past its lease) or an abort was asked for.
    async fn renew(&self, id: &str) -> Result<(), ShardError> {
        let now = self.control.backend().now_ms_sql();
        let sql = format!(
            "UPDATE shard_moves SET lease_until = {now} + $3 \
             WHERE id = $1 AND lease_owner = $2 AND abort_requested = 0"
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(&self.owner)
            .bind(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
            .execute(self.control.pool())
            .await?
            .rows_affected();
        if renewed == 0 {
            if self.abort_requested(id).await? {
                return Err(ShardError::AbortRequested(id.to_owned()));
            }
            return Err(ShardError::Leased(id.to_owned()));
        }
        Ok(())
    }

    async fn record_error(&self, id: &str, e: &ShardError) {
        let _ = sqlx::query("UPDATE shard_moves SET error = $2 WHERE id = $1")
            .bind(id)
            .bind(e.to_string())
            .execute(self.control.pool())
            .await;
    }
}

/// Where a walk through an arc stands: after this `(position, collection, id)`.
struct Cursor(i64, String, String);

impl Cursor {
    /// Before the first document of arc `m`.
    fn start(m: &Move) -> Cursor {
        Cursor(bounds(m).0, String::new(), String::new())
    }

    /// After `doc`.
    fn after(doc: &Doc) -> Cursor {
        Cursor(doc.position, doc.collection.clone(), doc.id.clone())
    }
}

/// The next `limit` documents of arc `m` on `db` after `after`, in `(position, collection,
/// id)` order.
async fn arc_page(db: &Db, m: &Move, after: &Cursor, limit: i64) -> Result<Vec<Doc>, ShardError> {
    let (start, end) = bounds(m);
    let sql = format!(
        "SELECT {DOC_COLUMNS} FROM shard_docs WHERE position > $1 AND position <= $2 \
         AND (position, collection, id) > ($3, $4, $5) ORDER BY position, collection, id LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(start)
        .bind(end)
        .bind(after.0)
        .bind(&after.1)
        .bind(&after.2)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(doc_of).collect()
}

/// Deletes every document of arc `m` on `db`.
async fn delete_arc(db: &Db, m: &Move) -> Result<(), ShardError> {
    let (start, end) = bounds(m);
    sqlx::query("DELETE FROM shard_docs WHERE position > $1 AND position <= $2")
        .bind(start)
        .bind(end)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Writes `docs` to `db` as they are (the source's current state wins).
async fn write_docs(db: &Db, docs: &[Doc]) -> Result<(), ShardError> {
    let mut tx = db.begin_write().await?;
    for d in docs {
        sqlx::query(
            "INSERT INTO shard_docs (collection, id, position, doc, version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (collection, id) DO UPDATE \
             SET position = $3, doc = $4, version = $5, updated_at = $6",
        )
        .bind(&d.collection)
        .bind(&d.id)
        .bind(d.position)
        .bind(&d.doc)
        .bind(d.version)
        .bind(d.updated_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Replaces move `id`'s fences on `db` with `arcs`, in one transaction that bumps the fence
/// generation: on PostgreSQL it waits for the writes holding it, and every later write sees
/// the new fences.
async fn set_fences(db: &Db, id: &str, arcs: &[Move]) -> Result<(), ShardError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE shard_fence_gen SET gen = gen + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM shard_fences WHERE move_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for m in arcs {
        let (start, end) = bounds(m);
        sqlx::query("INSERT INTO shard_fences (move_id, start_excl, end_incl) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(start)
            .bind(end)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the parts of `db`'s fences that `arcs` (arriving at this shard) cover: a shard that
/// gave an arc away in an earlier move accepts writes there again once it owns it.
async fn lift_fences(db: &Db, arcs: &[Move]) -> Result<(), ShardError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE shard_fence_gen SET gen = gen + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query("SELECT move_id, start_excl, end_incl FROM shard_fences")
        .fetch_all(&mut *tx)
        .await?;
    let cuts: Vec<(i64, i64)> = arcs.iter().map(bounds).collect();
    sqlx::query("DELETE FROM shard_fences")
        .execute(&mut *tx)
        .await?;
    for row in &rows {
        let move_id: String = row.try_get("move_id")?;
        let fence = (row.try_get("start_excl")?, row.try_get("end_incl")?);
        for (start, end) in subtract(fence, &cuts) {
            sqlx::query(
                "INSERT INTO shard_fences (move_id, start_excl, end_incl) VALUES ($1, $2, $3)",
            )
            .bind(&move_id)
            .bind(start)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The parts of arc `(start, end]` outside every arc of `cuts`.
fn subtract(arc: (i64, i64), cuts: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut parts = vec![arc];
    for &(cs, ce) in cuts {
        parts = parts
            .into_iter()
            .flat_map(|(s, e)| {
                let mut keep = Vec::new();
                if ce <= s || cs >= e {
                    keep.push((s, e));
                } else {
                    if cs > s {
                        keep.push((s, cs));
                    }
                    if ce < e {
                        keep.push((ce, e));
                    }
                }
                keep
            })
            .collect();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::subtract;

    #[test]
    fn subtracting_arcs_keeps_what_is_outside_them() {
        assert_eq!(subtract((0, 10), &[]), vec![(0, 10)]);
        assert_eq!(subtract((0, 10), &[(0, 10)]), vec![]);
        assert_eq!(subtract((0, 10), &[(2, 5)]), vec![(0, 2), (5, 10)]);
        assert_eq!(subtract((0, 10), &[(-1, 3), (8, 20)]), vec![(3, 8)]);
        assert_eq!(subtract((0, 10), &[(10, 20), (-5, 0)]), vec![(0, 10)]);
    }
}
