//! `--find-max --slo "p99<50ms"`: the highest rate that meets a latency objective.
//!
//! The search probes exponentially (start, 2×, 4×, ... up to `--max-rate`) until a step fails,
//! halving instead if the first step fails, then bisects between the best passing and the
//! lowest failing rate until they are within `precision` of each other. Each step is a short
//! open-loop run; a step passes when every SLO condition holds, the error ratio is below 1 %
//! (unless the SLO sets its own `errors<` bound) and the achieved rate is at least 90 % of the
//! target (a generator or server that cannot keep up does not pass).

use std::future::Future;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::result::{BenchResult, LatencySummary, Machine, RunConfig};
use crate::units::{format_micros, parse_duration};

/// An SLO that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SLO `{input}`: {reason} (examples: \"p99<50ms\", \"p99.9<=200ms,errors<0.1%\")")]
pub struct SloError {
    /// The text.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// One condition of an SLO.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A latency percentile (`p50`, `p99`, `p99.9`, `max`, ...) under a bound in microseconds.
    Latency {
        /// The percentile's name as [`LatencySummary::get`] knows it.
        metric: String,
        /// The bound, microseconds.
        limit_us: f64,
        /// `<=` rather than `<`.
        inclusive: bool,
    },
    /// The error ratio under a bound (a fraction, 0.01 = 1 %).
    Errors {
        /// The bound.
        limit: f64,
        /// `<=` rather than `<`.
        inclusive: bool,
    },
}

/// A service-level objective: conditions that must all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The conditions.
    pub conditions: Vec<Condition>,
    text: String,
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(input: &str) -> Result<Self, SloError> {
        let err = |reason: String| SloError {
            input: input.to_owned(),
            reason,
        };
        let mut conditions = Vec::new();
        for part in input
            .split([',', '&'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (metric, inclusive, value) = if let Some((m, v)) = part.split_once("<=") {
                (m, true, v)
            } else if let Some((m, v)) = part.split_once('<') {
                (m, false, v)
            } else {
                return Err(err(format!("`{part}` has no `<` or `<=`")));
            };
            let metric = metric.trim().to_ascii_lowercase();
            let value = value.trim();
            if metric == "errors" || metric == "error_rate" {
                let limit = match value.strip_suffix('%') {
                    Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
                    None => value.parse::<f64>(),
                }
                .map_err(|_| err(format!("`{value}` is not a ratio")))?;
                if !(0.0..=1.0).contains(&limit) {
                    return Err(err(format!("error bound `{value}` is outside 0..100%")));
                }
                conditions.push(Condition::Errors { limit, inclusive });
            } else {
                if LatencySummary::default().get(&metric).is_none() {
                    return Err(err(format!(
                        "unknown metric `{metric}` (use p50, p90, p99, p99.9, p99.99, max, mean or errors)"
                    )));
                }
                let limit = parse_duration(value).map_err(|e| err(e.to_string()))?;
                conditions.push(Condition::Latency {
                    metric,
                    limit_us: limit.as_secs_f64() * 1e6,
                    inclusive,
                });
            }
        }
        if conditions.is_empty() {
            return Err(err("no condition".to_owned()));
        }
        Ok(Slo {
            conditions,
            text: input.trim().to_owned(),
        })
    }
}

/// What a step measured (the part of a [`BenchResult`] the search looks at).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Achieved rate.
    pub achieved_rate: f64,
    /// Latency from the intended send time, all kinds.
    pub latency: LatencySummary,
    /// Errors.
    pub errors: u64,
    /// Errors over scheduled requests.
    pub error_ratio: f64,
}

impl From<&BenchResult> for Measurement {
    fn from(r: &BenchResult) -> Self {
        Measurement {
            achieved_rate: r.achieved_rate,
            latency: r.latency.clone(),
            errors: r.error_total,
            error_ratio: r.error_ratio(),
        }
    }
}

/// The implicit error bound when the SLO sets none.
pub const DEFAULT_ERROR_LIMIT: f64 = 0.01;
/// The smallest achieved/target ratio that can pass.
pub const MIN_ACHIEVED_RATIO: f64 = 0.9;

impl Slo {
    /// Checks a step at `rate`: `Ok` if it passes, otherwise the first failed condition.
    pub fn check(&self, rate: f64, m: &Measurement) -> Result<(), String> {
        if m.achieved_rate < rate * MIN_ACHIEVED_RATIO {
            return Err(format!(
                "achieved {:.0}/s < {:.0}% of {:.0}/s",
                m.achieved_rate,
                MIN_ACHIEVED_RATIO * 100.0,
                rate
            ));
        }
        let mut error_bound = false;
        for c in &self.conditions {
            match c {
                Condition::Latency {
                    metric,
                    limit_us,
                    inclusive,
                } => {
                    let v = m.latency.get(metric).unwrap_or(f64::INFINITY);
                    let ok = if *inclusive {
                        v <= *limit_us
                    } else {
                        v < *limit_us
                    };
                    if !ok {
                        return Err(format!(
                            "{metric} {} {} {}",
                            format_micros(v),
                            if *inclusive { ">" } else { ">=" },
                            format_micros(*limit_us)
                        ));
                    }
                }
                Condition::Errors { limit, inclusive } => {
                    error_bound = true;
                    let ok = if *inclusive {
                        m.error_ratio <= *limit
                    } else {
                        m.error_ratio < *limit
                    };
                    if !ok {
                        return Err(format!(
                            "errors {:.3}% over {:.3}%",
                            m.error_ratio * 100.0,
                            limit * 100.0
                        ));
                    }
                }
            }
        }
        if !error_bound && m.error_ratio >= DEFAULT_ERROR_LIMIT {
            return Err(format!(
                "errors {:.3}% >= {:.0}%",
                m.error_ratio * 100.0,
                DEFAULT_ERROR_LIMIT * 100.0
            ));
        }
        Ok(())
    }
}

