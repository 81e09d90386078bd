//! The read side: home timelines (store + pull merge, or the database) and user timelines.
//!
//! A home page when the user's timeline is **built**: ids from the timeline store in the
//! page's id range, merged with the `pull` posts of the user's followees in the same range
//! (an indexed query on `posts(author, id)` limited to followees that wrote pull posts), then
//! hydrated from the post cache and filtered with the viewer's cached relations (deleted, no
//! longer followed, blocked, muted: [`crate::workers::hydrate`]); only cache misses read the
//! posts table. Both
//! sources are read in steps of `limit` and a step keeps only ids down to where both were
//! read completely, so the merge never skips a post. When the store holds `timeline_cap`
//! entries, it is complete only down to its oldest entry: a page reaching below it is
//! answered from the database.
//!
//! Store entries are trusted only up to the **fan-out horizon** (the newest id up to which
//! every post was fanned out): posts above it come from the table, so a post whose fan-out
//! runs late (in another process, or after a retry) is never paged past.
//!
//! When the timeline is **not built** (an inactive user, Redis flushed, a restart): the page
//! is answered at once from the database, and the timeline is rebuilt in the background.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use praxis_infra::InfraError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::model::{Post, now_ms};
use crate::settings::FeedSettings;
use crate::store::timeline::{DynTimelines, TOUCH_EVERY_MS, TimelineState};
use crate::store::{Range, Store};
use crate::workers::fanout::Fanouts;
use crate::workers::hydrate::Hydrator;
use crate::workers::metrics;

/// How often the batched activity of readers with built timelines is written.
pub const TOUCH_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Most readers remembered as recently written (then the stale ones are forgotten).
const TOUCHED_MAX: usize = 1_000_000;

/// Steps of a merged page before the rest comes from the database.
const MAX_STEPS: usize = 8;

/// Where a page came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The timeline store (merged with pull posts).
    Store,
    /// The posts table.
    Database,
}

impl Source {
    /// `"store"` or `"database"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Store => "store",
            Source::Database => "database",
        }
    }
}

/// The page asked for, Mastodon style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Older than this id.
    pub max_id: Option<i64>,
    /// Newer than this id, newest first.
    pub since_id: Option<i64>,
    /// Newer than this id, the page right after it.
    pub min_id: Option<i64>,
    /// Posts per page.
    pub limit: u32,
}

impl PageQuery {
    /// The id range to scan: `min_id` scans up from it (oldest first); otherwise down from
    /// `max_id` to `since_id`.
    pub fn range(&self) -> Range {
        let below = self.max_id.unwrap_or(i64::MAX);
        match self.min_id {
            Some(min) => Range {
                above: min,
                below,
                desc: false,
            },
            None => Range {
                above: self.since_id.unwrap_or(0),
                below,
                desc: true,
            },
        }
    }
}

