//! The one decision function both front ends (HTTP and gRPC) call: a request in the shape of
//! Envoy's `RateLimitRequest`, checked against the loaded [`Rules`] with the platform's
//! [`Limiter`], answered in the shape of `RateLimitResponse`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use praxis_http::FieldError;
use praxis_infra::ratelimit::{Limiter, Source};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::limits::{Domain, Limit, Node, NodeMetrics, Rules, Unit};

/// Counter of decisions per descriptor, labelled `domain`, `limit` (the matched node's path,
/// e.g. `path=/api/v1/links.api_key`; empty when none matched) and `result` (`ok`,
/// `over_limit`, `shadow_over_limit`, `unlimited`, `no_limit`). Unknown domains are counted as
/// domain `unknown`.
pub const DECISIONS_TOTAL: &str = "praxis_ratelimit_service_decisions_total";

/// Most descriptors in one request.
pub const MAX_DESCRIPTORS: usize = 64;
/// Most entries in one descriptor.
pub const MAX_ENTRIES: usize = 32;
/// Largest `hits` of a request or descriptor (Envoy's `hits_addend` is a `uint32`).
pub const MAX_HITS: u64 = u32::MAX as u64;

/// A check request (Envoy's `RateLimitRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The domain whose limits apply.
    #[schema(example = "edge", min_length = 1, max_length = 255)]
    pub domain: String,
    /// What to limit on; the request is over the limit when any descriptor is (1 to 64).
    #[schema(min_items = 1, max_items = 64)]
    pub descriptors: Vec<Descriptor>,
    /// Hits each descriptor adds (default 1; 0 checks without counting). A descriptor's own
    /// `hits` takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 4294967295_u64)]
    pub hits: Option<u64>,
}

/// One descriptor: an ordered list of entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    /// The entries, most general first (`remote_address`, then `path`, ...), 1 to 32.
    #[schema(min_items = 1, max_items = 32)]
    pub entries: Vec<Entry>,
    /// Hits this descriptor adds, overriding the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 4294967295_u64)]
    pub hits: Option<u64>,
}

/// A descriptor entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The key, as configured in the domain's descriptors.
    #[schema(example = "remote_address", min_length = 1, max_length = 256)]
    pub key: String,
    /// The value (an IP, a path, an API key id, ...), at most 1024 characters.
    #[schema(example = "203.0.113.7", max_length = 1024)]
    pub value: String,
}

impl Entry {
    /// An entry.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl CheckRequest {
    /// Every problem with the request, each naming its field (`descriptors[0].entries[1].key`).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.domain.is_empty() || self.domain.chars().count() > 255 {
            errors.push(FieldError::new(
                "domain",
                "must be 1 to 255 characters (the domain of the limits to apply)",
            ));
        }
        if let Some(h) = self.hits
            && h > MAX_HITS
        {
            errors.push(FieldError::new(
                "hits",
                format!("{h} is larger than {MAX_HITS}"),
            ));
        }
        if self.descriptors.is_empty() {
            errors.push(FieldError::new(
                "descriptors",
                "must hold at least one descriptor",
            ));
        }
        if self.descriptors.len() > MAX_DESCRIPTORS {
            errors.push(FieldError::new(
                "descriptors",
                format!("holds more than {MAX_DESCRIPTORS} descriptors"),
            ));
            return errors;
        }
        for (i, d) in self.descriptors.iter().enumerate() {
            let at = format!("descriptors[{i}]");
            if d.entries.is_empty() {
                errors.push(FieldError::new(
                    format!("{at}.entries"),
                    "must hold at least one entry",
                ));
            }
            if d.entries.len() > MAX_ENTRIES {
                errors.push(FieldError::new(
                    format!("{at}.entries"),
                    format!("holds more than {MAX_ENTRIES} entries"),
                ));
                continue;
            }
            if let Some(h) = d.hits
                && h > MAX_HITS
            {
                errors.push(FieldError::new(
                    format!("{at}.hits"),
                    format!("{h} is larger than {MAX_HITS}"),
                ));
            }
            for (j, e) in d.entries.iter().enumerate() {
                if e.key.is_empty() || e.key.chars().count() > 256 {
                    errors.push(FieldError::new(
                        format!("{at}.entries[{j}].key"),
                        "must be 1 to 256 characters",
                    ));
                }
                if e.value.chars().count() > 1024 {
                    errors.push(FieldError::new(
                        format!("{at}.entries[{j}].value"),
                        "must be at most 1024 characters",
                    ));
                }
            }
        }
        errors
    }
}

