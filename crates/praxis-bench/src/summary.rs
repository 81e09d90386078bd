//! The terminal summary printed at the end of a run.

use std::fmt::Write as _;

use crate::result::{BenchResult, LatencySummary};
use crate::units::{format_micros, format_rate};

/// Renders the summary of `r` as plain text.
pub fn summary_text(r: &BenchResult) -> String {
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(out, "praxis bench: {} ({})", r.target, r.scenario);
    let _ = writeln!(
        out,
        "  rate      target {}, achieved {} over {:.1}s (warm-up {:.1}s excluded){}",
        format_rate(c.rate),
        format_rate(r.achieved_rate),
        r.elapsed_s,
        c.warmup_s,
        if r.interrupted { ", INTERRUPTED" } else { "" }
    );
    let _ = writeln!(
        out,
        "  load      {} connections, {} threads, {} arrivals, timeout {:.1}s",
        c.connections, c.threads, c.arrival, c.timeout_s
    );
    let _ = writeln!(
        out,
        "  requests  {} scheduled, {} responses, {} errors ({:.3}%)",
        r.scheduled,
        r.responses,
        r.error_total,
        r.error_ratio() * 100.0
    );
    let _ = writeln!(out, "  latency from the intended send time:");
    let _ = writeln!(out, "{}", table_header());
    for k in &r.kinds {
        let _ = writeln!(out, "{}", table_row(&k.name, &k.latency));
    }
    if r.kinds.len() > 1 {
        let _ = writeln!(out, "{}", table_row("all", &r.latency));
    }
    let _ = writeln!(
        out,
        "  service time (from the actual send, what a closed-loop tool reports):"
    );
    let _ = writeln!(out, "{}", table_row("all", &r.service_time));
    let lag = &r.schedule_lag;
    let _ = writeln!(
        out,
        "  schedule lag (generator health) p50 {}, p99 {}, max {}",
        format_micros(lag.p50_us),
        format_micros(lag.p99_us),
        format_micros(lag.max_us)
    );
    let errors: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "  errors    {}", errors.join(", "));
        for k in r.kinds.iter().filter(|k| k.error_total > 0) {
            let by: Vec<String> = k
                .errors
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(e, n)| format!("{e} {n}"))
                .collect();
            let _ = writeln!(out, "            {}: {}", k.name, by.join(", "));
        }
    }
    out
}

fn table_header() -> String {
    format!(
        "    {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "count", "p50", "p90", "p99", "p99.9", "max"
    )
}

fn table_row(name: &str, s: &LatencySummary) -> String {
    format!(
        "    {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        name,
        s.count,
        format_micros(s.p50_us),
        format_micros(s.p90_us),
        format_micros(s.p99_us),
        format_micros(s.p999_us),
        format_micros(s.max_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::tests::sample_result;

    #[test]
    fn summary_names_rates_percentiles_and_errors() {
        let text = summary_text(&sample_result(1.0));
        assert!(text.contains("target 1000/s, achieved 1000/s"), "{text}");
        assert!(text.contains("p99.9"), "{text}");
        assert!(text.contains("default"), "{text}");
        assert!(text.contains("timeout 3"), "{text}");
        assert!(text.contains("10000"), "{text}");
    }
}
