//! All SQL of the chat, one code path for SQLite and PostgreSQL (sqlx `Any`).
//!
//! Ordering: a send takes the conversation's row (the `UPDATE` that increments `last_seq`)
//! before it inserts, and commits both together. Senders of one conversation are serialised on
//! that row; senders of different conversations never wait for each other on PostgreSQL. A
//! failed send rolls the increment back, so the sequence has no gaps.

pub mod keys;
pub mod migrations;
pub mod presence;

use praxis_infra::{Db, InfraError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::domain::keys::{Content, Encrypted};
use crate::domain::model::{Conversation, Kind, Listed, Member, Message, Role};
use crate::domain::rules::direct_key;

const CONVERSATION_COLUMNS: &str = "c.id, c.kind, c.title, c.direct_key, c.created_by, c.created_at, c.last_seq, c.last_at, \
     c.encrypted";
const MEMBER_COLUMNS: &str = "m.account, m.role, m.joined_at, m.read_seq, m.delivered_seq";
const MESSAGE_COLUMNS: &str = "m.conversation_id, m.seq, m.sender, m.client_id, m.body, \
     m.encrypted, m.created_at, m.edited_at, m.deleted_at";

/// Which page of a conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The newest messages.
    Latest,
    /// Messages with a sequence above this one, oldest first.
    After(i64),
    /// Messages with a sequence below this one, the nearest first.
    Before(i64),
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored under the next sequence number.
    Stored(Message),
    /// The sender had already sent this client id: the first copy, unchanged.
    Existing(Message),
    /// The sender is not a member (or the conversation does not exist).
    NotMember,
    /// Plain text sent to an encrypted conversation (`true`), or ciphertext to one that is not
    /// (`false`).
    WrongContent {
        /// Whether the conversation is encrypted.
        encrypted: bool,
    },
}

/// What adding a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The account joined.
    Joined,
    /// The account was a member; its role is now the one asked for.
    RoleSet,
    /// The group already has `max_members` members.
    Full,
}

