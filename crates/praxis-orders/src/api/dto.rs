//! What the order and shard routes take and give.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::admin::ShardView;
use crate::domain::{OrderEntry, OrderItem, OrderStatus};

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// My home region, on my first order (default: the configured one); later orders must
    /// name the same one or none.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,15}$")]
    pub region: Option<String>,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    /// What to order (1 to 100 lines).
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderItem>,
}

/// A status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status.
    pub status: OrderStatus,
}

/// A page of my orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryPage {
    /// The orders, newest first.
    pub items: Vec<OrderEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The report's scope.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Only this region (default: every region).
    pub region: Option<String>,
    /// How long to wait for each shard, in ms (10 to 60000; default: the configured one).
    #[param(minimum = 10, maximum = 60000)]
    pub timeout_ms: Option<u64>,
}

/// A change of a region's ring: `add` one shard, or move to a `target` ring.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// A shard to add (1 to 16 of a-z 0-9 _).
    #[schema(pattern = "^[a-z][a-z0-9_]{0,15}$")]
    pub add: Option<String>,
    /// Its virtual nodes (1 to 4096; default: the configured count).
    #[schema(minimum = 1, maximum = 4096)]
    pub vnodes: Option<u32>,
    /// The whole ring to move to (instead of `add`): 1 to 1024 shards and their vnodes,
    /// each registered (added before) or 404.
    #[schema(min_items = 1, max_items = 1024)]
    pub target: Option<Vec<ShardView>>,
    /// Say what would move, move nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// How long an abort waits for the move to be undone.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AbortParams {
    /// Most ms to wait (0 to 60000; default 10000).
    #[param(minimum = 0, maximum = 60000)]
    pub wait_ms: Option<u64>,
}

/// An order made elsewhere, stored under its own id (`PUT /api/v1/orders/{id}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedOrder {
    /// Whose order (its home region must be the id's region; 1 to 128 characters, no /).
    #[schema(pattern = "^[^/]{1,128}$")]
    pub user_id: String,
    /// Its status (default placed).
    pub status: Option<OrderStatus>,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    /// What was ordered (1 to 100 lines).
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderItem>,
    /// When it was placed (unix ms; default now).
    #[schema(minimum = 0)]
    pub created_at: Option<i64>,
}
