//! `rule`: an EMA crossover of the mid — the template to copy when writing a strategy.
//!
//! The rule: keep a fast and a slow exponential moving average of the mid, updated on every
//! book update. When the fast one is above the slow one by more than `threshold_bps`, want
//! to be long `max_position`; below by more than that, short; in between, keep the last
//! wish (hysteresis, so that noise around the crossing does not flip the position).
//! Move toward the wish with passive limit orders of at most `order_qty`, one at a time,
//! joining the best bid (buys) or the best ask (sells).
//!
//! What every strategy must get right, and where it is done here:
//!
//! * **Engine time only.** Everything is decided from the events and their `now`; no clock
//!   is read, no randomness is used: a replay of the journal makes the same decisions.
//! * **Its own position from its own fills** ([`Strategy::on_order_event`]): the account may
//!   be shared, so only events of the order it is working count.
//! * **One request at a time.** After sending a cancel it waits for the answer before doing
//!   anything else with that order.
//! * **No allocation per event.** State is a few numbers; commands go into the pre-sized
//!   [`Intents`] buffer.
//! * **State in snapshots** ([`Strategy::snapshot`] / [`Strategy::restore`]): everything that
//!   changes lives in one serde struct.

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, OrderAction, OrderCommand, OrderEvent, OrderEventKind,
    OrderId, OrderType, Price, Qty, Side, TimeInForce, UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::{Intents, Strategy, client_order_id};
use crate::market::Market;

/// Parameters of a [`RuleStrategy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleParams {
    /// Strategy name (reports, client order id prefix).
    pub name: String,
    /// Account it trades.
    pub account: AccountId,
    /// Instrument it trades.
    pub instrument: InstrumentId,
    /// Fast EMA period, in book updates.
    pub fast_updates: u32,
    /// Slow EMA period, in book updates (more than `fast_updates`).
    pub slow_updates: u32,
    /// Gap between the averages, in basis points of the slow one, that changes the wish.
    pub threshold_bps: f64,
    /// Quantity of each order (instrument lots).
    pub order_qty: Qty,
    /// Position wanted when long (and, negated, when short).
    pub max_position: Qty,
}

/// A parameter of a [`RuleStrategy`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule strategy `{name}`: `{key}` {problem}")]
pub struct RuleParamsError {
    /// Strategy name.
    pub name: String,
    /// Parameter.
    pub key: &'static str,
    /// What is wrong.
    pub problem: &'static str,
}

/// The order it is working, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Working {
    client_order_id: ClientOrderId,
    /// 0 until the first event of the order tells us the engine's id.
    order_id: OrderId,
    side: Side,
    price: Price,
    /// A cancel was sent; wait for its answer.
    cancelling: bool,
}

/// Everything that changes (one struct, so a snapshot is one encode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RuleState {
    /// EMAs of the mid, in price mantissas (0 before the first update).
    fast: f64,
    slow: f64,
    updates: u64,
    /// -1 short, 0 no wish yet, +1 long.
    wish: i8,
    /// Signed position from its own fills, quantity mantissas.
    position: i64,
    working: Option<Working>,
    next_id: u64,
    orders: u64,
    cancels: u64,
    fills: u64,
}

/// See the module docs.
pub struct RuleStrategy {
    params: RuleParams,
    state: RuleState,
}

impl RuleStrategy {
    /// A strategy with these parameters.
    ///
    /// # Errors
    ///
    /// A period of 0, a slow period not above the fast one, a negative or non-finite
    /// threshold, or a non-positive quantity.
    pub fn new(params: RuleParams) -> Result<Self, RuleParamsError> {
        let bad = |key, problem| {
            Err(RuleParamsError {
                name: params.name.clone(),
                key,
                problem,
            })
        };
        if params.fast_updates == 0 {
            return bad("fast_updates", "must be at least 1");
        }
        if params.slow_updates <= params.fast_updates {
            return bad("slow_updates", "must be more than fast_updates");
        }
        if !(params.threshold_bps >= 0.0 && params.threshold_bps.is_finite()) {
            return bad("threshold_bps", "must be a number >= 0");
        }
        if params.order_qty.0 <= 0 {
            return bad("order_qty", "must be positive");
        }
        if params.max_position.0 <= 0 {
            return bad("max_position", "must be positive");
        }
        Ok(Self {
            params,
            state: RuleState::default(),
        })
    }

    /// Its position from its own fills.
    pub fn position(&self) -> Qty {
        Qty(self.state.position)
    }

