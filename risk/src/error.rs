//! Pre-trade rejects and run-time errors.

use aaiti_model::{AccountId, InstrumentId, OrderId, RejectReason, RiskEvent, RiskEventKind};
use serde::{Deserialize, Serialize};

/// A refused order: the reason, the observed value and the limit it was checked against.
///
/// The units of `value` and `limit` depend on the reason; the table is in
/// [`crate::pretrade`]. Values that do not fit an `i64` are saturated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReject {
    /// Why.
    pub reason: RejectReason,
    /// Observed value.
    pub value: i64,
    /// Limit.
    pub limit: i64,
}

impl RiskReject {
    /// A reject; `value` and `limit` are saturated into `i64`.
    #[inline]
    pub(crate) fn new(reason: RejectReason, value: i128, limit: i128) -> Self {
        Self {
            reason,
            value: saturate(value),
            limit: saturate(limit),
        }
    }

    /// The [`RiskEvent`] the engine journals for this reject (kind `check_rejected`,
    /// action 0).
    pub fn event(&self, account: AccountId, instrument: InstrumentId, order: OrderId) -> RiskEvent {
        RiskEvent {
            kind: RiskEventKind::CheckRejected.code(),
            reason: self.reason.code(),
            action: 0,
            account,
            instrument,
            order_id: order,
            value: self.value,
            limit: self.limit,
            ..RiskEvent::default()
        }
    }
}

/// `value` clamped into the `i64` range (risk event fields are `i64`).
#[inline]
pub(crate) fn saturate(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Why a state update (fill, mark, open-order change, admin call, restore) was refused.
/// A refused update changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// The account id is not configured.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// The instrument id is not in the registry.
    #[error("unknown instrument {0}")]
    UnknownInstrument(InstrumentId),
    /// A quantity is zero or negative where a positive one is required (or negative).
    #[error("invalid quantity mantissa {0}")]
    InvalidQuantity(i64),
    /// A price is zero or negative.
    #[error("invalid price mantissa {0}")]
    InvalidPrice(i64),
    /// The order is not tracked for this account.
    #[error("order {order_id} of account {account} is not open")]
    UnknownOrder {
        /// Account.
        account: AccountId,
        /// Order.
        order_id: OrderId,
    },
    /// The order id is already tracked for this account.
    #[error("order {order_id} of account {account} is already open")]
    DuplicateOrder {
        /// Account.
        account: AccountId,
        /// Order.
        order_id: OrderId,
    },
    /// A reduction asked for more than the order's leaves quantity (an increase must be
    /// checked as a new order).
    #[error("order {order_id}: new leaves {requested} above current leaves {leaves}")]
    LeavesIncrease {
        /// Order.
        order_id: OrderId,
        /// Current leaves mantissa.
        leaves: i64,
        /// Requested leaves mantissa.
        requested: i64,
    },
    /// The update would overflow a position, cost or balance.
    #[error("{what} would overflow")]
    Overflow {
        /// Which quantity.
        what: &'static str,
    },
    /// Limits or a snapshot do not match the engine's accounts, instruments or assets.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What does not match.
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Count found.
        found: usize,
    },
    /// Limits or a snapshot are inconsistent.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What is invalid.
        what: &'static str,
        /// Details.
        detail: String,
    },
}
