//! Binary envelope of an event on JetStream: version, id, creation time, topic, key, payload.
//! (The trace context travels beside it, in the message's `traceparent` header.)
//! (Topic and key travel in the body, not in headers or subjects, so any string is safe and
//! two topics that map to the same stream name stay apart.)

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::Event;
use crate::InfraError;

const VERSION: u8 = 1;

pub(super) fn encode(event: &Event) -> Bytes {
    let (topic, key) = (event.topic.as_bytes(), event.key.as_bytes());
    let mut buf =
        BytesMut::with_capacity(1 + 16 + 8 + 4 + topic.len() + 4 + key.len() + event.payload.len());
    buf.put_u8(VERSION);
    buf.put_slice(event.id.as_bytes());
    buf.put_i64(event.created_at_ms);
    put_str(&mut buf, topic);
    put_str(&mut buf, key);
    buf.put_slice(&event.payload);
    buf.freeze()
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    buf.put_slice(s);
}

fn get_str(body: &mut Bytes) -> Option<String> {
    if body.remaining() < 4 {
        return None;
    }
    let len = body.get_u32() as usize;
    if body.remaining() < len {
        return None;
    }
    String::from_utf8(body.split_to(len).to_vec()).ok()
}

/// Decodes a message read from the stream of `stream_topic` (named in error messages).
pub(super) fn decode(stream_topic: &str, mut body: Bytes) -> Result<Event, InfraError> {
    let bad = |what: &str| {
        InfraError::Codec(format!(
            "bus message on {stream_topic:?} is not a praxis event: {what}"
        ))
    };
    if body.remaining() < 1 + 16 + 8 {
        return Err(bad("too short"));
    }
    if body.get_u8() != VERSION {
        return Err(bad("unknown version"));
    }
    let id = Uuid::from_slice(&body.split_to(16)).map_err(|_| bad("bad id"))?;
    let created_at_ms = body.get_i64();
    let topic = get_str(&mut body).ok_or_else(|| bad("bad topic"))?;
    let key = get_str(&mut body).ok_or_else(|| bad("bad key"))?;
    Ok(Event {
        id,
        topic,
        key,
        payload: body.to_vec(),
        created_at_ms,
        trace: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() -> Result<(), InfraError> {
        let event = Event {
            id: Uuid::now_v7(),
            topic: "t".into(),
            key: "k\n1 é".into(),
            payload: vec![0, 1, 2, 255],
            created_at_ms: 1_700_000_000_000,
            trace: None,
        };
        assert_eq!(decode("t", encode(&event))?, event);
        assert!(decode("t", Bytes::from_static(b"\x01short")).is_err());
        Ok(())
    }
}
