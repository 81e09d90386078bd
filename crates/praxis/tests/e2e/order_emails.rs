//! Commerce and notifications through the real binary, talking only over the bus as separate
//! services would: the admin stocks a product, the buyer (an identity account registered as
//! a notify subscriber with an email address) checks out, and the order's `confirmed` event
//! on `commerce.orders` becomes an email that reaches a real SMTP server (the channel suite's
//! aiosmtpd script).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::identity::account;
use crate::support::{ADMIN_KEY, Server, client, data_dir, temp_dir};

/// How long the email may take (a deadline, not a timing assertion).
const DEADLINE: Duration = Duration::from_secs(60);

/// `praxis-notify/tests/channels/smtp_server.py` as a child process (killed on drop), with
/// the JSON line it prints for each message it accepts.
struct SmtpSink {
    child: Child,
    port: u16,
    mails: mpsc::Receiver<Value>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../praxis-notify/tests/channels/smtp_server.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed (scripts/test installs it with aiosmtpd)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (mail_tx, mails) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("READY ") {
                    let _ = ready_tx.send(port.trim().parse::<u16>().expect("a port"));
                } else if let Ok(mail) = serde_json::from_str::<Value>(&line)
                    && mail_tx.send(mail).is_err()
                {
                    break;
                }
            }
        });
        let Ok(port) = ready_rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            panic!("smtp_server.py did not start (python3 -m pip install aiosmtpd)");
        };
        SmtpSink { child, port, mails }
    }

    /// The first message whose subject contains `subject` (others are skipped), or a panic
    /// naming what came instead.
    fn wait_for(&self, subject: &str) -> Value {
        let end = Instant::now() + DEADLINE;
        let mut others = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(mail) = self.mails.recv_timeout(left) else {
                break;
            };
            if mail["headers"]["subject"]
                .as_str()
                .is_some_and(|s| s.contains(subject))
            {
                return mail;
            }
            others.push(mail["headers"]["subject"].clone());
        }
        panic!("no email with subject {subject:?} within {DEADLINE:?}; got {others:?}");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a JSON request with a bearer token; returns the status and body.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client()
        .request(method, server.url(path))
        .bearer_auth(bearer);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Asserts `status` and returns the body, with the server's logs on failure.
fn expect(server: &Server, what: &str, want: u16, (status, body): (u16, Value)) -> Value {
    assert_eq!(status, want, "{what}: {body}\n{}", server.logs());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_emails_the_buyer_that_the_order_is_confirmed() {
    let smtp = SmtpSink::start();
    let dir = temp_dir();
    let data = data_dir(dir.path()).display().to_string();
    let smtp_url = format!("smtp://127.0.0.1:{}?tls=none", smtp.port);
    let server = Server::start(
        dir.path(),
        &[
            "--data-dir",
            &data,
            "--notify-smtp-url",
            &smtp_url,
            "--access-log=false",
        ],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    // The admin stocks a product.
    let product = expect(
        &server,
        "create product",
        201,
        call(
            &server,
            Method::POST,
            "/api/v1/commerce/products",
            ADMIN_KEY,
            Some(json!({"name": "Tee", "description": "a tee shirt"})),
            &[],
        )
        .await,
    );
    let product = product["id"].as_str().expect("product id").to_owned();
    let admin_steps = [
        (
            Method::POST,
            format!("/api/v1/commerce/products/{product}/variants"),
            json!({"sku": "TEE-M", "name": "medium"}),
            201,
        ),
        (
            Method::PUT,
            "/api/v1/commerce/skus/TEE-M/prices/EUR".to_owned(),
            json!({"amount_cents": 1_250}),
            200,
        ),
        (
            Method::PUT,
            "/api/v1/commerce/warehouses/w1".to_owned(),
            json!({"region": "eu"}),
            200,
        ),
        (
            Method::POST,
            "/api/v1/commerce/stock/TEE-M/receive".to_owned(),
            json!({"warehouse": "w1", "quantity": 5}),
            200,
        ),
    ];
    for (method, path, body, want) in admin_steps {
        let r = call(&server, method, &path, ADMIN_KEY, Some(body), &[]).await;
        expect(&server, &path, want, r);
    }

    // The buyer is an account, and a notify subscriber under its account id.
    let http = client();
    let token = account(&http, &server, "buyer@example.com").await;
    let me = expect(
        &server,
        "me",
        200,
        call(
            &server,
            Method::GET,
            "/api/v1/identity/me",
            &token,
            None,
            &[],
        )
        .await,
    );
    let buyer = me["subject"].as_str().expect("subject").to_owned();
    let (status, body) = call(
        &server,
        Method::PUT,
        &format!("/api/v1/notify/subscribers/{buyer}"),
        ADMIN_KEY,
        Some(json!({"email": "buyer@example.com"})),
        &[],
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "subscriber: {status} {body}\n{}",
        server.logs()
    );

    // The buyer shops and checks out.
    expect(
        &server,
        "add to cart",
        200,
        call(
            &server,
            Method::POST,
            "/api/v1/commerce/cart/items",
            &token,
            Some(json!({"sku": "TEE-M", "quantity": 2})),
            &[],
        )
        .await,
    );
    let order = expect(
        &server,
        "checkout",
        201,
        call(
            &server,
            Method::POST,
            "/api/v1/commerce/checkout",
            &token,
            Some(json!({"currency": "EUR", "region": "eu"})),
            &[("idempotency-key", "checkout-1")],
        )
        .await,
    );
    assert_eq!(order["status"], "confirmed", "{order}");
    let order_id = order["id"].as_str().expect("order id").to_owned();

    // The email reaches the SMTP server.
    let mail = tokio::task::block_in_place(|| smtp.wait_for("Order confirmed"));
    assert_eq!(
        mail["rcpt_tos"],
        json!(["buyer@example.com"]),
        "{mail}\n{}",
        server.logs()
    );
    let subject = mail["headers"]["subject"].as_str().unwrap_or_default();
    assert!(subject.contains(&order_id), "{subject}");
    let text = mail["text"].as_str().unwrap_or_default();
    assert!(text.contains(&order_id), "{text}");
    assert!(text.contains("Total: 25.00 EUR"), "{text}");
}
