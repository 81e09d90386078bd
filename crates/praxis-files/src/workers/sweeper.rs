//! The lifecycle: expired incomplete uploads are deleted (the expiration extension's
//! promise), interrupted completions are finished, files past their TTL are deleted, and
//! blobs older than `cold_after` move to the cold store. Every step is a conditional change,
//! so several processes may sweep at once.

use praxis_infra::sql::now_ms;
use tokio_util::sync::CancellationToken;

use super::Files;
use crate::error::FilesError;

/// Rows handled per step of one sweep.
const BATCH: u32 = 100;

/// Sweeps every `sweep_interval` until `shutdown`.
pub async fn run(files: Files, shutdown: CancellationToken) {
    let every = files.settings.sweep_interval;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = files.sweep().await {
            tracing::warn!(error = %e, "the files sweeper failed; it retries next interval");
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Expired uploads deleted.
    pub expired_uploads: usize,
    /// Interrupted completions finished.
    pub completed: usize,
    /// Files past their TTL deleted.
    pub expired_files: usize,
    /// Blobs moved to the cold store.
    pub cooled: usize,
}

impl Files {
    /// One sweep (the background task runs it every `sweep_interval`; tests call it).
    pub async fn sweep(&self) -> Result<Swept, FilesError> {
        let now = now_ms();
        let mut swept = Swept::default();
        for upload in self.store.expired_uploads(now, BATCH).await? {
            if let Some(gone) = self.store.delete_upload(&upload.id).await? {
                self.digests.forget(&gone.id);
                let state = serde_json::from_str(&gone.append_state).unwrap_or_default();
                let dropped = if gone.completed_at.is_some() {
                    self.blobs.delete(&gone.blob_key).await
                } else {
                    // And the object of a whole write that was sealed but never recorded.
                    match self.blobs.discard(&gone.blob_key, &state).await {
                        Ok(()) => self.blobs.delete(&gone.blob_key).await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = dropped {
                    tracing::warn!(upload = %gone.id, error = %e, "an expired upload's bytes were not deleted");
                }
                swept.expired_uploads += 1;
                metrics::counter!(super::metrics::SWEPT, "action" => "expired_upload").increment(1);
            }
        }
        for upload in self.store.stalled_completions(BATCH).await? {
            match self.finish_if_full(&upload).await {
                Ok(true) => swept.completed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(upload = %upload.id, error = %e, "an interrupted completion failed again")
                }
            }
        }
        for id in self.store.expired_files(now, BATCH).await? {
            if let Some(deleted) = self.store.delete_file(&id, None).await? {
                self.drop_orphan(deleted.orphan).await;
                swept.expired_files += 1;
                metrics::counter!(super::metrics::SWEPT, "action" => "expired_file").increment(1);
            }
        }
        if let Some(cold) = &self.cold {
            let age = i64::try_from(self.settings.cold_after.as_millis()).unwrap_or(i64::MAX);
            for blob in self
                .store
                .cold_candidates(now.saturating_sub(age), BATCH)
                .await?
            {
                let body = self.blobs.read(&blob.blob_key, 0..blob.size).await?;
                if blob.size > 0 {
                    cold.put(&blob.blob_key, body).await?;
                } else {
                    cold.put(&blob.blob_key, Box::pin(futures::stream::empty()))
                        .await?;
                }
                if self
                    .store
                    .set_tier(&blob.hash, &blob.blob_key, "cold")
                    .await?
                {
                    // A reader that looked up the tier before the switch keeps its stream: an
                    // open local file survives its deletion, and an S3 GET under way keeps
                    // its response. A reader that opens the hot key after this fails once
                    // (404) and finds the cold tier on its next request.
                    let _ = self.blobs.delete(&blob.blob_key).await;
                    swept.cooled += 1;
                    metrics::counter!(super::metrics::SWEPT, "action" => "cold").increment(1);
                } else {
                    let _ = cold.delete(&blob.blob_key).await;
                }
            }
        }
        Ok(swept)
    }
}
