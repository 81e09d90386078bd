//! Wire framing of broadcast messages: a version byte, the sender's instance id, the payload.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

const VERSION: u8 = 1;
const HEADER: usize = 17;

/// Prefixes `payload` with the frame header.
pub(super) fn encode(instance: Uuid, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER + payload.len());
    buf.put_u8(VERSION);
    buf.put_slice(instance.as_bytes());
    buf.put_slice(payload);
    buf.freeze()
}

/// Splits a frame into sender and payload; `None` for anything that is not a praxis frame.
pub(super) fn decode(frame: Bytes) -> Option<(Uuid, Bytes)> {
    if frame.len() < HEADER || frame[0] != VERSION {
        return None;
    }
    let sender = Uuid::from_slice(&frame[1..HEADER]).ok()?;
    Some((sender, frame.slice(HEADER..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = Uuid::now_v7();
        let (sender, payload) = decode(encode(id, b"hello")).expect("valid frame");
        assert_eq!(sender, id);
        assert_eq!(&payload[..], b"hello");
        assert!(decode(Bytes::from_static(b"short")).is_none());
        let mut bad = encode(id, b"").to_vec();
        bad[0] = 9;
        assert!(decode(Bytes::from(bad)).is_none());
    }
}
