//! Which tier a request belongs to: premium by a trusted header or a premium plan's API key.

use std::collections::HashSet;

use http::HeaderMap;

use crate::config::TierConfig;
use crate::pool::Tier;

/// Recognises premium requests.
#[derive(Debug, Clone, Default)]
pub struct Tiers {
    header: Option<String>,
    api_key_header: String,
    premium_hashes: HashSet<String>,
}

impl Tiers {
    /// From the `[tiers]` section.
    pub fn new(cfg: &TierConfig) -> Self {
        Self {
            header: cfg.header.as_ref().map(|h| h.to_ascii_lowercase()),
            api_key_header: cfg.api_key_header.to_ascii_lowercase(),
            premium_hashes: cfg
                .premium_key_hashes
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The tier of a request with these headers.
    pub fn classify(&self, headers: &HeaderMap) -> Tier {
        if let Some(h) = &self.header
            && headers
                .get(h.as_str())
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"premium"))
        {
            return Tier::Premium;
        }
        if !self.premium_hashes.is_empty()
            && let Some(key) = headers.get(self.api_key_header.as_str())
            && self
                .premium_hashes
                .contains(blake3::hash(key.as_bytes()).to_hex().as_str())
        {
            return Tier::Premium;
        }
        Tier::BestEffort
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_or_a_premium_key_marks_premium() {
        let tiers = Tiers::new(&TierConfig {
            header: Some("X-Tier".into()),
            api_key_header: "x-api-key".into(),
            premium_key_hashes: vec![blake3::hash(b"gold-key").to_hex().to_string()],
        });
        let mut h = HeaderMap::new();
        assert_eq!(tiers.classify(&h), Tier::BestEffort);
        h.insert("x-tier", "Premium".parse().expect("value"));
        assert_eq!(tiers.classify(&h), Tier::Premium);
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "gold-key".parse().expect("value"));
        assert_eq!(tiers.classify(&h), Tier::Premium);
        h.insert("x-api-key", "other".parse().expect("value"));
        assert_eq!(tiers.classify(&h), Tier::BestEffort);
    }
}
