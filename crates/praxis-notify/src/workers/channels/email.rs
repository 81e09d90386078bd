//! The email channel: SMTP (lettre, async, pooled connections) or `.eml` files.
//!
//! Every message is a complete RFC 5322 message built the same way for both sinks:
//!
//! - `From` the configured sender, `To` the delivery's address (an address lettre cannot parse
//!   is a [`SendError::Permanent`]), `Subject`, `Date`.
//! - `Message-ID: <{delivery_id}@{sender's domain}>`: derived from the delivery id, so it is the
//!   same on every retry and after a crash, and receivers (or the relay) can drop duplicates.
//! - When the message has an `unsubscribe_url`: `List-Unsubscribe: <url>` and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058 one-click unsubscribe, which
//!   large mailbox providers require of bulk senders).
//! - A text body (`text/plain; charset=utf-8`), or `multipart/alternative` with the text and
//!   the HTML part when the template has HTML.
//!
//! SMTP security ([`SmtpTls`]): STARTTLS (required: a relay that does not offer it fails the
//! send, nothing goes out in plain text) or implicit TLS, through rustls. The relay's
//! certificate must chain to a root of the platform's [trust policy](TrustPolicy) (the OS store
//! plus the server's `tls_ca_file`) or to a CA of [`SmtpSettings::ca_file`] (added to those
//! roots), and name the configured host. AUTH PLAIN or LOGIN when a user is set.
//!
//! SMTP outcome: a 2xx reply is delivered; a 4xx reply, a connection, TLS or network error and
//! a timeout are [`SendError::Transient`]; a 5xx reply (e.g. `550 no such user`) is
//! [`SendError::Permanent`].
//!
//! File mode ([`EmailProvider::eml_dir`]) is for development and for deployments without a
//! relay: each message is written to `<dir>/<delivery_id>.eml` atomically (a temporary file in
//! the same directory, fsync, rename), so a reader never sees half a message and a retry
//! replaces the file rather than adding a second one.

use super::{Outgoing, Provider, Receipt, SendError};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use praxis_infra::tls::TrustPolicy;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a local relay or a test server only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
}

/// SMTP relay settings.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Relay host name (also the name checked against its TLS certificate).
    pub host: String,
    /// Relay port (25, 465, 587, ...).
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// User for SMTP AUTH, if the relay needs it.
    pub username: Option<String>,
    /// Password for SMTP AUTH.
    pub password: Option<String>,
    /// The sender, `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
    /// Timeout of each SMTP command (connect, each reply).
    pub timeout: Duration,
    /// A PEM file of CA certificates to trust for the relay's certificate, in addition to the
    /// platform's trust policy (a private relay with its own CA). `None`: the policy alone.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Clone)]
enum Sink {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    EmlDir(PathBuf),
}

/// Sends email over SMTP or writes `.eml` files (see the [module docs](self)).
#[derive(Clone)]
pub struct EmailProvider {
    from: Mailbox,
    sink: Sink,
    /// Where it goes, for `Debug` and logs (`smtp://host:port` or the directory).
    target: String,
}

impl fmt::Debug for EmailProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailProvider")
            .field("from", &self.from.to_string())
            .field("target", &self.target)
            .finish()
    }
}

fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.parse::<Mailbox>()
        .map_err(|e| format!("invalid sender address {from:?}: {e}"))
}

