//! Email: SMTP against a real aiosmtpd server, and `.eml` files.

use crate::support::{SmtpServer, closed_port, delivery_id, outgoing};
use praxis_notify::workers::channels::{EmailProvider, Provider, SendError, SmtpSettings, SmtpTls};
use std::time::Duration;

fn smtp(port: u16) -> EmailProvider {
    EmailProvider::smtp(
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "praxis <noreply@praxis.test>".into(),
            timeout: Duration::from_secs(10),
            ca_file: None,
        },
        &praxis_infra::tls::TrustPolicy::system(),
    )
    .unwrap()
}

#[tokio::test]
async fn smtp_delivers_a_text_message() {
    let server = SmtpServer::start();
    let provider = smtp(server.port);
    let id = delivery_id();
    let receipt = provider
        .send(&outgoing(&id, "Ada <ada@example.org>"))
        .await
        .unwrap();
    assert_eq!(receipt.provider, "smtp");
    assert!(receipt.detail.starts_with("250 "), "{receipt:?}");

    let mail = server.next_mail();
    assert_eq!(mail.mail_from, "noreply@praxis.test");
    assert_eq!(mail.rcpt_tos, vec!["ada@example.org"]);
    assert!(mail.defects.is_empty(), "{:?}", mail.defects);
    assert_eq!(mail.headers["message-id"], format!("<{id}@praxis.test>"));
    assert_eq!(mail.headers["subject"], "Héllo ✓");
    // On the wire the non-ASCII subject is an RFC 2047 encoded word.
    assert!(
        mail.raw
            .to_ascii_lowercase()
            .contains("\r\nsubject: =?utf-8?"),
        "{}",
        mail.raw
    );
    assert_eq!(mail.headers["from"], "praxis <noreply@praxis.test>");
    assert_eq!(mail.headers["to"], "Ada <ada@example.org>");
    assert!(mail.headers.contains_key("date"), "{:?}", mail.headers);
    assert!(!mail.headers.contains_key("list-unsubscribe"));
    assert_eq!(mail.content_type, "text/plain");
    // SMTP carries lines as CRLF.
    assert_eq!(
        mail.text.as_deref(),
        Some("Hi Ada,\r\nyour order shipped.\r\n")
    );
    assert_eq!(mail.html, None);
}