/// The chat's tables.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// The store on `db` (the chat's migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The direct conversation of `a` and `b`, created (with `id`, encrypted or not) when there
    /// is none; `true` when this call created it. An existing one keeps its own `encrypted`.
    pub async fn open_direct(
        &self,
        id: &str,
        a: &str,
        b: &str,
        encrypted: bool,
        now: i64,
    ) -> Result<(Conversation, bool), InfraError> {
        let key = direct_key(a, b);
        let mut tx = self.db.begin_write().await?;
        let created = sqlx::query(
            "INSERT INTO chat_conversations \
             (id, kind, title, direct_key, created_by, created_at, last_seq, last_at, encrypted) \
             VALUES ($1, 'direct', NULL, $2, $3, $4, 0, $4, $5) \
             ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(id)
        .bind(&key)
        .bind(a)
        .bind(now)
        .bind(i64::from(encrypted))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            for account in [a, b] {
                insert_member(&mut tx, id, account, Role::Owner, now).await?;
            }
        }
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c WHERE c.direct_key = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
        let conversation = conversation_of(&row)?;
        tx.commit().await?;
        Ok((conversation, created))
    }

    /// Creates a group (encrypted or not) with `owner` as its owner and `members` (not
    /// containing `owner`) as members.
    pub async fn create_group(
        &self,
        id: &str,
        owner: &str,
        title: &str,
        members: &[String],
        encrypted: bool,
        now: i64,
    ) -> Result<Conversation, InfraError> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO chat_conversations \
             (id, kind, title, direct_key, created_by, created_at, last_seq, last_at, encrypted) \
             VALUES ($1, 'group', $2, NULL, $3, $4, 0, $4, $5)",
        )
        .bind(id)
        .bind(title)
        .bind(owner)
        .bind(now)
        .bind(i64::from(encrypted))
        .execute(&mut *tx)
        .await?;
        insert_member(&mut tx, id, owner, Role::Owner, now).await?;
        for account in members {
            insert_member(&mut tx, id, account, Role::Member, now).await?;
        }
        tx.commit().await?;
        Ok(Conversation {
            id: id.to_owned(),
            kind: Kind::Group,
            title: Some(title.to_owned()),
            direct_key: None,
            created_by: owner.to_owned(),
            created_at: now,
            last_seq: 0,
            last_at: now,
            encrypted,
        })
    }

    /// `account`'s membership of `conversation`, with the conversation: one query.
    pub async fn membership(
        &self,
        conversation: &str,
        account: &str,
    ) -> Result<Option<(Conversation, Member)>, InfraError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, {MEMBER_COLUMNS} FROM chat_members m \
             JOIN chat_conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = $1 AND m.account = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation)
            .bind(account)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref()
            .map(|row| Ok((conversation_of(row)?, member_of(row)?)))
            .transpose()
    }

    /// Every member of `conversation`, in joining order.
    pub async fn members(&self, conversation: &str) -> Result<Vec<Member>, InfraError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM chat_members m \
             WHERE m.conversation_id = $1 ORDER BY m.joined_at, m.account"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(member_of).collect()
    }

    /// Adds `account` to the group with `role`, or sets its role when it is a member already.
    pub async fn add_member(
        &self,
        conversation: &str,
        account: &str,
        role: Role,
        max_members: usize,
        now: i64,
    ) -> Result<Added, InfraError> {
        let mut tx = self.db.begin_write().await?;
        touch(&mut tx, conversation, now).await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT role FROM chat_members WHERE conversation_id = $1 AND account = $2",
        )
        .bind(conversation)
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let added = if current.is_some() {
            sqlx::query(
                "UPDATE chat_members SET role = $3 WHERE conversation_id = $1 AND account = $2",
            )
            .bind(conversation)
            .bind(account)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
            Added::RoleSet
        } else {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM chat_members WHERE conversation_id = $1")
                    .bind(conversation)
                    .fetch_one(&mut *tx)
                    .await?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= max_members {
                return Ok(Added::Full);
            }
            insert_member(&mut tx, conversation, account, role, now).await?;
            Added::Joined
        };
        tx.commit().await?;
        Ok(added)
    }

    /// Removes `account` from the group. When the last owner leaves and members remain, the
    /// longest-standing member becomes an owner (returned). `None` when it was not a member.
    pub async fn remove_member(
        &self,
        conversation: &str,
        account: &str,
        now: i64,
    ) -> Result<Option<Option<String>>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        touch(&mut tx, conversation, now).await?;
        let removed =
            sqlx::query("DELETE FROM chat_members WHERE conversation_id = $1 AND account = $2")
                .bind(conversation)
                .bind(account)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if removed == 0 {
            return Ok(None);
        }
        let owners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM chat_members WHERE conversation_id = $1 AND role = 'owner'",
        )
        .bind(conversation)
        .fetch_one(&mut *tx)
        .await?;
        let mut promoted = None;
        if owners == 0 {
            let next: Option<String> = sqlx::query_scalar(
                "SELECT account FROM chat_members WHERE conversation_id = $1 \
                 ORDER BY joined_at, account LIMIT 1",
            )
            .bind(conversation)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(next) = next {
                sqlx::query(
                    "UPDATE chat_members SET role = 'owner' \
                     WHERE conversation_id = $1 AND account = $2",
                )
                .bind(conversation)
                .bind(&next)
                .execute(&mut *tx)
                .await?;
                promoted = Some(next);
            }
        }
        tx.commit().await?;
        Ok(Some(promoted))
    }

    /// Stores a message from `sender` under the conversation's next sequence number, or finds
    /// the one it already sent with `client_id`. The sender's read marker moves to it. The
    /// content must match the conversation: ciphertext if it is encrypted, text if not.
    pub async fn send(
        &self,
        conversation: &str,
        sender: &str,
        client_id: &str,
        content: Content<'_>,
        now: i64,
    ) -> Result<Sent, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let encrypted: Option<i64> = sqlx::query_scalar(
            "SELECT c.encrypted FROM chat_members m JOIN chat_conversations c \
             ON c.id = m.conversation_id WHERE m.conversation_id = $1 AND m.account = $2",
        )
        .bind(conversation)
        .bind(sender)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(encrypted) = encrypted.map(|e| e != 0) else {
            return Ok(Sent::NotMember);
        };
        let (body, envelope) = split(content)?;
        if encrypted != envelope.is_some() {
            return Ok(Sent::WrongContent { encrypted });
        }
        // Takes the conversation's row: the senders of this conversation queue here.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE chat_conversations SET last_seq = last_seq + 1, last_at = $2 \
             WHERE id = $1 RETURNING last_seq",
        )
        .bind(conversation)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // Checked under the row lock, so two resends of one client id cannot both insert.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m \
             WHERE m.conversation_id = $1 AND m.sender = $2 AND m.client_id = $3"
        );
        let existing = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation)
            .bind(sender)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            // Dropping the transaction rolls the increment back.
            return Ok(Sent::Existing(message_of(&row)?));
        }
        sqlx::query(
            "INSERT INTO chat_messages (conversation_id, seq, sender, client_id, body, \
             encrypted, created_at, edited_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)",
        )
        .bind(conversation)
        .bind(seq)
        .bind(sender)
        .bind(client_id)
        .bind(body)
        .bind(envelope.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE chat_members SET read_seq = $3, delivered_seq = $3 \
             WHERE conversation_id = $1 AND account = $2",
        )
        .bind(conversation)
        .bind(sender)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Sent::Stored(Message {
            conversation_id: conversation.to_owned(),
            seq,
            sender: sender.to_owned(),
            client_id: client_id.to_owned(),
            body: body.map(str::to_owned),
            encrypted: match content {
                Content::Encrypted(e) => Some(e.clone()),
                Content::Text(_) => None,
            },
            created_at: now,
            edited_at: None,
            deleted_at: None,
        }))
    }

    /// A page of history, oldest first, at most `limit` messages.
    pub async fn history(
        &self,
        conversation: &str,
        window: Window,
        limit: u32,
    ) -> Result<Vec<Message>, InfraError> {
        let (filter, order, bound) = match window {
            Window::Latest => ("", "DESC", None),
            Window::After(seq) => ("AND m.seq > $3", "ASC", Some(seq)),
            Window::Before(seq) => ("AND m.seq < $3", "DESC", Some(seq)),
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.conversation_id = $1 {filter} \
             ORDER BY m.seq {order} LIMIT $2"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation)
            .bind(i64::from(limit));
        if let Some(bound) = bound {
            q = q.bind(bound);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        let mut messages = rows.iter().map(message_of).collect::<Result<Vec<_>, _>>()?;
        if order == "DESC" {
            messages.reverse();
        }
        Ok(messages)
    }

    /// The message `seq` of `conversation`.
    pub async fn message(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Option<Message>, InfraError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.conversation_id = $1 AND m.seq = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation)
            .bind(seq)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(message_of).transpose()
    }

    /// Replaces the content of a message that is not deleted; `false` when it is.
    pub async fn edit(
        &self,
        conversation: &str,
        seq: i64,
        content: Content<'_>,
        now: i64,
    ) -> Result<bool, InfraError> {
        let (body, envelope) = split(content)?;
        let done = sqlx::query(
            "UPDATE chat_messages SET body = $3, encrypted = $4, edited_at = $5 \
             WHERE conversation_id = $1 AND seq = $2 AND deleted_at IS NULL",
        )
        .bind(conversation)
        .bind(seq)
        .bind(body)
        .bind(envelope.as_deref())
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns a message into a tombstone (its body is dropped); `false` when it already is one.
    pub async fn delete(&self, conversation: &str, seq: i64, now: i64) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE chat_messages SET body = NULL, encrypted = NULL, deleted_at = $3 \
             WHERE conversation_id = $1 AND seq = $2 AND deleted_at IS NULL",
        )
        .bind(conversation)
        .bind(seq)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves `account`'s read marker up to `seq` (never down), and its delivery marker with
    /// it; returns both markers `(delivered_seq, read_seq)`.
    pub async fn mark_read(
        &self,
        conversation: &str,
        account: &str,
        seq: i64,
    ) -> Result<(i64, i64), InfraError> {
        sqlx::query(
            "UPDATE chat_members SET read_seq = $3, \
               delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END \
             WHERE conversation_id = $1 AND account = $2 AND read_seq < $3",
        )
        .bind(conversation)
        .bind(account)
        .bind(seq)
        .execute(self.db.pool())
        .await?;
        self.markers(conversation, account).await
    }

    /// Moves `account`'s delivery marker up to `seq` (never down); returns both markers
    /// `(delivered_seq, read_seq)`.
    pub async fn mark_delivered(
        &self,
        conversation: &str,
        account: &str,
        seq: i64,
    ) -> Result<(i64, i64), InfraError> {
        sqlx::query(
            "UPDATE chat_members SET delivered_seq = $3 \
             WHERE conversation_id = $1 AND account = $2 AND delivered_seq < $3",
        )
        .bind(conversation)
        .bind(account)
        .bind(seq)
        .execute(self.db.pool())
        .await?;
        self.markers(conversation, account).await
    }

    async fn markers(&self, conversation: &str, account: &str) -> Result<(i64, i64), InfraError> {
        let row = sqlx::query(
            "SELECT delivered_seq, read_seq FROM chat_members \
             WHERE conversation_id = $1 AND account = $2",
        )
        .bind(conversation)
        .bind(account)
        .fetch_one(self.db.pool())
        .await?;
        Ok((row.try_get("delivered_seq")?, row.try_get("read_seq")?))
    }

    /// The lowest sequence still stored in `conversation` (`None`: none is).
    pub async fn first_seq(&self, conversation: &str) -> Result<Option<i64>, InfraError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(seq) FROM chat_messages WHERE conversation_id = $1",
        )
        .bind(conversation)
        .fetch_one(self.db.pool())
        .await?)
    }

    /// Deletes up to `batch` messages stored before `cutoff` (unix ms); returns how many.
    pub async fn prune(&self, cutoff: i64, batch: i64) -> Result<u64, InfraError> {
        let done = sqlx::query(
            "DELETE FROM chat_messages WHERE (conversation_id, seq) IN \
             (SELECT conversation_id, seq FROM chat_messages WHERE created_at < $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Those of `accounts` that share a conversation with `me`.
    pub async fn contacts(
        &self,
        me: &str,
        accounts: &[String],
    ) -> Result<std::collections::HashSet<String>, InfraError> {
        let sql = format!(
            "SELECT DISTINCT other.account FROM chat_members mine \
             JOIN chat_members other ON other.conversation_id = mine.conversation_id \
             WHERE mine.account = $1 AND other.account IN ({})",
            self.db.backend().placeholders(2, accounts.len(), 1)
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(me);
        for account in accounts {
            q = q.bind(account);
        }
        Ok(q.fetch_all(self.db.pool()).await?.into_iter().collect())
    }

    /// `account`'s conversations, newest activity first, after the cursor `(last_at, id)`.
    pub async fn list(
        &self,
        account: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Listed>, InfraError> {
        let (at, id) = after.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, mb.read_seq, \
               lm.sender AS lm_sender, lm.client_id AS lm_client_id, lm.body AS lm_body, \
               lm.encrypted AS lm_encrypted, \
               lm.created_at AS lm_created_at, lm.edited_at AS lm_edited_at, \
               lm.deleted_at AS lm_deleted_at \
             FROM chat_members mb JOIN chat_conversations c ON c.id = mb.conversation_id \
             LEFT JOIN chat_messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
             WHERE mb.account = $1 AND (c.last_at < $2 OR (c.last_at = $2 AND c.id < $3)) \
             ORDER BY c.last_at DESC, c.id DESC LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(account)
            .bind(at)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let conversation = conversation_of(row)?;
                let sender: Option<String> = row.try_get("lm_sender")?;
                let last_message = match sender {
                    Some(sender) => Some(Message {
                        conversation_id: conversation.id.clone(),
                        seq: conversation.last_seq,
                        sender,
                        client_id: row.try_get("lm_client_id")?,
                        body: row.try_get("lm_body")?,
                        encrypted: envelope_of(row.try_get("lm_encrypted")?)?,
                        created_at: row.try_get("lm_created_at")?,
                        edited_at: row.try_get("lm_edited_at")?,
                        deleted_at: row.try_get("lm_deleted_at")?,
                    }),
                    None => None,
                };
                Ok(Listed {
                    read_seq: row.try_get("read_seq")?,
                    conversation,
                    last_message,
                })
            })
            .collect()
    }
}

/// Marks activity on the conversation, taking its row until the transaction ends.
async fn touch(tx: &mut AnyConnection, conversation: &str, now: i64) -> Result<(), InfraError> {
    sqlx::query("UPDATE chat_conversations SET last_at = $2 WHERE id = $1")
        .bind(conversation)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn insert_member(
    tx: &mut AnyConnection,
    conversation: &str,
    account: &str,
    role: Role,
    now: i64,
) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO chat_members \
         (conversation_id, account, role, joined_at, read_seq, delivered_seq) \
         VALUES ($1, $2, $3, $4, 0, 0)",
    )
    .bind(conversation)
    .bind(account)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn conversation_of(row: &AnyRow) -> Result<Conversation, InfraError> {
    let kind: String = row.try_get("kind")?;
    Ok(Conversation {
        id: row.try_get("id")?,
        kind: Kind::parse(&kind).ok_or_else(|| {
            InfraError::Codec(format!("chat: unknown conversation kind {kind:?}"))
        })?,
        title: row.try_get("title")?,
        direct_key: row.try_get("direct_key")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        last_seq: row.try_get("last_seq")?,
        last_at: row.try_get("last_at")?,
        encrypted: row.try_get::<i64, _>("encrypted")? != 0,
    })
}

fn member_of(row: &AnyRow) -> Result<Member, InfraError> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        account: row.try_get("account")?,
        role: Role::parse(&role)
            .ok_or_else(|| InfraError::Codec(format!("chat: unknown member role {role:?}")))?,
        joined_at: row.try_get("joined_at")?,
        read_seq: row.try_get("read_seq")?,
        delivered_seq: row.try_get("delivered_seq")?,
    })
}

fn message_of(row: &AnyRow) -> Result<Message, InfraError> {
    Ok(Message {
        conversation_id: row.try_get("conversation_id")?,
        seq: row.try_get("seq")?,
        sender: row.try_get("sender")?,
        client_id: row.try_get("client_id")?,
        body: row.try_get("body")?,
        encrypted: envelope_of(row.try_get("encrypted")?)?,
        created_at: row.try_get("created_at")?,
        edited_at: row.try_get("edited_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

/// A content as its two columns: the text, or the envelope as JSON.
fn split(content: Content<'_>) -> Result<(Option<&str>, Option<String>), InfraError> {
    Ok(match content {
        Content::Text(text) => (Some(text), None),
        Content::Encrypted(e) => (
            None,
            Some(serde_json::to_string(e).map_err(|e| {
                InfraError::Codec(format!("chat: an envelope does not encode: {e}"))
            })?),
        ),
    })
}

/// The stored envelope column.
fn envelope_of(column: Option<String>) -> Result<Option<Encrypted>, InfraError> {
    column
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                InfraError::Codec(format!("chat: a stored envelope does not decode: {e}"))
            })
        })
        .transpose()
}
