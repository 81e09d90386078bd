//! The inventory's values and the rules on them that need no database.

use crate::error::CommerceError;

/// The longest SKU or warehouse name.
pub const MAX_NAME: usize = 64;
/// The largest quantity in one line or change (well inside `BIGINT`).
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// Checks a SKU, warehouse or region name: 1 to [`MAX_NAME`] ASCII letters, digits, `-`, `_`
/// or `.`.
pub fn check_name(field: &str, value: &str) -> Result<(), CommerceError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CommerceError::invalid(
            field,
            format!("must be 1 to {MAX_NAME} ASCII letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// Checks a quantity to reserve or receive: 1 to [`MAX_QUANTITY`].
pub fn check_quantity(field: &str, quantity: i64) -> Result<(), CommerceError> {
    if (1..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(CommerceError::invalid(
            field,
            format!("must be from 1 to {MAX_QUANTITY}"),
        ))
    }
}

/// One line of a reservation: a quantity of a SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The SKU.
    pub sku: String,
    /// How many.
    pub quantity: i64,
}

/// Checks reservation lines: at least one, each valid, each SKU once. Returns them sorted by
/// SKU, the order every reservation locks stock rows in (so two multi-line reservations never
/// wait on each other in a cycle).
pub fn checked_lines(lines: &[Line]) -> Result<Vec<Line>, CommerceError> {
    if lines.is_empty() {
        return Err(CommerceError::invalid("lines", "needs at least one line"));
    }
    let mut sorted = lines.to_vec();
    for (i, line) in sorted.iter().enumerate() {
        check_name(&format!("lines[{i}].sku"), &line.sku)?;
        check_quantity(&format!("lines[{i}].quantity"), line.quantity)?;
    }
    sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
    if let Some(w) = sorted.windows(2).find(|w| w[0].sku == w[1].sku) {
        return Err(CommerceError::invalid(
            "lines",
            format!(
                "sku {} appears twice; put its quantities in one line",
                w[0].sku
            ),
        ));
    }
    Ok(sorted)
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Holding its stock until it is confirmed, released or expires.
    Held,
    /// Its stock left with the order.
    Confirmed,
    /// Its stock went back (cancelled, failed or expired).
    Released,
    /// Confirmed, then its order was cancelled: its stock came back on hand.
    Returned,
}

impl ReservationStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Released => "released",
            ReservationStatus::Returned => "returned",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => ReservationStatus::Held,
            "confirmed" => ReservationStatus::Confirmed,
            "released" => ReservationStatus::Released,
            "returned" => ReservationStatus::Returned,
            _ => return None,
        })
    }
}

/// Why a reservation's stock went back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The buyer or the order cancelled.
    Cancelled,
    /// A later step of the checkout failed (compensation).
    Failed,
    /// Its TTL passed.
    Expired,
}

impl ReleaseReason {
    /// The name stored in the reservation and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::Cancelled => "cancelled",
            ReleaseReason::Failed => "failed",
            ReleaseReason::Expired => "expired",
        }
    }
}

/// A reservation of one line, in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Its id (UUIDv7).
    pub id: String,
    /// What it reserves for (an order, a checkout).
    pub holder: String,
    /// The SKU.
    pub sku: String,
    /// The warehouse the stock is taken from.
    pub warehouse: String,
    /// The bucket of that warehouse's stock row it took from (0 unless the SKU is split).
    pub bucket: i64,
    /// How many.
    pub quantity: i64,
    /// Where it stands.
    pub status: ReservationStatus,
    /// When it expires while held (unix ms).
    pub expires_at: i64,
}

/// The kinds of ledger entries, and how each moves the two counts of a stock row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Stock arrived: `on_hand + n`.
    Receive,
    /// A reservation took stock: `reserved + n`.
    Reserve,
    /// A reservation gave it back: `reserved - n`.
    Release,
    /// A reservation's stock left with its order: `on_hand - n`, `reserved - n`.
    Confirm,
    /// A count was corrected (n may be negative): `on_hand + n`.
    Adjust,
}

impl EntryKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Receive => "receive",
            EntryKind::Reserve => "reserve",
            EntryKind::Release => "release",
            EntryKind::Confirm => "confirm",
            EntryKind::Adjust => "adjust",
        }
    }

    /// What an entry of `n` does to (`on_hand`, `reserved`).
    pub fn effect(self, n: i64) -> (i64, i64) {
        match self {
            EntryKind::Receive | EntryKind::Adjust => (n, 0),
            EntryKind::Reserve => (0, n),
            EntryKind::Release => (0, -n),
            EntryKind::Confirm => (-n, -n),
        }
    }
}

/// The SQL expressions that sum a ledger's `kind` and `quantity` columns into (`on_hand`,
/// `reserved`), built from [`EntryKind::effect`] so the database and this code agree.
pub fn ledger_sums() -> (String, String) {
    let kinds = [
        EntryKind::Receive,
        EntryKind::Reserve,
        EntryKind::Release,
        EntryKind::Confirm,
        EntryKind::Adjust,
    ];
    let sum = |pick: fn((i64, i64)) -> i64| {
        let arms: String = kinds
            .iter()
            .map(|k| match pick(k.effect(1)) {
                1 => format!(" WHEN '{}' THEN quantity", k.as_str()),
                -1 => format!(" WHEN '{}' THEN -quantity", k.as_str()),
                _ => String::new(),
            })
            .collect();
        format!("CAST(COALESCE(SUM(CASE kind{arms} ELSE 0 END), 0) AS BIGINT)")
    };
    (sum(|(h, _)| h), sum(|(_, r)| r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities_are_checked() {
        assert!(check_name("sku", "TSHIRT-RED.L_2").is_ok());
        for bad in ["", "has space", "ü", &"x".repeat(MAX_NAME + 1)] {
            assert!(check_name("sku", bad).is_err(), "{bad:?}");
        }
        assert!(check_quantity("q", 1).is_ok());
        for bad in [0, -1, MAX_QUANTITY + 1] {
            assert!(check_quantity("q", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_sorted_and_each_sku_appears_once() {
        let line = |sku: &str, quantity| Line {
            sku: sku.to_owned(),
            quantity,
        };
        let sorted = checked_lines(&[line("b", 1), line("a", 2)]).unwrap_or_default();
        assert_eq!(sorted, vec![line("a", 2), line("b", 1)]);
        assert!(checked_lines(&[]).is_err());
        assert!(checked_lines(&[line("a", 1), line("a", 1)]).is_err());
        assert!(checked_lines(&[line("a", 0)]).is_err());
    }

    #[test]
    fn entries_move_the_counts_as_documented() {
        // Receive 10, reserve 3, confirm 2, release 1, adjust -4: 4 on hand, 0 reserved.
        let entries = [
            (EntryKind::Receive, 10),
            (EntryKind::Reserve, 3),
            (EntryKind::Confirm, 2),
            (EntryKind::Release, 1),
            (EntryKind::Adjust, -4),
        ];
        let (on_hand, reserved) = entries.iter().fold((0, 0), |(h, r), (k, n)| {
            let (dh, dr) = k.effect(*n);
            (h + dh, r + dr)
        });
        assert_eq!((on_hand, reserved), (4, 0));
        let (h, r) = ledger_sums();
        assert!(
            h.contains("WHEN 'confirm' THEN -quantity") && h.contains("'adjust' THEN quantity")
        );
        assert!(r.contains("WHEN 'release' THEN -quantity") && !r.contains("'receive'"));
    }
}
