//! The machine-readable result of a run (`--json FILE`), built from the merged recordings.
//!
//! Latencies are in microseconds (floating point, nanosecond precision). `latency` is measured
//! from the intended send time (coordinated-omission free); `service_time` from the actual send
//! (what a closed-loop tool would report); `schedule_lag` is how late requests left.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::record::{ErrorKind, KindStats};
use crate::runner::{LoadPlan, RunOutcome};
use crate::schedule::Arrival;

/// The JSON schema version.
pub const SCHEMA: u32 = 1;

/// One point of the percentile spectrum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    /// Percentile in [0, 100].
    pub percentile: f64,
    /// Latency at that percentile, microseconds.
    pub latency_us: f64,
}

/// Percentiles of one histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummary {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest value.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
    /// Largest value.
    pub max_us: f64,
    /// Percentile spectrum from p0 up to the nines the sample count supports, then p100.
    pub spectrum: Vec<SpectrumPoint>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl LatencySummary {
    /// Summarises a nanosecond histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let q = |p: f64| us(h.value_at_quantile(p));
        let count = h.len();
        // Up to log10(count) nines (at most 6), in steps of 0.1 nine.
        let max_nines = (count as f64).log10().clamp(1.0, 6.0);
        let steps = (max_nines * 10.0).floor() as u32;
        let mut spectrum: Vec<SpectrumPoint> = (0..=steps)
            .map(|i| {
                let nines = f64::from(i) / 10.0;
                let quantile = 1.0 - 10f64.powf(-nines);
                SpectrumPoint {
                    percentile: round6(quantile * 100.0),
                    latency_us: q(quantile),
                }
            })
            .collect();
        spectrum.push(SpectrumPoint {
            percentile: 100.0,
            latency_us: us(h.max()),
        });
        LatencySummary {
            count,
            min_us: us(h.min()),
            mean_us: h.mean().round() / 1000.0,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
            max_us: us(h.max()),
            spectrum,
        }
    }

    /// A percentile by name: `p50`, `p90`, `p99`, `p99.9`, `p99.99`, `max`, `min`, `mean`.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "min" => self.min_us,
            "mean" => self.mean_us,
            "p50" => self.p50_us,
            "p90" => self.p90_us,
            "p99" => self.p99_us,
            "p99.9" | "p999" => self.p999_us,
            "p99.99" | "p9999" => self.p9999_us,
            "max" | "p100" => self.max_us,
            _ => return None,
        })
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The settings a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Target rate, requests per second.
    pub rate: f64,
    /// Measured duration, seconds.
    pub duration_s: f64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Connections.
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Arrival process.
    pub arrival: Arrival,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// Random seed.
    pub seed: u64,
}

impl RunConfig {
    /// The configuration of `plan`.
    pub fn from_plan(plan: &LoadPlan) -> Self {
        RunConfig {
            rate: plan.rate,
            duration_s: plan.duration.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            connections: plan.connections,
            threads: plan.threads.clamp(1, plan.connections.max(1)),
            arrival: plan.arrival,
            timeout_s: plan.timeout.as_secs_f64(),
            seed: plan.seed,
        }
    }
}

/// Where the run happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Total memory, bytes, when known.
    pub memory_bytes: Option<u64>,
    /// CPU model, when known.
    pub cpu: Option<String>,
    /// Operating system and architecture.
    pub os: String,
}

impl Machine {
    /// Describes this machine (best effort, from /proc on Linux).
    pub fn detect() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_bytes,
            cpu,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Results of one request kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindResult {
    /// The kind's name.
    pub name: String,
    /// Responses received (any status).
    pub responses: u64,
    /// Errors by kind name (every kind listed, zeros included).
    pub errors: BTreeMap<String, u64>,
    /// Sum of `errors`.
    pub error_total: u64,
    /// Latency from the intended send time.
    pub latency: LatencySummary,
    /// Latency from the actual send time.
    pub service_time: LatencySummary,
}

impl KindResult {
    fn from_stats(name: &str, stats: &KindStats) -> Self {
        let errors = ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), stats.errors(*k)))
            .collect();
        KindResult {
            name: name.to_owned(),
            responses: stats.responses,
            errors,
            error_total: stats.total_errors(),
            latency: LatencySummary::from_histogram(&stats.latency),
            service_time: LatencySummary::from_histogram(&stats.service),
        }
    }
}

/// The JSON document of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Schema version ([`SCHEMA`]).
    pub schema: u32,
    /// The tool and its version.
    pub tool: String,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// The command line that produced it.
    pub command: Vec<String>,
    /// The machine.
    pub machine: Machine,
    /// The scenario's name ("url" in URL mode).
    pub scenario: String,
    /// The target URL.
    pub target: String,
    /// The settings.
    pub config: RunConfig,
    /// True if stopped early.
    pub interrupted: bool,
    /// Length of the measured window, seconds.
    pub elapsed_s: f64,
    /// Requests due in the measured window.
    pub scheduled: u64,
    /// Responses received for them (any status).
    pub responses: u64,
    /// `responses / elapsed_s`.
    pub achieved_rate: f64,
    /// All errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Sum of `errors`.
    pub error_total: u64,
    /// All kinds: latency from the intended send time.
    pub latency: LatencySummary,
    /// All kinds: latency from the actual send time.
    pub service_time: LatencySummary,
    /// How late requests were sent relative to their intended time.
    pub schedule_lag: LatencySummary,
    /// Per request kind.
    pub kinds: Vec<KindResult>,
}

