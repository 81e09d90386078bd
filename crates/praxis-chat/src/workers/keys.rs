//! The key directory of end-to-end encryption: a device uploads its public keys and
//! one-time prekeys; an account that shares a conversation with it reads its keys and claims a
//! one-time prekey (at most once each) to open an Olm session with it.
//!
//! Only contacts (accounts sharing a conversation) may read or claim an account's keys, so a
//! stranger cannot drain a device's one-time prekeys.

use praxis_http::FieldError;

use crate::domain::keys::{
    CLAIM_MAX, Claimed, Device, OneTimePrekey, STOCK_MAX, SignedPrekey, UPLOAD_MAX,
    check_device_id, check_one_time_prekey, check_public_key, check_signed_prekey,
};
use crate::domain::rules::check_account;
use crate::error::ChatError;
use crate::store::keys::{Upload, Uploaded};

use super::{UseCases, now_ms};

/// A device's keys to upload.
#[derive(Debug, Clone, Default)]
pub struct KeysUpload {
    /// Its Curve25519 identity key (required the first time; never changes).
    pub identity_key: Option<String>,
    /// Its Ed25519 signing key (required the first time; never changes).
    pub signing_key: Option<String>,
    /// A new signed prekey.
    pub signed_prekey: Option<SignedPrekey>,
    /// More one-time prekeys.
    pub one_time_prekeys: Vec<OneTimePrekey>,
}

/// One device a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimTarget {
    /// The account.
    pub account: String,
    /// Its device.
    pub device_id: String,
}

impl UseCases {
    /// Registers `me`'s device `device_id`, or adds to its prekeys. Returns the device.
    pub async fn upload_keys(
        &self,
        me: &str,
        device_id: &str,
        up: &KeysUpload,
    ) -> Result<Device, ChatError> {
        let mut errors = Vec::new();
        if let Err(m) = check_device_id(device_id) {
            errors.push(FieldError::new("device_id", m));
        }
        for (field, key) in [
            ("identity_key", &up.identity_key),
            ("signing_key", &up.signing_key),
        ] {
            if let Some(Err(m)) = key.as_deref().map(check_public_key) {
                errors.push(FieldError::new(field, m));
            }
        }
        if up.identity_key.is_some() != up.signing_key.is_some() {
            errors.push(FieldError::new(
                "signing_key",
                "identity_key and signing_key go together: send both or neither",
            ));
        }
        if let Some(p) = &up.signed_prekey {
            check_signed_prekey("signed_prekey", p, &mut errors);
        }
        if up.one_time_prekeys.len() > UPLOAD_MAX {
            errors.push(FieldError::new(
                "one_time_prekeys",
                format!(
                    "at most {UPLOAD_MAX} per upload, got {}; upload the rest in more calls",
                    up.one_time_prekeys.len()
                ),
            ));
        }
        for (i, k) in up.one_time_prekeys.iter().enumerate() {
            check_one_time_prekey(&format!("one_time_prekeys[{i}]"), k, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ChatError::Invalid(errors));
        }
        let upload = Upload {
            account: me,
            device_id,
            identity: up.identity_key.as_deref().zip(up.signing_key.as_deref()),
            signed_prekey: up.signed_prekey.as_ref(),
            one_time_prekeys: &up.one_time_prekeys,
        };
        match self.store.upload_keys(upload, STOCK_MAX, now_ms()).await? {
            Uploaded::Stored(device) => Ok(device),
            Uploaded::NeedsIdentity => Err(ChatError::state(
                "identity_key",
                format!(
                    "device {device_id} is not registered yet: its first upload needs identity_key and signing_key"
                ),
            )),
            Uploaded::OtherIdentity => Err(ChatError::Conflict(
                "device-keys-differ",
                format!(
                    "device {device_id} is registered with other identity keys; identity keys never change: \
                     delete the device first to register it again"
                ),
            )),
            Uploaded::TooManyKeys { held } => Err(ChatError::Conflict(
                "too-many-prekeys",
                format!(
                    "device {device_id} holds {held} unclaimed one-time prekeys; at most {STOCK_MAX} may wait, \
                     so upload more once some are claimed"
                ),
            )),
        }
    }

    /// The devices of `account`: `me`'s own, or a contact's (someone sharing a conversation).
    pub async fn devices_of(&self, me: &str, account: &str) -> Result<Vec<Device>, ChatError> {
        check_account(account).map_err(|m| ChatError::field("account", m))?;
        self.contact(me, account).await?;
        Ok(self.store.devices(account).await?)
    }

    /// Claims one one-time prekey of each target device (or its signed prekey when it has none
    /// left). Devices that are unknown, or of accounts that are not contacts, are left out.
    pub async fn claim_keys(
        &self,
        me: &str,
        targets: &[ClaimTarget],
    ) -> Result<Vec<Claimed>, ChatError> {
        let mut errors = Vec::new();
        if targets.is_empty() || targets.len() > CLAIM_MAX {
            errors.push(FieldError::new(
                "devices",
                format!("must list 1 to {CLAIM_MAX} devices, got {}", targets.len()),
            ));
        }
        for (i, t) in targets.iter().enumerate() {
            if let Err(m) = check_account(&t.account) {
                errors.push(FieldError::new(format!("devices[{i}].account"), m));
            }
            if let Err(m) = check_device_id(&t.device_id) {
                errors.push(FieldError::new(format!("devices[{i}].device_id"), m));
            }
        }
        if !errors.is_empty() {
            return Err(ChatError::Invalid(errors));
        }
        let accounts: Vec<String> = targets.iter().map(|t| t.account.clone()).collect();
        let contacts = self.store.contacts(me, &accounts).await?;
        let mut claimed = Vec::with_capacity(targets.len());
        for t in targets {
            if t.account != me && !contacts.contains(&t.account) {
                continue;
            }
            if let Some(c) = self
                .store
                .claim(&t.account, &t.device_id, me, now_ms())
                .await?
            {
                claimed.push(c);
            }
        }
        Ok(claimed)
    }

    /// Removes `me`'s device and its prekeys.
    pub async fn delete_device(&self, me: &str, device_id: &str) -> Result<(), ChatError> {
        check_device_id(device_id).map_err(|m| ChatError::field("device_id", m))?;
        if self.store.delete_device(me, device_id).await? {
            Ok(())
        } else {
            Err(ChatError::NotFound(format!(
                "no device {device_id} among yours"
            )))
        }
    }

    /// Checks that the sender of an envelope registered the device it names.
    pub(super) async fn sender_device(&self, me: &str, device_id: &str) -> Result<(), ChatError> {
        if self.store.has_device(me, device_id).await? {
            Ok(())
        } else {
            Err(ChatError::state(
                "encrypted.sender_device",
                format!(
                    "no device {device_id} among yours: register it with PUT /api/v1/chat/devices/{device_id}/keys first"
                ),
            ))
        }
    }

    /// `account` is `me` or shares a conversation with `me`; otherwise not found.
    async fn contact(&self, me: &str, account: &str) -> Result<(), ChatError> {
        if account == me
            || self
                .store
                .contacts(me, &[account.to_owned()])
                .await?
                .contains(account)
        {
            Ok(())
        } else {
            Err(ChatError::NotFound(format!(
                "no account {account} among your contacts (accounts sharing a conversation with you)"
            )))
        }
    }
}
