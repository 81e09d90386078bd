//! The client's IP address: the socket peer, or, when the peer is a trusted proxy, the
//! rightmost address of `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Only the rightmost part of `X-Forwarded-For` can be believed: every proxy appends the
//! address it received the request from, so the entries left of the first untrusted one were
//! written by the client and may be forged. A peer that is not a trusted proxy is the client,
//! whatever headers it sends.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`; a bare address is
/// a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_v4(ip, self.prefix) == mask_v4(net, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(ip, self.prefix) == mask_v6(net, self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1)");
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> u32 {
    let bits = u32::from(ip);
    match prefix {
        0 => 0,
        p if p >= 32 => bits,
        p => bits & (u32::MAX << (32 - u32::from(p))),
    }
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> u128 {
    let bits = u128::from(ip);
    match prefix {
        0 => 0,
        p if p >= 128 => bits,
        p => bits & (u128::MAX << (128 - u32::from(p))),
    }
}

/// The client address of a request from `peer` (`None` when the server does not provide
/// it), believing `X-Forwarded-For` only from `trusted` peers.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Several X-Forwarded-For fields are one list, in order; walk it from the right.
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return Some(client);
        };
        for part in text.rsplit(',') {
            let Some(ip) = parse_hop(part.trim()) else {
                // Garbage: nothing left of it can be believed; the last good hop is the client.
                return Some(client);
            };
            client = ip;
            if !is_trusted(ip) {
                return Some(ip);
            }
        }
    }
    // Every hop is a trusted proxy: the leftmost one is as close to the client as we know.
    Some(client)
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (ip, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The address a rate-limit key stands for: IPv4 as is, IPv6 by its `/ipv6_subnet` network
/// (what [`write_ip_key`] writes, as a value).
pub(crate) fn key_addr(ip: IpAddr, ipv6_subnet: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if ipv6_subnet < 128 => IpAddr::V6(Ipv6Addr::from(mask_v6(v6, ipv6_subnet))),
        other => other,
    }
}

/// The rate-limit key of a client address: IPv4 as is, IPv6 by its `/ipv6_subnet` network.
#[cfg(test)]
pub(crate) fn ip_key(ip: IpAddr, ipv6_subnet: u8) -> String {
    let mut out = String::new();
    write_ip_key(&mut out, Some(ip), ipv6_subnet);
    out
}

/// Appends `v4` in dotted decimal, as `Display` does: by hand into a stack buffer and one
/// push, since `Display` (or a push per octet) costs more than the limiter's decision.
fn push_ipv4(out: &mut String, v4: Ipv4Addr) {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    // Digits and dots: always valid UTF-8.
    out.push_str(std::str::from_utf8(&buf[..n]).unwrap_or("unknown"));
}

/// Appends [`ip_key`] of `ip` to `out` (`unknown` when there is no address), without
/// allocating.
pub(crate) fn write_ip_key(out: &mut String, ip: Option<IpAddr>, ipv6_subnet: u8) {
    use std::fmt::Write as _;
    let _ = match ip {
        None => write!(out, "unknown"),
        Some(IpAddr::V4(v4)) => {
            push_ipv4(out, v4);
            Ok(())
        }
        Some(IpAddr::V6(v6)) if ipv6_subnet >= 128 => write!(out, "{v6}"),
        Some(v6) => write!(out, "{}/{ipv6_subnet}", key_addr(v6, ipv6_subnet)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn parses_and_matches_networks() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains(ip("10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        let one: Cidr = "::1".parse().expect("cidr");
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")));
        assert_eq!(c.to_string(), "10.0.0.0/8");
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let h = xff(&["1.1.1.1"]);
        assert_eq!(
            client_ip(Some(ip("203.0.113.5")), &h, &trusted),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(
            client_ip(Some(ip("203.0.113.5")), &h, &[]),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(client_ip(None, &h, &trusted), None);
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let trusted = cidrs(&["10.0.0.0/8", "192.168.0.0/16"]);
        // The client forged "6.6.6.6"; the first proxy appended the real address 198.51.100.7.
        let h = xff(&["6.6.6.6, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Split over two fields, with ports and brackets.
        let h = xff(&["6.6.6.6", "[2001:db8::7]:443, 192.168.1.1:8080"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("2001:db8::7"))
        );
        // Every hop trusted: the leftmost.
        let h = xff(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.9"))
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted),
            Some(ip("10.0.0.1"))
        );
        // Garbage stops the walk at the last good hop.
        let h = xff(&["7.7.7.7, bogus, 10.0.0.3"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.3"))
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_subnet() {
        assert_eq!(ip_key(ip("203.0.113.5"), 64), "203.0.113.5");
        assert_eq!(
            key_addr(ip("2001:db8:1:2:3:4:5:6"), 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            key_addr(ip("2001:db8:1:2:3:4:5:6"), 128),
            ip("2001:db8:1:2:3:4:5:6")
        );
        assert_eq!(key_addr(ip("203.0.113.5"), 64), ip("203.0.113.5"));
        for v4 in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "127.0.0.1",
            "10.200.3.45",
        ] {
            assert_eq!(ip_key(ip(v4), 64), v4, "written like Display");
        }
        assert_eq!(ip_key(ip("2001:db8:1:2:3:4:5:6"), 64), "2001:db8:1:2::/64");
        assert_eq!(
            ip_key(ip("2001:db8:1:2:3:4:5:6"), 128),
            "2001:db8:1:2:3:4:5:6"
        );
        assert_eq!(ip_key(ip("2001:db8:1:2:3:4:5:6"), 48), "2001:db8:1::/48");
    }
}
