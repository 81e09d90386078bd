//! Who followed a link: a coarse user-agent class and the referring host.

use serde::{Deserialize, Serialize};

/// Coarse class of a user agent, enough for link statistics.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AgentClass {
    /// Crawlers, link unfurlers, command-line clients and libraries.
    Bot,
    /// Phones and tablets.
    Mobile,
    /// Desktop browsers.
    Desktop,
    /// Anything else, including a missing header.
    Other,
}

impl AgentClass {
    /// Every class, in the order of [`AgentClass::index`] (and of the agent columns of a
    /// statistics day row).
    pub const ALL: [AgentClass; 4] = [
        AgentClass::Bot,
        AgentClass::Mobile,
        AgentClass::Desktop,
        AgentClass::Other,
    ];

    /// Position in [`AgentClass::ALL`].
    pub fn index(self) -> usize {
        match self {
            AgentClass::Bot => 0,
            AgentClass::Mobile => 1,
            AgentClass::Desktop => 2,
            AgentClass::Other => 3,
        }
    }

    /// The lower-case name stored in statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentClass::Bot => "bot",
            AgentClass::Mobile => "mobile",
            AgentClass::Desktop => "desktop",
            AgentClass::Other => "other",
        }
    }
}

const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "java/",
    "httpclient",
    "libwww",
    "headless",
    "facebookexternalhit",
    "embedly",
    "preview",
    "whatsapp",
    "monitor",
    "lighthouse",
];

const MOBILE_MARKERS: &[&str] = &[
    "mobile",
    "android",
    "iphone",
    "ipad",
    "ipod",
    "windows phone",
    "opera mini",
    "blackberry",
    "kindle",
];

const DESKTOP_MARKERS: &[&str] = &[
    "windows nt",
    "macintosh",
    "mac os x",
    "x11",
    "linux",
    "cros",
];

/// Longest user agent examined; longer ones are cut (a cheap bound on the work per request).
const MAX_EXAMINED: usize = 512;

/// Classifies a `User-Agent` header value. Bots are recognised first, then mobile devices,
/// then desktop operating systems.
pub fn classify(user_agent: Option<&str>) -> AgentClass {
    let Some(ua) = user_agent else {
        return AgentClass::Other;
    };
    let mut end = ua.len().min(MAX_EXAMINED);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    let lower = ua[..end].to_ascii_lowercase();
    if lower.trim().is_empty() {
        return AgentClass::Other;
    }
    if BOT_MARKERS.iter().any(|m| lower.contains(m)) {
        AgentClass::Bot
    } else if MOBILE_MARKERS.iter().any(|m| lower.contains(m)) {
        AgentClass::Mobile
    } else if DESKTOP_MARKERS.iter().any(|m| lower.contains(m)) {
        AgentClass::Desktop
    } else {
        AgentClass::Other
    }
}

/// Longest referrer host kept.
const MAX_HOST: usize = 253;

/// The host of a `Referer` header value, lower-cased; `None` when absent or not a URL.
/// Only the host is kept: paths and queries of referring pages may carry personal data.
pub fn referrer_host(referer: Option<&str>) -> Option<String> {
    let url = url::Url::parse(referer?.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if host.is_empty() || host.len() > MAX_HOST {
        return None;
    }
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies_common_agents() {
        let cases = [
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                AgentClass::Bot,
            ),
            ("curl/8.5.0", AgentClass::Bot),
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                AgentClass::Bot,
            ),
            ("facebookexternalhit/1.1", AgentClass::Bot),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                AgentClass::Mobile,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36",
                AgentClass::Mobile,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
                AgentClass::Desktop,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
                AgentClass::Desktop,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
                AgentClass::Desktop,
            ),
            ("SomethingElse/1.0", AgentClass::Other),
            ("", AgentClass::Other),
        ];
        for (ua, want) in cases {
            assert_eq!(classify(Some(ua)), want, "{ua}");
        }
        assert_eq!(classify(None), AgentClass::Other);
    }

    #[test]
    fn referrer_hosts() {
        assert_eq!(
            referrer_host(Some("https://News.Example.com/a?b=c")),
            Some("news.example.com".into())
        );
        assert_eq!(referrer_host(Some("not a url")), None);
        assert_eq!(referrer_host(None), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,700}") {
            let _ = classify(Some(&s));
            let _ = referrer_host(Some(&s));
        }
    }
}
