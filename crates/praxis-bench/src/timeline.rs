//! Outcomes over time: responses and errors per 10 ms of *intended* send time, warm-up
//! included. It answers "when did errors start and stop" around an event during a run (an
//! instance killed, a failover), which the run's totals and percentiles cannot.

use std::fmt::Write as _;
use std::time::Duration;

/// The width of one bucket.
pub const BUCKET: Duration = Duration::from_millis(10);

/// Counts in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Requests due in this bucket that got a response (including error statuses).
    pub responses: u64,
    /// Requests due in this bucket that failed (any error kind, statuses included).
    pub errors: u64,
}

/// Responses and errors per bucket of intended send time since the run's start.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    buckets: Vec<Bucket>,
}

impl Timeline {
    /// Records the outcome of a request due `offset` after the run's start.
    pub fn record(&mut self, offset: Duration, responded: bool, error: bool) {
        let index = (offset.as_nanos() / BUCKET.as_nanos()) as usize;
        if index >= self.buckets.len() {
            self.buckets.resize(index + 1, Bucket::default());
        }
        let bucket = &mut self.buckets[index];
        bucket.responses += u64::from(responded);
        bucket.errors += u64::from(error);
    }

    /// Adds `other` into `self`, bucket by bucket.
    pub fn merge(&mut self, other: &Timeline) {
        if other.buckets.len() > self.buckets.len() {
            self.buckets.resize(other.buckets.len(), Bucket::default());
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.responses += b.responses;
            a.errors += b.errors;
        }
    }

    /// The buckets, the first starting at the run's start.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The timeline as CSV: `ms,responses,errors`, one line per bucket (`ms` is the bucket's
    /// start since the run's start, warm-up included).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("ms,responses,errors\n");
        let step = BUCKET.as_millis();
        for (i, b) in self.buckets.iter().enumerate() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{},{},{}", i as u128 * step, b.responses, b.errors);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_land_in_the_bucket_of_their_intended_time_and_merge_by_bucket() {
        let mut a = Timeline::default();
        a.record(Duration::from_millis(3), true, false);
        a.record(Duration::from_millis(9), true, true);
        a.record(Duration::from_millis(25), false, true);
        let mut b = Timeline::default();
        b.record(Duration::from_millis(41), true, false);
        a.merge(&b);
        assert_eq!(
            a.buckets(),
            &[
                Bucket {
                    responses: 2,
                    errors: 1
                },
                Bucket::default(),
                Bucket {
                    responses: 0,
                    errors: 1
                },
                Bucket::default(),
                Bucket {
                    responses: 1,
                    errors: 0
                },
            ]
        );
        assert_eq!(
            a.to_csv(),
            "ms,responses,errors\n0,2,1\n10,0,0\n20,0,1\n30,0,0\n40,1,0\n"
        );
    }
}
