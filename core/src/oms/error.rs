//! Errors of the order manager: illegal venue transitions, bad configuration, bad snapshots.

use aaiti_model::{OrderId, Price, Qty};

use super::order::OrderStatus;

/// The venue report a transition was attempted with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum VenueEvent {
    /// Order acknowledged.
    Ack,
    /// Execution.
    Fill,
    /// Order canceled.
    Canceled,
    /// Replace confirmed.
    Replaced,
    /// Order rejected.
    Rejected,
    /// Order expired.
    Expired,
    /// Cancel or replace rejected.
    CancelRejected,
}

impl VenueEvent {
    /// Code in an `illegal_report` risk event's `limit` field (1 ack .. 7 cancel rejected).
    pub const fn code(self) -> u8 {
        match self {
            Self::Ack => 1,
            Self::Fill => 2,
            Self::Canceled => 3,
            Self::Replaced => 4,
            Self::Rejected => 5,
            Self::Expired => 6,
            Self::CancelRejected => 7,
        }
    }

    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Fill => "fill",
            Self::Canceled => "canceled",
            Self::Replaced => "replaced",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::CancelRejected => "cancel_rejected",
        }
    }
}

impl std::fmt::Display for VenueEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A venue report that the order's state does not allow. The manager leaves the order
/// unchanged (it only counts the error in [`OmsCounters`](super::OmsCounters)); the engine
/// journals it and alerts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    /// No order has this id (never created).
    #[error("venue {event} for unknown order {order_id}")]
    UnknownOrder {
        /// Order.
        order_id: OrderId,
        /// Report.
        event: VenueEvent,
    },
    /// The order ended and has been dropped from memory (see `done_retention`).
    #[error("venue {event} for order {order_id}, which is done and retired")]
    RetiredOrder {
        /// Order.
        order_id: OrderId,
        /// Report.
        event: VenueEvent,
    },
    /// A report for a stop order that has not triggered: the venue does not have it.
    #[error("venue {event} for order {order_id}, an untriggered stop the venue does not hold")]
    NotAtVenue {
        /// Order.
        order_id: OrderId,
        /// Report.
        event: VenueEvent,
    },
    /// The report does not fit the order's state (an ack for an acknowledged order, a cancel
    /// of a filled order, a replace confirmation without a replace request...).
    #[error("venue {event} for order {order_id} in state {status:?} (pending request: {pending})")]
    InvalidState {
        /// Order.
        order_id: OrderId,
        /// Report.
        event: VenueEvent,
        /// The order's status.
        status: OrderStatus,
        /// Whether a cancel/replace was outstanding.
        pending: bool,
    },
    /// A fill for an order that is already done.
    #[error("fill {exec_id} for order {order_id}, which is already {status:?}")]
    FillAfterDone {
        /// Order.
        order_id: OrderId,
        /// Execution id.
        exec_id: u64,
        /// The order's (terminal) status.
        status: OrderStatus,
    },
    /// The fill would take the filled quantity above the order quantity.
    #[error(
        "fill {exec_id} of {fill_qty:?} overfills order {order_id} ({cum_qty:?} of {qty:?} filled)"
    )]
    Overfill {
        /// Order.
        order_id: OrderId,
        /// Execution id.
        exec_id: u64,
        /// Order quantity.
        qty: Qty,
        /// Filled before this fill.
        cum_qty: Qty,
        /// This fill.
        fill_qty: Qty,
    },
    /// An execution id already applied to this order (a replayed or duplicated report).
    #[error("duplicate execution id {exec_id} for order {order_id}")]
    DuplicateExecId {
        /// Order.
        order_id: OrderId,
        /// Execution id.
        exec_id: u64,
    },
    /// A malformed fill: zero execution id, non-positive quantity or price, or a fee that
    /// overflows the order's fee total.
    #[error("invalid fill {exec_id} for order {order_id}: {what}")]
    InvalidFill {
        /// Order.
        order_id: OrderId,
        /// Execution id.
        exec_id: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A fill at a price worse than the order's limit (above it for a buy, below for a sell).
    #[error("fill {exec_id} for order {order_id} at {price:?} is through the limit {limit:?}")]
    FillOutsideLimit {
        /// Order.
        order_id: OrderId,
        /// Execution id.
        exec_id: u64,
        /// The most permissive limit in force (old or requested price during a replace).
        limit: Price,
        /// Fill price.
        price: Price,
    },
    /// A replace confirmation whose new quantity is below what has been filled meanwhile.
    #[error("replace of order {order_id} to {qty:?} confirmed with {cum_qty:?} already filled")]
    ReplaceBelowFilled {
        /// Order.
        order_id: OrderId,
        /// Requested quantity.
        qty: Qty,
        /// Filled quantity.
        cum_qty: Qty,
    },
}

