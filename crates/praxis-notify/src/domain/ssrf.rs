//! The SSRF guard of webhook URLs: webhooks go where callers say (a subscriber's
//! `webhook_url`, a send's `to.webhook`), so by default they may not reach this deployment's
//! own network.
//!
//! Refused by default ([`refused_range`]): loopback, private (RFC 1918, `fc00::/7`),
//! link-local (`169.254.0.0/16`, where cloud metadata services answer, and `fe80::/10`), shared
//! CGNAT space (`100.64.0.0/10`), unspecified, multicast, broadcast and reserved addresses,
//! the documentation and benchmarking ranges, and IPv6 forms that embed a refused IPv4 address
//! (IPv4-mapped, NAT64, 6to4). [`SsrfPolicy::allow_private`] turns the guard off;
//! [`SsrfPolicy::allow_cidrs`] allows chosen ranges (e.g. an internal receiver's network).
//!
//! Two checks:
//! - **at accept** (send, subscriber PUT): [`SsrfPolicy::check_url`] refuses a URL whose host
//!   is a literal IP address in a refused range (a 400 naming the field and the setting that
//!   allows it). Host names are not resolved there: DNS answers change.
//! - **at send time**: the webhook client resolves names through [`GuardedResolver`], which
//!   drops refused addresses, so the connection can only go to an allowed one (a name that
//!   resolved to a public address at accept and to `127.0.0.1` now, DNS rebinding, cannot
//!   reach it). A name left with no address is [`Blocked`]: a permanent failure. Literal IP
//!   hosts (which never reach a resolver) are checked before the request. The client follows
//!   no redirects and uses no proxy (a proxy would resolve the name itself).
//!
//! The operator-configured SMS and push gateway URLs are not guarded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use praxis_http::client_ip::Cidr;

/// The configuration key that turns the guard off (named in refusals).
pub const ALLOW_PRIVATE_KEY: &str = "notify_webhook_allow_private";
/// The configuration key that allows chosen ranges (named in refusals).
pub const ALLOW_CIDRS_KEY: &str = "notify_webhook_allow_cidrs";

/// Where webhooks may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsrfPolicy {
    /// Allow every destination (the guard is off).
    pub allow_private: bool,
    /// Ranges allowed even though [`refused_range`] refuses them.
    pub allow_cidrs: Vec<Cidr>,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The address.
    pub ip: IpAddr,
    /// The kind of range it is in, e.g. `"loopback"`.
    pub kind: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is a {} address", self.ip, self.kind)
    }
}

/// A webhook host with no allowed address left: the error the [`GuardedResolver`] gives
/// (found again in a request error's source chain with [`blocked_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The host name.
    pub host: String,
    /// The refused addresses it resolved to.
    pub refused: Vec<Refusal>,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "blocked by the SSRF guard: {} resolves only to refused addresses (",
            self.host
        )?;
        for (i, r) in self.refused.iter().take(4).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", r.ip, r.kind)?;
        }
        if self.refused.len() > 4 {
            write!(f, ", and {} more", self.refused.len() - 4)?;
        }
        write!(f, "); {}", allow_hint())
    }
}

impl std::error::Error for Blocked {}

/// Names the settings that allow refused destinations.
fn allow_hint() -> String {
    format!("{ALLOW_CIDRS_KEY} (a CIDR list) or {ALLOW_PRIVATE_KEY} = true allows them")
}

impl SsrfPolicy {
    /// A policy that allows everything (tests and trusted deployments).
    pub fn allow_all() -> SsrfPolicy {
        SsrfPolicy {
            allow_private: true,
            allow_cidrs: Vec::new(),
        }
    }

    /// Whether the guard refuses anything.
    pub fn is_active(&self) -> bool {
        !self.allow_private
    }

