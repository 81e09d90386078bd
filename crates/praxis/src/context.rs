//! What `serve` hands each system's builder: the configuration plus values known only once the
//! process runs (the bound address, hence the default public base URL).

use std::net::SocketAddr;

use crate::config::{Config, Secret};

/// Run-time facts for building services.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The effective configuration.
    pub config: Config,
    /// Public base URL of this deployment (short links, unsubscribe links): `base_url`, or
    /// `http://<bound address>`.
    pub base_url: url::Url,
    /// The identity system, started by `serve` before every other system: its authenticator
    /// resolves the bearer tokens of every route.
    pub identity: Option<praxis_identity::Identity>,
    /// How callers are authenticated (the HTTP stack's settings; the rate-limit decision
    /// service's gRPC API uses them too). Set by `serve` once the identity system runs.
    pub auth: Option<praxis_http::AuthSettings>,
    /// The JWT signing secret `serve` resolved (configured, or generated under data_dir);
    /// notify keys its subscriber tokens with it (D54).
    pub jwt_secret: Secret,
}

impl RunContext {
    /// Computes the run-time facts once the listener is bound.
    pub fn new(config: Config, bound: SocketAddr, jwt_secret: Secret) -> anyhow::Result<Self> {
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => default_base_url(bound)?,
        };
        Ok(Self {
            config,
            base_url,
            identity: None,
            auth: None,
            jwt_secret,
        })
    }
}

/// `http://<bound address>`, with an unspecified IP (0.0.0.0, ::) replaced by loopback so the
/// links it produces at least work locally.
pub fn default_base_url(bound: SocketAddr) -> anyhow::Result<url::Url> {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(url::Url::parse(&format!("http://{addr}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_base_url_uses_the_bound_address() {
        let url = default_base_url("127.0.0.1:4321".parse().expect("addr")).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:4321/");
        let url = default_base_url("0.0.0.0:80".parse().expect("addr")).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1/");
        let url = default_base_url("[::]:8080".parse().expect("addr")).expect("url");
        assert_eq!(url.as_str(), "http://[::1]:8080/");
    }
}
