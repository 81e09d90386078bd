//! The notification service's SQL (except the dispatch queue's, in [`crate::store::queue`]), written
//! once for SQLite and PostgreSQL through sqlx's `Any` driver (`$n` placeholders, `ON
//! CONFLICT`, `RETURNING`; times are unix ms).

pub mod migrations;
pub mod opt_out;
pub mod queue;
pub mod templates;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

// Every dynamic statement below is assembled from constant fragments and numbered
// placeholders only; values are always bound.

use praxis_infra::sql::dialect::statement_chunks;
use praxis_infra::{Backend, Db, InfraError};

use crate::domain::channel::Channel;
use crate::domain::model::{
    AttemptRecord, DeliveryRecord, DeliveryState, DigestSpec, MessageRecord, NewDelivery,
    Preferences, Subscriber, TemplateRecord, TopicRecord,
};

/// Ids per `IN (...)` list (far below both backends' parameter limits).
pub const IN_CHUNK: usize = 500;

const SUBSCRIBER_COLUMNS: &str = "id, email, phone, push_token, webhook_url, timezone, \
     quiet_start, quiet_end, preferences, created_by, created_at, updated_at";

const MESSAGE_COLUMNS: &str = "id, sender, idempotency_key, fingerprint, recipient, subscriber_id, \
     template, template_version, event_type, data, channels, topic, send_at, created_at, expanded_at, \
     digest_window, digest_key, dedupe_window";

/// Columns of a delivery, as [`decode_delivery`] reads them.
pub const DELIVERY_COLUMNS: &str = "id, message_id, subscriber_id, channel, address, state, \
     attempts, retry_base, scheduled_at, next_attempt_at, provider, last_error, created_at, \
     updated_at, delivered_at, digest_key, digest_count, digest_of";

/// What inserting a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The message is new.
    New,
    /// The sender already sent a message with this idempotency key.
    Existing {
        /// Its id.
        id: String,
        /// Its request fingerprint.
        fingerprint: String,
    },
}

