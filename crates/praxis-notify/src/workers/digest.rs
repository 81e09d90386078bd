//! Digest mode: several events for a subscriber within a window become one message.
//!
//! A send with `digest: {"window": seconds, "key": ".."}` (subscribers only) does not get a
//! delivery of its own on each channel. At expansion ([`crate::store::Store::expand`]), after
//! preferences (an opted-out channel is `suppressed`, never joined):
//!
//! - the first event for `(sender, subscriber, channel, address, key)` **opens a batch**: an
//!   ordinary queued delivery with `digest_key` set and `digest_count = 1`, due at the accept
//!   time + window (quiet hours apply on top, as for any delivery);
//! - a later event **joins** the open batch: its delivery is stored as `digested` with
//!   `digest_of` = the batch's id, and the batch's `digest_count` grows. A batch is open while
//!   it is `queued` and was never attempted (`attempts = 0`): the join locks the batch row and
//!   re-checks that, so a batch claimed by a dispatcher (`sending`) or already tried is never
//!   changed; the event then opens a new batch. On PostgreSQL the subscriber row is locked
//!   first, so two events expanded at once cannot both open a batch.
//!
//! At send time ([`for_claimed`]) the batch renders with the **latest** event's message
//! (template version, event type, data) plus `digest: {count, events}`: `count` is the number
//! of events in the batch, `events` the data of each event, oldest first, at most
//! [`MAX_EVENTS`] (the latest ones when there are more). The same object is the webhook's
//! `data` and the inbox item's `data`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::model::{DigestSpec, MessageRecord};
use crate::store::Store;
use crate::store::queue::Claimed;
use crate::workers::channels::SendError;

/// Longest digest window and dedupe window, seconds (7 days).
pub const MAX_WINDOW_SECS: i64 = 7 * 86_400;
/// Most events a digest renders (`digest.events`); `digest.count` still counts them all.
pub const MAX_EVENTS: u32 = 100;
/// Longest digest key.
pub const MAX_KEY_LEN: usize = 128;

/// The `digest` field of a send request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestRequest {
    /// Seconds to collect events for, from the first event's accept time (1 to 604800).
    #[schema(example = 3600, minimum = 1, maximum = 604_800)]
    pub window: i64,
    /// Events with the same key (and subscriber, channel, sender) share a batch; default the
    /// template name. 1 to 128 of `A-Z a-z 0-9 _ - . :`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub key: Option<String>,
}

/// Checks a window in seconds (digest or dedupe): 1 to 7 days.
pub fn check_window(secs: i64) -> Result<i64, String> {
    if (1..=MAX_WINDOW_SECS).contains(&secs) {
        Ok(secs * 1000)
    } else {
        Err(format!(
            "must be 1 to {MAX_WINDOW_SECS} seconds (7 days), got {secs}"
        ))
    }
}

/// Checks a digest request; errors are `(field under "digest", message)`.
pub fn check(
    req: &DigestRequest,
    template: &str,
) -> Result<DigestSpec, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let window_ms = check_window(req.window).map_err(|m| errors.push(("digest.window", m)));
    let key = match req.key.as_deref() {
        None => Ok(template.to_owned()),
        Some(k) => {
            let ok = !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
            if ok {
                Ok(k.to_owned())
            } else {
                errors.push((
                    "digest.key",
                    format!(
                        "must be 1 to {MAX_KEY_LEN} of A-Z a-z 0-9 _ - . : (got {:?})",
                        k.chars().take(40).collect::<String>()
                    ),
                ));
                Err(())
            }
        }
    };
    match (window_ms, key) {
        (Ok(window_ms), Ok(key)) if errors.is_empty() => Ok(DigestSpec { window_ms, key }),
        _ => Err(errors),
    }
}

/// The data a digest renders with: the latest event's data plus `digest: {count, events}`
/// (`events` oldest first).
pub fn render_data(latest: &Value, events: Vec<Value>, count: i64) -> Value {
    let mut data = match latest {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    data.insert(
        "digest".to_owned(),
        json!({"count": count, "events": events}),
    );
    Value::Object(data)
}

/// The data a message with `digest` is checked with at accept: a batch of itself alone.
pub fn trial_data(data: &Value) -> Value {
    render_data(data, vec![data.clone()], 1)
}

/// The message and data a claimed delivery renders with: for a digest batch, the latest
/// event's message and [`render_data`] over the batch's events; otherwise the delivery's own
/// message and its data. A database error is transient (the attempt is retried).
pub async fn for_claimed(
    store: &Store,
    row: &Claimed,
    message: Arc<MessageRecord>,
) -> Result<(Arc<MessageRecord>, Value), SendError> {
    if row.digest_key.is_none() {
        let data = message.data.clone();
        return Ok((message, data));
    }
    let transient = |e: praxis_infra::InfraError| SendError::Transient {
        detail: format!("loading the events of digest {} failed: {e}", row.id),
        retry_after: None,
    };
    let (joined, ids) = store
        .digest_members(&row.id, MAX_EVENTS)
        .await
        .map_err(transient)?;
    let mut events: Vec<MessageRecord> = store.messages(&ids).await.map_err(transient)?;
    events.push(message.as_ref().clone());
    events.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let skip = events.len().saturating_sub(MAX_EVENTS as usize);
    let events: Vec<MessageRecord> = events.into_iter().skip(skip).collect();
    let Some(latest) = events.last().cloned() else {
        let data = message.data.clone();
        return Ok((message, data));
    };
    let data = render_data(
        &latest.data,
        events.into_iter().map(|m| m.data).collect(),
        joined + 1,
    );
    Ok((Arc::new(latest), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_keys_are_checked() {
        let ok = check(
            &DigestRequest {
                window: 60,
                key: None,
            },
            "t",
        )
        .expect("valid");
        assert_eq!(
            ok,
            DigestSpec {
                window_ms: 60_000,
                key: "t".into()
            }
        );
        let errors = check(
            &DigestRequest {
                window: 0,
                key: Some("a b".into()),
            },
            "t",
        )
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, vec!["digest.window", "digest.key"]);
        assert!(check_window(MAX_WINDOW_SECS).is_ok());
        assert!(check_window(MAX_WINDOW_SECS + 1).is_err());
        assert!(check_window(-1).is_err());
    }

    #[test]
    fn the_latest_data_carries_the_digest() {
        let d = render_data(
            &json!({"n": 3, "digest": "overwritten"}),
            vec![json!({"n": 1}), json!({"n": 3})],
            5,
        );
        assert_eq!(d["n"], 3);
        assert_eq!(d["digest"]["count"], 5);
        assert_eq!(d["digest"]["events"][0]["n"], 1);
        assert_eq!(trial_data(&json!({"a": 1}))["digest"]["events"][0]["a"], 1);
    }
}
