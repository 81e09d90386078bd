//! Markdown reports (`--report FILE.md`): the command, the machine, rates, a percentile table
//! per kind, errors, and the latency spectrum as an SVG written beside the report
//! (`FILE.svg`, linked from the Markdown so it renders on any forge).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::findmax::FindMaxResult;
use crate::plot::spectrum_svg;
use crate::result::{BenchResult, LatencySummary, Machine};
use crate::units::{format_micros, format_rate};

/// Writes the Markdown report to `path` and its plot to `path` with extension `svg`.
/// Returns the SVG's path.
pub fn write_report(path: &Path, r: &BenchResult) -> Result<PathBuf, BenchError> {
    let svg_path = path.with_extension("svg");
    let svg_name = file_name(&svg_path);
    let mut series: Vec<(String, Vec<_>)> = r
        .kinds
        .iter()
        .map(|k| (k.name.clone(), k.latency.spectrum.clone()))
        .collect();
    if r.kinds.len() > 1 {
        series.push(("all".to_owned(), r.latency.spectrum.clone()));
    }
    series.push((
        "service time (all)".to_owned(),
        r.service_time.spectrum.clone(),
    ));
    let title = format!(
        "{}: {} target, {} achieved",
        r.scenario,
        format_rate(r.config.rate),
        format_rate(r.achieved_rate)
    );
    write(&svg_path, &spectrum_svg(&title, &series))?;
    write(path, &markdown(r, &svg_name))?;
    Ok(svg_path)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::File {
        path: path.to_owned(),
        source,
    })
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn machine_line(m: &Machine) -> String {
    let mem = m
        .memory_bytes
        .map(|b| format!(", {:.1} GiB memory", b as f64 / (1u64 << 30) as f64))
        .unwrap_or_default();
    let cpu = m
        .cpu
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    format!("{} cores{cpu}{mem}, {}", m.cores, m.os)
}

fn row(name: &str, count: u64, errors: Option<u64>, s: &LatencySummary) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        name,
        count,
        errors.map_or_else(|| "".to_owned(), |e| e.to_string()),
        format_micros(s.p50_us),
        format_micros(s.p90_us),
        format_micros(s.p99_us),
        format_micros(s.p999_us),
        format_micros(s.p9999_us),
        format_micros(s.max_us),
    )
}

