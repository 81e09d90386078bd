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

use praxis_infra::sql::now_ms;

use super::{Files, millis};
use crate::domain::digest::Sha256Digest;
use crate::error::FilesError;

/// How long a file whose content could not be read waits before it is tried again (the files
/// behind it go first meanwhile).
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Fills in SHA-256s until `shutdown`.
pub async fn run(files: Files, shutdown: CancellationToken) {
    let wakeup = files.checksum_wakeup.clone();
    super::run_queue("checksums", &wakeup, shutdown, || async {
        Ok(files.fill_checksums().await? > 0)
    })
    .await;
}

impl Files {
    /// Sets the SHA-256 of up to 16 files that have none; the number of files set. A file
    /// whose content cannot be read is put off for [`RETRY_AFTER`].
    pub async fn fill_checksums(&self) -> Result<u64, FilesError> {
        let mut set = 0;
        let now = now_ms();
        for file in self.store.unsummed_files(now, 16).await? {
            let sha256 = match self.store.known_sha256(&file.blake3).await? {
                Some(known) => known,
                // One unreadable content must not stop the others: it is logged, put off,
                // and tried again after the files behind it.
                None => match self.sha256_of(&file).await {
                    Ok(sum) => sum,
                    Err(e) => {
                        tracing::warn!(file = %file.id, error = %e, "a file's SHA-256 could not be computed; retried later");
                        self.store
                            .defer_checksum(&file.id, now + millis(RETRY_AFTER))
                            .await?;
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
