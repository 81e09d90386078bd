//! Values as people write them in configuration: durations (`500ms`, `10s`, `1h30m`, `7d`),
//! byte sizes (`2MiB`), and a serde deserializer that reads a typed settings struct from the
//! text of each key (what an environment variable, a flag or a TOML scalar holds). Also times
//! as RFC 3339 text ([`rfc3339_ms`]).
//!
//! Every duration in praxis (configuration keys, rate-limit policy files, benchmark scenarios)
//! goes through [`parse_duration`]: one grammar, humantime's, everywhere.

pub mod de;
pub mod serde_with;

use std::time::Duration;

pub use de::{TextError, from_texts};

/// Parses a duration: one or more `<integer><unit>` parts (`500ms`, `10s`, `1m30s`, `2h`, `7d`;
/// units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w` and their long names, decimals allowed, as
/// humantime reads them). A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(trimmed).map_err(|_| {
        format!(
            "{text:?} is not a duration (expected a number with a unit ms, s, m, h or d, e.g. 500ms, 10s, 1m30s)"
        )
    })
}

/// A unix-millisecond time as RFC 3339 in UTC with exactly three fractional digits
/// (`2026-12-06T20:38:45.435Z`); empty for a time outside jiff's range.
pub fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// Formats a duration the way [`parse_duration`] reads it back (`10s`, `1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let nanos = d.subsec_nanos();
    if !nanos.is_multiple_of(1_000_000) {
        return humantime::format_duration(d).to_string().replace(' ', "");
    }
    let millis = d.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 {
        out.push_str(&format!("{secs}s"));
    }
    out
}

/// Parses a byte size: an integer optionally followed by `B`, `KB`, `KiB`, `MB`, `MiB`, `GB` or
/// `GiB` (case-insensitive, optional space).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a size in bytes (expected a number with an optional unit B, KiB, MiB, GiB, KB, MB, GB, e.g. 2MiB)"
        )
    };
    let trimmed = text.trim();
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let (number, unit) = trimmed.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(multiplier).ok_or_else(bad)
}

/// Formats a byte size with the largest binary unit that divides it exactly (`2MiB`, `1536B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Parses a rate written `COUNT/DURATION` (`10/15m`): a count of at least 1 per a positive
/// duration. `None` when the text is not one (callers word the error for their key).
pub fn parse_count_per(text: &str) -> Option<(u64, Duration)> {
    let (count, period) = text.trim().split_once('/')?;
    let count: u64 = count.trim().parse().ok()?;
    let period = parse_duration(period).ok()?;
    (count >= 1 && !period.is_zero()).then_some((count, period))
}

/// Parses a boolean as configuration writes it: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (expected true or false)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc3339_ms_keeps_three_digits_in_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_589_525_435), "2026-12-06T20:38:45.435Z");
        assert_eq!(rfc3339_ms(i64::MAX), "", "out of range is empty");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn durations_without_units_or_with_junk_are_rejected() {
        for bad in ["", "10", "s", "10x", "-1s", "abc"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("is not a duration"), "{err}");
        }
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    proptest! {
        #[test]
        fn durations_round_trip_through_format(nanos in 0u64..10_000_000_000_000) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn sizes_round_trip_through_format(n in 1u64..(1 << 40)) {
            prop_assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("2 mib"), Ok(2 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("7B"), Ok(7));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in ["", "MiB", "2XB", "-1", "1.5MiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn counts_per_duration() {
        assert_eq!(
            parse_count_per(" 10 / 15m "),
            Some((10, Duration::from_secs(900)))
        );
        for bad in ["", "10", "0/1m", "10/0", "x/1m", "10/soon", "-1/1s"] {
            assert_eq!(parse_count_per(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "yes", "on", "1"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "no", "Off", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(
            parse_bool("maybe")
                .expect_err("bad")
                .contains("expected true or false")
        );
    }
}