impl EmailProvider {
    /// An SMTP provider with a connection pool whose TLS trusts `trust` (plus
    /// [`SmtpSettings::ca_file`]). Nothing connects until the first send; fails only on
    /// settings that can never work (an invalid sender, TLS parameters for a host name that is
    /// not valid). Call it (and drop the provider) inside a Tokio runtime: the pool spawns its
    /// idle-connection reaper there.
    pub fn smtp(settings: SmtpSettings, trust: &TrustPolicy) -> Result<EmailProvider, String> {
        let from = parse_from(&settings.from)?;
        let ca = match (&settings.ca_file, settings.tls) {
            (Some(path), SmtpTls::None) => {
                return Err(format!(
                    "a CA file ({}) is set but the SMTP connection is plain text (tls none)",
                    path.display()
                ));
            }
            (Some(path), SmtpTls::StartTls | SmtpTls::Implicit) => Some(read_ca_file(path)?),
            (None, _) => None,
        };
        let tls_params = || {
            // The policy's roots, and no store of lettre's own.
            let mut builder = TlsParameters::builder(settings.host.clone())
                .certificate_store(CertificateStore::None);
            for root in trust.certificates() {
                let root = Certificate::from_der(root.to_vec())
                    .map_err(|e| format!("a root certificate of the trust policy: {e}"))?;
                builder = builder.add_root_certificate(root);
            }
            if let Some(ca) = &ca {
                builder = builder.add_root_certificate(ca.clone());
            }
            builder.build().map_err(|e| {
                format!(
                    "invalid TLS parameters for SMTP host {:?}: {e}",
                    settings.host
                )
            })
        };
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_params()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_params()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(settings.timeout));
        if let Some(user) = &settings.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                settings.password.clone().unwrap_or_default(),
            ));
        }
        let target = format!("smtp://{}:{}", settings.host, settings.port);
        tracing::info!(target = %target, tls = ?settings.tls, ca_file = ?settings.ca_file, "email: sending through SMTP");
        Ok(EmailProvider {
            from,
            sink: Sink::Smtp(builder.build()),
            target,
        })
    }

    /// A provider that writes each message to `<dir>/<delivery_id>.eml` (creating `dir`), and
    /// logs where at construction.
    pub fn eml_dir(dir: PathBuf, from: &str) -> Result<EmailProvider, String> {
        let from = parse_from(from)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the email outbox {}: {e}", dir.display()))?;
        let target = dir.display().to_string();
        tracing::info!(dir = %target, "email: no SMTP server configured, writing .eml files");
        Ok(EmailProvider {
            from,
            sink: Sink::EmlDir(dir),
            target,
        })
    }

    /// Builds the complete message for `m` (the exact bytes sent or written).
    pub fn build_message(&self, m: &Outgoing) -> Result<Message, SendError> {
        let to: Mailbox = m.address.parse().map_err(|e| SendError::Permanent {
            detail: format!("invalid email address {:?}: {e}", m.address),
        })?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!(
                "<{}@{}>",
                m.delivery_id,
                self.from.email.domain()
            )));
        if let Some(url) = &m.unsubscribe_url {
            builder = builder
                .raw_header(raw_header("List-Unsubscribe", format!("<{url}>")))
                .raw_header(raw_header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let built = match &m.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                html.clone(),
            )),
            // A raw body rather than a single MIME part (lettre adds a blank line after a part),
            // without its final line break: the SMTP terminator (or `formatted_eml`) ends the
            // last line, and a body ending in CRLF would get one blank line too many.
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(m.text.trim_end_matches(['\r', '\n']).to_owned()),
        };
        built.map_err(|e| SendError::Permanent {
            detail: format!("cannot build the message: {e}"),
        })
    }

    /// The path of the `.eml` file for a delivery (file mode), `None` in SMTP mode.
    pub fn eml_path(&self, delivery_id: &str) -> Option<PathBuf> {
        match &self.sink {
            Sink::EmlDir(dir) => Some(dir.join(format!("{delivery_id}.eml"))),
            Sink::Smtp(_) => None,
        }
    }
}

/// Reads a PEM file of CA certificates (at least one `CERTIFICATE` block).
fn read_ca_file(path: &Path) -> Result<Certificate, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the SMTP CA file {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "the SMTP CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Certificate::from_pem(&pem)
        .map_err(|e| format!("the SMTP CA file {} is not valid PEM: {e}", path.display()))
}

fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Maps an SMTP error: 5xx permanent, everything else (4xx, connection, TLS, timeout)
/// transient. A failed TLS handshake (rustls reports it through an I/O error, e.g. an
/// untrusted certificate) says so first, so the attempt log names TLS.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    // The causes, each once (lettre's `Display` already ends with its direct source).
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    if e.is_permanent() || e.is_client() {
        return SendError::Permanent { detail };
    }
    let lower = detail.to_ascii_lowercase();
    if !e.is_tls()
        && !lower.contains("tls")
        && (lower.contains("certificate") || lower.contains("handshake"))
    {
        detail = format!("TLS handshake with the SMTP relay failed: {detail}");
    }
    if lower.contains("unknownissuer") {
        detail.push_str(
            "; the relay's certificate does not chain to a trusted CA: set tls_ca_file (or notify.smtp_ca_file) to a PEM file holding it",
        );
    }
    SendError::Transient {
        detail,
        retry_after: None,
    }
}

