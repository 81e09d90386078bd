//! Conformance suites of praxis-infra: each port runs the same cases on every adapter
//! (embedded: SQLite + in-process; scaled: PostgreSQL + Redis + NATS JetStream).
//! Scaled cases never skip; see `praxis_infra::testing` for the environment variables.

use std::future::Future;
use std::time::Duration;

/// Runs `case(backend)` as one test per backend: `sqlite` (embedded) and `postgres` (scaled).
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() -> anyhow::Result<()> {
                    super::$case(praxis_infra::testing::embedded().await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() -> anyhow::Result<()> {
                    super::$case(praxis_infra::testing::scaled().await).await
                }
            }
        )*
    };
}

mod broadcast;
mod bus;
mod cache;
mod dialect;
mod platform;
mod ratelimit;
mod sql;

/// Polls `check` until it returns true or `timeout` passes (then fails naming `what`).
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
