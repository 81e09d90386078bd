//! Orders as documents: their shape, their ids (which carry the region), their status
//! changes, and the checks on what a caller sends.

use serde::{Deserialize, Serialize};

use crate::error::OrdersError;
use crate::settings::valid_name;

/// The collection of orders (keyed by order id).
pub const ORDERS: &str = "orders";
/// The collection of the per-user index (keyed by user id, one entry per order).
pub const USER_ORDERS: &str = "user_orders";

/// Most lines in one order.
pub const MAX_LINES: usize = 100;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Recorded.
    Placed,
    /// Payment taken.
    Paid,
    /// On its way.
    Shipped,
    /// Received.
    Delivered,
    /// Called off (before shipping).
    Cancelled,
}

impl OrderStatus {
    /// Whether an order may go from `self` to `next`: forward along placed, paid, shipped,
    /// delivered; cancelled from placed or paid. Setting the status it has is allowed (a
    /// retried request).
    pub fn may_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        self == next
            || matches!(
                (self, next),
                (Placed, Paid)
                    | (Paid, Shipped)
                    | (Shipped, Delivered)
                    | (Placed, Cancelled)
                    | (Paid, Cancelled)
            )
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    /// The SKU (1 to 64 characters, no control characters).
    #[schema(min_length = 1, max_length = 64, pattern = "^[^\\x00-\\x1F\\x7F]*$")]
    pub sku: String,
    /// How many (1 to 10000).
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
    /// Price of one, in the currency's minor unit (0 to 1000000000).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub unit_price_cents: i64,
}

/// An order as stored (the document of [`ORDERS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    /// `<region>_<UUIDv7>`: the region is part of the id, so a read needs no directory.
    pub id: String,
    /// Whose order.
    pub user_id: String,
    /// The user's home region.
    pub region: String,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of the lines, in the currency's minor unit.
    pub total_cents: i64,
    /// What was ordered.
    pub lines: Vec<OrderItem>,
    /// When it was placed (unix ms).
    pub created_at: i64,
    /// Last status change (unix ms).
    pub updated_at: i64,
}

/// An entry of a user's order list (the document of [`USER_ORDERS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderEntry {
    /// The order.
    pub order_id: String,
    /// Its status when the index last saw it.
    pub status: OrderStatus,
    /// Its currency.
    pub currency: String,
    /// Its total.
    pub total_cents: i64,
    /// When it was placed (unix ms).
    pub created_at: i64,
    /// The version of the order it was made from: an older one never replaces it.
    pub version: i64,
}

impl OrderEntry {
    /// The entry of `order` at its stored `version`.
    pub fn of(order: &Order, version: i64) -> Self {
        OrderEntry {
            order_id: order.id.clone(),
            status: order.status,
            currency: order.currency.clone(),
            total_cents: order.total_cents,
            created_at: order.created_at,
            version,
        }
    }
}

/// A new order's id in `region`.
pub fn new_order_id(region: &str) -> String {
    format!("{region}_{}", uuid::Uuid::now_v7().simple())
}

/// The region an order id names, when it is an order id at all (`<region>_<32 hex>`).
pub fn region_of(id: &str) -> Option<&str> {
    let (region, uuid) = id.rsplit_once('_')?;
    (valid_name(region) && uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(region)
}

/// The id of a user's index entry for an order: the user, then the order (its UUIDv7 sorts
/// by time, so the list reads newest first in id order).
pub fn entry_id(user_id: &str, order_id: &str) -> String {
    format!("{user_id}/{order_id}")
}

/// Checks a new order's lines and currency; its total.
pub fn check_new(lines: &[OrderItem], currency: &str) -> Result<i64, OrdersError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(OrdersError::invalid(
            "currency",
            "must be an ISO 4217 code of three capital letters (e.g. EUR)",
        ));
    }
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(OrdersError::invalid(
            "lines",
            format!("must hold 1 to {MAX_LINES} lines"),
        ));
    }
    let mut total: i64 = 0;
    for (i, line) in lines.iter().enumerate() {
        let chars = line.sku.chars().count();
        if !(1..=64).contains(&chars) || line.sku.chars().any(|c| c < ' ' || c == '\u{7f}') {
            return Err(OrdersError::invalid(
                format!("lines[{i}].sku"),
                "must be 1 to 64 printable characters",
            ));
        }
        if !(1..=10_000).contains(&line.quantity) {
            return Err(OrdersError::invalid(
                format!("lines[{i}].quantity"),
                "must be from 1 to 10000",
            ));
        }
        if !(0..=1_000_000_000).contains(&line.unit_price_cents) {
            return Err(OrdersError::invalid(
                format!("lines[{i}].unit_price_cents"),
                "must be from 0 to 1000000000",
            ));
        }
        total += line.quantity * line.unit_price_cents;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_names_its_region() {
        let id = new_order_id("ap_south");
        assert_eq!(region_of(&id), Some("ap_south"));
        assert_eq!(region_of("eu_0193"), None);
        assert_eq!(region_of("EU_0193a1b2c3d4e5f60718293a4b5c6d7e"), None);
        assert_eq!(region_of("nounderscore"), None);
    }

    #[test]
    fn status_moves_forward_or_cancels_before_shipping() {
        assert!(OrderStatus::Placed.may_become(OrderStatus::Paid));
        assert!(OrderStatus::Paid.may_become(OrderStatus::Cancelled));
        assert!(OrderStatus::Shipped.may_become(OrderStatus::Shipped));
        assert!(!OrderStatus::Shipped.may_become(OrderStatus::Cancelled));
        assert!(!OrderStatus::Delivered.may_become(OrderStatus::Placed));
        assert!(!OrderStatus::Cancelled.may_become(OrderStatus::Paid));
    }
}
