//! Visits (one per redirect served) and how a batch of them becomes counter increments.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

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

/// Visits of one code on one UTC day with one agent class and referrer, summed in memory
/// before publishing: a batch carries one row per distinct key instead of one per visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCount {
    /// The code followed.
    #[serde(rename = "c")]
    pub code: String,
    /// UTC day as days since 1970-01-01.
    #[serde(rename = "d")]
    pub day: i64,
    /// User-agent class.
    #[serde(rename = "a")]
    pub agent: AgentClass,
    /// Referring host, if the requests named one.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Number of visits.
    #[serde(rename = "n")]
    pub visits: i64,
    /// Latest of their times, unix ms.
    #[serde(rename = "t")]
    pub last_ms: i64,
}

/// Visits published together as one bus event. The id makes applying it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitBatch {
    /// Unique id of the batch (UUIDv7).
    pub batch_id: Uuid,
    /// Single visits (what batches held before they were pre-aggregated; still applied, so
    /// batches left in an outbox by an older version are not lost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits: Vec<Visit>,
    /// Summed visits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<VisitCount>,
}

impl VisitBatch {
    /// A new batch of summed visits with a fresh id.
    pub fn new(counts: Vec<VisitCount>) -> Self {
        Self {
            batch_id: Uuid::now_v7(),
            visits: Vec::new(),
            counts,
        }
    }

    /// Number of visits the batch stands for.
    pub fn visit_total(&self) -> i64 {
        self.visits.len() as i64 + self.counts.iter().map(|c| c.visits).sum::<i64>()
    }
}

const DAY_MS: i64 = 86_400_000;

/// The day index (days since 1970-01-01, UTC) of a unix time in milliseconds.
pub fn day_index(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(DAY_MS)
}

type TallyKey = (String, i64, AgentClass, Option<String>);

/// Sums visits per (code, day, agent, referrer) until they are taken as one batch.
#[derive(Debug, Default)]
pub struct VisitTally {
    counts: HashMap<TallyKey, (i64, i64), foldhash::fast::RandomState>,
    visits: u64,
}

impl VisitTally {
    /// Adds one visit.
    pub fn add(&mut self, v: Visit) {
        self.add_if(v, true);
    }

    /// Adds one visit; a visit to a key not held yet is added only when `new_keys` is true.
    /// Returns `Some(true)` for a new key, `Some(false)` for a key already held, `None` when
    /// the visit was not added.
    pub fn add_if(&mut self, v: Visit, new_keys: bool) -> Option<bool> {
        let key = (v.code, day_index(v.at_ms), v.agent, v.referrer);
        let len = self.counts.len();
        let entry = match self.counts.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) if new_keys => e.insert((0, i64::MIN)),
            Entry::Vacant(_) => return None,
        };
        entry.0 += 1;
        entry.1 = entry.1.max(v.at_ms);
        self.visits += 1;
        Some(self.counts.len() > len)
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: VisitTally) {
        if self.counts.is_empty() {
            *self = other;
            return;
        }
        for (key, (n, last)) in other.counts {
            let entry = self.counts.entry(key).or_insert((0, i64::MIN));
            entry.0 += n;
            entry.1 = entry.1.max(last);
        }
        self.visits += other.visits;
    }

    /// Takes at most `max` keys out as a tally of their own (all of them when fewer are held).
    pub fn take_at_most(&mut self, max: usize) -> VisitTally {
        if self.counts.len() <= max {
            return std::mem::take(self);
        }
        let mut taken = 0;
        let mut part = VisitTally::default();
        part.counts.extend(self.counts.extract_if(|_, _| {
            taken += 1;
            taken <= max
        }));
        part.visits = part
            .counts
            .values()
            .map(|c| u64::try_from(c.0).unwrap_or(0))
            .sum();
        self.visits -= part.visits;
        part
    }

    /// Distinct keys held (rows of the next batch).
    pub fn keys(&self) -> usize {
        self.counts.len()
    }

    /// Visits held.
    pub fn visits(&self) -> u64 {
        self.visits
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Everything held, as rows of a batch.
    pub fn into_rows(mut self) -> Vec<VisitCount> {
        self.take()
    }

    /// Takes everything held as rows of a batch, leaving the tally empty.
    pub fn take(&mut self) -> Vec<VisitCount> {
        self.visits = 0;
        self.counts
            .drain()
            .map(
                |((code, day, agent, referrer), (visits, last_ms))| VisitCount {
                    code,
                    day,
                    agent,
                    referrer,
                    visits,
                    last_ms,
                },
            )
            .collect()
    }
}

