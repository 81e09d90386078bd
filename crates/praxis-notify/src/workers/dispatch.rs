//! Dispatch: one worker per enabled channel claims due deliveries (with a lease) and runs each
//! attempt on a bounded pool (a semaphore of `concurrency` permits per channel and process).
//!
//! An attempt, in order:
//! 1. **render** the message's template version for the channel (compiled versions are
//!    cached); a render error is permanent;
//! 2. ask the provider's **circuit breaker** (per process; per receiver origin for webhooks):
//!    when open, the delivery is rescheduled for when it may close, without counting an
//!    attempt, so a provider that is down keeps its queue instead of burning retries;
//! 3. ask the provider's **rate limit** through the platform's limiter (shared through Redis
//!    when configured): when denied, rescheduled at `retry_after`, without counting an attempt;
//! 4. **send** through the provider (one attempt, bounded by a timeout);
//! 5. **complete** while holding the lease: delivered; or a transient failure retried at
//!    `now + max(full-jitter backoff, Retry-After)`; or failed (permanent, or out of attempts)
//!    = a dead letter. The attempt is recorded in the same transaction.
//!
//! The in-app channel has no provider: it writes the inbox row and completes the delivery in
//! one transaction, so its effect is exactly once.
//!
//! Workers are woken in-process when the expander creates deliveries or a dead letter is
//! requeued, and poll otherwise (`poll_interval`), which is also how they see deliveries made
//! due by time (`send_at`, retries) or by another process.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use praxis_infra::ratelimit::{Algorithm, Limiter, OnStoreFailure, Quota, Rule};
use praxis_infra::tls::TrustPolicy;
use praxis_infra::{InfraError, Platform, trace};
use praxis_kit::backoff::Backoff;
use praxis_kit::breaker::{Breaker, BreakerConfig, BreakerState, Permit};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::domain::channel::Channel;
use crate::domain::model::{MessageRecord, now_ms};
use crate::settings::NotifySettings;
use crate::store::Store;
use crate::store::queue::{AttemptLog, Claimed, Outcome, Queue};
use crate::store::templates::Templates;
use crate::workers::channels::email::EmailProvider;
use crate::workers::channels::gateway::GatewayProvider;
use crate::workers::channels::webhook::{WebhookProvider, WebhookSettings};
use crate::workers::channels::{Outgoing, Provider, Receipt, SendError};
use crate::workers::inapp;
use crate::workers::metrics as m;

/// Most deliveries claimed in one round.
const CLAIM_BATCH: usize = 64;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Breakers kept per channel before closed, idle ones are forgotten.
const MAX_BREAKERS: usize = 10_000;

/// In-process wake-ups of the channel workers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Wakers {
    inner: Arc<BTreeMap<Channel, Arc<Notify>>>,
}

impl Default for Wakers {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakers {
    /// One waker per channel.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(
                Channel::ALL
                    .into_iter()
                    .map(|c| (c, Arc::new(Notify::new())))
                    .collect(),
            ),
        }
    }

    /// Wakes the worker of `channel` (a wake-up while it is busy is kept for its next wait).
    pub fn wake(&self, channel: Channel) {
        if let Some(n) = self.inner.get(&channel) {
            n.notify_one();
        }
    }

    fn get(&self, channel: Channel) -> Arc<Notify> {
        self.inner
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| Arc::new(Notify::new()))
    }
}

/// How a channel sends.
#[derive(Debug, Clone)]
pub enum Sender {
    /// Through a provider.
    Provider(Arc<dyn Provider>),
    /// Into the in-app inbox (a database write).
    InApp,
}

impl Sender {
    fn name(&self) -> &str {
        match self {
            Sender::Provider(p) => p.name(),
            Sender::InApp => "in_app",
        }
    }
}

