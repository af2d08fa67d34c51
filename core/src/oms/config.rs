//! Order manager configuration (`[oms]`).

use serde::{Deserialize, Serialize};

use super::error::OmsConfigError;

/// Nanoseconds in a UTC day.
pub const DAY_NS: u64 = 86_400_000_000_000;

/// Which price the engine feeds to
/// [`OrderManager::on_trigger_price`](super::OrderManager::on_trigger_price) to trigger stops.
/// Prices of another source are ignored.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSource {
    /// Last trade price (the default).
    #[default]
    LastTrade,
    /// Mid of the best bid and offer.
    Mid,
    /// The venue's mark price.
    Mark,
}

/// Who ends Day and GTD orders that are at the venue when their time comes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryMode {
    /// The manager: [`OrderManager::on_time`](super::OrderManager::on_time) requests a cancel
    /// (a `PendingCancel` event the engine sends on) and the venue's confirmation ends the
    /// order as `Expired`.
    #[default]
    Local,
    /// The venue enforces the time in force itself and reports `Expired`; the manager only
    /// expires the stops it holds.
    Venue,
}

/// Order manager settings. Every key has a default; the struct deserializes from the
/// `[oms]` table of the engine configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OmsConfig {
    /// Accounts `0..accounts` are known; others are rejected with `UnknownAccount`. The
    /// engine may raise it later with
    /// [`OrderManager::set_accounts`](super::OrderManager::set_accounts).
    pub accounts: u32,
    /// Maximum orders not yet done (working, pending or armed); more are rejected with
    /// `MaxOpenOrders`. The order table is allocated for this many plus `done_retention`.
    pub max_live_orders: u32,
    /// Done orders kept in memory (for queries and late reports) before their slot is
    /// reused, oldest first.
    pub done_retention: u32,
    /// Client order ids expected per session: the size the client-id index is allocated
    /// with (it grows beyond, amortised, until the next session reset).
    pub session_orders_capacity: u32,
    /// Fills expected per session: the size the execution-id index is allocated with.
    pub session_fills_capacity: u32,
    /// Untriggered stops expected per instrument and side (pre-allocated).
    pub stops_capacity: u32,
    /// The price that triggers stops.
    pub trigger_source: TriggerSource,
    /// End of the trading day for `Day` orders, in nanoseconds after 00:00 UTC
    /// (`0..86_400_000_000_000`); a Day order expires at the first such instant strictly
    /// after it is created.
    pub day_session_end_utc_ns: u64,
    /// Who expires Day/GTD orders at the venue.
    pub expiry: ExpiryMode,
    /// Sanity bound on an order's size in lots; larger orders are "absurd" and rejected with
    /// `MaxOrderQty` (business limits are the risk module's).
    pub max_order_lots: i64,
    /// Sanity bound on a limit or stop price in ticks; higher prices are rejected with
    /// `InvalidPrice`.
    pub max_price_ticks: i64,
}

impl Default for OmsConfig {
    fn default() -> Self {
        Self {
            accounts: 1,
            max_live_orders: 16_384,
            done_retention: 4_096,
            session_orders_capacity: 65_536,
            session_fills_capacity: 65_536,
            stops_capacity: 64,
            trigger_source: TriggerSource::LastTrade,
            day_session_end_utc_ns: 0,
            expiry: ExpiryMode::Local,
            max_order_lots: 1_000_000_000_000,
            max_price_ticks: 1_000_000_000_000_000,
        }
    }
}

impl OmsConfig {
    /// Checks every value (call at start-up; [`OrderManager::new`](super::OrderManager::new)
    /// does).
    ///
    /// # Errors
    ///
    /// The first key whose value is out of range, with the fix.
    pub fn validate(&self) -> Result<(), OmsConfigError> {
        let bad = |key, value: String, fix| Err(OmsConfigError { key, value, fix });
        if self.max_live_orders == 0 {
            return bad("max_live_orders", "0".into(), "must be at least 1");
        }
        if u64::from(self.max_live_orders) + u64::from(self.done_retention) >= u64::from(u32::MAX) {
            return bad(
                "max_live_orders",
                self.max_live_orders.to_string(),
                "max_live_orders + done_retention must be below 4294967295",
            );
        }
        if self.day_session_end_utc_ns >= DAY_NS {
            return bad(
                "day_session_end_utc_ns",
                self.day_session_end_utc_ns.to_string(),
                "must be below 86400000000000 (nanoseconds after midnight UTC)",
            );
        }
        if self.max_order_lots < 1 {
            return bad(
                "max_order_lots",
                self.max_order_lots.to_string(),
                "must be at least 1",
            );
        }
        if self.max_price_ticks < 1 {
            return bad(
                "max_price_ticks",
                self.max_price_ticks.to_string(),
                "must be at least 1",
            );
        }
        Ok(())
    }

    /// The expiry time of a Day order created at `now`: the first session end strictly after
    /// `now` (saturating at the end of `u64` time).
    pub const fn day_expiry(&self, now: u64) -> u64 {
        let midnight = now - now % DAY_NS;
        let end = midnight.saturating_add(self.day_session_end_utc_ns);
        if end > now {
            end
        } else {
            end.saturating_add(DAY_NS)
        }
    }
}
