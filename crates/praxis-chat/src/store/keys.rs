//! The key directory: devices with their public keys, and one-time prekeys claimed at most
//! once.
//!
//! A claim takes the oldest unclaimed one-time prekey of a device and marks it claimed in one
//! statement. On PostgreSQL the row is picked `FOR UPDATE SKIP LOCKED`, so concurrent claims
//! for one device take different keys and never wait for each other; SQLite has one writer,
//! so its statements cannot interleave. A claimed row stays (with `claimed_at`), so a key id
//! uploaded again is ignored rather than handed out a second time.

use praxis_infra::InfraError;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::Store;
use crate::domain::keys::{Claimed, Device, OneTimePrekey, SignedPrekey};

const DEVICE_COLUMNS: &str = "d.account, d.device_id, d.identity_key, d.signing_key, \
     d.prekey_id, d.prekey, d.prekey_signature, d.created_at, d.updated_at, \
     (SELECT COUNT(*) FROM chat_one_time_keys k WHERE k.account = d.account \
      AND k.device_id = d.device_id AND k.claimed_at IS NULL) AS free_keys";

/// A device's keys as uploaded.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The account.
    pub account: &'a str,
    /// The device.
    pub device_id: &'a str,
    /// Its identity keys `(curve25519, ed25519)`: required when the device is new, and equal
    /// to the stored ones when it is not.
    pub identity: Option<(&'a str, &'a str)>,
    /// A new signed prekey, replacing the current one.
    pub signed_prekey: Option<&'a SignedPrekey>,
    /// More one-time prekeys (ids already stored are ignored).
    pub one_time_prekeys: &'a [OneTimePrekey],
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// Stored: the device as it is now.
    Stored(Device),
    /// The device is new and the upload has no identity keys.
    NeedsIdentity,
    /// The device is registered with other identity keys.
    OtherIdentity,
    /// The device would hold more than `max` unclaimed one-time prekeys.
    TooManyKeys {
        /// How many it holds now.
        held: i64,
    },
}

