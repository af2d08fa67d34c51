//! The risk engine: state, open-order tracking, fills and marks.
//!
//! One [`RiskEngine`] per engine thread; every method takes `&mut self` or `&self`, nothing
//! is shared, nothing locks. Hot-path methods ([`RiskEngine::check_new_order`],
//! [`RiskEngine::on_order_accepted`], [`RiskEngine::on_order_reduced`],
//! [`RiskEngine::on_order_done`], [`RiskEngine::on_fill`], [`RiskEngine::on_mark`]) do not
//! allocate (tracking vectors are preallocated; breaches go into the caller's reused
//! `Vec`), do not panic on any input, and either apply an update completely or return an
//! error having changed nothing.

use aaiti_model::{
    AccountId, InstrumentId, OrderId, Price, Qty, RejectReason, RiskEvent, RiskEventKind, Side,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

use crate::RiskError;
use crate::account::{AccountState, Cell, MarkState, TradingState};
use crate::limits::{LIQUIDATION_SLOTS, MarginMode, RiskLimits};
use crate::margin::{Breach, BreachAction, isolated_margin, value_cell};
use crate::monitor::correlation::CorrelationMatrix;

/// Nanoseconds per UTC day (the high-water mark resets when the day of engine time changes).
pub const NS_PER_DAY: u64 = 86_400_000_000_000;

/// Everything [`RiskEngine::new`] needs, produced by [`crate::config::compile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskSetup {
    /// Compiled limits.
    pub limits: RiskLimits,
    /// Opening balances, `[account][asset]`, money at each asset's places.
    pub balances: Vec<Vec<i128>>,
    /// Initial global trading state.
    pub global_state: TradingState,
    /// Initial trading state per account.
    pub account_states: Vec<TradingState>,
}

/// A fill as risk sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The open order it fills (its leaves are reduced by `qty`); `OrderId(0)` for a fill
    /// of no tracked order.
    pub order_id: OrderId,
    /// Side of the account's order.
    pub side: Side,
    /// Fill price (> 0).
    pub price: Price,
    /// Fill quantity (> 0).
    pub qty: Qty,
    /// Fee in the quote asset at the instrument's price scale (negative: rebate), as in
    /// [`aaiti_model::OrderEvent::fee`].
    pub fee: i64,
    /// Engine time of the fill.
    pub ts: UnixNanos,
}

/// Pre-trade risk, positions, balances, P&L and margin for every account.
///
/// Serialize it to snapshot the whole risk state; deserializing validates the shapes and
/// rebuilds the derived aggregates, so a restored engine behaves exactly like the original.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EngineState")]
pub struct RiskEngine {
    pub(crate) limits: RiskLimits,
    pub(crate) global_state: TradingState,
    pub(crate) global_kill: bool,
    pub(crate) accounts: Vec<AccountState>,
    pub(crate) cells: Vec<Cell>,
    pub(crate) marks: Vec<MarkState>,
    /// Per instrument: accounts with an active cell, ascending.
    pub(crate) holders: Vec<Vec<u32>>,
    #[serde(with = "correlation_serde")]
    pub(crate) correlations: CorrelationMatrix,
}

/// The serialized form, validated into a [`RiskEngine`].
#[derive(Deserialize)]
struct EngineState {
    limits: RiskLimits,
    global_state: TradingState,
    global_kill: bool,
    accounts: Vec<AccountState>,
    cells: Vec<Cell>,
    marks: Vec<MarkState>,
    holders: Vec<Vec<u32>>,
    #[serde(with = "correlation_serde")]
    correlations: CorrelationMatrix,
}

