//! Recording: HdrHistograms per request kind and error counters, one [`Recorder`] per worker
//! thread (no sharing, no locks), merged at the end.
//!
//! Values are nanoseconds with three significant digits (exact below 2 µs, 0.1 % above),
//! up to one hour; larger values are clamped to the maximum.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::timeline::Timeline;

/// The largest recordable value: one hour in nanoseconds.
pub const MAX_TRACKABLE_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// Why a request did not produce an expected response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection or the HTTP handshake failed.
    Connect,
    /// No complete response within the timeout (or the request could not even be sent before
    /// the end-of-run drain deadline).
    Timeout,
    /// A 4xx status that was not the expected one.
    Status4xx,
    /// A 5xx status that was not the expected one.
    Status5xx,
    /// Another status that differs from the expected one (e.g. 200 instead of 301).
    UnexpectedStatus,
    /// The connection failed while sending or receiving.
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::UnexpectedStatus,
        ErrorKind::Io,
    ];

    /// The stable name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::UnexpectedStatus => "unexpected_status",
            ErrorKind::Io => "io",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Classifies a response status against the expectation. `None` means success: the status
    /// is the expected one, or no status was expected and it is below 400.
    pub fn classify(status: u16, expected: Option<u16>) -> Option<ErrorKind> {
        match expected {
            Some(e) if e == status => None,
            None if status < 400 => None,
            _ => Some(match status {
                400..=499 => ErrorKind::Status4xx,
                500..=599 => ErrorKind::Status5xx,
                _ => ErrorKind::UnexpectedStatus,
            }),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new latency histogram with the crate's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's preconditions (low >= 1,
    // high >= 2 * low, sigfig <= 5), so construction cannot fail.
    match Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, SIGFIG) {
        Ok(h) => h,
        Err(_) => unreachable!("constant histogram bounds are valid"),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// What one request kind recorded.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// Latency from the intended send time to the end of the response (coordinated-omission
    /// free): what users of an open system experience.
    pub latency: Histogram<u64>,
    /// Time from the actual send to the end of the response (what a closed-loop tool reports).
    pub service: Histogram<u64>,
    /// Responses received (any status).
    pub responses: u64,
    /// Errors by [`ErrorKind`] index.
    errors: [u64; 6],
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats {
            latency: new_histogram(),
            service: new_histogram(),
            responses: 0,
            errors: [0; 6],
        }
    }
}

impl KindStats {
    /// The count of errors of `kind`.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// All errors.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    fn merge(&mut self, other: &KindStats) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.responses += other.responses;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
    }
}

/// Counters and histograms of one worker thread (or, after [`Recorder::merge`], of the run).
#[derive(Debug, Clone)]
pub struct Recorder {
    kinds: Vec<KindStats>,
    names: Vec<String>,
    /// How late requests were sent relative to their intended time (generator health).
    pub lag: Histogram<u64>,
    /// Latencies since the last progress tick, all kinds, warm-up included.
    pub live: Histogram<u64>,
    /// Responses since the last progress tick.
    pub live_responses: u64,
    /// Errors since the last progress tick.
    pub live_errors: u64,
    /// Outcomes per 10 ms of intended send time, warm-up included.
    pub timeline: Timeline,
}

impl Recorder {
    /// A recorder for the given request kinds (index = kind id).
    pub fn new(names: &[String]) -> Self {
        Recorder {
            kinds: names.iter().map(|_| KindStats::default()).collect(),
            names: names.to_vec(),
            lag: new_histogram(),
            live: new_histogram(),
            live_responses: 0,
            live_errors: 0,
            timeline: Timeline::default(),
        }
    }

    /// Records a response of kind `kind`. `measured` is false during warm-up: only the live
    /// view sees it.
    pub fn response(
        &mut self,
        kind: usize,
        latency: Duration,
        service: Duration,
        error: Option<ErrorKind>,
        measured: bool,
    ) {
        let latency_ns = nanos(latency);
        self.live.saturating_record(latency_ns);
        self.live_responses += 1;
        if error.is_some() {
            self.live_errors += 1;
        }
        if !measured {
            return;
        }
        if let Some(stats) = self.kinds.get_mut(kind) {
            stats.latency.saturating_record(latency_ns);
            stats.service.saturating_record(nanos(service));
            stats.responses += 1;
            if let Some(e) = error {
                stats.errors[e.index()] += 1;
            }
        }
    }