    /// Updates both averages with a new mid; the usual `alpha = 2 / (period + 1)`.
    fn update_averages(&mut self, mid: f64) {
        let state = &mut self.state;
        if state.updates == 0 {
            // Start both at the first mid rather than at 0 (no long warm-up from nowhere).
            state.fast = mid;
            state.slow = mid;
        }
        let alpha = |period: u32| 2.0 / (f64::from(period) + 1.0);
        state.fast += alpha(self.params.fast_updates) * (mid - state.fast);
        state.slow += alpha(self.params.slow_updates) * (mid - state.slow);
        state.updates += 1;
    }

    /// A command for its instrument and account; the caller fills in the rest.
    fn command(&mut self, action: OrderAction, side: Side) -> OrderCommand {
        self.state.next_id += 1;
        OrderCommand {
            action: action.code(),
            side: side.code(),
            order_type: OrderType::Limit.code(),
            time_in_force: TimeInForce::Gtc.code(),
            account: self.params.account,
            instrument: self.params.instrument,
            client_order_id: client_order_id(&self.params.name, self.state.next_id),
            ..OrderCommand::default()
        }
    }
}

impl Strategy for RuleStrategy {
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
        _now: UnixNanos,
        out: &mut Intents,
    ) {
        // 1. Only our instrument, only a complete two-sided book.
        if instrument != self.params.instrument {
            return;
        }
        let Some(book) = market.get(instrument).map(|m| m.book()) else {
            return;
        };
        let (Some((bid, _)), Some((ask, _))) = (book.best_bid(), book.best_ask()) else {
            return;
        };
        if bid >= ask {
            return;
        }

        // 2. Update the signal. Nothing trades before the slow average has seen a period.
        self.update_averages((bid.0 as f64 + ask.0 as f64) / 2.0);
        if self.state.updates < u64::from(self.params.slow_updates) {
            return;
        }
        let gap_bps = (self.state.fast - self.state.slow) / self.state.slow * 1e4;
        if gap_bps > self.params.threshold_bps {
            self.state.wish = 1;
        } else if gap_bps < -self.params.threshold_bps {
            self.state.wish = -1;
        }
        let target = i64::from(self.state.wish) * self.params.max_position.0;
        let need = target - self.state.position;

        // 3. A working order: keep it only while it is on the right side and at the touch.
        if let Some(working) = self.state.working {
            if working.cancelling || working.order_id.0 == 0 {
                return; // an answer is pending
            }
            let touch = match working.side {
                Side::Buy => bid,
                Side::Sell => ask,
            };
            if need.signum() != working.side.sign() || working.price != touch {
                let mut cancel = self.command(OrderAction::Cancel, working.side);
                cancel.order_id = working.order_id;
                cancel.orig_client_order_id = working.client_order_id;
                self.state.working = Some(Working {
                    cancelling: true,
                    ..working
                });
                self.state.cancels += 1;
                out.push(cancel);
            }
            return;
        }

        // 4. No order: join the touch for up to `order_qty` toward the target.
        if need == 0 {
            return;
        }
        let (side, price) = if need > 0 {
            (Side::Buy, bid)
        } else {
            (Side::Sell, ask)
        };
        let mut order = self.command(OrderAction::New, side);
        order.price = price;
        order.qty = Qty(need.abs().min(self.params.order_qty.0));
        self.state.working = Some(Working {
            client_order_id: order.client_order_id,
            order_id: OrderId(0),
            side,
            price,
            cancelling: false,
        });
        self.state.orders += 1;
        out.push(order);
    }

    fn on_order_event(
        &mut self,
        _market: &Market,
        event: &OrderEvent,
        _now: UnixNanos,
        _out: &mut Intents,
    ) {
        // Only the order we are working: match by engine id once known, else client id.
        let Some(working) = self.state.working.as_mut() else {
            return;
        };
        let ours = if working.order_id.0 != 0 {
            event.order_id == working.order_id
        } else {
            event.client_order_id == working.client_order_id
        };
        if !ours {
            return;
        }
        working.order_id = event.order_id;
        let Ok(kind) = OrderEventKind::try_from(event.kind) else {
            return;
        };
        match kind {
            OrderEventKind::PartiallyFilled | OrderEventKind::Filled => {
                self.state.fills += 1;
                let sign = working.side.sign();
                self.state.position += sign * event.last_qty.0;
            }
            // The cancel was refused (usually: it filled first, and that event follows).
            OrderEventKind::CancelRejected => working.cancelling = false,
            _ => {}
        }
        // Done orders are forgotten; the next book update decides again.
        if matches!(
            kind,
            OrderEventKind::Filled
                | OrderEventKind::Canceled
                | OrderEventKind::Rejected
                | OrderEventKind::Expired
        ) {
            self.state.working = None;
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(&self.state).map_err(|error| format!("rule strategy: {error}"))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state =
            postcard::from_bytes(bytes).map_err(|error| format!("rule strategy: {error}"))?;
        Ok(())
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("orders".to_owned(), self.state.orders),
            ("cancels".to_owned(), self.state.cancels),
            ("fills".to_owned(), self.state.fills),
        ]
    }
}

