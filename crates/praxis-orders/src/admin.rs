//! The operator's side of the shards: each region's ring created at first start, the status
//! of every region (shards, their shares and documents, the move in progress), a dry run or
//! the start of a move (adding a shard, or any new ring), abort, placement checks, and the
//! resumption of moves whose process died.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use praxis_kit::ring::{Ring, ShardSpec};
use praxis_shard::{Docs, MoveStatus, Rebalancer, RingWatch, ShardError, ShardSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::ORDERS;
use crate::error::OrdersError;
use crate::settings::valid_name;

/// How often a process looks for moves whose driver died.
const ORPHAN_POLL: Duration = Duration::from_secs(1);

/// A region as the operator sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RegionStatus {
    /// The region.
    pub region: String,
    /// Its ring's version.
    pub version: i64,
    /// Its shards.
    pub shards: Vec<ShardStatus>,
    /// The move in progress, if any.
    #[serde(rename = "move")]
    pub moving: Option<MoveView>,
    /// What the size trigger would do (in `dry_run`), if a shard is over its size.
    pub suggested: Option<MovePlan>,
}

/// A shard as the operator sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardStatus {
    /// Its name.
    pub name: String,
    /// Its virtual nodes.
    pub vnodes: u32,
    /// Its share of the ring's positions (0 to 1).
    pub share: f64,
    /// Orders stored on it now.
    pub orders: i64,
}

/// A move: where it is, its progress, rate and ETA.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MoveView {
    /// Its id.
    pub id: String,
    /// The region.
    pub region: String,
    /// The ring version it moves from.
    pub from_version: i64,
    /// The ring it moves to.
    pub target: Vec<ShardView>,
    /// `copying`, `fenced`, `switched`, `done` or `aborted`.
    pub state: String,
    /// Documents copied so far (a resumed copy counts again what it copies again).
    pub copied: i64,
    /// Documents in the moving arcs when it began.
    pub total: i64,
    /// Documents copied per second so far.
    pub rate: f64,
    /// Seconds left at that rate (while copying).
    pub eta_secs: Option<f64>,
    /// The last error of its driver, if any.
    pub error: Option<String>,
    /// Shadow reads: live reads repeated on the target, and how their answers compared.
    pub shadow: ShadowView,
}

/// The shadow reads of a move.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShadowView {
    /// Reads repeated on the target ring's shard.
    pub compared: i64,
    /// Answers the target had not caught up with (expected while copying).
    pub behind: i64,
    /// Answers that differed at the same version (the move does not switch).
    pub differed: i64,
}

/// One shard of a ring.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ShardView {
    /// Its name.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,15}$")]
    pub name: String,
    /// Its virtual nodes (1 to 4096).
    #[schema(minimum = 1, maximum = 4096)]
    pub vnodes: u32,
}

impl From<&MoveStatus> for MoveView {
    fn from(m: &MoveStatus) -> Self {
        MoveView {
            id: m.id.clone(),
            region: m.region.clone(),
            from_version: m.from_version,
            target: views(m.target.spec()),
            state: m.state.as_str().to_owned(),
            copied: m.copied,
            total: m.total,
            rate: m.rate(),
            eta_secs: m.eta_secs(),
            error: m.error.clone(),
            shadow: ShadowView {
                compared: m.shadow_compared,
                behind: m.shadow_behind,
                differed: m.shadow_differed,
            },
        }
    }
}

fn views(spec: &[ShardSpec]) -> Vec<ShardView> {
    spec.iter()
        .map(|s| ShardView {
            name: s.name.clone(),
            vnodes: s.vnodes,
        })
        .collect()
}

/// What a move would do (a dry run).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MovePlan {
    /// The region.
    pub region: String,
    /// The ring version it would move from.
    pub from_version: i64,
    /// The ring it would move to.
    pub target: Vec<ShardView>,
    /// The share of the ring's positions that would change owner (0 to 1).
    pub moving_share: f64,
    /// Documents in the moving arcs now.
    pub documents: i64,
    /// Documents each source would give to each target.
    pub flows: Vec<MoveFlow>,
}

