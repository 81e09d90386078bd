//! Protocol upgrades (WebSocket) passed through: the `Upgrade` request goes to the instance
//! with its `Connection: upgrade`, and when the instance answers 101 the two connections are
//! joined byte for byte until either side closes. The tunnel holds the pool slot and the
//! instance's in-flight count while it is open, so long-lived sockets count as load.

use http::Request;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Whether a request asks to switch protocols (HTTP/1.1 `Connection: upgrade` with an
/// `Upgrade` header).
pub fn requested<B>(req: &Request<B>) -> bool {
    req.version() == http::Version::HTTP_11
        && req.headers().contains_key(http::header::UPGRADE)
        && req
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Joins the client's and the instance's upgraded connections until one side closes; `guard`
/// is held until then.
pub async fn tunnel<G: Send>(client: OnUpgrade, upstream: OnUpgrade, guard: G) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "gateway: an upgrade did not complete");
            return;
        }
    };
    let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        tracing::debug!(error = %e, "gateway: an upgraded connection ended with an error");
    }
    drop(guard);
}
