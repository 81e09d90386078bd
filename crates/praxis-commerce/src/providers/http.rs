//! Payment and shipping providers over HTTP: the contract praxis speaks to a real provider,
//! or to the adapter a deployment puts in front of one (docs/commerce.md, "Providers").
//!
//! Every call names the order by its key in the path, so a call made again after a crash
//! or a timeout is the same request:
//!
//! - `PUT {payment_url}/authorizations/{key}` with `{"amount_cents", "currency"}`, and
//!   `DELETE {payment_url}/authorizations/{key}` to void;
//! - `PUT {shipping_url}/shipments/{key}` with `{"order_id"}`, and
//!   `DELETE {shipping_url}/shipments/{key}` to cancel.
//!
//! A `PUT` answers 2xx with `{"id": "..."}`. A 4xx other than 408 and 429 is a definite no
//! (its problem `detail` or `title` says why); 408, 429, 5xx and a failed connection are
//! "unavailable" (the saga retries, then compensates). A `DELETE` of a key the provider
//! never saw answers 2xx or 404, and must refuse a later `PUT` of that key: that is how a
//! void recorded before a late authorization cancels it.

use std::time::Duration;

use futures::future::BoxFuture;
use praxis_infra::tls::TrustPolicy;
use reqwest::StatusCode;
use url::Url;

use super::{Payments, ProviderError, Shipping};

/// How long a connection to a provider may take to open (a call's whole time is bounded by
/// the saga's `step_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One resource of a provider (`authorizations` or `shipments`) under a base URL.
#[derive(Debug, Clone)]
struct Resource {
    base: Url,
    name: &'static str,
    client: reqwest::Client,
}

impl Resource {
    fn new(base: &Url, name: &'static str, trust: &TrustPolicy) -> Result<Self, String> {
        praxis_infra::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(trust.client_config())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the {name} provider's HTTP client: {e}"))?;
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Self { base, name, client })
    }

    fn url(&self, key: &str) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::Unavailable(format!("{} URL cannot take a path", self.name))
            })?
            .pop_if_empty()
            .extend([self.name, key]);
        Ok(url)
    }

    /// `PUT`s `body` under `key`; the id the provider answers with.
    async fn put(&self, key: &str, body: serde_json::Value) -> Result<String, ProviderError> {
        let resp = self
            .client
            .put(self.url(key)?)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.refusal(status, resp).await);
        }
        let answer: serde_json::Value = resp.json().await.map_err(|e| {
            ProviderError::Unavailable(format!("{} answered {status} without JSON: {e}", self.name))
        })?;
        answer["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::Unavailable(format!("{} answered {status} without an id", self.name))
            })
    }

    /// `DELETE`s `key`: done when the provider answers 2xx or 404 (it never had it).
    async fn delete(&self, key: &str) -> Result<(), ProviderError> {
        let resp = self
            .client
            .delete(self.url(key)?)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self.refusal(status, resp).await)
    }

    fn unreachable(&self, e: &reqwest::Error) -> ProviderError {
        ProviderError::Unavailable(format!("{} provider unreachable: {e}", self.name))
    }

    /// What a non-2xx answer means: a definite no, or "try again".
    async fn refusal(&self, status: StatusCode, resp: reqwest::Response) -> ProviderError {
        let body = resp.json::<serde_json::Value>().await.unwrap_or_default();
        let why = body["detail"]
            .as_str()
            .or_else(|| body["title"].as_str())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason"));
        let text = format!("{} answered {}: {why}", self.name, status.as_u16());
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            ProviderError::Declined(text)
        } else {
            ProviderError::Unavailable(text)
        }
    }
}

/// A payment provider at a base URL (its `authorizations`).
#[derive(Debug, Clone)]
pub struct HttpPayments(Resource);

impl HttpPayments {
    /// The provider at `base`, over TLS trusting `trust`.
    pub fn new(base: &Url, trust: &TrustPolicy) -> Result<Self, String> {
        Resource::new(base, "authorizations", trust).map(Self)
    }
}

impl Payments for HttpPayments {
    fn authorize<'a>(
        &'a self,
        key: &'a str,
        amount_cents: i64,
        currency: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.0.put(
            key,
            serde_json::json!({ "amount_cents": amount_cents, "currency": currency }),
        ))
    }

    fn void<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.0.delete(key))
    }
}

/// A shipping provider at a base URL (its `shipments`).
#[derive(Debug, Clone)]
pub struct HttpShipping(Resource);

impl HttpShipping {
    /// The provider at `base`, over TLS trusting `trust`.
    pub fn new(base: &Url, trust: &TrustPolicy) -> Result<Self, String> {
        Resource::new(base, "shipments", trust).map(Self)
    }
}

impl Shipping for HttpShipping {
    fn create<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.0.put(key, serde_json::json!({ "order_id": key })))
    }

    fn cancel<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.0.delete(key))
    }
}