/// The notification service's SQL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A store on a migrated database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    // ----- subscribers ------------------------------------------------------------------

    /// Creates or replaces a subscriber; returns whether it was created.
    pub async fn upsert_subscriber(&self, s: &Subscriber) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM notify_subscribers WHERE id = $1")
                .bind(&s.id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            sqlx::query(
                "UPDATE notify_subscribers SET email = $2, phone = $3, push_token = $4, webhook_url = $5, \
                 timezone = $6, quiet_start = $7, quiet_end = $8, updated_at = $9 WHERE id = $1",
            )
            .bind(&s.id)
            .bind(&s.email)
            .bind(&s.phone)
            .bind(&s.push_token)
            .bind(&s.webhook_url)
            .bind(&s.timezone)
            .bind(&s.quiet_start)
            .bind(&s.quiet_end)
            .bind(s.updated_at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO notify_subscribers (id, email, phone, push_token, webhook_url, timezone, \
                 quiet_start, quiet_end, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&s.id)
            .bind(&s.email)
            .bind(&s.phone)
            .bind(&s.push_token)
            .bind(&s.webhook_url)
            .bind(&s.timezone)
            .bind(&s.quiet_start)
            .bind(&s.quiet_end)
            .bind(&s.created_by)
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(exists.is_none())
    }

    /// One subscriber.
    pub async fn subscriber(&self, id: &str) -> Result<Option<Subscriber>, InfraError> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM notify_subscribers WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| decode_subscriber(&r)).transpose()
    }

    /// The subscribers among `ids` that exist (any order).
    pub async fn subscribers(&self, ids: &[String]) -> Result<Vec<Subscriber>, InfraError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.db.pool().acquire().await?;
        self.subscribers_on(&mut conn, ids).await
    }

    /// [`Store::subscribers`] on `conn` (inside a transaction, for example).
    pub async fn subscribers_on(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
    ) -> Result<Vec<Subscriber>, InfraError> {
        select_by_ids(
            conn,
            self.db.backend(),
            SUBSCRIBER_COLUMNS,
            "notify_subscribers",
            ids,
            decode_subscriber,
        )
        .await
    }

    /// Subscribers in id order after `after`, at most `limit`.
    pub async fn list_subscribers(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Subscriber>, InfraError> {
        let sql = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM notify_subscribers WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_subscriber).collect()
    }

    /// Deletes a subscriber; returns whether it existed. Its queued deliveries keep their
    /// addresses and are still sent; its inbox stays.
    pub async fn delete_subscriber(&self, id: &str) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("DELETE FROM notify_subscribers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM notify_topic_subscribers WHERE subscriber_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a subscriber's preferences; returns whether the subscriber exists.
    pub async fn set_preferences(
        &self,
        id: &str,
        preferences: &Preferences,
        now_ms: i64,
    ) -> Result<bool, InfraError> {
        let text = if preferences.is_empty() {
            None
        } else {
            Some(serde_json::to_string(preferences)?)
        };
        let done = sqlx::query(
            "UPDATE notify_subscribers SET preferences = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(text)
        .bind(now_ms)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    // ----- topics -----------------------------------------------------------------------

    /// Creates a topic, or renames it when it exists; returns whether it was created.
    pub async fn upsert_topic(&self, t: &TopicRecord) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "INSERT INTO notify_topics (key, name, created_by, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&t.key)
        .bind(&t.name)
        .bind(&t.created_by)
        .bind(t.created_at)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        if t.name.is_some() {
            sqlx::query("UPDATE notify_topics SET name = $2 WHERE key = $1")
                .bind(&t.key)
                .bind(&t.name)
                .execute(self.db.pool())
                .await?;
        }
        Ok(false)
    }

    /// One topic.
    pub async fn topic(&self, key: &str) -> Result<Option<TopicRecord>, InfraError> {
        let row = sqlx::query(
            "SELECT key, name, created_by, created_at FROM notify_topics WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            Ok(TopicRecord {
                key: r.try_get("key")?,
                name: r.try_get("name")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// The topics among `keys` that exist, read on `conn` (inside a transaction, for example).
    pub async fn existing_topics_on(
        &self,
        conn: &mut AnyConnection,
        keys: &[String],
    ) -> Result<Vec<String>, InfraError> {
        let mut out = Vec::new();
        for chunk in statement_chunks(keys, IN_CHUNK) {
            let sql = format!(
                "SELECT key FROM notify_topics WHERE key IN ({})",
                self.db.backend().placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query_scalar(AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k);
            }
            let found: Vec<String> = q.fetch_all(&mut *conn).await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Adds subscribers to a topic (those already in it stay); returns how many were added.
    pub async fn add_topic_subscribers(
        &self,
        key: &str,
        subscriber_ids: &[String],
        now_ms: i64,
    ) -> Result<u64, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let mut added = 0;
        for id in subscriber_ids {
            let done = sqlx::query(
                "INSERT INTO notify_topic_subscribers (topic_key, subscriber_id, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (topic_key, subscriber_id) DO NOTHING",
            )
            .bind(key)
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes a subscriber from a topic; returns whether it was in it.
    pub async fn remove_topic_subscriber(
        &self,
        key: &str,
        subscriber_id: &str,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "DELETE FROM notify_topic_subscribers WHERE topic_key = $1 AND subscriber_id = $2",
        )
        .bind(key)
        .bind(subscriber_id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A topic's subscriber ids in order after `after`, at most `limit`.
    pub async fn topic_subscribers(
        &self,
        key: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, InfraError> {
        Ok(sqlx::query_scalar(
            "SELECT subscriber_id FROM notify_topic_subscribers WHERE topic_key = $1 \
             AND subscriber_id > $2 ORDER BY subscriber_id LIMIT $3",
        )
        .bind(key)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?)
    }

    /// How many subscribers a topic has.
    pub async fn topic_size(&self, key: &str) -> Result<i64, InfraError> {
        Ok(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM notify_topic_subscribers WHERE topic_key = $1",
            )
            .bind(key)
            .fetch_one(self.db.pool())
            .await?,
        )
    }

    // ----- templates --------------------------------------------------------------------

    /// Stores the next version of a template (1 for a new name) and returns its number. Several
    /// writers racing for one name each get their own version.
    pub async fn insert_template_version(
        &self,
        name: &str,
        sources: &serde_json::Value,
        example_data: Option<&serde_json::Value>,
        created_by: &str,
        now_ms: i64,
    ) -> Result<i64, InfraError> {
        let sources = serde_json::to_string(sources)?;
        let example = example_data.map(serde_json::to_string).transpose()?;
        let mut last_error = None;
        for _ in 0..5 {
            let mut tx = self.db.begin_write().await?;
            let latest: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM notify_templates WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
            let version = latest.unwrap_or(0) + 1;
            let inserted = sqlx::query(
                "INSERT INTO notify_templates (name, version, sources, example_data, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, version) DO NOTHING",
            )
            .bind(name)
            .bind(version)
            .bind(&sources)
            .bind(&example)
            .bind(created_by)
            .bind(now_ms)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(done) if done.rows_affected() == 1 => {
                    tx.commit().await?;
                    return Ok(version);
                }
                Ok(_) => {
                    tx.rollback().await?;
                    last_error = Some(InfraError::Timeout(format!(
                        "template {name}: version {version} was taken by a concurrent writer"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_error.unwrap_or_else(|| InfraError::Timeout("template insert".into())))
    }

    /// One version of a template, or its latest when `version` is `None`.
    pub async fn template(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<TemplateRecord>, InfraError> {
        let mut conn = self.db.pool().acquire().await?;
        Self::template_on(&mut conn, name, version).await
    }

    /// [`Store::template`] on `conn`.
    pub async fn template_on(
        conn: &mut AnyConnection,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<TemplateRecord>, InfraError> {
        let row = match version {
            Some(v) => {
                sqlx::query(
                    "SELECT name, version, sources, example_data, created_by, created_at \
                     FROM notify_templates WHERE name = $1 AND version = $2",
                )
                .bind(name)
                .bind(v)
                .fetch_optional(&mut *conn)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT name, version, sources, example_data, created_by, created_at \
                     FROM notify_templates WHERE name = $1 ORDER BY version DESC LIMIT 1",
                )
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?
            }
        };
        row.map(|r| decode_template(&r)).transpose()
    }

    /// The latest version of each template, in name order after `after`, at most `limit`.
    pub async fn list_templates(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TemplateRecord>, InfraError> {
        let rows = sqlx::query(
            "SELECT t.name, t.version, t.sources, t.example_data, t.created_by, t.created_at \
             FROM notify_templates t \
             WHERE t.name > $1 AND t.version = (SELECT MAX(v.version) FROM notify_templates v WHERE v.name = t.name) \
             ORDER BY t.name LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(decode_template).collect()
    }

    // ----- messages ---------------------------------------------------------------------

    /// Inserts a message unless its sender already used its idempotency key.
    pub async fn insert_message(
        conn: &mut AnyConnection,
        m: &MessageRecord,
    ) -> Result<Inserted, InfraError> {
        let channels = serde_json::to_string(&m.channels)?;
        let done = sqlx::query(
            "INSERT INTO notify_messages (id, sender, idempotency_key, fingerprint, recipient, subscriber_id, \
             template, template_version, event_type, data, channels, send_at, created_at, topic, \
             digest_window, digest_key, dedupe_window) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (sender, idempotency_key) DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.sender)
        .bind(&m.idempotency_key)
        .bind(&m.fingerprint)
        .bind(serde_json::to_string(&m.recipient)?)
        .bind(&m.subscriber_id)
        .bind(&m.template)
        .bind(m.template_version)
        .bind(&m.event_type)
        .bind(serde_json::to_string(&m.data)?)
        .bind(channels)
        .bind(m.send_at)
        .bind(m.created_at)
        .bind(&m.topic)
        .bind(m.digest.as_ref().map(|d| d.window_ms))
        .bind(m.digest.as_ref().map(|d| d.key.as_str()))
        .bind(m.dedupe_window_ms)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::New);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT id, fingerprint FROM notify_messages WHERE sender = $1 AND idempotency_key = $2",
        )
        .bind(&m.sender)
        .bind(&m.idempotency_key)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some((id, fingerprint)) => Ok(Inserted::Existing { id, fingerprint }),
            None => Err(InfraError::Codec(format!(
                "message {} conflicted but no message holds its idempotency key",
                m.id
            ))),
        }
    }

    /// One message.
    pub async fn message(&self, id: &str) -> Result<Option<MessageRecord>, InfraError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM notify_messages WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| decode_message(&r)).transpose()
    }

    /// The messages among `ids` (any order), on `conn`.
    pub async fn messages_in(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
    ) -> Result<Vec<MessageRecord>, InfraError> {
        select_by_ids(
            conn,
            self.db.backend(),
            MESSAGE_COLUMNS,
            "notify_messages",
            ids,
            decode_message,
        )
        .await
    }

    /// The messages among `ids` (any order).
    pub async fn messages(&self, ids: &[String]) -> Result<Vec<MessageRecord>, InfraError> {
        let mut conn = self.db.pool().acquire().await?;
        self.messages_in(&mut conn, ids).await
    }

    /// Creates deliveries (those that exist already are kept as they are) and marks their
    /// messages expanded, in one transaction. Returns how many deliveries were created.
    ///
    /// A queued delivery with a `digest_key` joins the open digest batch of its sender,
    /// subscriber, channel, address and key (stored as `digested`, pointing at the batch), or
    /// opens one (see [`crate::workers::digest`]).
    pub async fn expand(
        &self,
        message_ids: &[String],
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<u64, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let mut created = 0;
        // One digest expansion per subscriber at a time, so two events expanded at once
        // cannot both open a batch.
        let digesting: Vec<&str> = deliveries
            .iter()
            .filter(|d| d.digest_key.is_some() && d.state == DeliveryState::Queued)
            .filter_map(|d| d.subscriber_id.as_deref())
            .collect();
        self.db
            .lock_rows(&mut tx, "notify_subscribers", "id", &digesting)
            .await?;
        for d in deliveries {
            if d.state == DeliveryState::Queued
                && let Some(key) = &d.digest_key
            {
                created += Self::expand_digest(&mut tx, d, key, now_ms).await?;
                continue;
            }
            created += Self::insert_delivery(&mut tx, d, d.state, None, now_ms).await?;
        }
        for chunk in statement_chunks(message_ids, IN_CHUNK) {
            let sql = format!(
                "UPDATE notify_messages SET expanded_at = $1 WHERE expanded_at IS NULL AND id IN ({})",
                self.db.backend().placeholders(2, chunk.len(), 1)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now_ms);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Inserts a delivery as `state` (`digest_of`: the batch a `digested` one joined); returns
    /// 1, or 0 when it exists already. A queued one with a digest key is a new batch.
    async fn insert_delivery(
        conn: &mut AnyConnection,
        d: &NewDelivery,
        state: DeliveryState,
        digest_of: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, InfraError> {
        let (next, count) = match state {
            DeliveryState::Digested => (now_ms, 0),
            _ => (d.due_at, i64::from(d.digest_key.is_some())),
        };
        let done = sqlx::query(
            "INSERT INTO notify_deliveries (id, message_id, subscriber_id, channel, address, state, \
             attempts, retry_base, scheduled_at, next_attempt_at, lease_owner, lease_until, last_error, \
             reason, created_at, updated_at, digest_key, digest_count, digest_of, traceparent) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $8, NULL, 0, $9, $9, $10, $10, $11, $12, $13, \
             $14) \
             ON CONFLICT (message_id, channel, address) DO NOTHING",
        )
        .bind(&d.id)
        .bind(&d.message_id)
        .bind(&d.subscriber_id)
        .bind(d.channel.as_str())
        .bind(&d.address)
        .bind(state.as_str())
        .bind(d.due_at)
        .bind(next)
        .bind(&d.reason)
        .bind(now_ms)
        .bind(&d.digest_key)
        .bind(count)
        .bind(digest_of)
        .bind(praxis_infra::trace::current().map(|ctx| ctx.to_string()))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// A digest delivery: joins the open batch (locking it and re-checking that it is still
    /// queued and never attempted, so a batch a dispatcher claimed is never changed) or opens a
    /// new one. Returns how many rows were created (0 when the delivery exists already).
    async fn expand_digest(
        conn: &mut AnyConnection,
        d: &NewDelivery,
        key: &str,
        now_ms: i64,
    ) -> Result<u64, InfraError> {
        let open: Option<String> = sqlx::query_scalar(
            "SELECT d.id FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id \
             WHERE d.subscriber_id = $1 AND d.channel = $2 AND d.digest_key = $3 \
             AND d.state = 'queued' AND d.attempts = 0 AND d.address = $4 AND d.message_id <> $5 \
             AND m.sender = (SELECT s.sender FROM notify_messages s WHERE s.id = $5) \
             ORDER BY d.created_at DESC, d.id DESC LIMIT 1",
        )
        .bind(&d.subscriber_id)
        .bind(d.channel.as_str())
        .bind(key)
        .bind(&d.address)
        .bind(&d.message_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(batch) = open {
            let locked: Option<String> = sqlx::query_scalar(
                "UPDATE notify_deliveries SET updated_at = $2 \
                 WHERE id = $1 AND state = 'queued' AND attempts = 0 RETURNING id",
            )
            .bind(&batch)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
            if locked.is_some() {
                let n =
                    Self::insert_delivery(conn, d, DeliveryState::Digested, Some(&batch), now_ms)
                        .await?;
                if n > 0 {
                    sqlx::query(
                        "UPDATE notify_deliveries SET digest_count = digest_count + 1 WHERE id = $1",
                    )
                    .bind(&batch)
                    .execute(&mut *conn)
                    .await?;
                }
                return Ok(n);
            }
        }
        Self::insert_delivery(conn, d, DeliveryState::Queued, None, now_ms).await
    }

    /// How many deliveries joined the digest batch `batch_id`, and the message ids of the
    /// latest `limit` of them (newest first).
    pub async fn digest_members(
        &self,
        batch_id: &str,
        limit: u32,
    ) -> Result<(i64, Vec<String>), InfraError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM notify_deliveries WHERE digest_of = $1")
                .bind(batch_id)
                .fetch_one(self.db.pool())
                .await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT message_id FROM notify_deliveries WHERE digest_of = $1 \
             ORDER BY created_at DESC, message_id DESC LIMIT $2",
        )
        .bind(batch_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        Ok((count, ids))
    }

    /// The deliveries among `ids` (any order).
    pub async fn deliveries(&self, ids: &[String]) -> Result<Vec<DeliveryRecord>, InfraError> {
        let mut conn = self.db.pool().acquire().await?;
        select_by_ids(
            &mut conn,
            self.db.backend(),
            DELIVERY_COLUMNS,
            "notify_deliveries",
            ids,
            decode_delivery,
        )
        .await
    }

    // ----- deliveries -------------------------------------------------------------------

    /// The deliveries of a message, by channel.
    pub async fn deliveries_of(&self, message_id: &str) -> Result<Vec<DeliveryRecord>, InfraError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE message_id = $1 ORDER BY channel, address"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_delivery).collect()
    }

    /// One delivery.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, InfraError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| decode_delivery(&r)).transpose()
    }

    /// Every attempt of the given deliveries, by delivery and number.
    pub async fn attempts_of(
        &self,
        delivery_ids: &[String],
    ) -> Result<Vec<AttemptRecord>, InfraError> {
        let mut out = Vec::new();
        for chunk in statement_chunks(delivery_ids, IN_CHUNK) {
            let sql = format!(
                "SELECT delivery_id, n, at, provider, ok, detail, duration_ms FROM notify_attempts \
                 WHERE delivery_id IN ({}) ORDER BY delivery_id, n",
                self.db.backend().placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.db.pool()).await? {
                out.push(AttemptRecord {
                    delivery_id: row.try_get("delivery_id")?,
                    n: row.try_get("n")?,
                    at: row.try_get("at")?,
                    provider: row.try_get("provider")?,
                    ok: row.try_get::<i64, _>("ok")? != 0,
                    detail: row.try_get("detail")?,
                    duration_ms: row.try_get("duration_ms")?,
                });
            }
        }
        Ok(out)
    }

    /// Failed deliveries (dead letters), newest first, after the cursor `(updated_at, id)`,
    /// optionally of one channel; at most `limit`.
    pub async fn dead_letters(
        &self,
        channel: Option<Channel>,
        before: Option<&(i64, String)>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, InfraError> {
        let (at, id) = before.cloned().unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE state = 'failed' \
             AND ($1 = '' OR channel = $1) \
             AND (updated_at < $2 OR (updated_at = $2 AND ($3 = '' OR id < $3))) \
             ORDER BY updated_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(channel.map_or("", Channel::as_str))
            .bind(at)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(decode_delivery).collect()
    }

    /// How many inbox rows a subscriber has.
    pub async fn inbox_count(&self, subscriber_id: &str) -> Result<i64, InfraError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM notify_inbox WHERE subscriber_id = $1")
                .bind(subscriber_id)
                .fetch_one(self.db.pool())
                .await?,
        )
    }
}

/// The rows of `table` whose `id` is among `ids` (any order), `columns` decoded by `decode`,
/// read on `conn` in chunks of [`IN_CHUNK`] ids.
async fn select_by_ids<T>(
    conn: &mut AnyConnection,
    backend: Backend,
    columns: &str,
    table: &str,
    ids: &[String],
    decode: fn(&AnyRow) -> Result<T, InfraError>,
) -> Result<Vec<T>, InfraError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in statement_chunks(ids, IN_CHUNK) {
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE id IN ({})",
            backend.placeholders(1, chunk.len(), 1)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.push(decode(&row)?);
        }
    }
    Ok(out)
}

fn decode_subscriber(row: &AnyRow) -> Result<Subscriber, InfraError> {
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        push_token: row.try_get("push_token")?,
        webhook_url: row.try_get("webhook_url")?,
        timezone: row.try_get("timezone")?,
        quiet_start: row.try_get("quiet_start")?,
        quiet_end: row.try_get("quiet_end")?,
        preferences: match row.try_get::<Option<String>, _>("preferences")? {
            Some(text) => serde_json::from_str(&text)?,
            None => Preferences::default(),
        },
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_template(row: &AnyRow) -> Result<TemplateRecord, InfraError> {
    let sources: String = row.try_get("sources")?;
    let example: Option<String> = row.try_get("example_data")?;
    Ok(TemplateRecord {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        sources: serde_json::from_str(&sources)?,
        example_data: example.map(|e| serde_json::from_str(&e)).transpose()?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn decode_message(row: &AnyRow) -> Result<MessageRecord, InfraError> {
    let recipient: String = row.try_get("recipient")?;
    let data: String = row.try_get("data")?;
    let channels: String = row.try_get("channels")?;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        sender: row.try_get("sender")?,
        idempotency_key: row.try_get("idempotency_key")?,
        fingerprint: row.try_get("fingerprint")?,
        recipient: serde_json::from_str(&recipient)?,
        subscriber_id: row.try_get("subscriber_id")?,
        template: row.try_get("template")?,
        template_version: row.try_get("template_version")?,
        event_type: row.try_get("event_type")?,
        data: serde_json::from_str(&data)?,
        channels: serde_json::from_str(&channels)?,
        topic: row.try_get("topic")?,
        send_at: row.try_get("send_at")?,
        created_at: row.try_get("created_at")?,
        expanded_at: row.try_get("expanded_at")?,
        digest: match (
            row.try_get::<Option<i64>, _>("digest_window")?,
            row.try_get::<Option<String>, _>("digest_key")?,
        ) {
            (Some(window_ms), Some(key)) => Some(DigestSpec { window_ms, key }),
            _ => None,
        },
        dedupe_window_ms: row.try_get("dedupe_window")?,
    })
}

/// Decodes a row selected with [`DELIVERY_COLUMNS`].
pub fn decode_delivery(row: &AnyRow) -> Result<DeliveryRecord, InfraError> {
    let channel: String = row.try_get("channel")?;
    let state: String = row.try_get("state")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        subscriber_id: row.try_get("subscriber_id")?,
        channel: Channel::parse(&channel).ok_or_else(|| {
            InfraError::Codec(format!("unknown channel {channel:?} in notify_deliveries"))
        })?,
        address: row.try_get("address")?,
        state: DeliveryState::parse(&state).ok_or_else(|| {
            InfraError::Codec(format!("unknown state {state:?} in notify_deliveries"))
        })?,
        attempts: row.try_get("attempts")?,
        retry_base: row.try_get("retry_base")?,
        scheduled_at: row.try_get("scheduled_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        provider: row.try_get("provider")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
        digest_key: row.try_get("digest_key")?,
        digest_count: row.try_get("digest_count")?,
        digest_of: row.try_get("digest_of")?,
    })
}