impl Store {
    /// Registers a device or updates its prekeys, in one transaction.
    pub async fn upload_keys(
        &self,
        up: Upload<'_>,
        stock_max: i64,
        now: i64,
    ) -> Result<Uploaded, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let stored: Option<(String, String)> = sqlx::query_as(
            "SELECT identity_key, signing_key FROM chat_devices \
             WHERE account = $1 AND device_id = $2",
        )
        .bind(up.account)
        .bind(up.device_id)
        .fetch_optional(&mut *tx)
        .await?;
        match (&stored, up.identity) {
            (None, None) => return Ok(Uploaded::NeedsIdentity),
            (None, Some((curve, ed))) => {
                sqlx::query(
                    "INSERT INTO chat_devices (account, device_id, identity_key, signing_key, \
                     prekey_id, prekey, prekey_signature, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, $5)",
                )
                .bind(up.account)
                .bind(up.device_id)
                .bind(curve)
                .bind(ed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            (Some((curve, ed)), Some((new_curve, new_ed)))
                if curve != new_curve || ed != new_ed =>
            {
                return Ok(Uploaded::OtherIdentity);
            }
            (Some(_), _) => {}
        }
        if let Some(p) = up.signed_prekey {
            sqlx::query(
                "UPDATE chat_devices SET prekey_id = $3, prekey = $4, prekey_signature = $5, \
                 updated_at = $6 WHERE account = $1 AND device_id = $2",
            )
            .bind(up.account)
            .bind(up.device_id)
            .bind(&p.key_id)
            .bind(&p.key)
            .bind(&p.signature)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !up.one_time_prekeys.is_empty() {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM chat_one_time_keys \
                 WHERE account = $1 AND device_id = $2 AND claimed_at IS NULL",
            )
            .bind(up.account)
            .bind(up.device_id)
            .fetch_one(&mut *tx)
            .await?;
            if held + up.one_time_prekeys.len() as i64 > stock_max {
                return Ok(Uploaded::TooManyKeys { held });
            }
            for k in up.one_time_prekeys {
                sqlx::query(
                    "INSERT INTO chat_one_time_keys \
                     (account, device_id, key_id, key, signature, created_at, claimed_at, claimed_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL) \
                     ON CONFLICT (account, device_id, key_id) DO NOTHING",
                )
                .bind(up.account)
                .bind(up.device_id)
                .bind(&k.key_id)
                .bind(&k.key)
                .bind(k.signature.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let device = device_in(&mut tx, up.account, up.device_id)
            .await?
            .ok_or_else(|| InfraError::Codec("chat: an uploaded device is gone".to_owned()))?;
        tx.commit().await?;
        Ok(Uploaded::Stored(device))
    }

    /// `account`'s devices, by id.
    pub async fn devices(&self, account: &str) -> Result<Vec<Device>, InfraError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM chat_devices d WHERE d.account = $1 ORDER BY d.device_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(account)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(device_of).collect()
    }

    /// Whether `account` has registered `device_id`.
    pub async fn has_device(&self, account: &str, device_id: &str) -> Result<bool, InfraError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM chat_devices WHERE account = $1 AND device_id = $2")
                .bind(account)
                .bind(device_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }

    /// Claims one one-time prekey of `device_id` of `account` for `claimer`; `None` when the
    /// device is not registered.
    pub async fn claim(
        &self,
        account: &str,
        device_id: &str,
        claimer: &str,
        now: i64,
    ) -> Result<Option<Claimed>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let Some(device) = device_in(&mut tx, account, device_id).await? else {
            return Ok(None);
        };
        let sql = format!(
            "UPDATE chat_one_time_keys SET claimed_at = $3, claimed_by = $4 \
             WHERE account = $1 AND device_id = $2 AND key_id = \
             (SELECT key_id FROM chat_one_time_keys WHERE account = $1 AND device_id = $2 \
              AND claimed_at IS NULL ORDER BY created_at, key_id LIMIT 1{}) \
             AND claimed_at IS NULL RETURNING key_id, key, signature",
            self.db.backend().skip_locked()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(account)
            .bind(device_id)
            .bind(now)
            .bind(claimer)
            .fetch_optional(&mut *tx)
            .await?;
        let one_time_prekey = row
            .map(|r| -> Result<OneTimePrekey, InfraError> {
                Ok(OneTimePrekey {
                    key_id: r.try_get("key_id")?,
                    key: r.try_get("key")?,
                    signature: r.try_get("signature")?,
                })
            })
            .transpose()?;
        tx.commit().await?;
        let mut device = device;
        if one_time_prekey.is_some() {
            device.one_time_prekeys -= 1;
        }
        Ok(Some(Claimed {
            device,
            one_time_prekey,
        }))
    }

    /// Removes a device and its prekeys; `false` when there was none.
    pub async fn delete_device(&self, account: &str, device_id: &str) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM chat_one_time_keys WHERE account = $1 AND device_id = $2")
            .bind(account)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM chat_devices WHERE account = $1 AND device_id = $2")
            .bind(account)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn device_in(
    conn: &mut sqlx::AnyConnection,
    account: &str,
    device_id: &str,
) -> Result<Option<Device>, InfraError> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM chat_devices d WHERE d.account = $1 AND d.device_id = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(account)
        .bind(device_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(device_of).transpose()
}

fn device_of(row: &AnyRow) -> Result<Device, InfraError> {
    let prekey_id: Option<String> = row.try_get("prekey_id")?;
    let prekey: Option<String> = row.try_get("prekey")?;
    let signature: Option<String> = row.try_get("prekey_signature")?;
    let signed_prekey = match (prekey_id, prekey, signature) {
        (Some(key_id), Some(key), Some(signature)) => Some(SignedPrekey {
            key_id,
            key,
            signature,
        }),
        _ => None,
    };
    Ok(Device {
        account: row.try_get("account")?,
        device_id: row.try_get("device_id")?,
        identity_key: row.try_get("identity_key")?,
        signing_key: row.try_get("signing_key")?,
        signed_prekey,
        one_time_prekeys: row.try_get("free_keys")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
