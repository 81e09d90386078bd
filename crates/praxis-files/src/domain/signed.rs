//! Signed download URLs: an HMAC-SHA256 over the file, an expiry and optional bindings (a
//! method, a client address), so a URL can be shared without a token and cannot be altered.
//!
//! The query is `expires=<unix seconds>[&method=GET][&ip=<address>]&sig=<base64url>`; the
//! signature covers a versioned, newline-separated message of the file id and those values,
//! so no field can be moved into another.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a signed URL grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The file.
    pub file_id: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
    /// The only method it may be used with (`GET` or `HEAD`); any of them when `None`.
    pub method: Option<String>,
    /// The only client address it may be used from.
    pub ip: Option<IpAddr>,
}

/// Why a signed URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The signature does not match (a tampered or foreign URL): 403.
    BadSignature,
    /// Past its expiry: 403, saying when it expired.
    Expired(i64),
    /// Used with another method than the one it is bound to: 403.
    WrongMethod(String),
    /// Used from another address than the one it is bound to: 403.
    WrongAddress,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadSignature => write!(
                f,
                "the URL's signature does not match; ask the file's owner for a new link"
            ),
            Refusal::Expired(at) => write!(
                f,
                "the signed URL expired at unix time {at}; ask the file's owner for a new link"
            ),
            Refusal::WrongMethod(m) => write!(f, "the signed URL may only be used with {m}"),
            Refusal::WrongAddress => write!(f, "the signed URL is bound to another client address"),
        }
    }
}

/// Signs and checks grants with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with `key` (the system's `url_signing_key` secret).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, grant: &Grant) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let message = format!(
            "praxis-files-v1\n{}\n{}\n{}\n{}",
            grant.file_id,
            grant.expires,
            grant.method.as_deref().unwrap_or(""),
            grant.ip.map(|ip| ip.to_string()).unwrap_or_default()
        );
        mac.update(message.as_bytes());
        mac
    }

    /// The query string (without `?`) that grants `grant`.
    pub fn query(&self, grant: &Grant) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(grant).finalize().into_bytes());
        let mut q = format!("expires={}", grant.expires);
        if let Some(m) = &grant.method {
            q.push_str("&method=");
            q.push_str(m);
        }
        if let Some(ip) = grant.ip {
            q.push_str("&ip=");
            q.push_str(&ip.to_string());
        }
        q.push_str("&sig=");
        q.push_str(&sig);
        q
    }

    /// Checks a presented grant and signature against the request: its method, client address
    /// and the time now (unix seconds). The signature is compared in constant time.
    pub fn check(
        &self,
        grant: &Grant,
        sig: &str,
        method: &str,
        client: Option<IpAddr>,
        now_s: i64,
    ) -> Result<(), Refusal> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| Refusal::BadSignature)?;
        self.mac(grant)
            .verify_slice(&sig)
            .map_err(|_| Refusal::BadSignature)?;
        if now_s > grant.expires {
            return Err(Refusal::Expired(grant.expires));
        }
        if let Some(bound) = &grant.method
            && !bound.eq_ignore_ascii_case(method)
        {
            return Err(Refusal::WrongMethod(bound.clone()));
        }
        if let Some(bound) = grant.ip
            && client != Some(bound)
        {
            return Err(Refusal::WrongAddress);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            file_id: "f1".into(),
            expires: 1_000,
            method: None,
            ip: None,
        }
    }

    fn sig_of(query: &str) -> String {
        query
            .rsplit("sig=")
            .next()
            .expect("the input is valid")
            .to_owned()
    }

    #[test]
    fn a_signed_grant_checks_until_it_expires() {
        let s = Signer::new(b"key");
        let q = s.query(&grant());
        assert!(q.starts_with("expires=1000&sig="));
        assert_eq!(s.check(&grant(), &sig_of(&q), "GET", None, 1_000), Ok(()));
        assert_eq!(
            s.check(&grant(), &sig_of(&q), "GET", None, 1_001),
            Err(Refusal::Expired(1_000))
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let s = Signer::new(b"key");
        let sig = sig_of(&s.query(&grant()));
        for altered in [
            Grant {
                file_id: "f2".into(),
                ..grant()
            },
            Grant {
                expires: 2_000,
                ..grant()
            },
            Grant {
                method: Some("GET".into()),
                ..grant()
            },
            Grant {
                ip: Some("10.0.0.1".parse().expect("the input is valid")),
                ..grant()
            },
        ] {
            assert_eq!(
                s.check(&altered, &sig, "GET", None, 0),
                Err(Refusal::BadSignature)
            );
        }
        assert_eq!(
            Signer::new(b"other").check(&grant(), &sig, "GET", None, 0),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.check(&grant(), "not base64!", "GET", None, 0),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn bindings_hold() {
        let s = Signer::new(b"key");
        let ip: IpAddr = "192.0.2.7".parse().expect("the input is valid");
        let g = Grant {
            method: Some("GET".into()),
            ip: Some(ip),
            ..grant()
        };
        let sig = sig_of(&s.query(&g));
        assert_eq!(s.check(&g, &sig, "GET", Some(ip), 0), Ok(()));
        assert_eq!(
            s.check(&g, &sig, "HEAD", Some(ip), 0),
            Err(Refusal::WrongMethod("GET".into()))
        );
        assert_eq!(
            s.check(
                &g,
                &sig,
                "GET",
                Some("192.0.2.8".parse().expect("the input is valid")),
                0
            ),
            Err(Refusal::WrongAddress)
        );
        assert_eq!(
            s.check(&g, &sig, "GET", None, 0),
            Err(Refusal::WrongAddress)
        );
    }
}
