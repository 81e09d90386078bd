//! TLS for every outgoing connection: one crypto provider and one trust policy.
//!
//! **One crypto provider** for the whole process: rustls with ring. sqlx, async-nats, redis and
//! lettre are built with ring; reqwest is built without a provider of its own
//! (`rustls-no-provider`), so no second crypto stack (aws-lc-rs) is linked, and rustls never
//! has two providers to choose from. Every HTTP client is built after
//! [`install_crypto_provider`].
//!
//! **One trust policy** ([`TrustPolicy`]): a server certificate is trusted when it chains to a
//! root of the operating system's store (read with rustls-native-certs: `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, or the distribution's bundle such as `/etc/ssl/certs`) or to a CA of the
//! optional PEM file `tls_ca_file` (a private CA, e.g. a managed database's). Every client uses
//! it: PostgreSQL, Redis (`rediss://`), NATS (`tls://`), SMTP, webhooks and the JWKS fetch. No
//! client bundles roots of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::InfraError;

/// The setting that names the CA file, as error messages name it.
pub const CA_FILE_KEY: &str = "tls_ca_file";

/// Installs ring as the process's default rustls provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The roots every outgoing TLS connection trusts: the OS store plus the CA certificates of an
/// optional PEM file (see the [module docs](self)). Cheap to clone; the OS store is read once
/// per process, the first time a client needs it.
#[derive(Clone, Default)]
pub struct TrustPolicy {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    ca_file: Option<PathBuf>,
    ca: Vec<CertificateDer<'static>>,
    built: OnceLock<Built>,
}

struct Built {
    roots: Arc<RootCertStore>,
    certificates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for TrustPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustPolicy")
            .field("os_store", &true)
            .field("ca_file", &self.inner.ca_file)
            .field("ca_certificates", &self.inner.ca.len())
            .finish()
    }
}

impl TrustPolicy {
    /// The OS store alone (no CA file). The same as `TrustPolicy::default()`.
    pub fn system() -> Self {
        Self::default()
    }

    /// The OS store plus the CA certificates of `ca_file`, when given. Fails, naming
    /// [`CA_FILE_KEY`], when the file cannot be read or holds no valid certificate.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, InfraError> {
        let Some(path) = ca_file else {
            return Ok(Self::system());
        };
        let ca =
            read_ca_file(path).map_err(|e| InfraError::Config(format!("{CA_FILE_KEY}: {e}")))?;
        tracing::debug!(ca_file = %path.display(), certificates = ca.len(), "tls trust policy: OS store plus CA file");
        Ok(Self {
            inner: Arc::new(Inner {
                ca_file: Some(path.to_path_buf()),
                ca,
                built: OnceLock::new(),
            }),
        })
    }

    /// The CA file, when one is configured.
    pub fn ca_file(&self) -> Option<&Path> {
        self.inner.ca_file.as_deref()
    }

    /// The certificates of the CA file (empty without one).
    pub fn ca_certificates(&self) -> &[CertificateDer<'static>] {
        &self.inner.ca
    }

    /// Every trusted root: the OS store's, then the CA file's (for clients that take roots one
    /// by one, such as lettre).
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.built().certificates
    }

    /// The trusted roots as a rustls store.
    pub fn root_store(&self) -> Arc<RootCertStore> {
        self.built().roots.clone()
    }

    /// Every trusted root as PEM text (for clients that take a PEM bundle, such as redis).
    pub fn pem(&self) -> Vec<u8> {
        use base64::Engine as _;
        let mut out = String::new();
        for cert in self.certificates() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.push_str(&String::from_utf8_lossy(line));
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out.into_bytes()
    }

    /// A rustls client configuration that trusts exactly this policy's roots, with ring and
    /// rustls's safe protocol versions, and no client certificate.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder
                .with_root_certificates(self.root_store())
                .with_no_client_auth(),
            // ring supports TLS 1.2 and 1.3, so the safe defaults are always available.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(self.root_store())
                .with_no_client_auth(),
        }
    }

    fn built(&self) -> &Built {
        self.inner.built.get_or_init(|| {
            let os = os_roots();
            let mut roots = RootCertStore::empty();
            let mut certificates = Vec::with_capacity(os.len() + self.inner.ca.len());
            // Only what rustls accepts as a trust anchor (an OS store may hold a certificate it
            // cannot parse), so every client gets the same list.
            for cert in os.iter().chain(&self.inner.ca) {
                if roots.add(cert.clone()).is_ok() {
                    certificates.push(cert.clone());
                }
            }
            tracing::debug!(
                roots = certificates.len(),
                ca_file_roots = self.inner.ca.len(),
                "tls trust policy built"
            );
            Built {
                roots: Arc::new(roots),
                certificates,
            }
        })
    }

    /// Turns a connection error caused by an untrusted or mismatched server certificate into
    /// an [`InfraError::Tls`] that names the setting to fix; `None` for any other error.
    /// `what` names the connection (`"redis_url rediss://cache:6380"`).
    pub fn explain(
        &self,
        what: &str,
        err: &(dyn std::error::Error + 'static),
    ) -> Option<InfraError> {
        let cause = certificate_error(err)?;
        let fix = match (&cause, self.ca_file()) {
            (Cause::Name(_), _) => "connect by a host name the certificate holds (the host of the URL is checked against it)".to_owned(),
            (Cause::Untrusted(_), None) => format!(
                "set {CA_FILE_KEY} (PRAXIS_TLS_CA_FILE) to a PEM file holding the CA that signed it, or add that CA to the OS trust store"
            ),
            (Cause::Untrusted(_), Some(path)) => format!(
                "{CA_FILE_KEY} ({}) does not hold the CA that signed it: add that CA to the file or to the OS trust store",
                path.display()
            ),
        };
        let detail = match cause {
            Cause::Name(d) | Cause::Untrusted(d) => d,
        };
        Some(InfraError::Tls(format!(
            "{what}: the server's certificate is not accepted ({detail}); {fix}"
        )))
    }
}

