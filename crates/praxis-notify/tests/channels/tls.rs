//! SMTP over TLS (STARTTLS and implicit) and AUTH (PLAIN, LOGIN) against a real aiosmtpd
//! server, with a CA and a server certificate made for each test by rcgen: what is delivered
//! went over TLS and authenticated; a wrong password, a relay that does not offer STARTTLS and
//! a certificate that does not chain to a trusted CA all fail, and nothing reaches the server.

use std::path::PathBuf;
use std::time::Duration;

use praxis_notify::workers::channels::{EmailProvider, Provider, SendError, SmtpSettings, SmtpTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::{SmtpServer, delivery_id, outgoing};

const USER: &str = "mailer";
const PASSWORD: &str = "s3cret pass";

/// A test CA and a server certificate it signed, for `127.0.0.1` and `localhost`, as PEM
/// files in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    pki_for(&["127.0.0.1", "localhost"])
}

/// A test CA and a server certificate for `names`.
fn pki_for(names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "praxis test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "praxis test relay");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("relay.pem", cert.pem()),
        key: write("relay.key", key.serialize_pem()),
        _dir: dir,
    }
}

/// A server with `tls` (`starttls` or `implicit`) and AUTH, offering `mechanisms`.
fn server(pki: &Pki, tls: &str, mechanisms: &str) -> SmtpServer {
    let auth = format!("{USER}:{PASSWORD}");
    SmtpServer::start_with(&[
        "--tls",
        tls,
        "--cert",
        pki.cert.to_str().unwrap(),
        "--key",
        pki.key.to_str().unwrap(),
        "--auth",
        &auth,
        "--auth-mechanisms",
        mechanisms,
    ])
}

fn provider(port: u16, tls: SmtpTls, ca_file: Option<PathBuf>, password: &str) -> EmailProvider {
    EmailProvider::smtp(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls,
        username: Some(USER.into()),
        password: Some(password.into()),
        from: "praxis <noreply@praxis.test>".into(),
        timeout: Duration::from_secs(10),
        ca_file,
    })
    .unwrap()
}

#[tokio::test]
async fn starttls_with_auth_plain_delivers() {
    let pki = pki();
    let server = server(&pki, "starttls", "PLAIN,LOGIN");
    let p = provider(
        server.port,
        SmtpTls::StartTls,
        Some(pki.ca.clone()),
        PASSWORD,
    );
    let id = delivery_id();
    let receipt = p.send(&outgoing(&id, "ada@example.org")).await.unwrap();
    assert!(receipt.detail.starts_with("250 "), "{receipt:?}");
    let mail = server.next_mail();
    assert!(mail.tls, "the message went in plain text");
    assert!(mail.authenticated);
    assert_eq!(mail.auth_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(mail.rcpt_tos, vec!["ada@example.org"]);
    assert_eq!(mail.headers["message-id"], format!("<{id}@praxis.test>"));
}

#[tokio::test]
async fn starttls_with_auth_login_delivers() {
    let pki = pki();
    let server = server(&pki, "starttls", "LOGIN");
    let p = provider(
        server.port,
        SmtpTls::StartTls,
        Some(pki.ca.clone()),
        PASSWORD,
    );
    p.send(&outgoing(&delivery_id(), "ada@example.org"))
        .await
        .unwrap();
    let mail = server.next_mail();
    assert!(mail.tls && mail.authenticated, "{mail:?}");
    assert_eq!(mail.auth_mechanism.as_deref(), Some("LOGIN"));
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers() {
    let pki = pki();
    let server = server(&pki, "implicit", "PLAIN,LOGIN");
    let p = provider(
        server.port,
        SmtpTls::Implicit,
        Some(pki.ca.clone()),
        PASSWORD,
    );
    // Two messages: the second goes over the pooled TLS connection.
    for _ in 0..2 {
        p.send(&outgoing(&delivery_id(), "ada@example.org"))
            .await
            .unwrap();
        let mail = server.next_mail();
        assert!(mail.tls && mail.authenticated, "{mail:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_535() {
    let pki = pki();
    let server = server(&pki, "starttls", "PLAIN,LOGIN");
    let p = provider(
        server.port,
        SmtpTls::StartTls,
        Some(pki.ca.clone()),
        "wrong",
    );
    let err = p
        .send(&outgoing(&delivery_id(), "ada@example.org"))
        .await
        .unwrap_err();
    match &err {
        SendError::Permanent { detail } => {
            assert!(detail.contains("535"), "{detail}");
            assert!(
                detail.to_ascii_lowercase().contains("authentication"),
                "{detail}"
            );
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(server.pending().is_empty(), "a message was accepted");
}

#[tokio::test]
async fn a_relay_without_starttls_gets_nothing_in_plain_text() {
    let pki = pki();
    // A plain-text server that still wants AUTH: a client that fell back to plain text would
    // send the password and the message in clear.
    let auth = format!("{USER}:{PASSWORD}");
    let server = SmtpServer::start_with(&["--auth", &auth]);
    let p = provider(
        server.port,
        SmtpTls::StartTls,
        Some(pki.ca.clone()),
        PASSWORD,
    );
    let err = p
        .send(&outgoing(&delivery_id(), "ada@example.org"))
        .await
        .unwrap_err();
    let detail = match &err {
        SendError::Permanent { detail } | SendError::Transient { detail, .. } => detail,
    };
    assert!(detail.contains("STARTTLS"), "{err:?}");
    assert!(server.pending().is_empty(), "a message went in plain text");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_naming_tls() {
    let pki = pki();
    for (mode, tls) in [
        ("starttls", SmtpTls::StartTls),
        ("implicit", SmtpTls::Implicit),
    ] {
        let server = server(&pki, mode, "PLAIN,LOGIN");
        // No CA file: the test CA is not among the public roots.
        let p = provider(server.port, tls, None, PASSWORD);
        let err = p
            .send(&outgoing(&delivery_id(), "ada@example.org"))
            .await
            .unwrap_err();
        let detail = match &err {
            SendError::Transient { detail, .. } => detail,
            other => panic!("{mode}: expected a transient failure, got {other:?}"),
        };
        let lower = detail.to_ascii_lowercase();
        assert!(lower.contains("tls"), "{mode}: {detail}");
        assert!(lower.contains("certificate"), "{mode}: {detail}");
        assert!(
            server.pending().is_empty(),
            "{mode}: a message was accepted"
        );
    }
}

#[tokio::test]
async fn a_certificate_for_another_host_fails() {
    // Trusted CA, but the certificate names another host than the one addressed.
    let pki = pki_for(&["relay.example.org"]);
    let server = server(&pki, "starttls", "PLAIN,LOGIN");
    let p = provider(
        server.port,
        SmtpTls::StartTls,
        Some(pki.ca.clone()),
        PASSWORD,
    );
    let err = p
        .send(&outgoing(&delivery_id(), "ada@example.org"))
        .await
        .unwrap_err();
    match &err {
        SendError::Transient { detail, .. } => {
            assert!(detail.to_ascii_lowercase().contains("tls"), "{detail}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(server.pending().is_empty(), "a message was accepted");
}
