//! `praxis secrets`: what `show notify-webhook` prints is exactly what a Standard Webhooks
//! receiver needs. The receiver is the `standardwebhooks` PyPI package (not praxis's code),
//! verifying a real delivery from a running server; a receiver given another secret rejects
//! it, so the case can fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::support::{ADMIN_KEY, Server, client, describe, run, temp_dir};

/// A `standardwebhooks_receiver.py` child and the lines it prints.
struct Receiver {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Receiver {
    fn start(secret: &str) -> Receiver {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/standardwebhooks_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg(secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test installs standardwebhooks)");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the receiver starts (is standardwebhooks installed?)");
        let port = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}/hook"),
            lines,
        }
    }

    /// The next verdict line.
    fn verdict(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a delivery reaches the receiver within 60 s")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn notify(server: &Server, url: &str) {
    let resp = client()
        .post(server.url("/api/v1/notify/send"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"to": {"webhook": url}, "template": "hello", "data": {"n": 1}}))
        .send()
        .await
        .expect("send request");
    assert_eq!(resp.status().as_u16(), 202, "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_show_prints_the_webhook_secret_receivers_verify_with() {
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let env = [("PRAXIS_ADMIN_KEY", ADMIN_KEY)];

    // Before any start: listed as not generated yet; no value is ever listed.
    let listed = run(dir.path(), &["secrets", "list", "--data-dir", &data], &env);
    assert!(listed.status.success(), "{}", describe(&listed));
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        text.contains("notify_webhook_secret  not generated yet"),
        "{text}"
    );
    assert!(text.contains("admin_key  configured"), "{text}");

    let server = Server::start(
        dir.path(),
        &[
            "--data-dir",
            &data,
            "--notify-webhook-allow-cidrs",
            "127.0.0.0/8",
            "--notify-retry-base",
            "100ms",
        ],
        &env,
    );
    let shown = run(
        dir.path(),
        &["secrets", "show", "notify-webhook", "--data-dir", &data],
        &env,
    );
    assert!(shown.status.success(), "{}", describe(&shown));
    let secret = String::from_utf8_lossy(&shown.stdout).trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{}", describe(&shown));
    let listed = run(dir.path(), &["secrets", "list", "--data-dir", &data], &env);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        text.contains("notify_webhook_secret  generated, in"),
        "{text}"
    );
    assert!(!text.contains(&secret), "list never prints a value: {text}");

    let created = client()
        .post(server.url("/api/v1/notify/templates"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "hello", "channels": {"webhook": {"text": "n={{ n }}"}}}))
        .send()
        .await
        .expect("template request");
    assert_eq!(created.status().as_u16(), 201, "{}", server.logs());

    // The printed secret verifies a real delivery in the reference library.
    let receiver = Receiver::start(&secret);
    notify(&server, &receiver.url).await;
    let verdict = receiver.verdict();
    assert!(verdict.starts_with("verified "), "{verdict}");

    // Another secret does not: the same library rejects the delivery.
    let stranger = Receiver::start("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    notify(&server, &stranger.url).await;
    let verdict = stranger.verdict();
    assert!(verdict.starts_with("rejected"), "{verdict}");

    // An unknown name is a usage error that lists the secrets.
    let unknown = run(
        dir.path(),
        &["secrets", "show", "nope", "--data-dir", &data],
        &env,
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("notify_webhook_secret"),
        "{}",
        describe(&unknown)
    );
}
