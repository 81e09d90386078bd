//! A real SMTP server for the tests: `tests/channels/smtp_server.py` (Python's aiosmtpd) as a
//! child process, and the messages it accepted as its mail client parsed them. Shared by the
//! channel suite and, through `#[path]`, the notify suite (order emails).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long to wait for the server to start or for a message (a deadline, not a timing
/// assertion).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One message as the Python SMTP server received and parsed it.
#[derive(Debug, serde::Deserialize)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: String,
    /// Header names lowercased, values decoded (RFC 2047) by Python's email package.
    pub headers: std::collections::HashMap<String, String>,
    pub content_type: String,
    pub defects: Vec<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Whether it came over TLS (STARTTLS or implicit).
    #[serde(default)]
    pub tls: bool,
    /// Whether the client authenticated, and with which mechanism.
    #[serde(default)]
    pub authenticated: bool,
    #[serde(default)]
    pub auth_mechanism: Option<String>,
}

/// `python3 tests/channels/smtp_server.py` as a child process; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    mails: mpsc::Receiver<ReceivedMail>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_with(&[])
    }

    /// With options of smtp_server.py (`--tls starttls --cert F --key F --auth U:P`, ...).
    pub fn start_with(args: &[&str]) -> SmtpServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/channels/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed (scripts/test installs it with aiosmtpd)");
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (mail_tx, mails) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("READY ") {
                    let _ = ready_tx.send(port.trim().parse::<u16>().unwrap());
                } else if !line.trim().is_empty() {
                    let mail: ReceivedMail = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("bad line from smtp_server.py: {e}: {line}"));
                    if mail_tx.send(mail).is_err() {
                        break;
                    }
                }
            }
        });
        let port = ready_rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("smtp_server.py did not start (is aiosmtpd installed? python3 -m pip install aiosmtpd)")
        });
        SmtpServer { child, port, mails }
    }

    /// The next message the server accepted (waits up to [`DEADLINE`]).
    pub fn next_mail(&self) -> ReceivedMail {
        self.mails
            .recv_timeout(DEADLINE)
            .expect("the SMTP server received no message")
    }

    /// Messages already reported, without waiting.
    pub fn pending(&self) -> Vec<ReceivedMail> {
        self.mails.try_iter().collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
