//! The file storage's use cases ([`Files`]) and its background work: the sweeper
//! ([`sweeper`]) and the scanner ([`scan`]).

pub mod checksums;
pub mod digests;
pub mod files;
pub mod lease;
pub mod metrics;
pub mod scan;
pub mod sweeper;
pub mod tap;
pub mod uploads;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use praxis_infra::blobs::Blobs;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::model::FileUsage;
use crate::domain::signed::Signer;
use crate::error::FilesError;
use crate::settings::FilesSettings;
use crate::store::{Quota, Store};
use digests::DigestCache;

/// A duration in whole milliseconds, as the tables keep times.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How often a background queue looks for work without a wake-up (work another process
/// added, or work put off after a failure).
const QUEUE_POLL: Duration = Duration::from_secs(5);

/// Runs one background queue until `shutdown`: `pass` again at once while it finds work
/// (`Ok(true)`), else after a `wakeup` or [`QUEUE_POLL`]. A failed pass is logged as `what`'s
/// and retried.
pub(crate) async fn run_queue<F, Fut>(
    what: &str,
    wakeup: &Notify,
    shutdown: CancellationToken,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, FilesError>>,
{
    loop {
        match pass().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(queue = what, error = %e, "a background pass failed; it retries")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeup.notified() => {}
            () = tokio::time::sleep(QUEUE_POLL) => {}
        }
    }
}

/// Every use case of the file storage. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    pub(crate) store: Store,
    pub(crate) blobs: Blobs,
    pub(crate) cold: Option<Blobs>,
    pub(crate) settings: Arc<FilesSettings>,
    pub(crate) signer: Signer,
    pub(crate) digests: Arc<DigestCache>,
    pub(crate) scan_wakeup: Arc<Notify>,
    pub(crate) checksum_wakeup: Arc<Notify>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("blobs", &self.blobs)
            .field("cold", &self.cold)
            .finish_non_exhaustive()
    }
}

impl Files {
    /// The use cases on `store` and `blobs` (and a cold store), signing URLs with `signer`.
    pub fn new(
        store: Store,
        blobs: Blobs,
        cold: Option<Blobs>,
        settings: Arc<FilesSettings>,
        signer: Signer,
    ) -> Self {
        Self {
            store,
            blobs,
            cold,
            settings,
            signer,
            digests: Arc::default(),
            scan_wakeup: Arc::default(),
            checksum_wakeup: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &FilesSettings {
        &self.settings
    }

    /// The store (tests inspect rows through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hot blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The signer of download URLs.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub(crate) fn expiry_ms(&self) -> i64 {
        i64::try_from(self.settings.upload_expiry.as_millis()).unwrap_or(i64::MAX)
    }

    fn default_quota(&self) -> Quota {
        Quota {
            max_bytes: self.settings.quota_bytes as u64,
            max_files: self.settings.quota_files,
        }
    }

    /// The quota of `owner`.
    pub async fn quota_of(&self, owner: &str) -> Result<Quota, FilesError> {
        Ok(self.store.quota(owner, self.default_quota()).await?)
    }

    /// What `owner` holds and may hold.
    pub async fn usage(&self, owner: &str) -> Result<FileUsage, FilesError> {
        let quota = self.quota_of(owner).await?;
        Ok(self.store.usage(owner, quota).await?)
    }

    /// Sets `owner`'s own quota (an admin's act).
    pub async fn set_quota(&self, owner: &str, quota: Quota) -> Result<FileUsage, FilesError> {
        self.store.set_quota(owner, quota).await?;
        self.usage(owner).await
    }
}
