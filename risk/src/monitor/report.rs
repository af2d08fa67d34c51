//! What one evaluation reports, and the risk event a breach becomes.

use aaiti_model::{
    AccountId, InstrumentId, OrderId, RejectReason, RiskEvent, RiskEventKind, UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::config::{BreachAction, VarMethod};
use super::var::VarFigures;

/// An account's VaR above its limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarBreach {
    /// The VaR compared, as a mantissa at `valuation_places` (rounded up).
    pub value: i64,
    /// The limit, as a mantissa at `valuation_places`.
    pub limit: i64,
    /// Which VaR was compared.
    pub method: VarMethod,
    /// The configured action for the account.
    pub action: BreachAction,
    /// True at the first evaluation above the limit (the previous one was within it or
    /// there was none): the breach episode starts here.
    pub first: bool,
}

impl VarBreach {
    /// The journal record: kind `VarBreach`, reason none, all instruments, no order.
    pub fn risk_event(&self, account: AccountId) -> RiskEvent {
        RiskEvent {
            kind: RiskEventKind::VarBreach.code(),
            reason: RejectReason::None.code(),
            action: self.action.code(),
            _pad: [0; 3],
            account,
            instrument: InstrumentId(u32::MAX),
            order_id: OrderId(0),
            value: self.value,
            limit: self.limit,
        }
    }
}

/// One account's risk at one interval. The monitor fills the VaR side; the `drawdown`,
/// exposure and margin fields are left `None` for the engine to fill from the account
/// state before it logs or publishes the report.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// Engine time of the evaluation.
    pub ts: UnixNanos,
    /// The account.
    pub account: AccountId,
    /// VaR figures (valuation-currency units).
    pub var: VarFigures,
    /// The account's limit (valuation-currency units), if it has one.
    pub var_limit: Option<f64>,
    /// Set at every evaluation above the limit (the action stays in force while it is).
    pub breach: Option<VarBreach>,
    /// True at the first evaluation back within the limit after a breach (the engine
    /// decides whether that lifts the action; a halt usually waits for an operator).
    pub breach_cleared: bool,
    /// Drawdown from the equity peak (valuation-currency units): engine-filled.
    pub drawdown: Option<f64>,
    /// Gross exposure Σ|notional|: engine-filled.
    pub gross_exposure: Option<f64>,
    /// Net exposure Σ notional: engine-filled.
    pub net_exposure: Option<f64>,
    /// Margin used / margin available (0..): engine-filled.
    pub margin_usage: Option<f64>,
}

impl MonitorReport {
    /// The `RiskEvent` to journal: `Some` only at the first evaluation of a breach episode,
    /// so a breach that lasts an hour is one record, not 3600.
    pub fn risk_event(&self) -> Option<RiskEvent> {
        self.breach
            .filter(|breach| breach.first)
            .map(|breach| breach.risk_event(self.account))
    }
}
