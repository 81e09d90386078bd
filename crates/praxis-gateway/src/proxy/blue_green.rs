//! A blue/green route: which side takes a request, switches (from the admin API, from the
//! file, or back after a bad check), and the check after each switch.
//!
//! The state ([`SwitchState`]) outlives a reload that leaves the route's blue/green settings
//! as they were but for `active`; the pools ([`BlueGreen::pools`]) are those of each version
//! of the table, so a request finishes on the side, and the pool, it started with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use metrics::counter;
use parking_lot::Mutex;
use praxis_kit::canary::{Responses, Rollback, Summary};
use praxis_kit::canary_switch::{SwitchJudge, SwitchJudgement, SwitchVerdict};

use super::verdict::{VerdictRecord, now_rfc3339};
use crate::config::{BlueGreenSettings, Side};
use crate::metrics::{CANARY_VERDICTS_TOTAL, SWITCHES_TOTAL};
use crate::pool::{Clock, Pool};

/// A blue/green route's sides in one version of the table.
#[derive(Debug)]
pub struct BlueGreen {
    /// The blue and the green pool.
    pub pools: [Arc<Pool>; 2],
    /// Which side is active, and the check of the last switch.
    pub state: Arc<SwitchState>,
}

impl BlueGreen {
    /// The pool of `side`.
    pub fn pool(&self, side: Side) -> &Arc<Pool> {
        &self.pools[side.index()]
    }
}

/// Why a switch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchRefused {
    /// That side is already active.
    AlreadyActive(Side),
}

/// The running check of a switch.
#[derive(Debug)]
struct Check {
    from: Side,
    to: Side,
    trigger: &'static str,
    started_at: String,
    judge: SwitchJudge,
}

#[derive(Debug)]
struct Inner {
    /// The side the file named when it was last applied.
    file_active: Side,
    /// Each side's responses over the last window (the baseline of a switch away from it).
    recorded: [Responses; 2],
    check: Option<Check>,
    last: Option<VerdictRecord>,
    switches: u64,
}

/// Which side of a blue/green route is active, kept across reloads.
#[derive(Debug)]
pub struct SwitchState {
    settings: BlueGreenSettings,
    active: AtomicU8,
    inner: Mutex<Inner>,
    clock: Clock,
}

/// A switch's running check (for the admin API).
#[derive(Debug, Clone)]
pub struct CheckState {
    /// The side switched from.
    pub from: Side,
    /// The side switched to (now active).
    pub to: Side,
    /// `admin` or `file`.
    pub trigger: &'static str,
    /// When the switch was made (RFC 3339).
    pub started_at: String,
    /// The new side's responses so far.
    pub candidate: Summary,
    /// The old side's, recorded before the switch.
    pub baseline: Summary,
}

/// Where a blue/green route stands (for the admin API).
#[derive(Debug, Clone)]
pub struct BlueGreenState {
    /// The side taking new requests.
    pub active: Side,
    /// The side the file names.
    pub file_active: Side,
    /// The running check, if a switch is being checked.
    pub check: Option<CheckState>,
    /// Switches made since the state was created (back-switches included).
    pub switches: u64,
    /// The last verdict.
    pub last_verdict: Option<VerdictRecord>,
}

impl SwitchState {
    /// A route on the side `settings` names, with no history.
    pub fn new(settings: &BlueGreenSettings, clock: Clock) -> Self {
        Self {
            settings: settings.clone(),
            active: AtomicU8::new(settings.active.index() as u8),
            inner: Mutex::new(Inner {
                file_active: settings.active,
                recorded: [Responses::new(), Responses::new()],
                check: None,
                last: None,
                switches: 0,
            }),
            clock,
        }
    }

    /// The settings it was made from (its `active` is the file's at the time).
    pub fn settings(&self) -> &BlueGreenSettings {
        &self.settings
    }

    /// The side taking new requests.
    pub fn active(&self) -> Side {
        Side::from_index(usize::from(self.active.load(Ordering::Acquire)))
    }

    /// Where it stands.
    pub fn state(&self) -> BlueGreenState {
        let inner = self.inner.lock();
        BlueGreenState {
            active: self.active(),
            file_active: inner.file_active,
            check: inner.check.as_ref().map(|c| CheckState {
                from: c.from,
                to: c.to,
                trigger: c.trigger,
                started_at: c.started_at.clone(),
                candidate: c.judge.new_side(),
                baseline: c.judge.baseline(),
            }),
            switches: inner.switches,
            last_verdict: inner.last.clone(),
        }
    }

    /// Switches new requests to `to` and starts its check against what the other side did in
    /// the last window (`trigger`: `admin` or `file`). A check still running is ended without
    /// a verdict.
    pub fn switch(
        &self,
        route: &str,
        to: Side,
        trigger: &'static str,
    ) -> Result<(), SwitchRefused> {
        let mut inner = self.inner.lock();
        self.switch_locked(&mut inner, route, to, trigger)
    }