impl IllegalTransition {
    /// Number of variants (the size of the per-kind counter array).
    pub const KINDS: usize = 10;

    /// The order concerned.
    pub const fn order_id(&self) -> OrderId {
        match *self {
            Self::UnknownOrder { order_id, .. }
            | Self::RetiredOrder { order_id, .. }
            | Self::NotAtVenue { order_id, .. }
            | Self::InvalidState { order_id, .. }
            | Self::FillAfterDone { order_id, .. }
            | Self::Overfill { order_id, .. }
            | Self::DuplicateExecId { order_id, .. }
            | Self::InvalidFill { order_id, .. }
            | Self::FillOutsideLimit { order_id, .. }
            | Self::ReplaceBelowFilled { order_id, .. } => order_id,
        }
    }

    /// Dense index of the variant, `0..KINDS` (for counters).
    pub const fn index(&self) -> usize {
        match self {
            Self::UnknownOrder { .. } => 0,
            Self::RetiredOrder { .. } => 1,
            Self::NotAtVenue { .. } => 2,
            Self::InvalidState { .. } => 3,
            Self::FillAfterDone { .. } => 4,
            Self::Overfill { .. } => 5,
            Self::DuplicateExecId { .. } => 6,
            Self::InvalidFill { .. } => 7,
            Self::FillOutsideLimit { .. } => 8,
            Self::ReplaceBelowFilled { .. } => 9,
        }
    }

    /// The venue report that was refused.
    pub const fn event(&self) -> VenueEvent {
        match *self {
            Self::UnknownOrder { event, .. }
            | Self::RetiredOrder { event, .. }
            | Self::NotAtVenue { event, .. }
            | Self::InvalidState { event, .. } => event,
            Self::FillAfterDone { .. }
            | Self::Overfill { .. }
            | Self::DuplicateExecId { .. }
            | Self::InvalidFill { .. }
            | Self::FillOutsideLimit { .. } => VenueEvent::Fill,
            Self::ReplaceBelowFilled { .. } => VenueEvent::Replaced,
        }
    }

    /// Lowercase name of the variant (logs, reports).
    pub const fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// Names by [`IllegalTransition::index`].
    pub const NAMES: [&'static str; Self::KINDS] = [
        "unknown_order",
        "retired_order",
        "not_at_venue",
        "invalid_state",
        "fill_after_done",
        "overfill",
        "duplicate_exec_id",
        "invalid_fill",
        "fill_outside_limit",
        "replace_below_filled",
    ];
}

/// A configuration value the manager cannot run with. Names the key and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("oms.{key} = {value}: {fix}")]
pub struct OmsConfigError {
    /// The key under `[oms]`.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What to change.
    pub fix: &'static str,
}

/// Why a snapshot could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// postcard failed (truncated or corrupt bytes on restore).
    #[error("order manager snapshot encoding: {0}")]
    Encoding(#[from] postcard::Error),
    /// The bytes decode but do not describe a consistent manager.
    #[error("order manager snapshot is inconsistent: {0}")]
    Inconsistent(#[from] InvariantViolation),
}

/// An internal invariant that does not hold (found by
/// [`OrderManager::check_invariants`](super::OrderManager::check_invariants), or when a
/// snapshot is restored).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} (order {order_id})")]
pub struct InvariantViolation {
    /// The invariant.
    pub what: &'static str,
    /// The order concerned, 0 if none.
    pub order_id: OrderId,
}

impl InvariantViolation {
    pub(super) const fn new(what: &'static str, order_id: OrderId) -> Self {
        Self { what, order_id }
    }
}
