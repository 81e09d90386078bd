//! One-click unsubscribe (RFC 8058): the headers of emails to subscribers, the POST that opts
//! out (channel or topic), the GET page that does not, and bad tokens; each case on every
//! backend. Emails are `.eml` files, read back as a mail client would see the headers.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

use praxis_notify::domain::unsubscribe::{Scope, Signer};

use crate::support::{Harness, Kind, Resp, SECRET, TOKEN_SECRET, settings};

praxis_testkit::backend_matrix!(crate::unsubscribe: [
    emails_to_subscribers_carry_a_one_click_link,
    a_topic_link_opts_out_of_that_topic_only,
    bad_tokens_are_403_and_gone_subscribers_404,
]);

const BASE: &str = "https://notify.example.com";

/// A harness writing emails to a temporary directory, with a public base URL.
async fn harness(kind: Kind) -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = settings();
    s.eml_dir = Some(dir.path().to_path_buf());
    s.public_base_url = Some(format!("{BASE}/"));
    let h = Harness::start(kind, s).await;
    h.template(
        "news",
        json!({"email": {"subject": "News {{ n }}", "text": "Issue {{ n }}"}}),
    )
    .await;
    (dir, h)
}

/// The `.eml` text of the (only) delivery of `message`, once delivered.
async fn eml(h: &Harness, dir: &tempfile::TempDir, message: &str) -> String {
    let m = h.wait_state(message, "delivered").await;
    let delivery = m["deliveries"][0]["id"].as_str().expect("delivery id");
    std::fs::read_to_string(dir.path().join(format!("{delivery}.eml"))).expect("the .eml file")
}

/// The value of header `name` (unfolded), if the message has it.
fn header_of(eml: &str, name: &str) -> Option<String> {
    let head = eml.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The unsubscribe URL of an email, after checking both RFC 8058 headers; returned as the
/// path and query the app serves.
fn unsubscribe_path(eml: &str) -> String {
    let list = header_of(eml, "List-Unsubscribe").unwrap_or_else(|| panic!("no header: {eml}"));
    assert_eq!(
        header_of(eml, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "{eml}"
    );
    let url = list
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or_else(|| panic!("not <url>: {list}"));
    let path = url
        .strip_prefix(BASE)
        .unwrap_or_else(|| panic!("not under the public base URL: {url}"));
    assert!(
        path.starts_with("/api/v1/notify/unsubscribe?token="),
        "{url}"
    );
    path.to_owned()
}

/// POSTs a one-click unsubscribe as a mailbox provider does (RFC 8058 form body, no
/// credentials).
async fn one_click(h: &Harness, path: &str) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .expect("request");
    h.send(req).await
}

async fn preferences(h: &Harness, id: &str) -> Value {
    h.call(
        Method::GET,
        &format!("/api/v1/notify/subscribers/{id}/preferences"),
        None,
    )
    .await
    .ok(200)
}

pub async fn emails_to_subscribers_carry_a_one_click_link(kind: Kind) {
    let (dir, h) = harness(kind).await;
    h.subscriber("u1", json!({"email": "ada@example.com"}))
        .await;

    let first = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 1}}))
        .await;
    let text = eml(&h, &dir, &first).await;
    let path = unsubscribe_path(&text);

    // An email to a raw address has no subscriber to opt out: no header.
    let raw = h
        .notify(json!({"to": {"email": "bob@example.com"}, "template": "news", "data": {"n": 1}}))
        .await;
    let raw_text = eml(&h, &dir, &raw).await;
    assert_eq!(header_of(&raw_text, "List-Unsubscribe"), None, "{raw_text}");

    // GET shows a page with a button, and changes nothing (mail scanners fetch links).
    let page = h.call_as(None, Method::GET, &path, None).await;
    assert_eq!(page.status.as_u16(), 200, "{page:?}");
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/html"),
        "{page:?}"
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert_eq!(
        preferences(&h, "u1").await,
        json!({"channels": {}, "topics": {}})
    );

    // The one-click POST (no credentials) opts out of email; a second one changes nothing.
    let done = one_click(&h, &path).await.ok(200);
    assert_eq!(
        done,
        json!({"subscriber_id": "u1", "channel": "email", "changed": true}),
        "{done}"
    );
    assert_eq!(
        preferences(&h, "u1").await,
        json!({"channels": {"email": false}, "topics": {}})
    );
    let again = one_click(&h, &path).await.ok(200);
    assert_eq!(again["changed"], false, "{again}");
    // An empty body works too (some providers send none).
    h.call_as(None, Method::POST, &path, None).await.ok(200);

    // The next email to u1 is suppressed, and written nowhere.
    let next = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 2}}))
        .await;
    let m = h.wait_state(&next, "suppressed").await;
    let delivery = m["deliveries"][0]["id"].as_str().expect("delivery id");
    assert!(!dir.path().join(format!("{delivery}.eml")).exists());
}

