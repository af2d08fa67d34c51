//! Risk state per account, per (account, asset) and per (account, instrument) cell.
//!
//! Primary state (positions, balances, open orders, throttle, trading states, kill
//! switches, high-water marks) is what a snapshot must carry. The engine also keeps
//! derived aggregates (exposures, margin, equity) up to date incrementally so the
//! pre-trade check reads them in O(1); [`RiskEngine::audit`](crate::RiskEngine::audit)
//! recomputes them from the primary state and compares, and a restore rebuilds them.

use aaiti_model::{OrderId, RejectReason, Side};
use serde::{Deserialize, Serialize};

use crate::position::Position;
use crate::throttle::Throttle;

/// Trading state of an account or of the whole engine.
///
/// Ordered by severity: the effective state of an account is the more severe of its own
/// and the global one.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Orders are checked normally.
    #[default]
    Active,
    /// Only orders that reduce the position are accepted.
    ReduceOnly,
    /// No order is accepted.
    Halted,
}

impl TradingState {
    /// The [`aaiti_model::RiskEvent`] `action` code (0 none, 1 reduce-only, 2 halt).
    pub const fn action_code(self) -> u8 {
        match self {
            Self::Active => 0,
            Self::ReduceOnly => 1,
            Self::Halted => 2,
        }
    }
}

/// An order the account has open (accepted by risk, not yet done).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrder {
    /// Engine order id.
    pub order_id: OrderId,
    /// Instrument index.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Limit price mantissa.
    pub price: i64,
    /// Open quantity mantissa (> 0).
    pub leaves: i64,
    /// Quote money reserved for it (buys: `price × leaves` in quote money; 0 for sells).
    pub reserved: i128,
}

/// Derived values of one cell at the instrument's valuation price (see
/// [`crate::margin`]). All zero for an inactive cell.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellValues {
    /// Value of `position + open buys` (signed).
    pub long_worst: i128,
    /// Value of `position − open sells` (signed).
    pub short_worst: i128,
    /// Worst-case gross exposure: `max(|long_worst|, |short_worst|)`.
    pub worst: i128,
    /// Value of the position (signed).
    pub position: i128,
    /// Initial margin × 10_000 (valuation): `worst × initial_margin_bps`.
    pub im_e4: i128,
    /// Maintenance margin × 10_000 (valuation): `|position| × maintenance_margin_bps`.
    pub mm_e4: i128,
    /// Contribution to equity in quote money: unrealized P&L (margin accounts) or market
    /// value (cash accounts).
    pub equity: i128,
    /// Unrealized loss in quote money (`min(unrealized, 0)`; isolated accounts only).
    pub loss: i128,
}

/// The state of one (account, instrument) pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// The position.
    pub position: Position,
    /// Open buy quantity (sum of leaves).
    pub open_buy: i64,
    /// Open sell quantity.
    pub open_sell: i64,
    /// Open orders.
    pub open_count: u32,
    /// Highest open buy price (0: none).
    pub best_buy: i64,
    /// Lowest open sell price (0: none).
    pub best_sell: i64,
    /// Quote money reserved by open buys.
    pub reserved: i128,
    /// Has a position or open orders (listed in the account's and instrument's lists).
    pub active: bool,
    /// An isolated position in maintenance breach (edge trigger).
    pub margin_call: bool,
    /// Derived values.
    pub values: CellValues,
}

impl Cell {
    /// True if the cell should be in the active lists.
    #[inline]
    pub(crate) fn should_be_active(&self) -> bool {
        self.position.qty != 0 || self.open_count != 0 || self.position.cost != 0
    }
}

/// One asset of one account.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetState {
    /// Balance, money at the asset's places.
    pub balance: i128,
    /// Money reserved by open buys quoted in this asset (cash accounts).
    pub reserved: i128,
    /// Sum of the equity contributions of the cells quoted in this asset (derived).
    pub equity: i128,
    /// Sum of their unrealized losses (derived, isolated accounts).
    pub loss: i128,
    /// Valuation of `balance + equity` (derived).
    pub value: i128,
    /// Valuation of `balance + loss` (derived, isolated accounts).
    pub collateral: i128,
}

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Own trading state.
    pub trading: TradingState,
    /// Reject reason while halted: `trading_halted` (admin) or `drawdown_halt`.
    pub halt_reason: RejectReason,
    /// Kill switch engaged.
    pub kill_switch: bool,
    /// Order throttle.
    pub throttle: Throttle,
    /// Open orders (order of acceptance, with removals swapped in from the end).
    pub open_orders: Vec<OpenOrder>,
    /// Active instrument indexes, ascending.
    pub active: Vec<u32>,
    /// Per asset.
    pub assets: Vec<AssetState>,
    /// Intraday equity high-water mark (valuation).
    pub high_water_mark: i128,
    /// UTC day (`ts / 86_400 s`) of the high-water mark; `u64::MAX` before the first update.
    pub hwm_day: u64,
    /// Cross-margin account in maintenance breach (edge trigger).
    pub margin_call: bool,
    /// Fills whose order id was not tracked (applied to the position anyway).
    pub untracked_fills: u64,
    /// Derived: equity (valuation) = Σ assets' value.
    pub equity: i128,
    /// Derived: collateral for new margin (equity; isolated: cash + unrealized losses).
    pub collateral: i128,
    /// Derived: Σ worst-case gross exposure.
    pub gross: i128,
    /// Derived: Σ long_worst.
    pub net_long: i128,
    /// Derived: Σ short_worst.
    pub net_short: i128,
    /// Derived: Σ position values.
    pub net_position: i128,
    /// Derived: Σ initial margin × 10_000.
    pub im_e4: i128,
    /// Derived: Σ maintenance margin × 10_000.
    pub mm_e4: i128,
}

impl AccountState {
    /// A fresh account with `assets` zero balances.
    pub(crate) fn new(assets: usize, trading: TradingState) -> Self {
        Self {
            trading,
            halt_reason: RejectReason::TradingHalted,
            kill_switch: false,
            throttle: Throttle::default(),
            open_orders: Vec::new(),
            active: Vec::new(),
            assets: vec![AssetState::default(); assets],
            high_water_mark: 0,
            hwm_day: u64::MAX,
            margin_call: false,
            untracked_fills: 0,
            equity: 0,
            collateral: 0,
            gross: 0,
            net_long: 0,
            net_short: 0,
            net_position: 0,
            im_e4: 0,
            mm_e4: 0,
        }
    }

    /// Resets every derived aggregate to zero (before a rebuild).
    pub(crate) fn clear_derived(&mut self) {
        self.equity = 0;
        self.collateral = 0;
        self.gross = 0;
        self.net_long = 0;
        self.net_short = 0;
        self.net_position = 0;
        self.im_e4 = 0;
        self.mm_e4 = 0;
        for asset in &mut self.assets {
            asset.reserved = 0;
            asset.equity = 0;
            asset.loss = 0;
            asset.value = 0;
            asset.collateral = 0;
        }
    }
}

/// The latest valuation price of an instrument.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkState {
    /// Price mantissa (0: none yet).
    pub price: i64,
    /// Set by [`RiskEngine::on_mark`](crate::RiskEngine::on_mark); until then fills and
    /// accepted orders provide a provisional price.
    pub marked: bool,
}