/// Reads a PEM file of CA certificates: at least one `CERTIFICATE` block, each a valid X.509
/// trust anchor. The message says what is wrong with the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        ));
    }
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store.add(cert.clone()).map_err(|e| {
            format!(
                "{} holds a certificate that cannot be a trust anchor: {e}",
                path.display()
            )
        })?;
    }
    Ok(certs)
}

/// The OS store's certificates, read once per process. Certificates or files that cannot be
/// read are logged and left out (the rest still applies).
fn os_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        for e in &result.errors {
            tracing::warn!(error = %e, "tls: part of the OS trust store cannot be read");
        }
        if result.certs.is_empty() {
            tracing::warn!(
                "tls: the OS trust store is empty (install ca-certificates, or set SSL_CERT_FILE); only {CA_FILE_KEY} is trusted"
            );
        }
        result.certs
    })
}

enum Cause {
    /// The certificate does not name the host.
    Name(String),
    /// It does not chain to a trusted root (or is otherwise refused).
    Untrusted(String),
}

/// Finds a rustls certificate error in `err` or its causes (also inside `std::io::Error`s,
/// whose `source` skips the wrapped error), or in their text when a client flattened it.
fn certificate_error(err: &(dyn std::error::Error + 'static)) -> Option<Cause> {
    let mut current = Some(err);
    let mut texts = Vec::new();
    while let Some(e) = current {
        if let Some(cause) = rustls_cause(e) {
            return Some(cause);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(cause) = certificate_error(inner) {
                return Some(cause);
            }
        }
        texts.push(e.to_string());
        current = e.source();
    }
    let text = texts.join(": ");
    const NEEDLE: &str = "invalid peer certificate";
    let at = text.find(NEEDLE)?;
    let rest = &text[at..];
    // Causes often repeat their source's text: keep the first mention only.
    let detail = match rest[NEEDLE.len()..].find(NEEDLE) {
        Some(next) => rest[..NEEDLE.len() + next].trim_end_matches([':', ' ']),
        None => rest,
    }
    .to_owned();
    if detail.contains("NotValidForName") {
        Some(Cause::Name(detail))
    } else {
        Some(Cause::Untrusted(detail))
    }
}

fn rustls_cause(e: &(dyn std::error::Error + 'static)) -> Option<Cause> {
    match e.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(
            c @ (rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. }),
        ) => Some(Cause::Name(format!("invalid peer certificate: {c}"))),
        rustls::Error::InvalidCertificate(c) => {
            Some(Cause::Untrusted(format!("invalid peer certificate: {c}")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_ring_and_installing_twice_is_harmless() {
        install_crypto_provider();
        install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(
            provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()).contains("TLS13_AES_128_GCM_SHA256"))
        );
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("ca").pem()
    }

    #[test]
    fn the_policy_is_the_os_store_plus_every_certificate_of_the_ca_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, format!("{}{}", ca_pem(), ca_pem())).expect("write");
        let system = TrustPolicy::system();
        let policy = TrustPolicy::load(Some(&path)).expect("policy");
        assert_eq!(policy.ca_file(), Some(path.as_path()));
        assert_eq!(policy.ca_certificates().len(), 2);
        assert_eq!(policy.certificates().len(), system.certificates().len() + 2);
        assert_eq!(policy.root_store().len(), system.root_store().len() + 2);
        // The PEM bundle holds the same certificates.
        let again: Vec<_> = CertificateDer::pem_slice_iter(&policy.pem())
            .collect::<Result<_, _>>()
            .expect("pem");
        assert_eq!(again, policy.certificates());
        let config = policy.client_config();
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn a_bad_ca_file_names_the_setting_and_the_problem() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let err = TrustPolicy::load(Some(&missing))
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("tls_ca_file") && err.contains("cannot read"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = TrustPolicy::load(Some(&empty))
            .expect_err("empty")
            .to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let err = TrustPolicy::load(Some(&garbage))
            .expect_err("garbage")
            .to_string();
        assert!(err.contains("trust anchor"), "{err}");
    }

    #[test]
    fn certificate_errors_are_found_inside_io_errors_and_text() {
        let policy = TrustPolicy::system();
        let unknown = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let err = policy
            .explain("redis_url rediss://h:1", &unknown)
            .expect("explained")
            .to_string();
        assert!(
            err.contains("UnknownIssuer") && err.contains("set tls_ca_file"),
            "{err}"
        );
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let err = policy
            .explain("nats_url tls://h:1", &name)
            .expect("explained")
            .to_string();
        assert!(err.contains("host name"), "{err}");
        let text = std::io::Error::other(
            "tls error: invalid peer certificate: UnknownIssuer: invalid peer certificate: UnknownIssuer",
        );
        let err = policy.explain("x", &text).expect("explained").to_string();
        assert!(
            err.contains("(invalid peer certificate: UnknownIssuer)"),
            "{err}"
        );
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(policy.explain("x", &other).is_none());
    }
}
