//! The commerce system's order events as notify reads them: its own tolerant copy of the
//! contract (docs/commerce.md, "Order events"), never the commerce crate's type (systems do
//! not import each other).
//!
//! An event is JSON on the bus topic [`ORDERS_TOPIC`], keyed by the order id:
//! `{"type": "confirmed", "order_id": "0193…", "buyer": "ann", "total_cents": 9998,
//! "currency": "EUR", "reason": null, "at": 1796670072000}`. Unknown fields are ignored, and so
//! is a `type` notify does not know (a newer producer's); a payload without the fields a
//! notification needs is [`Malformed`].
//!
//! From an event come the notification's parts: the template key
//! ([`OrderEventKind::template_key`], `commerce-order-confirmed`), the dedupe key
//! ([`OrderEvent::dedupe_key`], `commerce-order:{order_id}:{type}`) and the template data
//! ([`OrderEvent::template_data`], with the total written in the currency's minor units by
//! [`format_money`]).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Value, json};

/// The bus topic of order events.
pub const ORDERS_TOPIC: &str = "commerce.orders";
/// Longest order id taken (the dedupe key built from it must stay within 255 characters).
pub const MAX_ORDER_ID: usize = 200;
/// Longest currency code taken.
pub const MAX_CURRENCY: usize = 16;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderEventKind {
    /// The order was stored.
    Placed,
    /// Its payment was authorized.
    Paid,
    /// Its shipment was created.
    Shipped,
    /// Its saga ended: stock taken, paid, shipped.
    Confirmed,
    /// The buyer cancelled it (every completed step undone).
    Cancelled,
    /// A step failed and every completed step was undone; the event's `reason` says why.
    Compensated,
}

impl OrderEventKind {
    /// Every kind, in the order of a saga.
    pub const ALL: [OrderEventKind; 6] = [
        OrderEventKind::Placed,
        OrderEventKind::Paid,
        OrderEventKind::Shipped,
        OrderEventKind::Confirmed,
        OrderEventKind::Cancelled,
        OrderEventKind::Compensated,
    ];

    /// The kinds emailed by default (the `order_events` setting).
    pub const EMAILED_BY_DEFAULT: [OrderEventKind; 4] = [
        OrderEventKind::Confirmed,
        OrderEventKind::Shipped,
        OrderEventKind::Cancelled,
        OrderEventKind::Compensated,
    ];

    /// Its name in events and settings (`confirmed`).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEventKind::Placed => "placed",
            OrderEventKind::Paid => "paid",
            OrderEventKind::Shipped => "shipped",
            OrderEventKind::Confirmed => "confirmed",
            OrderEventKind::Cancelled => "cancelled",
            OrderEventKind::Compensated => "compensated",
        }
    }

    /// The kind named `text`, if notify knows it.
    pub fn parse(text: &str) -> Option<OrderEventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The key of its template (`commerce-order-confirmed`): a built-in one until a template
    /// of that name is created through the template API.
    pub fn template_key(self) -> String {
        format!("commerce-order-{}", self.as_str())
    }
}

impl fmt::Display for OrderEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderEventKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text.trim()).ok_or_else(|| {
            format!(
                "{:?} is not an order event type (expected {})",
                text.trim(),
                Self::ALL.map(OrderEventKind::as_str).join(", ")
            )
        })
    }
}

/// An order event that cannot become a notification: not JSON of the contract's shape, or a
/// field out of bounds. Says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed order event: {0}")]
pub struct Malformed(pub String);

/// One order event (unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderEvent {
    /// `placed`, `paid`, `shipped`, `confirmed`, `cancelled` or `compensated` (or a type a
    /// newer producer added: see [`OrderEvent::kind`]).
    #[serde(rename = "type")]
    pub kind_name: String,
    /// The order.
    pub order_id: String,
    /// The buyer's account id: the subscriber notified.
    pub buyer: String,
    /// The order's total, in the currency's minor units.
    pub total_cents: i64,
    /// The currency (ISO 4217, `EUR`).
    pub currency: String,
    /// Why, for `cancelled` and `compensated`.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it happened, unix ms.
    #[serde(default)]
    pub at: Option<i64>,
}