    /// The file now names `side`: a switch when the file changed it and the route is on the
    /// other side; nothing when the file names the side it named before (so a reload for
    /// another reason keeps a switch made over the API).
    pub fn file_names(&self, route: &str, side: Side) {
        let mut inner = self.inner.lock();
        if inner.file_active == side {
            return;
        }
        inner.file_active = side;
        let _already = self.switch_locked(&mut inner, route, side, "file");
    }

    fn switch_locked(
        &self,
        inner: &mut Inner,
        route: &str,
        to: Side,
        trigger: &'static str,
    ) -> Result<(), SwitchRefused> {
        let from = self.active();
        if from == to {
            return Err(SwitchRefused::AlreadyActive(to));
        }
        let now = self.clock.now_ms();
        let window_ms = self.settings.to_kit().window_ms;
        inner.recorded[from.index()].expire(now, window_ms);
        let baseline = inner.recorded[from.index()].summary();
        if let Some(old) = inner.check.take() {
            tracing::info!(
                route,
                from = old.from.as_str(),
                to = old.to.as_str(),
                "gateway: a switch's check ended without a verdict by a new switch"
            );
        }
        self.active.store(to.index() as u8, Ordering::Release);
        inner.check = Some(Check {
            from,
            to,
            trigger,
            started_at: now_rfc3339(),
            judge: SwitchJudge::new(self.settings.to_kit(), baseline, now),
        });
        inner.switches += 1;
        counter!(SWITCHES_TOTAL, "route" => route.to_owned(), "to" => to.as_str(), "trigger" => trigger)
            .increment(1);
        tracing::info!(
            route,
            from = from.as_str(),
            to = to.as_str(),
            to_pool = self.settings.pool(to),
            trigger,
            baseline_requests = baseline.requests,
            baseline_error_rate = baseline.error_rate,
            baseline_p99_ms = baseline.p99_ms,
            "gateway: blue/green switch; checking the new side"
        );
        Ok(())
    }

    /// Records a response of `side` (`error`: a 5xx); acts on the check's verdict (a switch
    /// back, or a confirmation) with a log line and a count.
    pub fn observe(&self, route: &str, side: Side, error: bool, latency: Duration) {
        let now = self.clock.now_ms();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let mut inner = self.inner.lock();
        let cfg = self.settings.to_kit();
        let recorded = &mut inner.recorded[side.index()];
        recorded.push(now, error, latency_ms, cfg.max_samples);
        recorded.expire(now, cfg.window_ms);
        let Some(check) = inner.check.as_mut().filter(|c| c.to == side) else {
            return;
        };
        let Some(judgement) = check.judge.observe(error, latency_ms, now) else {
            return;
        };
        let (from, to) = (check.from, check.to);
        inner.check = None;
        inner.last = Some(VerdictRecord::new(
            judgement.verdict.as_str(),
            judgement.verdict.reason(),
            judgement.new,
            judgement.baseline,
        ));
        if let SwitchVerdict::Back(_) = judgement.verdict {
            self.active.store(from.index() as u8, Ordering::Release);
            inner.switches += 1;
            counter!(SWITCHES_TOTAL, "route" => route.to_owned(), "to" => from.as_str(), "trigger" => "switch_back")
                .increment(1);
        }
        drop(inner);
        counter!(CANARY_VERDICTS_TOTAL, "route" => route.to_owned(), "verdict" => judgement.verdict.as_str(), "reason" => judgement.verdict.reason())
            .increment(1);
        self.log(route, from, to, &judgement);
    }

    fn log(&self, route: &str, from: Side, to: Side, j: &SwitchJudgement) {
        let (n, b) = (&j.new, &j.baseline);
        match j.verdict {
            SwitchVerdict::Confirmed => tracing::info!(
                route,
                active = to.as_str(),
                pool = self.settings.pool(to),
                new_requests = n.requests,
                new_error_rate = n.error_rate,
                new_p99_ms = n.p99_ms,
                old_requests = b.requests,
                old_error_rate = b.error_rate,
                old_p99_ms = b.p99_ms,
                "gateway: blue/green switch confirmed"
            ),
            SwitchVerdict::Back(Rollback::ErrorRate { canary, baseline }) => tracing::warn!(
                route,
                from = to.as_str(),
                to = from.as_str(),
                new_requests = n.requests,
                new_error_rate = canary,
                old_requests = b.requests,
                old_error_rate = baseline,
                "gateway: blue/green switched back (error rate)"
            ),
            SwitchVerdict::Back(Rollback::Latency {
                canary_p99_ms,
                baseline_p99_ms,
            }) => tracing::warn!(
                route,
                from = to.as_str(),
                to = from.as_str(),
                new_requests = n.requests,
                new_p99_ms = canary_p99_ms,
                old_requests = b.requests,
                old_p99_ms = baseline_p99_ms,
                "gateway: blue/green switched back (p99 latency)"
            ),
        }
    }
}