/// Documents going from one shard to another in a plan.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MoveFlow {
    /// The shard giving them.
    pub from: String,
    /// The shard receiving them.
    pub to: String,
    /// How many.
    pub documents: i64,
}

/// Every document of a region checked against the ring.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlacementCheck {
    /// The region.
    pub region: String,
    /// The ring version checked against.
    pub version: i64,
    /// Per shard: documents, and those the ring places elsewhere.
    pub shards: Vec<ShardPlacement>,
    /// Whether every document is where the ring says (always false while a move runs:
    /// copies wait on their new shard for the switch).
    pub ok: bool,
}

/// One shard's placement check.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ShardPlacement {
    /// The shard.
    pub shard: String,
    /// Documents on it (orders and index entries).
    pub documents: i64,
    /// Documents on it that the ring places on another shard.
    pub misplaced: i64,
}

/// A change of a region's ring.
#[derive(Debug, Clone)]
pub enum RingChange {
    /// Add a shard with this many vnodes (registered where the placement puts it).
    Add {
        /// Its name.
        shard: String,
        /// Its virtual nodes.
        vnodes: u32,
    },
    /// Move to exactly this ring (every shard in it registered).
    Target(Vec<ShardSpec>),
}

/// The operator's side of the shards. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShardAdmin {
    rings: RingWatch,
    shards: ShardSet,
    docs: Docs,
    rebalancer: Rebalancer,
    tasks: TaskTracker,
    vnodes: u32,
    suggested: Arc<Mutex<BTreeMap<String, MovePlan>>>,
    driving: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// When the size trigger acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerMode {
    /// Say what it would move (in the status, the log and a counter), move nothing.
    DryRun,
    /// Begin the move.
    On,
}

impl ShardAdmin {
    /// The admin of `rings` over `shards` (whose documents `docs` reads), driving moves with
    /// `rebalancer` in `tasks`, giving a shard added without a count `vnodes`.
    pub fn new(
        rings: RingWatch,
        shards: ShardSet,
        docs: Docs,
        rebalancer: Rebalancer,
        tasks: TaskTracker,
        vnodes: u32,
    ) -> Self {
        ShardAdmin {
            rings,
            shards,
            docs,
            rebalancer,
            tasks,
            vnodes,
            suggested: Arc::default(),
            driving: Arc::default(),
        }
    }