impl BenchResult {
    /// Builds the document from a finished run.
    pub fn from_outcome(plan: &LoadPlan, outcome: &RunOutcome, started_at: String) -> Self {
        let overall = KindResult::from_stats("all", &outcome.recorder.overall());
        let kinds = outcome
            .recorder
            .kinds()
            .map(|(name, stats)| KindResult::from_stats(name, stats))
            .collect();
        let elapsed_s = outcome.elapsed.as_secs_f64();
        BenchResult {
            schema: SCHEMA,
            tool: format!("praxis-bench {}", env!("CARGO_PKG_VERSION")),
            started_at,
            command: std::env::args().collect(),
            machine: Machine::detect(),
            scenario: plan.workload.name.clone(),
            target: plan.workload.target.url.clone(),
            config: RunConfig::from_plan(plan),
            interrupted: outcome.interrupted,
            elapsed_s,
            scheduled: outcome.scheduled,
            responses: overall.responses,
            achieved_rate: if elapsed_s > 0.0 {
                overall.responses as f64 / elapsed_s
            } else {
                0.0
            },
            errors: overall.errors,
            error_total: overall.error_total,
            latency: overall.latency,
            service_time: overall.service_time,
            schedule_lag: LatencySummary::from_histogram(&outcome.recorder.lag),
            kinds,
        }
    }

    /// Errors as a fraction of scheduled requests.
    pub fn error_ratio(&self) -> f64 {
        let total = self.responses.max(self.scheduled).max(1);
        self.error_total as f64 / total as f64
    }

    /// Writes pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        write_json(path, self)
    }

    /// Reads a result written by [`BenchResult::write_json`].
    pub fn read_json(path: &Path) -> Result<Self, BenchError> {
        read_json(path)
    }
}

/// Writes any serialisable value as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BenchError> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| BenchError::File {
        path: path.to_owned(),
        source: e,
    })
}

/// Reads a JSON file into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::File {
        path: path.to_owned(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| BenchError::Config(format!("{}: {e}", path.display())))
}

/// The current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::new_histogram;

    /// A synthetic result for tests of the consumers (report, compare).
    pub(crate) fn sample_result(scale: f64) -> BenchResult {
        let mut h = new_histogram();
        for i in 1..=10_000u64 {
            h.record((i as f64 * 100.0 * scale) as u64).unwrap();
        }
        let summary = LatencySummary::from_histogram(&h);
        let errors: BTreeMap<String, u64> = ErrorKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_owned(),
                    u64::from(*k == ErrorKind::Timeout) * 3,
                )
            })
            .collect();
        BenchResult {
            schema: SCHEMA,
            tool: "praxis-bench test".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            command: vec!["praxis".into(), "bench".into()],
            machine: Machine {
                cores: 2,
                memory_bytes: Some(1 << 30),
                cpu: Some("test cpu".into()),
                os: "linux x86_64".into(),
            },
            scenario: "url".into(),
            target: "http://127.0.0.1:1/".into(),
            config: RunConfig {
                rate: 1000.0,
                duration_s: 10.0,
                warmup_s: 2.0,
                connections: 8,
                threads: 1,
                arrival: Arrival::Uniform,
                timeout_s: 5.0,
                seed: 1,
            },
            interrupted: false,
            elapsed_s: 10.0,
            scheduled: 10_003,
            responses: 10_000,
            achieved_rate: 1000.0 / scale.max(1.0),
            errors: errors.clone(),
            error_total: 3,
            latency: summary.clone(),
            service_time: summary.clone(),
            schedule_lag: LatencySummary::default(),
            kinds: vec![KindResult {
                name: "default".into(),
                responses: 10_000,
                errors,
                error_total: 3,
                latency: summary.clone(),
                service_time: summary,
            }],
        }
    }

    #[test]
    fn summary_percentiles() {
        let mut h = new_histogram();
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() <= 1.0, "{}", s.p50_us);
        assert!((s.p99_us - 990.0).abs() <= 1.0, "{}", s.p99_us);
        assert!((s.max_us - 1000.0).abs() <= 1.0, "{}", s.max_us);
        assert!((s.min_us - 1.0).abs() < 0.01);
        assert_eq!(s.spectrum.first().unwrap().percentile, 0.0);
        assert_eq!(s.spectrum.last().unwrap().percentile, 100.0);
        // 1000 samples support three nines: p0 .. p99.9 in 0.1-nine steps, then p100.
        assert_eq!(s.spectrum.len(), 32);
        assert!(
            s.spectrum
                .windows(2)
                .all(|w| w[0].latency_us <= w[1].latency_us)
        );
        assert_eq!(s.get("p99.9"), Some(s.p999_us));
        assert_eq!(s.get("p42"), None);
        assert_eq!(LatencySummary::from_histogram(&new_histogram()).count, 0);
    }

    #[test]
    fn json_round_trip() {
        let r = sample_result(1.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        r.write_json(&path).unwrap();
        let back = BenchResult::read_json(&path).unwrap();
        assert_eq!(back, r);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"p99_us\""));
        assert!(text.contains("\"arrival\": \"uniform\""));
    }

    #[test]
    fn error_ratio() {
        let r = sample_result(1.0);
        assert!((r.error_ratio() - 3.0 / 10_003.0).abs() < 1e-12);
    }
}
