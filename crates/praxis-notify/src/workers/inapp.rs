//! The in-app channel and the inbox it fills.
//!
//! - **Delivery** ([`deliver`]): a delivery is a row in `notify_inbox`, written in the same
//!   transaction that completes the delivery, so it is stored exactly once (the row's id is the
//!   delivery's id, and the completion only commits while the lease is held). After the commit
//!   the item is published on `platform.broadcaster` (channel [`feed_channel`] of the
//!   subscriber), which reaches the live streams of every process (at most once: a stream that
//!   misses it catches up from the table with `Last-Event-ID`).
//! - **Reading** ([`Inbox`]): the inbox SQL (list newest first, mark read, read all, unread
//!   count, replay after an item) and the live feed of one subscriber.
//! - **Subscriber tokens** ([`Inbox::token`]): `hex(HMAC-SHA256(k, subscriber id))` with `k`
//!   derived from the webhook secret, so a subscriber (a browser) can read its own inbox and
//!   nobody else's.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use praxis_infra::broadcast::Broadcaster;
use praxis_infra::{Db, InfraError};

use crate::domain::model::now_ms;
use crate::store::Store;
use crate::store::queue::{AttemptLog, Claimed, Outcome, Queue};
use crate::workers::channels::Outgoing;

/// Most items one replay (`Last-Event-ID`, or catching up after the feed lagged) sends.
pub const REPLAY_MAX: u32 = 1000;
/// How often a live stream sends a heartbeat comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Ids a live stream remembers to drop an item it already sent (replay and feed overlap).
const SEEN_MAX: usize = 4096;

const ITEM_COLUMNS: &str = "id, subscriber_id, message_id, title, body, data, created_at, read_at";

/// One inbox item (a delivered in-app notification). Times are unix ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Item id (= the delivery's id, UUIDv7).
    pub id: String,
    /// Whose inbox.
    pub subscriber_id: String,
    /// The message it came from.
    pub message_id: String,
    /// Title (the template's in-app subject).
    pub title: String,
    /// Body (the template's in-app text).
    pub body: String,
    /// The message's template data.
    pub data: serde_json::Value,
    /// When it was stored.
    pub created_at: i64,
    /// When it was read, if it was.
    pub read_at: Option<i64>,
}

impl InboxItem {
    /// The pagination key (newest first: `created_at DESC, id DESC`).
    pub fn key(&self) -> (i64, String) {
        (self.created_at, self.id.clone())
    }
}

