//! Blobs in a local folder, with tokio::fs rather than object_store's `LocalFileSystem`: an
//! append needs "truncate to the recorded length, write after it, fsync", which is three calls
//! on an open file here, while object_store's local store only writes whole objects (its
//! multipart upload stages parts in a temporary file that cannot be reopened by another
//! process). Plain files also make `read` a seek and a bounded reader, and `put` a temporary
//! file renamed into place.
//!
//! Layout under the root: objects at `<key>`, objects-in-progress at `.partial/<key>`,
//! temporary files of `put` and `copy` at `.tmp/<random>` (same file system, so the rename is
//! atomic). Keys never start a segment with `.`, so neither folder can be named by a key.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{Appended, Appending, BlobAppendError, ByteStream, blob_err, range_err};
use crate::InfraError;

/// Write buffer of puts and appends: few, large writes to the file.
const WRITE_BUFFER: usize = 256 * 1024;
/// Read chunk of `read`.
const READ_CHUNK: usize = 64 * 1024;

/// A local blob store.
pub(super) struct Local {
    root: PathBuf,
}

impl Local {
    /// The store rooted at `dir` (absolute; created if missing).
    pub(super) fn new(dir: &Path) -> Result<Local, InfraError> {
        let root = std::path::absolute(dir).map_err(|e| {
            blob_err(format!(
                "local blob folder {}: cannot resolve it: {e}",
                dir.display()
            ))
        })?;
        std::fs::create_dir_all(&root).map_err(|e| {
            blob_err(format!(
                "local blob folder {}: cannot create it: {e}; check the path and its permissions",
                root.display()
            ))
        })?;
        Ok(Local { root })
    }

    pub(super) fn describe(&self) -> String {
        url::Url::from_file_path(&self.root)
            .map(String::from)
            .unwrap_or_else(|()| self.root.display().to_string())
    }

    fn object(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn partial(&self, key: &str) -> PathBuf {
        self.root.join(".partial").join(key)
    }

    fn temp(&self) -> PathBuf {
        self.root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    fn io_err(&self, what: &str, path: &Path, e: &std::io::Error) -> InfraError {
        blob_err(format!(
            "{what} {}: {e}; check that the blob folder {} is writable and has space",
            path.display(),
            self.root.display()
        ))
    }

    pub(super) async fn check(&self) -> Result<(), InfraError> {
        match fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(blob_err(format!(
                "the blob folder {} is not a folder",
                self.root.display()
            ))),
            Err(e) => Err(self.io_err("blob folder", &self.root, &e)),
        }
    }

    pub(super) async fn size(&self, key: &str) -> Result<Option<u64>, InfraError> {
        let path = self.object(key);
        match fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(self.io_err("size of", &path, &e)),
        }
    }

