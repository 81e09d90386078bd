//! The commerce system's settings: its `[commerce]` section ([`CommerceSettings`]) and the
//! parts each use case takes from it.

use std::time::Duration;

/// How a reservation takes stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReserveMode {
    /// One conditional update (`reserved = reserved + n WHERE on_hand - reserved >= n`): the
    /// database decides, so concurrent buyers can never take more than there is.
    #[default]
    Conditional,
    /// A lab setting, never for production: read the available stock, then write the new
    /// count computed in the process (the read-modify-write that oversells under concurrent
    /// orders, as dotnet/eShop#888 reports). Kept to measure the difference.
    NaiveReadModifyWrite,
}

/// The inventory's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySettings {
    /// How long a reservation holds its stock before the sweeper releases it.
    pub reservation_ttl: Duration,
    /// How often the sweeper looks for expired reservations.
    pub sweep_interval: Duration,
    /// How a reservation takes stock.
    pub reserve_mode: ReserveMode,
}

impl Default for InventorySettings {
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::from_secs(10 * 60),
            sweep_interval: Duration::from_secs(5),
            reserve_mode: ReserveMode::Conditional,
        }
    }
}

/// Scope of the buyer routes (cart, checkout, orders) for API keys; an account acts for
/// itself without it.
pub const COMMERCE_BUY: &str = "commerce:buy";

/// Everything the commerce system can be tuned with: the `[commerce]` section.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommerceSettings {
    /// How long a checkout's reservation holds its stock.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub reservation_ttl: Duration,
    /// How often expired reservations are released.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub sweep_interval: Duration,
    /// `conditional` (never oversells) or `naive` (a lab setting: read, then write the
    /// computed count; oversells under concurrent buyers).
    pub reserve_mode: String,
    /// How long a provider call may take before the checkout gives up on it and compensates.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub step_timeout: Duration,
    /// Tries of a provider call that answers "unavailable".
    pub step_attempts: u32,
    /// How long a process holds an order's checkout without renewing it.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub saga_lease: Duration,
    /// How often checkouts whose process died are resumed.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub recover_interval: Duration,
    /// How long a process trusts a product's cached version (the longest a price change
    /// stays invisible to a process that missed its invalidation).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub version_ttl: Duration,
    /// Products kept in each process's cache.
    pub cache_capacity: u64,
    /// Most items in one page of a listing.
    pub page_max: u32,
    /// The payment provider's base URL (HTTP contract in docs/commerce.md); unset, the
    /// built-in provider that authorizes every payment.
    pub payment_url: Option<String>,
    /// The shipping provider's base URL; unset, the built-in provider that accepts every
    /// shipment.
    pub shipping_url: Option<String>,
}

impl Default for CommerceSettings {
    fn default() -> Self {
        let inventory = InventorySettings::default();
        Self {
            reservation_ttl: inventory.reservation_ttl,
            sweep_interval: inventory.sweep_interval,
            reserve_mode: "conditional".to_owned(),
            step_timeout: Duration::from_secs(5),
            step_attempts: 3,
            saga_lease: Duration::from_secs(30),
            recover_interval: Duration::from_secs(5),
            version_ttl: Duration::from_millis(500),
            cache_capacity: 10_000,
            page_max: 100,
            payment_url: None,
            shipping_url: None,
        }
    }
}

impl CommerceSettings {
    /// The inventory's part.
    pub fn inventory(&self) -> InventorySettings {
        InventorySettings {
            reservation_ttl: self.reservation_ttl,
            sweep_interval: self.sweep_interval,
            reserve_mode: if self.reserve_mode == "naive" {
                ReserveMode::NaiveReadModifyWrite
            } else {
                ReserveMode::Conditional
            },
        }
    }

    /// The checkout saga's part.
    pub fn saga(&self) -> crate::SagaSettings {
        crate::SagaSettings {
            step_timeout: self.step_timeout,
            attempts: self.step_attempts,
            lease: self.saga_lease,
            recover_interval: self.recover_interval,
        }
    }

    /// The catalog's part.
    pub fn catalog(&self) -> crate::CatalogSettings {
        crate::CatalogSettings {
            version_ttl: self.version_ttl,
            cache_capacity: self.cache_capacity,
            ..crate::CatalogSettings::default()
        }
    }
}

