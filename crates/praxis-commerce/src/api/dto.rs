//! Request and response bodies of the commerce routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::catalog::{CartLine, Product};
use crate::domain::order::{Order, OrderLine, Step};
use crate::store::StockLevel;
use crate::workers::inventory::Verified;

/// The pattern of a SKU, warehouse or region name.
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9._-]{1,64}$";
/// The pattern of a currency code.
pub const CURRENCY_PATTERN: &str = r"^[A-Z]{3}$";

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    /// Its name (1 to 200 characters, no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: String,
    /// Its description (up to 10,000 characters).
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
}

/// A change to a product: the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChange {
    /// A new name (no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: Option<String>,
    /// A new description.
    #[schema(max_length = 10000)]
    pub description: Option<String>,
}

/// A new variant of a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    /// Its SKU, unique across the catalog.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Its name ("red, L"; no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: String,
}

/// A price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    /// In cents of the path's currency.
    #[schema(minimum = 0, maximum = 100000000)]
    pub amount_cents: i64,
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    /// The products, by id.
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Paging of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1 to page_max).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The currency a cart is priced in.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CurrencyParams {
    /// ISO 4217 code (default EUR).
    #[param(pattern = r"^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// Something to put in the cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemRequest {
    /// The SKU.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// How many more.
    #[schema(minimum = 1, maximum = 1000000000)]
    pub quantity: i64,
}

/// A new quantity of a SKU in the cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartQuantity {
    /// How many (0 removes the SKU).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub quantity: i64,
}

/// A cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    /// The currency its prices are in.
    pub currency: String,
    /// Its lines, by SKU.
    pub lines: Vec<CartLine>,
    /// The total of its priced lines, in cents.
    pub total_cents: i64,
}

impl CartView {
    /// The view of `lines` priced in `currency`.
    pub fn new(currency: &str, lines: Vec<CartLine>) -> Self {
        let total_cents = lines
            .iter()
            .filter_map(|l| l.unit_cents.map(|u| u.saturating_mul(l.quantity)))
            .fold(0i64, i64::saturating_add);
        Self {
            currency: currency.to_owned(),
            lines,
            total_cents,
        }
    }
}

/// A checkout: of the caller's cart, or ("buy now") of the `lines` given, the cart untouched.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The currency to pay in.
    #[schema(pattern = r"^[A-Z]{3}$")]
    pub currency: String,
    /// The buyer's region: its warehouses are tried first.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub region: Option<String>,
    /// Buy these (1 to 100 lines; a SKU named twice is bought once, the quantities added)
    /// instead of the cart, which stays as it is.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Option<Vec<CheckoutLine>>,
}

/// A line of a "buy now" checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutLine {
    /// The SKU.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// How many.
    #[schema(minimum = 1, maximum = 1000000000)]
    pub quantity: i64,
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// Its id.
    pub id: String,
    /// `confirmed` or `cancelled` once its checkout ended; the step it is at before.
    pub status: Step,
    /// What was bought, at what price.
    pub lines: Vec<OrderLine>,
    /// The total, in cents.
    pub total_cents: i64,
    /// The currency.
    pub currency: String,
    /// Why it was cancelled.
    pub failure: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last changed (unix ms).
    pub updated_at: i64,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        Self {
            id: o.id,
            status: o.step,
            lines: o.lines,
            total_cents: o.total_cents,
            currency: o.currency,
            failure: o.failure,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// The orders, newest first.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A warehouse.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseRequest {
    /// The region it belongs to.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub region: String,
}

/// Stock arriving.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// The warehouse.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse: String,
    /// How many.
    #[schema(minimum = 1, maximum = 1000000000)]
    pub quantity: i64,
}

/// A stocktake correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// The warehouse.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse: String,
    /// The change (0 changes nothing; never below what is reserved).
    #[schema(minimum = -1000000000, maximum = 1000000000)]
    pub delta: i64,
    /// Why.
    #[schema(max_length = 500)]
    pub note: String,
}

/// A split of a SKU's stock in one warehouse into buckets (rows that concurrent buyers
/// reserve from without waiting on each other).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketsRequest {
    /// The warehouse.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse: String,
    /// How many buckets (1 merges them back into one row).
    #[schema(minimum = 1, maximum = 64)]
    pub buckets: i64,
}

/// One warehouse's stock of a SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    /// The warehouse.
    pub warehouse: String,
    /// How many rows (buckets) it is split into.
    pub buckets: i64,
    /// Physically there.
    pub on_hand: i64,
    /// Held by reservations.
    pub reserved: i64,
    /// What a new order can take.
    pub available: i64,
}

impl From<StockLevel> for StockView {
    fn from(s: StockLevel) -> Self {
        Self {
            available: s.available(),
            warehouse: s.warehouse,
            buckets: s.buckets,
            on_hand: s.on_hand,
            reserved: s.reserved,
        }
    }
}

/// A stock row that disagrees with its ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct MismatchView {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse: String,
    /// The row's on hand and reserved.
    pub stock: [i64; 2],
    /// The ledger's on hand and reserved.
    pub ledger: [i64; 2],
    /// What the held reservations add up to.
    pub held: i64,
    /// The buckets whose own row disagrees with the reservations held in it.
    pub buckets: Vec<i64>,
}

/// What the inventory check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyView {
    /// Stock rows checked.
    pub rows: usize,
    /// Whether every row agrees with its ledger and its held reservations.
    pub consistent: bool,
    /// The rows that do not.
    pub mismatches: Vec<MismatchView>,
}

impl From<Verified> for VerifyView {
    fn from(v: Verified) -> Self {
        Self {
            rows: v.rows,
            consistent: v.mismatches.is_empty(),
            mismatches: v
                .mismatches
                .into_iter()
                .map(|m| MismatchView {
                    sku: m.sku,
                    warehouse: m.warehouse,
                    stock: [m.stock.on_hand, m.stock.reserved],
                    ledger: [m.ledger.on_hand, m.ledger.reserved],
                    held: m.held,
                    buckets: m.buckets,
                })
                .collect(),
        }
    }
}