    pub(super) async fn read(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, InfraError> {
        let path = self.object(key);
        let mut file = match File::open(&path).await {
            Ok(f) => f,
            Err(e) if absent(&e) => return Err(blob_err(format!("read of {key}: no such object"))),
            Err(e) => return Err(self.io_err("read of", &path, &e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| self.io_err("read of", &path, &e))?
            .len();
        if range.end > size {
            return Err(range_err(key, &range, size));
        }
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| self.io_err("read of", &path, &e))?;
        let reader = file.take(range.end - range.start);
        Ok(tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK).boxed())
    }

    pub(super) async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, InfraError> {
        let temp = self.temp();
        create_parent(&temp)
            .await
            .map_err(|e| self.io_err("put of", &temp, &e))?;
        let file = File::create(&temp)
            .await
            .map_err(|e| self.io_err("put of", &temp, &e))?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut size = 0u64;
        let written: Result<(), InfraError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    blob_err(format!(
                        "put of {key}: the body failed after {size} bytes ({e}); nothing was stored"
                    ))
                })?;
                w.write_all(&chunk)
                    .await
                    .map_err(|e| self.io_err("put of", &temp, &e))?;
                size += chunk.len() as u64;
            }
            w.flush()
                .await
                .map_err(|e| self.io_err("put of", &temp, &e))?;
            w.get_ref()
                .sync_all()
                .await
                .map_err(|e| self.io_err("put of", &temp, &e))
        }
        .await;
        drop(w);
        if let Err(e) = written {
            let _ = fs::remove_file(&temp).await;
            return Err(e);
        }
        self.move_into_place(&temp, &self.object(key)).await?;
        Ok(size)
    }

    /// Renames `from` (fsynced) to `to`, creating `to`'s folder, and fsyncs that folder so the
    /// new name survives a crash. `from` is removed when the rename fails.
    async fn move_into_place(&self, from: &Path, to: &Path) -> Result<(), InfraError> {
        let moved = async {
            create_parent(to).await?;
            fs::rename(from, to).await?;
            sync_parent(to).await
        }
        .await;
        if let Err(e) = moved {
            let _ = fs::remove_file(from).await;
            return Err(self.io_err("cannot move an object into place at", to, &e));
        }
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), InfraError> {
        let path = self.object(key);
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(self.io_err("delete of", &path, &e)),
        }
    }

    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), InfraError> {
        let source = self.object(from);
        match fs::metadata(&source).await {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(blob_err(format!("copy of {from}: no such object"))),
            Err(e) if absent(&e) => {
                return Err(blob_err(format!("copy of {from}: no such object")));
            }
            Err(e) => return Err(self.io_err("copy of", &source, &e)),
        }
        let temp = self.temp();
        let copied = async {
            create_parent(&temp).await?;
            fs::copy(&source, &temp).await?;
            File::open(&temp).await?.sync_all().await
        }
        .await;
        if let Err(e) = copied {
            let _ = fs::remove_file(&temp).await;
            return Err(self.io_err("copy to", &temp, &e));
        }
        self.move_into_place(&temp, &self.object(to)).await
    }

    pub(super) async fn append(&self, key: &str, state: &Appending, body: ByteStream) -> Appended {
        match self.append_inner(key, state, body).await {
            Ok((len, body_error)) => Appended {
                state: Appending {
                    len,
                    ..Appending::default()
                },
                error: body_error.map(BlobAppendError::Body),
            },
            Err(e) => Appended {
                state: state.clone(),
                error: Some(BlobAppendError::Store(e)),
            },
        }
    }

    /// The append: the new length and the body's error, if it failed. On a store error the
    /// recorded state stands (what was written after it is truncated by the next append).
    async fn append_inner(
        &self,
        key: &str,
        state: &Appending,
        mut body: ByteStream,
    ) -> Result<(u64, Option<std::io::Error>), InfraError> {
        check_local_state(key, state)?;
        let path = self.partial(key);
        let creating = state.len == 0;
        if creating {
            create_parent(&path)
                .await
                .map_err(|e| self.io_err("append to", &path, &e))?;
        }
        let mut file = match OpenOptions::new()
            .write(true)
            .create(creating)
            .open(&path)
            .await
        {
            Ok(f) => f,
            Err(e) if absent(&e) => return Err(missing_partial(key, state.len)),
            Err(e) => return Err(self.io_err("append to", &path, &e)),
        };
        let on_disk = file
            .metadata()
            .await
            .map_err(|e| self.io_err("append to", &path, &e))?
            .len();
        if on_disk < state.len {
            return Err(short_partial(key, on_disk, state.len));
        }
        // Whatever an unrecorded append wrote after the recorded length goes.
        file.set_len(state.len)
            .await
            .map_err(|e| self.io_err("append to", &path, &e))?;
        file.seek(SeekFrom::Start(state.len))
            .await
            .map_err(|e| self.io_err("append to", &path, &e))?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = 0u64;
        let mut body_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    w.write_all(&chunk)
                        .await
                        .map_err(|e| self.io_err("append to", &path, &e))?;
                    written += chunk.len() as u64;
                }
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        w.flush()
            .await
            .map_err(|e| self.io_err("append to", &path, &e))?;
        w.get_ref()
            .sync_data()
            .await
            .map_err(|e| self.io_err("append to", &path, &e))?;
        if creating {
            sync_parent(&path)
                .await
                .map_err(|e| self.io_err("append to", &path, &e))?;
        }
        Ok((state.len + written, body_error))
    }

    pub(super) async fn seal(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        check_local_state(key, state)?;
        let partial = self.partial(key);
        let object = self.object(key);
        let file = match OpenOptions::new().write(true).open(&partial).await {
            Ok(f) => f,
            Err(e) if absent(&e) => {
                // Sealed already (a retry), or an empty object never appended to.
                if self.size(key).await? == Some(state.len) {
                    return Ok(());
                }
                if state.len == 0 {
                    return self
                        .put(key, futures::stream::empty().boxed())
                        .await
                        .map(drop);
                }
                return Err(missing_partial(key, state.len));
            }
            Err(e) => return Err(self.io_err("seal of", &partial, &e)),
        };
        let on_disk = file
            .metadata()
            .await
            .map_err(|e| self.io_err("seal of", &partial, &e))?
            .len();
        if on_disk < state.len {
            return Err(short_partial(key, on_disk, state.len));
        }
        // The append that reached this length fsynced its data; only bytes an unrecorded
        // append left after it need cutting (and that cut, syncing).
        if on_disk > state.len {
            let synced = async {
                file.set_len(state.len).await?;
                file.sync_all().await
            }
            .await;
            synced.map_err(|e| self.io_err("seal of", &partial, &e))?;
        }
        drop(file);
        let moved = async {
            create_parent(&object).await?;
            fs::rename(&partial, &object).await?;
            sync_parent(&object).await
        }
        .await;
        moved.map_err(|e| self.io_err("seal of", &object, &e))
    }

    pub(super) async fn discard(&self, key: &str) -> Result<(), InfraError> {
        let partial = self.partial(key);
        match fs::remove_file(&partial).await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(self.io_err("discard of", &partial, &e)),
        }
    }
}

/// A state that only an S3 store makes cannot continue on a local one.
fn check_local_state(key: &str, state: &Appending) -> Result<(), InfraError> {
    if state.has_s3_fields() {
        return Err(blob_err(format!(
            "the write state of {key} was made by an S3 blob store, not this local one; blobs_url changed while the upload was in progress: discard it and start again"
        )));
    }
    Ok(())
}

fn missing_partial(key: &str, len: u64) -> InfraError {
    blob_err(format!(
        "the in-progress data of {key} is gone (the recorded state has {len} bytes): it was discarded, sealed or lost; discard the write and start again"
    ))
}

fn short_partial(key: &str, on_disk: u64, len: u64) -> InfraError {
    blob_err(format!(
        "the in-progress data of {key} holds {on_disk} bytes but the recorded state has {len}: it was damaged; discard the write and start again"
    ))
}

/// Whether an I/O error means "no such file" (also when a parent is a file, not a folder).
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

async fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).await,
        None => Ok(()),
    }
}

/// Fsyncs the folder holding `path`, so a new name in it survives a crash.
async fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir).await?.sync_all().await,
        None => Ok(()),
    }
}
