//! Run-time administration: trading states, kill switches, limit changes, correlations.
//!
//! These run between hot-path calls on the engine thread (the desk's commands arrive as
//! events), so each takes effect atomically: the next check sees all of it or none of it.
//! They may allocate.

use aaiti_model::{
    AccountId, InstrumentId, OrderId, Qty, RejectReason, RiskEvent, RiskEventKind, Side,
};
use serde::{Deserialize, Serialize};

use crate::account::TradingState;
use crate::limits::{LimitDiff, RiskLimits, diff};
use crate::margin::FlattenOrder;
use crate::monitor::correlation::CorrelationMatrix;
use crate::{RiskEngine, RiskError};

/// What an admin action applies to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every account.
    Global,
    /// One account.
    Account(AccountId),
}

/// What the engine must do after engaging a kill switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillSwitchIntent {
    /// Scope engaged.
    pub scope: Scope,
    /// Every open order to cancel, by account then in tracking order.
    pub cancel: Vec<(AccountId, OrderId)>,
    /// Positions to close with liquidation orders (empty unless `flatten` was asked),
    /// by account then instrument.
    pub flatten: Vec<FlattenOrder>,
    /// The record to journal (kind `kill_switch`, action 3 cancel-all or 4 flatten,
    /// `value` 1 engaged).
    pub event: RiskEvent,
}

/// A limits change, for the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsChange {
    /// Every changed value.
    pub diffs: Vec<LimitDiff>,
    /// The limits before the change (to undo it).
    pub previous: RiskLimits,
}

impl LimitsChange {
    /// One `limits_changed` risk event per changed value (`value` new, `limit` old;
    /// account / instrument `u32::MAX` when not specific).
    pub fn events(&self) -> Vec<RiskEvent> {
        self.diffs
            .iter()
            .map(|d| RiskEvent {
                kind: RiskEventKind::LimitsChanged.code(),
                reason: RejectReason::None.code(),
                action: 0,
                account: AccountId(d.account.unwrap_or(u32::MAX)),
                instrument: InstrumentId(d.instrument.unwrap_or(u32::MAX)),
                value: crate::error::saturate(d.new),
                limit: crate::error::saturate(d.old),
                ..RiskEvent::default()
            })
            .collect()
    }
}

fn scope_ids(scope: Scope) -> AccountId {
    match scope {
        Scope::Global => AccountId(u32::MAX),
        Scope::Account(account) => account,
    }
}

impl RiskEngine {
    fn check_scope(&self, scope: Scope) -> Result<(), RiskError> {
        match scope {
            Scope::Account(account) if account.index() >= self.accounts.len() => {
                Err(RiskError::UnknownAccount(account))
            }
            _ => Ok(()),
        }
    }

    /// Sets the trading state of the engine or of one account. Setting an account
    /// `active` again after a drawdown halt keeps its high-water mark: call
    /// [`RiskEngine::reset_high_water_mark`] first, or the next equity update halts it
    /// again.
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn set_trading_state(
        &mut self,
        scope: Scope,
        state: TradingState,
    ) -> Result<RiskEvent, RiskError> {
        self.check_scope(scope)?;
        match scope {
            Scope::Global => self.global_state = state,
            Scope::Account(account) => {
                let a = &mut self.accounts[account.index()];
                a.trading = state;
                a.halt_reason = RejectReason::TradingHalted;
                if state == TradingState::Active {
                    a.margin_call = false;
                }
            }
        }
        Ok(RiskEvent {
            kind: RiskEventKind::TradingState.code(),
            reason: RejectReason::None.code(),
            action: state.action_code(),
            account: scope_ids(scope),
            instrument: InstrumentId(u32::MAX),
            ..RiskEvent::default()
        })
    }

    /// Engages a kill switch: every new order in scope is rejected with `kill_switch`
    /// until released. Returns the open orders to cancel and, if `flatten`, the positions
    /// to close, for the engine to carry out (as liquidation orders, which the kill switch
    /// lets through).
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn engage_kill_switch(
        &mut self,
        scope: Scope,
        flatten: bool,
    ) -> Result<KillSwitchIntent, RiskError> {
        self.check_scope(scope)?;
        let range = match scope {
            Scope::Global => {
                self.global_kill = true;
                0..self.accounts.len()
            }
            Scope::Account(account) => {
                self.accounts[account.index()].kill_switch = true;
                account.index()..account.index() + 1
            }
        };
        let mut cancel = Vec::new();
        let mut positions = Vec::new();
        for a in range {
            let account = AccountId(a as u32);
            cancel.extend(
                self.accounts[a]
                    .open_orders
                    .iter()
                    .map(|o| (account, o.order_id)),
            );
            if flatten {
                self.flatten_orders(account, None, &mut positions)?;
            }
        }
        Ok(KillSwitchIntent {
            scope,
            cancel,
            flatten: positions,
            event: RiskEvent {
                kind: RiskEventKind::KillSwitch.code(),
                reason: RejectReason::KillSwitch.code(),
                action: if flatten { 4 } else { 3 },
                account: scope_ids(scope),
                instrument: InstrumentId(u32::MAX),
                value: 1,
                ..RiskEvent::default()
            },
        })
    }

