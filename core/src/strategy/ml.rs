//! `ml`: the model strategy. It turns a model's predictions ([`Signal`]s) into a target
//! position and works passive limit orders toward it, within hard inventory and loss limits.
//!
//! # From a prediction to a target
//!
//! A signal is used when it is for the strategy's instrument, not from a shadow model
//! ([`Signal::FLAG_SHADOW`]), from the assigned model ([`MlParams::model`]; `None` accepts
//! every model trading the instrument, so with an ensemble configured assign the ensemble's
//! index), with a finite prediction and `confidence >= min_confidence`. Other signals are
//! counted and change nothing: a low-confidence prediction does not cancel the previous view,
//! which holds until it expires.
//!
//! The view is `fraction = clamp(prediction / full_signal, −1, 1) × confidence`: the
//! prediction is the expected forward log return at the model's horizon, `full_signal` the
//! prediction at which a full position is wanted. It expires `signal_ttl_ms` after the signal
//! (0: the signal's own horizon); without a live view the target is flat.
//!
//! `target = fraction × max_position × min(1, target_vol / vol)`, truncated toward zero to a
//! whole number of lots and clamped to `±max_inventory`. `vol` is the realised volatility of
//! the mid, kept from every book update in O(1): exponentially weighted sums of squared mid
//! log returns and of elapsed time, both decayed by `2^(−Δt / vol_halflife)`, give the
//! variance per second (a time-weighted estimate, robust to bursty update rates); it is
//! quoted in basis points over one minute (`sqrt(60 · variance per second) · 10⁴`; BTC at 50%
//! annual volatility is about 7 bps/min). Until `vol_warmup_updates` returns have been seen,
//! the strategy does not trade.
//!
//! # Orders
//!
//! One passive order at a time, a GTC limit (post-only by default):
//!
//! * none working and `|target − position| ≥ min_trade`: a new order for the difference (capped
//!   so that `|position + order| ≤ max_inventory`), buying at the best bid or selling at the
//!   best ask, `improve_ticks` inside when the spread leaves room (never at or through the
//!   other side);
//! * one working: cancelled when the target is now on the other side of the position or
//!   closer than `min_trade` (target reached or flipped), or when it has been at its price for
//!   `order_ttl_ms` of engine time (it is re-placed at the next opportunity); replaced (a
//!   new client order id) when the price it should have moved or its remaining quantity is
//!   off by `min_trade` or more;
//! * while a new order is unacknowledged or a cancel or replace is in flight, nothing else is
//!   sent; between two actions at least `min_interval_ms` of engine time passes.
//!
//! Orders are matched to their events by order id (client order id until the id is known),
//! so the account may be shared with other strategies: only its own orders' fills move its
//! position.
//!
//! # Loss limit
//!
//! Its own P&L is kept from its fills at average cost: realised (in `i128` mantissa
//! products, exact) plus the open position marked at the mid, minus fees. When it falls
//! below `−max_loss` (on a book update or a fill) the strategy halts: it cancels its orders,
//! and with `flatten_on_loss` sends a reduce-only IOC limit `flatten_slippage_ticks` through
//! the touch for its whole position, repeated (at most every `min_interval_ms`) until it is
//! flat. It then stays halted, through snapshots and restarts, until
//! [`MlStrategy::resume`] is called; the limit then applies to the P&L made after the
//! resume.
//!
//! # Cost
//!
//! Every callback is O(1) (at most [`MAX_TRACKED`] orders are scanned), allocates nothing
//! and reads no clock: a replay of the same events gives the same orders.

use aaiti_model::{
    AccountId, ClientOrderId, Instrument, InstrumentId, OrderAction, OrderCommand, OrderEvent,
    OrderEventKind, OrderFlags, OrderId, OrderType, Price, Qty, Scale, Side, Signal, TimeInForce,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::{Intents, Strategy, client_order_id};
use crate::market::Market;

/// Most orders the strategy tracks at once (one passive order, a flatten order, and the
/// orders whose cancels are in flight); beyond, new orders wait (counted as `blocked`).
pub const MAX_TRACKED: usize = 8;

const NS_PER_MS: u64 = 1_000_000;

/// Parameters of an [`MlStrategy`]. Quantities are mantissas at the instrument's quantity
/// scale, prices at its price scale. See the module docs for how each is used.
#[derive(Debug, Clone, PartialEq)]
pub struct MlParams {
    /// Strategy name (reports, client order id prefix).
    pub name: String,
    /// Account it trades.
    pub account: AccountId,
    /// Instrument it trades.
    pub instrument: InstrumentId,
    /// The instrument's tick size.
    pub tick: Price,
    /// The instrument's lot size (order quantities are multiples).
    pub lot: Qty,
    /// The instrument's quantity scale (to express P&L at the price scale).
    pub qty_scale: Scale,
    /// Model index it follows; `None`: every non-shadow model for its instrument.
    pub model: Option<u32>,
    /// Signals below this confidence are ignored.
    pub min_confidence: f64,
    /// Prediction (forward log return) at which the full position is wanted.
    pub full_signal: f64,
    /// Position at full signal, confidence 1 and volatility at or below target.
    pub max_position: Qty,
    /// Hard limit on `|position + working orders|`.
    pub max_inventory: Qty,
    /// Smallest order, and smallest change worth an order.
    pub min_trade: Qty,
    /// Volatility (bps over one minute) above which the position is scaled down.
    pub target_vol_1m_bps: f64,
    /// Half-life of the volatility estimate, engine time.
    pub vol_halflife_ms: u64,
    /// Mid returns seen before the volatility is trusted (and trading starts).
    pub vol_warmup_updates: u32,
    /// Ticks inside the touch a passive order may improve (0: join the touch).
    pub improve_ticks: i64,
    /// A working order is cancelled after this long at one price.
    pub order_ttl_ms: u64,
    /// Least engine time between two actions.
    pub min_interval_ms: u64,
    /// Life of a signal's view; 0: the signal's horizon.
    pub signal_ttl_ms: u64,
    /// Own P&L (quote asset, price scale) below `−max_loss` halts the strategy; `None`: no
    /// loss limit.
    pub max_loss: Option<Price>,
    /// On a loss halt, flatten with IOC orders.
    pub flatten_on_loss: bool,
    /// Flatten orders are priced this many ticks through the touch.
    pub flatten_slippage_ticks: i64,
    /// Passive orders are post-only.
    pub post_only: bool,
}

impl MlParams {
    /// Parameters for trading `instrument` with a position of up to `max_position`, and the
    /// defaults: inventory limit 1.5 × `max_position`, smallest trade a tenth of it (at least
    /// a lot), any model, confidence ≥ 0.1, full position at a predicted +/−2 bps, volatility
    /// target 5 bps/min with a 60 s half-life and 100 returns of warm-up, join the touch,
    /// 5 s order lifetime, 100 ms between actions, views live for the signal's horizon, no
    /// loss limit (flatten when one is set, 10 ticks through), post-only.
    pub fn new(
        name: impl Into<String>,
        account: AccountId,
        instrument: &Instrument,
        max_position: Qty,
    ) -> Self {
        let lot = instrument.lot_size.0.max(1);
        let min_trade = (max_position.0 / 10 / lot).max(1) * lot;
        Self {
            name: name.into(),
            account,
            instrument: instrument.id,
            tick: instrument.tick_size,
            lot: instrument.lot_size,
            qty_scale: instrument.qty_scale,
            model: None,
            min_confidence: 0.1,
            full_signal: 2e-4,
            max_position,
            max_inventory: Qty(max_position.0.saturating_mul(3) / 2),
            min_trade: Qty(min_trade),
            target_vol_1m_bps: 5.0,
            vol_halflife_ms: 60_000,
            vol_warmup_updates: 100,
            improve_ticks: 0,
            order_ttl_ms: 5_000,
            min_interval_ms: 100,
            signal_ttl_ms: 0,
            max_loss: None,
            flatten_on_loss: true,
            flatten_slippage_ticks: 10,
            post_only: true,
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// The first parameter out of range, with the valid range.
    pub fn validate(&self) -> Result<(), MlParamsError> {
        let bad = |key, value: String, fix| {
            Err(MlParamsError {
                name: self.name.clone(),
                key,
                value,
                fix,
            })
        };
        if self.name.is_empty() {
            return bad("name", String::new(), "must not be empty");
        }
        if self.tick.0 <= 0 {
            return bad("tick", self.tick.0.to_string(), "must be positive");
        }
        if self.lot.0 <= 0 {
            return bad("lot", self.lot.0.to_string(), "must be positive");
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return bad(
                "min_confidence",
                self.min_confidence.to_string(),
                "must be within 0..=1",
            );
        }
        if !(self.full_signal > 0.0 && self.full_signal.is_finite()) {
            return bad(
                "full_signal",
                self.full_signal.to_string(),
                "must be a positive number",
            );
        }
        if self.max_position.0 <= 0 {
            return bad(
                "max_position",
                self.max_position.0.to_string(),
                "must be positive",
            );
        }
        if self.max_inventory.0 < self.lot.0 {
            return bad(
                "max_inventory",
                self.max_inventory.0.to_string(),
                "must be at least one lot",
            );
        }
        if self.min_trade.0 < self.lot.0 {
            return bad(
                "min_trade",
                self.min_trade.0.to_string(),
                "must be at least one lot",
            );
        }
        if !(self.target_vol_1m_bps > 0.0 && self.target_vol_1m_bps.is_finite()) {
            return bad(
                "target_vol_1m_bps",
                self.target_vol_1m_bps.to_string(),
                "must be a positive number",
            );
        }
        if self.vol_halflife_ms == 0 {
            return bad("vol_halflife_ms", "0".into(), "must be at least 1");
        }
        if self.improve_ticks < 0 {
            return bad(
                "improve_ticks",
                self.improve_ticks.to_string(),
                "must not be negative",
            );
        }
        if self.order_ttl_ms == 0 {
            return bad("order_ttl_ms", "0".into(), "must be at least 1");
        }
        if let Some(loss) = self.max_loss
            && loss.0 <= 0
        {
            return bad("max_loss", loss.0.to_string(), "must be positive");
        }
        if self.flatten_slippage_ticks < 0 {
            return bad(
                "flatten_slippage_ticks",
                self.flatten_slippage_ticks.to_string(),
                "must not be negative",
            );
        }
        Ok(())
    }
}

/// A parameter of an [`MlStrategy`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ml strategy `{name}`: `{key}` = {value:?} is invalid: {fix}")]
pub struct MlParamsError {
    /// Strategy name.
    pub name: String,
    /// Parameter.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// The valid range.
    pub fix: &'static str,
}

/// Counters of an [`MlStrategy`] (also in its report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlCounters {
    /// Signals for its instrument.
    pub signals_seen: u64,
    /// Signals that set the view.
    pub signals_used: u64,
    /// Shadow, other-model or malformed signals.
    pub signals_ignored: u64,
    /// Signals below `min_confidence`.
    pub signals_low_confidence: u64,
    /// New passive orders sent.
    pub orders: u64,
    /// Replaces sent.
    pub replaces: u64,
    /// Cancels sent (all causes).
    pub cancels: u64,
    /// Cancels for the order lifetime.
    pub ttl_cancels: u64,
    /// Fills of its orders.
    pub fills: u64,
    /// Its orders rejected.
    pub rejects: u64,
    /// Its cancels and replaces rejected.
    pub cancel_rejects: u64,
    /// Flatten (IOC) orders sent.
    pub flatten_orders: u64,
    /// Loss-limit halts.
    pub halted_by_loss: u64,
    /// Orders not sent because [`MAX_TRACKED`] orders were tracked.
    pub blocked: u64,
}

/// A request in flight on a working order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Request {
    None,
    Cancel,
    Replace,
}

/// One of its orders, from the command until a terminal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Working {
    client_order_id: ClientOrderId,
    /// The engine's id; 0 until the first event names it.
    order_id: OrderId,
    side: Side,
    price: Price,
    /// Total quantity (filled included).
    qty: i64,
    /// Filled so far.
    cum: i64,
    flags: u8,
    /// A flatten IOC (not a passive order).
    flatten: bool,
    request: Request,
    /// Engine time of its last new or replace command.
    priced_at: UnixNanos,
}

