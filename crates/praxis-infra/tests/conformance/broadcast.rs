//! Broadcaster: what is specific to the Redis adapter (the conformance suite runs on every
//! adapter).

use std::time::Duration;

use bytes::Bytes;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::tls::TrustPolicy;
use praxis_testkit::conformance::broadcast::recv;
use praxis_testkit::services;

/// A TCP proxy whose live connections can be cut, to simulate a network failure without
/// touching the shared Redis server.
struct CuttableProxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl CuttableProxy {
    async fn start(target: String) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let mut cut_rx = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Ok(CuttableProxy { addr, cut })
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_resubscribes_after_a_connection_loss() -> anyhow::Result<()> {
    let url = services::redis_url();
    let target = url::Url::parse(&url)?;
    let host = format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(6379)
    );
    let proxy = CuttableProxy::start(host).await?;
    let prefix = services::unique_prefix();
    let trust = TrustPolicy::system();
    let behind_proxy =
        Broadcaster::redis(&format!("redis://{}", proxy.addr), &prefix, &trust).await?;
    let direct = Broadcaster::redis(&url, &prefix, &trust).await?;
    let mut rx = behind_proxy.subscribe("conf.chan");

    direct
        .publish("conf.chan", Bytes::from_static(b"before"))
        .await?;
    assert_eq!(recv(&mut rx).await?, "before");

    proxy.cut_all();
    // At-most-once: messages sent while the subscriber reconnects are lost, so keep sending
    // until one arrives through the new subscription.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        direct
            .publish("conf.chan", Bytes::from_static(b"after"))
            .await?;
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Ok(msg)) if msg == "after" => break,
            _ if tokio::time::Instant::now() > deadline => {
                anyhow::bail!("no message after the reconnect")
            }
            _ => {}
        }
    }
    Ok(())
}
