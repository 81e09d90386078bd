//! Key generators: where the `{name}` placeholders of request templates get their values.
//!
//! A generator draws a `u64` per request (a global sequence, uniform over `[0, n)`, or Zipf over
//! `n` keys) and writes it as decimal or base62, optionally zero-padded, with an offset added.
//! Generators are shared by every connection (`Arc`); only the sequence holds state (an atomic
//! counter), the random ones take the caller's RNG, so drawing never locks.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngExt;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

use crate::zipf::{Zipf, ZipfError};

/// The distribution of a generator, as written in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// 0, 1, 2, ... shared by all connections (wraps at `n` when `n` is set).
    Sequence,
    /// Uniform over `[0, n)`.
    Uniform,
    /// Zipf with exponent `s` over `n` keys; 0 is the most popular.
    Zipf,
}

/// How a drawn value is written into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// Base 10.
    #[default]
    Decimal,
    /// Base 62 with the alphabet `0-9A-Za-z` (the shortener's code alphabet).
    Base62,
}

/// A scenario's `[keys.NAME]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The distribution.
    pub dist: Dist,
    /// The number of distinct keys (required for uniform and zipf).
    pub n: Option<u64>,
    /// Zipf exponent (default 1.0).
    pub s: Option<f64>,
    /// Output format (default decimal).
    #[serde(default)]
    pub format: KeyFormat,
    /// Minimum width, left-padded with '0' (default none).
    #[serde(default)]
    pub width: usize,
    /// Added to every drawn value (default 0).
    #[serde(default)]
    pub offset: u64,
}

/// Why a generator spec is invalid; the message names the offending setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeySpecError {
    /// `n` is required for this distribution.
    #[error("`n` is required for dist = {0:?}")]
    MissingN(Dist),
    /// `n` must be positive.
    #[error("`n` must be at least 1")]
    ZeroN,
    /// `s` is only meaningful for Zipf.
    #[error("`s` is only allowed with dist = \"zipf\"")]
    UnexpectedS,
    /// The Zipf parameters are invalid.
    #[error("`s`: {0}")]
    Zipf(ZipfError),
    /// `width` is unreasonably large.
    #[error("`width` must be at most 64")]
    Width,
}

#[derive(Debug)]
enum Source {
    Sequence { counter: AtomicU64, n: Option<u64> },
    Uniform { n: u64 },
    Zipf(Zipf),
}

/// A compiled key generator.
#[derive(Debug)]
pub struct KeyGen {
    source: Source,
    format: KeyFormat,
    width: usize,
    offset: u64,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl KeyGen {
    /// Compiles a spec.
    pub fn new(spec: &KeySpec) -> Result<Arc<Self>, KeySpecError> {
        if spec.width > 64 {
            return Err(KeySpecError::Width);
        }
        if spec.s.is_some() && spec.dist != Dist::Zipf {
            return Err(KeySpecError::UnexpectedS);
        }
        if spec.n == Some(0) {
            return Err(KeySpecError::ZeroN);
        }
        let source = match spec.dist {
            Dist::Sequence => Source::Sequence {
                counter: AtomicU64::new(0),
                n: spec.n,
            },
            Dist::Uniform => Source::Uniform {
                n: spec.n.ok_or(KeySpecError::MissingN(Dist::Uniform))?,
            },
            Dist::Zipf => {
                let n = spec.n.ok_or(KeySpecError::MissingN(Dist::Zipf))?;
                Source::Zipf(Zipf::new(n, spec.s.unwrap_or(1.0)).map_err(KeySpecError::Zipf)?)
            }
        };
        Ok(Arc::new(KeyGen {
            source,
            format: spec.format,
            width: spec.width,
            offset: spec.offset,
        }))
    }

    /// Draws the next value (offset included).
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        let raw = match &self.source {
            Source::Sequence { counter, n } => {
                let v = counter.fetch_add(1, Ordering::Relaxed);
                match n {
                    Some(n) => v % n,
                    None => v,
                }
            }
            Source::Uniform { n } => rng.random_range(0..*n),
            Source::Zipf(z) => z.sample(rng),
        };
        raw.wrapping_add(self.offset)
    }