/// Visits of one code on one day: the day row of the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// All visits.
    pub visits: i64,
    /// Visits per agent class, indexed by [`AgentClass::index`].
    pub agents: [i64; 4],
}

/// Counter increments derived from a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Increments {
    /// Visits per (code, day), with their agent classes: one row each.
    pub daily: BTreeMap<(String, String), DayCounts>,
    /// Visits per (code, day, referring host).
    pub referrers: BTreeMap<(String, String, String), i64>,
    /// Per code: (visits, latest visit time).
    pub totals: BTreeMap<String, (i64, i64)>,
}

impl Increments {
    fn add(
        &mut self,
        code: &str,
        day: String,
        agent: AgentClass,
        referrer: Option<&str>,
        n: i64,
        last_ms: i64,
    ) {
        if let Some(r) = referrer {
            *self
                .referrers
                .entry((code.to_owned(), day.clone(), r.to_owned()))
                .or_default() += n;
        }
        let counts = self.daily.entry((code.to_owned(), day)).or_default();
        counts.visits += n;
        counts.agents[agent.index()] += n;
        let total = self.totals.entry(code.to_owned()).or_insert((0, i64::MIN));
        total.0 += n;
        total.1 = total.1.max(last_ms);
    }
}

/// Sums a batch into per-code, per-day counters (one upsert per key instead of one per visit).
pub fn aggregate(batch: &VisitBatch) -> Increments {
    let mut inc = Increments::default();
    for v in &batch.visits {
        inc.add(
            &v.code,
            day_of(v.at_ms),
            v.agent,
            v.referrer.as_deref(),
            1,
            v.at_ms,
        );
    }
    for c in &batch.counts {
        if c.visits <= 0 {
            continue;
        }
        inc.add(
            &c.code,
            day_of(c.day.saturating_mul(DAY_MS)),
            c.agent,
            c.referrer.as_deref(),
            c.visits,
            c.last_ms,
        );
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

    fn tallied(visits: &[Visit]) -> VisitBatch {
        let mut tally = VisitTally::default();
        for v in visits {
            tally.add(v.clone());
        }
        VisitBatch::new(tally.take())
    }

    #[test]
    fn aggregates_by_code_and_day() {
        let day = 86_400_000;
        let visits = [
            visit("a", 1, Some("x.com")),
            visit("a", 2, None),
            visit("a", day + 1, None),
            visit("b", 5, None),
        ];
        let single = VisitBatch {
            batch_id: Uuid::now_v7(),
            visits: visits.to_vec(),
            counts: Vec::new(),
        };
        // The same increments whether the batch holds single visits or tallied counts.
        for batch in [single, tallied(&visits)] {
            let inc = aggregate(&batch);
            let day1 = inc.daily.get(&("a".into(), "1970-01-01".into()));
            assert_eq!(day1.map(|d| d.visits), Some(2));
            assert_eq!(day1.map(|d| d.agents[AgentClass::Desktop.index()]), Some(2));
            let day2 = inc.daily.get(&("a".into(), "1970-01-02".into()));
            assert_eq!(day2.map(|d| d.visits), Some(1));
            assert_eq!(inc.totals.get("a"), Some(&(3, day + 1)));
            assert_eq!(inc.totals.get("b"), Some(&(1, 5)));
            assert_eq!(
                inc.referrers
                    .get(&("a".into(), "1970-01-01".into(), "x.com".into())),
                Some(&1)
            );
        }
    }

    #[test]
    fn tally_sums_repeated_keys_into_one_row() {
        let mut tally = VisitTally::default();
        for t in 0..5 {
            tally.add(visit("a", t, None));
        }
        tally.add(visit("a", 7, Some("x.com")));
        assert_eq!((tally.keys(), tally.visits()), (2, 6));
        let mut rows = tally.take();
        rows.sort_by_key(|r| r.visits);
        assert_eq!(rows[1].visits, 5);
        assert_eq!(rows[1].last_ms, 4);
        assert_eq!(rows[0].referrer.as_deref(), Some("x.com"));
        assert!(tally.is_empty());
        assert_eq!(tally.visits(), 0);
    }

    #[test]
    fn merged_and_split_tallies_keep_every_visit() {
        let mut a = VisitTally::default();
        let mut b = VisitTally::default();
        for t in 0..10 {
            a.add(visit(&format!("c{t}"), t, None));
            b.add(visit(&format!("c{}", t % 4), t + 100, None));
        }
        a.merge(b);
        assert_eq!((a.keys(), a.visits()), (10, 20));
        let part = a.take_at_most(4);
        assert_eq!(part.keys(), 4);
        assert_eq!(part.visits() + a.visits(), 20);
        let mut rows = part.into_rows();
        rows.extend(a.take());
        let c0 = rows.iter().find(|r| r.code == "c0").expect("c0 kept");
        assert_eq!((c0.visits, c0.last_ms), (4, 108));
        assert_eq!(rows.iter().map(|r| r.visits).sum::<i64>(), 20);
    }

    #[test]
    fn a_full_tally_refuses_new_keys_but_counts_known_ones() {
        let mut t = VisitTally::default();
        assert_eq!(t.add_if(visit("a", 1, None), true), Some(true));
        assert_eq!(t.add_if(visit("a", 2, None), false), Some(false));
        assert_eq!(t.add_if(visit("b", 2, None), false), None);
        assert_eq!((t.keys(), t.visits()), (1, 2));
    }

    #[test]
    fn days_before_1970_are_indexed_downwards() {
        assert_eq!(day_index(-1), -1);
        assert_eq!(day_index(0), 0);
        assert_eq!(day_index(86_400_000), 1);
    }

    #[test]
    fn batch_round_trips() {
        let b = tallied(&[visit("a", 1, Some("x.com")), visit("a", 2, None)]);
        let json = serde_json::to_vec(&b).expect("serializes");
        assert_eq!(
            serde_json::from_slice::<VisitBatch>(&json).expect("parses"),
            b
        );
    }

    #[test]
    fn batches_of_single_visits_still_parse() {
        let json = br#"{"batch_id":"0190b6a0-0000-7000-8000-000000000000","visits":[{"c":"a","t":1,"a":"bot"}]}"#;
        let b: VisitBatch = serde_json::from_slice(json).expect("parses");
        assert_eq!(b.visit_total(), 1);
        assert_eq!(aggregate(&b).totals.get("a"), Some(&(1, 1)));
    }

    proptest! {
        #[test]
        fn counts_are_conserved(times in proptest::collection::vec((0u8..4, 0i64..1_000_000_000_000), 0..200)) {
            let visits: Vec<Visit> = times.iter().map(|(c, t)| visit(&format!("c{c}"), *t, None)).collect();
            let batch = tallied(&visits);
            prop_assert_eq!(batch.visit_total(), visits.len() as i64);
            let inc = aggregate(&batch);
            prop_assert_eq!(inc.daily.values().map(|d| d.visits).sum::<i64>(), visits.len() as i64);
            prop_assert_eq!(inc.daily.values().map(|d| d.agents.iter().sum::<i64>()).sum::<i64>(), visits.len() as i64);
            prop_assert_eq!(inc.totals.values().map(|t| t.0).sum::<i64>(), visits.len() as i64);
            let single = VisitBatch { batch_id: batch.batch_id, visits, counts: Vec::new() };
            prop_assert_eq!(aggregate(&single), inc);
        }
    }
}