/// The message as a file: its bytes, ending with a line break.
fn formatted_eml(message: &Message) -> Vec<u8> {
    let mut bytes = message.formatted();
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// Writes `bytes` to `dir/<id>.eml` through a uniquely named temporary file in `dir`.
fn write_atomically(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{id}.eml"));
    let tmp = dir.join(format!(".{id}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

#[async_trait::async_trait]
impl Provider for EmailProvider {
    fn name(&self) -> &str {
        match self.sink {
            Sink::Smtp(_) => "smtp",
            Sink::EmlDir(_) => "eml-file",
        }
    }

    async fn send(&self, m: &Outgoing) -> Result<Receipt, SendError> {
        let message = self.build_message(m)?;
        match &self.sink {
            Sink::Smtp(transport) => {
                let response = transport
                    .send_raw(message.envelope(), &message.formatted())
                    .await
                    .map_err(|e| classify(&e))?;
                let text = response.message().collect::<Vec<_>>().join(" ");
                Ok(Receipt {
                    provider: self.name().to_owned(),
                    detail: format!("{} {text}", response.code()).trim().to_owned(),
                })
            }
            Sink::EmlDir(dir) => {
                // The id becomes a file name: only ids that cannot leave the directory.
                let safe = !m.delivery_id.is_empty()
                    && m.delivery_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !safe {
                    return Err(SendError::Permanent {
                        detail: format!("delivery id {:?} is not a safe file name", m.delivery_id),
                    });
                }
                let (dir, id, bytes) =
                    (dir.clone(), m.delivery_id.clone(), formatted_eml(&message));
                let written =
                    tokio::task::spawn_blocking(move || write_atomically(&dir, &id, &bytes))
                        .await
                        .map_err(|e| SendError::Transient {
                            detail: format!("the file writer task failed: {e}"),
                            retry_after: None,
                        })?
                        .map_err(|e| SendError::Transient {
                            detail: format!("cannot write the .eml file: {e}"),
                            retry_after: None,
                        })?;
                Ok(Receipt {
                    provider: self.name().to_owned(),
                    detail: format!("written to {}", written.display()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(html: Option<&str>, unsubscribe: Option<&str>) -> Outgoing {
        Outgoing {
            delivery_id: "0190f1a2-7b3c-7d4e-8f90-123456789abc".into(),
            address: "Ada <ada@example.org>".into(),
            subject: "Héllo".into(),
            text: "plain body".into(),
            html: html.map(str::to_owned),
            event_type: "welcome".into(),
            data: serde_json::json!({}),
            unsubscribe_url: unsubscribe.map(str::to_owned),
        }
    }

    fn file_provider() -> (tempfile::TempDir, EmailProvider) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = EmailProvider::eml_dir(dir.path().join("outbox"), "praxis <noreply@praxis.test>")
            .expect("provider");
        (dir, p)
    }

    #[test]
    fn message_headers() {
        let (_dir, p) = file_provider();
        let m = p
            .build_message(&outgoing(None, Some("https://praxis.test/u/1")))
            .expect("message");
        let text = String::from_utf8(m.formatted()).expect("utf-8");
        assert!(
            text.contains("Message-ID: <0190f1a2-7b3c-7d4e-8f90-123456789abc@praxis.test>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe: <https://praxis.test/u/1>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{text}"
        );
        assert!(
            text.contains("From: praxis <noreply@praxis.test>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: Ada <ada@example.org>\r\n"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(!text.contains("multipart"), "{text}");
    }

    #[test]
    fn html_makes_it_multipart_alternative() {
        let (_dir, p) = file_provider();
        let m = p
            .build_message(&outgoing(Some("<p>hi</p>"), None))
            .expect("message");
        let text = String::from_utf8(m.formatted()).expect("utf-8");
        assert!(
            text.contains("Content-Type: multipart/alternative"),
            "{text}"
        );
        assert!(text.contains("<p>hi</p>"), "{text}");
        assert!(text.contains("plain body"), "{text}");
        assert!(!text.contains("List-Unsubscribe"), "{text}");
    }

    #[test]
    fn invalid_addresses_are_permanent() {
        let (_dir, p) = file_provider();
        let mut m = outgoing(None, None);
        m.address = "not an address".into();
        assert!(matches!(
            p.build_message(&m),
            Err(SendError::Permanent { .. })
        ));
        assert!(EmailProvider::eml_dir(PathBuf::from("/tmp"), "nope").is_err());
    }

    #[tokio::test]
    async fn settings_debug_hides_the_password() {
        let s = SmtpSettings {
            host: "smtp.example.org".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: Some("u".into()),
            password: Some("hunter2".into()),
            from: "a@example.org".into(),
            timeout: Duration::from_secs(5),
            ca_file: None,
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let p = EmailProvider::smtp(s, &TrustPolicy::system()).expect("provider");
        assert_eq!(p.name(), "smtp");
        assert_eq!(p.eml_path("x"), None);
        assert!(format!("{p:?}").contains("smtp://smtp.example.org:587"));
    }

    #[tokio::test]
    async fn ca_files_are_checked_at_construction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = |tls, ca_file| SmtpSettings {
            host: "relay.internal".into(),
            port: 587,
            tls,
            username: None,
            password: None,
            from: "a@example.org".into(),
            timeout: Duration::from_secs(5),
            ca_file: Some(ca_file),
        };
        let missing = dir.path().join("missing.pem");
        let trust = TrustPolicy::system();
        let err = EmailProvider::smtp(settings(SmtpTls::StartTls, missing.clone()), &trust)
            .expect_err("missing file");
        assert!(err.contains("cannot read the SMTP CA file"), "{err}");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let err = EmailProvider::smtp(settings(SmtpTls::Implicit, not_pem.clone()), &trust)
            .expect_err("not PEM");
        assert!(err.contains("no PEM certificate"), "{err}");
        let err =
            EmailProvider::smtp(settings(SmtpTls::None, not_pem), &trust).expect_err("plain text");
        assert!(err.contains("plain text"), "{err}");
    }
}