/// Builds the sender of every enabled channel from the settings; SMTP, webhooks and the
/// gateways trust `trust` (the platform's policy). Without SMTP, email goes to `.eml` files
/// under `eml_dir` (default `<data_dir>/notify/outbox`).
pub fn build_senders(
    settings: &NotifySettings,
    data_dir: &Path,
    trust: &TrustPolicy,
) -> Result<BTreeMap<Channel, Sender>, String> {
    let webhook = WebhookSettings {
        secret: settings.webhook_secret.clone(),
        timeout: settings.provider_timeout,
        user_agent: settings.user_agent.clone(),
        ssrf: settings.ssrf_policy(),
        trust: trust.clone(),
    };
    let mut senders = BTreeMap::new();
    let email = match &settings.smtp {
        Some(smtp) => EmailProvider::smtp(smtp.clone(), trust)?,
        None => {
            let dir = settings
                .eml_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("notify").join("outbox"));
            EmailProvider::eml_dir(dir, &settings.email_from)?
        }
    };
    senders.insert(Channel::Email, Sender::Provider(Arc::new(email)));
    senders.insert(
        Channel::Webhook,
        Sender::Provider(Arc::new(WebhookProvider::new(webhook.clone())?)),
    );
    if let Some(url) = &settings.sms_url {
        senders.insert(
            Channel::Sms,
            Sender::Provider(Arc::new(GatewayProvider::new(
                Channel::Sms,
                url,
                webhook.clone(),
            )?)),
        );
    }
    if let Some(url) = &settings.push_url {
        senders.insert(
            Channel::Push,
            Sender::Provider(Arc::new(GatewayProvider::new(Channel::Push, url, webhook)?)),
        );
    }
    senders.insert(Channel::InApp, Sender::InApp);
    Ok(senders)
}

/// The breaker key of a send: the provider's name, or `webhook:<origin>` for webhooks (one
/// receiver being down must not stop the others).
pub fn breaker_key(provider: &str, channel: Channel, address: &str) -> String {
    if channel == Channel::Webhook
        && let Ok(url) = url::Url::parse(address)
    {
        return format!("{provider}:{}", url.origin().ascii_serialization());
    }
    provider.to_owned()
}

/// The circuit breakers of one channel, by key. Time is monotonic ms since creation.
#[derive(Debug)]
pub struct Breakers {
    provider: String,
    cfg: BreakerConfig,
    started: Instant,
    map: Mutex<HashMap<String, Breaker>>,
}

/// One breaker's state, for the status route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BreakerStatus {
    /// Breaker key: the provider, or `webhook:<origin>`.
    pub key: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Consecutive failures counted while closed.
    pub consecutive_failures: u32,
}

