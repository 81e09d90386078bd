//! SMTP over TLS (STARTTLS and implicit) and AUTH (PLAIN, LOGIN) against a real aiosmtpd
//! server, with a CA and a server certificate made for each test by rcgen: what is delivered
//! went over TLS and authenticated; a wrong password, a relay that does not offer STARTTLS and
//! a certificate that does not chain to a trusted CA all fail, and nothing reaches the server.
//! Webhooks to an HTTPS receiver whose certificate that CA signed: trusted through the
//! platform's policy (`tls_ca_file`), refused without it.

use std::path::PathBuf;
use std::time::Duration;

use praxis_infra::tls::TrustPolicy;
use praxis_notify::workers::channels::{
    EmailProvider, Provider, SendError, SmtpSettings, SmtpTls, WebhookProvider,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::{SmtpServer, delivery_id, outgoing, webhook_settings};

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
    provider_trusting(port, tls, ca_file, password, &TrustPolicy::system())
}

/// [`provider`] with the platform's trust policy `trust`.
fn provider_trusting(
    port: u16,
    tls: SmtpTls,
    ca_file: Option<PathBuf>,
    password: &str,
    trust: &TrustPolicy,
) -> EmailProvider {
    EmailProvider::smtp(
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls,
            username: Some(USER.into()),
            password: Some(password.into()),
            from: "praxis <noreply@praxis.test>".into(),
            timeout: Duration::from_secs(10),
            ca_file,
        },
        trust,
    )
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
async fn the_platforms_trust_policy_is_enough_for_a_private_relay() {
    // The server's tls_ca_file (the platform's policy) holds the relay's CA; no smtp_ca_file.
    let pki = pki();
    let trust = TrustPolicy::load(Some(&pki.ca)).unwrap();
    for (mode, tls) in [
        ("starttls", SmtpTls::StartTls),
        ("implicit", SmtpTls::Implicit),
    ] {
        let server = server(&pki, mode, "PLAIN,LOGIN");
        let p = provider_trusting(server.port, tls, None, PASSWORD, &trust);
        p.send(&outgoing(&delivery_id(), "ada@example.org"))
            .await
            .unwrap();
        let mail = server.next_mail();
        assert!(mail.tls && mail.authenticated, "{mode}: {mail:?}");
    }
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
        // No CA file: the test CA is not in the OS store.
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
        assert!(detail.contains("tls_ca_file"), "{mode}: {detail}");
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

#[tokio::test]
async fn https_webhooks_trust_the_platforms_policy() {
    let pki = pki();
    let rx = crate::support::Receiver::start_tls(&pki.cert, &pki.key).await;
    let url = rx.url("/hooks");
    assert!(url.starts_with("https://"), "{url}");

    // The OS store alone: the receiver's certificate is refused, nothing is delivered.
    let os_only = WebhookProvider::new(webhook_settings(Duration::from_secs(10))).unwrap();
    let err = os_only
        .send(&outgoing(&delivery_id(), &url))
        .await
        .unwrap_err();
    match &err {
        SendError::Transient { detail, .. } => {
            assert!(detail.contains("UnknownIssuer"), "{detail}");
            assert!(detail.contains("tls_ca_file"), "{detail}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(rx.received().is_empty());

    // The platform's policy with the CA file: delivered, and the signature verifies.
    let mut settings = webhook_settings(Duration::from_secs(10));
    settings.trust = TrustPolicy::load(Some(&pki.ca)).unwrap();
    let trusted = WebhookProvider::new(settings).unwrap();
    let receipt = trusted.send(&outgoing(&delivery_id(), &url)).await.unwrap();
    assert_eq!(receipt.detail, "HTTP 204");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].verified, Ok(()));
}
