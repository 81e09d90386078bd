//! Process-wide logging: `tracing` to stdout, JSON (one object per line) or pretty.
//!
//! `log_format = "auto"` (the default) writes pretty lines when stdout is a terminal and JSON
//! otherwise (a container, a pipe, a file). The filter is `log_level` when a layer sets it,
//! else `RUST_LOG` when set, else `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, Origin};

/// Installs the global subscriber for `config`.
pub fn init(config: &Config) -> anyhow::Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter_text = filter(
        &config.log_level,
        config.origin("log_level") != Origin::Default,
        rust_log.as_deref(),
    );
    let filter = EnvFilter::builder().parse(filter_text).map_err(|e| {
        anyhow::anyhow!("RUST_LOG {filter_text:?} is not a log filter: {e} (or set log_level)")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match resolve(config.log_format, std::io::stdout().is_terminal()) {
        LogFormat::Pretty => builder.try_init(),
        _ => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

/// The filter in use: `log_level` when configured, else `RUST_LOG`, else `log_level`'s default.
fn filter<'a>(log_level: &'a str, configured: bool, rust_log: Option<&'a str>) -> &'a str {
    match rust_log {
        Some(env) if !configured && !env.trim().is_empty() => env,
        _ => log_level,
    }
}

/// `auto` becomes pretty on a terminal and JSON elsewhere.
fn resolve(format: LogFormat, terminal: bool) -> LogFormat {
    match format {
        LogFormat::Auto if terminal => LogFormat::Pretty,
        LogFormat::Auto => LogFormat::Json,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_pretty_on_a_terminal_only() {
        assert_eq!(resolve(LogFormat::Auto, true), LogFormat::Pretty);
        assert_eq!(resolve(LogFormat::Auto, false), LogFormat::Json);
        assert_eq!(resolve(LogFormat::Json, true), LogFormat::Json);
        assert_eq!(resolve(LogFormat::Pretty, false), LogFormat::Pretty);
    }

    #[test]
    fn rust_log_applies_when_log_level_is_not_configured() {
        assert_eq!(
            filter("info", false, Some("debug,hyper=warn")),
            "debug,hyper=warn"
        );
        assert_eq!(filter("warn", true, Some("debug")), "warn");
        assert_eq!(filter("info", false, None), "info");
        assert_eq!(filter("info", false, Some(" ")), "info");
    }
}
