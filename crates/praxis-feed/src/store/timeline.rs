//! The timeline store port: per user, a capped set of post ids (newest kept) plus a state
//! marker, so an empty timeline differs from a missing one.
//!
//! Two adapters behind one trait, chosen from the platform alone:
//! - [`RedisTimelines`] (scaled): a sorted set `<prefix>:feed:tl:<user>` scored by post id
//!   (ids stay below 2^53, so scores are exact), capped with `ZREMRANGEBYRANK`, plus a marker
//!   key `<prefix>:feed:st:<user>` (`building` | `built`). Both expire after the active window
//!   (refreshed on every read), so inactive users' timelines disappear by themselves.
//! - [`MemoryTimelines`] (embedded): the same in a map in this process (lost at restart, and
//!   rebuilt from the database on the next read).
//!
//! A timeline is only trusted when `built`. A rebuild first claims the marker (`building`,
//! only when absent), then reads the database, then writes the ids and marks it `built`;
//! fan-out writes into timelines that are `building` or `built`, so a post created while a
//! rebuild runs is either in the rebuild's read or pushed by the fan-out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use praxis_infra::InfraError;
use redis::aio::ConnectionManager;

use crate::store::Range;

/// A user's activity (`last_active_at`, which keeps a stored timeline alive) is written at
/// most this often (ms); the fan-out reaches back further by twice that.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// How long a `building` marker lives (a rebuild that dies leaves it behind this long).
pub const BUILD_LEASE: Duration = Duration::from_secs(60);

/// The state of one user's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineState {
    /// No timeline (never built, expired, or lost).
    Missing,
    /// A rebuild is filling it.
    Building,
    /// Complete: every push post of the user's followees since it was built (up to the cap).
    Built,
}

/// One read of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Post ids in the range, in its order, at most the count asked for.
    pub ids: Vec<i64>,
    /// How many entries the timeline holds in all.
    pub len: usize,
    /// Its oldest entry.
    pub oldest: Option<i64>,
}

/// The timeline store port (see the module docs).
#[async_trait::async_trait]
pub trait Timelines: Send + Sync + 'static {
    /// `"redis"` or `"memory"`.
    fn kind(&self) -> &'static str;

    /// The state of `user`'s timeline.
    async fn state(&self, user: &str) -> Result<TimelineState, InfraError>;

    /// Claims a rebuild of `user`'s timeline: true (and the timeline emptied, marked
    /// `building`) when no marker existed.
    async fn begin_build(&self, user: &str) -> Result<bool, InfraError>;

    /// Adds `ids` to a timeline being built, caps it and marks it `built`.
    async fn finish_build(&self, user: &str, ids: &[i64]) -> Result<(), InfraError>;

    /// Forgets `user`'s timeline (a failed rebuild).
    async fn drop_timeline(&self, user: &str) -> Result<(), InfraError>;

    /// Adds post `id` to the timelines of those of `users` that are `building` or `built`
    /// (capped); returns how many were written.
    async fn push(&self, users: &[String], id: i64) -> Result<usize, InfraError>;

    /// Adds `ids` to `user`'s timeline when it is `building` or `built`; returns how many
    /// entries were written.
    async fn push_ids(&self, user: &str, ids: &[i64]) -> Result<usize, InfraError>;

    /// Up to `count` ids of `user`'s timeline in `range`, and refreshes its expiry.
    async fn slice(&self, user: &str, range: Range, count: usize) -> Result<Slice, InfraError>;

    /// Forgets every timeline (operators and tests: "Redis was flushed").
    async fn clear(&self) -> Result<(), InfraError>;
}

/// A shared handle to the timeline store.
pub type DynTimelines = Arc<dyn Timelines>;

// ----- memory ---------------------------------------------------------------------------

struct Entry {
    ids: BTreeSet<i64>,
    state: TimelineState,
    expires: Instant,
}

/// The embedded adapter: timelines in this process's memory.
pub struct MemoryTimelines {
    cap: usize,
    ttl: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl MemoryTimelines {
    /// An empty store keeping `cap` entries per user, forgetting timelines idle for `ttl`.
    pub fn new(cap: usize, ttl: Duration) -> Self {
        Self {
            cap,
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live<'a>(map: &'a mut HashMap<String, Entry>, user: &str) -> Option<&'a mut Entry> {
        let now = Instant::now();
        if map.get(user).is_some_and(|e| e.expires <= now) {
            map.remove(user);
        }
        map.get_mut(user)
    }

    fn trim(ids: &mut BTreeSet<i64>, cap: usize) {
        while ids.len() > cap {
            ids.pop_first();
        }
    }
}

#[async_trait::async_trait]
impl Timelines for MemoryTimelines {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn state(&self, user: &str) -> Result<TimelineState, InfraError> {
        let mut map = self.map.lock();
        Ok(Self::live(&mut map, user).map_or(TimelineState::Missing, |e| e.state))
    }