impl Breakers {
    fn new(provider: &str, cfg: BreakerConfig) -> Self {
        Self {
            provider: provider.to_owned(),
            cfg,
            started: Instant::now(),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn acquire(&self, key: &str) -> Permit {
        let now = self.now();
        let mut map = self.map.lock();
        if !map.contains_key(key) && map.len() >= MAX_BREAKERS {
            map.retain(|_, b| b.state() != BreakerState::Closed || b.consecutive_failures() > 0);
        }
        let breaker = map
            .entry(key.to_owned())
            .or_insert_with(|| Breaker::new(self.cfg));
        let before = breaker.state();
        let permit = breaker.acquire(now);
        let after = breaker.state();
        if before != after {
            self.publish(&map);
        }
        permit
    }

    fn report(&self, key: &str, ok: bool) {
        let now = self.now();
        let mut map = self.map.lock();
        let Some(breaker) = map.get_mut(key) else {
            return;
        };
        let before = breaker.state();
        if ok {
            breaker.record_success(now);
        } else {
            breaker.record_failure(now);
        }
        let after = breaker.state();
        if before != after {
            tracing::info!(
                breaker = key,
                from = before.as_str(),
                to = after.as_str(),
                "circuit breaker changed state"
            );
            self.publish(&map);
        }
    }

    fn publish(&self, map: &HashMap<String, Breaker>) {
        let open = map
            .values()
            .filter(|b| b.state() != BreakerState::Closed)
            .count();
        metrics::gauge!(m::BREAKERS_OPEN, "provider" => self.provider.clone()).set(open as f64);
    }

    /// Every breaker that is not closed and idle, by key.
    pub fn statuses(&self) -> Vec<BreakerStatus> {
        let map = self.map.lock();
        let mut out: Vec<BreakerStatus> = map
            .iter()
            .filter(|(_, b)| b.state() != BreakerState::Closed || b.consecutive_failures() > 0)
            .map(|(key, b)| BreakerStatus {
                key: key.clone(),
                state: b.state().as_str().to_owned(),
                consecutive_failures: b.consecutive_failures(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// The worker of one channel.
#[derive(Debug)]
pub struct ChannelWorker {
    channel: Channel,
    sender: Sender,
    queue: Queue,
    store: Store,
    templates: Templates,
    breakers: Breakers,
    limiter: Limiter,
    limit: Option<Rule>,
    concurrency: usize,
    semaphore: Arc<Semaphore>,
    wake: Arc<Notify>,
    max_attempts: u32,
    backoff: Backoff,
    send_timeout: Duration,
    poll: Duration,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    broadcaster: praxis_infra::broadcast::Broadcaster,
    /// Unsubscribe links of emails to subscribers (email channel, with a public base URL).
    unsubscribe: Option<crate::domain::unsubscribe::Links>,
}

/// The state of one channel, for the status route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChannelStatus {
    /// Channel.
    pub channel: Channel,
    /// Provider name.
    pub provider: String,
    /// Sends in flight at once (per process).
    pub concurrency: usize,
    /// Sends in flight now in this process.
    pub in_flight: usize,
    /// Attempts per delivery before it becomes a dead letter.
    pub max_attempts: u32,
    /// Rate limit, `COUNT/SECONDSs`, if any.
    pub rate_limit: Option<String>,
    /// Breakers that are open, half-open or counting failures.
    pub breakers: Vec<BreakerStatus>,
}

/// Every channel worker of this process.
#[derive(Debug, Clone)]
pub struct Dispatch {
    workers: Arc<BTreeMap<Channel, Arc<ChannelWorker>>>,
}

impl Dispatch {
    /// Starts a worker per enabled channel on `platform.tasks`, stopping with
    /// `platform.shutdown`.
    pub fn start(
        platform: &Platform,
        store: &Store,
        queue: &Queue,
        templates: &Templates,
        settings: &NotifySettings,
        senders: BTreeMap<Channel, Sender>,
        wakers: &Wakers,
    ) -> Result<Dispatch, InfraError> {
        let cfg = BreakerConfig {
            failure_threshold: settings.breaker.failures,
            open_for_ms: u64::try_from(settings.breaker.open_for.as_millis()).unwrap_or(u64::MAX),
            max_open_ms: u64::try_from(settings.breaker.max_open.as_millis()).unwrap_or(u64::MAX),
        };
        let lease = Duration::from_millis(u64::try_from(queue.lease_ms()).unwrap_or(u64::MAX));
        let send_timeout =
            (settings.provider_timeout * 2 + Duration::from_secs(1)).min(lease * 3 / 4);
        let links = settings
            .public_base_url
            .as_deref()
            .map(|base| crate::domain::unsubscribe::Links::new(base, &settings.token_secret))
            .transpose()
            .map_err(|e| InfraError::Config(format!("public_base_url: {e}")))?;
        let mut workers = BTreeMap::new();
        for (channel, sender) in senders {
            let limit = match settings.rate_limits.get(sender.name()) {
                Some(l) => Some(Rule::new(
                    Algorithm::Gcra,
                    Quota::new(l.limit, l.period).map_err(|e| {
                        InfraError::Config(format!("rate limit of {}: {e}", sender.name()))
                    })?,
                )),
                None => None,
            };
            let concurrency = settings.concurrency.get(channel);
            let worker = Arc::new(ChannelWorker {
                channel,
                breakers: Breakers::new(sender.name(), cfg),
                sender,
                queue: queue.clone(),
                store: store.clone(),
                templates: templates.clone(),
                limiter: platform.limiter.clone(),
                limit,
                concurrency,
                semaphore: Arc::new(Semaphore::new(concurrency)),
                wake: wakers.get(channel),
                max_attempts: settings.max_attempts.get(channel),
                backoff: Backoff::new(settings.retry_base, settings.retry_max),
                send_timeout,
                poll: settings.poll_interval,
                shutdown: platform.shutdown.clone(),
                tasks: platform.tasks.clone(),
                broadcaster: platform.broadcaster.clone(),
                unsubscribe: links.clone().filter(|_| channel == Channel::Email),
            });
            platform.tasks.spawn(worker.clone().run());
            workers.insert(channel, worker);
        }
        Ok(Dispatch {
            workers: Arc::new(workers),
        })
    }

    /// The state of every channel.
    pub fn status(&self) -> Vec<ChannelStatus> {
        self.workers
            .values()
            .map(|w| ChannelStatus {
                channel: w.channel,
                provider: w.sender.name().to_owned(),
                concurrency: w.concurrency,
                in_flight: w
                    .concurrency
                    .saturating_sub(w.semaphore.available_permits()),
                max_attempts: w.max_attempts,
                rate_limit: w
                    .limit
                    .map(|r| format!("{}/{}s", r.quota.limit(), r.quota.period().as_secs_f64())),
                breakers: w.breakers.statuses(),
            })
            .collect()
    }
}

/// What became of one attempt, before it is recorded.
enum Attempted {
    Sent(Result<Receipt, SendError>, String),
    Rescheduled,
}

impl ChannelWorker {
    async fn run(self: Arc<Self>) {
        tracing::info!(
            channel = self.channel.as_str(),
            provider = self.sender.name(),
            concurrency = self.concurrency,
            "notify dispatcher started"
        );
        let mut failures = 0u32;
        loop {
            let first = tokio::select! {
                () = self.shutdown.cancelled() => break,
                p = self.semaphore.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while permits.len() < CLAIM_BATCH {
                match self.semaphore.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let asked = permits.len();
            let claimed = match self.queue.claim(self.channel, asked, now_ms()).await {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    drop(permits);
                    let delay =
                        Backoff::new(self.poll, Duration::from_secs(10)).delay(failures.min(16));
                    tracing::warn!(channel = self.channel.as_str(), error = %e, failures, "claiming deliveries failed");
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay.max(self.poll)) => {}
                    }
                    continue;
                }
            };
            let got = claimed.len();
            if got > 0 {
                self.start_attempts(claimed, &mut permits).await;
            }
            drop(permits);
            if got < asked {
                tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        }
        tracing::info!(channel = self.channel.as_str(), "notify dispatcher stopped");
    }

    /// Loads the messages of the claimed deliveries and starts one task per delivery, each
    /// holding one permit.
    async fn start_attempts(
        self: &Arc<Self>,
        claimed: Vec<Claimed>,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) {
        let mut ids: Vec<String> = claimed.iter().map(|c| c.message_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let messages: HashMap<String, Arc<MessageRecord>> = match self.store.messages(&ids).await {
            Ok(list) => list
                .into_iter()
                .map(|m| (m.id.clone(), Arc::new(m)))
                .collect(),
            Err(e) => {
                // Their leases expire and another round picks them up.
                tracing::warn!(channel = self.channel.as_str(), error = %e, "loading messages of claimed deliveries failed");
                return;
            }
        };
        for row in claimed {
            let Some(permit) = permits.pop() else {
                break;
            };
            let message = messages.get(&row.message_id).cloned();
            let worker = self.clone();
            let (span, ctx) = trace::start(row.trace, || attempt_span(&row));
            let attempt = async move {
                worker.attempt(row, message).await;
                drop(permit);
            };
            self.tasks
                .spawn(trace::in_scope(ctx, attempt).instrument(span));
        }
    }

    async fn attempt(&self, row: Claimed, message: Option<Arc<MessageRecord>>) {
        let started = Instant::now();
        let Some(message) = message else {
            let err = SendError::Permanent {
                detail: format!("message {} does not exist", row.message_id),
            };
            self.finish(&row, Err(err), "pipeline", started).await;
            return;
        };
        if row.address.is_empty() {
            let err = SendError::Permanent {
                detail: format!("no {} address", self.channel.as_str()),
            };
            self.finish(&row, Err(err), "pipeline", started).await;
            return;
        }
        let (message, data) =
            match crate::workers::digest::for_claimed(&self.store, &row, message).await {
                Ok(v) => v,
                Err(err) => {
                    self.finish(&row, Err(err), "digest", started).await;
                    return;
                }
            };
        let rendered = match self.render(&message, &data).await {
            Ok(r) => r,
            Err(err) => {
                self.finish(&row, Err(err), "render", started).await;
                return;
            }
        };
        let outgoing = Outgoing {
            delivery_id: row.id.clone(),
            address: row.address.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            event_type: message
                .event_type
                .clone()
                .unwrap_or_else(|| message.template.clone()),
            data,
            unsubscribe_url: self.unsubscribe.as_ref().and_then(|links| {
                let subscriber = row.subscriber_id.as_deref()?;
                let scope = crate::domain::unsubscribe::Scope::for_topic(message.topic.as_deref());
                Some(links.url(subscriber, &scope))
            }),
        };
        match &self.sender {
            Sender::InApp => {
                let done =
                    inapp::deliver(&self.store, &self.broadcaster, &row, &outgoing, started).await;
                self.after_in_app(&row, done, started).await;
            }
            Sender::Provider(provider) => match self.send(provider.as_ref(), &row, &outgoing).await
            {
                Attempted::Rescheduled => {}
                Attempted::Sent(result, name) => self.finish(&row, result, &name, started).await,
            },
        }
    }

    /// Renders `message`'s template version for this channel with `data` (the message's, or
    /// a digest's).
    async fn render(
        &self,
        message: &MessageRecord,
        data: &serde_json::Value,
    ) -> Result<crate::domain::template::Rendered, SendError> {
        let version = self
            .templates
            .get(&message.template, Some(message.template_version))
            .await
            .map_err(|e| SendError::Transient {
                detail: format!("loading template {} failed: {e}", message.template),
                retry_after: None,
            })?
            .ok_or_else(|| SendError::Permanent {
                detail: format!(
                    "template {} version {} does not exist",
                    message.template, message.template_version
                ),
            })?;
        let compiled = version
            .compiled
            .get(&self.channel)
            .ok_or_else(|| SendError::Permanent {
                detail: format!(
                    "template {} version {} has no {} part",
                    message.template,
                    message.template_version,
                    self.channel.as_str()
                ),
            })?;
        compiled.render(data).map_err(|e| SendError::Permanent {
            detail: format!("render failed: {e}"),
        })
    }

    /// Breaker, rate limit, send. Rescheduled without an attempt when the breaker or the limit
    /// says no, or when the process is stopping.
    async fn send(&self, provider: &dyn Provider, row: &Claimed, outgoing: &Outgoing) -> Attempted {
        let name = provider.name().to_owned();
        let key = breaker_key(&name, self.channel, &row.address);
        if let Permit::Rejected { retry_in_ms } = self.breakers.acquire(&key) {
            let wait = Duration::from_millis(retry_in_ms);
            let spread = Backoff::new(wait / 4, wait / 4).delay(0);
            self.reschedule(row, wait + spread, "breaker").await;
            return Attempted::Rescheduled;
        }
        if let Some(rule) = &self.limit {
            let verdict = self
                .limiter
                .check(&format!("notify:{key}"), rule, 1, OnStoreFailure::Local)
                .await;
            if !verdict.decision.allowed {
                let wait = verdict
                    .decision
                    .retry_after
                    .unwrap_or(Duration::from_secs(1));
                let spread = Backoff::new(wait / 4, wait / 4).delay(0);
                self.reschedule(row, wait + spread, "rate_limit").await;
                return Attempted::Rescheduled;
            }
        }
        if self.shutdown.is_cancelled() {
            self.reschedule(row, Duration::ZERO, "shutdown").await;
            return Attempted::Rescheduled;
        }
        let result = match tokio::time::timeout(self.send_timeout, provider.send(outgoing)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Transient {
                detail: format!("no answer within {:?}", self.send_timeout),
                retry_after: None,
            }),
        };
        // A permanent failure is an answer: the provider is up.
        self.breakers
            .report(&key, !matches!(result, Err(SendError::Transient { .. })));
        Attempted::Sent(result, name)
    }

    async fn reschedule(&self, row: &Claimed, after: Duration, reason: &'static str) {
        let now = now_ms();
        let at = now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
        metrics::counter!(m::RESCHEDULED_TOTAL, "channel" => self.channel.as_str(), "reason" => reason).increment(1);
        if let Err(e) = self.queue.reschedule(&[row], at, now).await {
            tracing::warn!(delivery_id = %row.id, error = %e, "rescheduling a delivery failed; its lease will expire");
        }
    }

    /// The outcome of an attempt: delivered, retried later, or failed for good.
    fn outcome(
        &self,
        row: &Claimed,
        result: &Result<Receipt, SendError>,
        now: i64,
    ) -> (Outcome, String) {
        match result {
            Ok(receipt) => (Outcome::Delivered, receipt.detail.clone()),
            Err(SendError::Permanent { detail }) => (Outcome::Failed, detail.clone()),
            Err(SendError::Transient {
                detail,
                retry_after,
            }) => {
                let n = row.try_number();
                if n >= i64::from(self.max_attempts) {
                    return (
                        Outcome::Failed,
                        format!("{detail} (gave up after {n} attempts)"),
                    );
                }
                let backoff = self.backoff.delay(u32::try_from(n - 1).unwrap_or(u32::MAX));
                let wait = retry_after
                    .map(|r| r.min(MAX_RETRY_AFTER))
                    .map_or(backoff, |r| r.max(backoff));
                let at = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                (Outcome::Retry { at }, detail.clone())
            }
        }
    }

    /// Records the attempt (retrying the write while the lease lasts).
    async fn finish(
        &self,
        row: &Claimed,
        result: Result<Receipt, SendError>,
        provider: &str,
        started: Instant,
    ) {
        let now = now_ms();
        let (outcome, detail) = self.outcome(row, &result, now);
        let provider = match &result {
            Ok(receipt) => receipt.provider.clone(),
            Err(_) => provider.to_owned(),
        };
        let log = AttemptLog {
            provider,
            ok: result.is_ok(),
            detail,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let deadline =
            started + Duration::from_millis(u64::try_from(self.queue.lease_ms()).unwrap_or(0));
        let mut tries = 0u32;
        let written = loop {
            match self.queue.complete(row, &outcome, &log, now_ms()).await {
                Ok(n) => break n,
                Err(e) => {
                    tries += 1;
                    let pause = Backoff::new(Duration::from_millis(50), Duration::from_secs(2))
                        .delay(tries);
                    if !e.is_transient() || Instant::now() + pause >= deadline {
                        tracing::error!(delivery_id = %row.id, error = %e, "recording an attempt failed; the delivery will be tried again when its lease expires");
                        m::attempt(self.channel, &log.provider, "unrecorded");
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        };
        self.record_metrics(row, &outcome, &log, written.is_some(), now);
    }

    async fn after_in_app(
        &self,
        row: &Claimed,
        done: Result<Option<i64>, InfraError>,
        started: Instant,
    ) {
        let now = now_ms();
        match done {
            Ok(written) => {
                let log = AttemptLog {
                    provider: "in_app".into(),
                    ok: true,
                    detail: String::new(),
                    duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                };
                self.record_metrics(row, &Outcome::Delivered, &log, written.is_some(), now);
            }
            Err(e) => {
                let err = SendError::Transient {
                    detail: format!("inbox write failed: {e}"),
                    retry_after: None,
                };
                self.finish(row, Err(err), "in_app", started).await;
            }
        }
    }

    fn record_metrics(
        &self,
        row: &Claimed,
        outcome: &Outcome,
        log: &AttemptLog,
        written: bool,
        now: i64,
    ) {
        if !written {
            tracing::warn!(delivery_id = %row.id, channel = self.channel.as_str(), "lease lost before the attempt was recorded; another process owns the delivery");
            metrics::counter!(m::LEASE_LOST_TOTAL, "channel" => self.channel.as_str()).increment(1);
            return;
        }
        let result = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed => "failed",
        };
        m::attempt(self.channel, &log.provider, result);
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(delivery_id = %row.id, channel = self.channel.as_str(), provider = %log.provider, attempt = row.try_number(), "delivered");
                let latency = (now - row.scheduled_at).max(0) as f64 / 1000.0;
                metrics::histogram!(m::DELIVERY_LATENCY, "channel" => self.channel.as_str())
                    .record(latency);
            }
            Outcome::Failed => {
                tracing::warn!(delivery_id = %row.id, channel = self.channel.as_str(), provider = %log.provider, detail = %log.detail, "delivery failed: dead letter");
            }
            Outcome::Retry { .. } => {}
        }
    }
}

/// The exported span of one attempt (made only when spans are exported).
fn attempt_span(row: &Claimed) -> tracing::Span {
    tracing::info_span!(
        target: trace::SPAN_TARGET,
        "deliver",
        otel.name = format!("notify deliver {}", row.channel.as_str()),
        otel.kind = "producer",
        delivery_id = %row.id,
        channel = row.channel.as_str(),
        attempt = row.try_number(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_breakers_are_per_origin() {
        assert_eq!(
            breaker_key("webhook", Channel::Webhook, "https://a.example:8443/x?y"),
            "webhook:https://a.example:8443"
        );
        assert_eq!(
            breaker_key("webhook", Channel::Webhook, "http://127.0.0.1:9/h"),
            "webhook:http://127.0.0.1:9"
        );
        assert_eq!(breaker_key("smtp", Channel::Email, "a@b.c"), "smtp");
    }

    #[test]
    fn breakers_open_and_report_statuses() {
        let b = Breakers::new(
            "webhook",
            BreakerConfig {
                failure_threshold: 2,
                open_for_ms: 60_000,
                max_open_ms: 60_000,
            },
        );
        assert_eq!(b.acquire("k"), Permit::Allowed);
        b.report("k", false);
        b.report("k", false);
        assert!(matches!(b.acquire("k"), Permit::Rejected { .. }));
        let statuses = b.statuses();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].state, "open");
        // Another receiver is not affected, and a closed idle breaker is not listed.
        assert_eq!(b.acquire("other"), Permit::Allowed);
        assert_eq!(b.statuses().len(), 1);
    }
}