fn decode_item(row: &AnyRow) -> Result<InboxItem, InfraError> {
    let data: String = row.try_get("data")?;
    Ok(InboxItem {
        id: row.try_get("id")?,
        subscriber_id: row.try_get("subscriber_id")?,
        message_id: row.try_get("message_id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        data: serde_json::from_str(&data)?,
        created_at: row.try_get("created_at")?,
        read_at: row.try_get("read_at")?,
    })
}

/// The broadcast channel of a subscriber's new items: `notify-inbox.<first 32 hex digits of
/// SHA-256(subscriber id)>` (subscriber ids may hold characters channel names may not).
pub fn feed_channel(subscriber_id: &str) -> String {
    let digest = Sha256::digest(subscriber_id.as_bytes());
    format!("notify-inbox.{}", hex(&digest[..16]))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The key of subscriber tokens: `HMAC-SHA256(token_secret, "praxis-notify inbox token v1")`.
fn token_key(token_secret: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token_secret.trim().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"praxis-notify inbox token v1");
    mac.finalize().into_bytes().into()
}

fn token_mac(key: &[u8; 32], subscriber_id: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(subscriber_id.as_bytes());
    mac
}

fn token(key: &[u8; 32], subscriber_id: &str) -> String {
    hex(&token_mac(key, subscriber_id).finalize().into_bytes())
}

fn verify(key: &[u8; 32], subscriber_id: &str, token: &str) -> bool {
    match unhex(token.trim()) {
        Some(tag) => token_mac(key, subscriber_id).verify_slice(&tag).is_ok(),
        None => false,
    }
}

/// Writes the inbox row of `row` and completes it as delivered; after the commit, publishes
/// the item to the subscriber's live streams in every process. `Ok(None)`: the lease was lost
/// and nothing was written.
pub async fn deliver(
    store: &Store,
    broadcaster: &Broadcaster,
    row: &Claimed,
    message: &Outgoing,
    started: Instant,
) -> Result<Option<i64>, InfraError> {
    let now = now_ms();
    let item = InboxItem {
        id: row.id.clone(),
        subscriber_id: row.address.clone(),
        message_id: row.message_id.clone(),
        title: message.subject.clone(),
        body: message.text.clone(),
        data: message.data.clone(),
        created_at: now,
        read_at: None,
    };
    let mut tx = store.db().begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO notify_inbox (id, subscriber_id, message_id, title, body, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&item.id)
    .bind(&item.subscriber_id)
    .bind(&item.message_id)
    .bind(&item.title)
    .bind(&item.body)
    .bind(serde_json::to_string(&item.data)?)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let log = AttemptLog {
        provider: "in_app".to_owned(),
        ok: true,
        detail: "stored in the inbox".to_owned(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    let n = Queue::complete_in(&mut tx, row, &Outcome::Delivered, &log, now).await?;
    if n.is_some() {
        tx.commit().await?;
        if inserted > 0 {
            publish(broadcaster, &item).await;
        }
    } else {
        tx.rollback().await?;
    }
    Ok(n)
}

/// Publishes a new item to its subscriber's live streams; a failure is logged (streams that
/// miss it catch up with `Last-Event-ID`).
pub async fn publish(broadcaster: &Broadcaster, item: &InboxItem) {
    let payload = match serde_json::to_vec(item) {
        Ok(p) => Bytes::from(p),
        Err(e) => {
            tracing::warn!(item = %item.id, error = %e, "inbox item not published");
            return;
        }
    };
    if let Err(e) = broadcaster
        .publish(&feed_channel(&item.subscriber_id), payload)
        .await
    {
        tracing::warn!(item = %item.id, error = %e, "inbox item not published to live streams");
    }
}

/// The inbox: its SQL, its live feed and its subscriber tokens. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    db: Db,
    broadcaster: Broadcaster,
    shutdown: CancellationToken,
    token_key: [u8; 32],
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("broadcaster", &self.broadcaster)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// The inbox on `db`; live streams end when `shutdown` is cancelled. Subscriber tokens are
    /// keyed by `HMAC-SHA256(token_secret, "praxis-notify inbox token v1")` (a key of their
    /// own, derived from the secret every process shares).
    pub fn new(
        db: Db,
        broadcaster: Broadcaster,
        shutdown: CancellationToken,
        token_secret: &str,
    ) -> Self {
        Self {
            db,
            broadcaster,
            shutdown,
            token_key: token_key(token_secret),
        }
    }

    /// The subscriber token of `subscriber_id`: 64 hex digits.
    pub fn token(&self, subscriber_id: &str) -> String {
        token(&self.token_key, subscriber_id)
    }

    /// Whether `token` is the token of `subscriber_id` (constant-time comparison).
    pub fn verify(&self, subscriber_id: &str, token: &str) -> bool {
        verify(&self.token_key, subscriber_id, token)
    }

    /// Whether the subscriber exists.
    pub async fn subscriber_exists(&self, subscriber_id: &str) -> Result<bool, InfraError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM notify_subscribers WHERE id = $1")
                .bind(subscriber_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` items of a subscriber, newest first, strictly after `before` in that order
    /// (a page's last key); only unread ones with `unread_only`.
    pub async fn list(
        &self,
        subscriber_id: &str,
        unread_only: bool,
        before: Option<&(i64, String)>,
        limit: u32,
    ) -> Result<Vec<InboxItem>, InfraError> {
        let (at, id) = before.cloned().unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notify_inbox WHERE subscriber_id = $1 \
             AND ($2 = 0 OR read_at IS NULL) \
             AND (created_at < $3 OR (created_at = $3 AND ($4 = '' OR id < $4))) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(subscriber_id)
            .bind(i64::from(unread_only))
            .bind(at)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_item).collect()
    }

    /// One item of a subscriber.
    pub async fn get(
        &self,
        subscriber_id: &str,
        id: &str,
    ) -> Result<Option<InboxItem>, InfraError> {
        let sql =
            format!("SELECT {ITEM_COLUMNS} FROM notify_inbox WHERE id = $1 AND subscriber_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(subscriber_id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode_item).transpose()
    }

    /// Up to `limit` items of a subscriber after `key` in time order (oldest first): what a
    /// stream missed.
    pub async fn after(
        &self,
        subscriber_id: &str,
        key: &(i64, String),
        limit: u32,
    ) -> Result<Vec<InboxItem>, InfraError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM notify_inbox WHERE subscriber_id = $1 \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
             ORDER BY created_at, id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(subscriber_id)
            .bind(key.0)
            .bind(&key.1)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_item).collect()
    }

    /// Marks an item read (an item already read keeps its first `read_at`); `None` when the
    /// subscriber has no such item.
    pub async fn mark_read(
        &self,
        subscriber_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<InboxItem>, InfraError> {
        sqlx::query(
            "UPDATE notify_inbox SET read_at = $3 \
             WHERE id = $1 AND subscriber_id = $2 AND read_at IS NULL",
        )
        .bind(id)
        .bind(subscriber_id)
        .bind(now_ms)
        .execute(self.db.pool())
        .await?;
        self.get(subscriber_id, id).await
    }

    /// Marks every unread item of a subscriber read; returns how many were unread.
    pub async fn read_all(&self, subscriber_id: &str, now_ms: i64) -> Result<u64, InfraError> {
        Ok(sqlx::query(
            "UPDATE notify_inbox SET read_at = $2 WHERE subscriber_id = $1 AND read_at IS NULL",
        )
        .bind(subscriber_id)
        .bind(now_ms)
        .execute(self.db.pool())
        .await?
        .rows_affected())
    }

    /// How many unread items a subscriber has.
    pub async fn unread_count(&self, subscriber_id: &str) -> Result<i64, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM notify_inbox WHERE subscriber_id = $1 AND read_at IS NULL",
        )
        .bind(subscriber_id)
        .fetch_one(self.db.pool())
        .await?)
    }

    /// The live feed of a subscriber: with `last_event_id`, first the items stored after that
    /// one (at most [`REPLAY_MAX`]; nothing when the id is not one of the subscriber's items),
    /// then every new item as it is delivered, in any process. The feed subscribes before it
    /// reads the table, so nothing falls between; an item both replayed and published is sent
    /// once. When this process's feed lags, it catches up from the table.
    pub async fn feed(
        &self,
        subscriber_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<Feed, InfraError> {
        let rx = self.broadcaster.subscribe(&feed_channel(subscriber_id));
        let mut feed = Feed {
            inbox: self.clone(),
            subscriber_id: subscriber_id.to_owned(),
            rx,
            pending: VecDeque::new(),
            // Catching up after a lag starts from the opening when nothing was sent yet.
            last: Some((now_ms(), String::new())),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        };
        if let Some(last) = last_event_id
            && let Some(item) = self.get(subscriber_id, last).await?
        {
            feed.last = Some(item.key());
            feed.pending
                .extend(self.after(subscriber_id, &item.key(), REPLAY_MAX).await?);
        }
        Ok(feed)
    }
}

/// A live feed of one subscriber's new items (see [`Inbox::feed`]).
pub struct Feed {
    inbox: Inbox,
    subscriber_id: String,
    rx: broadcast::Receiver<Bytes>,
    pending: VecDeque<InboxItem>,
    last: Option<(i64, String)>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("subscriber_id", &self.subscriber_id)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// The next item; `None` when the process shuts down.
    pub async fn next(&mut self) -> Option<InboxItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if !self.remember(&item.id) {
                    continue;
                }
                if self.last.as_ref().is_none_or(|l| item.key() > *l) {
                    self.last = Some(item.key());
                }
                return Some(item);
            }
            let received = tokio::select! {
                () = self.inbox.shutdown.cancelled() => return None,
                r = self.rx.recv() => r,
            };
            match received {
                Ok(payload) => match serde_json::from_slice::<InboxItem>(&payload) {
                    Ok(item) if item.subscriber_id == self.subscriber_id => {
                        self.pending.push_back(item);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "undecodable inbox feed message"),
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, subscriber = %self.subscriber_id, "inbox feed lagged; catching up from the table");
                    if let Some(last) = self.last.clone() {
                        match self
                            .inbox
                            .after(&self.subscriber_id, &last, REPLAY_MAX)
                            .await
                        {
                            Ok(items) => self.pending.extend(items),
                            Err(e) => tracing::warn!(error = %e, "inbox catch-up failed"),
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Records `id` as sent; false when it already was.
    fn remember(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_owned()) {
            return false;
        }
        self.seen_order.push_back(id.to_owned());
        if self.seen_order.len() > SEEN_MAX
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_subscriber() {
        let key = token_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let t = token(&key, "u1");
        assert_eq!(t.len(), 64);
        assert!(verify(&key, "u1", &t));
        assert!(verify(&key, "u1", &t.to_uppercase()));
        assert!(!verify(&key, "u2", &t));
        assert!(!verify(&key, "u1", &t[..62]));
        assert!(!verify(&key, "u1", "not hex"));
        assert!(!verify(&token_key("whsec_other"), "u1", &t));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn feed_channels_are_valid_broadcast_names() {
        let c = feed_channel("user 42/ü");
        assert!(c.starts_with("notify-inbox."));
        assert_eq!(c.len(), "notify-inbox.".len() + 32);
        assert_ne!(c, feed_channel("user-42"));
    }
}
