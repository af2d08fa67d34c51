//! One order as the manager holds it, and the small enums that describe its state.

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, OrderFlags, OrderId, OrderType, Price, Qty, Side,
    TimeInForce, UnixNanos,
};
use serde::{Deserialize, Serialize};

/// "No slot" in the intrusive per-account list.
pub(super) const NIL: u32 = u32::MAX;

/// Where an order is in its lifecycle, apart from an outstanding cancel or replace request
/// (see [`Pending`]). The FIX-style visible state is [`Order::visible_state`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// A stop or stop-limit order held by the manager until its trigger price trades. It is
    /// not at the venue: cancels, replaces and expiry are applied locally and at once.
    Armed,
    /// Sent (or to be sent) to the venue, not yet acknowledged.
    PendingNew,
    /// Acknowledged by the venue and working, nothing filled.
    New,
    /// Working with part of the quantity filled.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
    /// Canceled (terminal).
    Canceled,
    /// Rejected by the venue (terminal). Orders rejected by validation or risk are never
    /// created, so they never have this status.
    Rejected,
    /// Expired: IOC/FOK remainder, Day end or GTD time (terminal).
    Expired,
}

impl OrderStatus {
    /// True for Filled, Canceled, Rejected and Expired: the order never changes again.
    #[inline]
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Canceled | Self::Rejected | Self::Expired
        )
    }

    /// True while the venue may hold the order (PendingNew, New, PartiallyFilled).
    #[inline]
    pub const fn is_at_venue(self) -> bool {
        matches!(self, Self::PendingNew | Self::New | Self::PartiallyFilled)
    }
}

/// Which side of the book gets priority after a replace. The manager records it (and moves
/// [`Order::priority_at`] when the venue confirms a replace that loses priority); the venue
/// applies it.
///
/// The rule: a price change or a quantity increase loses time priority (the order goes to
/// the back of its new level); a quantity decrease with the same price keeps it. A replace
/// that only changes the client order id keeps it too.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PriorityEffect {
    /// The order keeps its place in the queue.
    Keeps,
    /// The order goes to the back of the queue at its (new) price.
    Loses,
}

impl PriorityEffect {
    /// The rule above, for a replace from (`old_price`, `old_qty`) to (`price`, `qty`).
    #[inline]
    pub fn of(old_price: Price, old_qty: Qty, price: Price, qty: Qty) -> Self {
        if price != old_price || qty > old_qty {
            Self::Loses
        } else {
            Self::Keeps
        }
    }
}

/// A replace the venue has not answered yet: the order's values once it is confirmed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceRequest {
    /// New limit price (0 for market and triggered stop orders).
    pub price: Price,
    /// New stop price (unchanged once triggered; 0 for non-stop orders).
    pub stop_price: Price,
    /// New total quantity (including what is already filled).
    pub qty: Qty,
    /// The client order id the order takes when the replace is confirmed (the current one
    /// if the command did not give a new one). Reserved from the moment of the request.
    pub client_order_id: ClientOrderId,
    /// Queue priority after the replace.
    pub priority: PriorityEffect,
}

/// The cancel or replace request outstanding at the venue; at most one at a time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Pending {
    /// None.
    #[default]
    None,
    /// A cancel. `expiring` is set when the manager itself requested it because the order's
    /// Day or GTD time came: the venue's confirmation then ends the order as Expired.
    Cancel {
        /// Requested by expiry rather than by a client.
        expiring: bool,
    },
    /// A replace.
    Replace(ReplaceRequest),
}

impl Pending {
    /// True for [`Pending::None`].
    #[inline]
    pub const fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

/// A cancel to request as soon as the outstanding replace is answered (the manager keeps
/// one request in flight at a time).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Deferred {
    /// Nothing waiting.
    #[default]
    None,
    /// A cancel from [`OrderManager::cancel_all`](super::OrderManager::cancel_all).
    Cancel,
    /// A cancel because the order's expiry time came.
    Expire,
}

/// Who provided the liquidity of a fill.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Liquidity {
    /// The venue did not say.
    #[default]
    Unknown = 0,
    /// Our order was resting (maker).
    Maker = 1,
    /// Our order took liquidity (taker).
    Taker = 2,
}

impl Liquidity {
    /// The code of [`aaiti_model::OrderEvent::liquidity`].
    #[inline]
    pub const fn code(self) -> u8 {
        self as u8
    }
}

/// One execution reported by the venue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The venue's execution id; non-zero and unique per order (duplicates are rejected).
    pub exec_id: u64,
    /// Fill price (price scale).
    pub price: Price,
    /// Fill quantity (quantity scale), positive.
    pub qty: Qty,
    /// Maker or taker.
    pub liquidity: Liquidity,
    /// Fee of this fill in the quote asset at the price scale, as the venue computed it with
    /// its maker/taker schedule; negative for a rebate.
    pub fee: i64,
}

