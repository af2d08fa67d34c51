//! Valuation of positions and open orders, margin requirements, maintenance breaches.
//!
//! # Worst-case exposure
//!
//! For each (account, instrument) cell, at the instrument's valuation price `px` (the
//! engine's latest mark; before the first mark, the latest fill or accepted order price):
//!
//! * `long_worst  = value((position + open buys)  × px)`
//! * `short_worst = value((position − open sells) × px)`
//! * `worst = max(|long_worst|, |short_worst|)`: the gross exposure if every open order on
//!   the worse side filled.
//!
//! Account aggregates are sums over cells: gross = Σ worst, net long = Σ long_worst, net
//! short = Σ short_worst. The pre-trade exposure checks replace the order's cell with its
//! value after the order and compare with the limits.
//!
//! # Margin
//!
//! * **Initial margin** = Σ `worst × initial_margin_bps`, so open orders are margined as if
//!   filled. It is kept multiplied by 10_000 (`*_e4`) to stay exact without a division.
//! * **Maintenance margin** = Σ `|position value| × maintenance_margin_bps`.
//! * **Cross**: equity (cash + unrealized P&L) backs everything; new orders need
//!   `initial margin after ≤ equity`; a breach is `equity < maintenance margin`, and the
//!   configured action covers every position of the account.
//! * **Isolated**: new orders need `initial margin after ≤ cash + unrealized losses`
//!   (unrealized gains of one position do not fund another). Each position carries the
//!   margin of its entry (`|cost| × initial_margin_bps`); a breach is
//!   `that margin + unrealized P&L < |position| × mark × maintenance_margin_bps`, per
//!   position, in the quote asset; the action covers that position only.
//! * **Cash** accounts have no margin: buys need free quote balance, sells need inventory.
//!
//! Initial margin rates come from the leverage caps:
//! `initial_margin_bps = max(configured, ⌈10_000 / min(instrument leverage, account leverage)⌉)`.

use aaiti_model::{AccountId, InstrumentId, Qty, RiskEvent, Side};
use serde::{Deserialize, Serialize};

use crate::account::{Cell, CellValues};
use crate::limits::{CellLimits, InstrumentParams, MarginMode};

/// The values of a cell at price `px` (see the [module docs](self)).
#[inline]
pub(crate) fn value_cell(
    cell: &Cell,
    px: i64,
    inst: &InstrumentParams,
    limits: &CellLimits,
    mode: MarginMode,
) -> CellValues {
    if !cell.should_be_active() {
        return CellValues::default();
    }
    let p = i128::from(px);
    let q = i128::from(cell.position.qty);
    let long_worst = inst
        .to_value
        .apply((q + i128::from(cell.open_buy)).saturating_mul(p));
    let short_worst = inst
        .to_value
        .apply((q - i128::from(cell.open_sell)).saturating_mul(p));
    let position_raw = q.saturating_mul(p);
    let position = inst.to_value.apply(position_raw);
    let worst = long_worst
        .saturating_abs()
        .max(short_worst.saturating_abs());
    let unrealized = position_raw.saturating_sub(cell.position.cost);
    let (im_e4, mm_e4, equity, loss) = match mode {
        MarginMode::Cash => (0, 0, inst.to_money.apply(position_raw), 0),
        MarginMode::Cross | MarginMode::Isolated => {
            let upnl = inst.to_money.apply(unrealized);
            (
                worst.saturating_mul(i128::from(limits.initial_margin_bps)),
                position
                    .saturating_abs()
                    .saturating_mul(i128::from(limits.maintenance_margin_bps)),
                upnl,
                if mode == MarginMode::Isolated {
                    upnl.min(0)
                } else {
                    0
                },
            )
        }
    };
    CellValues {
        long_worst,
        short_worst,
        worst,
        position,
        im_e4,
        mm_e4,
        equity,
        loss,
    }
}

/// Maintenance state of one isolated position, in quote money × 10_000:
/// `(position equity, maintenance requirement)`; `None` when flat.
#[inline]
pub(crate) fn isolated_margin(
    cell: &Cell,
    px: i64,
    inst: &InstrumentParams,
    limits: &CellLimits,
) -> Option<(i128, i128)> {
    if cell.position.qty == 0 {
        return None;
    }
    let position_raw = i128::from(cell.position.qty).saturating_mul(i128::from(px));
    let margin_e4 = inst
        .to_money
        .apply(cell.position.cost)
        .saturating_abs()
        .saturating_mul(i128::from(limits.initial_margin_bps));
    let upnl = inst
        .to_money
        .apply(position_raw.saturating_sub(cell.position.cost));
    let equity_e4 = margin_e4.saturating_add(upnl.saturating_mul(10_000));
    let required_e4 = inst
        .to_money
        .apply(position_raw)
        .saturating_abs()
        .saturating_mul(i128::from(limits.maintenance_margin_bps));
    Some((equity_e4, required_e4))
}

