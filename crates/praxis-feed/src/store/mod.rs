//! The feed's SQL, one code path for SQLite and PostgreSQL (sqlx `Any`).
//!
//! Visibility (applied at read time, on every path): a post is shown to a viewer when it is
//! not deleted, its author is the viewer or someone the viewer follows now, neither blocks the
//! other, and the viewer has not muted the author.

pub(crate) mod migrations;
pub mod timeline;

use std::collections::{HashMap, HashSet};

use praxis_infra::bus::Bus;
use praxis_infra::sql::dialect::statement_chunks;
use praxis_infra::{Db, InfraError};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::model::{Fanout, Post, PostedEvent};

/// Topic of the post-created events.
pub const POSTED_TOPIC: &str = "feed.posted";

const POST_COLUMNS: &str =
    "p.id, p.author, p.text, p.media, p.reply_to, p.fanout, p.created_at, p.deleted_at";

/// Not blocked either way, not muted (`$1` is the viewer).
const NOT_HIDDEN: &str = "p.deleted_at IS NULL \
     AND NOT EXISTS (SELECT 1 FROM feed_blocks b WHERE (b.blocker = $1 AND b.blocked = p.author) \
                                                 OR (b.blocker = p.author AND b.blocked = $1)) \
     AND NOT EXISTS (SELECT 1 FROM feed_mutes m WHERE m.muter = $1 AND m.muted = p.author)";

/// The author is the viewer or a followee (`$1` is the viewer). A `UNION ALL` rather than an
/// `OR`, so PostgreSQL can plan it as a semi-join on the follow index (an `OR` with a sub-query
/// is a filter on every scanned post).
const FOLLOWED: &str = "p.author IN (SELECT f.followee FROM feed_follows f WHERE f.follower = $1 \
     UNION ALL SELECT $1)";

/// Authors merged per statement of the pull query.
const PULL_AUTHORS_PER_QUERY: usize = 50;

/// Rows of one follow-graph change per statement in the bulk import.
const IMPORT_CHUNK: usize = 500;

/// An id range, both bounds exclusive, and the order to scan it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Ids greater than this.
    pub above: i64,
    /// Ids less than this.
    pub below: i64,
    /// Newest first when true, oldest first otherwise.
    pub desc: bool,
}

impl Range {
    /// Newest first, everything.
    pub const ALL: Range = Range {
        above: 0,
        below: i64::MAX,
        desc: true,
    };
}

/// What a user's relations to others are, for filtering a live stream or a cached page.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Relations {
    /// Whom the user follows.
    pub followees: HashSet<String>,
    /// Whom the user blocks or is blocked by.
    pub blocked: HashSet<String>,
    /// Whom the user muted.
    pub muted: HashSet<String>,
}

impl Relations {
    /// Whether a post of `author` reaches `viewer`'s home timeline.
    pub fn shows(&self, viewer: &str, author: &str) -> bool {
        (author == viewer || self.followees.contains(author))
            && !self.blocked.contains(author)
            && !self.muted.contains(author)
    }
}

/// The feed's tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

