//! Bucketing visit times into UTC days, and parsing day parameters.

use time::{Date, OffsetDateTime, format_description::FormatItem, macros::format_description};

const DAY_FORMAT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The UTC day (`YYYY-MM-DD`) of a unix time in milliseconds. Times outside the range the
/// `time` crate supports are clamped to its first or last day.
pub fn day_of(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if unix_ms < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        Date::MAX.midnight().assume_utc()
    });
    format_day(dt.date())
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_day(date: Date) -> String {
    date.format(DAY_FORMAT).unwrap_or_else(|_| {
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    })
}

/// Parses a `YYYY-MM-DD` day.
pub fn parse_day(s: &str) -> Result<Date, String> {
    Date::parse(s, DAY_FORMAT).map_err(|e| format!("`{s}` is not a date in YYYY-MM-DD form ({e})"))
}

/// Parses an RFC 3339 timestamp into unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let dt =
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
            format!("`{s}` is not an RFC 3339 timestamp such as 2026-12-31T23:59:59Z ({e})")
        })?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("`{s}` is out of range"))
}

/// Formats unix milliseconds as RFC 3339 (UTC, `Z`).
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_ms.to_string())
}

/// The clock of every table: unix milliseconds (UTC).
pub use praxis_infra::sql::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_by_utc_day() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_400_000 - 1), "1970-01-01");
        assert_eq!(day_of(86_400_000), "1970-01-02");
        // 2026-03-01T00:00:00Z
        assert_eq!(day_of(1_772_323_200_000), "2026-03-01");
        assert_eq!(day_of(1_772_323_200_000 - 1), "2026-02-28");
        assert_eq!(day_of(i64::MAX).len(), 10);
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(
            parse_day("2026-02-28").map(format_day),
            Ok("2026-02-28".into())
        );
        assert!(parse_day("2026-02-30").is_err());
        assert!(parse_day("yesterday").is_err());
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:01+01:00"), Ok(1000));
        assert!(parse_rfc3339_ms("2026-01-01").is_err());
        assert_eq!(format_rfc3339_ms(1000), "1970-01-01T00:00:01Z");
    }

    proptest! {
        #[test]
        fn day_strings_sort_like_times(a in 0i64..4_000_000_000_000, b in 0i64..4_000_000_000_000) {
            let (da, db) = (day_of(a), day_of(b));
            if a <= b { prop_assert!(da <= db); } else { prop_assert!(da >= db); }
            prop_assert_eq!(parse_day(&da).map(format_day), Ok(da.clone()));
        }

        #[test]
        fn rfc3339_round_trips(ms in 0i64..250_000_000_000_000) {
            prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Ok(ms));
        }
    }
}