/// The correlation matrix in snapshots: `(n, row-major n × n bps)`, written and checked
/// through its public API only.
mod correlation_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    use crate::monitor::correlation::CorrelationMatrix;

    pub(super) fn serialize<S: Serializer>(
        matrix: &CorrelationMatrix,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let n = matrix.len();
        let mut values = Vec::with_capacity(n * n);
        for a in 0..n {
            for b in 0..n {
                values.push(matrix.rho_bp(a, b));
            }
        }
        (n, values).serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<CorrelationMatrix, D::Error> {
        let (n, values): (usize, Vec<i16>) = Deserialize::deserialize(deserializer)?;
        if n.checked_mul(n) != Some(values.len()) {
            return Err(D::Error::custom("correlation matrix is not n × n"));
        }
        let mut matrix = CorrelationMatrix::identity(n);
        for a in 0..n {
            if values[a * n + a] != 10_000 {
                return Err(D::Error::custom("correlation diagonal is not 10000"));
            }
            for b in a + 1..n {
                let rho = values[a * n + b];
                if rho != values[b * n + a] || !(-10_000..=10_000).contains(&rho) {
                    return Err(D::Error::custom(
                        "correlation matrix is not symmetric in ±10000",
                    ));
                }
                matrix.set_rho_bp(a, b, i32::from(rho));
            }
        }
        Ok(matrix)
    }
}

impl TryFrom<EngineState> for RiskEngine {
    type Error = RiskError;

    fn try_from(state: EngineState) -> Result<Self, RiskError> {
        let mut engine = Self {
            limits: state.limits,
            global_state: state.global_state,
            global_kill: state.global_kill,
            accounts: state.accounts,
            cells: state.cells,
            marks: state.marks,
            holders: state.holders,
            correlations: state.correlations,
        };
        engine.limits.validate()?;
        let (accounts, instruments) = (
            engine.limits.accounts.len(),
            engine.limits.instruments.len(),
        );
        shape("accounts", accounts, engine.accounts.len())?;
        shape("cells", accounts * instruments, engine.cells.len())?;
        shape("marks", instruments, engine.marks.len())?;
        shape("holders", instruments, engine.holders.len())?;
        for account in &engine.accounts {
            shape(
                "account assets",
                engine.limits.assets.len(),
                account.assets.len(),
            )?;
        }
        engine.reserve();
        engine.rebuild()?;
        Ok(engine)
    }
}

fn shape(what: &'static str, expected: usize, found: usize) -> Result<(), RiskError> {
    if expected == found {
        Ok(())
    } else {
        Err(RiskError::Shape {
            what,
            expected,
            found,
        })
    }
}

impl RiskEngine {
    /// Builds the engine: opening balances, states, empty positions; the high-water marks
    /// start at the opening equity.
    ///
    /// # Errors
    ///
    /// [`RiskError::Shape`] / [`RiskError::Invalid`] if the setup is inconsistent.
    pub fn new(setup: RiskSetup) -> Result<Self, RiskError> {
        let mut limits = setup.limits;
        limits.validate()?;
        let (n_accounts, n_instruments, n_assets) = (
            limits.accounts.len(),
            limits.instruments.len(),
            limits.assets.len(),
        );
        shape("account balances", n_accounts, setup.balances.len())?;
        shape("account states", n_accounts, setup.account_states.len())?;
        let mut accounts = Vec::with_capacity(n_accounts);
        for (balances, state) in setup.balances.iter().zip(&setup.account_states) {
            shape("balances", n_assets, balances.len())?;
            let mut account = AccountState::new(n_assets, *state);
            for (asset, balance) in account.assets.iter_mut().zip(balances) {
                asset.balance = *balance;
            }
            accounts.push(account);
        }
        let mut engine = Self {
            limits,
            global_state: setup.global_state,
            global_kill: false,
            accounts,
            cells: vec![Cell::default(); n_accounts * n_instruments],
            marks: vec![MarkState::default(); n_instruments],
            holders: vec![Vec::new(); n_instruments],
            correlations: CorrelationMatrix::identity(n_instruments),
        };
        engine.reserve();
        engine.rebuild()?;
        for account in &mut engine.accounts {
            account.high_water_mark = account.equity;
        }
        Ok(engine)
    }

