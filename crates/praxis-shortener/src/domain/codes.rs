//! Generated codes: sequence numbers reserved in blocks, scrambled and base62-encoded.
//!
//! Each process reserves a block of `block_size` numbers with one atomic `UPDATE ... RETURNING`
//! on the shared sequence row, then hands them out from memory, so a create costs no extra
//! database round trip and two processes never draw the same number. Numbers are passed
//! through a [`CodeScrambler`] (a bijection on `[0, 62^width)`) so consecutive links do not get
//! consecutive codes, then padded to exactly `width` base62 digits.

use praxis_kit::{base62, scramble::CodeScrambler};

/// Shortest supported generated code.
pub const MIN_CODE_LENGTH: u32 = 4;
/// Longest supported generated code (62^10 still fits in a u64).
pub const MAX_CODE_LENGTH: u32 = 10;

/// A code length outside the supported range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("code_length must be between {MIN_CODE_LENGTH} and {MAX_CODE_LENGTH}, got {0}")]
pub struct CodeLengthError(pub u32);

/// Turns sequence numbers into fixed-width, non-sequential codes.
#[derive(Debug, Clone)]
pub struct CodeFormat {
    scrambler: CodeScrambler,
    width: usize,
}

impl CodeFormat {
    /// A format for codes of `width` characters.
    pub fn new(width: u32) -> Result<Self, CodeLengthError> {
        if !(MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(&width) {
            return Err(CodeLengthError(width));
        }
        let scrambler = CodeScrambler::try_new(width).map_err(|_| CodeLengthError(width))?;
        let width = usize::try_from(width).map_err(|_| CodeLengthError(width))?;
        Ok(Self { scrambler, width })
    }

    /// How many distinct codes this format can produce (`62^width`).
    pub fn space(&self) -> u64 {
        self.scrambler.space()
    }

    /// The code of sequence number `n`, or `None` once the code space is used up.
    pub fn code(&self, n: u64) -> Option<String> {
        let scrambled = self.scrambler.checked_scramble(n)?;
        Some(base62::encode_padded(scrambled, self.width))
    }
}

/// A range of sequence numbers reserved by this process: `[next, end)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Block {
    next: u64,
    end: u64,
}

impl Block {
    /// The block reserved by advancing the shared counter by `size` to `new_next`
    /// (the value `UPDATE ... SET next_value = next_value + size RETURNING next_value` gave).
    pub fn reserved(new_next: u64, size: u64) -> Self {
        Self {
            next: new_next.saturating_sub(size),
            end: new_next,
        }
    }

    /// Takes the next number, or `None` when the block is used up.
    pub fn take(&mut self) -> Option<u64> {
        if self.next < self.end {
            let n = self.next;
            self.next += 1;
            Some(n)
        } else {
            None
        }
    }

    /// Numbers left in the block.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn codes_have_fixed_width_and_are_not_sequential() {
        let f = CodeFormat::new(7).expect("valid width");
        let codes: Vec<String> = (0..5).filter_map(|n| f.code(n)).collect();
        assert_eq!(codes.len(), 5);
        assert!(codes.iter().all(|c| c.len() == 7 && base62::is_base62(c)));
        let mut sorted = codes.clone();
        sorted.sort();
        assert_ne!(
            codes, sorted,
            "consecutive numbers should not give ordered codes: {codes:?}"
        );
        assert_eq!(f.code(f.space()), None);
        assert!(CodeFormat::new(3).is_err());
        assert!(CodeFormat::new(11).is_err());
    }

    #[test]
    fn blocks_hand_out_their_range_once() {
        let mut b = Block::reserved(2000, 1000);
        assert_eq!(b.remaining(), 1000);
        assert_eq!(b.take(), Some(1000));
        let rest: Vec<u64> = std::iter::from_fn(|| b.take()).collect();
        assert_eq!(rest.len(), 999);
        assert_eq!(rest.last(), Some(&1999));
        assert_eq!(b.take(), None);
        assert_eq!(Block::default().take(), None);
    }

    proptest! {
        #[test]
        fn blocks_from_one_counter_never_overlap(sizes in proptest::collection::vec(1u64..50, 1..20)) {
            // Simulates several processes advancing one shared counter.
            let mut counter = 0u64;
            let mut seen = HashSet::new();
            for size in sizes {
                counter += size;
                let mut b = Block::reserved(counter, size);
                while let Some(n) = b.take() {
                    prop_assert!(seen.insert(n), "number {} handed out twice", n);
                }
            }
            prop_assert_eq!(seen.len() as u64, counter);
        }

        #[test]
        fn distinct_numbers_give_distinct_codes(a in 0u64..3_521_614_606_208, b in 0u64..3_521_614_606_208) {
            let f = CodeFormat::new(7).expect("valid width");
            prop_assume!(a != b);
            prop_assert_ne!(f.code(a), f.code(b));
        }
    }
}
