//! The inventory's settings (the `[commerce]` section once the system is wired into the
//! binary).

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
