//! End-to-end encryption as the server sees it: the public keys of a device, its prekeys, and
//! the envelope an encrypted message travels in.
//!
//! The server checks shapes only (lengths, base64, sizes). It never reads, makes or verifies a
//! key, a signature or a ciphertext: the clients do all the cryptography (Olm and Megolm, e.g.
//! with vodozemac), and verify each other's signatures with the identity keys they trust.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use praxis_http::FieldError;
use serde::{Deserialize, Serialize};

/// Longest device id.
pub const DEVICE_ID_MAX: usize = 64;
/// Longest key id.
pub const KEY_ID_MAX: usize = 64;
/// Longest algorithm name and session id of an envelope.
pub const NAME_MAX: usize = 128;
/// Most one-time prekeys in one upload.
pub const UPLOAD_MAX: usize = 100;
/// Most unclaimed one-time prekeys a device may hold.
pub const STOCK_MAX: i64 = 1_000;
/// Most devices in one claim.
pub const CLAIM_MAX: usize = 100;
/// Most recipient entries in one envelope's ciphertext map.
pub const RECIPIENTS_MAX: usize = 1_000;

/// Bytes of a Curve25519 or Ed25519 public key.
const KEY_BYTES: usize = 32;
/// Bytes of an Ed25519 signature.
const SIGNATURE_BYTES: usize = 64;

/// Standard base64, padded or not (vodozemac writes it unpadded).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signed prekey: a Curve25519 key signed with the device's Ed25519 signing key (the
/// signature is over the `key` string, as the client wrote it). Used when the device has no
/// one-time prekey left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPrekey {
    /// The client's id for it.
    pub key_id: String,
    /// The public key, base64.
    pub key: String,
    /// The Ed25519 signature of `key`, base64.
    pub signature: String,
}

/// A one-time prekey: handed out by at most one claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePrekey {
    /// The client's id for it.
    pub key_id: String,
    /// The public key, base64.
    pub key: String,
    /// An Ed25519 signature of `key`, base64, when the client signs its one-time keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A device's entry in the key directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its account.
    pub account: String,
    /// Its id, chosen by the client.
    pub device_id: String,
    /// Its Curve25519 identity key, base64.
    pub identity_key: String,
    /// Its Ed25519 signing key, base64.
    pub signing_key: String,
    /// Its current signed prekey.
    pub signed_prekey: Option<SignedPrekey>,
    /// One-time prekeys not claimed yet.
    pub one_time_prekeys: i64,
    /// When it was registered, unix ms.
    pub created_at: i64,
    /// When its keys last changed, unix ms.
    pub updated_at: i64,
}

/// What one claim gives for one device: its identity keys and one one-time prekey, or its
/// signed prekey when none is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The device, with its signed prekey.
    pub device: Device,
    /// The one-time prekey this claim took, if the device had one.
    pub one_time_prekey: Option<OneTimePrekey>,
}

/// An encrypted message as the server stores and relays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encrypted {
    /// The client's algorithm name (e.g. `m.olm.v1.curve25519-aes-sha2`).
    pub algorithm: String,
    /// The sender's device (registered in the key directory), so that recipients can find the
    /// sender's identity key.
    pub sender_device: String,
    /// The group session the ciphertext belongs to (Megolm), when the algorithm has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// One ciphertext (a string), or one per recipient device (an object of them, keyed by
    /// the recipient's identity key or device).
    pub ciphertext: serde_json::Value,
}

/// A message's content: plain text, or an envelope of ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    /// A plain-text body (conversations that are not encrypted).
    Text(&'a str),
    /// Ciphertext (encrypted conversations).
    Encrypted(&'a Encrypted),
}

/// Checks a device id: 1 to [`DEVICE_ID_MAX`] of `[A-Za-z0-9._:-]`.
pub fn check_device_id(id: &str) -> Result<(), String> {
    crate::domain::rules::check_token(id, DEVICE_ID_MAX, "")
}

/// Checks a key id: 1 to [`KEY_ID_MAX`] of base64 or `[._:-]` characters.
pub fn check_key_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= KEY_ID_MAX
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'.' | b'_' | b':' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {KEY_ID_MAX} of base64 characters or . _ : -, got {} bytes",
            id.len()
        ))
    }
}

/// Checks a public key: base64 of 32 bytes (Curve25519 or Ed25519).
pub fn check_public_key(key: &str) -> Result<(), String> {
    check_base64(key, KEY_BYTES, "a public key (Curve25519 or Ed25519)")
}

/// Checks a signature: base64 of 64 bytes (Ed25519).
pub fn check_signature(signature: &str) -> Result<(), String> {
    check_base64(signature, SIGNATURE_BYTES, "an Ed25519 signature")
}

fn check_base64(value: &str, bytes: usize, what: &str) -> Result<(), String> {
    match BASE64.decode(value) {
        Ok(decoded) if decoded.len() == bytes => Ok(()),
        Ok(decoded) => Err(format!(
            "must be {what}: base64 of {bytes} bytes, got {} bytes",
            decoded.len()
        )),
        Err(e) => Err(format!("must be {what} in standard base64: {e}")),
    }
}

