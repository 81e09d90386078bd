//! Running the binary and talking to it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The admin key the tests configure (at least 16 characters).
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";
/// The JWT secret of scaled servers (every process must share it).
pub const JWT_SECRET: &str = "e2e-jwt-secret-0123456789abcdef0123456789";

/// How long a server may take to start.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The binary under test, with no `PRAXIS_*` variable inherited and `dir` as working directory
/// (so no stray `./praxis.toml` is read).
pub fn praxis(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_praxis"));
    cmd.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PRAXIS_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs the binary to completion.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    praxis(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the praxis binary runs")
}

/// Stdout and stderr of a finished run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temporary directory for one test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("praxis-e2e-")
        .tempdir()
        .expect("temporary directory")
}

/// A running `praxis serve`.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    exit: Option<ExitStatus>,
}

impl Server {
    /// Starts `praxis serve --listen 127.0.0.1:0 <args>` in `dir` with `env`, and waits until it
    /// logs the address it listens on.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = praxis(dir)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("praxis serve spawns");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let out = child.stdout.take().expect("piped stdout");
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("log lock").push(line);
            }
        });

        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
            exit: None,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                server.addr = addr;
                return server;
            }
            if let Some(status) = server.try_status() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "praxis serve exited before listening ({status})\n{}",
                    server.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "praxis serve did not listen within {START_DEADLINE:?}\n{}",
                    server.logs()
                );
            }
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().expect("log lock").join("\n"),
            self.stderr.lock().expect("log lock").join("\n")
        )
    }

    /// Its stdout log lines parsed as JSON (non-JSON lines are skipped).
    pub fn json_logs(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .expect("log lock")
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a log line's `message` equals `message`.
    pub fn wait_for_log(&self, message: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self
                .json_logs()
                .iter()
                .any(|l| l["message"].as_str() == Some(message))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line {message:?} within {within:?}\n{}", self.logs());
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL delivered");
        let status = self.child.wait().expect("reaped");
        self.exit = Some(status);
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Waits for the process to exit (panics after `within`).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_status() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                panic!("praxis did not exit within {within:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v["message"].as_str()? != "praxis listening" {
        return None;
    }
    v["addr"].as_str()?.parse().ok()
}

/// The dependencies a `/readyz` answer reports as up, in its order.
pub fn dependencies_up(ready: &Value) -> Vec<&str> {
    ready["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["ok"] == true)
        .filter_map(|d| d["name"].as_str())
        .collect()
}

/// An HTTP client that does not follow redirects.
pub fn client() -> reqwest::Client {
    praxis_infra::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client")
}

/// Creates a link to `url` as admin; returns the response status and body.
pub async fn create_link(
    client: &reqwest::Client,
    server: &Server,
    url: &str,
) -> reqwest::Result<(u16, Value)> {
    let resp = client
        .post(server.url("/api/v1/links"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Creates a link and returns its code (panics unless 201).
pub async fn create_code(client: &reqwest::Client, server: &Server, url: &str) -> String {
    let (status, body) = create_link(client, server, url)
        .await
        .expect("create request");
    assert_eq!(status, 201, "create {url}: {body}\n{}", server.logs());
    body["code"].as_str().expect("code in body").to_owned()
}

/// GET `/{code}` without following: status and `Location`.
pub async fn visit(
    client: &reqwest::Client,
    server: &Server,
    code: &str,
) -> reqwest::Result<(u16, Option<String>)> {
    let resp = client.get(server.url(&format!("/{code}"))).send().await?;
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((resp.status().as_u16(), location))
}

/// The all-time visit count of `code` from the stats API.
pub async fn visit_total(client: &reqwest::Client, server: &Server, code: &str) -> i64 {
    let resp = client
        .get(server.url(&format!("/api/v1/links/{code}/stats")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("stats request");
    assert_eq!(resp.status().as_u16(), 200, "stats of {code}");
    let body: Value = resp.json().await.expect("stats json");
    body["total"].as_i64().expect("total in stats")
}

/// Visit totals of `codes`, read until they stop changing (the stats consumer caught up):
/// unchanged over `settle`, or whatever they are at `deadline`.
pub async fn settled_totals(
    client: &reqwest::Client,
    server: &Server,
    codes: &[String],
    settle: Duration,
    deadline: Duration,
) -> HashMap<String, i64> {
    let end = Instant::now() + deadline;
    let mut last: Option<HashMap<String, i64>> = None;
    let mut stable_since = Instant::now();
    loop {
        let mut now = HashMap::new();
        for code in codes {
            now.insert(code.clone(), visit_total(client, server, code).await);
        }
        if last.as_ref() != Some(&now) {
            stable_since = Instant::now();
            last = Some(now);
        } else if stable_since.elapsed() >= settle || Instant::now() > end {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A fresh PostgreSQL database (`praxis_t_<uuid>`) on the test server; dropped (best effort) when
/// the guard goes.
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates it (fails the test naming `PRAXIS_TEST_POSTGRES_URL` if the server is unreachable).
    pub async fn fresh() -> PgDatabase {
        PgDatabase {
            url: praxis_testkit::services::fresh_postgres_database().await,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let Some(name) = self.url.rsplit('/').next().map(str::to_owned) else {
            return;
        };
        if !name.starts_with("praxis_t_") {
            return;
        }
        let admin = praxis_testkit::services::postgres_url();
        // Best effort, on a thread of its own (this may run inside a runtime).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                praxis_infra::sql::install_drivers();
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Everything a scaled `praxis serve` needs: a fresh database, the test Redis and NATS, and a
/// prefix no other test uses. Fails, naming the variable, when a service is unreachable.
pub struct Scaled {
    /// The database (dropped with this value).
    pub db: PgDatabase,
    /// `PRAXIS_TEST_REDIS_URL` or the local default.
    pub redis_url: String,
    /// `PRAXIS_TEST_NATS_URL` or the local default.
    pub nats_url: String,
    /// Redis key and NATS stream prefix.
    pub prefix: String,
}

impl Scaled {
    /// Prepares a scaled environment.
    pub async fn new() -> Scaled {
        let redis_url = praxis_testkit::services::redis_url();
        let nats_url = praxis_testkit::services::nats_url();
        require_reachable("Redis", praxis_testkit::services::REDIS_ENV, &redis_url);
        require_reachable("NATS", praxis_testkit::services::NATS_ENV, &nats_url);
        Scaled {
            db: PgDatabase::fresh().await,
            redis_url,
            nats_url,
            prefix: praxis_testkit::services::unique_prefix(),
        }
    }

    /// The environment of a `praxis serve` using it (admin key and JWT secret included).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PRAXIS_DATABASE_URL", self.db.url.clone()),
            ("PRAXIS_REDIS_URL", self.redis_url.clone()),
            ("PRAXIS_NATS_URL", self.nats_url.clone()),
            ("PRAXIS_PREFIX", self.prefix.clone()),
            ("PRAXIS_ADMIN_KEY", ADMIN_KEY.to_owned()),
            ("PRAXIS_JWT_SECRET", JWT_SECRET.to_owned()),
        ]
    }
}

/// Borrowed view of an owned environment list.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn require_reachable(what: &str, var: &str, url: &str) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{var}={url} is not a URL: {e}"));
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed.port().unwrap_or(0);
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "{what} is unreachable at {url}: scaled tests never skip; set {var} or run scripts/test, which starts it"
    );
}

/// The data directory inside a test's temporary directory.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}
