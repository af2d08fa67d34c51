//! The pre-trade check.
//!
//! [`RiskEngine::check_new_order`] runs every check below in this order and returns the
//! first failure; on success it takes one throttle token, and the engine must then call
//! [`RiskEngine::on_order_accepted`] before the next check. It does not allocate, lock or
//! panic, and a reject changes nothing.
//!
//! | # | check | reason | `value` | `limit` |
//! |---|---|---|---|---|
//! | 1 | ids, qty > 0, price > 0, known flags | `unknown_account` / `unknown_instrument` / `invalid_quantity` / `invalid_price` / `unsupported_order` | the id / mantissa / flags | count / 0 |
//! | 2 | kill switch (global, account) | `kill_switch` | 1 global, 2 account | 0 |
//! | 3 | trading state halted (global, account) | `trading_halted` or `drawdown_halt` | 2 | 0 |
//! | 4 | venue enabled, instrument enabled for the account | `venue_disabled` / `instrument_disabled` | venue / instrument id | 0 |
//! | 5 | reduce-only (account or global state, or the order's `REDUCE_ONLY` flag): opposite side to the position and `qty + same-side open ≤ \|position\|` | `reduce_only` | qty + same-side open | \|position\| |
//! | 6 | throttle (token bucket on engine time) | `rate_limited` | ns until a token | orders per minute |
//! | 7 | order quantity | `max_order_qty` | qty | limit (qty mantissas) |
//! | 8 | order notional, per instrument (quote) then per account (valued) | `max_order_notional` | raw notional / value | limit |
//! | 9 | price band: `\|price − reference\| ≤ band × reference` | `price_band` | deviation bps, rounded up (−1: no reference price) | band bps |
//! | 10 | self-trade: a buy at or above the account's own resting sell (any resting sell for a market order), and vice versa | `self_trade` | order price | own best opposite price |
//! | 11 | open orders per account, then per instrument | `max_open_orders` | open count | limit |
//! | 12 | worst-case position: `position + open buys + qty` (buy) or `open sells + qty − position` (sell) | `max_position` | that quantity | limit |
//! | 13 | gross exposure after (only if the order raises it) | `max_gross_exposure` | value | limit |
//! | 14 | net exposure after, in the order's direction | `max_net_exposure` | \|value\| | limit |
//! | 15 | concentration: the instrument's worst-case exposure ÷ equity (if raised) | `concentration` | bps, rounded up | bps |
//! | 16 | correlated exposure: Σ worst-case exposure of instruments with ρ ≥ threshold, this one after the order (if raised) | `correlated_exposure` | value | limit |
//! | 17a | cash account buy: notional ≤ quote balance − reserved | `insufficient_balance` | needed (quote money) | free |
//! | 17b | cash account sell: qty ≤ position − open sells (no shorts) | `insufficient_balance` | qty | available |
//! | 17c | margin account: initial margin after ≤ collateral (if raised) | `insufficient_margin` | margin (value) | collateral (value) |
//!
//! Reduce-only orders stop after check 11: they cannot raise a position, an exposure or a
//! margin requirement. Values are valuation mantissas at
//! [`VALUE_PLACES`](crate::limits::VALUE_PLACES) unless noted; raw notional is quote at
//! price + quantity places; money at the asset's places (see [`crate::limits`]).
//!
//! Exposures of the order's instrument are valued at its latest mark (or, before any mark,
//! at the order price); the order's own notional (checks 8, 17a) at the order price. For a
//! market order the engine passes, as `price`, the price it protects the order with (e.g.
//! the far side of the band).
//!
//! **Liquidation orders** (`liquidation = true`, sent by the engine to carry out a kill
//! switch or margin call) skip checks 2–4 and 6–9 and 11–17 but must reduce the position
//! (`qty ≤ |position|`, open orders not counted, since their cancels may still be in
//! flight) and still pass self-trade prevention; they take no throttle token.

use aaiti_model::{
    AccountId, InstrumentId, OrderFlags, OrderId, OrderType, Price, Qty, RejectReason, Side,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

use crate::account::{Cell, TradingState};
use crate::engine::ceil_e4;
use crate::limits::{MarginMode, NO_LIMIT};
use crate::{RiskEngine, RiskReject};

/// An order to check.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Engine order id (for the risk event; not tracked until accepted).
    pub order_id: OrderId,
    /// Side.
    pub side: Side,
    /// Order type (market-like types without a limit price cross any resting order of the
    /// account for self-trade prevention).
    pub order_type: OrderType,
    /// Limit price; for market orders the engine's protection price.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Order flags (`REDUCE_ONLY` is enforced here).
    pub flags: OrderFlags,
    /// Reference price for the band (book mid or last trade, the engine decides); 0: none.
    pub reference_price: Price,
    /// Set only by the engine for orders that carry out a kill switch or margin call.
    pub liquidation: bool,
}

#[inline(always)]
fn reject(reason: RejectReason, value: i128, limit: i128) -> Result<usize, RiskReject> {
    Err(RiskReject::new(reason, value, limit))
}