/// Checks a signed prekey, its fields named under `field`.
pub fn check_signed_prekey(field: &str, p: &SignedPrekey, errors: &mut Vec<FieldError>) {
    push(errors, format!("{field}.key_id"), check_key_id(&p.key_id));
    push(errors, format!("{field}.key"), check_public_key(&p.key));
    push(
        errors,
        format!("{field}.signature"),
        check_signature(&p.signature),
    );
}

/// Checks a one-time prekey, its fields named under `field`.
pub fn check_one_time_prekey(field: &str, p: &OneTimePrekey, errors: &mut Vec<FieldError>) {
    push(errors, format!("{field}.key_id"), check_key_id(&p.key_id));
    push(errors, format!("{field}.key"), check_public_key(&p.key));
    if let Some(signature) = &p.signature {
        push(
            errors,
            format!("{field}.signature"),
            check_signature(signature),
        );
    }
}

/// Checks an envelope's shape and size (its JSON at most `max_bytes`), its fields named under
/// `encrypted`.
pub fn check_envelope(e: &Encrypted, max_bytes: usize) -> Vec<FieldError> {
    let mut errors = Vec::new();
    push(
        &mut errors,
        "encrypted.algorithm".into(),
        check_name(&e.algorithm),
    );
    push(
        &mut errors,
        "encrypted.sender_device".into(),
        check_device_id(&e.sender_device),
    );
    if let Some(session) = &e.session_id {
        push(
            &mut errors,
            "encrypted.session_id".into(),
            check_name(session),
        );
    }
    push(
        &mut errors,
        "encrypted.ciphertext".into(),
        check_ciphertext(&e.ciphertext),
    );
    let size = serde_json::to_vec(e).map_or(usize::MAX, |v| v.len());
    if size > max_bytes {
        errors.push(FieldError::new(
            "encrypted",
            format!(
                "must be at most {max_bytes} bytes of JSON (the max_message_bytes setting), got {size}"
            ),
        ));
    }
    errors
}

/// An algorithm name or session id: 1 to [`NAME_MAX`] printable ASCII characters.
fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.len() <= NAME_MAX && name.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {NAME_MAX} printable ASCII characters without spaces, got {} bytes",
            name.len()
        ))
    }
}

/// A ciphertext is a non-empty string, or an object of 1 to [`RECIPIENTS_MAX`] entries, each
/// a non-empty string or an object (e.g. Olm's `{"type": 0, "body": "..."}`).
fn check_ciphertext(c: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match c {
        Value::String(s) if !s.is_empty() => Ok(()),
        Value::Object(map) if !map.is_empty() && map.len() <= RECIPIENTS_MAX => {
            let bad = map.iter().find(|(_, v)| match v {
                Value::String(s) => s.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => true,
            });
            match bad {
                Some((k, _)) => Err(format!(
                    "entry {k:?} must be a non-empty string or object of ciphertext"
                )),
                None => Ok(()),
            }
        }
        Value::Object(map) => Err(format!(
            "must have 1 to {RECIPIENTS_MAX} recipient entries, got {}",
            map.len()
        )),
        _ => Err(
            "must be a non-empty string of ciphertext, or an object of them per recipient device"
                .to_owned(),
        ),
    }
}

fn push(errors: &mut Vec<FieldError>, field: String, check: Result<(), String>) {
    if let Err(m) = check {
        errors.push(FieldError::new(field, m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "3Vn4SmGxnd1Wc2vJvBpZyVWk9pOvbORhkxIFXQ0+ZV0";

    #[test]
    fn keys_are_base64_of_the_right_length() {
        assert_eq!(check_public_key(KEY), Ok(()));
        assert_eq!(check_public_key(&format!("{KEY}=")), Ok(()), "padded");
        assert!(check_public_key("AAAA").is_err(), "3 bytes");
        assert!(check_public_key("not base64!").is_err());
        assert!(check_signature(KEY).is_err(), "a key is not a signature");
        assert!(check_device_id("PHONE-1").is_ok());
        assert!(check_device_id("a b").is_err());
        assert!(check_key_id("AAAAAQ").is_ok());
        assert!(check_key_id("").is_err());
    }

    #[test]
    fn envelopes_are_checked_by_shape_and_size() {
        let ok = Encrypted {
            algorithm: "m.olm.v1.curve25519-aes-sha2".into(),
            sender_device: "D1".into(),
            session_id: None,
            ciphertext: json!({KEY: {"type": 0, "body": "AwogAb..."}}),
        };
        assert!(check_envelope(&ok, 16_384).is_empty());
        assert_eq!(check_envelope(&ok, 10).len(), 1, "too big");
        let bad = Encrypted {
            algorithm: String::new(),
            ciphertext: json!([1, 2]),
            ..ok.clone()
        };
        let fields: Vec<String> = check_envelope(&bad, 16_384)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["encrypted.algorithm", "encrypted.ciphertext"]);
        let empty_entry = Encrypted {
            ciphertext: json!({"x": ""}),
            ..ok
        };
        assert_eq!(check_envelope(&empty_entry, 16_384).len(), 1);
    }
}
