//! Presence: who is online or away now, and when each account was last seen. Ephemeral state,
//! never in the database: an entry lives `ttl` after the last heartbeat of one of the
//! account's connections, so a process that dies takes its accounts offline by itself.
//!
//! Two adapters, chosen from the platform: Redis when it has one (keys
//! `<prefix>:chat:presence:<account>` with a TTL, and `<prefix>:chat:seen:<account>` kept
//! [`SEEN_KEEP`]), so every process sees the same; a map in this process otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use praxis_infra::InfraError;
use redis::aio::ConnectionManager;

/// How long "last seen" is kept after the last heartbeat.
pub const SEEN_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// What an account shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A connection is open and its client is in use.
    Online,
    /// A connection is open, its client says the user is away.
    Away,
    /// No connection beat within the TTL.
    Offline,
}

impl Status {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Offline => "offline",
        }
    }

    /// Reads a stored or wire name.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "online" => Some(Status::Online),
            "away" => Some(Status::Away),
            "offline" => Some(Status::Offline),
            _ => None,
        }
    }
}

/// One account's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The account.
    pub account: String,
    /// What it shows now.
    pub status: Status,
    /// Its last heartbeat, unix ms (`None`: never seen, or longer ago than [`SEEN_KEEP`]).
    pub last_seen: Option<i64>,
}

/// The presence store. Cheap to clone.
#[derive(Clone)]
pub enum Presences {
    /// In this process.
    Memory(Arc<Mutex<HashMap<String, Entry>>>),
    /// In Redis, shared by every process.
    Redis {
        /// The connection.
        conn: ConnectionManager,
        /// The platform's key prefix.
        prefix: String,
    },
}

/// A memory entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    status: Status,
    until: Instant,
    seen: i64,
}

impl std::fmt::Debug for Presences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Presences::Memory(_) => "Presences::Memory",
            Presences::Redis { .. } => "Presences::Redis",
        })
    }
}

impl Presences {
    /// Redis when `conn` is given, memory otherwise.
    pub fn new(conn: Option<ConnectionManager>, prefix: &str) -> Self {
        match conn {
            Some(conn) => Presences::Redis {
                conn,
                prefix: prefix.to_owned(),
            },
            None => Presences::Memory(Arc::new(Mutex::new(HashMap::new()))),
        }
    }

    /// A heartbeat: `account` shows `status` for `ttl`; seen at `now` (unix ms).
    pub async fn beat(
        &self,
        account: &str,
        status: Status,
        ttl: Duration,
        now: i64,
    ) -> Result<(), InfraError> {
        match self {
            Presences::Memory(map) => {
                map.lock().insert(
                    account.to_owned(),
                    Entry {
                        status,
                        until: Instant::now() + ttl,
                        seen: now,
                    },
                );
                Ok(())
            }
            Presences::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(key(prefix, "presence", account))
                    .arg(status.as_str())
                    .arg("PX")
                    .arg(ttl_ms)
                    .ignore();
                seen(&mut pipe, prefix, account, now)
                    .query_async::<()>(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// `account` went offline at `now` (its last connection here closed).
    pub async fn leave(&self, account: &str, now: i64) -> Result<(), InfraError> {
        match self {
            Presences::Memory(map) => {
                let mut map = map.lock();
                if let Some(entry) = map.get_mut(account) {
                    entry.status = Status::Offline;
                    entry.seen = now;
                }
                Ok(())
            }
            Presences::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let mut pipe = redis::pipe();
                pipe.cmd("DEL")
                    .arg(key(prefix, "presence", account))
                    .ignore();
                seen(&mut pipe, prefix, account, now)
                    .query_async::<()>(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// The presence of each of `accounts`, in order.
    pub async fn get(&self, accounts: &[String]) -> Result<Vec<Presence>, InfraError> {
        match self {
            Presences::Memory(map) => {
                let map = map.lock();
                let now = Instant::now();
                Ok(accounts
                    .iter()
                    .map(|account| match map.get(account) {
                        Some(e) => Presence {
                            account: account.clone(),
                            status: if e.until > now {
                                e.status
                            } else {
                                Status::Offline
                            },
                            last_seen: Some(e.seen),
                        },
                        None => Presence {
                            account: account.clone(),
                            status: Status::Offline,
                            last_seen: None,
                        },
                    })
                    .collect())
            }
            Presences::Redis { conn, prefix } => {
                if accounts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("MGET");
                for account in accounts {
                    cmd.arg(key(prefix, "presence", account));
                    cmd.arg(key(prefix, "seen", account));
                }
                let values: Vec<Option<String>> = cmd.query_async(&mut conn).await?;
                Ok(accounts
                    .iter()
                    .zip(values.chunks(2))
                    .map(|(account, pair)| Presence {
                        account: account.clone(),
                        status: pair
                            .first()
                            .and_then(|s| s.as_deref())
                            .and_then(Status::parse)
                            .unwrap_or(Status::Offline),
                        last_seen: pair.get(1).and_then(|s| s.as_deref()?.parse().ok()),
                    })
                    .collect())
            }
        }
    }
}

/// Adds "`account` was seen at `now`" to `pipe`.
fn seen<'a>(
    pipe: &'a mut redis::Pipeline,
    prefix: &str,
    account: &str,
    now: i64,
) -> &'a mut redis::Pipeline {
    pipe.cmd("SET")
        .arg(key(prefix, "seen", account))
        .arg(now)
        .arg("EX")
        .arg(SEEN_KEEP.as_secs())
        .ignore()
}

fn key(prefix: &str, kind: &str, account: &str) -> String {
    format!("{prefix}:chat:{kind}:{account}")
}