/// Volatility estimator state: exponentially weighted Σ r² and Σ Δt (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Vol {
    last_mid_x2: i64,
    last_at: UnixNanos,
    sum_r2: f64,
    sum_dt_s: f64,
    returns: u64,
}

impl Vol {
    fn update(&mut self, mid_x2: i64, now: UnixNanos, halflife_ns: u64) {
        if mid_x2 <= 0 {
            return;
        }
        if self.last_mid_x2 > 0 {
            let dt_ns = now.saturating_since(self.last_at);
            let r = (mid_x2 as f64 / self.last_mid_x2 as f64).ln();
            if dt_ns > 0 {
                let decay = (-(dt_ns as f64) / halflife_ns as f64 * std::f64::consts::LN_2).exp();
                self.sum_r2 *= decay;
                self.sum_dt_s = self.sum_dt_s * decay + dt_ns as f64 * 1e-9;
            }
            self.sum_r2 += r * r;
            self.returns += 1;
        }
        self.last_mid_x2 = mid_x2;
        self.last_at = now;
    }

    /// Volatility in bps over one minute; none before time has passed.
    fn bps_1m(&self) -> Option<f64> {
        (self.sum_dt_s > 0.0).then(|| (self.sum_r2 / self.sum_dt_s * 60.0).sqrt() * 1e4)
    }
}

/// The current view from the last used signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct View {
    /// `clamp(prediction / full_signal, −1, 1) × confidence`.
    fraction: f64,
    expires: UnixNanos,
}

/// Everything that changes, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct MlState {
    next_id: u64,
    /// Signed position (quantity mantissas) from its own fills.
    position: i64,
    /// Σ price × signed qty of the open position (mantissa products).
    open_cost: i128,
    /// Realised P&L in mantissa products (price × qty scale).
    realised: i128,
    /// Fees paid (quote asset, price scale).
    fees: i64,
    vol: Vol,
    view: Option<View>,
    orders: Vec<Working>,
    /// Engine time of the last action (0: none yet).
    last_action: UnixNanos,
    halted: bool,
    /// P&L at the last [`MlStrategy::resume`]: the loss limit applies to the P&L since.
    loss_base: i64,
    counters: MlCounters,
}

/// See the module docs.
pub struct MlStrategy {
    params: MlParams,
    state: MlState,
}

impl MlStrategy {
    /// A strategy with these parameters.
    ///
    /// # Errors
    ///
    /// A parameter out of range.
    pub fn new(params: MlParams) -> Result<Self, MlParamsError> {
        params.validate()?;
        Ok(Self {
            params,
            state: MlState {
                orders: Vec::with_capacity(MAX_TRACKED),
                ..MlState::default()
            },
        })
    }

    /// The parameters.
    pub fn params(&self) -> &MlParams {
        &self.params
    }

    /// Its position from its own fills.
    pub fn position(&self) -> Qty {
        Qty(self.state.position)
    }

    /// Its counters.
    pub fn counters(&self) -> &MlCounters {
        &self.state.counters
    }

    /// True after a loss-limit halt, until [`resume`](Self::resume).
    pub fn halted(&self) -> bool {
        self.state.halted
    }

    /// Lifts a loss-limit halt (an operator's decision): trading restarts from the current
    /// position on the next book update or signal, and the loss limit applies to the P&L
    /// made from now on (marked at the last mid it saw).
    pub fn resume(&mut self) {
        self.state.halted = false;
        self.state.loss_base = self.pnl_at(self.state.vol.last_mid_x2);
    }

    /// Fees paid (quote asset, price scale).
    pub fn fees(&self) -> i64 {
        self.state.fees
    }

