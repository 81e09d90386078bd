//! The payment and shipping providers the checkout saga calls, behind traits: providers over
//! HTTP ([`HttpPayments`], [`HttpShipping`]), and a scripted provider of each that tests (and
//! `praxis lab`) tell to succeed, decline, fail, hang or answer late.
//!
//! Every call carries an idempotency key (the order id): a saga that resumes after a crash
//! calls again with the same key and must get the same answer, never a second charge. `void`
//! and `cancel` name the key, not the provider's id, so a compensation can undo a call whose
//! answer never arrived (praxis gave up waiting): a void recorded before the late
//! authorization lands cancels it when it does.

mod http;

pub use http::{HttpPayments, HttpShipping};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A definite no (a card declined, an address refused): the saga compensates.
    #[error("declined: {0}")]
    Declined(String),
    /// The provider could not answer (down, overloaded); a retry may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider.
pub trait Payments: Send + Sync + 'static {
    /// Authorizes `amount_cents` of `currency` for the order `key`; the authorization's id.
    fn authorize<'a>(
        &'a self,
        key: &'a str,
        amount_cents: i64,
        currency: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Voids order `key`'s authorization, whether it exists yet or not.
    fn void<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// A shipping provider.
pub trait Shipping: Send + Sync + 'static {
    /// Creates order `key`'s shipment; its id.
    fn create<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Cancels order `key`'s shipment, whether it exists yet or not.
    fn cancel<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// What a scripted provider does with its next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers at once with success.
    Succeed,
    /// Answers at once with a definite no.
    Decline,
    /// Answers at once that it is unavailable.
    Fail,
    /// Never answers.
    Hang,
    /// Succeeds, but only after this long (longer than the saga waits: the late answer).
    Late(Duration),
}

/// What a scripted provider holds for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// Succeeded calls (authorizations or shipments) for the key; an idempotent provider keeps
    /// this at most 1.
    pub done: u32,
    /// Whether it was voided or cancelled.
    pub undone: bool,
}

/// A scripted provider: payments and shipping, told what to do by the test.
#[derive(Debug, Clone)]
pub struct Scripted {
    name: &'static str,
    behaviour: Arc<Mutex<Behaviour>>,
    records: Arc<Mutex<HashMap<String, Record>>>,
}

impl Scripted {
    /// A provider named `name` (it prefixes the ids it gives) that succeeds.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            behaviour: Arc::new(Mutex::new(Behaviour::Succeed)),
            records: Arc::default(),
        }
    }

    /// Sets what the next calls do.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock() = behaviour;
    }

    /// What it holds for `key`.
    pub fn record(&self, key: &str) -> Record {
        self.records.lock().get(key).copied().unwrap_or_default()
    }

    /// The keys with a success that was not undone (what a failed saga must never leave).
    pub fn dangling(&self) -> Vec<String> {
        self.records
            .lock()
            .iter()
            .filter(|(_, r)| r.done > 0 && !r.undone)
            .map(|(k, _)| k.clone())
            .collect()
    }

    async fn call(&self, key: &str) -> Result<String, ProviderError> {
        let behaviour = *self.behaviour.lock();
        match behaviour {
            Behaviour::Succeed => Ok(self.succeed(key)),
            Behaviour::Decline => Err(ProviderError::Declined(format!("{} said no", self.name))),
            Behaviour::Fail => Err(ProviderError::Unavailable(format!("{} is down", self.name))),
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Late(after) => {
                // The provider does the work whether or not the caller still waits, as a
                // remote one would.
                let (tx, rx) = tokio::sync::oneshot::channel();
                let this = self.clone();
                let key = key.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(this.succeed(&key));
                });
                rx.await
                    .map_err(|_| ProviderError::Unavailable(format!("{} went away", self.name)))
            }
        }
    }

    /// Records a success for `key` (idempotent: a second call with the key returns the same
    /// id and charges nothing more); its id.
    fn succeed(&self, key: &str) -> String {
        self.records.lock().entry(key.to_owned()).or_default().done = 1;
        format!("{}-{key}", self.name)
    }

    fn undo(&self, key: &str) {
        self.records
            .lock()
            .entry(key.to_owned())
            .or_default()
            .undone = true;
    }
}

impl Payments for Scripted {
    fn authorize<'a>(
        &'a self,
        key: &'a str,
        _amount_cents: i64,
        _currency: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.call(key))
    }

    fn void<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.undo(key);
            Ok(())
        })
    }
}

impl Shipping for Scripted {
    fn create<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.call(key))
    }

    fn cancel<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.undo(key);
            Ok(())
        })
    }
}
