//! The lease a request holds on an upload while it appends to it or completes it, so two
//! requests (in one process or several) never write one upload at once.
//!
//! The lease lives in the upload's row: a random token and an expiry on the database's clock
//! (the one clock every process agrees on). The holder renews it every third of its length.
//! It also keeps its own conservative deadline on this process's monotonic clock, measured from
//! just before the statement that took or renewed the lease: once that passes, the lease may
//! have gone to another request, so the body stops reaching the blob store ([`Held::fence`]).
//! Recording is fenced by the token itself: a request that lost its lease records nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use praxis_infra::blobs::ByteStream;

use super::{Files, millis};
use crate::domain::model::Upload;
use crate::error::FilesError;
use crate::store::Lease;

/// A lease this request holds.
#[derive(Debug, Clone)]
pub struct Held {
    /// The upload.
    pub upload: String,
    /// The token in the upload's row.
    pub token: String,
    /// When this request must stop writing (this process's clock).
    deadline: Arc<Mutex<Instant>>,
    /// The lease's length.
    length: Duration,
}

impl Held {
    /// Whether the lease may have expired (this process's conservative view).
    fn expired(&self) -> bool {
        Instant::now() >= *self.deadline.lock()
    }

    /// `Ok` while the lease is surely held; the error that tells the client to resume
    /// otherwise.
    pub fn check(&self) -> Result<(), FilesError> {
        if self.expired() {
            return Err(lost(&self.upload));
        }
        Ok(())
    }

    /// `body`, cut with an error as soon as the lease may have expired: no chunk reaches the
    /// blob store after that.
    pub fn fence(&self, body: ByteStream) -> ByteStream {
        let held = self.clone();
        body.scan(false, move |stopped, item| {
            let next = if *stopped {
                None
            } else if held.expired() {
                *stopped = true;
                Some(Err(std::io::Error::other(format!(
                    "the lease of upload {} expired while its body was being written",
                    held.upload
                ))))
            } else {
                Some(item)
            };
            futures::future::ready(next)
        })
        .boxed()
    }
}

/// The error of a request that lost its lease.
pub fn lost(upload: &str) -> FilesError {
    FilesError::Locked(format!(
        "upload {upload} was taken over by another request while this one ran; send HEAD and resume"
    ))
}

impl Files {
    /// The lease's length in milliseconds.
    pub(crate) fn lease_ms(&self) -> i64 {
        millis(self.settings.lock_lease)
    }

    /// Takes `upload`'s lease at `offset`, or the error that tells the client what to do: 409
    /// with the current offset, 423 while another request holds it, 404 once it is gone.
    pub async fn take_lease(&self, upload: &Upload, offset: u64) -> Result<Held, FilesError> {
        let token = uuid::Uuid::new_v4().to_string();
        let length = self.settings.lock_lease;
        let asked = Instant::now();
        match self
            .store
            .take_lease(&upload.id, offset, &token, self.lease_ms())
            .await?
        {
            Lease::Taken => Ok(Held {
                upload: upload.id.clone(),
                token,
                deadline: Arc::new(Mutex::new(asked + length)),
                length,
            }),
            Lease::OffsetMoved(current) => Err(FilesError::OffsetMismatch {
                sent: offset,
                current,
            }),
            Lease::Busy => Err(FilesError::Locked(format!(
                "another request is appending to upload {}; retry when it ends",
                upload.id
            ))),
            Lease::Completed => Err(FilesError::OffsetMismatch {
                sent: offset,
                current: upload.length.unwrap_or(upload.offset),
            }),
            Lease::Missing => Err(FilesError::NotFound(format!(
                "upload {} was terminated",
                upload.id
            ))),
        }
    }

    /// Runs `work` while renewing `held` every third of its length. A lease that cannot be
    /// renewed (taken over after this process stalled) stops the work: what it wrote is never
    /// recorded.
    pub async fn renewing<T>(
        &self,
        held: &Held,
        work: impl Future<Output = T>,
    ) -> Result<T, FilesError> {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(held.length / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tick.tick() => {
                    let asked = Instant::now();
                    let renewed = self
                        .store
                        .renew_lease(&held.upload, &held.token, self.lease_ms())
                        .await
                        .unwrap_or(false);
                    if !renewed {
                        return Err(lost(&held.upload));
                    }
                    *held.deadline.lock() = asked + held.length;
                }
            }
        }
    }

    /// Gives the lease back (after a failure: nothing was recorded).
    pub async fn release(&self, held: &Held) {
        if let Err(e) = self.store.release_lease(&held.upload, &held.token).await {
            tracing::warn!(upload = %held.upload, error = %e, "a lease was not given back; it expires on its own");
        }
    }

    /// Marks `held` as extended by the length of the lease from `asked` (a statement sent at
    /// `asked` extended it on the database).
    pub(crate) fn extended(&self, held: &Held, asked: Instant) {
        *held.deadline.lock() = asked + held.length;
    }
}