    /// Its P&L (quote asset, price scale, truncated): realised plus the position marked at
    /// `mid_x2 / 2` ([`aaiti_book::L2Book::mid_x2`]), minus fees.
    pub fn pnl_at(&self, mid_x2: i64) -> i64 {
        let state = &self.state;
        // Everything doubled so the half-tick of the mid stays exact.
        let doubled = 2 * state.realised + i128::from(state.position) * i128::from(mid_x2)
            - 2 * state.open_cost;
        let factor = 2 * i128::from(self.params.qty_scale.factor());
        let pnl = doubled / factor - i128::from(state.fees);
        pnl.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Its P&L at the market's mid; none without one.
    pub fn pnl(&self, market: &Market) -> Option<i64> {
        let mid_x2 = market.get(self.params.instrument)?.book().mid_x2()?;
        Some(self.pnl_at(mid_x2))
    }

    /// The volatility estimate, bps over one minute (none before time has passed).
    pub fn volatility_1m_bps(&self) -> Option<f64> {
        self.state.vol.bps_1m()
    }

    /// The target position at `now` (none while the volatility warms up).
    pub fn target(&self, now: UnixNanos) -> Option<Qty> {
        self.target_qty(now).map(Qty)
    }

    // ------------------------------------------------------------------------------------

    fn target_qty(&self, now: UnixNanos) -> Option<i64> {
        let params = &self.params;
        let vol = &self.state.vol;
        if vol.returns < u64::from(params.vol_warmup_updates) {
            return None;
        }
        let scale = match vol.bps_1m() {
            Some(v) if v > params.target_vol_1m_bps => params.target_vol_1m_bps / v,
            Some(_) => 1.0,
            None => return None,
        };
        let Some(view) = self.state.view.filter(|view| now < view.expires) else {
            return Some(0);
        };
        let lot = params.lot.0;
        let wanted_lots = (view.fraction * params.max_position.0 as f64 * scale / lot as f64)
            .trunc()
            .clamp(-(i64::MAX / lot) as f64, (i64::MAX / lot) as f64)
            as i64;
        let limit_lots = params.max_inventory.0 / lot;
        Some(wanted_lots.clamp(-limit_lots, limit_lots) * lot)
    }

    /// Best bid and ask of a valid, uncrossed book.
    fn touch(&self, market: &Market) -> Option<(i64, i64)> {
        let state = market.get(self.params.instrument)?;
        if !state.valid() {
            return None;
        }
        let (bid, ask) = (state.book().best_bid()?.0.0, state.book().best_ask()?.0.0);
        (bid > 0 && bid < ask).then_some((bid, ask))
    }

    /// Passive price: the touch of `side`, improved by up to `improve_ticks` while staying
    /// at least a tick away from the other side.
    fn passive_price(&self, side: Side, bid: i64, ask: i64) -> Price {
        let tick = self.params.tick.0;
        let room = ((ask - bid) / tick - 1).max(0);
        let improve = self.params.improve_ticks.min(room) * tick;
        match side {
            Side::Buy => Price(bid + improve),
            Side::Sell => Price(ask - improve),
        }
    }

    /// `qty` cut so that the position plus `qty` on `side` stays within `max_inventory`,
    /// rounded down to lots.
    fn capped(&self, side: Side, qty: i64) -> i64 {
        let room = self.params.max_inventory.0 - side.sign() * self.state.position;
        let lot = self.params.lot.0;
        qty.min(room).max(0) / lot * lot
    }

    fn cooling(&self, now: UnixNanos) -> bool {
        self.state.last_action.0 != 0
            && now.saturating_since(self.state.last_action)
                < self.params.min_interval_ms.saturating_mul(NS_PER_MS)
    }

    fn next_client_id(&mut self) -> ClientOrderId {
        self.state.next_id += 1;
        client_order_id(&self.params.name, self.state.next_id)
    }

    fn command(&self, action: OrderAction, side: Side) -> OrderCommand {
        OrderCommand {
            action: action.code(),
            side: side.code(),
            order_type: OrderType::Limit.code(),
            time_in_force: TimeInForce::Gtc.code(),
            account: self.params.account,
            instrument: self.params.instrument,
            ..OrderCommand::default()
        }
    }

    /// Sends a new limit order and tracks it.
    fn send_new(
        &mut self,
        side: Side,
        price: Price,
        qty: i64,
        flatten: bool,
        now: UnixNanos,
        out: &mut Intents,
    ) -> bool {
        if self.state.orders.len() >= MAX_TRACKED {
            self.state.counters.blocked += 1;
            return false;
        }
        let mut order = self.command(OrderAction::New, side);
        order.client_order_id = self.next_client_id();
        order.price = price;
        order.qty = Qty(qty);
        if flatten {
            order.time_in_force = TimeInForce::Ioc.code();
            order.flags = OrderFlags::REDUCE_ONLY.0;
            self.state.counters.flatten_orders += 1;
        } else {
            if self.params.post_only {
                order.flags = OrderFlags::POST_ONLY.0;
            }
            self.state.counters.orders += 1;
        }
        self.state.orders.push(Working {
            client_order_id: order.client_order_id,
            order_id: OrderId(0),
            side,
            price,
            qty,
            cum: 0,
            flags: order.flags,
            flatten,
            request: Request::None,
            priced_at: now,
        });
        self.state.last_action = now;
        out.push(order);
        true
    }

    fn send_cancel(&mut self, index: usize, now: UnixNanos, out: &mut Intents) {
        let Some(working) = self.state.orders.get(index).copied() else {
            return;
        };
        let mut cancel = self.command(OrderAction::Cancel, working.side);
        cancel.client_order_id = self.next_client_id();
        cancel.order_id = working.order_id;
        cancel.orig_client_order_id = working.client_order_id;
        if let Some(slot) = self.state.orders.get_mut(index) {
            slot.request = Request::Cancel;
        }
        self.state.counters.cancels += 1;
        self.state.last_action = now;
        out.push(cancel);
    }

    fn send_replace(
        &mut self,
        index: usize,
        price: Price,
        qty: i64,
        now: UnixNanos,
        out: &mut Intents,
    ) {
        let Some(working) = self.state.orders.get(index).copied() else {
            return;
        };
        // Side, type, time in force and flags must stay those of the order.
        let mut replace = self.command(OrderAction::Replace, working.side);
        replace.flags = working.flags;
        replace.client_order_id = self.next_client_id();
        replace.order_id = working.order_id;
        replace.orig_client_order_id = working.client_order_id;
        replace.price = price;
        replace.qty = Qty(qty);
        if let Some(slot) = self.state.orders.get_mut(index) {
            slot.request = Request::Replace;
            slot.priced_at = now;
        }
        self.state.counters.replaces += 1;
        self.state.last_action = now;
        out.push(replace);
    }

    /// Moves toward the target (see the module docs).
    fn rebalance(&mut self, market: &Market, now: UnixNanos, out: &mut Intents) {
        if self.state.halted {
            self.wind_down(market, now, out);
            return;
        }
        let Some((bid, ask)) = self.touch(market) else {
            return;
        };
        if self.cooling(now) {
            return;
        }
        let Some(target) = self.target_qty(now) else {
            return;
        };
        let need = target - self.state.position;
        let min_trade = self.params.min_trade.0;
        match self.state.orders.as_slice() {
            [] => {
                if need == 0 {
                    return;
                }
                let side = if need > 0 { Side::Buy } else { Side::Sell };
                let qty = self.capped(side, need.abs());
                if qty >= min_trade {
                    let price = self.passive_price(side, bid, ask);
                    self.send_new(side, price, qty, false, now, out);
                }
            }
            [working]
                if working.request == Request::None
                    && working.order_id.0 != 0
                    && !working.flatten =>
            {
                let working = *working;
                let ttl_ns = self.params.order_ttl_ms.saturating_mul(NS_PER_MS);
                if now.saturating_since(working.priced_at) >= ttl_ns {
                    self.state.counters.ttl_cancels += 1;
                    self.send_cancel(0, now, out);
                    return;
                }
                let desired = if need.signum() == working.side.sign() {
                    self.capped(working.side, need.abs())
                } else {
                    0
                };
                if desired < min_trade {
                    self.send_cancel(0, now, out);
                    return;
                }
                let price = self.passive_price(working.side, bid, ask);
                let leaves = working.qty - working.cum;
                if price != working.price || (desired - leaves).abs() >= min_trade {
                    self.send_replace(0, price, working.cum + desired, now, out);
                }
            }
            // An unacknowledged order or a request in flight: wait for its outcome.
            _ => {}
        }
    }

    /// Halts on a loss past the limit; true if halted now.
    fn check_loss(&mut self, market: &Market, now: UnixNanos, out: &mut Intents) -> bool {
        if self.state.halted {
            return false;
        }
        let (Some(limit), Some(pnl)) = (self.params.max_loss, self.pnl(market)) else {
            return false;
        };
        if pnl.saturating_sub(self.state.loss_base) >= -limit.0 {
            return false;
        }
        self.state.halted = true;
        self.state.counters.halted_by_loss += 1;
        // A risk action: no cooldown.
        self.state.last_action = UnixNanos(0);
        self.wind_down(market, now, out);
        true
    }

    /// While halted: cancel what works, flatten what is held.
    fn wind_down(&mut self, market: &Market, now: UnixNanos, out: &mut Intents) {
        if self.cooling(now) {
            return;
        }
        for index in 0..self.state.orders.len() {
            let cancellable = self.state.orders.get(index).is_some_and(|working| {
                working.request == Request::None && working.order_id.0 != 0 && !working.flatten
            });
            if cancellable {
                self.send_cancel(index, now, out);
            }
        }
        let position = self.state.position;
        if !self.params.flatten_on_loss
            || position == 0
            || self.state.orders.iter().any(|working| working.flatten)
        {
            return;
        }
        let Some((bid, ask)) = self.touch(market) else {
            return;
        };
        let through = self.params.flatten_slippage_ticks * self.params.tick.0;
        let (side, price) = if position > 0 {
            (Side::Sell, (bid - through).max(self.params.tick.0))
        } else {
            (Side::Buy, ask + through)
        };
        let qty = position.abs() / self.params.lot.0 * self.params.lot.0;
        if qty > 0 {
            self.send_new(side, Price(price), qty, true, now, out);
        }
    }

    /// Books a fill at average cost.
    fn on_fill(&mut self, side: Side, price: i64, qty: i64, fee: i64) {
        let state = &mut self.state;
        state.counters.fills += 1;
        state.fees = state.fees.saturating_add(fee);
        let mut signed = side.sign() * qty;
        let position = state.position;
        if position != 0 && position.signum() != signed.signum() {
            // Closing (part of) the position: realise against the average cost.
            let closed = signed.abs().min(position.abs());
            let removed = state.open_cost * i128::from(closed) / i128::from(position.abs());
            let proceeds = i128::from(position.signum()) * i128::from(closed) * i128::from(price);
            state.realised += proceeds - removed;
            state.open_cost -= removed;
            state.position -= position.signum() * closed;
            signed += position.signum() * closed;
            if state.position == 0 {
                // Truncation leftovers of the cost division belong to the realised P&L.
                state.realised -= state.open_cost;
                state.open_cost = 0;
            }
        }
        if signed != 0 {
            state.open_cost += i128::from(signed) * i128::from(price);
            state.position += signed;
        }
    }
}

impl Strategy for MlStrategy {
    fn name(&self) -> &str {
        &self.params.name
    }