/// `OK` or `OVER_LIMIT` (Envoy's `RateLimitResponse.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Under the limit (or no limit applies, or shadow mode).
    Ok,
    /// Over the limit.
    OverLimit,
}

/// The answer (Envoy's `RateLimitResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResponse {
    /// `OVER_LIMIT` when any descriptor is over its limit.
    pub overall_code: Code,
    /// One status per request descriptor, in order.
    pub statuses: Vec<DescriptorStatus>,
}

/// The decision for one descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DescriptorStatus {
    /// This descriptor's code.
    pub code: Code,
    /// The limit that applied; absent when none did (no match, or `unlimited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_limit: Option<CurrentLimit>,
    /// Hits still allowed now.
    pub limit_remaining: u32,
    /// Time until the counter is fresh again, as a protobuf JSON duration (`"1.250s"`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "proto_duration"
    )]
    #[schema(value_type = Option<String>, example = "41.5s")]
    pub duration_until_reset: Option<Duration>,
}

/// A configured limit (Envoy's `RateLimitResponse.RateLimit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrentLimit {
    /// The limit's name, when the file gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Requests per unit.
    pub requests_per_unit: u32,
    /// The unit.
    pub unit: Unit,
}

/// The limiter's store is down and the domain fails closed: no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rate limiter cannot reach its store and domain {domain:?} fails closed")]
pub struct Unavailable {
    /// The domain.
    pub domain: String,
}

/// Decides check requests against the current rules. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Decider {
    rules: ArcSwap<Rules>,
    limiter: Limiter,
}

impl Decider {
    /// A decider over `rules`, counting with `limiter`.
    pub fn new(rules: Rules, limiter: Limiter) -> Self {
        Self {
            rules: ArcSwap::from_pointee(rules),
            limiter,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Replaces the rules atomically: checks already running finish with the old ones.
    pub fn swap(&self, rules: Rules) -> Arc<Rules> {
        self.rules.swap(Arc::new(rules))
    }

    /// Decides `req`, which must be valid ([`CheckRequest::validate`]). Every descriptor is
    /// checked (concurrently) and counted when under its limit; the request is `OVER_LIMIT`
    /// when any is.
    pub async fn check(&self, req: &CheckRequest) -> Result<CheckResponse, Unavailable> {
        let rules = self.rules.load_full();
        let Some(domain) = rules.domain(&req.domain) else {
            let ok = no_limit();
            for _ in &req.descriptors {
                metrics::counter!(DECISIONS_TOTAL, "domain" => "unknown", "limit" => "", "result" => "no_limit")
                    .increment(1);
            }
            return Ok(CheckResponse {
                overall_code: Code::Ok,
                statuses: vec![ok; req.descriptors.len()],
            });
        };
        let checks = req
            .descriptors
            .iter()
            .map(|d| self.check_one(&req.domain, domain, d, d.hits.or(req.hits).unwrap_or(1)));
        let results = futures::future::join_all(checks).await;
        let mut statuses = Vec::with_capacity(results.len());
        for r in results {
            statuses.push(r.ok_or_else(|| Unavailable {
                domain: req.domain.clone(),
            })?);
        }
        let overall_code = if statuses.iter().any(|s| s.code == Code::OverLimit) {
            Code::OverLimit
        } else {
            Code::Ok
        };
        Ok(CheckResponse {
            overall_code,
            statuses,
        })
    }

    /// One descriptor; `None` when the store failed and the domain fails closed.
    async fn check_one(
        &self,
        domain_name: &str,
        domain: &Domain,
        d: &Descriptor,
        hits: u64,
    ) -> Option<DescriptorStatus> {
        let entries = d.entries.iter().map(|e| (e.key.as_str(), e.value.as_str()));
        let Some(node) = domain.find(entries) else {
            metrics::counter!(DECISIONS_TOTAL, "domain" => domain_name.to_owned(), "limit" => "", "result" => "no_limit")
                .increment(1);
            return Some(no_limit());
        };
        let metrics = node.metrics.get_or_init(|| node_metrics(domain_name, node));
        let status = match &node.limit {
            None | Some(Limit::Unlimited) => {
                metrics::counter!(DECISIONS_TOTAL, "domain" => domain_name.to_owned(), "limit" => node.path.clone(), "result" => "unlimited")
                    .increment(1);
                return Some(no_limit());
            }
            Some(Limit::Blocked { name, unit }) => DescriptorStatus {
                code: Code::OverLimit,
                current_limit: Some(CurrentLimit {
                    name: name.clone(),
                    requests_per_unit: 0,
                    unit: *unit,
                }),
                limit_remaining: 0,
                duration_until_reset: Some(unit.duration()),
            },
            Some(Limit::Limited {
                name,
                unit,
                requests_per_unit,
                rule,
            }) => {
                let key = limiter_key(domain_name, d);
                let verdict = self
                    .limiter
                    .check(&key, rule, hits, domain.on_failure)
                    .await;
                if verdict.source == Source::FailedClosed && !node.shadow {
                    return None;
                }
                let dec = verdict.decision;
                DescriptorStatus {
                    code: if dec.allowed {
                        Code::Ok
                    } else {
                        Code::OverLimit
                    },
                    current_limit: Some(CurrentLimit {
                        name: name.clone(),
                        requests_per_unit: *requests_per_unit,
                        unit: *unit,
                    }),
                    limit_remaining: u32::try_from(dec.remaining).unwrap_or(u32::MAX),
                    duration_until_reset: Some(dec.reset_after),
                }
            }
        };
        Some(match status.code {
            Code::Ok => {
                metrics.ok.increment(1);
                status
            }
            Code::OverLimit if node.shadow => {
                metrics.shadow_over_limit.increment(1);
                DescriptorStatus {
                    code: Code::Ok,
                    ..status
                }
            }
            Code::OverLimit => {
                metrics.over_limit.increment(1);
                status
            }
        })
    }
}

fn no_limit() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok,
        current_limit: None,
        limit_remaining: 0,
        duration_until_reset: None,
    }
}

