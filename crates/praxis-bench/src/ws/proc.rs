//! What the bench reads about a server process from Linux's `/proc`: its resident memory
//! (`VmRSS` in `/proc/PID/status`) and its CPU time (`utime + stime` in `/proc/PID/stat`).
//!
//! CPU times in `/proc/PID/stat` are in clock ticks. Their rate is `sysconf(_SC_CLK_TCK)`,
//! which this crate asks `getconf CLK_TCK` for once (no libc binding: the workspace forbids
//! `unsafe`); when `getconf` is missing it assumes 100, the value on every Linux
//! architecture praxis runs on (x86-64 and arm64 kernels report `USER_HZ` = 100).

use std::sync::OnceLock;
use std::time::Instant;

/// Ticks per second assumed when `getconf CLK_TCK` cannot be run.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// A `/proc` file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (no such process, or not Linux).
    #[error(
        "cannot read /proc/{pid}/{file}: {source} (is {pid} the server's process id, on this machine?)"
    )]
    Read {
        /// The process.
        pid: u32,
        /// `status` or `stat`.
        file: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("/proc/{pid}/{file}: {reason}")]
    Format {
        /// The process.
        pid: u32,
        /// `status` or `stat`.
        file: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
}

/// The resident set size in bytes from the text of `/proc/PID/status` (its `VmRSS:` line,
/// which the kernel writes in kB, that is KiB).
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
///
/// The second field (the command name in parentheses) may itself hold spaces and
/// parentheses, so the fields are counted from the *last* `)`: after it come field 3 (state)
/// onwards, which puts utime (field 14) and stime (field 15) at positions 11 and 12.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let text = read(pid, "status")?;
    parse_status_rss(&text).ok_or(ProcError::Format {
        pid,
        file: "status",
        reason: "no VmRSS line in kB (a kernel thread or a zombie has none)",
    })
}

/// The CPU time process `pid` has used (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, ProcError> {
    let text = read(pid, "stat")?;
    parse_stat_ticks(&text).ok_or(ProcError::Format {
        pid,
        file: "stat",
        reason: "utime and stime (fields 14 and 15) are not numbers",
    })
}

fn read(pid: u32, file: &'static str) -> Result<String, ProcError> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|source| ProcError::Read {
        pid,
        file,
        source,
    })
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, else
/// [`DEFAULT_CLK_TCK`]), asked once per process.
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(DEFAULT_CLK_TCK)
    })
}

/// The CPU time of a set of processes at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// When it was taken.
    pub at: Instant,
    /// `(pid, ticks)` for each process.
    pub ticks: Vec<(u32, u64)>,
}

impl CpuSample {
    /// Samples every process of `pids` now.
    pub fn take(pids: &[u32]) -> Result<Self, ProcError> {
        let ticks = pids
            .iter()
            .map(|&pid| cpu_ticks(pid).map(|t| (pid, t)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CpuSample {
            at: Instant::now(),
            ticks,
        })
    }

    /// CPU seconds each process used between `self` (earlier) and `later`.
    pub fn seconds_until(&self, later: &CpuSample) -> Vec<(u32, f64)> {
        let hz = clock_ticks_per_second() as f64;
        self.ticks
            .iter()
            .zip(&later.ticks)
            .map(|(&(pid, a), &(_, b))| (pid, b.saturating_sub(a) as f64 / hz))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss_in_kib() {
        let status =
            "Name:\tpraxis\nVmPeak:\t  900000 kB\nVmRSS:\t   45236 kB\nRssAnon:\t 30000 kB\n";
        assert_eq!(parse_status_rss(status), Some(45_236 * 1024));
        assert_eq!(parse_status_rss("Name:\tkthreadd\n"), None);
        assert_eq!(parse_status_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_status_rss("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn reads_utime_plus_stime_after_the_last_parenthesis() {
        // Fields 14 and 15 are 250 and 50; the command name holds ") (" to trip a naive split.
        let stat = "4242 (tokio) (rt 1) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 \
                    8 0 123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 \
                    0 0 0 0 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("4242 (x) S 1 2 3"), None);
        assert_eq!(parse_stat_ticks("no parenthesis here"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        let sample = CpuSample::take(&[me]).unwrap();
        let later = CpuSample::take(&[me]).unwrap();
        let used = sample.seconds_until(&later);
        assert_eq!(used.len(), 1);
        assert!(used[0].1 >= 0.0);
        assert!(clock_ticks_per_second() > 0);
        assert!(matches!(
            rss_bytes(u32::MAX),
            Err(ProcError::Read { pid: u32::MAX, .. })
        ));
    }
}