    fn account(&self) -> AccountId {
        self.params.account
    }

    fn on_book(
        &mut self,
        market: &Market,
        instrument: InstrumentId,
        now: UnixNanos,
        out: &mut Intents,
    ) {
        if instrument != self.params.instrument {
            return;
        }
        if let Some(mid_x2) = market.get(instrument).and_then(|m| m.book().mid_x2()) {
            let halflife_ns = self.params.vol_halflife_ms.saturating_mul(NS_PER_MS);
            self.state.vol.update(mid_x2, now, halflife_ns);
        }
        if self.check_loss(market, now, out) {
            return;
        }
        self.rebalance(market, now, out);
    }

    fn on_signal(&mut self, market: &Market, signal: &Signal, now: UnixNanos, out: &mut Intents) {
        if signal.instrument != self.params.instrument {
            return;
        }
        let counters = &mut self.state.counters;
        counters.signals_seen += 1;
        if signal.flags & Signal::FLAG_SHADOW != 0
            || self.params.model.is_some_and(|model| model != signal.model)
            || !signal.prediction.is_finite()
            || !(0.0..=1.0).contains(&signal.confidence)
        {
            counters.signals_ignored += 1;
            return;
        }
        if signal.confidence < self.params.min_confidence {
            counters.signals_low_confidence += 1;
            return;
        }
        counters.signals_used += 1;
        let fraction =
            (signal.prediction / self.params.full_signal).clamp(-1.0, 1.0) * signal.confidence;
        let ttl_ms = match self.params.signal_ttl_ms {
            0 => u64::from(signal.horizon_ms),
            ttl => ttl,
        };
        self.state.view = Some(View {
            fraction,
            expires: UnixNanos(now.0.saturating_add(ttl_ms.saturating_mul(NS_PER_MS))),
        });
        self.rebalance(market, now, out);
    }