fn node_metrics(domain: &str, node: &Node) -> NodeMetrics {
    let counter = |result: &'static str| {
        metrics::counter!(
            DECISIONS_TOTAL,
            "domain" => domain.to_owned(),
            "limit" => node.path.clone(),
            "result" => result
        )
    };
    NodeMetrics {
        ok: counter("ok"),
        over_limit: counter("over_limit"),
        shadow_over_limit: counter("shadow_over_limit"),
    }
}

/// `rls:<domain>:<key>=<value>|<key>=<value>...`, with `%`, `:`, `=` and `|` of the parts
/// percent-encoded so two different descriptors never share a counter.
pub(crate) fn limiter_key(domain: &str, d: &Descriptor) -> String {
    fn push(out: &mut String, part: &str) {
        for c in part.chars() {
            match c {
                '%' => out.push_str("%25"),
                ':' => out.push_str("%3A"),
                '=' => out.push_str("%3D"),
                '|' => out.push_str("%7C"),
                c => out.push(c),
            }
        }
    }
    let mut key = String::with_capacity(
        8 + domain.len()
            + d.entries
                .iter()
                .map(|e| e.key.len() + e.value.len() + 2)
                .sum::<usize>(),
    );
    key.push_str("rls:");
    push(&mut key, domain);
    key.push(':');
    for (i, e) in d.entries.iter().enumerate() {
        if i > 0 {
            key.push('|');
        }
        push(&mut key, &e.key);
        key.push('=');
        push(&mut key, &e.value);
    }
    key
}

