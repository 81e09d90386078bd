//! The chat's WebSocket frames as the bench writes and reads them (docs/chat.md): client
//! `subscribe` and `send`; server `message`, `subscribed`, `error`, and the rest ignored.
//!
//! Every message the bench sends has a body `pxb:<seq>:<offset_ns>:<m|w>[:<padding>]`:
//! its sequence in the run, its *intended* send time in nanoseconds after the run's epoch (an
//! `Instant` shared by the sender and every receiver, all in this process), and whether it
//! falls in the measured window (`m`) or the warm-up (`w`). Its `client_id` is `pxb-<seq>`.
//! A receiver finds the marker with a substring search instead of a JSON parse: it reads up
//! to ~100,000 frames a second on one core. JSON escapes every `"` inside a string, so
//! `"body":"pxb:` can only be the body key itself.

use serde::Deserialize;

/// What a bench message's body starts with.
pub const MARKER: &str = "pxb:";
const BODY_KEY: &str = "\"body\":\"pxb:";

/// The frame that follows `conversation_id` from now on (no catch-up).
pub fn subscribe(conversation_id: &str) -> String {
    serde_json::json!({"type": "subscribe", "conversation_id": conversation_id}).to_string()
}

/// The body of message `seq`, intended at `offset_ns` after the epoch, padded with `x` to
/// `min_bytes` when shorter.
pub fn body(seq: u64, offset_ns: u64, measured: bool, min_bytes: usize) -> String {
    let mut body = format!(
        "{MARKER}{seq}:{offset_ns}:{}",
        if measured { 'm' } else { 'w' }
    );
    if body.len() + 1 < min_bytes {
        body.push(':');
        body.extend(std::iter::repeat_n('x', min_bytes - body.len()));
    }
    body
}

/// The `client_id` of message `seq`.
pub fn client_id(seq: u64) -> String {
    format!("pxb-{seq}")
}

/// The `send` frame of message `seq`.
pub fn send(conversation_id: &str, seq: u64, body: &str) -> String {
    serde_json::json!({
        "type": "send",
        "conversation_id": conversation_id,
        "client_id": client_id(seq),
        "body": body,
    })
    .to_string()
}

/// What a bench message's body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Its sequence in the run (0, 1, 2, ...).
    pub seq: u64,
    /// Its intended send time, nanoseconds after the epoch.
    pub offset_ns: u64,
    /// In the measured window (not the warm-up).
    pub measured: bool,
}

/// A server frame, as far as the bench cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A `message` frame carrying a bench message.
    Message(Marker),
    /// `subscribed`: the subscription is live.
    Subscribed,
    /// `error`, with its code and the `client_id` of the send it answers (if any).
    Error {
        /// The error's code (`rate-limited`, `not-found`, ...).
        code: String,
        /// The failed send's `client_id`.
        client_id: Option<String>,
        /// The server's explanation.
        detail: String,
    },
    /// Anything else (`presence`, `receipt`, `typing`, another client's message, ...).
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Classifies a server text frame.
pub fn classify(text: &str) -> Incoming {
    if let Some(at) = text.find(BODY_KEY)
        && let Some(marker) = parse_marker(&text[at + BODY_KEY.len() - MARKER.len()..])
    {
        return Incoming::Message(marker);
    }
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(e) if e.kind == "subscribed" => Incoming::Subscribed,
        Ok(e) if e.kind == "error" => Incoming::Error {
            code: e.code.unwrap_or_default(),
            client_id: e.client_id,
            detail: e.detail.unwrap_or_default(),
        },
        _ => Incoming::Other,
    }
}

/// Reads `pxb:<seq>:<offset_ns>:<m|w>` at the start of `text`.
pub fn parse_marker(text: &str) -> Option<Marker> {
    let rest = text.strip_prefix(MARKER)?;
    let (seq, rest) = digits(rest)?;
    let rest = rest.strip_prefix(':')?;
    let (offset_ns, rest) = digits(rest)?;
    let rest = rest.strip_prefix(':')?;
    let measured = match rest.as_bytes().first()? {
        b'm' => true,
        b'w' => false,
        _ => return None,
    };
    Some(Marker {
        seq,
        offset_ns,
        measured,
    })
}

/// The sequence in a bench `client_id` (`pxb-<seq>`).
pub fn seq_of_client_id(client_id: &str) -> Option<u64> {
    client_id.strip_prefix("pxb-")?.parse().ok()
}

fn digits(text: &str) -> Option<(u64, &str)> {
    let end = text
        .as_bytes()
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    Some((text[..end].parse().ok()?, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_have_the_chats_shape() {
        let v: serde_json::Value = serde_json::from_str(&subscribe("c1")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "subscribe", "conversation_id": "c1"})
        );
        let b = body(7, 123_456, true, 0);
        assert_eq!(b, "pxb:7:123456:m");
        let v: serde_json::Value = serde_json::from_str(&send("c1", 7, &b)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "send", "conversation_id": "c1", "client_id": "pxb-7", "body": "pxb:7:123456:m"})
        );
        let padded = body(1, 2, false, 64);
        assert_eq!(padded.len(), 64);
        assert!(padded.starts_with("pxb:1:2:w:xx"));
    }

    #[test]
    fn finds_the_marker_in_a_praxis_message_frame() {
        let frame = r#"{"type":"message","message":{"conversation_id":"0190","seq":12,"sender":"wsb-0","client_id":"pxb-11","body":"pxb:11:2500000000:m:xxxx","created_at":"2026-01-01T00:00:00.000Z","deleted":false}}"#;
        assert_eq!(
            classify(frame),
            Incoming::Message(Marker {
                seq: 11,
                offset_ns: 2_500_000_000,
                measured: true
            })
        );
    }

    #[test]
    fn other_frames_are_classified_without_a_marker() {
        assert_eq!(
            classify(r#"{"type":"subscribed","conversation_id":"c","last_seq":0}"#),
            Incoming::Subscribed
        );
        assert_eq!(
            classify(
                r#"{"type":"error","code":"rate-limited","detail":"slow down","conversation_id":"c","client_id":"pxb-3"}"#
            ),
            Incoming::Error {
                code: "rate-limited".into(),
                client_id: Some("pxb-3".into()),
                detail: "slow down".into()
            }
        );
        assert_eq!(
            classify(
                r#"{"type":"presence","conversation_id":"c","account":"a","status":"online","last_seen":"x"}"#
            ),
            Incoming::Other
        );
        // Somebody else's message, and a body that only quotes the marker.
        assert_eq!(
            classify(r#"{"type":"message","message":{"body":"hello pxb:1:2:m"}}"#),
            Incoming::Other
        );
        assert_eq!(classify("not json"), Incoming::Other);
    }

    #[test]
    fn markers_must_be_complete() {
        assert_eq!(parse_marker("pxb:1:2:w").map(|m| m.measured), Some(false));
        for bad in [
            "pxb:",
            "pxb:1",
            "pxb:1:",
            "pxb:1:2",
            "pxb:1:2:",
            "pxb:1:2:q",
            "pxb:a:2:m",
            "xb:1:2:m",
        ] {
            assert_eq!(parse_marker(bad), None, "{bad}");
        }
        assert_eq!(seq_of_client_id("pxb-42"), Some(42));
        assert_eq!(seq_of_client_id("m-1"), None);
    }
}