    /// Records a request that got no response.
    pub fn failure(&mut self, kind: usize, error: ErrorKind, measured: bool) {
        self.live_errors += 1;
        if !measured {
            return;
        }
        if let Some(stats) = self.kinds.get_mut(kind) {
            stats.errors[error.index()] += 1;
        }
    }

    /// Records how late a request was sent.
    pub fn send_lag(&mut self, lag: Duration, measured: bool) {
        if measured {
            self.lag.saturating_record(nanos(lag));
        }
    }

    /// Takes the live view and resets it.
    pub fn take_live(&mut self) -> (Histogram<u64>, u64, u64) {
        let hist = self.live.clone();
        self.live.reset();
        let out = (hist, self.live_responses, self.live_errors);
        self.live_responses = 0;
        self.live_errors = 0;
        out
    }

    /// Adds `other` (same kinds) into `self`.
    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.kinds.iter_mut().zip(&other.kinds) {
            a.merge(b);
        }
        let _ = self.lag.add(&other.lag);
        let _ = self.live.add(&other.live);
        self.live_responses += other.live_responses;
        self.live_errors += other.live_errors;
        self.timeline.merge(&other.timeline);
    }

    /// The kinds with their names, in kind-id order.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &KindStats)> {
        self.names.iter().map(String::as_str).zip(&self.kinds)
    }

    /// One kind's stats by name.
    pub fn kind(&self, name: &str) -> Option<&KindStats> {
        self.kinds().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    /// All kinds merged into one.
    pub fn overall(&self) -> KindStats {
        let mut all = KindStats::default();
        for k in &self.kinds {
            all.merge(k);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_statuses() {
        assert_eq!(ErrorKind::classify(301, Some(301)), None);
        assert_eq!(ErrorKind::classify(404, Some(404)), None);
        assert_eq!(ErrorKind::classify(200, None), None);
        assert_eq!(ErrorKind::classify(302, None), None);
        assert_eq!(
            ErrorKind::classify(200, Some(301)),
            Some(ErrorKind::UnexpectedStatus)
        );
        assert_eq!(
            ErrorKind::classify(404, Some(301)),
            Some(ErrorKind::Status4xx)
        );
        assert_eq!(ErrorKind::classify(503, None), Some(ErrorKind::Status5xx));
        assert_eq!(ErrorKind::classify(429, None), Some(ErrorKind::Status4xx));
    }

    #[test]
    fn warmup_is_excluded_and_merge_adds() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let mut r1 = Recorder::new(&names);
        r1.response(
            0,
            Duration::from_millis(5),
            Duration::from_millis(1),
            None,
            false,
        );
        r1.response(
            0,
            Duration::from_millis(7),
            Duration::from_millis(2),
            None,
            true,
        );
        r1.failure(1, ErrorKind::Timeout, true);
        r1.failure(1, ErrorKind::Timeout, false);
        let mut r2 = Recorder::new(&names);
        r2.response(
            1,
            Duration::from_millis(3),
            Duration::from_millis(3),
            Some(ErrorKind::Status5xx),
            true,
        );
        r1.merge(&r2);
        let a = r1.kind("a").unwrap();
        assert_eq!(a.responses, 1);
        assert_eq!(a.latency.len(), 1);
        assert!(a.latency.equivalent(a.latency.max(), 7_000_000));
        let b = r1.kind("b").unwrap();
        assert_eq!(b.errors(ErrorKind::Timeout), 1);
        assert_eq!(b.errors(ErrorKind::Status5xx), 1);
        assert_eq!(b.total_errors(), 2);
        let all = r1.overall();
        assert_eq!(all.responses, 2);
        assert_eq!(all.total_errors(), 2);
        let (live, responses, errors) = r1.take_live();
        assert_eq!(live.len(), 3);
        assert_eq!(responses, 3);
        assert_eq!(errors, 3);
        assert_eq!(r1.live.len(), 0);
    }

    #[test]
    fn huge_values_are_clamped() {
        let mut r = Recorder::new(&["x".to_owned()]);
        r.response(0, Duration::from_secs(10_000), Duration::ZERO, None, true);
        let x = r.kind("x").unwrap();
        assert_eq!(x.latency.len(), 1);
        assert!(x.latency.max() >= MAX_TRACKABLE_NS / 2);
    }
}
