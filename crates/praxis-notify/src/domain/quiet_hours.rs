//! Quiet hours: a daily window, in the subscriber's time zone, during which notifications wait.
//!
//! A window is `[start, end)` in local wall-clock time, minute precision: `09:00`-`17:00` is
//! quiet from 09:00 until 16:59:59.999; `22:00`-`07:00` wraps midnight (quiet from 22:00 until
//! 06:59:59.999 the next morning). `start == end` is refused (it would mean "never" or
//! "always"; say which by not setting quiet hours, or by not sending).
//!
//! [`QuietHours::release_at`] says, for an instant inside the window, when the window ends:
//! the first instant after `now` at which the local clock reads `end`, and that is outside the
//! window. Daylight-saving transitions (through jiff's time zone database):
//! - `end` in a **gap** (the clock jumps from 02:00 to 03:00 and `end` is 02:30): the window
//!   ends at the transition, when the clock jumps past `end`.
//! - `end` in a **fold** (the clock goes from 02:59 back to 02:00 and `end` is 02:30): the
//!   first 02:30 after `now`, which is the earlier one unless `now` is already past it.
//! - A window whose non-quiet part is skipped entirely by a gap stays quiet until the next
//!   day's `end`.
//!
//! Whether an instant is inside is decided by the local time of day only, so on a fold day a
//! window can be entered twice (its start repeats); each time it ends at the next `end`.

use jiff::civil::{Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};
use std::fmt;

/// A parsed quiet-hours window (see the [module docs](self)).
#[derive(Clone)]
pub struct QuietHours {
    start: Time,
    end: Time,
    tz: TimeZone,
    tz_name: String,
}

impl fmt::Debug for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QuietHours({}-{} {})",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M"),
            self.tz_name
        )
    }
}

fn parse_hhmm(what: &str, s: &str) -> Result<Time, String> {
    let bad = || format!("{what} must be HH:MM (00:00 to 23:59), not {s:?}");
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(bad());
    }
    let hour: i8 = s[..2].parse().map_err(|_| bad())?;
    let minute: i8 = s[3..].parse().map_err(|_| bad())?;
    Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

impl QuietHours {
    /// Parses a window: `start` and `end` as `HH:MM` (24-hour), `tz` an IANA time zone name
    /// (`Europe/Paris`, `UTC`). The error says which argument is wrong and why.
    pub fn parse(start: &str, end: &str, tz: &str) -> Result<QuietHours, String> {
        let start_t = parse_hhmm("quiet hours start", start)?;
        let end_t = parse_hhmm("quiet hours end", end)?;
        if start_t == end_t {
            return Err(format!(
                "quiet hours start and end are both {start}: an empty window is not allowed"
            ));
        }
        let zone = TimeZone::get(tz).map_err(|_| {
            format!("unknown time zone {tz:?} (expected an IANA name such as Europe/Paris)")
        })?;
        Ok(QuietHours {
            start: start_t,
            end: end_t,
            tz: zone,
            tz_name: tz.to_owned(),
        })
    }

    /// The IANA time zone name.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// Whether local time of day `t` is inside the window.
    fn contains_time(&self, t: Time) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    fn contains(&self, ts: Timestamp) -> bool {
        self.contains_time(ts.to_zoned(self.tz.clone()).time())
    }

    /// The instants on local date `d` at which the clock reads (or jumps past) `end`.
    fn end_instants(&self, d: Date) -> Vec<Timestamp> {
        let amb = self.tz.to_ambiguous_timestamp(d.to_datetime(self.end));
        match amb.offset() {
            AmbiguousOffset::Unambiguous { .. } => amb.compatible().ok().into_iter().collect(),
            AmbiguousOffset::Fold { .. } => [amb.earlier().ok(), amb.later().ok()]
                .into_iter()
                .flatten()
                .collect(),
            AmbiguousOffset::Gap { .. } => amb
                .earlier()
                .ok()
                .and_then(|before| self.tz.following(before).next())
                .map(|t| t.timestamp())
                .into_iter()
                .collect(),
        }
    }

