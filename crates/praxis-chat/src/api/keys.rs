//! The key directory of end-to-end encryption: upload a device's keys, read a contact's
//! devices, claim one-time prekeys, delete a device. The server keeps public keys only and
//! checks their shape, never their cryptography.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use praxis_http::responses::{Conflict, Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Require};

use super::auth::{ChatRead, ChatWrite};
use super::dto::rfc3339;
use super::{AppState, TAG, check_account};
use crate::domain::keys::{Claimed, Device, OneTimePrekey, SignedPrekey};
use crate::workers::keys::{ClaimTarget, KeysUpload};

/// A signed prekey: a Curve25519 key and the Ed25519 signature of its base64 string by the
/// device's signing key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChatSignedPrekey)]
pub struct SignedPrekeyBody {
    /// The client's id for it (1 to 64 base64 characters or `. _ : -`).
    #[schema(example = "AAAAAQ", pattern = "^[A-Za-z0-9+/=._:-]{1,64}$")]
    pub key_id: String,
    /// The public key: base64 of 32 bytes.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$")]
    pub key: String,
    /// The Ed25519 signature of `key`: base64 of 64 bytes.
    #[schema(pattern = "^[A-Za-z0-9+/]{85}[AQgw](==)?$")]
    pub signature: String,
}

/// A one-time prekey, handed out by at most one claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChatOneTimePrekey)]
pub struct OneTimePrekeyBody {
    /// The client's id for it (1 to 64 base64 characters or `. _ : -`).
    #[schema(example = "AAAAAg", pattern = "^[A-Za-z0-9+/=._:-]{1,64}$")]
    pub key_id: String,
    /// The public key: base64 of 32 bytes.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$")]
    pub key: String,
    /// An Ed25519 signature of `key` (base64 of 64 bytes), if the client signs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9+/]{85}[AQgw](==)?$")]
    pub signature: Option<String>,
}

/// Body of `PUT /api/v1/chat/devices/{device_id}/keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadKeys {
    /// The device's Curve25519 identity key (base64 of 32 bytes): required the first time,
    /// and never changes.
    #[serde(default)]
    pub identity_key: Option<String>,
    /// The device's Ed25519 signing key (base64 of 32 bytes): with `identity_key`.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// A new signed prekey, replacing the current one.
    #[serde(default)]
    pub signed_prekey: Option<SignedPrekeyBody>,
    /// More one-time prekeys, at most 100 per upload and 1000 waiting; ids already uploaded
    /// are ignored.
    #[serde(default)]
    pub one_time_prekeys: Vec<OneTimePrekeyBody>,
}

/// Body of `PUT /api/v1/chat/devices/{device_id}/keys` as the OpenAPI document states it:
/// `identity_key` and `signing_key` together (a device's first upload) or neither.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChatUploadKeys {
    /// With the device's identity keys.
    WithIdentity(ChatUploadWithIdentity),
    /// Prekeys only (a registered device).
    Prekeys(ChatUploadPrekeys),
}

/// An upload with the device's identity keys.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the key upload in the OpenAPI document")]
pub struct ChatUploadWithIdentity {
    /// The device's Curve25519 identity key (base64 of 32 bytes); it never changes.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$")]
    identity_key: String,
    /// The device's Ed25519 signing key (base64 of 32 bytes).
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$")]
    signing_key: String,
    /// A new signed prekey, replacing the current one.
    #[serde(default)]
    signed_prekey: Option<SignedPrekeyBody>,
    /// More one-time prekeys, at most 100 per upload.
    #[serde(default)]
    #[schema(max_items = 100)]
    one_time_prekeys: Vec<OneTimePrekeyBody>,
}

/// An upload of prekeys only (the device's first upload needs its identity keys: 409 without).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the key upload in the OpenAPI document")]
pub struct ChatUploadPrekeys {
    /// A new signed prekey, replacing the current one.
    #[serde(default)]
    signed_prekey: Option<SignedPrekeyBody>,
    /// More one-time prekeys, at most 100 per upload.
    #[serde(default)]
    #[schema(max_items = 100)]
    one_time_prekeys: Vec<OneTimePrekeyBody>,
}