/// The read side. Cheap to clone.
#[derive(Clone)]
pub struct Reader {
    store: Store,
    timelines: DynTimelines,
    fanouts: Fanouts,
    settings: Arc<FeedSettings>,
    hydrator: Hydrator,
    touched: Arc<Mutex<HashMap<String, i64>>>,
    pending: Arc<Mutex<HashMap<String, i64>>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// The reader over `store` and `timelines`, hydrating pages through `hydrator`.
    pub fn new(
        store: Store,
        timelines: DynTimelines,
        fanouts: Fanouts,
        settings: Arc<FeedSettings>,
        hydrator: Hydrator,
    ) -> Self {
        Self {
            store,
            timelines,
            fanouts,
            settings,
            hydrator,
            touched: Arc::new(Mutex::new(HashMap::new())),
            pending: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// One page of `viewer`'s home timeline, newest first, and where it came from.
    pub async fn home(
        &self,
        viewer: &str,
        q: PageQuery,
    ) -> Result<(Vec<Post>, Source), InfraError> {
        let range = q.range();
        let state = match self.timelines.state(viewer).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "timeline store unavailable; answering from the database");
                None
            }
        };
        self.touch(viewer, now_ms(), state).await?;
        let (mut posts, source) = match state {
            Some(TimelineState::Built) => match self.built(viewer, range, q.limit).await {
                Ok(r) => r,
                Err(e) if matches!(e, InfraError::Redis(_)) => {
                    tracing::warn!(error = %e, "timeline store failed; answering from the database");
                    (
                        self.store.home(viewer, range, q.limit).await?,
                        Source::Database,
                    )
                }
                Err(e) => return Err(e),
            },
            other => {
                if other == Some(TimelineState::Missing) {
                    self.fanouts.spawn_rebuild(viewer);
                }
                (
                    self.store.home(viewer, range, q.limit).await?,
                    Source::Database,
                )
            }
        };
        ::metrics::counter!(metrics::TIMELINE_READS_TOTAL, "source" => source.as_str())
            .increment(1);
        if !range.desc {
            posts.reverse();
        }
        Ok((posts, source))
    }

    /// One page of `author`'s posts as `viewer` sees them, newest first.
    pub async fn user(
        &self,
        viewer: &str,
        author: &str,
        q: PageQuery,
    ) -> Result<Vec<Post>, InfraError> {
        let range = q.range();
        let mut posts = self
            .store
            .user_posts(viewer, author, range, q.limit)
            .await?;
        if !range.desc {
            posts.reverse();
        }
        Ok(posts)
    }

    /// The caches that hydrate pages.
    pub fn hydrator(&self) -> &Hydrator {
        &self.hydrator
    }

    /// Whether `viewer`'s activity is due to be written (at most once a minute per process);
    /// marks it written at `now`.
    fn touch_due(&self, viewer: &str, now: i64) -> bool {
        let mut touched = self.touched.lock();
        if touched
            .get(viewer)
            .is_some_and(|at| now - at < TOUCH_EVERY_MS)
        {
            return false;
        }
        if touched.len() >= TOUCHED_MAX {
            touched.retain(|_, at| now - *at < TOUCH_EVERY_MS);
            if touched.len() >= TOUCHED_MAX {
                touched.clear();
            }
        }
        touched.insert(viewer.to_owned(), now);
        true
    }

    /// Records that `viewer` reads, so the fan-out includes them. A reader whose timeline is
    /// built is already active: the write joins the next batch ([`Reader::flush_touches`],
    /// every [`TOUCH_FLUSH_EVERY`]), off the request. Anyone else is written before the
    /// answer and before any rebuild starts, so a post created during the rebuild is either
    /// in its read or fanned out to this user.
    async fn touch(
        &self,
        viewer: &str,
        now: i64,
        state: Option<TimelineState>,
    ) -> Result<(), InfraError> {
        if !self.touch_due(viewer, now) {
            return Ok(());
        }
        if state == Some(TimelineState::Built) {
            self.pending.lock().insert(viewer.to_owned(), now);
            return Ok(());
        }
        if let Err(e) = self.store.touch_active(viewer, now).await {
            self.touched.lock().remove(viewer);
            return Err(e);
        }
        Ok(())
    }

    /// Writes the batched activity of readers with built timelines in one statement per
    /// 500 users; returns how many were written. On failure they are kept for the next try.
    pub async fn flush_touches(&self) -> Result<usize, InfraError> {
        let batch: Vec<(String, i64)> = std::mem::take(&mut *self.pending.lock())
            .into_iter()
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.touch_many(&batch).await {
            let mut pending = self.pending.lock();
            for (user, at) in batch {
                pending.entry(user).or_insert(at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    /// Runs [`Reader::flush_touches`] every [`TOUCH_FLUSH_EVERY`] on `tasks` until `shutdown`,
    /// then once more.
    pub fn spawn_touch_flusher(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let reader = self.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(TOUCH_FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let stop = tokio::select! {
                    () = shutdown.cancelled() => true,
                    _ = every.tick() => false,
                };
                if let Err(e) = reader.flush_touches().await {
                    tracing::warn!(error = %e, "reader activity not written; retried at the next flush");
                }
                if stop {
                    return;
                }
            }
        });
    }

    /// A page of a built timeline: store entries up to the fan-out horizon (merged with pull
    /// posts), posts above it (their fan-out not done yet) from the table.
    async fn built(
        &self,
        viewer: &str,
        range: Range,
        limit: u32,
    ) -> Result<(Vec<Post>, Source), InfraError> {
        let Some(horizon) = self.store.fanout_horizon().await? else {
            return self.merged(viewer, range, limit).await;
        };
        if horizon >= range.below.saturating_sub(1) {
            return self.merged(viewer, range, limit).await;
        }
        // Ids above the horizon: from the table; at or below it: from the store.
        let above = Range {
            above: range.above.max(horizon),
            ..range
        };
        let below = Range {
            below: horizon.saturating_add(1),
            ..range
        };
        if range.desc {
            let mut out = self.store.home(viewer, above, limit).await?;
            if out.len() as u32 >= limit || horizon <= range.above {
                return Ok((out, Source::Database));
            }
            let (rest, source) = self.merged(viewer, below, limit - out.len() as u32).await?;
            out.extend(rest);
            Ok((out, source))
        } else {
            let (mut out, source) = if horizon > range.above {
                self.merged(viewer, below, limit).await?
            } else {
                (Vec::new(), Source::Database)
            };
            if out.len() as u32 >= limit {
                return Ok((out, source));
            }
            let rest = self
                .store
                .home(viewer, above, limit - out.len() as u32)
                .await?;
            out.extend(rest);
            Ok((out, source))
        }
    }

    /// A page from a built timeline merged with pull posts (see the module docs).
    async fn merged(
        &self,
        viewer: &str,
        mut range: Range,
        limit: u32,
    ) -> Result<(Vec<Post>, Source), InfraError> {
        let want = limit as usize;
        let mut out: Vec<Post> = Vec::with_capacity(want);
        for _ in 0..MAX_STEPS {
            let slice = self.timelines.slice(viewer, range, want).await?;
            let store_done = slice.ids.len() < want;
            if slice.len >= self.settings.timeline_cap {
                // Trimmed (or about to be): complete only down to its oldest entry.
                let floor = slice.oldest.unwrap_or(i64::MAX);
                let below_floor = if range.desc {
                    store_done && range.above < floor.saturating_sub(1)
                } else {
                    range.above < floor.saturating_sub(1)
                };
                if below_floor {
                    let rest = self
                        .store
                        .home(viewer, range, limit - out.len() as u32)
                        .await?;
                    out.extend(rest);
                    return Ok((out, Source::Database));
                }
            }
            let pulls = self.store.pull_posts(viewer, range, limit).await?;
            let pull_done = pulls.len() < want;
            // How far both sources were read completely.
            let bound = if range.desc {
                let s = if store_done {
                    range.above
                } else {
                    slice.ids.last().copied().unwrap_or(range.above)
                };
                let p = if pull_done {
                    range.above
                } else {
                    pulls.last().map_or(range.above, |p| p.id)
                };
                s.max(p)
            } else {
                let s = if store_done {
                    range.below
                } else {
                    slice.ids.last().copied().unwrap_or(range.below)
                };
                let p = if pull_done {
                    range.below
                } else {
                    pulls.last().map_or(range.below, |p| p.id)
                };
                s.min(p)
            };
            let mut step: HashMap<i64, Post> = HashMap::new();
            for p in self.hydrator.visible(viewer, &slice.ids).await? {
                step.insert(p.id, p);
            }
            for p in pulls {
                step.insert(p.id, p);
            }
            let mut step: Vec<Post> = step
                .into_values()
                .filter(|p| {
                    if range.desc {
                        p.id >= bound
                    } else {
                        p.id <= bound
                    }
                })
                .collect();
            if range.desc {
                step.sort_by_key(|p| std::cmp::Reverse(p.id));
            } else {
                step.sort_by_key(|p| p.id);
            }
            let room = want - out.len();
            out.extend(step.into_iter().take(room));
            if out.len() >= want || (store_done && pull_done) {
                return Ok((out, Source::Store));
            }
            if range.desc {
                range.below = bound;
            } else {
                range.above = bound;
            }
        }
        // Heavily filtered: the database finishes the page.
        let rest = self
            .store
            .home(viewer, range, limit - out.len() as u32)
            .await?;
        out.extend(rest);
        Ok((out, Source::Store))
    }
}
