//! Read-only views of the risk state for the engine, the desk and the CLI, and the
//! consistency audit.

use aaiti_model::{AccountId, InstrumentId, RejectReason, UnixNanos};
use serde::Serialize;

use crate::account::{AccountState, OpenOrder, TradingState};
use crate::decimal::format_i128;
use crate::engine::ceil_e4;
use crate::limits::{AccountType, MarginMode, NO_LIMIT, NO_LIMIT_QTY, RiskLimits, VALUE_PLACES};
use crate::margin::MarginStatus;
use crate::monitor::correlation::CorrelationMatrix;
use crate::position::Position;
use crate::{RiskEngine, RiskError};

/// One position with its open orders and valuation (mantissas; raw notional is quote at
/// price + qty places).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PositionView {
    /// Quantity, cost basis, realized P&L and fees.
    pub position: Position,
    /// Open buy quantity.
    pub open_buy: i64,
    /// Open sell quantity.
    pub open_sell: i64,
    /// Open orders.
    pub open_orders: u32,
    /// Valuation price mantissa (0: none yet).
    pub mark: i64,
    /// Unrealized P&L at `mark`, raw.
    pub unrealized: i128,
    /// Worst-case exposure, valued.
    pub worst_exposure: i128,
}

/// One account's aggregates (valuation mantissas at [`VALUE_PLACES`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// Own trading state.
    pub trading_state: TradingState,
    /// Effective state (the more severe of the account's and the global one).
    pub effective_state: TradingState,
    /// Why it is halted, when it is.
    pub halt_reason: RejectReason,
    /// Kill switch (own or global) engaged.
    pub kill_switch: bool,
    /// Worst-case gross exposure.
    pub gross_exposure: i128,
    /// Σ value of position + open buys.
    pub net_long_worst: i128,
    /// Σ value of position − open sells.
    pub net_short_worst: i128,
    /// Σ value of positions.
    pub net_position: i128,
    /// Margin figures.
    pub margin: MarginStatus,
    /// Intraday high-water mark of equity.
    pub high_water_mark: i128,
    /// Drawdown from it, bps.
    pub drawdown_bps: i128,
    /// Open orders.
    pub open_orders: usize,
    /// Fills of untracked orders seen.
    pub untracked_fills: u64,
}

impl RiskEngine {
    /// The compiled limits in force.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// The global trading state and kill switch.
    pub fn global_state(&self) -> (TradingState, bool) {
        (self.global_state, self.global_kill)
    }

    /// The correlation matrix in use.
    pub fn correlations(&self) -> &CorrelationMatrix {
        &self.correlations
    }

    /// The account's open orders.
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn open_orders(&self, account: AccountId) -> Result<&[OpenOrder], RiskError> {
        self.accounts
            .get(account.index())
            .map(|a| a.open_orders.as_slice())
            .ok_or(RiskError::UnknownAccount(account))
    }

    /// The account's balance of `asset` (money at the asset's places); `None` for an
    /// unknown account or asset.
    pub fn balance(&self, account: AccountId, asset: &str) -> Option<i128> {
        let k = self.limits.asset_index(asset)?;
        Some(self.accounts.get(account.index())?.assets[k].balance)
    }

    /// The position and orders of `account` on `instrument`.
    ///
    /// # Errors
    ///
    /// Unknown ids.
    pub fn position(
        &self,
        account: AccountId,
        instrument: InstrumentId,
    ) -> Result<PositionView, RiskError> {
        let (a, i) = self.ids(account, instrument)?;
        let cell = &self.cells[a * self.limits.instruments.len() + i];
        let mark = self.marks[i].price;
        Ok(PositionView {
            position: cell.position,
            open_buy: cell.open_buy,
            open_sell: cell.open_sell,
            open_orders: cell.open_count,
            mark,
            unrealized: cell.position.unrealized(aaiti_model::Price(mark)),
            worst_exposure: cell.values.worst,
        })
    }

