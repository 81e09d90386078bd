//! Visits (one per redirect served) and how a batch of them becomes counter increments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{agent::AgentClass, days::day_of};

/// Bus topic of visit batches.
pub const VISITS_TOPIC: &str = "shortener.visits";
/// Consumer group that applies visit batches to the statistics tables.
pub const STATS_GROUP: &str = "shortener-stats";

/// One redirect served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// The code followed.
    #[serde(rename = "c")]
    pub code: String,
    /// When, unix ms.
    #[serde(rename = "t")]
    pub at_ms: i64,
    /// Referring host, if the request named one.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// User-agent class.
    #[serde(rename = "a")]
    pub agent: AgentClass,
}

/// Visits published together as one bus event. The id makes applying it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitBatch {
    /// Unique id of the batch (UUIDv7).
    pub batch_id: Uuid,
    /// The visits.
    pub visits: Vec<Visit>,
}

impl VisitBatch {
    /// A new batch with a fresh id.
    pub fn new(visits: Vec<Visit>) -> Self {
        Self {
            batch_id: Uuid::now_v7(),
            visits,
        }
    }
}

/// Counter increments derived from a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Increments {
    /// Visits per (code, day).
    pub daily: BTreeMap<(String, String), i64>,
    /// Visits per (code, day, dimension, value); dimensions are `agent` and `referrer`.
    pub dims: BTreeMap<(String, String, &'static str, String), i64>,
    /// Per code: (visits, latest visit time).
    pub totals: BTreeMap<String, (i64, i64)>,
}

/// Sums a batch into per-code, per-day counters (one upsert per key instead of one per visit).
pub fn aggregate(visits: &[Visit]) -> Increments {
    let mut inc = Increments::default();
    for v in visits {
        let day = day_of(v.at_ms);
        *inc.daily.entry((v.code.clone(), day.clone())).or_default() += 1;
        *inc.dims
            .entry((
                v.code.clone(),
                day.clone(),
                "agent",
                v.agent.as_str().to_owned(),
            ))
            .or_default() += 1;
        if let Some(r) = &v.referrer {
            *inc.dims
                .entry((v.code.clone(), day, "referrer", r.clone()))
                .or_default() += 1;
        }
        let total = inc.totals.entry(v.code.clone()).or_insert((0, i64::MIN));
        total.0 += 1;
        total.1 = total.1.max(v.at_ms);
    }
    inc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn visit(code: &str, at_ms: i64, referrer: Option<&str>) -> Visit {
        Visit {
            code: code.into(),
            at_ms,
            referrer: referrer.map(Into::into),
            agent: AgentClass::Desktop,
        }
    }

    #[test]
    fn aggregates_by_code_and_day() {
        let day = 86_400_000;
        let inc = aggregate(&[
            visit("a", 1, Some("x.com")),
            visit("a", 2, None),
            visit("a", day + 1, None),
            visit("b", 5, None),
        ]);
        assert_eq!(inc.daily.get(&("a".into(), "1970-01-01".into())), Some(&2));
        assert_eq!(inc.daily.get(&("a".into(), "1970-01-02".into())), Some(&1));
        assert_eq!(inc.totals.get("a"), Some(&(3, day + 1)));
        assert_eq!(inc.totals.get("b"), Some(&(1, 5)));
        assert_eq!(
            inc.dims
                .get(&("a".into(), "1970-01-01".into(), "referrer", "x.com".into())),
            Some(&1)
        );
        assert_eq!(
            inc.dims
                .get(&("a".into(), "1970-01-01".into(), "agent", "desktop".into())),
            Some(&2)
        );
    }

    #[test]
    fn batch_round_trips() {
        let b = VisitBatch::new(vec![visit("a", 1, Some("x.com"))]);
        let json = serde_json::to_vec(&b).expect("serializes");
        assert_eq!(
            serde_json::from_slice::<VisitBatch>(&json).expect("parses"),
            b
        );
    }

    proptest! {
        #[test]
        fn counts_are_conserved(times in proptest::collection::vec((0u8..4, 0i64..1_000_000_000_000), 0..200)) {
            let visits: Vec<Visit> = times.iter().map(|(c, t)| visit(&format!("c{c}"), *t, None)).collect();
            let inc = aggregate(&visits);
            prop_assert_eq!(inc.daily.values().sum::<i64>(), visits.len() as i64);
            prop_assert_eq!(inc.totals.values().map(|t| t.0).sum::<i64>(), visits.len() as i64);
        }
    }
}