    fn on_order_event(
        &mut self,
        market: &Market,
        event: &OrderEvent,
        now: UnixNanos,
        out: &mut Intents,
    ) {
        if event.instrument != self.params.instrument {
            return;
        }
        let Some(index) = self.state.orders.iter().position(|working| {
            if working.order_id.0 != 0 {
                working.order_id == event.order_id
            } else {
                working.client_order_id == event.client_order_id
            }
        }) else {
            return;
        };
        let Ok(kind) = OrderEventKind::try_from(event.kind) else {
            return;
        };
        let mut done = false;
        if let Some(working) = self.state.orders.get_mut(index) {
            if working.order_id.0 == 0 {
                working.order_id = event.order_id;
            }
            match kind {
                OrderEventKind::PartiallyFilled | OrderEventKind::Filled => {
                    working.cum = event.cum_qty.0;
                    done = kind == OrderEventKind::Filled;
                }
                OrderEventKind::Replaced => {
                    working.client_order_id = event.client_order_id;
                    working.price = event.price;
                    working.qty = event.cum_qty.0 + event.leaves_qty.0;
                    working.cum = event.cum_qty.0;
                    working.request = Request::None;
                    done = event.leaves_qty.0 == 0;
                }
                OrderEventKind::CancelRejected => {
                    working.request = Request::None;
                    self.state.counters.cancel_rejects += 1;
                }
                OrderEventKind::Rejected => {
                    self.state.counters.rejects += 1;
                    done = true;
                }
                OrderEventKind::Canceled | OrderEventKind::Expired => done = true,
                _ => {}
            }
        }
        if done {
            // Before a possible halt below, which must not cancel an order that is over.
            self.state.orders.remove(index);
        }
        if matches!(
            kind,
            OrderEventKind::PartiallyFilled | OrderEventKind::Filled
        ) && event.last_qty.0 > 0
            && let Ok(side) = Side::try_from(event.side)
        {
            self.on_fill(side, event.last_price.0, event.last_qty.0, event.fee);
            self.check_loss(market, now, out);
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(&self.state)
            .map_err(|error| format!("ml strategy {}: {error}", self.params.name))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut state: MlState = postcard::from_bytes(bytes)
            .map_err(|error| format!("ml strategy {}: {error}", self.params.name))?;
        if state.orders.len() > MAX_TRACKED {
            return Err(format!(
                "ml strategy {}: the snapshot tracks {} orders, at most {MAX_TRACKED} fit",
                self.params.name,
                state.orders.len()
            ));
        }
        state.orders.reserve_exact(MAX_TRACKED - state.orders.len());
        self.state = state;
        Ok(())
    }

    fn report(&self) -> Vec<(String, u64)> {
        let c = &self.state.counters;
        [
            ("signals_seen", c.signals_seen),
            ("signals_used", c.signals_used),
            ("signals_ignored", c.signals_ignored),
            ("signals_low_confidence", c.signals_low_confidence),
            ("orders", c.orders),
            ("replaces", c.replaces),
            ("cancels", c.cancels),
            ("ttl_cancels", c.ttl_cancels),
            ("fills", c.fills),
            ("rejects", c.rejects),
            ("cancel_rejects", c.cancel_rejects),
            ("flatten_orders", c.flatten_orders),
            ("halted_by_loss", c.halted_by_loss),
            ("blocked", c.blocked),
            ("halted", u64::from(self.state.halted)),
            ("working", self.state.orders.len() as u64),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use aaiti_model::{OrderAction, OrderFlags, OrderType, Side, TimeInForce};

    use super::sim::{BTC, MS, Sim, registry, signal};
    use super::*;

    const BID: i64 = 1_000_000; // 10000.00
    const ASK: i64 = 1_000_010; // 10000.10: a 10-tick spread

    /// 100 lots at full size, inventory 150, smallest trade 2 lots, 3 returns of warm-up,
    /// 50 ms between actions, 1 s order lifetime, volatility scaling out of the way.
    fn params() -> MlParams {
        let registry = registry();
        MlParams {
            min_trade: Qty(2),
            vol_warmup_updates: 3,
            min_interval_ms: 50,
            order_ttl_ms: 1_000,
            target_vol_1m_bps: 1e6,
            ..MlParams::new("ml", AccountId(0), registry.get(BTC).unwrap(), Qty(100))
        }
    }

    fn strategy(params: MlParams) -> MlStrategy {
        MlStrategy::new(params).unwrap()
    }

    /// Four identical books 100 ms apart: three (zero) returns, the warm-up.
    fn warm(sim: &mut Sim, s: &mut MlStrategy) {
        for _ in 0..4 {
            sim.book(s, BID, ASK, 100);
        }
        assert!(sim.commands.is_empty(), "nothing trades without a view");
    }

    fn last(sim: &Sim) -> OrderCommand {
        *sim.commands.last().unwrap()
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        let good = params();
        assert_eq!(good.validate(), Ok(()));
        let registry = registry();
        let defaults = MlParams::new("d", AccountId(0), registry.get(BTC).unwrap(), Qty(100));
        assert_eq!(
            (defaults.max_inventory, defaults.min_trade),
            (Qty(150), Qty(10))
        );
        type Breaks = fn(&mut MlParams);
        let cases: [(&str, Breaks); 9] = [
            ("name", |p| p.name.clear()),
            ("min_confidence", |p| p.min_confidence = 1.5),
            ("full_signal", |p| p.full_signal = 0.0),
            ("full_signal", |p| p.full_signal = f64::NAN),
            ("max_position", |p| p.max_position = Qty(0)),
            ("min_trade", |p| p.min_trade = Qty(0)),
            ("target_vol_1m_bps", |p| p.target_vol_1m_bps = -1.0),
            ("max_loss", |p| p.max_loss = Some(Price(0))),
            ("improve_ticks", |p| p.improve_ticks = -1),
        ];
        for (key, breaks) in cases {
            let mut p = params();
            breaks(&mut p);
            let error = MlStrategy::new(p).err().unwrap();
            assert_eq!(error.key, key);
            assert!(error.to_string().contains(key));
        }
    }

    #[test]
    fn a_signal_becomes_a_passive_buy_for_the_target() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        // fraction = clamp(1e-4 / 2e-4) × 0.8 = 0.4 → 40 lots.
        sim.signal(&mut s, &signal(1e-4, 0.8));
        assert_eq!(s.target(sim.now), Some(Qty(40)));
        assert_eq!(sim.commands.len(), 1);
        let order = last(&sim);
        assert_eq!(order.action(), Some(OrderAction::New));
        assert_eq!(order.side(), Some(Side::Buy));
        assert_eq!(order.order_type(), Some(OrderType::Limit));
        assert_eq!(order.time_in_force(), Some(TimeInForce::Gtc));
        assert!(order.flags().contains(OrderFlags::POST_ONLY));
        assert_eq!((order.price, order.qty), (Price(BID), Qty(40)));
        assert_eq!(order.client_order_id.as_str(), "ml-1");
        assert_eq!(order.account, AccountId(0));
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 40)]);
        // A sell view sells at the ask.
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(-5e-4, 0.5));
        assert_eq!(sim.open(0), vec![(Side::Sell, ASK, 50)]);
        assert_eq!(s.counters().signals_used, 1);
        assert_eq!(s.counters().orders, 1);
    }

    #[test]
    fn nothing_trades_before_the_volatility_warm_up() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        sim.book(&mut s, BID, ASK, 100);
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(1e-4, 1.0));
        assert_eq!(s.target(sim.now), None);
        assert!(sim.commands.is_empty());
        // The third return ends the warm-up; the view is still live.
        sim.book(&mut s, BID, ASK, 100);
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 50)]);
    }

    #[test]
    fn ignored_signals_are_counted_and_do_nothing() {
        let mut sim = Sim::new();
        let mut s = strategy(MlParams {
            model: Some(0),
            ..params()
        });
        warm(&mut sim, &mut s);
        let shadow = Signal {
            flags: Signal::FLAG_SHADOW,
            ..signal(1e-4, 1.0)
        };
        let other_model = Signal {
            model: 3,
            ..signal(1e-4, 1.0)
        };
        let other_instrument = Signal {
            instrument: InstrumentId(1),
            ..signal(1e-4, 1.0)
        };
        let nan = signal(f64::NAN, 1.0);
        let low = signal(1e-4, 0.05);
        for signal in [shadow, other_model, other_instrument, nan, low] {
            sim.signal(&mut s, &signal);
        }
        let c = s.counters();
        assert_eq!(
            (
                c.signals_seen,
                c.signals_ignored,
                c.signals_low_confidence,
                c.signals_used
            ),
            (4, 3, 1, 0)
        );
        assert!(sim.commands.is_empty());
        // An ensemble's signal from the assigned model index is used.
        let ensemble = Signal {
            flags: Signal::FLAG_ENSEMBLE,
            ..signal(1e-4, 1.0)
        };
        sim.signal(&mut s, &ensemble);
        assert_eq!(s.counters().signals_used, 1);
        assert_eq!(sim.commands.len(), 1);
        // A later low-confidence signal does not cancel the view.
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(-1e-4, 0.01));
        assert_eq!(s.target(sim.now), Some(Qty(50)));
    }

    #[test]
    fn realised_volatility_scales_the_target_down() {
        // The mid alternates between 10000.00 and 10001.00 every 100 ms: every return is
        // r = ln(1.0001) = 9.9995e-5, so the variance per second is r² / 0.1 s and the
        // volatility sqrt(60 · r² / 0.1) · 1e4 = 24.4937 bps/min. With a 5 bps target the
        // size multiplier is 5 / 24.4937 = 0.20413: a 0.4 view wants 8.165 → 8 lots.
        let mut sim = Sim::new();
        let mut s = strategy(MlParams {
            target_vol_1m_bps: 5.0,
            ..params()
        });
        for i in 0..20 {
            let (bid, ask) = if i % 2 == 0 {
                (999_990, 1_000_010)
            } else {
                (1_000_090, 1_000_110)
            };
            sim.book(&mut s, bid, ask, 100);
        }
        let vol = s.volatility_1m_bps().unwrap();
        assert!((vol - 24.4937).abs() < 1e-3, "{vol}");
        sim.signal(&mut s, &signal(1e-4, 0.8));
        assert_eq!(s.target(sim.now), Some(Qty(8)));
        assert_eq!(last(&sim).qty, Qty(8));
    }

    #[test]
    fn passive_prices_improve_only_inside_the_spread() {
        let s = strategy(MlParams {
            improve_ticks: 2,
            ..params()
        });
        assert_eq!(s.passive_price(Side::Buy, 100, 110), Price(102));
        assert_eq!(s.passive_price(Side::Sell, 100, 110), Price(108));
        assert_eq!(s.passive_price(Side::Buy, 100, 102), Price(101));
        assert_eq!(s.passive_price(Side::Sell, 100, 102), Price(101));
        assert_eq!(s.passive_price(Side::Buy, 100, 101), Price(100));
        assert_eq!(s.passive_price(Side::Sell, 100, 101), Price(101));
    }

    #[test]
    fn the_working_order_follows_the_touch_after_the_cooldown() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        // 10 ms later: still cooling down, the order stays behind.
        sim.book(&mut s, BID + 30, ASK + 30, 10);
        assert_eq!(sim.commands.len(), 1);
        // 50 ms after the order: replaced at the new bid, same quantity, new client id.
        sim.book(&mut s, BID + 30, ASK + 30, 40);
        let replace = last(&sim);
        assert_eq!(replace.action(), Some(OrderAction::Replace));
        assert_eq!((replace.price, replace.qty), (Price(BID + 30), Qty(40)));
        assert_eq!(replace.orig_client_order_id.as_str(), "ml-1");
        assert_eq!(replace.client_order_id.as_str(), "ml-2");
        assert!(replace.flags().contains(OrderFlags::POST_ONLY));
        assert_eq!(sim.open(0), vec![(Side::Buy, BID + 30, 40)]);
        assert_eq!(s.counters().replaces, 1);
        // The same touch again: nothing to do.
        sim.book(&mut s, BID + 30, ASK + 30, 100);
        assert_eq!(sim.commands.len(), 2);
        // A bigger view resizes the working order.
        sim.signal(&mut s, &signal(2e-4, 0.8));
        assert_eq!(sim.open(0), vec![(Side::Buy, BID + 30, 80)]);
    }

    #[test]
    fn a_flipped_view_cancels_then_sells() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(-1e-4, 0.8));
        let cancel = last(&sim);
        assert_eq!(cancel.action(), Some(OrderAction::Cancel));
        assert_eq!(cancel.orig_client_order_id.as_str(), "ml-1");
        assert!(sim.open(0).is_empty());
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(sim.open(0), vec![(Side::Sell, ASK, 40)]);
        assert_eq!(s.counters().cancels, 1);
        assert_eq!(s.counters().orders, 2);
    }

    #[test]
    fn orders_are_cancelled_after_their_lifetime_and_placed_again() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        let long_lived = Signal {
            horizon_ms: 60_000,
            ..signal(1e-4, 0.8)
        };
        sim.signal(&mut s, &long_lived);
        for _ in 0..9 {
            sim.book(&mut s, BID, ASK, 100);
        }
        assert_eq!(s.counters().ttl_cancels, 0);
        sim.book(&mut s, BID, ASK, 100); // 1000 ms at one price
        assert_eq!(s.counters().ttl_cancels, 1);
        assert!(sim.open(0).is_empty());
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 40)]);
        assert_eq!(s.counters().orders, 2);
    }

    #[test]
    fn position_comes_from_its_own_fills_only() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.trade(&mut s, BID);
        assert_eq!(s.position(), Qty(40));
        assert_eq!(s.counters().fills, 1);
        sim.book(&mut s, BID, ASK, 100);
        assert!(sim.open(0).is_empty(), "the target is reached");
        assert_eq!(sim.commands.len(), 1);
        // The desk trades on the same account: not this strategy's position.
        sim.foreign_fill(&mut s, 0, Side::Sell, 25);
        assert_eq!(s.position(), Qty(40));
        assert_eq!(s.counters().fills, 1);
    }

    #[test]
    fn the_inventory_limit_is_hard() {
        let mut sim = Sim::new();
        let mut s = strategy(MlParams {
            max_inventory: Qty(50),
            ..params()
        });
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1.0, 1.0));
        assert_eq!(s.target(sim.now), Some(Qty(50)));
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 50)]);
        sim.trade(&mut s, BID);
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(1.0, 1.0));
        assert_eq!(s.position(), Qty(50));
        assert!(sim.open(0).is_empty());
        // Capping is against the position: at 50, buying room is 0, selling room 100.
        assert_eq!(s.capped(Side::Buy, 30), 0);
        assert_eq!(s.capped(Side::Sell, 130), 100);
    }

    #[test]
    fn an_expired_view_flattens_passively() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8)); // horizon 1 s
        sim.trade(&mut s, BID);
        for _ in 0..9 {
            sim.book(&mut s, BID, ASK, 100);
        }
        assert!(sim.open(0).is_empty());
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(s.target(sim.now), Some(Qty(0)));
        assert_eq!(sim.open(0), vec![(Side::Sell, ASK, 40)]);
        sim.trade(&mut s, ASK);
        assert_eq!(s.position(), Qty(0));
        // Bought 0.040 at 10000.00, sold at 10000.10: 40 × 10 = 400 mantissa products
        // (10⁻⁵ USD), i.e. 0.4 cent, which truncates to 0 at the price scale.
        assert_eq!(s.pnl_at(2 * BID), 0);
        assert_eq!(s.state.realised, 400);
    }

    #[test]
    fn average_cost_pnl_matches_a_hand_computation() {
        let mut s = strategy(params());
        // Buy 10 @ 100.00, buy 10 @ 102.00 (average 101.00), sell 15 @ 105.00 (realise
        // 15 × 4.00), sell 10 @ 99.00 (realise 5 × −2.00, then short 5 @ 99.00).
        s.on_fill(Side::Buy, 10_000, 10, 0);
        s.on_fill(Side::Buy, 10_200, 10, 0);
        s.on_fill(Side::Sell, 10_500, 15, 0);
        assert_eq!(s.state.realised, 15 * 400);
        s.on_fill(Side::Sell, 9_900, 10, 3);
        assert_eq!(s.position(), Qty(-5));
        // Realised: 15 × 400 − 5 × 200 = 5000 mantissa products = 0.05 USD (5 cents).
        assert_eq!(s.state.realised, 5_000);
        assert_eq!(s.state.open_cost, -5 * 9_900);
        // At a 98.00 mid the short (0.005) gains 5 × 100 = 500 mantissa products, 0.5
        // cent: 5.5 cents in all, truncated to 5, minus 3 cents of fees.
        assert_eq!(s.pnl_at(2 * 9_800), 2);
        assert_eq!(s.fees(), 3);
        // Covering at 98.00 realises it: 5000 + 500.
        s.on_fill(Side::Buy, 9_800, 5, 0);
        assert_eq!((s.position(), s.state.realised), (Qty(0), 5_500));
        assert_eq!(s.state.open_cost, 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// P&L adds up: whatever the fills, realised minus the open cost is exactly the cash
        /// flow (−Σ signed qty × price), the position the sum of the fills, and a flat book
        /// carries no cost.
        #[test]
        fn pnl_adds_up(fills in proptest::collection::vec(
            (proptest::bool::ANY, 1_i64..2_000_000, 1_i64..500),
            1..60,
        )) {
            let mut s = strategy(params());
            let (mut cash, mut position) = (0_i128, 0_i64);
            for (buy, price, qty) in fills {
                let side = if buy { Side::Buy } else { Side::Sell };
                s.on_fill(side, price, qty, 0);
                cash -= i128::from(side.sign() * qty) * i128::from(price);
                position += side.sign() * qty;
                proptest::prop_assert_eq!(s.state.realised - s.state.open_cost, cash);
                proptest::prop_assert_eq!(s.state.position, position);
                if position == 0 {
                    proptest::prop_assert_eq!(s.state.open_cost, 0);
                }
                // Marked at any mid, the P&L is the cash flow plus the position's value.
                let mid_x2 = 2 * price;
                let expected = (2 * cash + i128::from(position) * i128::from(mid_x2)) / 2_000;
                proptest::prop_assert_eq!(i128::from(s.pnl_at(mid_x2)), expected);
            }
        }
    }

    #[test]
    fn the_loss_limit_cancels_flattens_and_halts() {
        let mut sim = Sim::new();
        let mut s = strategy(MlParams {
            max_loss: Some(Price(30)), // 0.30 USD
            ..params()
        });
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.trade(&mut s, BID); // long 0.040 @ 10000.00
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(2e-4, 0.8)); // wants 80: a second buy of 40 works
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 40)]);
        // Mid 9990.05: 0.040 × −9.95 = −0.398 USD → −39 cents < −30.
        sim.book(&mut s, 999_000, 999_010, 100);
        assert!(s.halted());
        assert_eq!(s.counters().halted_by_loss, 1);
        let n = sim.commands.len();
        let (cancel, flatten) = (sim.commands[n - 2], sim.commands[n - 1]);
        assert_eq!(cancel.action(), Some(OrderAction::Cancel));
        assert_eq!(flatten.action(), Some(OrderAction::New));
        assert_eq!(flatten.time_in_force(), Some(TimeInForce::Ioc));
        assert!(flatten.flags().contains(OrderFlags::REDUCE_ONLY));
        assert_eq!(
            (flatten.side(), flatten.price, flatten.qty),
            (Some(Side::Sell), Price(999_000 - 10), Qty(40))
        );
        // The test venue fills the IOC at the bid: flat, 40 × −10.00 realised = −40 cents.
        assert_eq!(s.position(), Qty(0));
        assert!(sim.open(0).is_empty());
        assert_eq!(s.pnl_at(2 * 999_000), -40);
        // Halted: signals and books do nothing.
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(1e-4, 1.0));
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(sim.commands.len(), n);
        // Resumed by an operator, it trades again; the limit counts from the resume.
        s.resume();
        assert!(!s.halted());
        sim.book(&mut s, BID, ASK, 100);
        assert!(
            !s.halted(),
            "the 40 cents lost before the resume do not count"
        );
        assert_eq!(sim.open(0), vec![(Side::Buy, BID, 50)]);
    }

    #[test]
    fn a_costly_fill_halts_and_a_partial_flatten_is_retried() {
        let mut sim = Sim::new();
        sim.fee_per_fill = 100; // 1 USD a fill
        let mut s = strategy(MlParams {
            max_loss: Some(Price(50)),
            ..params()
        });
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.level_qty = 30;
        sim.book(&mut s, BID, ASK, 10);
        sim.trade(&mut s, BID);
        assert!(s.halted(), "the fill's fee alone breaks the limit");
        // The flatten IOC took the 30 at the bid; the rest expired.
        assert_eq!(s.position(), Qty(10));
        assert_eq!(s.counters().flatten_orders, 1);
        // Within the cooldown nothing more; after it, the rest.
        sim.book(&mut s, BID, ASK, 10);
        assert_eq!(s.counters().flatten_orders, 1);
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(s.counters().flatten_orders, 2);
        assert_eq!(s.position(), Qty(0));
        assert_eq!(s.fees(), 300);
        sim.book(&mut s, BID, ASK, 100);
        assert_eq!(s.counters().flatten_orders, 2);
    }

    #[test]
    fn snapshots_restore_the_whole_state() {
        let mut sim = Sim::new();
        let mut s = strategy(MlParams {
            max_loss: Some(Price(30)),
            ..params()
        });
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.trade(&mut s, BID);
        sim.book(&mut s, BID, ASK, 100);
        sim.signal(&mut s, &signal(2e-4, 0.8));
        let bytes = s.snapshot().unwrap();
        let mut restored = strategy(params());
        restored.restore(&bytes).unwrap();
        assert_eq!(restored.state, s.state);
        assert!(restored.state.orders.capacity() >= MAX_TRACKED);
        // Both decide the same on the next book.
        let (mut a, mut b) = (Intents::new(), Intents::new());
        let later = UnixNanos(sim.now.0 + 1_500 * MS);
        s.on_book(&sim.market, BTC, later, &mut a);
        restored.on_book(&sim.market, BTC, later, &mut b);
        let (a, b): (Vec<_>, Vec<_>) = (a.drain().collect(), b.drain().collect());
        assert_eq!(a, b);
        assert_eq!(a.len(), 1, "the working order outlived its lifetime");
        // A halt survives a restart.
        sim.book(&mut s, 999_000, 999_010, 100);
        assert!(s.halted());
        let mut again = strategy(params());
        again.restore(&s.snapshot().unwrap()).unwrap();
        assert!(again.halted());
        // Garbage is refused and changes nothing.
        let before = again.state.clone();
        assert!(again.restore(&[0xff; 3]).is_err());
        assert_eq!(again.state, before);
        let mut crowded = s.state.clone();
        crowded.orders = vec![
            s.state.orders.first().copied().unwrap_or(Working {
                client_order_id: ClientOrderId::NONE,
                order_id: OrderId(1),
                side: Side::Buy,
                price: Price(1),
                qty: 1,
                cum: 0,
                flags: 0,
                flatten: false,
                request: Request::None,
                priced_at: UnixNanos(0),
            });
            MAX_TRACKED + 1
        ];
        let error = again
            .restore(&postcard::to_stdvec(&crowded).unwrap())
            .unwrap_err();
        assert!(error.contains("at most"), "{error}");
    }

    #[test]
    fn the_report_lists_the_counters() {
        let mut sim = Sim::new();
        let mut s = strategy(params());
        warm(&mut sim, &mut s);
        sim.signal(&mut s, &signal(1e-4, 0.8));
        sim.trade(&mut s, BID);
        let report = s.report();
        let get = |name: &str| report.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(get("signals_used"), 1);
        assert_eq!(get("orders"), 1);
        assert_eq!(get("fills"), 1);
        assert_eq!(get("halted"), 0);
        assert_eq!(get("working"), 0);
    }
}

