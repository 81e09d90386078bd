//! Log lines to stdout without a write per line: the request path appends its line to a shared
//! buffer, and a writer thread hands what has gathered to stdout every [`FLUSH_EVERY`] (sooner
//! past [`WAKE_AT`] bytes). One `write(2)` carries many lines, and a request never waits for
//! stdout.
//!
//! The price: lines still in the buffer at a `kill -9` are lost (at most [`FLUSH_EVERY`] of
//! them); [`LogWriter::finish`] writes everything at a clean exit. If stdout stops taking lines
//! (a stuck log pipe), the buffer stops at [`LIMIT`] bytes and further lines are dropped and
//! counted, and a line saying how many is written once stdout takes lines again: a slow log
//! reader never slows or stops requests.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes that wake the writer before its interval.
pub const WAKE_AT: usize = 256 * 1024;
/// Buffered bytes beyond which lines are dropped.
pub const LIMIT: usize = 8 * 1024 * 1024;

struct Shared {
    lines: Mutex<Vec<u8>>,
    wake: Condvar,
    closing: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    fn lines(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending leaves whole bytes; the buffer stays usable.
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The buffer of the process's [`LogWriter`] on stdout, for [`flush_before_exit`].
static STDOUT: std::sync::OnceLock<Arc<Shared>> = std::sync::OnceLock::new();

/// Writes what the process's log buffer holds straight to stdout, from the calling thread: for
/// a path that ends the process without returning (`std::process::exit`).
pub fn flush_before_exit() {
    if let Some(shared) = STDOUT.get() {
        let lines = std::mem::take(&mut *shared.lines());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&lines).and_then(|()| out.flush());
    }
}

/// The buffered stdout of the log subscriber, and its writer thread.
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Starts the writer thread over the process's stdout; [`flush_before_exit`] drains it.
    pub fn stdout() -> std::io::Result<Self> {
        let writer = Self::start(std::io::stdout())?;
        let _ = STDOUT.set(writer.shared.clone());
        Ok(writer)
    }

    /// Starts the writer thread over `out`.
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            lines: Mutex::new(Vec::with_capacity(WAKE_AT)),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("praxis-log".into())
            .spawn(move || write_loop(&worker, out))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// The subscriber's side: a cheap handle that appends lines.
    pub fn make_writer(&self) -> BufferedLines {
        BufferedLines {
            shared: self.shared.clone(),
        }
    }

    /// Writes every buffered line and stops the thread (at exit).
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_loop(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::with_capacity(WAKE_AT);
    loop {
        let closing = {
            let mut lines = shared.lines();
            if lines.len() < WAKE_AT && !shared.closing.load(Ordering::Acquire) {
                lines = shared
                    .wake
                    .wait_timeout(lines, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut *lines, &mut spare);
            shared.closing.load(Ordering::Acquire)
        };
        if !spare.is_empty() {
            // Nothing to tell if stdout is gone: the lines are lost either way.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            if spare.capacity() > LIMIT {
                spare.shrink_to(WAKE_AT);
            }
        }
        let dropped = shared.dropped.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "{{\"level\":\"WARN\",\"target\":\"praxis::log\",\"message\":\"{dropped} log lines dropped: stdout did not take them fast enough\"}}"
            );
            let _ = out.flush();
        }
        if closing && shared.lines().is_empty() {
            return;
        }
    }
}

/// Appends whole lines to the shared buffer; handed out by [`LogWriter::make_writer`].
#[derive(Clone)]
pub struct BufferedLines {
    shared: Arc<Shared>,
}

impl Write for BufferedLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let wake = {
            let mut lines = self.shared.lines();
            if lines.len() + line.len() > LIMIT {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(line.len());
            }
            lines.extend_from_slice(line);
            lines.len() >= WAKE_AT
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedLines {
    type Writer = BufferedLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back, that can also refuse to make progress.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_output_in_order_and_all_at_finish() {
        let sink = Sink::default();
        let writer = LogWriter::start(sink.clone()).expect("writer thread");
        let mut lines = writer.make_writer();
        for n in 0..10_000 {
            lines
                .write_all(format!("line {n}\n").as_bytes())
                .expect("write");
        }
        writer.finish();
        let out = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("write");
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got.len(), 10_000);
        assert!(
            got.iter()
                .enumerate()
                .all(|(n, l)| *l == format!("line {n}"))
        );
    }

    #[test]
    fn a_line_is_written_without_waiting_for_exit() {
        let sink = Sink::default();
        let writer = LogWriter::start(sink.clone()).expect("writer thread");
        writer.make_writer().write_all(b"hello\n").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().expect("lock").is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&*sink.0.lock().expect("lock"), b"hello\n");
        drop(writer);
    }

    /// Stdout that takes nothing until released.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Sink);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut open = open.lock().expect("lock");
            while !*open {
                open = cv.wait(open).expect("wait");
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stdout_drops_lines_past_the_limit_and_says_how_many() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let writer = LogWriter::start(Stuck(gate.clone(), sink.clone())).expect("writer thread");
        let mut lines = writer.make_writer();
        // The first line is taken by the writer thread, which then blocks in stdout; the
        // buffer fills to the limit behind it, and the rest is dropped without waiting.
        lines.write_all(b"first\n").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !writer.shared.lines().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never took the line"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let line = [b'x'; 1023];
        let line = [&line[..], b"\n"].concat();
        let fits = LIMIT / line.len();
        for _ in 0..fits + 100 {
            lines.write_all(&line).expect("write");
        }
        assert_eq!(writer.shared.dropped.load(Ordering::Relaxed), 100);
        *gate.0.lock().expect("lock") = true;
        gate.1.notify_all();
        writer.finish();
        let out = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("write");
        assert_eq!(out.lines().filter(|l| l.starts_with('x')).count(), fits);
        assert!(
            out.contains("100 log lines dropped"),
            "{}",
            &out[out.len() - 200..]
        );
    }
}