/// The search state: exponential probing, then bisection.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    start: f64,
    max_rate: f64,
    precision: f64,
    best_pass: Option<f64>,
    lowest_fail: Option<f64>,
}

/// The lowest rate the search tries.
pub const MIN_RATE: f64 = 1.0;

impl Search {
    /// Starts at `start` req/s, never above `max_rate`, stopping when the bracket is within
    /// `precision` (relative, e.g. 0.05).
    pub fn new(start: f64, max_rate: f64, precision: f64) -> Self {
        let max_rate = max_rate.max(MIN_RATE);
        Search {
            start: start.clamp(MIN_RATE, max_rate).round(),
            max_rate,
            precision: precision.clamp(0.001, 1.0),
            best_pass: None,
            lowest_fail: None,
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        match (self.best_pass, self.lowest_fail) {
            (None, None) => Some(self.start),
            (Some(lo), None) => (lo < self.max_rate).then(|| (lo * 2.0).min(self.max_rate).round()),
            (None, Some(hi)) => {
                let r = (hi / 2.0).floor();
                (r >= MIN_RATE && r < hi).then_some(r)
            }
            (Some(lo), Some(hi)) => {
                if hi - lo <= self.precision * lo {
                    return None;
                }
                let mid = ((lo + hi) / 2.0).round();
                (mid > lo && mid < hi).then_some(mid)
            }
        }
    }

    /// Records the outcome of a step.
    pub fn observe(&mut self, rate: f64, pass: bool) {
        if pass {
            self.best_pass = Some(self.best_pass.map_or(rate, |b| b.max(rate)));
        } else {
            self.lowest_fail = Some(self.lowest_fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The highest passing rate so far.
    pub fn best(&self) -> Option<f64> {
        self.best_pass
    }
}

/// One step of the search, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Target rate.
    pub rate: f64,
    /// Achieved rate.
    pub achieved_rate: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// p99, microseconds.
    pub p99_us: f64,
    /// p99.9, microseconds.
    pub p999_us: f64,
    /// Maximum, microseconds.
    pub max_us: f64,
    /// Errors.
    pub errors: u64,
    /// Whether the SLO held.
    pub pass: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate {:>9.0}/s  achieved {:>9.0}/s  p50 {:>8}  p99 {:>8}  p99.9 {:>8}  errors {:>6}  {}",
            self.rate,
            self.achieved_rate,
            format_micros(self.p50_us),
            format_micros(self.p99_us),
            format_micros(self.p999_us),
            self.errors,
            if self.pass {
                "pass".to_owned()
            } else {
                format!("FAIL ({})", self.reason)
            }
        )
    }
}

/// The JSON document of a search (`--json` with `--find-max`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindMaxResult {
    /// The tool and its version.
    pub tool: String,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// The machine.
    pub machine: Machine,
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub target: String,
    /// The SLO as given.
    pub slo: String,
    /// Settings of each step (the rate is the first step's).
    pub config: RunConfig,
    /// The highest rate that met the SLO.
    pub max_rate: Option<f64>,
    /// Every step in order.
    pub steps: Vec<StepResult>,
}

