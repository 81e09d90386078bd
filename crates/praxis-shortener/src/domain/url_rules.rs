//! Which target URLs a short link may point to.

use url::Url;

/// Longest accepted target URL, in bytes, unless the settings say otherwise.
pub const DEFAULT_MAX_URL_LENGTH: usize = 2048;

/// Why a target URL was rejected. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL is empty.
    #[error("url is empty; give an absolute http or https URL")]
    Empty,
    /// The URL is longer than the limit.
    #[error("url is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// Length of the submitted URL in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The URL does not parse as an absolute URL.
    #[error("url is not a valid absolute URL ({0}); give e.g. https://example.com/page")]
    Unparseable(String),
    /// The scheme is not http or https.
    #[error("url scheme `{0}` is not allowed; only http and https links can be shortened")]
    Scheme(String),
    /// The URL carries a user name or password.
    #[error("url must not contain a user name or password (user:password@host)")]
    Credentials,
    /// The URL has no host.
    #[error("url has no host; give e.g. https://example.com/page")]
    NoHost,
    /// The URL points at this shortener's own domain (a redirect loop or a chain of short links).
    #[error(
        "url points at this shortener's own domain `{0}`; link to the final destination instead"
    )]
    OwnDomain(String),
}

/// Validates a target URL and returns it parsed and normalized (lower-case scheme and host,
/// punycode host, `/` path when empty).
///
/// `own_host` is the host of the shortener's public base URL: links to it are refused so a
/// short link can never point at another short link (or at itself).
pub fn validate_url(raw: &str, own_host: Option<&str>, max_len: usize) -> Result<Url, UrlError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(UrlError::Empty);
    }
    if trimmed.len() > max_len {
        return Err(UrlError::TooLong {
            len: trimmed.len(),
            max: max_len,
        });
    }
    let url = Url::parse(trimmed).map_err(|e| UrlError::Unparseable(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h,
        _ => return Err(UrlError::NoHost),
    };
    if let Some(own) = own_host
        && host
            .trim_end_matches('.')
            .eq_ignore_ascii_case(own.trim_end_matches('.'))
    {
        return Err(UrlError::OwnDomain(own.to_owned()));
    }
    // The normalized form may add the root path (`http://a` is `http://a/`).
    if url.as_str().len() > max_len.saturating_add(1) {
        return Err(UrlError::TooLong {
            len: url.as_str().len(),
            max: max_len,
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(raw: &str) -> Result<Url, UrlError> {
        validate_url(raw, Some("sho.rt"), DEFAULT_MAX_URL_LENGTH)
    }

    #[test]
    fn accepts_http_and_https() {
        assert_eq!(
            check("https://example.com").map(|u| u.to_string()),
            Ok("https://example.com/".into())
        );
        assert!(check("http://example.com/a?b=c#d").is_ok());
        assert!(check("  https://EXAMPLE.com/x  ").is_ok());
        assert!(check("https://127.0.0.1:8080/x").is_ok());
    }

    #[test]
    fn rejects_each_reason() {
        assert_eq!(check(""), Err(UrlError::Empty));
        assert!(matches!(check("not a url"), Err(UrlError::Unparseable(_))));
        assert!(matches!(
            check("/relative/path"),
            Err(UrlError::Unparseable(_))
        ));
        assert_eq!(
            check("ftp://example.com/f"),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            check("javascript:alert(1)"),
            Err(UrlError::Scheme("javascript".into()))
        );
        assert_eq!(
            check("mailto:a@b.c"),
            Err(UrlError::Scheme("mailto".into()))
        );
        assert_eq!(
            check("https://user:pw@example.com/"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            check("https://user@example.com/"),
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            check("http://"),
            Err(UrlError::Unparseable(_) | UrlError::NoHost)
        ));
        assert_eq!(
            check("https://SHO.RT/abc"),
            Err(UrlError::OwnDomain("sho.rt".into()))
        );
        assert_eq!(
            check("https://sho.rt./abc"),
            Err(UrlError::OwnDomain("sho.rt".into()))
        );
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert!(matches!(check(&long), Err(UrlError::TooLong { .. })));
    }

    #[test]
    fn subdomains_of_own_host_are_allowed() {
        assert!(check("https://www.sho.rt/").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = check(&s);
        }

        #[test]
        fn accepted_urls_are_http_with_host(s in "https?://[a-z]{1,10}\\.[a-z]{2,3}(/[a-z0-9]{0,8}){0,3}") {
            let url = check(&s).expect("generated URL is valid");
            prop_assert!(url.scheme() == "http" || url.scheme() == "https");
            prop_assert!(url.host_str().is_some());
        }
    }
}