/// What the engine must do about a breach reported by
/// [`RiskEngine::on_mark`](crate::RiskEngine::on_mark) or
/// [`RiskEngine::on_fill`](crate::RiskEngine::on_fill). Risk has already changed its own
/// state (trading state); the engine journals [`Breach::event`] and carries out the rest.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BreachAction {
    /// Journal only.
    Alert,
    /// The account is now reduce-only (nothing else to do).
    ReduceOnly,
    /// The account is now halted; the engine should cancel its open orders.
    Halt,
    /// The account is now reduce-only and the engine should flatten: every position of the
    /// account (`None`) or one isolated position. Get the orders from
    /// [`RiskEngine::flatten_orders`](crate::RiskEngine::flatten_orders).
    Flatten {
        /// The one position to flatten, or all.
        instrument: Option<InstrumentId>,
    },
}

/// A portfolio-level breach (drawdown, maintenance margin).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The record to journal (kind `drawdown` or `margin_call`).
    pub event: RiskEvent,
    /// What to do.
    pub action: BreachAction,
}

/// An order the engine should send to close (part of) a position; send it as a
/// liquidation order (`NewOrder::liquidation = true`, reduce-only) at a price of its
/// choosing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenOrder {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side that reduces the position.
    pub side: Side,
    /// The whole position size.
    pub qty: Qty,
}

/// Margin figures of one account (valuation amounts at
/// [`VALUE_PLACES`](crate::limits::VALUE_PLACES)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginStatus {
    /// Mode.
    pub mode: MarginMode,
    /// Equity: cash + unrealized P&L (cash accounts: cash + market value).
    pub equity: i128,
    /// What backs new margin: equity (cross), cash + unrealized losses (isolated).
    pub collateral: i128,
    /// Initial margin in use (positions and open orders), rounded up.
    pub initial_margin: i128,
    /// Maintenance margin of the positions, rounded up.
    pub maintenance_margin: i128,
    /// `collateral − initial_margin`.
    pub free: i128,
    /// In maintenance breach (cross: the account; isolated: any position).
    pub breached: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Conv;
    use crate::position::Position;
    use aaiti_model::VenueId;

    fn inst() -> InstrumentParams {
        InstrumentParams {
            venue: VenueId(0),
            venue_name: "v".into(),
            symbol: "X".into(),
            base: 0,
            quote: 1,
            price_places: 0,
            qty_places: 0,
            to_money: Conv::ONE,
            fee_to_money: Conv::ONE,
            fee_to_raw: 1,
            to_value: Conv::ONE,
        }
    }

    fn limits() -> CellLimits {
        CellLimits {
            enabled: true,
            max_order_qty: i64::MAX,
            max_order_notional: i128::MAX,
            price_band_bps: 0,
            max_position: i64::MAX,
            max_open_orders: 0,
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
        }
    }

    fn cell(qty: i64, cost: i128, open_buy: i64, open_sell: i64) -> Cell {
        Cell {
            position: Position {
                qty,
                cost,
                ..Position::default()
            },
            open_buy,
            open_sell,
            open_count: u32::from(open_buy > 0) + u32::from(open_sell > 0),
            ..Cell::default()
        }
    }

    #[test]
    fn worst_case_counts_the_worse_side() {
        let c = cell(10, 1_000, 5, 30);
        let v = value_cell(&c, 100, &inst(), &limits(), MarginMode::Cross);
        assert_eq!(v.long_worst, 1_500);
        assert_eq!(v.short_worst, -2_000);
        assert_eq!(v.worst, 2_000);
        assert_eq!(v.position, 1_000);
        assert_eq!(v.im_e4, 2_000 * 1_000);
        assert_eq!(v.mm_e4, 1_000 * 500);
        assert_eq!(v.equity, 0);
        let v = value_cell(&c, 90, &inst(), &limits(), MarginMode::Isolated);
        assert_eq!((v.equity, v.loss), (-100, -100));
        let v = value_cell(&c, 90, &inst(), &limits(), MarginMode::Cash);
        assert_eq!((v.equity, v.im_e4, v.mm_e4), (900, 0, 0));
        let v = value_cell(&Cell::default(), 90, &inst(), &limits(), MarginMode::Cash);
        assert_eq!(v, CellValues::default());
    }

    #[test]
    fn isolated_maintenance_boundary() {
        // Long 10 at 100: margin 10% of 1000 = 100. MM 5% of value.
        let c = cell(10, 1_000, 0, 0);
        // At px p: equity = 100 + 10(p − 100); required = 10p·5% = p/2.
        // Breach when 100 + 10p − 1000 < p/2  ⇔  p < 94.73…: 95 is safe, 94 breaches.
        let (eq, req) = isolated_margin(&c, 95, &inst(), &limits()).unwrap();
        assert!(eq >= req, "{eq} {req}");
        let (eq, req) = isolated_margin(&c, 94, &inst(), &limits()).unwrap();
        assert!(eq < req, "{eq} {req}");
        assert!(isolated_margin(&cell(0, 0, 1, 0), 94, &inst(), &limits()).is_none());
    }
}
