//! The body of an upload request on its way to the blob store: bounded by what the upload may
//! still take, cut after an idle timeout, and digested as it passes (the file's BLAKE3 and the
//! chunk's `Upload-Checksum` algorithm; the first bytes of a whole file are kept for sniffing), without holding more than the chunk in flight.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use praxis_infra::blobs::ByteStream;

use crate::domain::digest::{ChunkDigest, FileDigests};
use crate::domain::sniff::SNIFF_BYTES;

/// The message of the error a tap yields once its limit is passed.
pub const OVER_LIMIT: &str = "the body is longer than the upload may take";

/// What the tap saw, read once the append returned.
#[derive(Debug, Default)]
pub struct Seen {
    /// Bytes passed on (never more than the limit).
    pub bytes: u64,
    /// Whether the body had more bytes than the limit.
    pub over_limit: bool,
    /// The chunk digest, when the request had `Upload-Checksum`.
    pub chunk: Option<ChunkDigest>,
    /// The file digests, when they were carried in at the upload's offset.
    pub file: Option<FileDigests>,
    /// The file's first bytes (up to [`SNIFF_BYTES`]), when this body starts the file.
    pub head: Option<Vec<u8>>,
}

/// Shared between the stream and the request that reads [`Seen`] afterwards.
pub type Tap = Arc<Mutex<Seen>>;

enum Step {
    Go,
    Fail(io::Error),
    Done,
}

/// Wraps `body` (the request's chunks) as the blob store's stream: at most `limit` bytes pass,
/// then an error; a wait of more than `idle` for the next chunk is an error of kind
/// `TimedOut`.
pub fn tap<S, E>(body: S, limit: u64, idle: Duration, seen: Tap) -> ByteStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let body = Box::pin(body);
    futures::stream::unfold(
        (body, seen, Step::Go),
        move |(mut body, seen, step)| async move {
            match step {
                Step::Done => None,
                Step::Fail(e) => Some((Err(e), (body, seen, Step::Done))),
                Step::Go => {
                    let next = match tokio::time::timeout(idle, body.next()).await {
                        Err(_) => {
                            let e = io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("no bytes arrived for {} s", idle.as_secs()),
                            );
                            return Some((Err(e), (body, seen, Step::Done)));
                        }
                        Ok(next) => next,
                    };
                    match next {
                        None => None,
                        Some(Err(e)) => {
                            let e = io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string());
                            Some((Err(e), (body, seen, Step::Done)))
                        }
                        Some(Ok(mut chunk)) => {
                            let mut then = Step::Go;
                            {
                                let mut s = seen.lock();
                                let room = limit.saturating_sub(s.bytes);
                                if chunk.len() as u64 > room {
                                    chunk.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                                    s.over_limit = true;
                                    then = Step::Fail(io::Error::new(
                                        io::ErrorKind::FileTooLarge,
                                        OVER_LIMIT,
                                    ));
                                }
                                s.bytes += chunk.len() as u64;
                                if let Some(d) = s.chunk.as_mut() {
                                    d.update(&chunk);
                                }
                                if let Some(d) = s.file.as_mut() {
                                    d.update(&chunk);
                                }
                                if let Some(head) = s.head.as_mut() {
                                    let want = SNIFF_BYTES.saturating_sub(head.len());
                                    head.extend_from_slice(&chunk[..want.min(chunk.len())]);
                                }
                            }
                            Some((Ok(chunk), (body, seen, then)))
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, String>> + Send + 'static {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn passes_up_to_the_limit_then_fails() {
        let seen: Tap = Arc::default();
        let out: Vec<_> = tap(
            chunks(&[b"abc", b"def"]),
            4,
            Duration::from_secs(5),
            seen.clone(),
        )
        .collect()
        .await;
        assert_eq!(
            out[0].as_ref().expect("the input is valid"),
            &Bytes::from_static(b"abc")
        );
        assert_eq!(
            out[1].as_ref().expect("the input is valid"),
            &Bytes::from_static(b"d")
        );
        assert_eq!(
            out[2].as_ref().expect_err("the input is refused").kind(),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(out.len(), 3);
        let s = seen.lock();
        assert_eq!(s.bytes, 4);
        assert!(s.over_limit);
    }

    #[tokio::test]
    async fn digests_what_passes() {
        let seen: Tap = Arc::new(Mutex::new(Seen {
            file: Some(FileDigests::default()),
            ..Seen::default()
        }));
        let n = tap(
            chunks(&[b"ab", b"c"]),
            10,
            Duration::from_secs(5),
            seen.clone(),
        )
        .count()
        .await;
        assert_eq!(n, 2);
        let file = seen.lock().file.take().expect("the input is valid");
        assert_eq!(file.finish(), blake3::hash(b"abc").to_hex().to_string());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_times_out() {
        let seen: Tap = Arc::default();
        let body = futures::stream::pending::<Result<Bytes, String>>();
        let out: Vec<_> = tap(body, 10, Duration::from_secs(5), seen).collect().await;
        assert_eq!(
            out[0].as_ref().expect_err("the input is refused").kind(),
            io::ErrorKind::TimedOut
        );
    }
}