    /// The account's aggregates.
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn account(&self, account: AccountId) -> Result<AccountView, RiskError> {
        let a = account.index();
        let (Some(state), Some(limits)) = (self.accounts.get(a), self.limits.accounts.get(a))
        else {
            return Err(RiskError::UnknownAccount(account));
        };
        let n = self.limits.instruments.len();
        let breached = match limits.margin_mode {
            MarginMode::Cross => state.margin_call,
            MarginMode::Isolated => state
                .active
                .iter()
                .any(|&i| self.cells[a * n + i as usize].margin_call),
            MarginMode::Cash => false,
        };
        let initial_margin = ceil_e4(state.im_e4);
        let hwm = state.high_water_mark;
        Ok(AccountView {
            trading_state: state.trading,
            effective_state: state.trading.max(self.global_state),
            halt_reason: state.halt_reason,
            kill_switch: state.kill_switch || self.global_kill,
            gross_exposure: state.gross,
            net_long_worst: state.net_long,
            net_short_worst: state.net_short,
            net_position: state.net_position,
            margin: MarginStatus {
                mode: limits.margin_mode,
                equity: state.equity,
                collateral: state.collateral,
                initial_margin,
                maintenance_margin: ceil_e4(state.mm_e4),
                free: state.collateral.saturating_sub(initial_margin),
                breached,
            },
            high_water_mark: hwm,
            drawdown_bps: if hwm > 0 {
                hwm.saturating_sub(state.equity).saturating_mul(10_000) / hwm
            } else {
                0
            },
            open_orders: state.open_orders.len(),
            untracked_fills: state.untracked_fills,
        })
    }

    /// Recomputes every derived aggregate from the primary state and compares it with the
    /// incrementally maintained one (a pair assertion for tests, restores and the desk).
    ///
    /// # Errors
    ///
    /// A description of the first difference.
    pub fn audit(&self) -> Result<(), String> {
        let mut fresh = self.clone();
        fresh.rebuild().map_err(|e| e.to_string())?;
        for (a, (x, y)) in self.accounts.iter().zip(&fresh.accounts).enumerate() {
            if x != y {
                return Err(format!(
                    "account {a}: incremental {:?} != recomputed {:?}",
                    summary(x),
                    summary(y)
                ));
            }
        }
        for (c, (x, y)) in self.cells.iter().zip(&fresh.cells).enumerate() {
            if x != y {
                return Err(format!("cell {c}: incremental {x:?} != recomputed {y:?}"));
            }
        }
        if self.holders != fresh.holders {
            return Err(format!(
                "holders: incremental {:?} != recomputed {:?}",
                self.holders, fresh.holders
            ));
        }
        // The sums again, by plain loops over the cells (independent of the incremental
        // code that `rebuild` shares with the hot path).
        let n = self.limits.instruments.len();
        for (a, account) in self.accounts.iter().enumerate() {
            let mut sums = [0i128; 6];
            let mut assets = vec![(0i128, 0i128); self.limits.assets.len()];
            for (i, inst) in self.limits.instruments.iter().enumerate() {
                let v = &self.cells[a * n + i].values;
                for (sum, x) in sums.iter_mut().zip([
                    v.worst,
                    v.long_worst,
                    v.short_worst,
                    v.position,
                    v.im_e4,
                    v.mm_e4,
                ]) {
                    *sum = sum.saturating_add(x);
                }
                let asset = &mut assets[inst.quote as usize];
                asset.0 = asset.0.saturating_add(v.equity);
                asset.1 = asset.1.saturating_add(v.loss);
            }
            let isolated = self.limits.accounts[a].margin_mode == MarginMode::Isolated;
            let (mut equity, mut collateral) = (0i128, 0i128);
            for (k, (params, state)) in self.limits.assets.iter().zip(&account.assets).enumerate() {
                let value = params
                    .to_value
                    .apply(state.balance.saturating_add(assets[k].0));
                equity = equity.saturating_add(value);
                collateral = collateral.saturating_add(if isolated {
                    params
                        .to_value
                        .apply(state.balance.saturating_add(assets[k].1))
                } else {
                    value
                });
                if (state.equity, state.loss, state.value) != (assets[k].0, assets[k].1, value) {
                    return Err(format!("account {a} asset {}: sums differ", params.name));
                }
            }
            let kept = [
                account.gross,
                account.net_long,
                account.net_short,
                account.net_position,
                account.im_e4,
                account.mm_e4,
            ];
            if kept != sums || (account.equity, account.collateral) != (equity, collateral) {
                return Err(format!(
                    "account {a}: sums {kept:?} / {:?} != recomputed {sums:?} / {:?}",
                    (account.equity, account.collateral),
                    (equity, collateral)
                ));
            }
        }
        Ok(())
    }