/// Runs the search: `probe(rate)` runs one step; `on_step` sees each step as it finishes.
/// At most `max_steps` steps. Returns the best rate and the steps.
pub async fn find_max<F, Fut>(
    mut search: Search,
    slo: &Slo,
    max_steps: usize,
    mut probe: F,
    mut on_step: impl FnMut(&StepResult),
) -> Result<(Option<f64>, Vec<StepResult>), BenchError>
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Result<Measurement, BenchError>>,
{
    let mut steps = Vec::new();
    while steps.len() < max_steps {
        let Some(rate) = search.next_rate() else {
            break;
        };
        let m = probe(rate).await?;
        let verdict = slo.check(rate, &m);
        let step = StepResult {
            rate,
            achieved_rate: m.achieved_rate,
            p50_us: m.latency.p50_us,
            p99_us: m.latency.p99_us,
            p999_us: m.latency.p999_us,
            max_us: m.latency.max_us,
            errors: m.errors,
            pass: verdict.is_ok(),
            reason: verdict.err().unwrap_or_default(),
        };
        search.observe(rate, step.pass);
        on_step(&step);
        steps.push(step);
    }
    Ok((search.best(), steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(s: &str) -> Slo {
        s.parse().unwrap()
    }

    /// A synthetic server: p99 is 1 ms up to `capacity`, then grows steeply.
    fn synthetic(
        capacity: f64,
    ) -> impl FnMut(f64) -> std::future::Ready<Result<Measurement, BenchError>> {
        move |rate| {
            let p99 = if rate <= capacity {
                1_000.0
            } else {
                1_000.0 + (rate - capacity) * 100.0
            };
            std::future::ready(Ok(Measurement {
                achieved_rate: rate,
                latency: LatencySummary {
                    count: 1000,
                    p50_us: 500.0,
                    p99_us: p99,
                    ..LatencySummary::default()
                },
                errors: 0,
                error_ratio: 0.0,
            }))
        }
    }

    fn run(
        search: Search,
        slo: &Slo,
        probe: impl FnMut(f64) -> std::future::Ready<Result<Measurement, BenchError>>,
    ) -> (Option<f64>, Vec<StepResult>) {
        futures::executor::block_on(find_max(search, slo, 64, probe, |_| {})).unwrap()
    }

    #[test]
    fn parses_slos() {
        let s = slo("p99<50ms");
        assert_eq!(
            s.conditions,
            vec![Condition::Latency {
                metric: "p99".into(),
                limit_us: 50_000.0,
                inclusive: false
            }]
        );
        let s = slo("p99.9 <= 200ms, errors<0.5%, max<1s");
        assert_eq!(s.conditions.len(), 3);
        assert_eq!(
            s.conditions[1],
            Condition::Errors {
                limit: 0.005,
                inclusive: false
            }
        );
        assert_eq!(s.to_string(), "p99.9 <= 200ms, errors<0.5%, max<1s");
        for bad in ["", "p99", "p42<1ms", "p99<fast", "errors<150%", "p99>1ms"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
    }

    #[test]
    fn check_conditions() {
        let m = Measurement {
            achieved_rate: 1000.0,
            latency: LatencySummary {
                p99_us: 40_000.0,
                ..LatencySummary::default()
            },
            errors: 0,
            error_ratio: 0.0,
        };
        assert!(slo("p99<50ms").check(1000.0, &m).is_ok());
        assert!(slo("p99<40ms").check(1000.0, &m).is_err());
        assert!(slo("p99<=40ms").check(1000.0, &m).is_ok());
        let reason = slo("p99<50ms").check(2000.0, &m).unwrap_err();
        assert!(reason.contains("achieved"), "{reason}");
        let errors = Measurement {
            error_ratio: 0.02,
            errors: 20,
            ..m.clone()
        };
        assert!(slo("p99<50ms").check(1000.0, &errors).is_err());
        assert!(slo("p99<50ms,errors<5%").check(1000.0, &errors).is_ok());
    }

    #[test]
    fn finds_capacity_within_precision() {
        for capacity in [1.0, 7.0, 900.0, 12_345.0, 250_000.0] {
            let (best, steps) = run(
                Search::new(1000.0, 1e7, 0.02),
                &slo("p99<2ms"),
                synthetic(capacity),
            );
            let best = best.unwrap_or_else(|| panic!("capacity {capacity}: no rate passed"));
            // Rates below capacity + 10 pass (p99 under 2 ms); the bracket closes to 2 %.
            let threshold = capacity + 10.0;
            assert!(best < threshold, "capacity {capacity}: best {best}");
            assert!(
                best >= threshold * 0.98 - 1.0,
                "capacity {capacity}: best {best}"
            );
            assert!(steps.len() < 40, "{} steps", steps.len());
            // The steps are consistent with the verdicts.
            for s in &steps {
                assert_eq!(s.pass, s.rate < threshold, "{s}");
            }
        }
    }

    #[test]
    fn capped_by_max_rate() {
        let (best, steps) = run(
            Search::new(100.0, 1000.0, 0.05),
            &slo("p99<2ms"),
            synthetic(1e9),
        );
        assert_eq!(best, Some(1000.0));
        assert_eq!(steps.last().unwrap().rate, 1000.0);
        assert!(steps.iter().all(|s| s.pass));
    }

    #[test]
    fn nothing_passes() {
        let (best, steps) = run(
            Search::new(64.0, 1e6, 0.05),
            &slo("p99<1us"),
            synthetic(1e9),
        );
        assert_eq!(best, None);
        // 64, 32, 16, 8, 4, 2, 1: halving down to the minimum rate.
        assert_eq!(
            steps.iter().map(|s| s.rate).collect::<Vec<_>>(),
            vec![64.0, 32.0, 16.0, 8.0, 4.0, 2.0, 1.0]
        );
    }

    #[test]
    fn step_limit_is_respected() {
        let steps = futures::executor::block_on(find_max(
            Search::new(1.0, 1e12, 0.0001),
            &slo("p99<2ms"),
            5,
            synthetic(1e9),
            |_| {},
        ))
        .unwrap()
        .1;
        assert_eq!(steps.len(), 5);
    }
}
