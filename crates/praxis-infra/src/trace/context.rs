//! The W3C trace context (`traceparent`): a trace id shared by all the work of one trace, the
//! id of the current span, and the flags (bit 0: sampled).
//!
//! Parsing follows the W3C Trace Context rules: version `00` is exactly 55 characters, a
//! later version may carry more after a `-`, version `ff` is invalid, ids are lowercase hex
//! and never all zeros. An invalid header is ignored (a new trace starts), never an error.

use std::fmt;

use rand::Rng;

/// Length of a version-00 `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;

/// Sampled flag (bit 0 of the trace flags).
const SAMPLED: u8 = 0x01;

/// One span's place in a trace, as carried by `traceparent`. `Copy`, 25 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Builds a context from its parts; `None` when either id is all zeros (invalid).
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceContext {
            trace_id,
            span_id,
            flags: if sampled { SAMPLED } else { 0 },
        })
    }

    /// Parses a `traceparent` header value; `None` when it is not a valid one.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() < TRACEPARENT_LEN {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        let longer_ok = version != 0 && value.get(TRACEPARENT_LEN).is_none_or(|b| *b == b'-');
        if version == 0xff || (value.len() > TRACEPARENT_LEN && !longer_ok) {
            return None;
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        decode_into(&value[3..35], &mut trace_id)?;
        let mut span_id = [0u8; 8];
        decode_into(&value[36..52], &mut span_id)?;
        let flags = hex_byte(&value[53..55])?;
        let ctx = TraceContext::from_parts(trace_id, span_id, false)?;
        Some(TraceContext { flags, ..ctx })
    }

    /// A new trace with a random id, whose first span is this context.
    pub fn new_root(sampled: bool) -> Self {
        let mut rng = rand::rng();
        loop {
            let mut trace_id = [0u8; 16];
            let mut span_id = [0u8; 8];
            rng.fill_bytes(&mut trace_id);
            rng.fill_bytes(&mut span_id);
            if let Some(ctx) = TraceContext::from_parts(trace_id, span_id, sampled) {
                return ctx;
            }
        }
    }

    /// A new span of the same trace (same trace id and flags, a fresh span id), for work done
    /// on behalf of this span.
    pub fn child(&self) -> Self {
        let mut rng = rand::rng();
        loop {
            let mut span_id = [0u8; 8];
            rng.fill_bytes(&mut span_id);
            if span_id != [0; 8] {
                return TraceContext { span_id, ..*self };
            }
        }
    }

    /// The trace id's 16 bytes.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id's 8 bytes.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// Whether the trace is sampled (recorded by whoever exports it).
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The trace id as 32 lowercase hex characters.
    pub fn trace_id_hex(&self) -> Hex<32> {
        Hex::of(&self.trace_id)
    }

    /// The span id as 16 lowercase hex characters.
    pub fn span_id_hex(&self) -> Hex<16> {
        Hex::of(&self.span_id)
    }

    /// The `traceparent` value naming this span as the parent (version 00).
    pub fn traceparent(&self) -> Hex<TRACEPARENT_LEN> {
        let mut out = [0u8; TRACEPARENT_LEN];
        out[0..3].copy_from_slice(b"00-");
        encode_into(&self.trace_id, &mut out[3..35]);
        out[35] = b'-';
        encode_into(&self.span_id, &mut out[36..52]);
        out[52] = b'-';
        encode_into(&[self.flags], &mut out[53..55]);
        Hex(out)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.traceparent().as_str())
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

/// Fixed-size ASCII text (lowercase hex and dashes), formatted without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    fn of(bytes: &[u8]) -> Self {
        let mut out = [0u8; N];
        encode_into(bytes, &mut out);
        Hex(out)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
}

fn decode_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = hex_byte(pair)?;
    }
    Some(())
}

/// Two lowercase hex digits (W3C: uppercase is invalid).
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let ctx = TraceContext::parse(EXAMPLE.as_bytes()).expect("valid");
        assert_eq!(
            ctx.trace_id_hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(ctx.span_id_hex().as_str(), "00f067aa0ba902b7");
        assert!(ctx.sampled());
        assert_eq!(ctx.traceparent().as_str(), EXAMPLE);
        assert_eq!(ctx.to_string(), EXAMPLE);
    }

    #[test]
    fn rejects_what_the_spec_calls_invalid() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ];
        for text in bad {
            assert!(TraceContext::parse(text.as_bytes()).is_none(), "{text:?}");
        }
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let text = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let ctx = TraceContext::parse(text.as_bytes()).expect("valid");
        assert!(!ctx.sampled());
        let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00more";
        assert!(TraceContext::parse(glued.as_bytes()).is_none());
    }

    #[test]
    fn children_keep_the_trace_and_change_the_span() {
        let root = TraceContext::new_root(true);
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.span_id(), root.span_id());
        assert!(child.sampled());
        assert_ne!(TraceContext::new_root(false).trace_id(), root.trace_id());
        let reparsed = TraceContext::parse(child.traceparent().as_str().as_bytes());
        assert_eq!(reparsed, Some(child));
    }
}