#[cfg(test)]
mod tests {
    use aaiti_model::{OrderAction, Side};

    use super::super::ml::sim::{BTC, Sim};
    use super::*;

    fn params() -> RuleParams {
        RuleParams {
            name: "ema".into(),
            account: AccountId(0),
            instrument: BTC,
            fast_updates: 3,
            slow_updates: 10,
            threshold_bps: 1.0,
            order_qty: Qty(20),
            max_position: Qty(50),
        }
    }

    /// A rising then falling market: the rule buys up to its cap on the way up, then sells
    /// down to short on the way down, trading only with passive orders that a print fills.
    #[test]
    fn it_follows_the_crossover_with_passive_orders() {
        let mut sim = Sim::new();
        let mut s = RuleStrategy::new(params()).unwrap();
        // Flat for the slow period: no wish, no order.
        for _ in 0..10 {
            sim.book(&mut s, 1_000_000, 1_000_010, 100);
        }
        assert!(sim.commands.is_empty());
        // Up 5 ticks an update: the fast EMA pulls ahead by more than 1 bp.
        let mut bid = 1_000_000;
        for _ in 0..8 {
            bid += 50;
            sim.book(&mut s, bid, bid + 10, 100);
            // Whatever is resting at the bid gets filled by a print there.
            sim.trade(&mut s, bid);
        }
        assert_eq!(s.position(), Qty(50), "capped at max_position");
        let buys = sim
            .commands
            .iter()
            .filter(|c| c.action() == Some(OrderAction::New) && c.side() == Some(Side::Buy))
            .count();
        assert_eq!(buys, 3, "20 + 20 + 10");
        assert!(
            sim.commands
                .iter()
                .filter(|c| c.action() == Some(OrderAction::New))
                .all(|c| c.qty.0 <= 20)
        );
        // Down: the wish flips, the position goes to -50 through sells at the ask.
        for _ in 0..16 {
            bid -= 50;
            sim.book(&mut s, bid, bid + 10, 100);
            sim.trade(&mut s, bid + 10);
        }
        assert_eq!(s.position(), Qty(-50));
        assert!(sim.commands.iter().any(|c| c.side() == Some(Side::Sell)));
        let report = s.report();
        assert_eq!(report[2], ("fills".to_owned(), 3 + 5));
    }

    #[test]
    fn a_stale_order_is_cancelled_and_replaced_at_the_new_touch() {
        let mut sim = Sim::new();
        let mut s = RuleStrategy::new(params()).unwrap();
        for _ in 0..10 {
            sim.book(&mut s, 1_000_000, 1_000_010, 100);
        }
        // A 20 bp jump: the fast average leads by 0.32 × 20 = 6.4 bp, a long wish.
        sim.book(&mut s, 1_002_000, 1_002_010, 100);
        assert_eq!(sim.open(0), vec![(Side::Buy, 1_002_000, 20)]);
        sim.book(&mut s, 1_002_100, 1_002_110, 100); // the bid moved away: cancel
        assert!(sim.open(0).is_empty());
        assert_eq!(
            sim.commands.last().unwrap().action(),
            Some(OrderAction::Cancel)
        );
        sim.book(&mut s, 1_002_100, 1_002_110, 100); // then join the new bid
        assert_eq!(sim.open(0), vec![(Side::Buy, 1_002_100, 20)]);
    }

    #[test]
    fn snapshots_round_trip_and_bad_params_are_refused() {
        let mut sim = Sim::new();
        let mut s = RuleStrategy::new(params()).unwrap();
        for i in 0..15 {
            sim.book(&mut s, 1_000_000 + 40 * i, 1_000_010 + 40 * i, 100);
        }
        let mut restored = RuleStrategy::new(params()).unwrap();
        restored.restore(&s.snapshot().unwrap()).unwrap();
        assert_eq!(restored.state, s.state);
        assert!(restored.restore(&[0xff]).is_err());
        let bad = RuleParams {
            slow_updates: 3,
            ..params()
        };
        let error = RuleStrategy::new(bad).err().unwrap();
        assert_eq!(error.key, "slow_updates");
    }
}
