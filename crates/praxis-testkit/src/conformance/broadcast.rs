//! Broadcaster: a message reaches every subscriber of every instance of one fabric once, and
//! no other fabric.

use std::time::Duration;

use bytes::Bytes;
use praxis_infra::InfraError;
use praxis_infra::broadcast::Broadcaster;

use crate::backend::{Services, TestBackend};

const QUIET: Duration = Duration::from_millis(300);
const DELIVERY: Duration = Duration::from_secs(5);

/// Runs the broadcast port's cases on the broadcaster of `services`: local (neither NATS nor
/// Redis), NATS, or Redis (Redis without NATS).
pub async fn suite(services: Services) -> anyhow::Result<()> {
    cases!(services; delivers_once_to_each_subscriber, prefixes_isolate_fabrics)?;
    if services.nats || services.redis {
        cases!(services; reaches_other_processes)?;
    }
    Ok(())
}

/// The next message on `rx`, waiting at most 5 s.
pub async fn recv(rx: &mut tokio::sync::broadcast::Receiver<Bytes>) -> anyhow::Result<Bytes> {
    Ok(tokio::time::timeout(DELIVERY, rx.recv()).await??)
}

/// Asserts that nothing more arrives on `rx` for a while.
pub async fn assert_quiet(rx: &mut tokio::sync::broadcast::Receiver<Bytes>) {
    let extra = tokio::time::timeout(QUIET, rx.recv()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}

/// An instance's own message reaches each of its subscribers once; other channels stay quiet;
/// publishing without subscribers is fine; bad channel names are refused.
async fn delivers_once_to_each_subscriber(t: TestBackend) -> anyhow::Result<()> {
    let b = &t.platform.broadcaster;
    let mut rx1 = b.subscribe("conf.chan");
    let mut rx2 = b.subscribe("conf.chan");
    let mut other = b.subscribe("conf.other");
    b.publish("conf.chan", Bytes::from_static(b"hi")).await?;
    assert_eq!(recv(&mut rx1).await?, "hi");
    assert_eq!(recv(&mut rx2).await?, "hi");
    assert_quiet(&mut rx1).await;
    assert_quiet(&mut other).await;
    b.publish("conf.nobody", Bytes::from_static(b"x")).await?;
    let bad = b.publish("bad channel", Bytes::new()).await;
    assert!(matches!(bad, Err(InfraError::Config(_))), "{bad:?}");
    Ok(())
}

/// Two processes on one fabric: each message reaches both, once each.
async fn reaches_other_processes(t: TestBackend) -> anyhow::Result<()> {
    let other = t.another_process().await;
    exchange(&t.platform.broadcaster, &other.platform.broadcaster).await
}

/// Two instances of one fabric: each one's message reaches both, once each.
pub async fn exchange(a: &Broadcaster, b: &Broadcaster) -> anyhow::Result<()> {
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
    Ok(())
}

/// A backend with another prefix (another deployment on the same servers) hears nothing.
async fn prefixes_isolate_fabrics(t: TestBackend) -> anyhow::Result<()> {
    let elsewhere = t.services.start().await;
    let mut rx = elsewhere.platform.broadcaster.subscribe("conf.chan");
    t.platform
        .broadcaster
        .publish("conf.chan", Bytes::from_static(b"x"))
        .await?;
    assert_quiet(&mut rx).await;
    Ok(())
}