/// Links of the per-account list of open orders (slot indices, [`NIL`] for none).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Links {
    pub(super) prev: u32,
    pub(super) next: u32,
}

impl Links {
    pub(super) const NONE: Self = Self {
        prev: NIL,
        next: NIL,
    };
}

/// An order. Read it through [`OrderManager::order`](super::OrderManager::order) and the
/// other queries; only the manager changes it.
///
/// Quantities and prices are mantissas at the instrument's scales. `notional` is the exact
/// sum of `fill price × fill qty` mantissa products (price scale + quantity scale places).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Order {
    /// Engine-assigned id.
    pub id: OrderId,
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Current client order id (changes when a replace with a new id is confirmed);
    /// [`ClientOrderId::NONE`] if the client gave none.
    pub client_order_id: ClientOrderId,
    /// Side.
    pub side: Side,
    /// Type as submitted; see [`Order::venue_type`] for what the venue sees.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Post-only / reduce-only.
    pub flags: OrderFlags,
    /// Limit price (0 for market and stop orders).
    pub price: Price,
    /// Stop (trigger) price (0 for market and limit orders).
    pub stop_price: Price,
    /// Total quantity.
    pub qty: Qty,
    /// Filled quantity.
    pub cum_qty: Qty,
    /// Σ fill price × fill qty (mantissa product).
    pub notional: i128,
    /// Σ fees (quote asset, price scale; negative for net rebates).
    pub fees: i64,
    /// Number of fills.
    pub fill_count: u32,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// Outstanding cancel or replace.
    pub pending: Pending,
    /// A cancel to request once the outstanding replace is answered.
    pub deferred: Deferred,
    /// A stop order whose trigger has fired (it is now a market or limit order).
    pub triggered: bool,
    /// Day or GTD expiry time; 0 for none.
    pub expire_at: UnixNanos,
    /// Creation time (engine time).
    pub created_at: UnixNanos,
    /// Last change.
    pub updated_at: UnixNanos,
    /// Time the order's queue priority was (re)established: creation, trigger, or a
    /// confirmed replace that loses priority.
    pub priority_at: UnixNanos,
    /// The order ended while a cancel or replace was outstanding and the ending did not
    /// answer it (a fill, a venue expiry or reject, or a cancel while a replace was pending):
    /// the venue still owes its reject, which is then forwarded as `CancelRejected`.
    pub answer_owed: bool,
    /// The expiry entry for this order is still in the expiry queue.
    pub(super) expiry_queued: bool,
    /// Per-account open-order list links.
    pub(super) links: Links,
}

impl Order {
    /// Quantity still working: `qty − cum_qty` while the order is open, 0 once it is done.
    #[inline]
    pub fn leaves_qty(&self) -> Qty {
        if self.status.is_terminal() {
            Qty::ZERO
        } else {
            Qty(self.qty.0.saturating_sub(self.cum_qty.0))
        }
    }

    /// Average fill price: `notional / cum_qty` in integer arithmetic, truncated toward zero
    /// (the event format's rule), at the price scale; 0 before the first fill.
    #[inline]
    pub fn avg_price(&self) -> Price {
        if self.cum_qty.0 <= 0 {
            return Price::ZERO;
        }
        let avg = self.notional / i128::from(self.cum_qty.0);
        Price(i64::try_from(avg).unwrap_or(if avg < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The type the venue sees: Market for a Stop, Limit for a StopLimit (once triggered;
    /// until then the venue does not hold it), the submitted type otherwise.
    #[inline]
    pub fn venue_type(&self) -> OrderType {
        match self.order_type {
            OrderType::Stop => OrderType::Market,
            OrderType::StopLimit => OrderType::Limit,
            other => other,
        }
    }

    /// The FIX-style state a client sees: PendingCancel or PendingReplace while a request is
    /// outstanding, otherwise the status (`Armed` shows as `PendingNew`).
    pub fn visible_state(&self) -> aaiti_model::OrderEventKind {
        use aaiti_model::OrderEventKind as K;
        match (self.pending, self.status) {
            (Pending::Cancel { .. }, _) => K::PendingCancel,
            (Pending::Replace(_), _) => K::PendingReplace,
            (Pending::None, OrderStatus::Armed | OrderStatus::PendingNew) => K::PendingNew,
            (Pending::None, OrderStatus::New) => K::Accepted,
            (Pending::None, OrderStatus::PartiallyFilled) => K::PartiallyFilled,
            (Pending::None, OrderStatus::Filled) => K::Filled,
            (Pending::None, OrderStatus::Canceled) => K::Canceled,
            (Pending::None, OrderStatus::Rejected) => K::Rejected,
            (Pending::None, OrderStatus::Expired) => K::Expired,
        }
    }
}