    /// Preallocates every tracking vector to its limit so the hot path never allocates.
    pub(crate) fn reserve(&mut self) {
        let n_instruments = self.limits.instruments.len();
        let n_accounts = self.accounts.len();
        for (account, limits) in self.accounts.iter_mut().zip(&self.limits.accounts) {
            let want = limits.max_open_orders as usize + LIQUIDATION_SLOTS;
            let len = account.open_orders.len();
            account.open_orders.reserve(want.saturating_sub(len));
            account
                .active
                .reserve(n_instruments.saturating_sub(account.active.len()));
        }
        for holders in &mut self.holders {
            holders.reserve(n_accounts.saturating_sub(holders.len()));
        }
    }

    /// Recomputes every derived value (open-order aggregates, active lists, valuations,
    /// sums) from the primary state.
    pub(crate) fn rebuild(&mut self) -> Result<(), RiskError> {
        let n = self.limits.instruments.len();
        for holders in &mut self.holders {
            holders.clear();
        }
        for cell in &mut self.cells {
            cell.open_buy = 0;
            cell.open_sell = 0;
            cell.open_count = 0;
            cell.best_buy = 0;
            cell.best_sell = 0;
            cell.reserved = 0;
            cell.active = false;
            cell.values = Default::default();
        }
        for (a, account) in self.accounts.iter_mut().enumerate() {
            account.clear_derived();
            account.active.clear();
            for order in &account.open_orders {
                let i = order.instrument as usize;
                let Some(inst) = self.limits.instruments.get(i) else {
                    return Err(RiskError::UnknownInstrument(InstrumentId(order.instrument)));
                };
                if order.leaves <= 0 || order.price <= 0 || order.reserved < 0 {
                    return Err(RiskError::Invalid {
                        what: "open order",
                        detail: format!("order {} has no leaves or price", order.order_id),
                    });
                }
                let overflow = RiskError::Overflow {
                    what: "open orders",
                };
                let cell = &mut self.cells[a * n + i];
                match order.side {
                    Side::Buy => {
                        cell.open_buy = cell.open_buy.checked_add(order.leaves).ok_or(overflow)?;
                        cell.best_buy = cell.best_buy.max(order.price);
                    }
                    Side::Sell => {
                        cell.open_sell =
                            cell.open_sell.checked_add(order.leaves).ok_or(overflow)?;
                        cell.best_sell = if cell.best_sell == 0 {
                            order.price
                        } else {
                            cell.best_sell.min(order.price)
                        };
                    }
                }
                cell.open_count += 1;
                cell.reserved = cell.reserved.saturating_add(order.reserved);
                let asset = &mut account.assets[inst.quote as usize];
                asset.reserved = asset.reserved.saturating_add(order.reserved);
            }
            for i in 0..n {
                let cell = &mut self.cells[a * n + i];
                if cell.should_be_active() {
                    cell.active = true;
                    account.active.push(i as u32);
                    self.holders[i].push(a as u32);
                }
            }
        }
        for a in 0..self.accounts.len() {
            for k in 0..self.accounts[a].active.len() {
                let i = self.accounts[a].active[k] as usize;
                self.revalue(a, i);
            }
            for asset in 0..self.limits.assets.len() {
                self.refresh_asset(a, asset);
            }
        }
        Ok(())
    }

    /// Validates an (account, instrument) pair; returns their indexes.
    #[inline]
    pub(crate) fn ids(
        &self,
        account: AccountId,
        instrument: InstrumentId,
    ) -> Result<(usize, usize), RiskError> {
        let (a, i) = (account.index(), instrument.index());
        if a >= self.accounts.len() {
            return Err(RiskError::UnknownAccount(account));
        }
        if i >= self.limits.instruments.len() {
            return Err(RiskError::UnknownInstrument(instrument));
        }
        Ok((a, i))
    }

