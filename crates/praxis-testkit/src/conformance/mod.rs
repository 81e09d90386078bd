//! Conformance suites of the ports: what every adapter of a port must do, written once and
//! run by praxis-infra's integration test on each adapter. An adapter is picked the way
//! production picks it, from the services a platform is configured with ([`Services`]), except
//! the rate limiter's and the blob store's, which are built directly
//! ([`ratelimit::LimiterUnderTest`], [`blobs::BlobsUnderTest`]).
//! Each case gets a fresh backend; a failing case is named in the error (and on stderr).

use anyhow::Context;

use crate::backend::{Services, TestBackend};

/// Runs each case on a fresh backend with `services`, in order; the first failure ends the
/// suite, naming its case.
macro_rules! cases {
    ($services:expr; $($case:ident),+ $(,)?) => {{
        $(super::run($services, stringify!($case), $case).await?;)+
        anyhow::Ok(())
    }};
}

pub mod blobs;
pub mod broadcast;
pub mod bus;
pub mod cache;
pub mod ratelimit;
pub mod sql;

/// Runs `case` on a fresh backend with `services`.
async fn run(
    services: Services,
    name: &str,
    case: impl AsyncFnOnce(TestBackend) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    eprintln!("conformance case {name} on {services:?}");
    case(services.start().await)
        .await
        .with_context(|| format!("conformance case {name} on {services:?}"))
}