    async fn begin_build(&self, user: &str) -> Result<bool, InfraError> {
        let mut map = self.map.lock();
        if Self::live(&mut map, user).is_some() {
            return Ok(false);
        }
        map.insert(
            user.to_owned(),
            Entry {
                ids: BTreeSet::new(),
                state: TimelineState::Building,
                expires: Instant::now() + BUILD_LEASE,
            },
        );
        Ok(true)
    }

    async fn finish_build(&self, user: &str, ids: &[i64]) -> Result<(), InfraError> {
        let mut map = self.map.lock();
        let entry = map.entry(user.to_owned()).or_insert_with(|| Entry {
            ids: BTreeSet::new(),
            state: TimelineState::Building,
            expires: Instant::now(),
        });
        entry.ids.extend(ids.iter().copied());
        Self::trim(&mut entry.ids, self.cap);
        entry.state = TimelineState::Built;
        entry.expires = Instant::now() + self.ttl;
        Ok(())
    }

    async fn drop_timeline(&self, user: &str) -> Result<(), InfraError> {
        self.map.lock().remove(user);
        Ok(())
    }

    async fn push(&self, users: &[String], id: i64) -> Result<usize, InfraError> {
        let mut map = self.map.lock();
        let mut written = 0;
        for user in users {
            if let Some(e) = Self::live(&mut map, user) {
                e.ids.insert(id);
                Self::trim(&mut e.ids, self.cap);
                written += 1;
            }
        }
        Ok(written)
    }

    async fn push_ids(&self, user: &str, ids: &[i64]) -> Result<usize, InfraError> {
        let mut map = self.map.lock();
        let Some(e) = Self::live(&mut map, user) else {
            return Ok(0);
        };
        e.ids.extend(ids.iter().copied());
        Self::trim(&mut e.ids, self.cap);
        Ok(ids.len())
    }

    async fn slice(&self, user: &str, range: Range, count: usize) -> Result<Slice, InfraError> {
        let mut map = self.map.lock();
        let ttl = self.ttl;
        let Some(e) = Self::live(&mut map, user) else {
            return Ok(Slice {
                ids: Vec::new(),
                len: 0,
                oldest: None,
            });
        };
        if e.state == TimelineState::Built {
            e.expires = Instant::now() + ttl;
        }
        let (lo, hi) = (range.above.saturating_add(1), range.below);
        let ids: Vec<i64> = if lo >= hi {
            Vec::new()
        } else if range.desc {
            e.ids.range(lo..hi).rev().take(count).copied().collect()
        } else {
            e.ids.range(lo..hi).take(count).copied().collect()
        };
        Ok(Slice {
            ids,
            len: e.ids.len(),
            oldest: e.ids.first().copied(),
        })
    }

    async fn clear(&self) -> Result<(), InfraError> {
        self.map.lock().clear();
        Ok(())
    }
}

// ----- redis ----------------------------------------------------------------------------

/// The scaled adapter: a sorted set and a marker per user in Redis.
pub struct RedisTimelines {
    conn: ConnectionManager,
    prefix: String,
    cap: usize,
    ttl_secs: u64,
}

impl RedisTimelines {
    /// Timelines under `<prefix>:feed:`, `cap` entries each, expiring after `ttl` idle.
    pub fn new(conn: ConnectionManager, prefix: &str, cap: usize, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}:feed:"),
            cap,
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    fn tl(&self, user: &str) -> String {
        format!("{}tl:{user}", self.prefix)
    }

    fn st(&self, user: &str) -> String {
        format!("{}st:{user}", self.prefix)
    }

    fn cap_rank(&self) -> isize {
        -(isize::try_from(self.cap).unwrap_or(isize::MAX)) - 1
    }
}

fn state_of(marker: Option<&str>) -> TimelineState {
    match marker {
        Some("built") => TimelineState::Built,
        Some(_) => TimelineState::Building,
        None => TimelineState::Missing,
    }
}

#[async_trait::async_trait]
impl Timelines for RedisTimelines {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn state(&self, user: &str) -> Result<TimelineState, InfraError> {
        let mut conn = self.conn.clone();
        let marker: Option<String> = redis::cmd("GET")
            .arg(self.st(user))
            .query_async(&mut conn)
            .await?;
        Ok(state_of(marker.as_deref()))
    }

    async fn begin_build(&self, user: &str) -> Result<bool, InfraError> {
        let mut conn = self.conn.clone();
        let claimed: Option<String> = redis::cmd("SET")
            .arg(self.st(user))
            .arg("building")
            .arg("NX")
            .arg("EX")
            .arg(BUILD_LEASE.as_secs())
            .query_async(&mut conn)
            .await?;
        if claimed.is_none() {
            return Ok(false);
        }
        let _: i64 = redis::cmd("DEL")
            .arg(self.tl(user))
            .query_async(&mut conn)
            .await?;
        Ok(true)
    }

