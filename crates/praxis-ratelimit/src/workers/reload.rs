//! Limits reloaded without restart: the limit file (or folder) is polled (modification time,
//! size and inode of each file, once per `reload_interval`); when that changes, the files are
//! read, parsed and compiled, and the new [`Rules`] replace the old ones atomically (an
//! `ArcSwap`: checks in flight finish with the rules they started with). A file that does not
//! load keeps the old rules, logs the error (file, field, what is wrong) and shows it in
//! `GET /api/v1/ratelimit/config` until a good version loads.
//!
//! Metrics: [`RELOADS_TOTAL`] `{result=ok|error}` and the gauge [`GENERATION`] (1 at start, +1
//! per applied change).

use praxis_infra::sql::now_ms;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::domain::limits::{LimitsError, Rules, files_of};
use crate::workers::decide::Decider;

/// Counter of reload attempts after a change of the files, labelled `result` (`ok`, `error`).
pub const RELOADS_TOTAL: &str = "praxis_ratelimit_service_config_reloads_total";
/// Gauge: how many versions of the limits this process has loaded (1 at start).
pub const GENERATION: &str = "praxis_ratelimit_service_config_generation";

/// What is loaded, for the config endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Content hash of the limit files in force (`none` without a file).
    pub version: String,
    /// 1 for the rules loaded at start, +1 for each change applied since.
    pub generation: u64,
    /// When the rules in force were loaded (unix ms).
    pub loaded_at_ms: i64,
    /// The last failed reload, if it came after the rules in force: (unix ms, error).
    pub last_error: Option<(i64, String)>,
}

/// The decider with the bookkeeping of reloads.
#[derive(Debug)]
pub struct Reloader {
    decider: Arc<Decider>,
    source: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

/// The files' identity: for each file, its path, modification time, size and inode.
pub(crate) type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64, u64)>;

/// The identity of the files at `path` now; taken *before* they are read, so a change made
/// while they are read is seen by the next poll.
pub(crate) fn fingerprint(path: &Path) -> Result<Fingerprint, LimitsError> {
    let mut out = Vec::new();
    for file in files_of(path)? {
        let meta = std::fs::metadata(&file).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
        #[cfg(unix)]
        let ino = meta.as_ref().map_or(0, std::os::unix::fs::MetadataExt::ino);
        #[cfg(not(unix))]
        let ino = 0;
        out.push((file, modified, len, ino));
    }
    Ok(out)
}

impl Reloader {
    /// Bookkeeping for `decider`, whose rules came from `source` (if any).
    pub fn new(decider: Arc<Decider>, source: Option<PathBuf>) -> Self {
        let version = decider.rules().version.clone();
        metrics::gauge!(GENERATION).set(1.0);
        Self {
            decider,
            source,
            loaded: Mutex::new(Loaded {
                version,
                generation: 1,
                loaded_at_ms: now_ms(),
                last_error: None,
            }),
        }
    }

    /// The decider.
    pub fn decider(&self) -> &Arc<Decider> {
        &self.decider
    }

    /// The limit file or folder, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// What is loaded.
    pub fn loaded(&self) -> Loaded {
        self.loaded.lock().clone()
    }

    /// Loads the files again and applies them when they load and differ from the rules in
    /// force; a failure keeps the rules in force and is returned (and remembered for the
    /// config endpoint).
    pub fn reload(&self) -> Result<bool, LimitsError> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        match Rules::load(source) {
            Ok(rules) => {
                metrics::counter!(RELOADS_TOTAL, "result" => "ok").increment(1);
                let mut loaded = self.loaded.lock();
                loaded.last_error = None;
                if rules.version == loaded.version {
                    return Ok(false);
                }
                let version = rules.version.clone();
                let domains = rules.summary.clone();
                let old = self.decider.swap(rules);
                loaded.version = version;
                loaded.generation += 1;
                loaded.loaded_at_ms = now_ms();
                metrics::gauge!(GENERATION).set(loaded.generation as f64);
                tracing::info!(
                    file = %source.display(),
                    version = %loaded.version,
                    previous = %old.version,
                    generation = loaded.generation,
                    domains = ?domains,
                    "rate-limit service: limits reloaded"
                );
                Ok(true)
            }
            Err(e) => {
                metrics::counter!(RELOADS_TOTAL, "result" => "error").increment(1);
                let mut loaded = self.loaded.lock();
                tracing::error!(
                    error = %e,
                    version = %loaded.version,
                    "rate-limit service: limits not reloaded; the rules in force stay"
                );
                loaded.last_error = Some((now_ms(), e.to_string()));
                Err(e)
            }
        }
    }

    /// Polls the files every `interval` until `shutdown`, reloading when they change from
    /// `loaded` (their fingerprint taken before the rules in force were read).
    pub(crate) async fn watch(
        self: Arc<Self>,
        loaded: Option<Fingerprint>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let mut last = loaded;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            let source = source.clone();
            let previous = last.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let now = fingerprint(&source).ok();
                if now != previous {
                    // A failure is logged and shown by the config endpoint.
                    let _ = this.reload();
                }
                now
            })
            .await;
            match polled {
                Ok(now) => last = now,
                Err(e) => tracing::warn!(error = %e, "rate-limit service: reload task failed"),
            }
        }
    }
}