    /// Revalues cell (a, i) at the instrument's price and moves the account sums by the
    /// difference.
    #[inline]
    pub(crate) fn revalue(&mut self, a: usize, i: usize) {
        let n = self.limits.instruments.len();
        let inst = &self.limits.instruments[i];
        let mode = self.limits.accounts[a].margin_mode;
        let limits = &self.limits.cells[a * n + i];
        let cell = &mut self.cells[a * n + i];
        let new = value_cell(cell, self.marks[i].price, inst, limits, mode);
        let old = std::mem::replace(&mut cell.values, new);
        if old == new {
            return;
        }
        let account = &mut self.accounts[a];
        let step = |sum: i128, new: i128, old: i128| sum.saturating_add(new).saturating_sub(old);
        account.gross = step(account.gross, new.worst, old.worst);
        account.net_long = step(account.net_long, new.long_worst, old.long_worst);
        account.net_short = step(account.net_short, new.short_worst, old.short_worst);
        account.net_position = step(account.net_position, new.position, old.position);
        account.im_e4 = step(account.im_e4, new.im_e4, old.im_e4);
        account.mm_e4 = step(account.mm_e4, new.mm_e4, old.mm_e4);
        let quote = inst.quote as usize;
        let asset = &mut account.assets[quote];
        asset.equity = step(asset.equity, new.equity, old.equity);
        asset.loss = step(asset.loss, new.loss, old.loss);
        if new.equity != old.equity || new.loss != old.loss {
            self.refresh_asset(a, quote);
        }
    }

    /// Revalues asset `k` of account `a` and moves the account's equity and collateral.
    #[inline]
    pub(crate) fn refresh_asset(&mut self, a: usize, k: usize) {
        let params = &self.limits.assets[k];
        let isolated = self.limits.accounts[a].margin_mode == MarginMode::Isolated;
        let account = &mut self.accounts[a];
        let asset = &mut account.assets[k];
        let value = params
            .to_value
            .apply(asset.balance.saturating_add(asset.equity));
        let collateral = if isolated {
            params
                .to_value
                .apply(asset.balance.saturating_add(asset.loss))
        } else {
            value
        };
        let (old_value, old_collateral) = (asset.value, asset.collateral);
        asset.value = value;
        asset.collateral = collateral;
        account.equity = account
            .equity
            .saturating_add(value)
            .saturating_sub(old_value);
        account.collateral = account
            .collateral
            .saturating_add(collateral)
            .saturating_sub(old_collateral);
    }

    /// Puts cell (a, i) into or out of the active lists as its content requires.
    #[inline]
    fn sync_active(&mut self, a: usize, i: usize) {
        let n = self.limits.instruments.len();
        let cell = &mut self.cells[a * n + i];
        let should = cell.should_be_active();
        if should == cell.active {
            return;
        }
        cell.active = should;
        let account = &mut self.accounts[a].active;
        let holders = &mut self.holders[i];
        if should {
            if let Err(at) = account.binary_search(&(i as u32)) {
                account.insert(at, i as u32);
            }
            if let Err(at) = holders.binary_search(&(a as u32)) {
                holders.insert(at, a as u32);
            }
        } else {
            if let Ok(at) = account.binary_search(&(i as u32)) {
                account.remove(at);
            }
            if let Ok(at) = holders.binary_search(&(a as u32)) {
                holders.remove(at);
            }
        }
    }

    /// Sets instrument `i`'s valuation price and revalues every holder.
    fn set_price(&mut self, i: usize, price: i64) {
        if self.marks[i].price == price {
            return;
        }
        self.marks[i].price = price;
        for k in 0..self.holders[i].len() {
            let a = self.holders[i][k] as usize;
            self.revalue(a, i);
        }
    }

    // ------------------------------------------------------------------------------------
    // Open orders
    // ------------------------------------------------------------------------------------

