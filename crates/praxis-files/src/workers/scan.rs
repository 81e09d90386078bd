//! The scan hook: a completed file waits (`pending`) until the configured scanner passes it.
//! The scanner is a command (for example `clamdscan --no-summary`) run with a local copy of
//! the file's path as its last argument: exit 0 makes the file `ready`, exit 1
//! `quarantined`; anything else (a crash, a timeout, exit 2 for clamdscan's errors) leaves
//! it pending for the next pass.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use praxis_infra::sql::now_ms;

use super::{Files, millis};
use crate::domain::model::{FileMeta, FileStatus};
use crate::error::FilesError;

/// How long a file the scanner could not decide waits before it is scanned again (the files
/// behind it go first meanwhile).
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Scans pending files until `shutdown`, copying each into `scratch` first.
pub async fn run(files: Files, scratch: PathBuf, shutdown: CancellationToken) {
    let wakeup = files.scan_wakeup.clone();
    super::run_queue("scan", &wakeup, shutdown, || async {
        Ok(files.scan_pending(&scratch).await? > 0)
    })
    .await;
}

impl Files {
    /// Scans up to 16 pending files; the number that got a verdict.
    pub async fn scan_pending(&self, scratch: &std::path::Path) -> Result<usize, FilesError> {
        let Some(command) = self.settings.scan_command.clone() else {
            return Ok(0);
        };
        let mut decided = 0;
        let now = now_ms();
        for file in self.store.pending_files(now, 16).await? {
            match self.scan_one(&command, &file, scratch).await {
                Ok(status) => {
                    self.store.set_status(&file.id, status).await?;
                    metrics::counter!(super::metrics::SCANNED, "verdict" => status.as_str())
                        .increment(1);
                    decided += 1;
                }
                Err(e) => {
                    metrics::counter!(super::metrics::SCANNED, "verdict" => "error").increment(1);
                    tracing::warn!(file = %file.id, error = %e, "the scanner could not decide; the file stays pending and is scanned again later");
                    self.store
                        .defer_scan(&file.id, now + millis(RETRY_AFTER))
                        .await?;
                }
            }
        }
        Ok(decided)
    }

    async fn scan_one(
        &self,
        command: &str,
        file: &FileMeta,
        scratch: &std::path::Path,
    ) -> Result<FileStatus, String> {
        tokio::fs::create_dir_all(scratch)
            .await
            .map_err(|e| format!("scratch directory {}: {e}", scratch.display()))?;
        let path = scratch.join(format!("scan-{}", file.id));
        let copied = self.copy_to(file, &path).await;
        let verdict = match copied {
            Ok(()) => self.run_scanner(command, &path).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&path).await;
        verdict
    }

    async fn copy_to(&self, file: &FileMeta, path: &std::path::Path) -> Result<(), String> {
        let mut out = tokio::fs::File::create(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut body = self
            .read_content(file, 0..file.size)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            out.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        out.flush().await.map_err(|e| e.to_string())
    }

    async fn run_scanner(
        &self,
        command: &str,
        path: &std::path::Path,
    ) -> Result<FileStatus, String> {
        let mut words = command.split_whitespace();
        let program = words.next().ok_or("scan_command is empty")?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(words)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
        let out = tokio::time::timeout(self.settings.scan_timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("{program} ran longer than scan_timeout"))?
            .map_err(|e| format!("{program}: {e}"))?;
        match out.status.code() {
            Some(0) => Ok(FileStatus::Ready),
            Some(1) => Ok(FileStatus::Quarantined),
            other => Err(format!(
                "{program} exited with {other:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}
