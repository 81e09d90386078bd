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
//!
//! An append or a seal holds an exclusive lock (`flock`) on the object-in-progress while it
//! runs, so a second writer (another process on this host, or a request whose lease expired
//! while it was paused) is refused with [`InfraError::Busy`] instead of writing over it. The
//! lock goes with the file when it closes, or with the process when it dies.

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

    pub(super) async fn append(
        &self,
        key: &str,
        state: &Appending,
        body: ByteStream,
        whole: Option<u64>,
    ) -> Appended {
        match self.append_inner(key, state, body, whole).await {
            Ok((len, body_error, sealed)) => Appended {
                state: Appending {
                    len,
                    ..Appending::default()
                },
                error: body_error.map(BlobAppendError::Body),
                sealed,
            },
            Err(e) => Appended {
                state: state.clone(),
                error: Some(BlobAppendError::Store(e)),
                sealed: false,
            },
        }
    }

    /// The append: the new length, the body's error if it failed, and whether the object was
    /// sealed (a new write that brought exactly `whole` bytes). On a store error the recorded
    /// state stands (what was written after it is truncated by the next append).
    ///
    /// The file work runs in few blocking tasks (a hop to tokio's blocking pool costs about
    /// as much as a small write): one to open, lock and position the file, the buffered writes
    /// (each one handed to the pool while the body fills the next), and one to fsync it and
    /// either fsync its folder or, when it is sealed, rename it into place and fsync that
    /// folder.
    async fn append_inner(
        &self,
        key: &str,
        state: &Appending,
        mut body: ByteStream,
        whole: Option<u64>,
    ) -> Result<(u64, Option<std::io::Error>, bool), InfraError> {
        check_local_state(key, state)?;
        let path = self.partial(key);
        let creating = state.len == 0;
        let opened = {
            let path = path.clone();
            let key = key.to_owned();
            let len = state.len;
            blocking(move || open_for_append(&path, &key, len, creating)).await
        };
        let file = match opened {
            Ok(Ok(file)) => file,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(self.io_err("append to", &path, &e)),
        };
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, File::from_std(file));
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
        let file = w.into_inner().into_std().await;
        let len = state.len + written;
        let seal = whole == Some(len) && body_error.is_none();
        let object = self.object(key);
        let finished = {
            let (path, object) = (path.clone(), object.clone());
            blocking(move || {
                file.sync_data()?;
                if seal {
                    // Renamed while the lock is held: no other writer of this key runs.
                    if let Some(dir) = object.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::rename(&path, &object)?;
                    sync_dir_of(&object)?;
                } else if creating {
                    sync_dir_of(&path)?;
                }
                drop(file);
                Ok(())
            })
            .await
        };
        match finished {
            Ok(()) => Ok((len, body_error, seal)),
            Err(e) => Err(self.io_err("append to", if seal { &object } else { &path }, &e)),
        }
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
        let file = lock_exclusive(file, key).await?;
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

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

/// Opens the object-in-progress at `path` for an append after `len` recorded bytes (creating
/// it, and its folder, for a new write), locks it, cuts what an unrecorded append left after
/// `len` and positions it there. The outer error is an I/O failure to report with the path.
fn open_for_append(
    path: &Path,
    key: &str,
    len: u64,
    creating: bool,
) -> std::io::Result<Result<std::fs::File, InfraError>> {
    use std::io::Seek;
    if creating && let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create(creating)
        .truncate(false)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if absent(&e) => return Ok(Err(missing_partial(key, len))),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(busy(key))),
        Err(std::fs::TryLockError::Error(e)) => {
            return Ok(Err(blob_err(format!("cannot lock {key} for writing: {e}"))));
        }
    }
    let on_disk = file.metadata()?.len();
    if on_disk < len {
        return Ok(Err(short_partial(key, on_disk, len)));
    }
    // Whatever an unrecorded append wrote after the recorded length goes.
    if on_disk > len {
        file.set_len(len)?;
    }
    let mut file = file;
    file.seek(SeekFrom::Start(len))?;
    Ok(Ok(file))
}

