//! Fan-out on write: the `feed-fanout` consumer of `feed.posted` writes each `push` post's id
//! into the timelines of the author's *active* followers (read within the active window) whose
//! timeline is built, in pipelined batches of `fanout_batch`; `pull` posts write nothing (they
//! are merged at read). Also: a follow's backfill and the rebuild of a timeline from the
//! database (single flight per user in this process).
//!
//! The consumer is idempotent (a timeline is a set), so a redelivered event writes nothing new.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use praxis_infra::InfraError;
use praxis_infra::bus::{Bus, Event, HandlerError};
use tokio_util::task::TaskTracker;

use crate::domain::model::{Fanout, PostedEvent, now_ms};
use crate::settings::FeedSettings;
use crate::store::timeline::DynTimelines;
use crate::store::{POSTED_TOPIC, Store};
use crate::workers::metrics;

/// Consumer group of the fan-out.
pub const FANOUT_GROUP: &str = "feed-fanout";

/// The write side of timelines. Cheap to clone.
#[derive(Clone)]
pub struct Fanouts {
    store: Store,
    timelines: DynTimelines,
    settings: Arc<FeedSettings>,
    tasks: TaskTracker,
    building: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for Fanouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanouts")
            .field("timelines", &self.timelines.kind())
            .finish_non_exhaustive()
    }
}

impl Fanouts {
    /// The fan-out over `store` and `timelines`; rebuilds run on `tasks`.
    pub fn new(
        store: Store,
        timelines: DynTimelines,
        settings: Arc<FeedSettings>,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            store,
            timelines,
            settings,
            tasks,
            building: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Subscribes the `feed-fanout` group.
    pub fn subscribe(&self, bus: &Bus) -> Result<(), InfraError> {
        let this = self.clone();
        bus.subscribe(POSTED_TOPIC, FANOUT_GROUP, move |event: Event| {
            let this = this.clone();
            async move { this.handle(&event).await }
        })
    }

    /// Handles one `feed.posted` event.
    pub async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let posted: PostedEvent = serde_json::from_slice(&event.payload).map_err(|e| {
            HandlerError::Permanent(format!("posted event {} does not parse: {e}", event.id))
        })?;
        if posted.fanout == Fanout::Pull {
            return Ok(());
        }
        let written = self.push(&posted).await?;
        self.store.mark_fanned_out(posted.id, now_ms()).await?;
        metrics::entries("push", written);
        let lag_ms = (now_ms() - posted.created_at).max(0);
        ::metrics::histogram!(metrics::FANOUT_LAG).record(lag_ms as f64 / 1000.0);
        Ok(())
    }

    /// Writes a push post into its author's own timeline and its active followers'; returns
    /// how many timelines got it.
    async fn push(&self, posted: &PostedEvent) -> Result<usize, InfraError> {
        // A stored timeline lives `active_window` after its last read, but that read may have
        // written `last_active_at` up to TOUCH_EVERY_MS earlier (writes are throttled): reach
        // back further by twice that, or a post made just before the timeline expires would be
        // missing from it while it is still trusted.
        let window = i64::try_from(self.settings.active_window.as_millis()).unwrap_or(i64::MAX);
        let since = now_ms()
            .saturating_sub(window)
            .saturating_sub(2 * crate::store::timeline::TOUCH_EVERY_MS);
        let mut written = self
            .timelines
            .push(std::slice::from_ref(&posted.author), posted.id)
            .await?;
        let mut after = String::new();
        loop {
            let followers = self
                .store
                .active_followers(&posted.author, since, &after, self.settings.fanout_batch)
                .await?;
            let Some(last) = followers.last() else {
                break;
            };
            after = last.clone();
            written += self.timelines.push(&followers, posted.id).await?;
            if followers.len() < self.settings.fanout_batch {
                break;
            }
        }
        Ok(written)
    }

    /// Writes the recent push posts of `followee` into `follower`'s timeline (when it is
    /// built): what a follow shows at once.
    pub async fn backfill(&self, follower: &str, followee: &str) -> Result<(), InfraError> {
        let ids = self
            .store
            .author_push_ids(followee, self.settings.backfill)
            .await?;
        let written = self.timelines.push_ids(follower, &ids).await?;
        metrics::entries("backfill", written);
        Ok(())
    }

    /// Starts a rebuild of `user`'s timeline in the background unless one runs in this
    /// process already.
    pub fn spawn_rebuild(&self, user: &str) {
        if !self.building.lock().insert(user.to_owned()) {
            return;
        }
        let this = self.clone();
        let user = user.to_owned();
        self.tasks.spawn(async move {
            if let Err(e) = this.rebuild(&user).await {
                tracing::warn!(user = %user, error = %e, "timeline rebuild failed; the database answers meanwhile");
                let _ = this.timelines.drop_timeline(&user).await;
            }
            this.building.lock().remove(&user);
        });
    }

    /// Rebuilds `user`'s timeline from the database (when no other rebuild claimed it).
    pub async fn rebuild(&self, user: &str) -> Result<(), InfraError> {
        if !self.timelines.begin_build(user).await? {
            return Ok(());
        }
        let ids = self
            .store
            .recent_push_ids(user, self.settings.timeline_cap)
            .await?;
        self.timelines.finish_build(user, &ids).await?;
        ::metrics::counter!(metrics::REBUILDS_TOTAL).increment(1);
        metrics::entries("rebuild", ids.len());
        Ok(())
    }
}