    /// Registers an order the OMS has committed to send (call right after a successful
    /// [`RiskEngine::check_new_order`], before the next check, and before the venue
    /// acknowledges it). Its leaves count toward the worst-case position, exposures,
    /// margin, balance reservation, open-order counts and self-trade prevention until
    /// [`RiskEngine::on_order_done`].
    ///
    /// Tracking is preallocated for the account's `max_open_orders` plus 16 liquidation
    /// orders; only beyond that (liquidation orders, or orders accepted without a check)
    /// does the tracking vector grow.
    ///
    /// # Errors
    ///
    /// Unknown ids, non-positive price or quantity, an `order_id` of 0 or one already open
    /// for the account, or overflow; nothing changes.
    pub fn on_order_accepted(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        order_id: OrderId,
        side: Side,
        price: Price,
        leaves: Qty,
    ) -> Result<(), RiskError> {
        let (a, i) = self.ids(account, instrument)?;
        if leaves.0 <= 0 {
            return Err(RiskError::InvalidQuantity(leaves.0));
        }
        if price.0 <= 0 {
            return Err(RiskError::InvalidPrice(price.0));
        }
        let duplicate = RiskError::DuplicateOrder { account, order_id };
        if order_id.0 == 0 {
            return Err(duplicate);
        }
        if self.accounts[a]
            .open_orders
            .iter()
            .any(|o| o.order_id == order_id)
        {
            return Err(duplicate);
        }
        let n = self.limits.instruments.len();
        let inst = &self.limits.instruments[i];
        let quote = inst.quote as usize;
        let overflow = RiskError::Overflow {
            what: "open orders",
        };
        let reserved = match side {
            Side::Buy => inst
                .to_money
                .apply_checked(i128::from(price.0) * i128::from(leaves.0))
                .ok_or(overflow.clone())?,
            Side::Sell => 0,
        };
        let cell = &self.cells[a * n + i];
        let (open_buy, open_sell) = match side {
            Side::Buy => (
                cell.open_buy
                    .checked_add(leaves.0)
                    .ok_or(overflow.clone())?,
                cell.open_sell,
            ),
            Side::Sell => (
                cell.open_buy,
                cell.open_sell
                    .checked_add(leaves.0)
                    .ok_or(overflow.clone())?,
            ),
        };
        let cell_reserved = cell
            .reserved
            .checked_add(reserved)
            .ok_or(overflow.clone())?;
        let asset_reserved = self.accounts[a].assets[quote]
            .reserved
            .checked_add(reserved)
            .ok_or(overflow)?;

        let cell = &mut self.cells[a * n + i];
        cell.open_buy = open_buy;
        cell.open_sell = open_sell;
        cell.open_count += 1;
        cell.reserved = cell_reserved;
        match side {
            Side::Buy => cell.best_buy = cell.best_buy.max(price.0),
            Side::Sell if cell.best_sell == 0 => cell.best_sell = price.0,
            Side::Sell => cell.best_sell = cell.best_sell.min(price.0),
        }
        let account = &mut self.accounts[a];
        account.assets[quote].reserved = asset_reserved;
        account.open_orders.push(crate::account::OpenOrder {
            order_id,
            instrument: i as u32,
            side,
            price: price.0,
            leaves: leaves.0,
            reserved,
        });
        self.sync_active(a, i);
        if self.marks[i].price == 0 {
            self.set_price(i, price.0);
        } else {
            self.revalue(a, i);
        }
        Ok(())
    }

    /// An open order's leaves quantity went down to `leaves` (partial cancel, replace
    /// down, or a venue report); 0 is [`RiskEngine::on_order_done`]. Do not call it for
    /// fills passed to [`RiskEngine::on_fill`] with the order id: those reduce the leaves
    /// already.
    ///
    /// # Errors
    ///
    /// Unknown account or order, negative `leaves`, or `leaves` above the current leaves
    /// (an increase must be checked as a new order); nothing changes.
    pub fn on_order_reduced(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        leaves: Qty,
    ) -> Result<(), RiskError> {
        let a = account.index();
        let Some(state) = self.accounts.get(a) else {
            return Err(RiskError::UnknownAccount(account));
        };
        if leaves.0 < 0 {
            return Err(RiskError::InvalidQuantity(leaves.0));
        }
        let Some(slot) = state
            .open_orders
            .iter()
            .position(|o| o.order_id == order_id)
        else {
            return Err(RiskError::UnknownOrder { account, order_id });
        };
        let order = state.open_orders[slot];
        if leaves.0 > order.leaves {
            return Err(RiskError::LeavesIncrease {
                order_id,
                leaves: order.leaves,
                requested: leaves.0,
            });
        }
        if leaves.0 == order.leaves {
            return Ok(());
        }
        let i = order.instrument as usize;
        self.set_leaves(a, slot, leaves.0);
        self.sync_active(a, i);
        self.revalue(a, i);
        Ok(())
    }