/// A device in the key directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ChatDevice)]
pub struct DeviceView {
    /// Its account.
    pub account: String,
    /// Its id.
    pub device_id: String,
    /// Its Curve25519 identity key (base64).
    pub identity_key: String,
    /// Its Ed25519 signing key (base64).
    pub signing_key: String,
    /// Its signed prekey, once uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_prekey: Option<SignedPrekeyBody>,
    /// One-time prekeys waiting to be claimed (shown to the device's own account only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_prekeys: Option<i64>,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When its keys last changed (RFC 3339).
    pub updated_at: String,
}

impl DeviceView {
    /// The view of `d` for `me`.
    fn new(d: &Device, me: &str) -> Self {
        Self {
            account: d.account.clone(),
            device_id: d.device_id.clone(),
            identity_key: d.identity_key.clone(),
            signing_key: d.signing_key.clone(),
            signed_prekey: d.signed_prekey.as_ref().map(SignedPrekeyBody::from),
            one_time_prekeys: (d.account == me).then_some(d.one_time_prekeys),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// An account's devices.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ChatDeviceList)]
pub struct DeviceList {
    /// By device id.
    pub devices: Vec<DeviceView>,
}

/// One device to claim a prekey of.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDevice {
    /// The account (the caller, or one sharing a conversation with the caller).
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub account: String,
    /// Its device.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub device_id: String,
}

/// Body of `POST /api/v1/chat/keys/claim`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimKeys {
    /// 1 to 100 devices.
    #[schema(min_items = 1, max_items = 100)]
    pub devices: Vec<ClaimDevice>,
}

/// What a claim gave for one device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimedKey {
    /// The account.
    pub account: String,
    /// The device.
    pub device_id: String,
    /// Its Curve25519 identity key (base64).
    pub identity_key: String,
    /// Its Ed25519 signing key (base64): verify the prekeys' signatures with it.
    pub signing_key: String,
    /// Its signed prekey: use it when `one_time_prekey` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_prekey: Option<SignedPrekeyBody>,
    /// The one-time prekey this claim took (no other claim gets it); absent when the device
    /// had none left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_prekey: Option<OneTimePrekeyBody>,
}

/// The answer of a claim.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimedKeys {
    /// One entry per device claimed; unknown devices, and devices of accounts that share no
    /// conversation with the caller, are left out.
    pub claimed: Vec<ClaimedKey>,
}

impl From<&SignedPrekey> for SignedPrekeyBody {
    fn from(p: &SignedPrekey) -> Self {
        Self {
            key_id: p.key_id.clone(),
            key: p.key.clone(),
            signature: p.signature.clone(),
        }
    }
}

impl From<SignedPrekeyBody> for SignedPrekey {
    fn from(p: SignedPrekeyBody) -> Self {
        Self {
            key_id: p.key_id,
            key: p.key,
            signature: p.signature,
        }
    }
}

impl From<&OneTimePrekey> for OneTimePrekeyBody {
    fn from(p: &OneTimePrekey) -> Self {
        Self {
            key_id: p.key_id.clone(),
            key: p.key.clone(),
            signature: p.signature.clone(),
        }
    }
}

impl From<OneTimePrekeyBody> for OneTimePrekey {
    fn from(p: OneTimePrekeyBody) -> Self {
        Self {
            key_id: p.key_id,
            key: p.key,
            signature: p.signature,
        }
    }
}

impl From<&Claimed> for ClaimedKey {
    fn from(c: &Claimed) -> Self {
        Self {
            account: c.device.account.clone(),
            device_id: c.device.device_id.clone(),
            identity_key: c.device.identity_key.clone(),
            signing_key: c.device.signing_key.clone(),
            signed_prekey: c.device.signed_prekey.as_ref().map(SignedPrekeyBody::from),
            one_time_prekey: c.one_time_prekey.as_ref().map(OneTimePrekeyBody::from),
        }
    }
}

