//! The deployment's public base URL when `base_url` is not set: the bound address.

use std::net::SocketAddr;

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