/// Self-trade prevention against the account's own resting orders on the instrument.
#[inline(always)]
fn self_trade(cell: &Cell, order: &NewOrder) -> Result<(), RiskReject> {
    let market = !order.order_type.has_limit_price();
    let p = order.price.0;
    let crosses = match order.side {
        Side::Buy => cell.best_sell > 0 && (market || p >= cell.best_sell),
        Side::Sell => cell.best_buy > 0 && (market || p <= cell.best_buy),
    };
    if crosses {
        let own = match order.side {
            Side::Buy => cell.best_sell,
            Side::Sell => cell.best_buy,
        };
        return Err(RiskReject::new(
            RejectReason::SelfTrade,
            i128::from(p),
            i128::from(own),
        ));
    }
    Ok(())
}

impl RiskEngine {
    /// Runs every pre-trade check (see the [module docs](crate::pretrade)) at engine time
    /// `now`; on success takes one throttle token from the account.
    ///
    /// # Errors
    ///
    /// The first failed check, with its reason, observed value and limit; nothing changes.
    #[inline]
    pub fn check_new_order(&mut self, order: &NewOrder, now: UnixNanos) -> Result<(), RiskReject> {
        let a = self.evaluate(order, now)?;
        if !order.liquidation
            && let (Some(account), Some(limits)) =
                (self.accounts.get_mut(a), self.limits.accounts.get(a))
        {
            account.throttle.consume(now.0, limits.emission_ns);
        }
        Ok(())
    }

    /// The same checks as [`RiskEngine::check_new_order`] without taking a throttle token
    /// (what-if for the desk).
    ///
    /// # Errors
    ///
    /// As [`RiskEngine::check_new_order`].
    pub fn would_accept(&self, order: &NewOrder, now: UnixNanos) -> Result<(), RiskReject> {
        self.evaluate(order, now).map(|_| ())
    }

