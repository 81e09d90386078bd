//! The news feed keys (`feed_*`): the celebrity threshold (fan-out on read above it), the
//! timeline cap, the active window (who gets fan-out, how long timelines live) and the
//! fan-out batch. Read into [`FeedConfig`], part of [`super::Config`].

use std::time::Duration;

use super::{Reader, units};

/// The feed's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Authors with at least this many followers make `pull` posts.
    pub celebrity_threshold: u64,
    /// Entries kept per user timeline.
    pub timeline_cap: usize,
    /// Users who read within this window get fan-out; idle timelines expire after it.
    pub active_window: Duration,
    /// Followers written per pipelined round trip.
    pub fanout_batch: usize,
}

fn number(text: &str, min: u64, max: u64, example: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number from {min} to {max} (e.g. {example})"
        )),
    }
}

pub(super) fn read(r: &mut Reader<'_>) -> Option<FeedConfig> {
    let celebrity_threshold = r.required("feed_celebrity_threshold", |t| {
        number(t, 1, 1_000_000_000, "10000")
    });
    let timeline_cap = r.required("feed_timeline_cap", |t| number(t, 40, 100_000, "800"));
    let active_window = r.required("feed_active_window", |t| {
        let d = units::parse_duration(t)?;
        if d < Duration::from_secs(1) {
            return Err(format!(
                "{t:?} is shorter than 1s (expected a duration, e.g. 168h)"
            ));
        }
        Ok(d)
    });
    let fanout_batch = r.required("feed_fanout_batch", |t| number(t, 1, 100_000, "500"));
    Some(FeedConfig {
        celebrity_threshold: celebrity_threshold?,
        timeline_cap: usize::try_from(timeline_cap?).ok()?,
        active_window: active_window?,
        fanout_batch: usize::try_from(fanout_batch?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::super::{ConfigErrors, LoadOptions, load};
    use super::*;

    fn load_with(flags: &[(&'static str, &str)]) -> Result<super::super::Config, ConfigErrors> {
        let env: HashMap<String, String> = HashMap::new();
        load(&LoadOptions {
            env: &env,
            flags: flags.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            config_flag: None,
            default_file: PathBuf::from("/nonexistent/praxis.toml"),
            known_systems: &["feed"],
        })
    }

    #[test]
    fn feed_keys_have_defaults_and_bad_values_are_named() {
        let cfg = load_with(&[]).expect("defaults");
        assert_eq!(
            cfg.feed,
            FeedConfig {
                celebrity_threshold: 10_000,
                timeline_cap: 800,
                active_window: Duration::from_secs(7 * 24 * 3600),
                fanout_batch: 500,
            }
        );
        let cfg = load_with(&[
            ("feed_celebrity_threshold", "3"),
            ("feed_active_window", "1h"),
        ])
        .expect("set");
        assert_eq!(cfg.feed.celebrity_threshold, 3);
        assert_eq!(cfg.feed.active_window, Duration::from_secs(3600));
        let errs = load_with(&[("feed_timeline_cap", "10")]).expect_err("too small");
        assert!(
            errs.to_string().starts_with("--feed-timeline-cap: "),
            "{errs}"
        );
        let errs = load_with(&[("feed_fanout_batch", "0")]).expect_err("zero");
        assert!(
            errs.to_string().starts_with("--feed-fanout-batch: "),
            "{errs}"
        );
    }
}