fn decode_post(row: &AnyRow) -> Result<Post, InfraError> {
    let media: Option<String> = row.try_get("media")?;
    let fanout: String = row.try_get("fanout")?;
    Ok(Post {
        id: row.try_get("id")?,
        author: row.try_get("author")?,
        text: row.try_get("text")?,
        media: media.and_then(|m| serde_json::from_str(&m).ok()),
        reply_to: row.try_get("reply_to")?,
        fanout: Fanout::parse(&fanout),
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn order(desc: bool) -> &'static str {
    if desc { "DESC" } else { "ASC" }
}

/// The transaction lock that makes posts commit one at a time, in id order.
const POST_ORDER_LOCK: i64 = 7_301_001;

impl Store {
    /// The store on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    // ----- posts ------------------------------------------------------------------------

    /// Creates a post and its `feed.posted` event in one transaction. The post is `pull` when
    /// its author has at least `threshold` followers now. Posts are created one at a time
    /// (SQLite's write lock; a transaction-scoped advisory lock on PostgreSQL), so ids commit
    /// in id order and a reader paging by id never skips a post that commits late.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_post(
        &self,
        bus: &Bus,
        author: &str,
        text: &str,
        media: Option<&serde_json::Value>,
        reply_to: Option<i64>,
        threshold: u64,
        now: i64,
    ) -> Result<Post, InfraError> {
        let mut tx = self.db.begin_write().await?;
        self.db.lock_xact(&mut tx, POST_ORDER_LOCK).await?;
        let followers: Option<i64> =
            sqlx::query_scalar("SELECT follower_count FROM feed_users WHERE id = $1")
                .bind(author)
                .fetch_optional(&mut *tx)
                .await?;
        let followers = u64::try_from(followers.unwrap_or(0)).unwrap_or(0);
        let fanout = if followers >= threshold {
            Fanout::Pull
        } else {
            Fanout::Push
        };
        let media_text = media.map(serde_json::Value::to_string);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO feed_posts (author, text, media, reply_to, fanout, created_at, fanned_out_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(author)
        .bind(text)
        .bind(media_text)
        .bind(reply_to)
        .bind(fanout.as_str())
        .bind(now)
        .bind((fanout == Fanout::Pull).then_some(now))
        .fetch_one(&mut *tx)
        .await?;
        if fanout == Fanout::Pull {
            sqlx::query(
                "INSERT INTO feed_users (id, pull_posts) VALUES ($1, 1) \
                 ON CONFLICT (id) DO UPDATE SET pull_posts = feed_users.pull_posts + 1",
            )
            .bind(author)
            .execute(&mut *tx)
            .await?;
        }
        let event = PostedEvent {
            id,
            author: author.to_owned(),
            fanout,
            created_at: now,
        };
        let payload = serde_json::to_vec(&event).map_err(|e| InfraError::Codec(e.to_string()))?;
        bus.enqueue(&mut tx, POSTED_TOPIC, author, &payload).await?;
        tx.commit().await?;
        bus.notify_committed();
        Ok(Post {
            id,
            author: author.to_owned(),
            text: text.to_owned(),
            media: media.cloned(),
            reply_to,
            fanout,
            created_at: now,
            deleted_at: None,
        })
    }

    /// One post, deleted or not.
    pub async fn post(&self, id: i64) -> Result<Option<Post>, InfraError> {
        let sql = format!("SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode_post).transpose()
    }

    /// The posts with these ids, deleted or not, in no particular order (cache misses of a
    /// page).
    pub async fn posts(&self, ids: &[i64]) -> Result<Vec<Post>, InfraError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.id IN ({})",
            self.db.backend().placeholders(1, ids.len(), 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        rows.iter().map(decode_post).collect()
    }

    /// Replaces the text of post `id` (not deleted); false when there is no such post.
    pub async fn edit_post(&self, id: i64, text: &str) -> Result<bool, InfraError> {
        Ok(
            sqlx::query("UPDATE feed_posts SET text = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .bind(text)
                .execute(self.db.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Records that post `id` was fanned out.
    pub async fn mark_fanned_out(&self, id: i64, now: i64) -> Result<(), InfraError> {
        sqlx::query(
            "UPDATE feed_posts SET fanned_out_at = $2 WHERE id = $1 AND fanned_out_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The fan-out horizon: the newest id up to which every post was fanned out (`None`: all
    /// were). Timeline store entries are trusted up to it; newer posts are read from the
    /// table, so a post whose fan-out is late (another process, a retry) is never skipped.
    pub async fn fanout_horizon(&self) -> Result<Option<i64>, InfraError> {
        let pending: Option<i64> =
            sqlx::query_scalar("SELECT MIN(id) FROM feed_posts WHERE fanned_out_at IS NULL")
                .fetch_one(self.db.pool())
                .await?;
        Ok(pending.map(|id| id - 1))
    }

    /// Marks a post deleted; false when it was already.
    pub async fn delete_post(&self, id: i64, now: i64) -> Result<bool, InfraError> {
        Ok(sqlx::query(
            "UPDATE feed_posts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            > 0)
    }

    /// The posts among `ids` that `viewer` sees on the home timeline, newest first.
    pub async fn visible(&self, viewer: &str, ids: &[i64]) -> Result<Vec<Post>, InfraError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.id IN ({}) AND {FOLLOWED} AND {NOT_HIDDEN} \
             ORDER BY p.id DESC",
            self.db.backend().placeholders(2, ids.len(), 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(viewer);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        rows.iter().map(decode_post).collect()
    }

    /// Up to `limit` posts of `viewer`'s home timeline in `range`, read from the posts table
    /// (the path of timelines that are not built, and of pages past the timeline cap).
    pub async fn home(
        &self,
        viewer: &str,
        range: Range,
        limit: u32,
    ) -> Result<Vec<Post>, InfraError> {
        self.scan(viewer, FOLLOWED, range, limit).await
    }

    /// Who among `viewer` and their followees wrote pull posts.
    pub async fn pull_authors(&self, viewer: &str) -> Result<Vec<String>, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT f.followee FROM feed_follows f JOIN feed_users u ON u.id = f.followee \
             WHERE f.follower = $1 AND u.pull_posts > 0 \
             UNION SELECT id FROM feed_users WHERE id = $1 AND pull_posts > 0",
        )
        .bind(viewer)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Up to `limit` `pull` posts of `viewer`'s followees (and the viewer's own) in `range`:
    /// what the read-time merge adds to a built timeline. One indexed `(author, id)` range
    /// read per author that wrote pull posts, merged.
    pub async fn pull_posts(
        &self,
        viewer: &str,
        range: Range,
        limit: u32,
    ) -> Result<Vec<Post>, InfraError> {
        let authors = self.pull_authors(viewer).await?;
        let mut out: Vec<Post> = Vec::new();
        for chunk in statement_chunks(&authors, PULL_AUTHORS_PER_QUERY) {
            let arms: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "SELECT * FROM (SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.author = ${} \
                         AND p.fanout = 'pull' AND p.id > $2 AND p.id < $3 AND {NOT_HIDDEN} \
                         ORDER BY p.id {dir} LIMIT $4) AS q{i}",
                        5 + i,
                        dir = order(range.desc)
                    )
                })
                .collect();
            let sql = format!(
                "{} ORDER BY id {} LIMIT $4",
                arms.join(" UNION ALL "),
                order(range.desc)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(viewer)
                .bind(range.above)
                .bind(range.below)
                .bind(i64::from(limit));
            for a in chunk {
                q = q.bind(a);
            }
            for row in q.fetch_all(self.db.pool()).await? {
                out.push(decode_post(&row)?);
            }
        }
        if range.desc {
            out.sort_by_key(|p| std::cmp::Reverse(p.id));
        } else {
            out.sort_by_key(|p| p.id);
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// Up to `limit` posts of `author` in `range` as `viewer` sees them (none when either
    /// blocks the other).
    pub async fn user_posts(
        &self,
        viewer: &str,
        author: &str,
        range: Range,
        limit: u32,
    ) -> Result<Vec<Post>, InfraError> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.author = $5 AND p.id > $2 AND p.id < $3 \
             AND p.deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM feed_blocks b WHERE (b.blocker = $1 AND b.blocked = p.author) \
                                                          OR (b.blocker = p.author AND b.blocked = $1)) \
             ORDER BY p.id {} LIMIT $4",
            order(range.desc)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(viewer)
            .bind(range.above)
            .bind(range.below)
            .bind(i64::from(limit))
            .bind(author)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_post).collect()
    }

    async fn scan(
        &self,
        viewer: &str,
        authors: &str,
        range: Range,
        limit: u32,
    ) -> Result<Vec<Post>, InfraError> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM feed_posts p WHERE p.id > $2 AND p.id < $3 AND {authors} \
             AND {NOT_HIDDEN} ORDER BY p.id {} LIMIT $4",
            order(range.desc)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(viewer)
            .bind(range.above)
            .bind(range.below)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_post).collect()
    }

    /// Ids of the newest `limit` `push` posts of `viewer`'s followees and the viewer's own
    /// (deleted ones excluded; other filters apply at read): a timeline rebuild.
    pub async fn recent_push_ids(
        &self,
        viewer: &str,
        limit: usize,
    ) -> Result<Vec<i64>, InfraError> {
        let sql = format!(
            "SELECT p.id FROM feed_posts p WHERE {FOLLOWED} AND p.fanout = 'push' \
             AND p.deleted_at IS NULL ORDER BY p.id DESC LIMIT $2"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(viewer)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await?)
    }

    /// Ids of the newest `limit` `push` posts of `author`: a follow's backfill.
    pub async fn author_push_ids(
        &self,
        author: &str,
        limit: usize,
    ) -> Result<Vec<i64>, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM feed_posts WHERE author = $1 AND fanout = 'push' AND deleted_at IS NULL \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(author)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?)
    }

    // ----- users and the graph ----------------------------------------------------------

    /// Records a home timeline read of `user` at `now`.
    pub async fn touch_active(&self, user: &str, now: i64) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO feed_users (id, last_active_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET last_active_at = $2",
        )
        .bind(user)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Records home timeline reads (user, time) in one transaction, 500 users per statement;
    /// a user's newest time wins.
    pub async fn touch_many(&self, reads: &[(String, i64)]) -> Result<(), InfraError> {
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for (user, at) in reads {
            let e = newest.entry(user.as_str()).or_insert(*at);
            *e = (*e).max(*at);
        }
        let rows: Vec<(&str, i64)> = newest.into_iter().collect();
        let mut tx = self.db.begin_write().await?;
        for chunk in rows.chunks(IMPORT_CHUNK) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 1 + 2 * i, 2 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO feed_users (id, last_active_at) VALUES {values} \
                 ON CONFLICT (id) DO UPDATE SET last_active_at = excluded.last_active_at"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (user, at) in chunk {
                q = q.bind(*user).bind(*at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `author`'s followers active since `since` (ms), in id order after `after`, at most
    /// `limit`: one round of the fan-out.
    pub async fn active_followers(
        &self,
        author: &str,
        since: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT f.follower FROM feed_follows f JOIN feed_users u ON u.id = f.follower \
             WHERE f.followee = $1 AND f.follower > $2 AND u.last_active_at >= $3 \
             ORDER BY f.follower LIMIT $4",
        )
        .bind(author)
        .bind(after)
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?)
    }

    /// How many followers `user` has.
    pub async fn follower_count(&self, user: &str) -> Result<i64, InfraError> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT follower_count FROM feed_users WHERE id = $1")
                .bind(user)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(n.unwrap_or(0))
    }

    /// `follower` follows `followee` (the follower count moves in the same transaction);
    /// false when it already did.
    pub async fn follow(
        &self,
        follower: &str,
        followee: &str,
        now: i64,
    ) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let added = sqlx::query(
            "INSERT INTO feed_follows (follower, followee, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (follower, followee) DO NOTHING",
        )
        .bind(follower)
        .bind(followee)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if added {
            adjust_followers(&mut tx, followee, 1).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// `follower` stops following `followee`; false when it did not.
    pub async fn unfollow(&self, follower: &str, followee: &str) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let removed = remove_follow(&mut tx, follower, followee).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// `blocker` blocks `blocked`: follows both ways end (as on Mastodon); false when it
    /// already did.
    pub async fn block(&self, blocker: &str, blocked: &str, now: i64) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let added = sqlx::query(
            "INSERT INTO feed_blocks (blocker, blocked, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (blocker, blocked) DO NOTHING",
        )
        .bind(blocker)
        .bind(blocked)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        remove_follow(&mut tx, blocker, blocked).await?;
        remove_follow(&mut tx, blocked, blocker).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Removes a block; false when there was none.
    pub async fn unblock(&self, blocker: &str, blocked: &str) -> Result<bool, InfraError> {
        Ok(
            sqlx::query("DELETE FROM feed_blocks WHERE blocker = $1 AND blocked = $2")
                .bind(blocker)
                .bind(blocked)
                .execute(self.db.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Whether either of the two blocks the other.
    pub async fn blocked_between(&self, a: &str, b: &str) -> Result<bool, InfraError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM feed_blocks WHERE (blocker = $1 AND blocked = $2) OR (blocker = $2 AND blocked = $1)",
        )
        .bind(a)
        .bind(b)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(found.is_some())
    }

    /// `muter` mutes `muted`; false when it already did.
    pub async fn mute(&self, muter: &str, muted: &str, now: i64) -> Result<bool, InfraError> {
        Ok(sqlx::query(
            "INSERT INTO feed_mutes (muter, muted, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (muter, muted) DO NOTHING",
        )
        .bind(muter)
        .bind(muted)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            > 0)
    }

    /// Removes a mute; false when there was none.
    pub async fn unmute(&self, muter: &str, muted: &str) -> Result<bool, InfraError> {
        Ok(
            sqlx::query("DELETE FROM feed_mutes WHERE muter = $1 AND muted = $2")
                .bind(muter)
                .bind(muted)
                .execute(self.db.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Whom `user` follows, blocks (either way) and mutes.
    pub async fn relations(&self, user: &str) -> Result<Relations, InfraError> {
        let followees: Vec<String> =
            sqlx::query_scalar("SELECT followee FROM feed_follows WHERE follower = $1")
                .bind(user)
                .fetch_all(self.db.pool())
                .await?;
        let blocked: Vec<String> = sqlx::query_scalar(
            "SELECT blocked FROM feed_blocks WHERE blocker = $1 \
             UNION SELECT blocker FROM feed_blocks WHERE blocked = $1",
        )
        .bind(user)
        .fetch_all(self.db.pool())
        .await?;
        let muted: Vec<String> =
            sqlx::query_scalar("SELECT muted FROM feed_mutes WHERE muter = $1")
                .bind(user)
                .fetch_all(self.db.pool())
                .await?;
        Ok(Relations {
            followees: followees.into_iter().collect(),
            blocked: blocked.into_iter().collect(),
            muted: muted.into_iter().collect(),
        })
    }

    /// Imports follows (pairs of follower, followee; already validated), in chunks of one
    /// transaction each; follower counts move with them. Returns how many were new.
    pub async fn import_follows(
        &self,
        pairs: &[(String, String)],
        now: i64,
    ) -> Result<u64, InfraError> {
        let mut seen = HashSet::new();
        let pairs: Vec<&(String, String)> = pairs.iter().filter(|p| seen.insert(*p)).collect();
        let mut added = 0;
        for chunk in pairs.chunks(IMPORT_CHUNK) {
            let mut tx = self.db.begin_write().await?;
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${}, $1)", 2 + 2 * i, 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO feed_follows (follower, followee, created_at) VALUES {values} \
                 ON CONFLICT (follower, followee) DO NOTHING RETURNING followee"
            );
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(now);
            for (a, b) in chunk.iter().copied() {
                q = q.bind(a).bind(b);
            }
            let inserted = q.fetch_all(&mut *tx).await?;
            added += inserted.len() as u64;
            let mut counts: HashMap<String, i64> = HashMap::new();
            for followee in inserted {
                *counts.entry(followee).or_default() += 1;
            }
            let counts: Vec<(String, i64)> = counts.into_iter().collect();
            for part in counts.chunks(IMPORT_CHUNK) {
                let values = (0..part.len())
                    .map(|i| format!("(${}, ${})", 1 + 2 * i, 2 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO feed_users (id, follower_count) VALUES {values} \
                     ON CONFLICT (id) DO UPDATE SET follower_count = feed_users.follower_count + excluded.follower_count"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, n) in part {
                    q = q.bind(id).bind(*n);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(added)
    }
}

async fn adjust_followers(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &str,
    delta: i64,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO feed_users (id, follower_count) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET follower_count = feed_users.follower_count + $2",
    )
    .bind(user)
    .bind(delta.max(0))
    .execute(&mut **tx)
    .await?;
    if delta < 0 {
        sqlx::query("UPDATE feed_users SET follower_count = follower_count + $2 WHERE id = $1")
            .bind(user)
            .bind(delta)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn remove_follow(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    follower: &str,
    followee: &str,
) -> Result<bool, InfraError> {
    let removed = sqlx::query("DELETE FROM feed_follows WHERE follower = $1 AND followee = $2")
        .bind(follower)
        .bind(followee)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        > 0;
    if removed {
        adjust_followers(tx, followee, -1).await?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_show_followees_and_self_unless_hidden() {
        let mut r = Relations::default();
        r.followees.insert("b".into());
        r.followees.insert("c".into());
        r.muted.insert("c".into());
        assert!(r.shows("a", "a"));
        assert!(r.shows("a", "b"));
        assert!(!r.shows("a", "c"));
        assert!(!r.shows("a", "d"));
    }
}