/// Protobuf's JSON form of a duration: seconds with 0, 3, 6 or 9 fractional digits and `s`.
pub mod proto_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// `"1s"`, `"1.500s"`, `"0.000001s"`.
    pub fn format(d: Duration) -> String {
        let (s, n) = (d.as_secs(), d.subsec_nanos());
        if n == 0 {
            format!("{s}s")
        } else if n % 1_000_000 == 0 {
            format!("{s}.{:03}s", n / 1_000_000)
        } else if n % 1_000 == 0 {
            format!("{s}.{:06}s", n / 1_000)
        } else {
            format!("{s}.{n:09}s")
        }
    }

    /// Parses what [`format()`] writes (and any 1 to 9 fractional digits).
    pub fn parse(text: &str) -> Option<Duration> {
        let body = text.strip_suffix('s')?;
        let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let nanos = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse::<u32>().ok()?
        };
        Some(Duration::new(secs.parse().ok()?, nanos))
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => ser.serialize_str(&format(*d)),
            None => ser.serialize_none(),
        }
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(de)?;
        text.map(|t| {
            parse(&t).ok_or_else(|| serde::de::Error::custom(format!("{t:?} is not a duration")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use praxis_infra::ratelimit::OnStoreFailure;

    use super::*;

    fn req(domain: &str, entries: &[&[(&str, &str)]]) -> CheckRequest {
        CheckRequest {
            domain: domain.to_owned(),
            descriptors: entries
                .iter()
                .map(|es| Descriptor {
                    entries: es.iter().map(|(k, v)| Entry::new(*k, *v)).collect(),
                    hits: None,
                })
                .collect(),
            hits: None,
        }
    }

    #[test]
    fn validation_names_fields() {
        let fields = |r: &CheckRequest| -> Vec<String> {
            r.validate().into_iter().map(|e| e.field).collect()
        };
        assert!(fields(&req("d", &[&[("k", "v")]])).is_empty());
        assert_eq!(fields(&req("", &[&[("k", "v")]])), ["domain"]);
        assert_eq!(fields(&req("d", &[])), ["descriptors"]);
        assert_eq!(fields(&req("d", &[&[]])), ["descriptors[0].entries"]);
        assert_eq!(
            fields(&req("d", &[&[("k", "v")], &[("k", "v"), ("", "v")]])),
            ["descriptors[1].entries[1].key"]
        );
        let mut r = req("d", &[&[("k", "v")]]);
        r.hits = Some(MAX_HITS + 1);
        r.descriptors[0].hits = Some(u64::MAX);
        assert_eq!(fields(&r), ["hits", "descriptors[0].hits"]);
        let many: Vec<&[(&str, &str)]> = vec![&[("k", "v")]; MAX_DESCRIPTORS + 1];
        assert_eq!(fields(&req("d", &many)), ["descriptors"]);
    }

    #[test]
    fn limiter_keys_are_unambiguous() {
        let a = req("d", &[&[("a", "b|c=d")]]);
        let b = req("d", &[&[("a", "b"), ("c", "d")]]);
        let ka = limiter_key("d", &a.descriptors[0]);
        let kb = limiter_key("d", &b.descriptors[0]);
        assert_ne!(ka, kb);
        assert_eq!(kb, "rls:d:a=b|c=d");
        assert_eq!(ka, "rls:d:a=b%7Cc%3Dd");
        assert_eq!(limiter_key("x:y", &b.descriptors[0]), "rls:x%3Ay:a=b|c=d");
    }

    #[test]
    fn durations_in_protobuf_json() {
        use proto_duration::{format, parse};
        for (d, text) in [
            (Duration::from_secs(3), "3s"),
            (Duration::from_millis(1500), "1.500s"),
            (Duration::from_micros(1), "0.000001s"),
            (Duration::new(0, 7), "0.000000007s"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(parse(text), Some(d));
        }
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "s", "1", "-1s", "1.s5", "1.0000000001s"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn decisions_follow_the_rules() {
        let rules = Rules::from_toml(
            r#"
domain = "d"
[[descriptors]]
key = "ip"
rate_limit = { unit = "minute", requests_per_unit = 2 }
[[descriptors]]
key = "shadow"
shadow_mode = true
rate_limit = { unit = "minute", requests_per_unit = 1 }
[[descriptors]]
key = "free"
rate_limit = { unlimited = true }
[[descriptors]]
key = "never"
rate_limit = { unit = "hour", requests_per_unit = 0 }
"#,
        )
        .expect("rules");
        let decider = Decider::new(rules, Limiter::local());
        let one = req("d", &[&[("ip", "1.2.3.4")]]);
        let codes = |r: &CheckResponse| (r.overall_code, r.statuses[0].limit_remaining);
        let r = decider.check(&one).await.expect("decided");
        assert_eq!(codes(&r), (Code::Ok, 1));
        assert_eq!(
            r.statuses[0].current_limit,
            Some(CurrentLimit {
                name: None,
                requests_per_unit: 2,
                unit: Unit::Minute
            })
        );
        assert_eq!(codes(&decider.check(&one).await.expect("d")), (Code::Ok, 0));
        assert_eq!(
            codes(&decider.check(&one).await.expect("d")),
            (Code::OverLimit, 0)
        );
        // Another IP has its own counter.
        let other = req("d", &[&[("ip", "5.6.7.8")]]);
        assert_eq!(
            codes(&decider.check(&other).await.expect("d")),
            (Code::Ok, 1)
        );

        let shadow = req("d", &[&[("shadow", "x")]]);
        for _ in 0..3 {
            let r = decider.check(&shadow).await.expect("d");
            assert_eq!(r.overall_code, Code::Ok);
        }
        let mixed = req(
            "d",
            &[&[("free", "x")], &[("never", "x")], &[("nothing", "x")]],
        );
        let r = decider.check(&mixed).await.expect("d");
        assert_eq!(r.overall_code, Code::OverLimit);
        assert_eq!(r.statuses[0], no_limit());
        assert_eq!(r.statuses[1].code, Code::OverLimit);
        assert_eq!(r.statuses[2], no_limit());

        let unknown = decider
            .check(&req("nope", &[&[("ip", "1")]]))
            .await
            .expect("d");
        assert_eq!(unknown.overall_code, Code::Ok);
        assert_eq!(OnStoreFailure::default(), OnStoreFailure::Local);
    }
}
