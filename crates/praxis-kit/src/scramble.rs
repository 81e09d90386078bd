//! A keyed bijection on `[0, 62^width)` that turns a sequential counter into codes that do not
//! look sequential.
//!
//! The construction is an alternating (FF1-shaped) Feistel network over base62 digit strings: the
//! `width` digits are split into a left part of `width / 2` digits and a right part of the rest,
//! and each round adds a keyed hash of one part to the other, modulo the size of that part. Every
//! round is invertible whatever the round function is, so the whole map is a bijection on exactly
//! `62^width` values with no cycle walking; eight rounds make neighbouring inputs land far apart.
//!
//! **This is obfuscation, not secrecy.** The round function is a fast non-cryptographic mixer and
//! the default key is public, so anyone who sees enough codes can learn the order of creation.
//! It only stops casual enumeration (`abc1`, `abc2`, ...); anything that must stay secret needs
//! random codes or authorization, not this.

use thiserror::Error;

/// Widest code whose space fits in a `u64` (`62^10` < 2^64 < `62^11`).
pub const MAX_WIDTH: u32 = 10;

/// Key used by [`CodeScrambler::new`]: public, so codes are stable across processes and restarts.
pub const DEFAULT_KEY: u64 = 0x7072_6178_6973_2d6b; // "praxis-k"

const ROUNDS: usize = 8;

/// A width outside `1..=MAX_WIDTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("code width must be between 1 and {MAX_WIDTH}, got {0}")]
pub struct ScrambleError(pub u32);

/// Bijection on `[0, 62^width)`: spreads sequential ids so short codes are not guessable in order.
#[derive(Debug, Clone)]
pub struct CodeScrambler {
    width: u32,
    /// `62^(width / 2)`: size of the left half.
    left: u64,
    /// `62^(width - width / 2)`: size of the right half.
    right: u64,
    round_keys: [u64; ROUNDS],
}

impl CodeScrambler {
    /// A scrambler for codes of `width` base62 digits with the [`DEFAULT_KEY`].
    ///
    /// # Panics
    /// When `width` is 0 or above [`MAX_WIDTH`]; use [`CodeScrambler::try_new`] for widths that
    /// come from configuration.
    pub fn new(width: u32) -> Self {
        match Self::with_key(width, DEFAULT_KEY) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`CodeScrambler::new`], returning an error for an unsupported width.
    pub fn try_new(width: u32) -> Result<Self, ScrambleError> {
        Self::with_key(width, DEFAULT_KEY)
    }

    /// A scrambler with its own key (different keys give unrelated permutations).
    pub fn with_key(width: u32, key: u64) -> Result<Self, ScrambleError> {
        if width == 0 || width > MAX_WIDTH {
            return Err(ScrambleError(width));
        }
        let mut state = key;
        let mut round_keys = [0u64; ROUNDS];
        for k in &mut round_keys {
            *k = splitmix64(&mut state);
        }
        Ok(Self {
            width,
            left: 62u64.pow(width / 2),
            right: 62u64.pow(width - width / 2),
            round_keys,
        })
    }

    /// The code width in base62 digits.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Number of codes: `62^width`.
    pub fn space(&self) -> u64 {
        self.left * self.right
    }

    /// Maps `n` to its code number; `n` is taken modulo [`space`](Self::space).
    ///
    /// Callers that must not wrap check `n < space()` first (or use
    /// [`checked_scramble`](Self::checked_scramble)).
    pub fn scramble(&self, n: u64) -> u64 {
        let n = n % self.space();
        let (mut a, mut b) = (n / self.right, n % self.right);
        for (i, &k) in self.round_keys.iter().enumerate() {
            let m = self.round_modulus(i);
            let c = add_mod(a, round(k, b) % m, m);
            a = b;
            b = c;
        }
        a * self.right + b
    }

    /// [`scramble`](Self::scramble), or `None` when `n` is outside the space.
    pub fn checked_scramble(&self, n: u64) -> Option<u64> {
        (n < self.space()).then(|| self.scramble(n))
    }

    /// Inverse of [`scramble`](Self::scramble); `n` is taken modulo [`space`](Self::space).
    pub fn unscramble(&self, n: u64) -> u64 {
        let n = n % self.space();
        let (mut a, mut b) = (n / self.right, n % self.right);
        for (i, &k) in self.round_keys.iter().enumerate().rev() {
            let m = self.round_modulus(i);
            let prev_b = a;
            let prev_a = sub_mod(b, round(k, prev_b) % m, m);
            a = prev_a;
            b = prev_b;
        }
        a * self.right + b
    }

