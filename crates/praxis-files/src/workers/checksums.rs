//! The SHA-256 of each new file, computed after its upload completed, off the upload path.
//!
//! The upload path digests only the BLAKE3 that addresses a content: SHA-256 was 43 % of a
//! server core during an upload (D80). This worker reads each file whose `sha256` is NULL back
//! from the store and sets it, for every file of that content at once; a content whose
//! SHA-256 another file already has is not read again. Several processes may run it: the
//! update only fills NULLs, and the digest of one content is the same wherever it is computed.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Files;
use crate::domain::digest::Sha256Digest;
use crate::error::FilesError;

/// How often files without a SHA-256 are looked for without a wake-up (completed by another
/// process, or a read that failed).
const POLL: Duration = Duration::from_secs(5);

/// Fills in SHA-256s until `shutdown`.
pub async fn run(files: Files, shutdown: CancellationToken) {
    loop {
        match files.fill_checksums().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the checksum pass failed; it retries"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = files.checksum_wakeup.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

impl Files {
    /// Sets the SHA-256 of up to 16 files that have none; the number of files set.
    pub async fn fill_checksums(&self) -> Result<u64, FilesError> {
        let mut set = 0;
        for file in self.store.unsummed_files(16).await? {
            let sha256 = match self.store.known_sha256(&file.blake3).await? {
                Some(known) => known,
                // One unreadable content must not stop the others: it is logged and tried
                // again on a later pass.
                None => match self.sha256_of(&file).await {
                    Ok(sum) => sum,
                    Err(e) => {
                        tracing::warn!(file = %file.id, error = %e, "a file's SHA-256 could not be computed; retried later");
                        continue;
                    }
                },
            };
            set += self.store.set_sha256(&file.blake3, &sha256).await?;
        }
        Ok(set)
    }

    async fn sha256_of(&self, file: &crate::domain::model::FileMeta) -> Result<String, FilesError> {
        let mut d = Sha256Digest::default();
        if file.size > 0 {
            let mut body = self.read_content(file, 0..file.size).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| praxis_infra::InfraError::Blob(e.to_string()))?;
                d.update(&chunk);
            }
        }
        Ok(d.finish())
    }
}