#[tokio::test]
async fn smtp_html_is_multipart_alternative_with_one_click_unsubscribe() {
    let server = SmtpServer::start();
    let provider = smtp(server.port);
    let id = delivery_id();
    let mut m = outgoing(&id, "ada@example.org");
    m.html = Some("<p>Hi <b>Ada</b>, your order shipped.</p>".into());
    m.unsubscribe_url = Some("https://praxis.test/unsubscribe/abc?x=1".into());
    provider.send(&m).await.unwrap();

    let mail = server.next_mail();
    assert!(mail.defects.is_empty(), "{:?}", mail.defects);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(
        mail.text.as_deref(),
        Some("Hi Ada,\r\nyour order shipped.\r\n")
    );
    assert_eq!(
        mail.html.as_deref().map(str::trim_end),
        Some("<p>Hi <b>Ada</b>, your order shipped.</p>")
    );
    assert_eq!(
        mail.headers["list-unsubscribe"],
        "<https://praxis.test/unsubscribe/abc?x=1>"
    );
    assert_eq!(
        mail.headers["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
}

#[tokio::test]
async fn smtp_retries_keep_the_message_id() {
    let server = SmtpServer::start();
    let provider = smtp(server.port);
    let id = delivery_id();
    let m = outgoing(&id, "ada@example.org");
    provider.send(&m).await.unwrap();
    provider.send(&m).await.unwrap();
    let (a, b) = (server.next_mail(), server.next_mail());
    assert_eq!(a.headers["message-id"], b.headers["message-id"]);
    assert_eq!(a.headers["message-id"], format!("<{id}@praxis.test>"));
}

#[tokio::test]
async fn smtp_5xx_is_permanent_and_4xx_transient() {
    let server = SmtpServer::start();
    let provider = smtp(server.port);

    let err = provider
        .send(&outgoing(&delivery_id(), "reject-me@example.org"))
        .await
        .unwrap_err();
    match &err {
        SendError::Permanent { detail } => assert!(detail.contains("550"), "{detail}"),
        other => panic!("expected permanent, got {other:?}"),
    }

    let err = provider
        .send(&outgoing(&delivery_id(), "tempfail@example.org"))
        .await
        .unwrap_err();
    match &err {
        SendError::Transient {
            detail,
            retry_after,
        } => {
            assert!(detail.contains("451"), "{detail}");
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected transient, got {other:?}"),
    }

    // The pooled connection is still usable after refused recipients.
    let id = delivery_id();
    provider
        .send(&outgoing(&id, "ok@example.org"))
        .await
        .unwrap();
    let mail = server.next_mail();
    assert_eq!(mail.rcpt_tos, vec!["ok@example.org"]);
    assert_eq!(mail.headers["message-id"], format!("<{id}@praxis.test>"));
    assert!(
        server.pending().is_empty(),
        "refused messages were delivered"
    );
}

#[tokio::test]
async fn invalid_addresses_are_permanent_without_a_connection() {
    // Nothing listens on this port: a connection attempt would be transient, so a permanent
    // error proves the address was refused first.
    let provider = smtp(closed_port());
    let err = provider
        .send(&outgoing(&delivery_id(), "not an address"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { detail } if detail.contains("invalid email address")),
        "{err:?}"
    );
}

#[tokio::test]
async fn smtp_connection_refused_is_transient() {
    let provider = smtp(closed_port());
    let err = provider
        .send(&outgoing(&delivery_id(), "ada@example.org"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn eml_files_are_complete_and_replaced_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("notify").join("outbox");
    let provider = EmailProvider::eml_dir(outbox.clone(), "noreply@praxis.test").unwrap();
    assert_eq!(provider.name(), "eml-file");
    let id = delivery_id();
    let mut m = outgoing(&id, "ada@example.org");
    m.html = Some("<p>hi</p>".into());
    m.unsubscribe_url = Some("https://praxis.test/u/1".into());

    let receipt = provider.send(&m).await.unwrap();
    let path = outbox.join(format!("{id}.eml"));
    assert_eq!(provider.eml_path(&id), Some(path.clone()));
    assert!(
        receipt.detail.contains(&path.display().to_string()),
        "{receipt:?}"
    );
    let first = std::fs::read_to_string(&path).unwrap();
    for needle in [
        &format!("Message-ID: <{id}@praxis.test>\r\n"),
        "From: noreply@praxis.test\r\n",
        "To: ada@example.org\r\n",
        "List-Unsubscribe: <https://praxis.test/u/1>\r\n",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "Content-Type: multipart/alternative",
        "<p>hi</p>",
    ] {
        assert!(first.contains(needle), "missing {needle:?} in\n{first}");
    }

    // A retry replaces the file: one file per delivery, no temporary files left.
    m.text = "second attempt\n".into();
    m.html = None;
    provider.send(&m).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{id}.eml")]);
    let second = std::fs::read_to_string(&path).unwrap();
    assert!(second.ends_with("\r\n\r\nsecond attempt\r\n"), "{second}");
    assert!(
        second.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{second}"
    );

    // Invalid addresses and ids that are not file names are permanent, and write nothing.
    let bad = provider
        .send(&outgoing(&delivery_id(), "nope"))
        .await
        .unwrap_err();
    assert!(matches!(bad, SendError::Permanent { .. }), "{bad:?}");
    let bad = provider
        .send(&outgoing("../escape", "ada@example.org"))
        .await
        .unwrap_err();
    assert!(matches!(bad, SendError::Permanent { .. }), "{bad:?}");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
}