    /// `Err` when `ip` may not be reached.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private {
            return Ok(());
        }
        let ip = ip.to_canonical();
        match refused_range(ip) {
            Some(kind) if !self.allow_cidrs.iter().any(|c| c.contains(ip)) => {
                Err(Refusal { ip, kind })
            }
            _ => Ok(()),
        }
    }

    /// The accept-time check of a webhook URL (already checked to be `http(s)` with a host):
    /// `Err` (a message for the field error, naming the setting that allows it) when its host
    /// is a literal IP address in a refused range. Names are not resolved here.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let Ok(parsed) = url::Url::parse(url) else {
            return Err(format!("{url:?} is not a URL"));
        };
        match literal_ip(&parsed).map(|ip| self.check_ip(ip)) {
            Some(Err(refusal)) => Err(format!(
                "{refusal}, which the SSRF guard refuses for webhooks; {}",
                allow_hint().replace("them", "it")
            )),
            _ => Ok(()),
        }
    }

    /// Keeps the allowed addresses of `addrs`; `Err` lists the refused ones when none is left.
    pub fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Blocked> {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for a in addrs {
            match self.check_ip(a.ip()) {
                Ok(()) => allowed.push(a),
                Err(r) => refused.push(r),
            }
        }
        if allowed.is_empty() && !refused.is_empty() {
            return Err(Blocked {
                host: host.to_owned(),
                refused,
            });
        }
        Ok(allowed)
    }
}

/// The host of `url` when it is a literal IP address.
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// The [`Blocked`] error in `err`'s source chain, if any.
pub fn blocked_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return Some(b);
        }
        current = e.source();
    }
    None
}

/// IPv4 ranges refused by default: (network, prefix length, kind). More specific first.
const REFUSED_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified (0.0.0.0/8)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared (CGNAT, 100.64.0.0/10)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (incl. cloud metadata)",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "reserved (IETF protocol assignments)",
    ),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"),
];

/// IPv6 ranges refused by default (besides those embedding IPv4, handled in
/// [`refused_range`]): (network, prefix length, kind). More specific first.
const REFUSED_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (deprecated)",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        "Teredo tunnel",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "private (unique local)",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The kind of refused range `ip` is in (`"loopback"`, `"private (RFC 1918)"`, ...), `None`
/// for a public address. IPv4-mapped IPv6 addresses are judged as IPv4; NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses by the IPv4 address they embed.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => REFUSED_V4
            .iter()
            .find(|(net, prefix, _)| in_v4(v4, *net, *prefix))
            .map(|(_, _, kind)| *kind),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if in_v6(v6, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
                // The low 32 bits are the IPv4 address (truncation intended).
                let embedded = Ipv4Addr::from(bits as u32);
                return refused_range(IpAddr::V4(embedded)).map(|_| "NAT64 of a refused IPv4");
            }
            if in_v6(v6, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
                // Bits 16..48 are the IPv4 address (truncation intended).
                let embedded = Ipv4Addr::from((bits >> 80) as u32);
                return refused_range(IpAddr::V4(embedded)).map(|_| "6to4 of a refused IPv4");
            }
            REFUSED_V6
                .iter()
                .find(|(net, prefix, _)| in_v6(v6, *net, *prefix))
                .map(|(_, _, kind)| *kind)
        }
    }
}

/// A reqwest DNS resolver that resolves with the system resolver (`getaddrinfo`, as reqwest
/// does by default) and drops the addresses the policy refuses; a name with none left fails
/// with [`Blocked`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
}