pub async fn a_topic_link_opts_out_of_that_topic_only(kind: Kind) {
    let (dir, h) = harness(kind).await;
    h.subscriber("u1", json!({"email": "ada@example.com"}))
        .await;
    h.subscriber("u2", json!({"email": "bob@example.com"}))
        .await;

    let marketing = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 1}, "topic": "marketing"}))
        .await;
    let path = unsubscribe_path(&eml(&h, &dir, &marketing).await);
    // A browser confirming on the GET page gets HTML back.
    let req = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header(header::ACCEPT, "text/html")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .expect("request");
    let page = h.send(req).await;
    assert_eq!(page.status.as_u16(), 200, "{page:?}");
    assert!(
        String::from_utf8_lossy(&page.body).contains("marketing"),
        "{page:?}"
    );
    assert_eq!(
        preferences(&h, "u1").await,
        json!({"channels": {}, "topics": {"marketing": {"email": false}}})
    );

    // Marketing emails to u1 are suppressed; its other emails and u2's are not.
    let m = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 2}, "topic": "marketing"}))
        .await;
    h.wait_state(&m, "suppressed").await;
    let other = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 3}, "topic": "security"}))
        .await;
    h.wait_state(&other, "delivered").await;
    let plain = h
        .notify(json!({"to": "u1", "template": "news", "data": {"n": 4}}))
        .await;
    // Its link is the all-email one: another token than the topic's.
    let plain_path = unsubscribe_path(&eml(&h, &dir, &plain).await);
    assert_ne!(plain_path, path);
    let u2 = h
        .notify(json!({"to": "u2", "template": "news", "data": {"n": 5}, "topic": "marketing"}))
        .await;
    h.wait_state(&u2, "delivered").await;

    // A broadcast to a topic: each subscriber's email has its own link, for that topic.
    h.call(
        Method::PUT,
        "/api/v1/notify/topics/weekly",
        Some(json!({"name": "Weekly"})),
    )
    .await
    .ok(201);
    h.call(
        Method::POST,
        "/api/v1/notify/topics/weekly/subscribers",
        Some(json!({"subscribers": ["u2"]})),
    )
    .await
    .ok(200);
    let broadcast = h
        .notify(json!({"to": {"topic": "weekly"}, "template": "news", "data": {"n": 6}}))
        .await;
    let path = unsubscribe_path(&eml(&h, &dir, &broadcast).await);
    one_click(&h, &path).await.ok(200);
    assert_eq!(
        preferences(&h, "u2").await,
        json!({"channels": {}, "topics": {"weekly": {"email": false}}})
    );
}

pub async fn bad_tokens_are_403_and_gone_subscribers_404(kind: Kind) {
    let (_dir, h) = harness(kind).await;
    h.subscriber("u1", json!({"email": "ada@example.com"}))
        .await;
    let signer = Signer::new(TOKEN_SECRET);
    let good = signer.token("u1", &Scope::Email);
    // Every webhook receiver holds the webhook secret: a token it mints is refused.
    let by_a_receiver = Signer::new(SECRET).token("u1", &Scope::Email);

    // Tampered: u2's id under u1's signature; a changed tag; another secret's token.
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}.{}",
        parts[0],
        base64_url("u2"),
        parts[2],
        parts[3]
    );
    let foreign =
        Signer::new("whsec_QWxhZGRpbjpvcGVuIHNlc2FtZSBvcGVuIHNlc2FtZQ").token("u1", &Scope::Email);
    let mut flipped = good.clone();
    flipped.pop();
    flipped.push(if good.ends_with('A') { 'B' } else { 'A' });
    for token in [
        forged.as_str(),
        foreign.as_str(),
        by_a_receiver.as_str(),
        flipped.as_str(),
        "nope",
    ] {
        for method in [Method::POST, Method::GET] {
            let r = h
                .call_as(
                    None,
                    method.clone(),
                    &format!("/api/v1/notify/unsubscribe?token={token}"),
                    None,
                )
                .await;
            assert_eq!(r.status.as_u16(), 403, "{method} {token}: {r:?}");
            assert_eq!(
                r.headers[header::CONTENT_TYPE],
                "application/problem+json",
                "{r:?}"
            );
            let problem = r.json();
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("this unsubscribe link is not valid")),
                "{problem}"
            );
        }
    }
    // No token at all.
    let r = h
        .call_as(None, Method::POST, "/api/v1/notify/unsubscribe", None)
        .await;
    assert_eq!(r.status.as_u16(), 400, "{r:?}");
    assert_eq!(
        preferences(&h, "u1").await,
        json!({"channels": {}, "topics": {}})
    );

    // A valid token of a subscriber that was deleted: 404.
    h.call(Method::DELETE, "/api/v1/notify/subscribers/u1", None)
        .await;
    for method in [Method::POST, Method::GET] {
        let r = h
            .call_as(
                None,
                method,
                &format!("/api/v1/notify/unsubscribe?token={good}"),
                None,
            )
            .await;
        assert_eq!(r.status.as_u16(), 404, "{r:?}");
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