    /// The largest value this generator can produce, if bounded (offset included).
    pub fn max_value(&self) -> u64 {
        let n = match &self.source {
            Source::Sequence { n, .. } => n.unwrap_or(u64::MAX),
            Source::Uniform { n } => *n,
            Source::Zipf(z) => z.len(),
        };
        n.saturating_sub(1).wrapping_add(self.offset)
    }

    /// Appends `value` in this generator's format to `out`.
    pub fn write(&self, value: u64, out: &mut String) {
        write_key(self.format, self.width, value, out);
    }
}

/// Appends `value` as `format`, left-padded with '0' to `width`, without allocating.
pub fn write_key(format: KeyFormat, width: usize, value: u64, out: &mut String) {
    let mut digits = [0u8; 64];
    let mut len = 0;
    match format {
        KeyFormat::Decimal => {
            if width == 0 {
                // `write!` on a String cannot fail.
                let _ = write!(out, "{value}");
                return;
            }
            let mut v = value;
            loop {
                digits[len] = b'0' + (v % 10) as u8;
                len += 1;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
        }
        KeyFormat::Base62 => {
            let mut v = value;
            loop {
                digits[len] = BASE62[(v % 62) as usize];
                len += 1;
                v /= 62;
                if v == 0 {
                    break;
                }
            }
        }
    }
    for _ in len..width {
        out.push('0');
    }
    for &d in digits[..len].iter().rev() {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec(dist: Dist, n: Option<u64>) -> KeySpec {
        KeySpec {
            dist,
            n,
            s: None,
            format: KeyFormat::Decimal,
            width: 0,
            offset: 0,
        }
    }

    fn text(format: KeyFormat, width: usize, v: u64) -> String {
        let mut s = String::new();
        write_key(format, width, v, &mut s);
        s
    }

    #[test]
    fn formats_decimal_and_base62() {
        assert_eq!(text(KeyFormat::Decimal, 0, 0), "0");
        assert_eq!(text(KeyFormat::Decimal, 0, 1234), "1234");
        assert_eq!(text(KeyFormat::Decimal, 6, 1234), "001234");
        assert_eq!(text(KeyFormat::Base62, 0, 0), "0");
        assert_eq!(text(KeyFormat::Base62, 0, 61), "z");
        assert_eq!(text(KeyFormat::Base62, 0, 62), "10");
        assert_eq!(text(KeyFormat::Base62, 7, 62), "0000010");
        assert_eq!(text(KeyFormat::Base62, 0, u64::MAX), "LygHa16AHYF");
        assert_eq!(text(KeyFormat::Decimal, 0, u64::MAX), u64::MAX.to_string());
    }

    #[test]
    fn sequence_is_shared_and_wraps() {
        let g = KeyGen::new(&spec(Dist::Sequence, Some(3))).unwrap();
        let mut rng = SmallRng::seed_from_u64(0);
        let got: Vec<u64> = (0..7).map(|_| g.sample(&mut rng)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(g.max_value(), 2);
    }

    #[test]
    fn uniform_stays_in_range_with_offset() {
        let mut s = spec(Dist::Uniform, Some(10));
        s.offset = 100;
        let g = KeyGen::new(&s).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = g.sample(&mut rng);
            assert!((100..110).contains(&v));
            seen[(v - 100) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(g.max_value(), 109);
    }

    #[test]
    fn spec_errors() {
        assert_eq!(
            KeyGen::new(&spec(Dist::Zipf, None)).unwrap_err(),
            KeySpecError::MissingN(Dist::Zipf)
        );
        assert_eq!(
            KeyGen::new(&spec(Dist::Uniform, Some(0))).unwrap_err(),
            KeySpecError::ZeroN
        );
        let mut s = spec(Dist::Uniform, Some(5));
        s.s = Some(1.0);
        assert_eq!(KeyGen::new(&s).unwrap_err(), KeySpecError::UnexpectedS);
        let mut s = spec(Dist::Zipf, Some(5));
        s.s = Some(-1.0);
        assert!(matches!(KeyGen::new(&s), Err(KeySpecError::Zipf(_))));
    }
}
