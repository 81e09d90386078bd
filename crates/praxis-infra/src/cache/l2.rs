//! Redis L2: JSON-encoded `Option<V>` under `<prefix>:cache:<name>:<key>`, written with `SET .. PX`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::InfraError;

pub(super) struct L2 {
    conn: redis::aio::ConnectionManager,
    key_prefix: String,
}

impl L2 {
    pub(super) fn new(conn: redis::aio::ConnectionManager, prefix: &str, name: &str) -> Self {
        L2 {
            conn,
            key_prefix: format!("{prefix}:cache:{name}:"),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// `Some(entry)` when L2 holds the key (the entry itself may be negative).
    pub(super) async fn get<V: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Option<V>>, InfraError> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?;
        match raw {
            None => Ok(None),
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        }
    }

    pub(super) async fn set<V: Serialize>(
        &self,
        key: &str,
        value: &Option<V>,
        ttl: Duration,
    ) -> Result<(), InfraError> {
        let bytes = serde_json::to_vec(value)?;
        let px = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.key(key))
            .arg(bytes)
            .arg("PX")
            .arg(px)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), InfraError> {
        let mut conn = self.conn.clone();
        let _removed: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