impl OrderEvent {
    /// Reads an event's payload, checking what the notification needs: an order id of 1 to
    /// [`MAX_ORDER_ID`] visible ASCII characters (it goes into the dedupe key), a buyer, a
    /// currency of 1 to [`MAX_CURRENCY`] letters.
    pub fn parse(payload: &[u8]) -> Result<OrderEvent, Malformed> {
        let event: OrderEvent =
            serde_json::from_slice(payload).map_err(|e| Malformed(e.to_string()))?;
        let id = &event.order_id;
        if id.is_empty() || id.len() > MAX_ORDER_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Malformed(format!(
                "order_id must be 1 to {MAX_ORDER_ID} visible ASCII characters"
            )));
        }
        if event.buyer.trim().is_empty() {
            return Err(Malformed("buyer is empty".into()));
        }
        let c = &event.currency;
        if c.is_empty() || c.len() > MAX_CURRENCY || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Malformed(format!(
                "currency must be 1 to {MAX_CURRENCY} ASCII letters"
            )));
        }
        Ok(event)
    }

    /// Its kind, `None` for a type notify does not know.
    pub fn kind(&self) -> Option<OrderEventKind> {
        OrderEventKind::parse(&self.kind_name)
    }

    /// The idempotency key of its notification: `commerce-order:{order_id}:{type}`, the same
    /// for every delivery of the event, so a redelivered event sends nothing more.
    pub fn dedupe_key(&self) -> String {
        format!("commerce-order:{}:{}", self.order_id, self.kind_name)
    }

    /// The template data: `order_id`, `buyer`, `type`, `total` (`99.98 EUR`), `total_cents`,
    /// `currency`, `reason` (null when none) and `at` (RFC 3339, null when unknown).
    pub fn template_data(&self) -> Value {
        let at = self
            .at
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_string());
        json!({
            "order_id": self.order_id,
            "buyer": self.buyer,
            "type": self.kind_name,
            "total": format_money(self.total_cents, &self.currency),
            "total_cents": self.total_cents,
            "currency": self.currency,
            "reason": self.reason.as_deref().filter(|r| !r.trim().is_empty()),
            "at": at,
        })
    }
}

/// Digits after the decimal point of `currency`'s minor unit (ISO 4217): 0 for the yen and
/// the others without one, 3 for the dinars that have three, else 2.
pub fn minor_digits(currency: &str) -> u32 {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let code = currency.to_ascii_uppercase();
    if ZERO.contains(&code.as_str()) {
        0
    } else if THREE.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

/// An amount in minor units written with its currency: `9998, "EUR"` is `99.98 EUR`, `500,
/// "JPY"` is `500 JPY`.
pub fn format_money(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let code = currency.to_ascii_uppercase();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs} {code}");
    }
    let unit = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$} {code}",
        abs / unit,
        abs % unit,
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_write_their_names() {
        for k in OrderEventKind::ALL {
            assert_eq!(k.as_str().parse::<OrderEventKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(
            OrderEventKind::Confirmed.template_key(),
            "commerce-order-confirmed"
        );
        let err = "refunded".parse::<OrderEventKind>().expect_err("unknown");
        assert!(err.contains("compensated"), "{err}");
    }

    #[test]
    fn events_parse_tolerantly() {
        let e = OrderEvent::parse(
            br#"{"type":"compensated","order_id":"o-1","buyer":"ann","total_cents":9998,
                 "currency":"EUR","reason":"payment declined","at":1796670072000,"extra":[1]}"#,
        )
        .expect("parses");
        assert_eq!(e.kind(), Some(OrderEventKind::Compensated));
        assert_eq!(e.dedupe_key(), "commerce-order:o-1:compensated");
        let data = e.template_data();
        assert_eq!(data["total"], "99.98 EUR");
        assert_eq!(data["reason"], "payment declined");
        assert_eq!(data["at"], "2026-12-07T19:01:12Z");
        let e = OrderEvent::parse(
            br#"{"type":"refunded","order_id":"o-1","buyer":"ann","total_cents":1,"currency":"EUR"}"#,
        )
        .expect("an unknown type parses");
        assert_eq!(e.kind(), None);
        assert_eq!(e.template_data()["reason"], Value::Null);
        assert_eq!(e.template_data()["at"], Value::Null);
    }

    #[test]
    fn malformed_events_say_why() {
        for bad in [
            &b"not json"[..],
            br#"{"type":"confirmed"}"#,
            br#"{"type":"confirmed","order_id":"","buyer":"ann","total_cents":1,"currency":"EUR"}"#,
            br#"{"type":"confirmed","order_id":"a b","buyer":"ann","total_cents":1,"currency":"EUR"}"#,
            br#"{"type":"confirmed","order_id":"o","buyer":" ","total_cents":1,"currency":"EUR"}"#,
            br#"{"type":"confirmed","order_id":"o","buyer":"ann","total_cents":"1","currency":"EUR"}"#,
            br#"{"type":"confirmed","order_id":"o","buyer":"ann","total_cents":1,"currency":"E1"}"#,
            br#"[1, 2]"#,
        ] {
            assert!(
                OrderEvent::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(
            r#"{{"type":"paid","order_id":"{}","buyer":"b","total_cents":1,"currency":"EUR"}}"#,
            "x".repeat(MAX_ORDER_ID + 1)
        );
        assert!(OrderEvent::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn money_uses_the_currency_minor_unit() {
        assert_eq!(format_money(9998, "EUR"), "99.98 EUR");
        assert_eq!(format_money(5, "usd"), "0.05 USD");
        assert_eq!(format_money(500, "JPY"), "500 JPY");
        assert_eq!(format_money(1234, "KWD"), "1.234 KWD");
        assert_eq!(format_money(-150, "EUR"), "-1.50 EUR");
        assert_eq!(format_money(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }
}