/// Register my device's keys, or add prekeys to it.
///
/// The first upload of a device needs `identity_key` and `signing_key`; they never change
/// (409 if different: delete the device to register it again). A `signed_prekey` replaces
/// the current one. `one_time_prekeys` are added (ids already uploaded are ignored).
#[utoipa::path(
    put,
    path = "/api/v1/chat/devices/{device_id}/keys",
    tag = TAG,
    params(("device_id" = String, Path, description = "The device (1 to 64 of A-Z a-z 0-9 . _ : -)", pattern = "^[A-Za-z0-9._:-]{1,64}$")),
    request_body = ChatUploadKeys,
    responses(
        (status = 200, description = "The device as stored, with its count of waiting one-time prekeys", body = DeviceView),
        (status = 400, description = "Invalid keys; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Conflict,
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path(device_id): Path<String>,
    Json(req): Json<UploadKeys>,
) -> Result<Json<DeviceView>, Problem> {
    let me = who.subject();
    let up = KeysUpload {
        identity_key: req.identity_key,
        signing_key: req.signing_key,
        signed_prekey: req.signed_prekey.map(SignedPrekey::from),
        one_time_prekeys: req
            .one_time_prekeys
            .into_iter()
            .map(OneTimePrekey::from)
            .collect(),
    };
    let device = state.inner.chat.upload_keys(me, &device_id, &up).await?;
    Ok(Json(DeviceView::new(&device, me)))
}

/// Delete my device and its prekeys.
#[utoipa::path(
    delete,
    path = "/api/v1/chat/devices/{device_id}",
    tag = TAG,
    params(("device_id" = String, Path, description = "The device (1 to 64 of A-Z a-z 0-9 . _ : -)", pattern = "^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid device id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device among the caller's", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Path(device_id): Path<String>,
) -> Result<StatusCode, Problem> {
    state
        .inner
        .chat
        .delete_device(who.subject(), &device_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read an account's devices and their public keys: mine, or a contact's (an account sharing
/// a conversation with me).
#[utoipa::path(
    get,
    path = "/api/v1/chat/accounts/{account}/devices",
    tag = TAG,
    params(("account" = String, Path, description = "The account (1 to 128 visible ASCII characters)", pattern = "^[!-~]{1,128}$")),
    responses(
        (status = 200, description = "Its devices", body = DeviceList),
        (status = 400, description = "Invalid account id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not the caller nor a contact", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn devices(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    Path(account): Path<String>,
) -> Result<Json<DeviceList>, Problem> {
    let me = who.subject();
    let devices = state.inner.chat.devices_of(me, &account).await?;
    Ok(Json(DeviceList {
        devices: devices.iter().map(|d| DeviceView::new(d, me)).collect(),
    }))
}

/// Claim one one-time prekey of each device, to open an Olm session with it.
///
/// Each one-time prekey is given to at most one claim. A device with none left gives its
/// signed prekey only. Only my own devices and my contacts' can be claimed.
#[utoipa::path(
    post,
    path = "/api/v1/chat/keys/claim",
    tag = TAG,
    request_body = ClaimKeys,
    responses(
        (status = 200, description = "The keys claimed", body = ClaimedKeys),
        (status = 400, description = "Invalid list; `errors` names each field", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn claim(
    State(state): State<AppState>,
    who: Require<ChatWrite>,
    Json(req): Json<ClaimKeys>,
) -> Result<Json<ClaimedKeys>, Problem> {
    for (i, d) in req.devices.iter().enumerate() {
        check_account(&format!("devices[{i}].account"), &d.account)?;
    }
    let targets: Vec<ClaimTarget> = req
        .devices
        .into_iter()
        .map(|d| ClaimTarget {
            account: d.account,
            device_id: d.device_id,
        })
        .collect();
    let claimed = state.inner.chat.claim_keys(who.subject(), &targets).await?;
    Ok(Json(ClaimedKeys {
        claimed: claimed.iter().map(ClaimedKey::from).collect(),
    }))
}
