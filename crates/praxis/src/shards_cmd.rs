//! `praxis shards`: the order shards of a running server, through its admin routes
//! (`/api/v1/orders/shards/...`), with the admin key of the same configuration.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::ShardsCommand;
use crate::config::Config;
use crate::secrets;

/// Runs the subcommand: 0 when it did what it says (and `verify` found every document in
/// place), 1 otherwise.
pub fn run(cfg: &Config, cmd: &ShardsCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("praxis shards: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cfg, cmd)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("praxis shards: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's admin routes, as the admin.
struct Server {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Server {
    fn new(cfg: &Config, url: Option<&str>) -> anyhow::Result<Server> {
        let base = match url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", cfg.listen),
        };
        let key = secrets::admin_key(cfg)
            .context("the admin key (set PRAXIS_ADMIN_KEY as for serve)")?
            .expose()
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Server { http, base, key })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/orders/shards{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{url}: is `praxis serve` running there?"))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = value["detail"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            bail!("{status}: {detail}");
        }
        Ok(value)
    }
}

async fn execute(cfg: &Config, cmd: &ShardsCommand) -> anyhow::Result<bool> {
    let server = Server::new(cfg, cmd.server().url.as_deref())?;
    match cmd {
        ShardsCommand::Status(_) => {
            let regions = server.call(reqwest::Method::GET, "", None).await?;
            for region in regions.as_array().into_iter().flatten() {
                print_region(region);
            }
            Ok(true)
        }
        ShardsCommand::Add {
            region,
            shard,
            vnodes,
            dry_run,
            wait,
            ..
        } => {
            let mut body = json!({"add": shard, "dry_run": dry_run});
            if let Some(v) = vnodes {
                body["vnodes"] = json!(v);
            }
            start(&server, region, body, *dry_run, *wait).await
        }
        ShardsCommand::Rebalance {
            region,
            target,
            dry_run,
            wait,
            ..
        } => {
            let body = json!({"target": parse_target(target)?, "dry_run": dry_run});
            start(&server, region, body, *dry_run, *wait).await
        }
        ShardsCommand::Abort { region, id, .. } => {
            let m = server
                .call(
                    reqwest::Method::POST,
                    &format!("/{region}/moves/{id}/abort"),
                    None,
                )
                .await?;
            println!("{}", move_line(&m));
            Ok(true)
        }
        ShardsCommand::Verify { region, .. } => {
            let v = server
                .call(reqwest::Method::POST, &format!("/{region}/verify"), None)
                .await?;
            println!("{region}: ring v{}", v["version"]);
            for s in v["shards"].as_array().into_iter().flatten() {
                println!(
                    "  {:<16} {:>10} documents  {:>6} misplaced",
                    s["shard"].as_str().unwrap_or("?"),
                    s["documents"].as_i64().unwrap_or(-1),
                    s["misplaced"].as_i64().unwrap_or(-1)
                );
            }
            let ok = v["ok"] == true;
            println!(
                "{}",
                if ok {
                    "ok: every document is on its shard"
                } else {
                    "NOT ok: documents off their shard (a move in progress keeps copies on its targets)"
                }
            );
            Ok(ok)
        }
    }
}

/// `s1:128,s2:128` as a ring spec.
fn parse_target(text: &str) -> anyhow::Result<Vec<Value>> {
    text.split(',')
        .map(|part| {
            let (name, vnodes) = part
                .trim()
                .split_once(':')
                .with_context(|| format!("{part:?}: write each shard as name:vnodes"))?;
            let vnodes: u32 = vnodes
                .parse()
                .with_context(|| format!("{part:?}: vnodes must be a number"))?;
            Ok(json!({"name": name, "vnodes": vnodes}))
        })
        .collect()
}

async fn start(
    server: &Server,
    region: &str,
    body: Value,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<bool> {
    let answer = server
        .call(
            reqwest::Method::POST,
            &format!("/{region}/moves"),
            Some(body),
        )
        .await?;
    if dry_run {
        println!(
            "{region}: from ring v{}, {:.1}% of the ring and {} documents would move",
            answer["from_version"],
            answer["moving_share"].as_f64().unwrap_or(0.0) * 100.0,
            answer["documents"]
        );
        for f in answer["flows"].as_array().into_iter().flatten() {
            println!(
                "  {} -> {}: {} documents",
                str_of(&f["from"]),
                str_of(&f["to"]),
                f["documents"]
            );
        }
        return Ok(true);
    }
    println!("{}", move_line(&answer));
    if !wait {
        return Ok(true);
    }
    let id = str_of(&answer["id"]).to_owned();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = server
            .call(reqwest::Method::GET, &format!("/{region}/moves/{id}"), None)
            .await?;
        println!("{}", move_line(&m));
        match m["state"].as_str() {
            Some("done") => return Ok(true),
            Some("aborted") => return Ok(false),
            _ => {}
        }
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn move_line(m: &Value) -> String {
    let eta = m["eta_secs"]
        .as_f64()
        .map(|s| format!(", eta {s:.0} s"))
        .unwrap_or_default();
    let error = m["error"]
        .as_str()
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default();
    format!(
        "move {} of {}: {} {}/{} documents, {:.0}/s{eta}{error}",
        str_of(&m["id"]),
        str_of(&m["region"]),
        str_of(&m["state"]),
        m["copied"],
        m["total"],
        m["rate"].as_f64().unwrap_or(0.0)
    )
}

fn print_region(r: &Value) {
    println!("{}: ring v{}", str_of(&r["region"]), r["version"]);
    for s in r["shards"].as_array().into_iter().flatten() {
        println!(
            "  {:<16} {:>5} vnodes {:>6.1}% of the ring {:>10} orders",
            str_of(&s["name"]),
            s["vnodes"].as_u64().unwrap_or(0),
            s["share"].as_f64().unwrap_or(0.0) * 100.0,
            s["orders"].as_i64().unwrap_or(-1)
        );
    }
    if !r["move"].is_null() {
        println!("  {}", move_line(&r["move"]));
    }
    if !r["suggested"].is_null() {
        let s = &r["suggested"];
        println!(
            "  the size trigger suggests a move of {} documents ({:.1}% of the ring)",
            s["documents"],
            s["moving_share"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
}