    /// `None` when `now_ms` (UTC unix milliseconds) is outside the window; otherwise the UTC
    /// unix milliseconds at which the window ends (always greater than `now_ms`, and outside
    /// the window). `None` as well for an instant jiff cannot represent (beyond year ±9999).
    pub fn release_at(&self, now_ms: i64) -> Option<i64> {
        let now = Timestamp::from_millisecond(now_ms).ok()?;
        let local = now.to_zoned(self.tz.clone());
        if !self.contains_time(local.time()) {
            return None;
        }
        // The end is at most a day and a bit away; a gap can push it to the next day.
        let mut day = local.date().checked_sub(1.day()).ok()?;
        for _ in 0..5 {
            let release = self
                .end_instants(day)
                .into_iter()
                .find(|&t| t > now && !self.contains(t));
            if let Some(t) = release {
                return Some(t.as_millisecond());
            }
            day = day.checked_add(1.day()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("timestamp").as_millisecond()
    }

    fn at(s: &str) -> String {
        Timestamp::from_millisecond(ms(s)).expect("ts").to_string()
    }

    fn release(q: &QuietHours, now: &str) -> Option<String> {
        q.release_at(ms(now))
            .map(|r| Timestamp::from_millisecond(r).expect("ts").to_string())
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let e = QuietHours::parse("9:00", "17:00", "UTC").expect_err("bad start");
        assert!(e.starts_with("quiet hours start must be HH:MM"), "{e}");
        let e = QuietHours::parse("09:00", "24:00", "UTC").expect_err("bad end");
        assert!(e.starts_with("quiet hours end must be HH:MM"), "{e}");
        let e = QuietHours::parse("09:00", "09:60", "UTC").expect_err("bad end");
        assert!(e.contains("\"09:60\""), "{e}");
        let e = QuietHours::parse("09:00", "09:00", "UTC").expect_err("empty");
        assert!(e.contains("empty window"), "{e}");
        let e = QuietHours::parse("09:00", "10:00", "Mars/Olympus").expect_err("tz");
        assert!(e.contains("unknown time zone \"Mars/Olympus\""), "{e}");
        assert!(QuietHours::parse("+9:00", "10:00", "UTC").is_err());
        let q = QuietHours::parse("22:00", "07:00", "Europe/Paris").expect("valid");
        assert_eq!(format!("{q:?}"), "QuietHours(22:00-07:00 Europe/Paris)");
        assert_eq!(q.time_zone(), "Europe/Paris");
    }

    #[test]
    fn a_day_window() {
        let q = QuietHours::parse("09:00", "17:00", "UTC").expect("valid");
        assert_eq!(release(&q, "2026-01-10T08:59:59.999Z"), None);
        assert_eq!(
            release(&q, "2026-01-10T09:00:00Z"),
            Some(at("2026-01-10T17:00:00Z"))
        );
        assert_eq!(
            release(&q, "2026-01-10T16:59:59.999Z"),
            Some(at("2026-01-10T17:00:00Z"))
        );
        assert_eq!(release(&q, "2026-01-10T17:00:00Z"), None);
    }

    #[test]
    fn a_window_that_wraps_midnight() {
        // Paris is UTC+1 in January.
        let q = QuietHours::parse("22:00", "07:00", "Europe/Paris").expect("valid");
        assert_eq!(release(&q, "2026-01-10T20:59:00Z"), None);
        assert_eq!(
            release(&q, "2026-01-10T21:00:00Z"),
            Some(at("2026-01-11T06:00:00Z"))
        );
        assert_eq!(
            release(&q, "2026-01-10T23:30:00Z"),
            Some(at("2026-01-11T06:00:00Z"))
        );
        assert_eq!(
            release(&q, "2026-01-11T05:59:00Z"),
            Some(at("2026-01-11T06:00:00Z"))
        );
        assert_eq!(release(&q, "2026-01-11T06:00:00Z"), None);
        assert_eq!(release(&q, "2026-01-11T12:00:00Z"), None);
    }

    #[test]
    fn spring_forward_night_is_an_hour_shorter() {
        // Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let q = QuietHours::parse("22:00", "07:00", "Europe/Paris").expect("valid");
        // 22:00 CET on the 28th is 21:00Z; 07:00 CEST on the 29th is 05:00Z.
        assert_eq!(
            release(&q, "2026-03-28T21:00:00Z"),
            Some(at("2026-03-29T05:00:00Z"))
        );
        // An end inside the gap: the window ends at the jump.
        let q = QuietHours::parse("23:00", "02:30", "Europe/Paris").expect("valid");
        assert_eq!(
            release(&q, "2026-03-28T23:30:00Z"),
            Some(at("2026-03-29T01:00:00Z"))
        );
        assert_eq!(release(&q, "2026-03-29T01:00:00Z"), None);
    }

    #[test]
    fn fall_back_night_is_an_hour_longer() {
        // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST (06:00Z).
        let q = QuietHours::parse("22:00", "07:00", "America/New_York").expect("valid");
        // 22:00 EDT on the 31st is 02:00Z; 07:00 EST on the 1st is 12:00Z.
        assert_eq!(
            release(&q, "2026-11-01T02:00:00Z"),
            Some(at("2026-11-01T12:00:00Z"))
        );
        // An end inside the fold (01:30 happens at 05:30Z and at 06:30Z).
        let q = QuietHours::parse("00:30", "01:30", "America/New_York").expect("valid");
        // 00:45 EDT: the first 01:30 (EDT) ends it.
        assert_eq!(
            release(&q, "2026-11-01T04:45:00Z"),
            Some(at("2026-11-01T05:30:00Z"))
        );
        // 01:15 EST (the second pass, 06:15Z): the second 01:30 ends it.
        assert_eq!(
            release(&q, "2026-11-01T06:15:00Z"),
            Some(at("2026-11-01T06:30:00Z"))
        );
    }

    #[test]
    fn a_gap_that_skips_the_whole_open_part() {
        // Quiet from 02:40 to 02:30 (almost all day); on 2026-03-29 in Paris the clock skips
        // 02:00-03:00, so the ten open minutes never happen and quiet lasts until the 30th.
        let q = QuietHours::parse("02:40", "02:30", "Europe/Paris").expect("valid");
        // 2026-03-28 23:00Z = 00:00 CET on the 29th.
        assert_eq!(
            release(&q, "2026-03-28T23:00:00Z"),
            Some(at("2026-03-30T00:30:00Z"))
        );
    }

    #[test]
    fn instants_out_of_range() {
        let q = QuietHours::parse("00:00", "23:59", "UTC").expect("valid");
        assert_eq!(q.release_at(i64::MAX), None);
        assert_eq!(q.release_at(i64::MIN), None);
    }

    const ZONES: [&str; 8] = [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/Santiago",
        "Pacific/Apia",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_release_is_later_and_outside(
            zone in 0usize..ZONES.len(),
            start in 0i64..1440,
            end in 0i64..1440,
            // 2000-01-01 to 2040-01-01
            base in 946_684_800_000i64..2_208_988_800_000,
            // Most cases within 30 hours of a time zone transition (DST change), where the
            // interesting cases are; the others anywhere.
            near_transition in proptest::bool::weighted(0.8),
            offset in -108_000_000i64..108_000_000,
        ) {
            prop_assume!(start != end);
            let hhmm = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
            let q = QuietHours::parse(&hhmm(start), &hhmm(end), ZONES[zone]).expect("valid");
            let base_ts = Timestamp::from_millisecond(base).expect("ts");
            let now = match q.tz.following(base_ts).next() {
                Some(t) if near_transition => t.timestamp().as_millisecond() + offset,
                _ => base,
            };
            let inside = q.contains(Timestamp::from_millisecond(now).expect("ts"));
            match q.release_at(now) {
                None => prop_assert!(!inside),
                Some(r) => {
                    prop_assert!(inside);
                    prop_assert!(r > now);
                    prop_assert_eq!(q.release_at(r), None);
                    prop_assert!(r - now <= 2 * 86_400_000, "released after more than two days");
                    if ZONES[zone] == "UTC" || ZONES[zone] == "Asia/Kolkata" {
                        // Without transitions the window ends exactly then: a millisecond
                        // earlier is still quiet.
                        prop_assert!(q.release_at(r - 1).is_some());
                    }
                }
            }
        }
    }
}
