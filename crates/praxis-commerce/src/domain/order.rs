//! Orders and the steps of their checkout saga.

use serde::{Deserialize, Serialize};

use super::model::{Line, check_name, check_quantity, checked_lines};
use crate::error::CommerceError;

/// The largest unit price, in cents.
pub const MAX_UNIT_CENTS: i64 = 100_000_000;

/// One line of an order: a quantity of a SKU at a unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    /// The SKU.
    pub sku: String,
    /// How many.
    pub quantity: i64,
    /// The price of one, in cents of the order's currency.
    pub unit_cents: i64,
}

/// A checkout as the buyer asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The buyer's account.
    pub buyer: String,
    /// The buyer's region: its warehouses are tried first.
    pub region: Option<String>,
    /// ISO 4217 code, three capital letters.
    pub currency: String,
    /// What is bought.
    pub lines: Vec<OrderLine>,
    /// The `Idempotency-Key` of the request: the same key gives the same order.
    pub idempotency_key: Option<String>,
}

impl NewOrder {
    /// Checks the order and returns its lines as reservation lines and its total in cents.
    pub fn checked(&self) -> Result<(Vec<Line>, i64), CommerceError> {
        check_name("buyer", &self.buyer)?;
        if let Some(region) = &self.region {
            check_name("region", region)?;
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CommerceError::invalid(
                "currency",
                "must be an ISO 4217 code: three capital letters",
            ));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(CommerceError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let mut total: i64 = 0;
        for (i, l) in self.lines.iter().enumerate() {
            check_quantity(&format!("lines[{i}].quantity"), l.quantity)?;
            if !(0..=MAX_UNIT_CENTS).contains(&l.unit_cents) {
                return Err(CommerceError::invalid(
                    format!("lines[{i}].unit_cents"),
                    format!("must be from 0 to {MAX_UNIT_CENTS}"),
                ));
            }
            total = total.saturating_add(l.quantity.saturating_mul(l.unit_cents));
        }
        let lines: Vec<Line> = self
            .lines
            .iter()
            .map(|l| Line {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
        Ok((checked_lines(&lines)?, total))
    }
}

/// Where an order's checkout saga stands. Forward: placed, reserved, authorized, shipped,
/// confirmed. On a failure or a cancellation at any step before confirmed: compensating (each
/// completed step undone in reverse), then cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Stored; nothing reserved yet.
    Placed,
    /// Its stock is reserved.
    Reserved,
    /// Its payment is authorized.
    Authorized,
    /// Its shipment is created.
    Shipped,
    /// Done: reservations confirmed.
    Confirmed,
    /// Undoing the completed steps.
    Compensating,
    /// Done: nothing held, nothing charged.
    Cancelled,
}

impl Step {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Placed => "placed",
            Step::Reserved => "reserved",
            Step::Authorized => "authorized",
            Step::Shipped => "shipped",
            Step::Confirmed => "confirmed",
            Step::Compensating => "compensating",
            Step::Cancelled => "cancelled",
        }
    }

    /// The step named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "placed" => Step::Placed,
            "reserved" => Step::Reserved,
            "authorized" => Step::Authorized,
            "shipped" => Step::Shipped,
            "confirmed" => Step::Confirmed,
            "compensating" => Step::Compensating,
            "cancelled" => Step::Cancelled,
            _ => return None,
        })
    }

    /// Whether the saga has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Step::Confirmed | Step::Cancelled)
    }

    /// The step after this one when it succeeds.
    pub fn next(self) -> Step {
        match self {
            Step::Placed => Step::Reserved,
            Step::Reserved => Step::Authorized,
            Step::Authorized => Step::Shipped,
            Step::Shipped | Step::Confirmed => Step::Confirmed,
            Step::Compensating | Step::Cancelled => Step::Cancelled,
        }
    }
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id (UUIDv7).
    pub id: String,
    /// The buyer.
    pub buyer: String,
    /// The buyer's region.
    pub region: Option<String>,
    /// The currency.
    pub currency: String,
    /// The total, in cents.
    pub total_cents: i64,
    /// What is bought.
    pub lines: Vec<OrderLine>,
    /// Where its saga stands.
    pub step: Step,
    /// The payment provider's authorization, once given.
    pub payment_auth: Option<String>,
    /// The shipping provider's shipment, once created.
    pub shipment: Option<String>,
    /// Why it was cancelled.
    pub failure: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last changed (unix ms).
    pub updated_at: i64,
}

/// The event every order change publishes on [`ORDERS_TOPIC`] (JSON): the contract other
/// systems (notifications) consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// `placed`, `paid`, `shipped`, `confirmed`, `cancelled` (the buyer cancelled) or
    /// `compensated` (a step failed and every completed step was undone).
    #[serde(rename = "type")]
    pub kind: String,
    /// The order.
    pub order_id: String,
    /// The buyer's account.
    pub buyer: String,
    /// The order's total, in cents.
    pub total_cents: i64,
    /// Its currency.
    pub currency: String,
    /// Why, for `cancelled` and `compensated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (unix ms).
    pub at: i64,
}

/// The bus topic of order events.
pub const ORDERS_TOPIC: &str = "commerce.orders";

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lines: Vec<OrderLine>) -> NewOrder {
        NewOrder {
            buyer: "ann".into(),
            region: None,
            currency: "EUR".into(),
            lines,
            idempotency_key: None,
        }
    }

    fn line(sku: &str, quantity: i64, unit_cents: i64) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            quantity,
            unit_cents,
        }
    }

    #[test]
    fn totals_and_checks() {
        let (lines, total) = order(vec![line("B", 2, 150), line("A", 1, 99)])
            .checked()
            .unwrap_or_default();
        assert_eq!(total, 399);
        assert_eq!(lines[0].sku, "A");
        let field = |o: NewOrder| match o.checked() {
            Err(CommerceError::Invalid { field, .. }) => field,
            other => format!("{other:?}"),
        };
        assert_eq!(field(order(vec![line("A", 1, -1)])), "lines[0].unit_cents");
        assert_eq!(field(order(vec![])), "lines");
        let mut bad = order(vec![line("A", 1, 1)]);
        bad.currency = "eur".into();
        assert_eq!(field(bad), "currency");
    }

    #[test]
    fn steps_go_forward_then_end() {
        let mut s = Step::Placed;
        let mut seen = vec![s];
        while !s.is_final() {
            s = s.next();
            seen.push(s);
        }
        assert_eq!(
            seen,
            [
                Step::Placed,
                Step::Reserved,
                Step::Authorized,
                Step::Shipped,
                Step::Confirmed
            ]
        );
        assert_eq!(Step::Compensating.next(), Step::Cancelled);
        for s in seen {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
    }
}
