//! `praxis bench compare A.json B.json`: the differences per rate and percentile, overall and
//! per request kind present in both runs.

use std::fmt::{self, Write as _};

use crate::result::{BenchResult, LatencySummary};
use crate::units::{format_micros, format_rate};

/// What a row measures (how to print it and which direction is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per second (higher is better).
    Rate,
    /// Microseconds (lower is better).
    Latency,
    /// A count (lower is better: errors).
    Count,
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The metric's name.
    pub metric: String,
    /// Value in A.
    pub a: f64,
    /// Value in B.
    pub b: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Row {
    /// `B / A`, when A is not zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.a != 0.0).then(|| self.b / self.a)
    }

    /// `(B - A) / A` in percent, when A is not zero.
    pub fn change_pct(&self) -> Option<f64> {
        self.ratio().map(|r| (r - 1.0) * 100.0)
    }

    /// True when B is better than A by more than 1 %.
    pub fn improved(&self) -> bool {
        match (self.unit, self.ratio()) {
            (Unit::Rate, Some(r)) => r > 1.01,
            (_, Some(r)) => r < 0.99,
            (Unit::Rate, None) => self.b > 0.0,
            (_, None) => false,
        }
    }

    fn value(&self, v: f64) -> String {
        match self.unit {
            Unit::Rate => format_rate(v),
            Unit::Latency => format_micros(v),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

/// A comparison of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Label of A (its scenario and target rate).
    pub a: String,
    /// Label of B.
    pub b: String,
    /// Whole-run rows.
    pub overall: Vec<Row>,
    /// Rows per kind present in both.
    pub kinds: Vec<(String, Vec<Row>)>,
}

fn latency_rows(a: &LatencySummary, b: &LatencySummary) -> Vec<Row> {
    ["p50", "p90", "p99", "p99.9", "p99.99", "max"]
        .iter()
        .map(|m| Row {
            metric: (*m).to_owned(),
            a: a.get(m).unwrap_or(0.0),
            b: b.get(m).unwrap_or(0.0),
            unit: Unit::Latency,
        })
        .collect()
}

/// Compares B against A.
pub fn compare(a: &BenchResult, b: &BenchResult) -> Comparison {
    let label = |r: &BenchResult| {
        format!(
            "{} @ {} ({})",
            r.scenario,
            format_rate(r.config.rate),
            r.started_at
        )
    };
    let mut overall = vec![
        Row {
            metric: "target rate".into(),
            a: a.config.rate,
            b: b.config.rate,
            unit: Unit::Rate,
        },
        Row {
            metric: "achieved rate".into(),
            a: a.achieved_rate,
            b: b.achieved_rate,
            unit: Unit::Rate,
        },
    ];
    overall.extend(latency_rows(&a.latency, &b.latency));
    overall.push(Row {
        metric: "errors".into(),
        a: a.error_total as f64,
        b: b.error_total as f64,
        unit: Unit::Count,
    });
    let kinds = a
        .kinds
        .iter()
        .filter_map(|ka| {
            let kb = b.kinds.iter().find(|k| k.name == ka.name)?;
            let mut rows = latency_rows(&ka.latency, &kb.latency);
            rows.push(Row {
                metric: "errors".into(),
                a: ka.error_total as f64,
                b: kb.error_total as f64,
                unit: Unit::Count,
            });
            Some((ka.name.clone(), rows))
        })
        .collect();
    Comparison {
        a: label(a),
        b: label(b),
        overall,
        kinds,
    }
}

fn write_rows(f: &mut String, rows: &[Row]) {
    let _ = writeln!(
        f,
        "  {:<14} {:>12} {:>12} {:>10} {:>8}",
        "metric", "A", "B", "change", "B/A"
    );
    for r in rows {
        let change = r
            .change_pct()
            .map_or_else(|| "-".to_owned(), |c| format!("{c:+.1}%"));
        let ratio = r
            .ratio()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
        let mark = if r.improved() { " better" } else { "" };
        let _ = writeln!(
            f,
            "  {:<14} {:>12} {:>12} {:>10} {:>8}{}",
            r.metric,
            r.value(r.a),
            r.value(r.b),
            change,
            ratio,
            mark
        );
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "A: {}\nB: {}\n\nall requests (latency from intended send time):",
            self.a, self.b
        );
        write_rows(&mut s, &self.overall);
        for (name, rows) in &self.kinds {
            let _ = writeln!(s, "\nkind {name}:");
            write_rows(&mut s, rows);
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::tests::sample_result;

    #[test]
    fn compares_rates_and_percentiles() {
        let a = sample_result(1.0);
        let b = sample_result(2.0);
        let c = compare(&a, &b);
        let p99 = c.overall.iter().find(|r| r.metric == "p99").unwrap();
        assert!((p99.ratio().unwrap() - 2.0).abs() < 0.01, "{p99:?}");
        assert!(!p99.improved());
        let achieved = c
            .overall
            .iter()
            .find(|r| r.metric == "achieved rate")
            .unwrap();
        assert!((achieved.change_pct().unwrap() + 50.0).abs() < 1e-9);
        assert_eq!(c.kinds.len(), 1);
        let text = c.to_string();
        assert!(text.contains("p99.9"), "{text}");
        assert!(text.contains("+100.0%"), "{text}");
        assert!(text.contains("kind default"), "{text}");
        // Reversed, latency improves.
        let back = compare(&b, &a);
        assert!(
            back.overall
                .iter()
                .find(|r| r.metric == "p99")
                .unwrap()
                .improved()
        );
    }

    #[test]
    fn zero_baseline() {
        let r = Row {
            metric: "errors".into(),
            a: 0.0,
            b: 3.0,
            unit: Unit::Count,
        };
        assert_eq!(r.ratio(), None);
        assert!(!r.improved());
    }
}
