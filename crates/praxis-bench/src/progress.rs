//! The live progress line: once a second on stderr, elapsed time, achieved rate, errors and
//! the p99 of that second. On a terminal the line is rewritten in place; otherwise (logs, CI)
//! each second gets its own line.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::units::format_micros;

/// Prints progress lines (or nothing when disabled).
#[derive(Debug)]
pub struct ProgressLine {
    enabled: bool,
    in_place: bool,
    warmup: Duration,
    printed: bool,
}

impl ProgressLine {
    /// A printer; `warmup` marks the first seconds as warm-up.
    pub fn new(enabled: bool, warmup: Duration) -> Self {
        ProgressLine {
            enabled,
            in_place: std::io::stderr().is_terminal(),
            warmup,
            printed: false,
        }
    }

    /// Prints one second's numbers.
    pub fn print(&mut self, elapsed: Duration, responses: u64, errors: u64, hist: &Histogram<u64>) {
        if !self.enabled {
            return;
        }
        let text = format_line(elapsed, elapsed <= self.warmup, responses, errors, hist);
        let mut err = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the run.
        let _ = if self.in_place {
            write!(err, "\r\x1b[2K{text}")
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
        self.printed = true;
    }

    /// Ends an in-place line so the summary starts on a fresh line.
    pub fn finish(&mut self) {
        if self.enabled && self.in_place && self.printed {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The text of one progress line.
pub fn format_line(
    elapsed: Duration,
    warming_up: bool,
    responses: u64,
    errors: u64,
    hist: &Histogram<u64>,
) -> String {
    let p99 = if hist.is_empty() {
        "-".to_owned()
    } else {
        format_micros(hist.value_at_quantile(0.99) as f64 / 1000.0)
    };
    format!(
        "[{:>4.0}s{}] {:>8} req/s  errors {:<6} p99 {}",
        elapsed.as_secs_f64(),
        if warming_up { " warm-up" } else { "" },
        responses,
        errors,
        p99
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;

    #[test]
    fn line_shows_rate_errors_and_p99() {
        let mut h = new_histogram();
        for v in 1..=100u64 {
            h.record(v * 1_000_000).unwrap();
        }
        let line = format_line(Duration::from_secs(3), false, 1234, 5, &h);
        assert!(line.contains("[   3s]"), "{line}");
        assert!(line.contains("1234 req/s"), "{line}");
        assert!(line.contains("errors 5"), "{line}");
        assert!(line.contains("p99 99.0ms"), "{line}");
        let line = format_line(Duration::from_secs(1), true, 0, 0, &new_histogram());
        assert!(line.contains("warm-up") && line.contains("p99 -"), "{line}");
    }
}