/// The documented keys of the `[commerce]` section.
pub const KEYS: &[praxis_http::system::Key] = &[
    praxis_http::system::Key::new(
        "reservation_ttl",
        "how long a checkout's reservation holds its stock (1s to 1d)",
    ),
    praxis_http::system::Key::new(
        "sweep_interval",
        "how often expired reservations are released (100ms to 1h)",
    ),
    praxis_http::system::Key::new(
        "reserve_mode",
        "conditional (never oversells) or naive (a lab setting that oversells under concurrency)",
    ),
    praxis_http::system::Key::new(
        "step_timeout",
        "longest provider call before the checkout compensates (10ms to 5m)",
    ),
    praxis_http::system::Key::new(
        "step_attempts",
        "tries of a provider call that answers unavailable (1 to 10)",
    ),
    praxis_http::system::Key::new(
        "saga_lease",
        "how long a process holds an order's checkout without renewing it (1s to 1h)",
    ),
    praxis_http::system::Key::new(
        "recover_interval",
        "how often checkouts whose process died are resumed (100ms to 1h)",
    ),
    praxis_http::system::Key::new(
        "version_ttl",
        "longest a process trusts a product's cached version (10ms to 1s)",
    ),
    praxis_http::system::Key::new(
        "cache_capacity",
        "products kept in each process's cache (1 to 10000000)",
    ),
    praxis_http::system::Key::new("page_max", "most items in one page (1 to 1000)"),
    praxis_http::system::Key::new(
        "payment_url",
        "the payment provider's base URL (http or https; PUT/DELETE authorizations/{order})",
    )
    .unset("the built-in provider that authorizes every payment"),
    praxis_http::system::Key::new(
        "shipping_url",
        "the shipping provider's base URL (http or https; PUT/DELETE shipments/{order})",
    )
    .unset("the built-in provider that accepts every shipment"),
];

/// A provider's base URL: absolute, `http` or `https`, no credentials, query or fragment.
pub fn provider_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment (e.g. https://pay.example/v1)".to_owned());
    }
    Ok(url)
}

fn within(d: Duration, min: Duration, max: Duration) -> bool {
    (min..=max).contains(&d)
}

impl praxis_http::system::Settings for CommerceSettings {
    fn validate(&self) -> Result<(), Vec<praxis_http::system::SettingError>> {
        const MS: Duration = Duration::from_millis(1);
        const SEC: Duration = Duration::from_secs(1);
        const HOUR: Duration = Duration::from_secs(3600);
        let mut c = praxis_http::system::Checks::new();
        c.require(
            within(self.reservation_ttl, SEC, 24 * HOUR),
            "reservation_ttl",
            "must be from 1s to 1d (e.g. 10m)",
        );
        c.require(
            within(self.sweep_interval, 100 * MS, HOUR),
            "sweep_interval",
            "must be from 100ms to 1h (e.g. 5s)",
        );
        c.require(
            matches!(self.reserve_mode.as_str(), "conditional" | "naive"),
            "reserve_mode",
            "must be conditional or naive",
        );
        c.require(
            within(self.step_timeout, 10 * MS, 300 * SEC),
            "step_timeout",
            "must be from 10ms to 5m (e.g. 5s)",
        );
        c.require(
            (1..=10).contains(&self.step_attempts),
            "step_attempts",
            "must be from 1 to 10 (e.g. 3)",
        );
        c.require(
            within(self.saga_lease, SEC, HOUR),
            "saga_lease",
            "must be from 1s to 1h (e.g. 30s)",
        );
        c.require(
            within(self.recover_interval, 100 * MS, HOUR),
            "recover_interval",
            "must be from 100ms to 1h (e.g. 5s)",
        );
        c.require(
            within(self.version_ttl, 10 * MS, SEC),
            "version_ttl",
            "must be from 10ms to 1s (e.g. 500ms): a price change must reach every process within a second",
        );
        c.require(
            (1..=10_000_000).contains(&self.cache_capacity),
            "cache_capacity",
            "must be from 1 to 10000000",
        );
        c.require(
            (1..=1_000).contains(&self.page_max),
            "page_max",
            "must be from 1 to 1000 (e.g. 100)",
        );
        for (key, value) in [
            ("payment_url", &self.payment_url),
            ("shipping_url", &self.shipping_url),
        ] {
            if let Some(Err(e)) = value.as_deref().map(provider_url) {
                c.fail(key, e);
            }
        }
        c.finish()
    }
}
