//! Waiting for a condition instead of sleeping.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Some` (then returns the value) or `deadline`
/// passes (then fails the test, saying `what` was not reached). Deadlines are generous: they
/// bound a wait, they are not timing assertions.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "not reached within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