    /// The checks; returns the account index.
    #[inline]
    fn evaluate(&self, order: &NewOrder, now: UnixNanos) -> Result<usize, RiskReject> {
        use RejectReason as R;
        let a = order.account.index();
        let i = order.instrument.index();
        let n = self.limits.instruments.len();
        let (Some(account), Some(al)) = (self.accounts.get(a), self.limits.accounts.get(a)) else {
            return reject(R::UnknownAccount, a as i128, self.accounts.len() as i128);
        };
        let Some(inst) = self.limits.instruments.get(i) else {
            return reject(R::UnknownInstrument, i as i128, n as i128);
        };
        let ci = a * n + i;
        let (Some(cell), Some(cl), Some(mark)) = (
            self.cells.get(ci),
            self.limits.cells.get(ci),
            self.marks.get(i),
        ) else {
            return reject(R::UnknownInstrument, i as i128, n as i128);
        };
        let q = order.qty.0;
        let p = order.price.0;
        if q <= 0 {
            return reject(R::InvalidQuantity, i128::from(q), 0);
        }
        if p <= 0 {
            return reject(R::InvalidPrice, i128::from(p), 0);
        }
        if order.flags.has_unknown_bits() {
            return reject(
                R::UnsupportedOrder,
                i128::from(order.flags.0),
                i128::from(OrderFlags::ALL.0),
            );
        }
        let buy = order.side == Side::Buy;
        let pos = i128::from(cell.position.qty);
        let qq = i128::from(q);
        let reducing_side = pos != 0 && (pos > 0) != buy;

        if order.liquidation {
            if !reducing_side || qq > pos.abs() {
                return reject(R::ReduceOnly, qq, pos.abs());
            }
            self_trade(cell, order)?;
            return Ok(a);
        }

        if self.global_kill {
            return reject(R::KillSwitch, 1, 0);
        }
        if account.kill_switch {
            return reject(R::KillSwitch, 2, 0);
        }
        let state = self.global_state.max(account.trading);
        if state == TradingState::Halted {
            let reason = if account.trading == TradingState::Halted {
                account.halt_reason
            } else {
                R::TradingHalted
            };
            return reject(reason, 2, 0);
        }
        if !self
            .limits
            .venues_enabled
            .get(inst.venue.index())
            .copied()
            .unwrap_or(false)
        {
            return reject(R::VenueDisabled, i128::from(inst.venue.0), 0);
        }
        if !cl.enabled {
            return reject(R::InstrumentDisabled, i as i128, 0);
        }
        let (open_buy, open_sell) = (i128::from(cell.open_buy), i128::from(cell.open_sell));
        let reduce =
            state == TradingState::ReduceOnly || order.flags.contains(OrderFlags::REDUCE_ONLY);
        if reduce {
            let total = qq + if buy { open_buy } else { open_sell };
            if !reducing_side || total > pos.abs() {
                return reject(R::ReduceOnly, total, pos.abs());
            }
        }
        if let Err(wait_ns) = account
            .throttle
            .check(now.0, al.emission_ns, al.tolerance_ns)
        {
            return reject(
                R::RateLimited,
                i128::from(wait_ns),
                i128::from(al.orders_per_minute),
            );
        }
        if q > cl.max_order_qty {
            return reject(R::MaxOrderQty, qq, i128::from(cl.max_order_qty));
        }
        let raw = i128::from(p) * qq;
        if raw > cl.max_order_notional {
            return reject(R::MaxOrderNotional, raw, cl.max_order_notional);
        }
        let order_value = inst.to_value.apply(raw);
        if order_value > al.max_order_notional {
            return reject(R::MaxOrderNotional, order_value, al.max_order_notional);
        }
        if cl.price_band_bps > 0 {
            let reference = i128::from(order.reference_price.0);
            let band = i128::from(cl.price_band_bps);
            if reference <= 0 {
                return reject(R::PriceBand, -1, band);
            }
            let deviation = (i128::from(p) - reference).abs() * 10_000;
            if deviation > band * reference {
                // Rounded up, so the reported value is above the limit.
                return reject(R::PriceBand, (deviation + reference - 1) / reference, band);
            }
        }
        self_trade(cell, order)?;
        if account.open_orders.len() >= al.max_open_orders as usize {
            return reject(
                R::MaxOpenOrders,
                account.open_orders.len() as i128,
                i128::from(al.max_open_orders),
            );
        }
        if cl.max_open_orders > 0 && cell.open_count >= cl.max_open_orders {
            return reject(
                R::MaxOpenOrders,
                i128::from(cell.open_count),
                i128::from(cl.max_open_orders),
            );
        }
        if reduce {
            return Ok(a);
        }

        let worst_qty = if buy {
            pos + open_buy + qq
        } else {
            open_sell + qq - pos
        };
        if worst_qty > i128::from(cl.max_position) {
            return reject(R::MaxPosition, worst_qty, i128::from(cl.max_position));
        }

        // Exposures: the cell after the order, at the mark (before any mark: the order price).
        let v = &cell.values;
        let marked = mark.price > 0;
        let px = i128::from(if marked { mark.price } else { p });
        let (long_worst, short_worst) = if buy {
            let other = if marked {
                v.short_worst
            } else {
                inst.to_value.apply((pos - open_sell).saturating_mul(px))
            };
            (
                inst.to_value
                    .apply((pos + open_buy + qq).saturating_mul(px)),
                other,
            )
        } else {
            let other = if marked {
                v.long_worst
            } else {
                inst.to_value.apply((pos + open_buy).saturating_mul(px))
            };
            (
                other,
                inst.to_value
                    .apply((pos - open_sell - qq).saturating_mul(px)),
            )
        };
        let worst = long_worst
            .saturating_abs()
            .max(short_worst.saturating_abs());
        let raises = worst > v.worst;
        if raises {
            let gross = account.gross.saturating_sub(v.worst).saturating_add(worst);
            if gross > al.max_gross_exposure {
                return reject(R::MaxGrossExposure, gross, al.max_gross_exposure);
            }
        }
        let net = if buy {
            account
                .net_long
                .saturating_sub(v.long_worst)
                .saturating_add(long_worst)
        } else {
            account
                .net_short
                .saturating_sub(v.short_worst)
                .saturating_add(short_worst)
                .saturating_neg()
        };
        if net > al.max_net_exposure {
            return reject(R::MaxNetExposure, net, al.max_net_exposure);
        }
        if raises {
            if al.max_concentration_bps > 0 {
                let limit = i128::from(al.max_concentration_bps);
                let equity = account.equity;
                if equity <= 0 {
                    return reject(R::Concentration, i128::MAX, limit);
                }
                let share = worst.saturating_mul(10_000);
                if share > limit.saturating_mul(equity) {
                    let bps = share.saturating_add(equity - 1) / equity;
                    return reject(R::Concentration, bps, limit);
                }
            }
            if al.max_correlated_exposure != NO_LIMIT {
                let mut sum = worst;
                for &j in &account.active {
                    let j = j as usize;
                    if j != i
                        && self.correlations.rho_bp(i, j) >= al.correlation_threshold_bps
                        && let Some(other) = self.cells.get(a * n + j)
                    {
                        sum = sum.saturating_add(other.values.worst);
                    }
                }
                if sum > al.max_correlated_exposure {
                    return reject(R::CorrelatedExposure, sum, al.max_correlated_exposure);
                }
            }
        }
        match al.margin_mode {
            MarginMode::Cash => {
                if buy {
                    let need = inst.to_money.apply(raw);
                    let free = account
                        .assets
                        .get(inst.quote as usize)
                        .map_or(0, |asset| asset.balance.saturating_sub(asset.reserved));
                    if need > free {
                        return reject(R::InsufficientBalance, need, free);
                    }
                } else {
                    let available = pos - open_sell;
                    if qq > available {
                        return reject(R::InsufficientBalance, qq, available);
                    }
                }
            }
            MarginMode::Cross | MarginMode::Isolated => {
                let im = account
                    .im_e4
                    .saturating_sub(v.im_e4)
                    .saturating_add(worst.saturating_mul(i128::from(cl.initial_margin_bps)));
                if im > account.im_e4 && im > account.collateral.saturating_mul(10_000) {
                    return reject(R::InsufficientMargin, ceil_e4(im), account.collateral);
                }
            }
        }
        Ok(a)
    }
}
