//! Process-wide logging: `tracing` to stdout, JSON (one object per line) or pretty.
//!
//! `log_format = "auto"` (the default) writes pretty lines when stdout is a terminal and JSON
//! otherwise (a container, a pipe, a file). The filter is `log_level` when a layer sets it,
//! else `RUST_LOG` when set, else `info`.
//!
//! Every line written while a trace context is current ([`praxis_infra::trace`]: a request, a
//! bus event, a queued delivery) carries its ids: `"trace_id"` and `"span_id"` first in a
//! JSON object, a `trace_id=… span_id=…` prefix on a pretty line.

use std::io::IsTerminal;

use praxis_infra::trace;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat, Origin};
use crate::log_writer::LogWriter;
use crate::otel::SpanExport;

/// What logging keeps running until the process ends: the buffered stdout and, with
/// `otel_endpoint` set, the span export.
pub struct Logging {
    writer: LogWriter,
    export: Option<SpanExport>,
}

impl Logging {
    /// Sends the last spans and writes every buffered line: after the runtime has ended.
    pub fn finish(self) {
        if let Some(export) = self.export {
            export.shutdown();
        }
        self.writer.finish();
    }
}

/// Installs the global subscriber for `config`: lines to stdout through a [`LogWriter`] (no
/// write per line on the request path) and, with `otel_endpoint` set, the span export.
pub fn init(config: &Config) -> anyhow::Result<Logging> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter_text = filter(
        &config.log_level,
        config.origin("log_level") != Origin::Default,
        rust_log.as_deref(),
    );
    let filter = EnvFilter::builder().parse(filter_text).map_err(|e| {
        anyhow::anyhow!("RUST_LOG {filter_text:?} is not a log filter: {e} (or set log_level)")
    })?;
    let writer = LogWriter::stdout()
        .map_err(|e| anyhow::anyhow!("cannot start the log writer thread: {e}"))?;
    let lines = match resolve(config.log_format, std::io::stdout().is_terminal()) {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(writer.make_writer())
            .event_format(TraceIds::pretty(tracing_subscriber::fmt::format()))
            .boxed(),
        _ => {
            let format = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false);
            tracing_subscriber::fmt::layer()
                .with_writer(writer.make_writer())
                .fmt_fields(JsonFields::new())
                .event_format(TraceIds::json(format))
                .boxed()
        }
    };
    let export = config
        .otel_endpoint
        .as_ref()
        .map(SpanExport::start)
        .transpose()?;
    // Only the spans made for export (target `praxis::trace`) go to the collector.
    let spans = export.as_ref().map(|export| {
        tracing_opentelemetry::layer()
            .with_tracer(export.tracer())
            .with_filter(Targets::new().with_target(trace::SPAN_TARGET, Level::INFO))
    });
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    if export.is_some() {
        trace::enable_export();
    }
    Ok(Logging { writer, export })
}

/// An event format that adds the current trace context's ids to what `inner` writes.
struct TraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> TraceIds<F> {
    fn json(inner: F) -> Self {
        TraceIds { inner, json: true }
    }

    fn pretty(inner: F) -> Self {
        TraceIds { inner, json: false }
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace) = praxis_infra::trace::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let (trace_id, span_id) = (trace.trace_id_hex(), trace.span_id_hex());
        if !self.json {
            write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        // The JSON format always opens the object with its timestamp: write the ids as the
        // first members, then the rest of its object without its opening brace.
        write!(
            writer,
            "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\","
        )?;
        let mut rest = AfterBrace {
            out: &mut writer,
            skipped: false,
        };
        self.inner.format_event(ctx, Writer::new(&mut rest), event)
    }
}

/// Forwards text to `out`, leaving out the first `{` (without allocating a line buffer).
struct AfterBrace<'a, 'w> {
    out: &'a mut Writer<'w>,
    skipped: bool,
}

impl std::fmt::Write for AfterBrace<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.skipped {
            return self.out.write_str(s);
        }
        let Some(rest) = s.trim_start().strip_prefix('{') else {
            return if s.trim_start().is_empty() {
                Ok(())
            } else {
                // Not a JSON object: never the case; keep the text rather than lose it.
                self.skipped = true;
                self.out.write_str(s)
            };
        };
        self.skipped = true;
        self.out.write_str(rest)
    }
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
