//! Hydration of home pages from the platform cache port: posts by id and each viewer's
//! relations, so a page whose posts and relations are cached is answered without the
//! database.
//!
//! Two named caches of [`praxis_infra::cache`], L1 only (bounded by `post_cache_capacity` and
//! `relations_cache_capacity`):
//! - `feed.posts`: post id -> the post as stored (deleted ones included, so a delete seen by
//!   a load is filtered like one seen in the table). Misses of one page are read in one
//!   query and filled together.
//! - `feed.relations`: viewer -> whom they follow, block (either way) and mute.
//!
//! Invalidation: deleting or editing a post, and every follow, block and mute change, drop
//! the keys concerned in this process at once and in every other process through the
//! platform broadcaster (Redis pub/sub scaled): the other processes drop them when the
//! message arrives, milliseconds later. The Redis L2 of the cache port is not used: a miss
//! would cost one Redis round trip per post, where the database reads a page's misses in one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use praxis_infra::InfraError;
use praxis_infra::cache::{Cache, CacheFactory, CacheOptions};
use serde::{Deserialize, Serialize};

use crate::domain::model::Post;
use crate::store::{Relations, Store};

/// Name of the post cache (L1 per process; invalidations on `cache.feed.posts`).
pub const POSTS_CACHE: &str = "feed.posts";
/// Name of the relations cache (L1 per process; invalidations on `cache.feed.relations`).
pub const RELATIONS_CACHE: &str = "feed.relations";

/// How long a cached post lives without an invalidation (the bound of a load that races with
/// a delete: see [`Hydrator::invalidate_post`]).
pub const POST_TTL: Duration = Duration::from_secs(600);
/// When a post's second invalidation runs (see [`Hydrator::invalidate_post`]).
pub const REINVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// How long cached relations live without an invalidation.
pub const RELATIONS_TTL: Duration = Duration::from_secs(120);

/// A cached value shared between readers: a hit clones a pointer, not the value.
#[derive(Debug, Default)]
pub struct Shared<T>(pub Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| Shared(Arc::new(v)))
    }
}

/// Posts and relations from the cache, the database on a miss. Cheap to clone.
#[derive(Clone)]
pub struct Hydrator {
    store: Store,
    posts: Cache<Shared<Post>>,
    relations: Cache<Shared<Relations>>,
}

impl std::fmt::Debug for Hydrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hydrator")
            .field("posts", &self.posts.entry_count())
            .field("relations", &self.relations.entry_count())
            .finish()
    }
}

impl Hydrator {
    /// The two caches, built from `caches` (inside a tokio runtime).
    pub fn new(
        store: Store,
        caches: &CacheFactory,
        post_capacity: u64,
        relations_capacity: u64,
    ) -> Self {
        let opts = |capacity, ttl| CacheOptions {
            capacity,
            ttl,
            negative_ttl: Duration::from_secs(30),
            jitter: 0.1,
            use_l2: false,
        };
        Self {
            store,
            posts: caches.build(POSTS_CACHE, opts(post_capacity, POST_TTL)),
            relations: caches.build(RELATIONS_CACHE, opts(relations_capacity, RELATIONS_TTL)),
        }
    }

    /// The posts among `ids` that `viewer` sees on the home timeline (not deleted, by the
    /// viewer or a followee, no block either way, not muted), newest first.
    pub async fn visible(&self, viewer: &str, ids: &[i64]) -> Result<Vec<Post>, InfraError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let relations = self.relations(viewer).await?;
        let mut posts: Vec<Post> = self
            .posts(ids)
            .await?
            .into_iter()
            .filter(|p| p.deleted_at.is_none() && relations.shows(viewer, &p.author))
            .map(Arc::unwrap_or_clone)
            .collect();
        posts.sort_by_key(|p| std::cmp::Reverse(p.id));
        Ok(posts)
    }

    /// `viewer`'s relations, cached.
    pub async fn relations(&self, viewer: &str) -> Result<Arc<Relations>, InfraError> {
        let store = &self.store;
        let found = self
            .relations
            .get_or_load(viewer, || async move {
                Ok(Some(Shared(Arc::new(store.relations(viewer).await?))))
            })
            .await?;
        Ok(found.map(|r| r.0).unwrap_or_default())
    }

    /// The posts with these ids that exist (deleted ones included), in no particular order:
    /// hits from the cache, misses in one query, then cached (negative entries for ids that
    /// do not exist).
    pub async fn posts(&self, ids: &[i64]) -> Result<Vec<Arc<Post>>, InfraError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.posts.get(&id.to_string()).await {
                Some(Some(p)) => out.push(p.0),
                Some(None) => {}
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut loaded: HashMap<i64, Post> = self
            .store
            .posts(&missing)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        for id in missing {
            let post = loaded.remove(&id).map(|p| Shared(Arc::new(p)));
            // Fills L1 with what was just read (the loader runs only if nothing else did).
            let cached = self
                .posts
                .get_or_load(&id.to_string(), || async move { Ok(post) })
                .await?;
            out.extend(cached.map(|p| p.0));
        }
        Ok(out)
    }

    /// Drops post `id` from every process's cache: after a delete or an edit, once the
    /// database has it. This process at once; others when the broadcast arrives (Redis
    /// pub/sub: milliseconds). A page load that read the post before the change and fills
    /// the cache after this call would keep the old version: a second invalidation
    /// [`REINVALIDATE_AFTER`] later drops it (loads take milliseconds), and the TTL
    /// ([`POST_TTL`]) bounds it if that one fails.
    pub async fn invalidate_post(&self, id: i64) -> Result<(), InfraError> {
        let key = id.to_string();
        let first = self.posts.invalidate(&key).await;
        let posts = self.posts.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REINVALIDATE_AFTER).await;
            if let Err(e) = posts.invalidate(&key).await {
                tracing::warn!(post = %key, error = %e, "second post cache invalidation failed; the TTL bounds it");
            }
        });
        first
    }

    /// Drops the cached relations of `users` in every process: after a follow, block or mute
    /// change of theirs.
    pub async fn invalidate_relations<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), InfraError> {
        let mut first = Ok(());
        for u in users {
            if let Err(e) = self.relations.invalidate(u).await
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// Posts and relations cached in this process.
    pub fn entry_counts(&self) -> (u64, u64) {
        (self.posts.entry_count(), self.relations.entry_count())
    }
}