    /// Releases a kill switch (the global one does not release account ones).
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn release_kill_switch(&mut self, scope: Scope) -> Result<RiskEvent, RiskError> {
        self.check_scope(scope)?;
        match scope {
            Scope::Global => self.global_kill = false,
            Scope::Account(account) => self.accounts[account.index()].kill_switch = false,
        }
        Ok(RiskEvent {
            kind: RiskEventKind::KillSwitch.code(),
            reason: RejectReason::KillSwitch.code(),
            action: 0,
            account: scope_ids(scope),
            instrument: InstrumentId(u32::MAX),
            value: 0,
            ..RiskEvent::default()
        })
    }

    /// Appends to `out` the orders that would close every position of `account` (or only
    /// the one on `instrument`), in instrument order.
    ///
    /// # Errors
    ///
    /// Unknown account or instrument.
    pub fn flatten_orders(
        &self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        out: &mut Vec<FlattenOrder>,
    ) -> Result<(), RiskError> {
        let a = account.index();
        let Some(state) = self.accounts.get(a) else {
            return Err(RiskError::UnknownAccount(account));
        };
        let n = self.limits.instruments.len();
        if let Some(instrument) = instrument
            && instrument.index() >= n
        {
            return Err(RiskError::UnknownInstrument(instrument));
        }
        for &i in &state.active {
            if instrument.is_some_and(|only| only.0 != i) {
                continue;
            }
            let qty = self.cells[a * n + i as usize].position.qty;
            if qty != 0 {
                out.push(FlattenOrder {
                    account,
                    instrument: InstrumentId(i),
                    side: if qty > 0 { Side::Sell } else { Side::Buy },
                    qty: Qty(qty.saturating_abs()),
                });
            }
        }
        Ok(())
    }

    /// Restarts the account's intraday high-water mark at its current equity.
    ///
    /// # Errors
    ///
    /// Unknown account.
    pub fn reset_high_water_mark(&mut self, account: AccountId) -> Result<(), RiskError> {
        let Some(state) = self.accounts.get_mut(account.index()) else {
            return Err(RiskError::UnknownAccount(account));
        };
        state.high_water_mark = state.equity;
        Ok(())
    }

    /// Replaces every limit at once (the next check uses the new set) and revalues all
    /// positions with the new rates and margin rates. Positions, balances, open orders,
    /// states and high-water marks are kept; drawdown and margin are re-evaluated at the
    /// next mark or fill.
    ///
    /// # Errors
    ///
    /// [`RiskError::Shape`] / [`RiskError::Invalid`] if `new` was not compiled for the
    /// same accounts, instruments, venues and assets; nothing changes.
    pub fn replace_limits(&mut self, mut new: RiskLimits) -> Result<LimitsChange, RiskError> {
        new.validate()?;
        let old = &self.limits;
        let same = |what: &'static str, expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(RiskError::Shape {
                    what,
                    expected,
                    found,
                })
            }
        };
        same("accounts", old.accounts.len(), new.accounts.len())?;
        same("instruments", old.instruments.len(), new.instruments.len())?;
        same("assets", old.assets.len(), new.assets.len())?;
        same("venues", old.venues_enabled.len(), new.venues_enabled.len())?;
        for (a, b) in old.instruments.iter().zip(&new.instruments) {
            if (
                a.venue,
                &a.symbol,
                a.base,
                a.quote,
                a.price_places,
                a.qty_places,
            ) != (
                b.venue,
                &b.symbol,
                b.base,
                b.quote,
                b.price_places,
                b.qty_places,
            ) {
                return Err(RiskError::Invalid {
                    what: "limits",
                    detail: format!("instrument {} differs from {}", b.symbol, a.symbol),
                });
            }
        }
        for (a, b) in old.assets.iter().zip(&new.assets) {
            if (&a.name, a.places) != (&b.name, b.places) {
                return Err(RiskError::Invalid {
                    what: "limits",
                    detail: format!("asset {} differs from {}", b.name, a.name),
                });
            }
        }
        for (a, b) in old.accounts.iter().zip(&new.accounts) {
            if a.name != b.name || a.margin_mode != b.margin_mode {
                return Err(RiskError::Invalid {
                    what: "limits",
                    detail: format!(
                        "account {} changes name or margin mode (not supported at run time)",
                        a.name
                    ),
                });
            }
        }
        let diffs = diff(&self.limits, &new);
        let previous = std::mem::replace(&mut self.limits, new);
        self.reserve();
        if let Err(error) = self.rebuild() {
            self.limits = previous;
            self.rebuild()?;
            return Err(error);
        }
        Ok(LimitsChange { diffs, previous })
    }

    /// Replaces the correlation matrix the correlated-exposure check reads (from the
    /// monitor). Instruments outside the matrix correlate with nothing but themselves.
    pub fn set_correlations(&mut self, correlations: CorrelationMatrix) {
        self.correlations = correlations;
    }

    /// As [`RiskEngine::set_correlations`], copying into the current matrix's storage (no
    /// allocation once it has the size).
    pub fn copy_correlations(&mut self, correlations: &CorrelationMatrix) {
        self.correlations.copy_from(correlations);
    }
}