    async fn finish_build(&self, user: &str, ids: &[i64]) -> Result<(), InfraError> {
        let mut conn = self.conn.clone();
        let key = self.tl(user);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for chunk in ids.chunks(1000) {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&key);
            for id in chunk {
                zadd.arg(*id).arg(*id);
            }
            pipe.add_command(zadd).ignore();
        }
        pipe.cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(self.cap_rank())
            .ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(self.ttl_secs).ignore();
        pipe.cmd("SET")
            .arg(self.st(user))
            .arg("built")
            .arg("EX")
            .arg(self.ttl_secs)
            .ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn drop_timeline(&self, user: &str) -> Result<(), InfraError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.st(user))
            .arg(self.tl(user))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn push(&self, users: &[String], id: i64) -> Result<usize, InfraError> {
        if users.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut mget = redis::cmd("MGET");
        for u in users {
            mget.arg(self.st(u));
        }
        let markers: Vec<Option<String>> = mget.query_async(&mut conn).await?;
        let mut pipe = redis::pipe();
        let mut written = 0;
        for (u, marker) in users.iter().zip(markers) {
            if marker.is_none() {
                continue;
            }
            let key = self.tl(u);
            pipe.cmd("ZADD").arg(&key).arg(id).arg(id).ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(self.cap_rank())
                .ignore();
            // The set may not exist yet (an empty rebuild left none to expire): without this
            // it would be created without a TTL and outlive its marker forever.
            pipe.cmd("EXPIRE").arg(&key).arg(self.ttl_secs).ignore();
            written += 1;
        }
        if written > 0 {
            let () = pipe.query_async(&mut conn).await?;
        }
        Ok(written)
    }

    async fn push_ids(&self, user: &str, ids: &[i64]) -> Result<usize, InfraError> {
        if ids.is_empty() || self.state(user).await? == TimelineState::Missing {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let key = self.tl(user);
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&key);
        for id in ids {
            zadd.arg(*id).arg(*id);
        }
        let mut pipe = redis::pipe();
        pipe.add_command(zadd).ignore();
        pipe.cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(self.cap_rank())
            .ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(self.ttl_secs).ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(ids.len())
    }

    async fn slice(&self, user: &str, range: Range, count: usize) -> Result<Slice, InfraError> {
        let mut conn = self.conn.clone();
        let key = self.tl(user);
        let lo = format!("({}", range.above);
        let hi = if range.below == i64::MAX {
            "+inf".to_owned()
        } else {
            format!("({}", range.below)
        };
        let mut pipe = redis::pipe();
        if range.desc {
            pipe.cmd("ZREVRANGEBYSCORE").arg(&key).arg(&hi).arg(&lo);
        } else {
            pipe.cmd("ZRANGEBYSCORE").arg(&key).arg(&lo).arg(&hi);
        }
        pipe.arg("LIMIT").arg(0).arg(count);
        pipe.cmd("ZCARD").arg(&key);
        pipe.cmd("ZRANGE").arg(&key).arg(0).arg(0);
        pipe.cmd("EXPIRE").arg(&key).arg(self.ttl_secs).ignore();
        pipe.cmd("EXPIRE")
            .arg(self.st(user))
            .arg(self.ttl_secs)
            .ignore();
        let (ids, len, oldest): (Vec<i64>, usize, Vec<i64>) = pipe.query_async(&mut conn).await?;
        Ok(Slice {
            ids,
            len,
            oldest: oldest.first().copied(),
        })
    }

    async fn clear(&self) -> Result<(), InfraError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_timelines_are_capped_marked_and_sliced() -> Result<(), InfraError> {
        let t = MemoryTimelines::new(3, Duration::from_secs(60));
        assert_eq!(t.state("u").await?, TimelineState::Missing);
        assert_eq!(t.push(&["u".into()], 1).await?, 0);
        assert!(t.begin_build("u").await?);
        assert!(!t.begin_build("u").await?);
        assert_eq!(t.state("u").await?, TimelineState::Building);
        assert_eq!(t.push(&["u".into()], 9).await?, 1);
        t.finish_build("u", &[2, 4, 6]).await?;
        assert_eq!(t.state("u").await?, TimelineState::Built);
        let all = t.slice("u", Range::ALL, 10).await?;
        assert_eq!(all.ids, vec![9, 6, 4]);
        assert_eq!((all.len, all.oldest), (3, Some(4)));
        let r = Range {
            above: 4,
            below: 9,
            desc: false,
        };
        assert_eq!(t.slice("u", r, 10).await?.ids, vec![6]);
        t.clear().await?;
        assert_eq!(t.state("u").await?, TimelineState::Missing);
        Ok(())
    }
}
