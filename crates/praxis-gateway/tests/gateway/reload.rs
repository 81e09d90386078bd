//! The gateway file reloaded while requests are in flight.

use std::time::Duration;

use praxis_gateway::{Gateway, GatewayConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::*;

struct Watched {
    gateway: Gateway,
    base: String,
    file: std::path::PathBuf,
    shutdown: CancellationToken,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_file(&self.file);
    }
}

async fn watched(name: &str, text: &str) -> Watched {
    let file = std::env::temp_dir().join(format!("praxis-gw-{name}-{}.toml", std::process::id()));
    std::fs::write(&file, text).expect("write the gateway file");
    let config = GatewayConfig::load(&file).expect("gateway file");
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(
        config,
        "127.0.0.1:0".parse().expect("addr"),
        shutdown.clone(),
        &TaskTracker::new(),
    )
    .await
    .expect("start");
    gateway.watch(file.clone(), Duration::from_millis(50));
    let base = format!("http://{}", gateway.local_addr());
    Watched {
        gateway,
        base,
        file,
        shutdown,
    }
}

async fn id_of(http: &reqwest::Client, url: String) -> (u16, Option<String>) {
    let resp = http.get(url).send().await.expect("request");
    let id = resp
        .headers()
        .get("x-upstream-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status().as_u16(), id)
}

fn file(p: &[&Upstream], q: Option<&[&Upstream]>) -> String {
    let list = |ups: &[&Upstream]| {
        let l: Vec<String> = ups.iter().map(|u| format!("{:?}", u.addr)).collect();
        format!("[{}]", l.join(", "))
    };
    let mut text = format!(
        "[pools.p]\ninstances = {}\nhealth.check = \"none\"\n\n[[routes]]\npool = \"p\"\n",
        list(p)
    );
    if let Some(q) = q {
        text.push_str(&format!("\n[pools.q]\ninstances = {}\nhealth.check = \"none\"\n\n[[routes]]\npath_prefix = \"/q/\"\npool = \"q\"\n", list(q)));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_applies_while_a_request_in_flight_finishes() {
    let ups = upstreams("rl", 2).await;
    let (a, b) = (&ups[0], &ups[1]);
    let gw = watched("change", &file(&[a], None)).await;
    let http = client();
    assert_eq!(
        id_of(&http, format!("{}/", gw.base)).await,
        (200, Some("rl0".to_owned()))
    );

    a.mode("hold=true").await;
    let held = {
        let (http, url) = (http.clone(), format!("{}/held", gw.base));
        tokio::spawn(async move { id_of(&http, url).await })
    };
    eventually("a request held at rl0", Duration::from_secs(10), || async {
        a.stats().await.in_flight == 1
    })
    .await;

    // Pool p now has rl1 only, and a new route /q/ goes to a new pool q with rl0.
    std::fs::write(&gw.file, file(&[b], Some(&[a]))).expect("rewrite");
    eventually("the new file to apply", Duration::from_secs(10), || async {
        gw.gateway.watch_state().applied == 2
    })
    .await;
    assert_eq!(
        id_of(&http, format!("{}/", gw.base)).await,
        (200, Some("rl1".to_owned()))
    );

    a.release().await;
    assert_eq!(
        held.await.expect("held"),
        (200, Some("rl0".to_owned())),
        "the request in flight finished"
    );
    assert_eq!(
        id_of(&http, format!("{}/q/x", gw.base)).await,
        (200, Some("rl0".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_keeps_the_running_version() {
    let ups = upstreams("rb", 1).await;
    let gw = watched("broken", &file(&[&ups[0]], None)).await;
    let http = client();
    std::fs::write(
        &gw.file,
        "[pools.p]\ninstances = []\n[[routes]]\npool = \"p\"\n",
    )
    .expect("rewrite");
    eventually(
        "the broken file to be refused",
        Duration::from_secs(10),
        || async { gw.gateway.watch_state().last_error.is_some() },
    )
    .await;
    let state = gw.gateway.watch_state();
    assert_eq!(state.applied, 1);
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("pools.p.instances")),
        "{state:?}"
    );
    assert_eq!(
        id_of(&http, format!("{}/", gw.base)).await,
        (200, Some("rb0".to_owned()))
    );
}