/// A test venue: the real order manager, acknowledging at once, filling IOC orders against
/// the touch and resting orders when a trade prints through them. Shared with the rule
/// strategy's tests.
#[cfg(test)]
pub(crate) mod sim {
    use aaiti_model::{
        BookAction, BookDelta, FeedEvent, FeedEventKind, InstrumentRegistry, InstrumentSpec,
        OrderCommand, OrderEvent, RejectReason, Side, Signal, TimeInForce, UnixNanos, VenueId,
    };
    use aaiti_model::{InstrumentId, OrderFlags, OrderId, Price, Qty};

    use crate::market::Market;
    use crate::oms::{CommandOutcome, Fill, Liquidity, OmsConfig, OrderManager};
    use crate::strategy::{Intents, Strategy};

    /// 2023-11-14T22:13:20Z.
    pub(crate) const T0: u64 = 1_700_000_000_000_000_000;
    pub(crate) const MS: u64 = 1_000_000;
    pub(crate) const BTC: InstrumentId = InstrumentId(0);

    /// Prices at scale 2 with tick 0.01 (mantissa 1); quantities at scale 3 with lot 0.001
    /// (mantissa 1); no minimum notional. Two instruments: BTCUSD (0) and ETHUSD (1).
    pub(crate) fn registry() -> InstrumentRegistry {
        let spec = |symbol: &str| InstrumentSpec {
            venue: "paper".into(),
            symbol: symbol.into(),
            base: "X".into(),
            quote: "USD".into(),
            price_scale: 2,
            qty_scale: 3,
            tick_size: "0.01".into(),
            lot_size: "0.001".into(),
            min_notional: "0".into(),
        };
        InstrumentRegistry::from_specs(&[spec("BTCUSD"), spec("ETHUSD")]).unwrap()
    }