fn busy(key: &str) -> InfraError {
    InfraError::Busy(format!(
        "another writer holds {key} (a concurrent append on this host); retry when it ends"
    ))
}

/// Fsyncs the folder holding `path` (blocking), so a new name in it survives a crash.
fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Takes an exclusive lock on an object-in-progress for one append or seal, without waiting:
/// a file another writer holds is refused.
async fn lock_exclusive(file: File, key: &str) -> Result<File, InfraError> {
    let file = file.into_std().await;
    match file.try_lock() {
        Ok(()) => Ok(File::from_std(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy(key)),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(blob_err(format!("cannot lock {key} for writing: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that says when it is first read, then waits for `go` before its one chunk.
    fn held_body(
        started: tokio::sync::oneshot::Sender<()>,
        go: tokio::sync::oneshot::Receiver<()>,
    ) -> ByteStream {
        futures::stream::once(async move {
            let _ = started.send(());
            let _ = go.await;
            Ok(bytes::Bytes::from_static(b"first writer"))
        })
        .boxed()
    }

    fn one_chunk(bytes: &'static [u8]) -> ByteStream {
        futures::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }).boxed()
    }

    #[tokio::test]
    async fn a_whole_write_is_sealed_by_its_append_and_can_be_written_again() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let local = Local::new(dir.path()).expect("a local store");
        let fresh = Appending::default();
        // A body shorter than the object: a plain append, nothing at the key.
        let short = local
            .append("u/k", &fresh, one_chunk(b"abc"), Some(5))
            .await;
        assert!(short.error.is_none() && !short.sealed && short.state.len == 3);
        assert_eq!(local.size("u/k").await.expect("size"), None);
        // The whole body: sealed, at the key, with nothing left in progress.
        let whole = local
            .append("u/k", &fresh, one_chunk(b"hello"), Some(5))
            .await;
        assert!(whole.error.is_none() && whole.sealed && whole.state.len == 5);
        assert_eq!(
            std::fs::read(dir.path().join("u/k")).expect("the object"),
            b"hello"
        );
        assert!(!dir.path().join(".partial/u/k").exists());
        // Not recorded: the caller writes again from the state it had; the seal replaces it.
        let again = local.append("u/k", &fresh, one_chunk(b"wor"), None).await;
        let again = local
            .append("u/k", &again.state, one_chunk(b"ld"), None)
            .await;
        assert!(again.error.is_none() && !again.sealed);
        local.seal("u/k", &again.state).await.expect("sealed");
        assert_eq!(
            std::fs::read(dir.path().join("u/k")).expect("the object"),
            b"world"
        );
    }

    #[tokio::test]
    async fn a_second_writer_of_one_object_is_refused_while_the_first_runs() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let local = Local::new(dir.path()).expect("a local store");
        let begun = local
            .append("k", &Appending::default(), one_chunk(b"begun; "), None)
            .await;
        assert!(begun.error.is_none(), "{:?}", begun.error);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (go, go_rx) = tokio::sync::oneshot::channel();
        let first = {
            let body = held_body(started_tx, go_rx);
            let local = Local::new(dir.path()).expect("a local store");
            let state = begun.state.clone();
            tokio::spawn(async move { local.append("k", &state, body, None).await })
        };
        started.await.expect("the first append reads its body");
        let second = local
            .append("k", &begun.state, one_chunk(b"second"), None)
            .await;
        assert!(
            matches!(
                second.error,
                Some(BlobAppendError::Store(InfraError::Busy(_)))
            ),
            "{:?}",
            second.error
        );
        assert!(
            matches!(
                local.seal("k", &begun.state).await,
                Err(InfraError::Busy(_))
            ),
            "a seal while an append runs is refused too"
        );
        go.send(()).expect("the first append waits");
        let first = first.await.expect("the first append ends");
        assert!(first.error.is_none(), "{:?}", first.error);
        local.seal("k", &first.state).await.expect("sealed");
        assert_eq!(
            std::fs::read(dir.path().join("k")).expect("the object"),
            b"begun; first writer"
        );
    }
}