/// The Markdown text of a run report; `svg_name` is the plot's file name (same folder).
pub fn markdown(r: &BenchResult, svg_name: &str) -> String {
    let mut md = String::new();
    let c = &r.config;
    let _ = writeln!(md, "# praxis bench: {}\n", r.scenario);
    let _ = writeln!(md, "- Started: {}", r.started_at);
    let _ = writeln!(md, "- Target: `{}`", r.target);
    let _ = writeln!(md, "- Machine: {}", machine_line(&r.machine));
    let _ = writeln!(md, "- Tool: {}", r.tool);
    let command: Vec<String> = r.command.iter().map(|a| shell_quote(a)).collect();
    let _ = writeln!(md, "- Command:\n\n```sh\n{}\n```\n", command.join(" "));
    let _ = writeln!(md, "## Load\n");
    let _ = writeln!(md, "| setting | value |\n|---|---|");
    let _ = writeln!(md, "| target rate | {} |", format_rate(c.rate));
    let _ = writeln!(md, "| achieved rate | {} |", format_rate(r.achieved_rate));
    let _ = writeln!(
        md,
        "| measured window | {:.1} s (after {:.1} s warm-up){} |",
        r.elapsed_s,
        c.warmup_s,
        if r.interrupted { ", interrupted" } else { "" }
    );
    let _ = writeln!(md, "| arrivals | {} |", c.arrival);
    let _ = writeln!(
        md,
        "| connections / threads | {} / {} |",
        c.connections, c.threads
    );
    let _ = writeln!(md, "| timeout | {:.1} s |", c.timeout_s);
    let _ = writeln!(
        md,
        "| requests | {} scheduled, {} responses, {} errors ({:.3} %) |\n",
        r.scheduled,
        r.responses,
        r.error_total,
        r.error_ratio() * 100.0
    );
    let _ = writeln!(md, "## Latency from the intended send time\n");
    let _ = writeln!(
        md,
        "Measured from when each request was due, not when it was sent, so queueing behind a \
         slow response counts (no coordinated omission).\n"
    );
    let _ = writeln!(
        md,
        "| kind | responses | errors | p50 | p90 | p99 | p99.9 | p99.99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for k in &r.kinds {
        let _ = writeln!(
            md,
            "{}",
            row(&k.name, k.responses, Some(k.error_total), &k.latency)
        );
    }
    if r.kinds.len() > 1 {
        let _ = writeln!(
            md,
            "{}",
            row("all", r.responses, Some(r.error_total), &r.latency)
        );
    }
    let _ = writeln!(
        md,
        "{}",
        row(
            "service time (all)",
            r.service_time.count,
            None,
            &r.service_time
        )
    );
    let _ = writeln!(
        md,
        "{}\n",
        row("schedule lag", r.schedule_lag.count, None, &r.schedule_lag)
    );
    let _ = writeln!(
        md,
        "Service time is measured from the actual send (what a closed-loop tool reports); \
         schedule lag is how late the generator sent requests (if it is large, the generator \
         was the bottleneck).\n"
    );
    let _ = writeln!(md, "![latency percentile spectrum]({svg_name})\n");
    if r.error_total > 0 {
        let _ = writeln!(md, "## Errors\n");
        let _ = writeln!(md, "| kind | error | count |\n|---|---|---:|");
        for k in &r.kinds {
            for (e, n) in k.errors.iter().filter(|(_, n)| **n > 0) {
                let _ = writeln!(md, "| {} | {} | {} |", k.name, e, n);
            }
        }
        md.push('\n');
    }
    md
}

/// Writes the Markdown report of a `--find-max` search.
pub fn write_findmax_report(path: &Path, r: &FindMaxResult) -> Result<(), BenchError> {
    write(path, &findmax_markdown(r))
}

/// The Markdown text of a `--find-max` search.
pub fn findmax_markdown(r: &FindMaxResult) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# praxis bench --find-max: {}\n", r.scenario);
    let _ = writeln!(md, "- Started: {}", r.started_at);
    let _ = writeln!(md, "- Target: `{}`", r.target);
    let _ = writeln!(md, "- Machine: {}", machine_line(&r.machine));
    let _ = writeln!(md, "- SLO: `{}`", r.slo);
    let _ = writeln!(
        md,
        "- Highest rate meeting the SLO: **{}**\n",
        r.max_rate.map_or_else(|| "none".to_owned(), format_rate)
    );
    let _ = writeln!(
        md,
        "| step | target | achieved | p50 | p99 | p99.9 | max | errors | SLO |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            format_rate(s.rate),
            format_rate(s.achieved_rate),
            format_micros(s.p50_us),
            format_micros(s.p99_us),
            format_micros(s.p999_us),
            format_micros(s.max_us),
            s.errors,
            if s.pass {
                "pass".to_owned()
            } else {
                format!("fail: {}", s.reason)
            }
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::tests::sample_result;

    #[test]
    fn report_has_table_plot_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.md");
        let r = sample_result(1.0);
        let svg = write_report(&path, &r).unwrap();
        assert_eq!(svg, dir.path().join("run.svg"));
        let md = std::fs::read_to_string(&path).unwrap();
        assert!(md.contains("# praxis bench: url"), "{md}");
        assert!(
            md.contains("![latency percentile spectrum](run.svg)"),
            "{md}"
        );
        assert!(md.contains("| default | 10000 | 3 |"), "{md}");
        assert!(md.contains("| default | timeout | 3 |"), "{md}");
        assert!(md.contains("2 cores (test cpu), 1.0 GiB memory"), "{md}");
        assert!(md.contains("```sh\npraxis bench\n```"), "{md}");
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert_eq!(svg_text.matches("<polyline").count(), 2);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--rate"), "--rate");
        assert_eq!(shell_quote("p99<50ms"), "'p99<50ms'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
