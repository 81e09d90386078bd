//! Base62 encoding of `u64` values with the alphabet `0-9A-Za-z`.
//!
//! The alphabet is in ASCII order, so codes padded to one width sort (as bytes) in the same order
//! as the numbers they encode. Decoding uses a lookup table and checked arithmetic: it is on the
//! redirect hot path and must reject any input without panicking.

use thiserror::Error;

/// The 62 digits, in ASCII (and numeric) order.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Number of base62 digits needed for any `u64` (`u64::MAX` is `LygHa16AHYF`).
pub const MAX_U64_DIGITS: usize = 11;

const INVALID: u8 = u8::MAX;

/// Digit value of every byte, or `INVALID`.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a string is not a base62 `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Base62Error {
    /// The input was empty.
    #[error("empty base62 string")]
    Empty,
    /// A byte outside `0-9A-Za-z` at the given byte index.
    #[error("invalid base62 character at byte {index}")]
    InvalidChar {
        /// Byte offset of the first invalid character.
        index: usize,
    },
    /// The value does not fit in a `u64`.
    #[error("base62 value overflows u64")]
    Overflow,
}

/// Writes the digits of `n` into the end of `buf`, returning the index of the first digit.
fn digits(mut n: u64, buf: &mut [u8; MAX_U64_DIGITS]) -> usize {
    let mut i = MAX_U64_DIGITS;
    loop {
        i -= 1;
        buf[i] = ALPHABET[(n % 62) as usize];
        n /= 62;
        if n == 0 {
            return i;
        }
    }
}

/// Encodes `n` with no padding; `0` is `"0"`.
pub fn encode(n: u64) -> String {
    encode_padded(n, 0)
}

/// Encodes `n` left-padded with `'0'` to at least `width` characters.
///
/// A value that needs more than `width` digits is returned in full, never truncated.
pub fn encode_padded(n: u64, width: usize) -> String {
    let mut buf = [0u8; MAX_U64_DIGITS];
    let start = digits(n, &mut buf);
    let len = MAX_U64_DIGITS - start;
    let mut out = String::with_capacity(len.max(width));
    for _ in len..width {
        out.push('0');
    }
    for &b in &buf[start..] {
        out.push(char::from(b));
    }
    out
}

/// Decodes a base62 string; leading zeros are allowed (padded codes).
pub fn decode(s: &str) -> Result<u64, Base62Error> {
    if s.is_empty() {
        return Err(Base62Error::Empty);
    }
    let mut n: u64 = 0;
    for (index, &b) in s.as_bytes().iter().enumerate() {
        let d = DECODE[b as usize];
        if d == INVALID {
            return Err(Base62Error::InvalidChar { index });
        }
        n = n
            .checked_mul(62)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(Base62Error::Overflow)?;
    }
    Ok(n)
}

/// True when `s` is non-empty and every character is in `0-9A-Za-z` (no overflow check).
pub fn is_base62(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| DECODE[b as usize] != INVALID)
}

/// `62^width`, or `None` when it does not fit in a `u64` (`width > 10`).
pub fn space(width: u32) -> Option<u64> {
    62u64.checked_pow(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: the textbook repeated-division encoder, digits collected then reversed.
    fn reference_encode(mut n: u64) -> String {
        let mut out = Vec::new();
        loop {
            out.push(ALPHABET[(n % 62) as usize] as char);
            n /= 62;
            if n == 0 {
                break;
            }
        }
        out.iter().rev().collect()
    }

    /// Reference: decode via u128 so overflow is observable.
    fn reference_decode(s: &str) -> Option<u64> {
        if s.is_empty() {
            return None;
        }
        let mut n: u128 = 0;
        for c in s.chars() {
            let d = ALPHABET.iter().position(|&a| a as char == c)? as u128;
            n = n * 62 + d;
            if n > u128::from(u64::MAX) {
                return None;
            }
        }
        Some(n as u64)
    }

    #[test]
    fn known_values() {
        assert_eq!(encode(0), "0");
        assert_eq!(encode(61), "z");
        assert_eq!(encode(62), "10");
        assert_eq!(encode(u64::MAX), "LygHa16AHYF");
        assert_eq!(encode_padded(1, 4), "0001");
        assert_eq!(encode_padded(62 * 62, 2), "100");
        assert_eq!(decode("LygHa16AHYF"), Ok(u64::MAX));
        assert_eq!(decode("LygHa16AHYG"), Err(Base62Error::Overflow));
        assert_eq!(decode(""), Err(Base62Error::Empty));
        assert_eq!(decode("ab-c"), Err(Base62Error::InvalidChar { index: 2 }));
        assert_eq!(decode("é"), Err(Base62Error::InvalidChar { index: 0 }));
        assert_eq!(decode("0000000000000000000000001"), Ok(1));
        assert!(is_base62("abcXYZ019"));
        assert!(!is_base62(""));
        assert!(!is_base62("ab c"));
        assert_eq!(space(10), Some(839_299_365_868_340_224));
        assert_eq!(space(11), None);
    }

    proptest! {
        #[test]
        fn encode_matches_reference_and_round_trips(n in any::<u64>()) {
            let s = encode(n);
            prop_assert_eq!(&s, &reference_encode(n));
            prop_assert!(is_base62(&s));
            prop_assert_eq!(decode(&s), Ok(n));
        }

        #[test]
        fn padded_round_trips(n in any::<u64>(), width in 0usize..16) {
            let s = encode_padded(n, width);
            prop_assert!(s.len() >= width);
            prop_assert_eq!(s.len(), width.max(reference_encode(n).len()));
            prop_assert_eq!(decode(&s), Ok(n));
        }

        #[test]
        fn padded_codes_sort_like_numbers(a in any::<u64>(), b in any::<u64>()) {
            let (sa, sb) = (encode_padded(a, MAX_U64_DIGITS), encode_padded(b, MAX_U64_DIGITS));
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }

        #[test]
        fn decode_matches_reference_on_any_string(s in "[0-9A-Za-z_\\-é]{0,14}") {
            prop_assert_eq!(decode(&s).ok(), reference_decode(&s));
            prop_assert_eq!(is_base62(&s), !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