impl GuardedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: SsrfPolicy) -> GuardedResolver {
        GuardedResolver {
            policy: Arc::new(policy),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.filter(&host, found)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn v4_ranges() {
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.1.2.3", "private (RFC 1918)"),
            ("172.16.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("169.254.169.254", "link-local (incl. cloud metadata)"),
            ("100.64.0.1", "shared (CGNAT, 100.64.0.0/10)"),
            ("100.127.255.255", "shared (CGNAT, 100.64.0.0/10)"),
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved (240.0.0.0/4)"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.19.0.1", "benchmarking"),
        ] {
            assert_eq!(refused_range(ip(addr)), Some(kind), "{addr}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.169.0.1",
            "93.184.216.34",
            "223.255.255.255",
        ] {
            assert_eq!(refused_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn v6_ranges() {
        for (addr, kind) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "private (unique local)"),
            ("fd12:3456::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::7f00:1", "IPv4-compatible (deprecated)"),
            ("64:ff9b::a00:1", "NAT64 of a refused IPv4"),
            ("2002:7f00:1::1", "6to4 of a refused IPv4"),
            ("fec0::1", "site-local (deprecated)"),
        ] {
            assert_eq!(refused_range(ip(addr)), Some(kind), "{addr}");
        }
        for public in [
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn mapped_v6_is_judged_as_v4() {
        assert_eq!(refused_range(ip("::ffff:127.0.0.1")), Some("loopback"));
        assert_eq!(
            refused_range(ip("::ffff:169.254.169.254")),
            Some("link-local (incl. cloud metadata)")
        );
        assert_eq!(
            refused_range(ip("::ffff:10.0.0.1")),
            Some("private (RFC 1918)")
        );
        assert_eq!(refused_range(ip("::ffff:8.8.8.8")), None);
        let refusal = SsrfPolicy::default()
            .check_ip(ip("::ffff:127.0.0.1"))
            .expect_err("refused");
        assert_eq!(refusal.ip, ip("127.0.0.1"), "reported as IPv4");
    }

    #[test]
    fn allow_settings() {
        let default = SsrfPolicy::default();
        assert!(default.is_active());
        assert!(default.check_ip(ip("127.0.0.1")).is_err());
        assert!(default.check_ip(ip("8.8.8.8")).is_ok());
        assert!(SsrfPolicy::allow_all().check_ip(ip("127.0.0.1")).is_ok());
        assert!(!SsrfPolicy::allow_all().is_active());
        let some = SsrfPolicy {
            allow_private: false,
            allow_cidrs: vec![cidr("127.0.0.0/8"), cidr("fd00::/8")],
        };
        assert!(some.check_ip(ip("127.0.0.1")).is_ok());
        assert!(some.check_ip(ip("::ffff:127.0.0.1")).is_ok());
        assert!(some.check_ip(ip("fd00::5")).is_ok());
        assert!(some.check_ip(ip("::1")).is_err());
        assert!(some.check_ip(ip("10.0.0.1")).is_err());
    }

    #[test]
    fn urls_with_literal_ips() {
        let p = SsrfPolicy::default();
        let err = p
            .check_url("http://127.0.0.1:8080/hook")
            .expect_err("loopback");
        assert!(err.contains("127.0.0.1 is a loopback address"), "{err}");
        assert!(
            err.contains(ALLOW_CIDRS_KEY) && err.contains(ALLOW_PRIVATE_KEY),
            "{err}"
        );
        assert!(p.check_url("http://[::1]/h").is_err());
        assert!(p.check_url("http://[::ffff:10.0.0.1]/h").is_err());
        assert!(
            p.check_url("http://169.254.169.254/latest/meta-data")
                .is_err()
        );
        // The WHATWG parser reads numeric hosts as IPv4.
        assert!(p.check_url("http://2130706433/h").is_err());
        assert!(p.check_url("http://0x7f.1/h").is_err());
        // Names are judged at send time.
        assert!(p.check_url("http://localhost:8080/h").is_ok());
        assert!(p.check_url("https://hooks.example.com/h").is_ok());
        assert!(p.check_url("https://8.8.8.8/h").is_ok());
        assert!(
            SsrfPolicy::allow_all()
                .check_url("http://127.0.0.1/")
                .is_ok()
        );
    }

    #[test]
    fn filtering_resolved_addresses() {
        let p = SsrfPolicy::default();
        let a = |s: &str| SocketAddr::new(ip(s), 0);
        assert_eq!(
            p.filter("mixed", [a("127.0.0.1"), a("8.8.8.8")]),
            Ok(vec![a("8.8.8.8")])
        );
        let blocked = p
            .filter("localhost", [a("127.0.0.1"), a("::1")])
            .expect_err("blocked");
        let text = blocked.to_string();
        assert!(
            text.starts_with("blocked by the SSRF guard: localhost resolves only to refused addresses (127.0.0.1: loopback, ::1: loopback)"),
            "{text}"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(blocked.clone());
        assert_eq!(blocked_in(boxed.as_ref()), Some(&blocked));
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let err = match GuardedResolver::new(SsrfPolicy::default())
            .resolve(name)
            .await
        {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(blocked_in(err.as_ref()).is_some(), "{err}");
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let allowed = GuardedResolver::new(SsrfPolicy {
            allow_private: false,
            allow_cidrs: vec![cidr("127.0.0.0/8"), cidr("::1")],
        })
        .resolve(name)
        .await
        .expect("allowed");
        assert!(allowed.count() > 0);
    }
}
