//! SIGTERM / SIGINT handling: the first signal starts a graceful shutdown, a second one exits at
//! once.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Exit status used when a second signal cuts the graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 130;

/// The process's SIGTERM and SIGINT streams, installed before anything slow starts so an early
/// signal is not lost (nor kills the process without a shutdown).
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// After the first signal: exits the process at once on the next one.
    pub fn exit_on_next(mut self) {
        tokio::spawn(async move {
            let name = self.recv().await;
            tracing::warn!(
                signal = name,
                "second signal: exiting without finishing the shutdown"
            );
            crate::log_writer::flush_before_exit();
            std::process::exit(FORCED_EXIT_CODE);
        });
    }
}