    /// The order is done (filled, canceled, expired or rejected by the venue): it no
    /// longer counts anywhere.
    ///
    /// # Errors
    ///
    /// Unknown account or order; nothing changes.
    pub fn on_order_done(
        &mut self,
        account: AccountId,
        order_id: OrderId,
    ) -> Result<(), RiskError> {
        self.on_order_reduced(account, order_id, Qty(0))
    }

    /// Sets the leaves of open order `slot` of account `a` to `leaves` (`0 ≤ leaves ≤`
    /// current), updating the cell's aggregates; removes it at 0. The caller revalues.
    fn set_leaves(&mut self, a: usize, slot: usize, leaves: i64) {
        let n = self.limits.instruments.len();
        let order = self.accounts[a].open_orders[slot];
        let i = order.instrument as usize;
        let inst = &self.limits.instruments[i];
        let quote = inst.quote as usize;
        let delta = order.leaves - leaves;
        let reserved = match order.side {
            Side::Buy => inst
                .to_money
                .apply(i128::from(order.price) * i128::from(leaves)),
            Side::Sell => 0,
        };
        let cell = &mut self.cells[a * n + i];
        match order.side {
            Side::Buy => cell.open_buy -= delta,
            Side::Sell => cell.open_sell -= delta,
        }
        cell.reserved = cell.reserved - order.reserved + reserved;
        let account = &mut self.accounts[a];
        let asset = &mut account.assets[quote];
        asset.reserved = asset.reserved - order.reserved + reserved;
        if leaves > 0 {
            let open = &mut account.open_orders[slot];
            open.leaves = leaves;
            open.reserved = reserved;
            return;
        }
        account.open_orders.swap_remove(slot);
        cell.open_count -= 1;
        let best = match order.side {
            Side::Buy => cell.best_buy,
            Side::Sell => cell.best_sell,
        };
        if best == order.price {
            let mut best = 0;
            for o in &account.open_orders {
                if o.instrument as usize == i && o.side == order.side {
                    best = match order.side {
                        Side::Buy => best.max(o.price),
                        Side::Sell if best == 0 => o.price,
                        Side::Sell => best.min(o.price),
                    };
                }
            }
            match order.side {
                Side::Buy => cell.best_buy = best,
                Side::Sell => cell.best_sell = best,
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Fills and marks
    // ------------------------------------------------------------------------------------

    /// Applies a fill: position (average entry on increase, realized P&L on reduce or
    /// flip), fees, the quote balance (margin accounts: realized P&L − fee; cash accounts:
    /// −side × notional − fee), the order's leaves (when `order_id` is tracked), equity and
    /// the high-water mark; then checks drawdown and maintenance margin and appends any
    /// new breach to `breaches` (risk has already applied the trading-state part).
    ///
    /// Before the instrument's first [`RiskEngine::on_mark`], the fill price becomes its
    /// provisional valuation price.
    ///
    /// # Errors
    ///
    /// Unknown ids, non-positive price or quantity, or overflow; nothing changes. A fill
    /// whose `order_id` is not open is still applied (it is a fact) and counted in the
    /// account's `untracked_fills`.
    pub fn on_fill(&mut self, fill: &Fill, breaches: &mut Vec<Breach>) -> Result<(), RiskError> {
        let (a, i) = self.ids(fill.account, fill.instrument)?;
        if fill.qty.0 <= 0 {
            return Err(RiskError::InvalidQuantity(fill.qty.0));
        }
        if fill.price.0 <= 0 {
            return Err(RiskError::InvalidPrice(fill.price.0));
        }
        let n = self.limits.instruments.len();
        let inst = &self.limits.instruments[i];
        let quote = inst.quote as usize;
        let mode = self.limits.accounts[a].margin_mode;
        let cell = &self.cells[a * n + i];
        let overflow = |what| RiskError::Overflow { what };
        let (mut position, realized) = cell
            .position
            .after_fill(fill.side, fill.price, fill.qty)
            .ok_or(overflow("position"))?;
        let fee_raw = i128::from(fill.fee)
            .checked_mul(inst.fee_to_raw)
            .ok_or(overflow("fees"))?;
        position.fees = position.fees.checked_add(fee_raw).ok_or(overflow("fees"))?;
        let flow_raw = match mode {
            MarginMode::Cash => {
                i128::from(-fill.side.sign()) * i128::from(fill.price.0) * i128::from(fill.qty.0)
            }
            MarginMode::Cross | MarginMode::Isolated => realized,
        };
        let flow = inst
            .to_money
            .apply_checked(flow_raw)
            .ok_or(overflow("balance"))?;
        let fee = inst
            .fee_to_money
            .apply_checked(i128::from(fill.fee))
            .ok_or(overflow("balance"))?;
        let balance = flow
            .checked_sub(fee)
            .and_then(|delta| self.accounts[a].assets[quote].balance.checked_add(delta))
            .ok_or(overflow("balance"))?;
        let slot = if fill.order_id.0 == 0 {
            None
        } else {
            self.accounts[a].open_orders.iter().position(|o| {
                o.order_id == fill.order_id && o.instrument as usize == i && o.side == fill.side
            })
        };

        // Commit: nothing below can fail.
        self.cells[a * n + i].position = position;
        self.accounts[a].assets[quote].balance = balance;
        match slot {
            Some(slot) => {
                let leaves = self.accounts[a].open_orders[slot].leaves;
                self.set_leaves(a, slot, leaves - leaves.min(fill.qty.0));
            }
            None if fill.order_id.0 != 0 => self.accounts[a].untracked_fills += 1,
            None => {}
        }
        self.sync_active(a, i);
        self.revalue(a, i);
        if !self.marks[i].marked {
            self.set_price(i, fill.price.0);
        }
        self.refresh_asset(a, quote);
        self.check_isolated(a, i, breaches);
        self.after_equity_change(a, fill.ts, breaches);
        Ok(())
    }

    /// A new valuation price for `instrument` (book mid or last trade, the engine
    /// decides): revalues every account holding it or with orders on it (O(those
    /// accounts), no allocation), updates equity and high-water marks, and appends new
    /// drawdown and maintenance breaches to `breaches`.
    ///
    /// # Errors
    ///
    /// Unknown instrument or non-positive price; nothing changes.
    pub fn on_mark(
        &mut self,
        instrument: InstrumentId,
        price: Price,
        ts: UnixNanos,
        breaches: &mut Vec<Breach>,
    ) -> Result<(), RiskError> {
        let i = instrument.index();
        if i >= self.marks.len() {
            return Err(RiskError::UnknownInstrument(instrument));
        }
        if price.0 <= 0 {
            return Err(RiskError::InvalidPrice(price.0));
        }
        self.marks[i].marked = true;
        self.marks[i].price = price.0;
        for k in 0..self.holders[i].len() {
            let a = self.holders[i][k] as usize;
            self.revalue(a, i);
            self.check_isolated(a, i, breaches);
            self.after_equity_change(a, ts, breaches);
        }
        Ok(())
    }

    /// Isolated maintenance check of cell (a, i), edge-triggered.
    fn check_isolated(&mut self, a: usize, i: usize, breaches: &mut Vec<Breach>) {
        let limits = &self.limits.accounts[a];
        if limits.margin_mode != MarginMode::Isolated {
            return;
        }
        let action = limits.margin_call_action;
        let n = self.limits.instruments.len();
        let cell = &self.cells[a * n + i];
        let status = isolated_margin(
            cell,
            self.marks[i].price,
            &self.limits.instruments[i],
            &self.limits.cells[a * n + i],
        );
        let breached = matches!(status, Some((equity, required)) if equity < required);
        let was = cell.margin_call;
        self.cells[a * n + i].margin_call = breached;
        if breached && !was {
            let (equity, required) = status.unwrap_or_default();
            self.margin_call(
                a,
                Some(i),
                equity / 10_000,
                required / 10_000,
                action,
                breaches,
            );
        }
    }

    /// Applies a margin call's trading-state part and reports it.
    fn margin_call(
        &mut self,
        a: usize,
        instrument: Option<usize>,
        value: i128,
        required: i128,
        action: crate::limits::MarginCallAction,
        breaches: &mut Vec<Breach>,
    ) {
        use crate::limits::MarginCallAction as M;
        let account = &mut self.accounts[a];
        if action != M::Alert && account.trading == TradingState::Active {
            account.trading = TradingState::ReduceOnly;
        }
        let instrument_id = instrument.map(|i| InstrumentId(i as u32));
        breaches.push(Breach {
            event: RiskEvent {
                kind: RiskEventKind::MarginCall.code(),
                reason: RejectReason::InsufficientMargin.code(),
                action: action.action_code(),
                account: AccountId(a as u32),
                instrument: instrument_id.unwrap_or(InstrumentId(u32::MAX)),
                value: crate::error::saturate(value),
                limit: crate::error::saturate(required),
                ..RiskEvent::default()
            },
            action: match action {
                M::Alert => BreachAction::Alert,
                M::ReduceOnly => BreachAction::ReduceOnly,
                M::Flatten => BreachAction::Flatten {
                    instrument: instrument_id,
                },
            },
        });
    }

    /// High-water mark, drawdown halt and cross-margin maintenance check of account `a`.
    fn after_equity_change(&mut self, a: usize, ts: UnixNanos, breaches: &mut Vec<Breach>) {
        let limits = &self.limits.accounts[a];
        let (max_dd, mode, action) = (
            limits.max_drawdown_bps,
            limits.margin_mode,
            limits.margin_call_action,
        );
        let account = &mut self.accounts[a];
        let day = ts.0 / NS_PER_DAY;
        if account.hwm_day == u64::MAX {
            account.hwm_day = day;
        } else if day > account.hwm_day {
            account.hwm_day = day;
            account.high_water_mark = account.equity;
        }
        account.high_water_mark = account.high_water_mark.max(account.equity);
        let hwm = account.high_water_mark;
        if max_dd > 0 && hwm > 0 && account.trading != TradingState::Halted {
            let drawdown = hwm.saturating_sub(account.equity);
            if drawdown.saturating_mul(10_000) >= i128::from(max_dd).saturating_mul(hwm) {
                account.trading = TradingState::Halted;
                account.halt_reason = RejectReason::DrawdownHalt;
                breaches.push(Breach {
                    event: RiskEvent {
                        kind: RiskEventKind::Drawdown.code(),
                        reason: RejectReason::DrawdownHalt.code(),
                        action: TradingState::Halted.action_code(),
                        account: AccountId(a as u32),
                        instrument: InstrumentId(u32::MAX),
                        value: crate::error::saturate(drawdown.saturating_mul(10_000) / hwm),
                        limit: i64::from(max_dd),
                        ..RiskEvent::default()
                    },
                    action: BreachAction::Halt,
                });
            }
        }
        if mode == MarginMode::Cross {
            let breached =
                account.mm_e4 > 0 && account.equity.saturating_mul(10_000) < account.mm_e4;
            let was = account.margin_call;
            account.margin_call = breached;
            if breached && !was {
                let (equity, required) = (account.equity, ceil_e4(account.mm_e4));
                self.margin_call(a, None, equity, required, action, breaches);
            }
        }
    }
}

/// `⌈x / 10_000⌉` for non-negative `x` (margin requirements are never understated).
#[inline]
pub(crate) fn ceil_e4(x: i128) -> i128 {
    let q = x / 10_000;
    if x % 10_000 > 0 { q + 1 } else { q }
}