    /// Size of the part updated in round `i` (the halves alternate).
    fn round_modulus(&self, i: usize) -> u64 {
        if i.is_multiple_of(2) {
            self.left
        } else {
            self.right
        }
    }
}

/// `(a + b) mod m` for `a, b < m`; halves are below `62^5 < 2^30`, so the sum cannot overflow.
fn add_mod(a: u64, b: u64, m: u64) -> u64 {
    let s = a + b;
    if s >= m { s - m } else { s }
}

/// `(a - b) mod m` for `a, b < m`.
fn sub_mod(a: u64, b: u64, m: u64) -> u64 {
    if a >= b { a - b } else { m - (b - a) }
}

/// Round function: a keyed 64-bit mixer (the murmur3 finalizer).
fn round(key: u64, x: u64) -> u64 {
    let mut z = x ^ key;
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// SplitMix64 step, used to derive round keys from one key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base62;
    use proptest::prelude::*;

    #[test]
    fn widths_are_checked() {
        assert_eq!(CodeScrambler::try_new(0).err(), Some(ScrambleError(0)));
        assert_eq!(CodeScrambler::try_new(11).err(), Some(ScrambleError(11)));
        assert_eq!(CodeScrambler::new(10).space(), 62u64.pow(10));
        assert_eq!(CodeScrambler::new(1).space(), 62);
    }

    /// Reference check for small widths: the image of the whole space, sorted, is the space.
    #[test]
    fn is_a_permutation_of_small_spaces() {
        for width in 1..=3 {
            for key in [DEFAULT_KEY, 0, 42] {
                let s = CodeScrambler::with_key(width, key).expect("valid width");
                let mut image: Vec<u64> = (0..s.space()).map(|n| s.scramble(n)).collect();
                image.sort_unstable();
                assert!(
                    image.iter().copied().eq(0..s.space()),
                    "width {width} key {key}"
                );
            }
        }
    }

    #[test]
    fn checked_scramble_rejects_out_of_space() {
        let s = CodeScrambler::new(2);
        assert_eq!(s.checked_scramble(3844), None);
        assert_eq!(s.checked_scramble(3843), Some(s.scramble(3843)));
        assert_eq!(s.scramble(3844), s.scramble(0));
    }

    /// Consecutive inputs should differ in almost every digit (a random pair differs in
    /// `width * 61/62` digits on average).
    #[test]
    fn neighbours_look_unrelated() {
        let width = 7u32;
        let s = CodeScrambler::new(width);
        let codes: Vec<String> = (1_000..2_001u64)
            .map(|n| base62::encode_padded(s.scramble(n), width as usize))
            .collect();
        let differing: usize = codes
            .windows(2)
            .map(|w| {
                w[0].bytes()
                    .zip(w[1].bytes())
                    .filter(|(a, b)| a != b)
                    .count()
            })
            .sum();
        let mean = differing as f64 / (codes.len() - 1) as f64;
        assert!(mean > 6.0, "mean differing digits {mean}");
        // Monotone runs would betray the counter: expect about half of the steps to go up.
        let ups = codes.windows(2).filter(|w| w[0] < w[1]).count();
        assert!((350..650).contains(&ups), "{ups} increasing steps of 1000");
    }

    proptest! {
        #[test]
        fn round_trips_and_stays_in_space(width in 1u32..=MAX_WIDTH, key in any::<u64>(), n in any::<u64>()) {
            let s = CodeScrambler::with_key(width, key).expect("valid width");
            let n = n % s.space();
            let code = s.scramble(n);
            prop_assert!(code < s.space());
            prop_assert_eq!(s.unscramble(code), n);
            prop_assert_eq!(s.scramble(s.unscramble(n)), n);
        }

        /// Injective (and so, on a finite set, bijective): distinct inputs give distinct codes.
        #[test]
        fn distinct_inputs_give_distinct_codes(width in 1u32..=MAX_WIDTH, a in any::<u64>(), b in any::<u64>()) {
            let s = CodeScrambler::new(width);
            let (a, b) = (a % s.space(), b % s.space());
            prop_assert_eq!(a == b, s.scramble(a) == s.scramble(b));
        }
    }
}