    /// The whole state for the desk and the CLI, in decimal text (valuation amounts in
    /// the valuation currency).
    pub fn report(&self, now: UnixNanos) -> RiskReport {
        let value = |v: i128| format_i128(v, VALUE_PLACES);
        let limit = |v: i128| {
            if v == NO_LIMIT {
                "none".to_owned()
            } else {
                value(v)
            }
        };
        let n = self.limits.instruments.len();
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for (a, (state, limits)) in self.accounts.iter().zip(&self.limits.accounts).enumerate() {
            let id = AccountId(a as u32);
            let Ok(view) = self.account(id) else { continue };
            let balances = self
                .limits
                .assets
                .iter()
                .zip(&state.assets)
                .filter(|(_, s)| s.balance != 0 || s.reserved != 0)
                .map(|(params, s)| BalanceReport {
                    asset: params.name.clone(),
                    balance: format_i128(s.balance, params.places),
                    reserved: format_i128(s.reserved, params.places),
                })
                .collect();
            let positions = state
                .active
                .iter()
                .map(|&i| {
                    let i = i as usize;
                    let inst = &self.limits.instruments[i];
                    let cell = &self.cells[a * n + i];
                    let cl = &self.limits.cells[a * n + i];
                    let raw_places = inst.price_places + inst.qty_places;
                    let qty = |q: i64| qty_text(q, inst.qty_places);
                    let price = |p: i64| qty_text(p, inst.price_places);
                    PositionReport {
                        venue: inst.venue_name.clone(),
                        symbol: inst.symbol.clone(),
                        qty: qty(cell.position.qty),
                        avg_entry: price(cell.position.avg_entry()),
                        mark: price(self.marks[i].price),
                        realized_pnl: format_i128(cell.position.realized, raw_places),
                        unrealized_pnl: format_i128(
                            cell.position
                                .unrealized(aaiti_model::Price(self.marks[i].price)),
                            raw_places,
                        ),
                        fees: format_i128(cell.position.fees, raw_places),
                        open_buy: qty(cell.open_buy),
                        open_sell: qty(cell.open_sell),
                        open_orders: cell.open_count,
                        worst_exposure: value(cell.values.worst),
                        max_position: if cl.max_position == NO_LIMIT_QTY {
                            "none".to_owned()
                        } else {
                            qty(cl.max_position)
                        },
                        margin_call: cell.margin_call,
                    }
                })
                .collect();
            accounts.push(AccountReport {
                id: a as u32,
                name: limits.name.clone(),
                account_type: limits.account_type,
                margin_mode: limits.margin_mode,
                trading_state: view.trading_state,
                effective_state: view.effective_state,
                halt_reason: (view.trading_state == TradingState::Halted)
                    .then_some(view.halt_reason),
                kill_switch: view.kill_switch,
                equity: value(view.margin.equity),
                high_water_mark: value(view.high_water_mark),
                drawdown_bps: view.drawdown_bps,
                max_drawdown_bps: limits.max_drawdown_bps,
                gross_exposure: value(view.gross_exposure),
                max_gross_exposure: limit(limits.max_gross_exposure),
                net_exposure: value(view.net_position),
                max_net_exposure: limit(limits.max_net_exposure),
                initial_margin: value(view.margin.initial_margin),
                maintenance_margin: value(view.margin.maintenance_margin),
                free_margin: value(view.margin.free),
                margin_call: view.margin.breached,
                open_orders: view.open_orders,
                max_open_orders: limits.max_open_orders,
                orders_available: state.throttle.available(
                    now.0,
                    limits.emission_ns,
                    limits.order_burst,
                ),
                orders_per_minute: limits.orders_per_minute,
                balances,
                positions,
            });
        }
        RiskReport {
            valuation_currency: self.limits.valuation_currency.clone(),
            global_state: self.global_state,
            global_kill_switch: self.global_kill,
            accounts,
        }
    }
}

