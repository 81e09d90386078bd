//! Broadcaster: a message reaches every instance, and an instance's own message reaches its
//! own subscribers exactly once.

use std::time::Duration;

use bytes::Bytes;
use praxis_infra::InfraError;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::testing;

const QUIET: Duration = Duration::from_millis(300);
const DELIVERY: Duration = Duration::from_secs(5);

async fn recv(rx: &mut tokio::sync::broadcast::Receiver<Bytes>) -> anyhow::Result<Bytes> {
    Ok(tokio::time::timeout(DELIVERY, rx.recv()).await??)
}

async fn assert_quiet(rx: &mut tokio::sync::broadcast::Receiver<Bytes>) {
    let extra = tokio::time::timeout(QUIET, rx.recv()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}

/// Two instances of one fabric ("two processes"): each message reaches both, once each.
async fn exchange(a: Broadcaster, b: Broadcaster) -> anyhow::Result<()> {
    let mut a_rx = a.subscribe("conf.chan");
    let mut b_rx = b.subscribe("conf.chan");
    let mut a_other = a.subscribe("conf.other");

    a.publish("conf.chan", Bytes::from_static(b"from-a"))
        .await?;
    assert_eq!(recv(&mut a_rx).await?, "from-a");
    assert_eq!(recv(&mut b_rx).await?, "from-a");
    b.publish("conf.chan", Bytes::from_static(b"from-b"))
        .await?;
    assert_eq!(recv(&mut b_rx).await?, "from-b");
    assert_eq!(recv(&mut a_rx).await?, "from-b");

    assert_quiet(&mut a_rx).await;
    assert_quiet(&mut b_rx).await;
    assert_quiet(&mut a_other).await;

    let bad = a.publish("bad channel", Bytes::new()).await;
    assert!(matches!(bad, Err(InfraError::Config(_))), "{bad:?}");
    Ok(())
}

#[tokio::test]
async fn local_delivers_once_in_process() -> anyhow::Result<()> {
    let b = Broadcaster::local();
    assert_eq!(b.kind(), "local");
    let mut rx1 = b.subscribe("conf.chan");
    let mut rx2 = b.subscribe("conf.chan");
    b.publish("conf.chan", Bytes::from_static(b"hi")).await?;
    assert_eq!(recv(&mut rx1).await?, "hi");
    assert_eq!(recv(&mut rx2).await?, "hi");
    assert_quiet(&mut rx1).await;
    // Publishing with no subscriber is fine.
    b.publish("conf.nobody", Bytes::from_static(b"x")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reaches_other_instances() -> anyhow::Result<()> {
    let url = testing::redis_url();
    let prefix = testing::unique_prefix();
    let a = Broadcaster::redis(&url, &prefix)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", testing::REDIS_ENV))?;
    let b = Broadcaster::redis(&url, &prefix).await?;
    assert_eq!(a.kind(), "redis");
    exchange(a, b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_reaches_other_instances() -> anyhow::Result<()> {
    let url = testing::nats_url();
    let prefix = testing::unique_prefix();
    let connect = || async {
        async_nats::connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("{} ({url}): {e}", testing::NATS_ENV))
    };
    let a = Broadcaster::nats(connect().await?, &prefix).await?;
    let b = Broadcaster::nats(connect().await?, &prefix).await?;
    assert_eq!(b.kind(), "nats");
    exchange(a, b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_fabrics() -> anyhow::Result<()> {
    let url = testing::redis_url();
    let a = Broadcaster::redis(&url, &testing::unique_prefix()).await?;
    let b = Broadcaster::redis(&url, &testing::unique_prefix()).await?;
    let mut b_rx = b.subscribe("conf.chan");
    a.publish("conf.chan", Bytes::from_static(b"x")).await?;
    assert_quiet(&mut b_rx).await;
    Ok(())
}

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
    let url = testing::redis_url();
    let target = url::Url::parse(&url)?;
    let host = format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(6379)
    );
    let proxy = CuttableProxy::start(host).await?;
    let prefix = testing::unique_prefix();
    let behind_proxy = Broadcaster::redis(&format!("redis://{}", proxy.addr), &prefix).await?;
    let direct = Broadcaster::redis(&url, &prefix).await?;
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