    /// The vnodes of a shard added without a count.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Gives every region without a ring `count` shards (`s1`, `s2`, ...) of the configured
    /// vnodes each (their databases are opened, and created if the placement does, on first
    /// use).
    /// Two processes starting at once make one ring: the loser reads the winner's.
    pub async fn ensure_regions(&self, regions: &[String], count: u32) -> Result<(), OrdersError> {
        let vnodes = self.vnodes;
        for region in regions {
            if self.rings.current(region).is_some() {
                continue;
            }
            let spec: Vec<ShardSpec> = (1..=count)
                .map(|i| ShardSpec {
                    name: format!("s{i}"),
                    vnodes,
                })
                .collect();
            for s in &spec {
                self.shards.register(region, &s.name, None).await?;
            }
            let ring = Ring::new(&spec).map_err(ShardError::from)?;
            match self.rings.publish(region, 0, &ring, "first ring").await {
                Ok(_) | Err(ShardError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.rings.refresh().await?;
        Ok(())
    }

    /// Every region's status.
    pub async fn status(&self) -> Result<Vec<RegionStatus>, OrdersError> {
        let mut out = Vec::new();
        for ring in self.rings.all() {
            let shares = ring.ring.shares();
            let mut shards = Vec::new();
            for spec in ring.ring.spec() {
                let orders = self
                    .docs
                    .count_on(&ring.region, &spec.name, ORDERS)
                    .await
                    .unwrap_or(-1);
                shards.push(ShardStatus {
                    name: spec.name.clone(),
                    vnodes: spec.vnodes,
                    share: shares.get(spec.name.as_str()).copied().unwrap_or(0.0),
                    orders,
                });
            }
            let moving = self.rebalancer.active(&ring.region).await?;
            out.push(RegionStatus {
                region: ring.region.clone(),
                version: ring.version,
                shards,
                moving: moving.as_ref().map(MoveView::from),
                suggested: self.suggested.lock().get(&ring.region).cloned(),
            });
        }
        out.sort_by(|a, b| a.region.cmp(&b.region));
        Ok(out)
    }

    /// The ring `change` makes of `region`'s current ring.
    fn target(&self, region: &str, change: &RingChange) -> Result<(i64, Ring), OrdersError> {
        let current = self
            .rings
            .current(region)
            .ok_or_else(|| OrdersError::NotFound(format!("no region {region}")))?;
        let ring = match change {
            RingChange::Add { shard, vnodes } => {
                if !valid_name(shard) {
                    return Err(OrdersError::invalid(
                        "add",
                        "a shard name is 1 to 16 of a-z 0-9 _, starting with a letter",
                    ));
                }
                if current.ring.shards().any(|s| s == shard) {
                    return Err(OrdersError::Conflict(format!(
                        "region {region} already has shard {shard}"
                    )));
                }
                current.ring.with_shard(shard, *vnodes)
            }
            RingChange::Target(spec) => {
                if let Some(bad) = spec.iter().find(|s| !valid_name(&s.name)) {
                    return Err(OrdersError::invalid(
                        "target",
                        format!(
                            "shard name {:?}: 1 to 16 of a-z 0-9 _, starting with a letter",
                            bad.name
                        ),
                    ));
                }
                Ring::new(spec)
            }
        }
        .map_err(|e| OrdersError::Unprocessable {
            field: "target".to_owned(),
            message: e.to_string(),
        })?;
        Ok((current.version, ring))
    }

    /// What `change` would move in `region`, moving nothing.
    pub async fn plan(&self, region: &str, change: &RingChange) -> Result<MovePlan, OrdersError> {
        let (version, target) = self.target(region, change)?;
        let mut documents = 0;
        let mut width: u128 = 0;
        let mut flows: Vec<MoveFlow> = Vec::new();
        for (m, n) in self.rebalancer.plan(region, &target).await? {
            documents += n;
            width += u128::from(m.width());
            match flows.iter_mut().find(|f| f.from == m.from && f.to == m.to) {
                Some(f) => f.documents += n,
                None => flows.push(MoveFlow {
                    from: m.from.clone(),
                    to: m.to.clone(),
                    documents: n,
                }),
            }
        }
        Ok(MovePlan {
            region: region.to_owned(),
            from_version: version,
            target: views(target.spec()),
            moving_share: width as f64 / (praxis_kit::ring::MAX_POSITION as f64 + 1.0),
            documents,
            flows,
        })
    }

    /// Begins `change` of `region` and drives it in this process; the move as begun.
    pub async fn begin(
        &self,
        region: &str,
        change: &RingChange,
        note: &str,
    ) -> Result<MoveView, OrdersError> {
        let (_, target) = self.target(region, change)?;
        if let RingChange::Add { shard, .. } = change {
            self.shards.register(region, shard, None).await?;
            self.shards.db(region, shard).await?;
        }
        let begun = self.rebalancer.begin(region, &target, note).await?;
        self.drive(begun.id.clone());
        Ok(MoveView::from(&begun))
    }

    /// Drives move `id` to its end in a task of this process, unless this process drives it
    /// already (a slow driver's lease may lapse; it is not an orphan).
    pub fn drive(&self, id: String) {
        if !self.driving.lock().insert(id.clone()) {
            return;
        }
        let rebalancer = self.rebalancer.clone();
        let driving = self.driving.clone();
        self.tasks.spawn(async move {
            let ended = rebalancer.run(&id).await;
            driving.lock().remove(&id);
            match ended {
                Ok(done) => tracing::info!(id, state = done.state.as_str(), "move ended"),
                Err(ShardError::Leased(_)) => {
                    tracing::info!(id, "move driven by another process")
                }
                Err(e) => {
                    tracing::warn!(id, error = %e, "move stopped; it resumes once its lease lapses")
                }
            }
        });
    }

    /// Move `id` of `region`.
    pub async fn move_status(&self, region: &str, id: &str) -> Result<MoveView, OrdersError> {
        let status = self.rebalancer.status(id).await?;
        if status.region != region {
            return Err(OrdersError::NotFound(format!(
                "no move {id} in region {region}"
            )));
        }
        Ok(MoveView::from(&status))
    }

    /// Aborts move `id` of `region` (before its switch), waiting up to `wait` for the
    /// process that drives it to undo it.
    pub async fn abort(
        &self,
        region: &str,
        id: &str,
        wait: Duration,
    ) -> Result<MoveView, OrdersError> {
        self.move_status(region, id).await?;
        let status = self.rebalancer.abort(id, wait).await?;
        Ok(MoveView::from(&status))
    }

    /// Checks every document of `region` against its current ring.
    pub async fn verify(&self, region: &str) -> Result<PlacementCheck, OrdersError> {
        let ring = self
            .rings
            .current(region)
            .ok_or_else(|| OrdersError::NotFound(format!("no region {region}")))?;
        let mut shards = Vec::new();
        let mut ok = true;
        for shard in self.shards.shards(region).await? {
            let db = self.shards.db(region, &shard).await?;
            let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM shard_docs")
                .fetch_all(db.pool())
                .await?;
            let misplaced = positions
                .iter()
                .filter(|p| ring.ring.shard_at(p.unsigned_abs()) != shard)
                .count() as i64;
            ok &= misplaced == 0;
            shards.push(ShardPlacement {
                shard,
                documents: positions.len() as i64,
                misplaced,
            });
        }
        Ok(PlacementCheck {
            region: region.to_owned(),
            version: ring.version,
            shards,
            ok,
        })
    }

    /// One look of the size trigger: in each region without a move, a shard holding more
    /// than `limit` orders makes it add a shard (named after the highest `s<n>` plus one).
    /// What it did or would do, per region.
    pub async fn trigger_once(
        &self,
        limit: u64,
        mode: TriggerMode,
    ) -> Result<Vec<MovePlan>, OrdersError> {
        let mut acted = Vec::new();
        for ring in self.rings.all() {
            let region = ring.region.clone();
            if self.rebalancer.active(&region).await?.is_some() {
                continue;
            }
            let mut over = false;
            for shard in ring.ring.shards() {
                over |= self.docs.count_on(&region, shard, ORDERS).await?
                    > i64::try_from(limit).unwrap_or(i64::MAX);
            }
            if !over {
                self.suggested.lock().remove(&region);
                continue;
            }
            let next = ring
                .ring
                .shards()
                .filter_map(|s| s.strip_prefix('s').and_then(|n| n.parse::<u32>().ok()))
                .max()
                .unwrap_or(0)
                + 1;
            let change = RingChange::Add {
                shard: format!("s{next}"),
                vnodes: self.vnodes,
            };
            let plan = self.plan(&region, &change).await?;
            match mode {
                TriggerMode::DryRun => {
                    tracing::warn!(region, shard = %format!("s{next}"), documents = plan.documents,
                        "a shard is over trigger_documents; the trigger (dry_run) would add a shard");
                    metrics::counter!("praxis_orders_trigger_total", "mode" => "dry_run")
                        .increment(1);
                    self.suggested.lock().insert(region.clone(), plan.clone());
                }
                TriggerMode::On => {
                    tracing::info!(region, shard = %format!("s{next}"), "a shard is over trigger_documents: adding a shard");
                    metrics::counter!("praxis_orders_trigger_total", "mode" => "on").increment(1);
                    match self.begin(&region, &change, "size trigger").await {
                        Ok(_) | Err(OrdersError::Shard(ShardError::Busy { .. })) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            acted.push(plan);
        }
        Ok(acted)
    }

    /// Runs the size trigger every `every` until `shutdown`.
    pub async fn run_trigger(
        self,
        limit: u64,
        mode: TriggerMode,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.trigger_once(limit, mode).await {
                tracing::warn!(error = %e, "the size trigger failed; it looks again later");
            }
        }
    }

    /// Resumes, every second until `shutdown`, the moves whose driver's lease lapsed.
    pub async fn resume_orphans(self, shutdown: CancellationToken) {
        loop {
            match self.rebalancer.orphans().await {
                Ok(ids) => {
                    for id in ids {
                        tracing::info!(id, "resuming a move whose process stopped");
                        self.drive(id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list orphaned moves"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(ORPHAN_POLL) => {}
            }
        }
    }
}