fn qty_text(mantissa: i64, places: u32) -> String {
    format_i128(i128::from(mantissa), places)
}

fn summary(a: &AccountState) -> [i128; 8] {
    [
        a.equity,
        a.collateral,
        a.gross,
        a.net_long,
        a.net_short,
        a.net_position,
        a.im_e4,
        a.mm_e4,
    ]
}

/// The desk's view of the whole risk state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RiskReport {
    /// Currency of every valued amount.
    pub valuation_currency: String,
    /// Global trading state.
    pub global_state: TradingState,
    /// Global kill switch.
    pub global_kill_switch: bool,
    /// Per account.
    pub accounts: Vec<AccountReport>,
}

/// One account in a [`RiskReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountReport {
    /// Dense id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Paper or live.
    pub account_type: AccountType,
    /// Margin mode.
    pub margin_mode: MarginMode,
    /// Own trading state.
    pub trading_state: TradingState,
    /// With the global state applied.
    pub effective_state: TradingState,
    /// Why halted.
    pub halt_reason: Option<RejectReason>,
    /// Kill switch (own or global).
    pub kill_switch: bool,
    /// Equity.
    pub equity: String,
    /// Intraday high-water mark.
    pub high_water_mark: String,
    /// Drawdown, bps.
    pub drawdown_bps: i128,
    /// Drawdown limit, bps (0: off).
    pub max_drawdown_bps: u32,
    /// Worst-case gross exposure.
    pub gross_exposure: String,
    /// Its limit.
    pub max_gross_exposure: String,
    /// Net value of the positions.
    pub net_exposure: String,
    /// Net exposure limit.
    pub max_net_exposure: String,
    /// Initial margin in use.
    pub initial_margin: String,
    /// Maintenance margin.
    pub maintenance_margin: String,
    /// Collateral minus initial margin.
    pub free_margin: String,
    /// In maintenance breach.
    pub margin_call: bool,
    /// Open orders.
    pub open_orders: usize,
    /// Their limit.
    pub max_open_orders: u32,
    /// Throttle tokens available now.
    pub orders_available: u32,
    /// Throttle rate.
    pub orders_per_minute: u32,
    /// Non-zero balances.
    pub balances: Vec<BalanceReport>,
    /// Active positions (or instruments with open orders).
    pub positions: Vec<PositionReport>,
}

/// One balance in an [`AccountReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceReport {
    /// Asset.
    pub asset: String,
    /// Balance.
    pub balance: String,
    /// Reserved by open buys (cash accounts).
    pub reserved: String,
}

/// One position in an [`AccountReport`] (amounts in the instrument's quote asset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PositionReport {
    /// Venue.
    pub venue: String,
    /// Symbol.
    pub symbol: String,
    /// Signed quantity.
    pub qty: String,
    /// Average entry price.
    pub avg_entry: String,
    /// Valuation price.
    pub mark: String,
    /// Realized P&L before fees.
    pub realized_pnl: String,
    /// Unrealized P&L.
    pub unrealized_pnl: String,
    /// Fees paid.
    pub fees: String,
    /// Open buy quantity.
    pub open_buy: String,
    /// Open sell quantity.
    pub open_sell: String,
    /// Open orders.
    pub open_orders: u32,
    /// Worst-case exposure (valuation currency).
    pub worst_exposure: String,
    /// Position limit.
    pub max_position: String,
    /// Isolated maintenance breach.
    pub margin_call: bool,
}