    pub(crate) fn signal(prediction: f64, confidence: f64) -> Signal {
        Signal {
            model: 0,
            model_version: 1,
            instrument: BTC,
            horizon_ms: 1_000,
            prediction,
            confidence,
            flags: 0,
            feature_count: 8,
        }
    }

    pub(crate) struct Sim {
        pub(crate) market: Market,
        pub(crate) oms: OrderManager,
        pub(crate) now: UnixNanos,
        /// Every command the strategies emitted.
        pub(crate) commands: Vec<OrderCommand>,
        /// Every order event.
        pub(crate) events: Vec<OrderEvent>,
        /// Fee charged per fill (quote, price scale).
        pub(crate) fee_per_fill: i64,
        /// Quantity of the book's levels.
        pub(crate) level_qty: i64,
        exec_id: u64,
        venue_seq: u64,
        intents: Intents,
        queue: Vec<OrderEvent>,
    }

    impl Sim {
        pub(crate) fn new() -> Self {
            let registry = registry();
            let config = OmsConfig {
                accounts: 2,
                max_live_orders: 256,
                done_retention: 64,
                ..OmsConfig::default()
            };
            let mut market = Market::new(&registry).unwrap();
            market.on_feed_event(&FeedEvent {
                instrument: BTC,
                kind: FeedEventKind::BookValid.code(),
                venue: VenueId(0),
                venue_seq: 0,
                expected: 0,
                value: 0,
            });
            Self {
                market,
                oms: OrderManager::new(config, &registry).unwrap(),
                now: UnixNanos(T0),
                commands: Vec::new(),
                events: Vec::new(),
                fee_per_fill: 0,
                level_qty: 1_000,
                exec_id: 0,
                venue_seq: 0,
                intents: Intents::new(),
                queue: Vec::new(),
            }
        }

