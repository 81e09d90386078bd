//! Parsing and formatting of durations and rates as people write them ("10s", "250ms", "1.5m").

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason} (examples: 10s, 250ms, 1.5m, 100us)")]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a duration in praxis's one grammar ([`praxis_kit::text::parse_duration`]: `10s`,
/// `250ms`, `1.5m`, `1h`, `100us`, `2500ns`), where a bare number, as the benchmark has always
/// read it, is seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(err("out of range"));
        }
        return Duration::try_from_secs_f64(seconds).map_err(|_| err("out of range"));
    }
    praxis_kit::text::parse_duration(text).map_err(|_| err("not a number with a unit"))
}

/// Formats a latency given in microseconds with a unit that keeps three significant digits
/// (`850µs`, `12.3ms`, `1.20s`).
pub fn format_micros(us: f64) -> String {
    if !us.is_finite() {
        return "-".to_owned();
    }
    if us < 1.0 {
        format!("{:.0}ns", us * 1000.0)
    } else if us < 1000.0 {
        format!("{}µs", sig3(us))
    } else if us < 1_000_000.0 {
        format!("{}ms", sig3(us / 1000.0))
    } else {
        format!("{}s", sig3(us / 1_000_000.0))
    }
}

/// Formats a duration compactly (`10s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    format_micros(d.as_secs_f64() * 1e6)
}

fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Formats a request rate (`1234/s`, `12.5k/s`).
pub fn format_rate(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.1}k/s", rate / 1000.0)
    } else {
        format!("{rate:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10x", "-1s", "1..2s", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let e = parse_duration("10x").unwrap_err();
        assert!(e.to_string().contains("10x"));
    }

    #[test]
    fn formats() {
        assert_eq!(format_micros(0.5), "500ns");
        assert_eq!(format_micros(850.0), "850µs");
        assert_eq!(format_micros(12_345.0), "12.3ms");
        assert_eq!(format_micros(1_200_000.0), "1.20s");
        assert_eq!(format_rate(950.2), "950/s");
        assert_eq!(format_rate(12_500.0), "12.5k/s");
    }
}