        fn delta(&mut self, side: u8, action: BookAction, price: i64, last: bool) {
            self.venue_seq += 1;
            let delta = BookDelta {
                instrument: BTC,
                side,
                action: action.code(),
                flags: if last { BookDelta::FLAG_LAST } else { 0 },
                _pad: 0,
                price: Price(price),
                qty: Qty(self.level_qty),
                venue_seq: self.venue_seq,
            };
            assert!(self.market.on_delta(&delta, self.now));
        }

        /// Advances engine time by `dt_ms`, sets the book to one level a side (1 unit each)
        /// and gives the update to `strategy`.
        pub(crate) fn book(&mut self, strategy: &mut dyn Strategy, bid: i64, ask: i64, dt_ms: u64) {
            self.now = UnixNanos(self.now.0 + dt_ms * MS);
            self.delta(0, BookAction::Clear, 0, false);
            self.delta(Side::Buy.code(), BookAction::Set, bid, false);
            self.delta(Side::Sell.code(), BookAction::Set, ask, true);
            strategy.on_book(&self.market, BTC, self.now, &mut self.intents);
            self.run(strategy);
        }

        /// A signal at the current time.
        pub(crate) fn signal(&mut self, strategy: &mut dyn Strategy, signal: &Signal) {
            strategy.on_signal(&self.market, signal, self.now, &mut self.intents);
            self.run(strategy);
        }

        /// A trade printing at `price`: every resting order it prints through fills at its
        /// limit, completely.
        pub(crate) fn trade(&mut self, strategy: &mut dyn Strategy, price: i64) {
            let crossed: Vec<(OrderId, Price, Qty)> = self
                .oms
                .orders()
                .filter(|order| order.status.is_at_venue() && order.pending.is_none())
                .filter(|order| match order.side {
                    Side::Buy => order.price.0 >= price,
                    Side::Sell => order.price.0 <= price,
                })
                .map(|order| (order.id, order.price, order.leaves_qty()))
                .collect();
            for (id, limit, qty) in crossed {
                self.fill(id, limit, qty, Liquidity::Maker);
            }
            self.run(strategy);
        }

        /// An order of someone else on `account` (e.g. the desk), filled at once.
        pub(crate) fn foreign_fill(
            &mut self,
            strategy: &mut dyn Strategy,
            account: u32,
            side: Side,
            qty: i64,
        ) {
            self.exec_id += 1;
            let cmd = OrderCommand {
                action: aaiti_model::OrderAction::New.code(),
                side: side.code(),
                order_type: aaiti_model::OrderType::Limit.code(),
                time_in_force: TimeInForce::Gtc.code(),
                account: aaiti_model::AccountId(account),
                instrument: BTC,
                price: Price(1),
                qty: Qty(qty),
                client_order_id: crate::strategy::client_order_id("desk", self.exec_id),
                ..OrderCommand::default()
            };
            let mut events = Vec::new();
            let outcome = self.oms.on_command(&cmd, self.now, &mut |e| events.push(e));
            if let CommandOutcome::Route(id) = outcome {
                self.queue.extend(events);
                self.fill(id, Price(1), Qty(qty), Liquidity::Maker);
            }
            self.run(strategy);
        }

        fn fill(&mut self, id: OrderId, price: Price, qty: Qty, liquidity: Liquidity) {
            self.exec_id += 1;
            let fill = Fill {
                exec_id: self.exec_id,
                price,
                qty,
                liquidity,
                fee: self.fee_per_fill,
            };
            let queue = &mut self.queue;
            self.oms
                .on_venue_fill(id, &fill, self.now, &mut |e| queue.push(e))
                .unwrap();
        }

        /// Sends every pending intent to the order manager and the venue, and every event
        /// back to the strategy, until nothing moves.
        pub(crate) fn run(&mut self, strategy: &mut dyn Strategy) {
            for _ in 0..64 {
                let commands: Vec<OrderCommand> = self.intents.drain().collect();
                if commands.is_empty() && self.queue.is_empty() {
                    return;
                }
                for command in commands {
                    self.commands.push(command);
                    self.execute(&command);
                }
                for event in std::mem::take(&mut self.queue) {
                    self.events.push(event);
                    if event.account == strategy.account() {
                        strategy.on_order_event(&self.market, &event, self.now, &mut self.intents);
                    }
                }
            }
            panic!("the strategy and the venue do not settle");
        }

        fn execute(&mut self, command: &OrderCommand) {
            let now = self.now;
            let mut events = Vec::new();
            let mut push = |e| events.push(e);
            match self.oms.on_command(command, now, &mut push) {
                CommandOutcome::Route(id) => {
                    let order = self.oms.order(id).unwrap().clone();
                    let book = self.market.get(BTC).unwrap().book();
                    let touch = book.best(order.side.opposite());
                    let crosses = touch.is_some_and(|(price, _)| match order.side {
                        Side::Buy => order.price >= price,
                        Side::Sell => order.price <= price,
                    });
                    if order.time_in_force == TimeInForce::Ioc {
                        // Marketable: take what the touch has, expire the rest.
                        if let (true, Some((price, available))) = (crosses, touch) {
                            self.queue.append(&mut events);
                            let qty = Qty(order.qty.0.min(available.0));
                            self.fill(id, price, qty, Liquidity::Taker);
                        }
                        if self.oms.order(id).unwrap().status.is_at_venue() {
                            let mut push = |e| events.push(e);
                            self.oms.on_venue_expired(id, now, &mut push).unwrap();
                        }
                    } else if crosses && order.flags.contains(OrderFlags::POST_ONLY) {
                        let reason = RejectReason::UnsupportedOrder;
                        let mut push = |e| events.push(e);
                        self.oms
                            .on_venue_rejected(id, reason, now, &mut push)
                            .unwrap();
                    } else {
                        let mut push = |e| events.push(e);
                        self.oms.on_venue_ack(id, now, &mut push).unwrap();
                    }
                }
                CommandOutcome::SendCancel(id) => {
                    let mut push = |e| events.push(e);
                    self.oms.on_venue_canceled(id, now, &mut push).unwrap();
                }
                CommandOutcome::SendReplace(id) => {
                    let mut push = |e| events.push(e);
                    self.oms.on_venue_replaced(id, now, &mut push).unwrap();
                }
                _ => {}
            }
            self.queue.append(&mut events);
        }

        /// The open orders of `account` in the order manager: (side, price, leaves).
        pub(crate) fn open(&self, account: u32) -> Vec<(Side, i64, i64)> {
            self.oms
                .open_orders(aaiti_model::AccountId(account))
                .map(|order| (order.side, order.price.0, order.leaves_qty().0))
                .collect()
        }
    }
}
