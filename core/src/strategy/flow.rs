//! `flow`: a deterministic order-flow driver for one instrument. It is the default run's
//! (and the crash tests') source of orders until the model strategy trades, and an example
//! of the [`Strategy`] trait.
//!
//! Every `every_updates` valid book updates it takes one action, in a fixed rotation:
//! a passive limit order `offset_ticks` behind the touch (GTC), or every `cross_every`-th
//! action a marketable IOC limit one tick through the touch (it takes liquidity, so the run
//! has fills); with `max_open` orders working it cancels the oldest instead, and every
//! `replace_every`-th action moves the oldest to the current passive price. The side
//! alternates, leaning toward flat when the position exceeds `max_position` lots.

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, OrderAction, OrderCommand, OrderEvent, OrderEventKind,
    OrderFlags, OrderId, OrderType, Price, Qty, Side, TimeInForce, UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::{Intents, Strategy, client_order_id};
use crate::market::Market;

/// Parameters of a [`FlowStrategy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowParams {
    /// Strategy name (client order id prefix).
    pub name: String,
    /// Account it trades.
    pub account: AccountId,
    /// Instrument it trades.
    pub instrument: InstrumentId,
    /// The instrument's tick size.
    pub tick: Price,
    /// Order quantity.
    pub qty: Qty,
    /// One action every this many valid book updates.
    pub every_updates: u32,
    /// Every n-th action crosses the spread.
    pub cross_every: u32,
    /// Every n-th action replaces the oldest working order (0: never).
    pub replace_every: u32,
    /// Passive orders sit this many ticks behind the touch.
    pub offset_ticks: i64,
    /// Most working orders; beyond, the oldest is canceled.
    pub max_open: usize,
    /// Position (in lots of `qty`) beyond which it only trades toward flat.
    pub max_position: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct FlowState {
    updates: u64,
    actions: u64,
    next_id: u64,
    /// Working orders, oldest first: client order id, engine order id (0 until known), side.
    open: Vec<(ClientOrderId, OrderId, Side)>,
    /// Signed position in quantity mantissas, from its own fills.
    position: i64,
    sent: u64,
    fills: u64,
    rejects: u64,
}

/// See the module docs.
pub struct FlowStrategy {
    params: FlowParams,
    state: FlowState,
}

impl FlowStrategy {
    /// A flow driver with these parameters.
    pub fn new(params: FlowParams) -> Self {
        let open = Vec::with_capacity(params.max_open + 1);
        Self {
            params,
            state: FlowState {
                open,
                ..FlowState::default()
            },
        }
    }

    fn command(&mut self, action: OrderAction, side: Side) -> OrderCommand {
        self.state.next_id += 1;
        OrderCommand {
            action: action.code(),
            side: side.code(),
            order_type: OrderType::Limit.code(),
            time_in_force: TimeInForce::Gtc.code(),
            flags: OrderFlags::NONE.0,
            account: self.params.account,
            instrument: self.params.instrument,
            qty: self.params.qty,
            client_order_id: client_order_id(&self.params.name, self.state.next_id),
            ..OrderCommand::default()
        }
    }

    fn side_for(&self) -> Side {
        let lots = self.state.position / self.params.qty.0.max(1);
        let lean_buy = lots <= -self.params.max_position;
        let lean_sell = lots >= self.params.max_position;
        if lean_sell || (!lean_buy && !self.state.actions.is_multiple_of(2)) {
            Side::Sell
        } else {
            Side::Buy
        }
    }

    fn passive_price(&self, market: &Market, side: Side) -> Option<Price> {
        let book = market.get(self.params.instrument)?.book();
        let (touch, _) = book.best(side)?;
        let offset = self.params.offset_ticks * self.params.tick.0;
        let price = match side {
            Side::Buy => touch.0 - offset,
            Side::Sell => touch.0 + offset,
        };
        (price > 0).then_some(Price(price))
    }

    fn act(&mut self, market: &Market, out: &mut Intents) {
        self.state.actions += 1;
        let action = self.state.actions;
        let side = self.side_for();
        if self.state.open.len() >= self.params.max_open
            && let Some(&(oldest, order_id, order_side)) = self.state.open.first()
        {
            let mut cancel = self.command(OrderAction::Cancel, order_side);
            cancel.order_id = order_id;
            cancel.orig_client_order_id = oldest;
            self.state.open.remove(0);
            out.push(cancel);
            return;
        }
        if self.params.replace_every > 0
            && action.is_multiple_of(u64::from(self.params.replace_every))
            && let Some(&(oldest, order_id, order_side)) = self.state.open.first()
            && order_id.0 != 0
        {
            // A replace keeps the order's side and moves it to that side's passive price.
            if let Some(price) = self.passive_price(market, order_side) {
                let mut replace = self.command(OrderAction::Replace, order_side);
                replace.order_id = order_id;
                replace.orig_client_order_id = oldest;
                replace.price = price;
                let new_id = replace.client_order_id;
                self.state.open[0] = (new_id, order_id, order_side);
                out.push(replace);
                return;
            }
        }
        let Some(book) = market.get(self.params.instrument).map(|m| m.book()) else {
            return;
        };
        let cross = self.params.cross_every > 0
            && action.is_multiple_of(u64::from(self.params.cross_every));
        let mut order = self.command(OrderAction::New, side);
        if cross {
            let Some((touch, _)) = book.best(side.opposite()) else {
                return;
            };
            order.price = match side {
                Side::Buy => Price(touch.0 + self.params.tick.0),
                Side::Sell => Price((touch.0 - self.params.tick.0).max(self.params.tick.0)),
            };
            order.time_in_force = TimeInForce::Ioc.code();
        } else {
            let Some(price) = self.passive_price(market, side) else {
                return;
            };
            order.price = price;
            self.state
                .open
                .push((order.client_order_id, OrderId(0), side));
        }
        self.state.sent += 1;
        out.push(order);
    }
}

impl Strategy for FlowStrategy {
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
        if instrument != self.params.instrument {
            return;
        }
        self.state.updates += 1;
        if self
            .state
            .updates
            .is_multiple_of(u64::from(self.params.every_updates.max(1)))
        {
            self.act(market, out);
        }
    }

    fn on_order_event(
        &mut self,
        _market: &Market,
        event: &OrderEvent,
        _now: UnixNanos,
        _out: &mut Intents,
    ) {
        let Ok(kind) = OrderEventKind::try_from(event.kind) else {
            return;
        };
        if let Some(entry) = self
            .state
            .open
            .iter_mut()
            .find(|(id, _, _)| *id == event.client_order_id)
        {
            entry.1 = event.order_id;
        }
        if matches!(
            kind,
            OrderEventKind::PartiallyFilled | OrderEventKind::Filled
        ) {
            self.state.fills += 1;
            let sign = Side::try_from(event.side).map_or(0, Side::sign);
            self.state.position += sign * event.last_qty.0;
        }
        if kind == OrderEventKind::Rejected {
            self.state.rejects += 1;
        }
        if matches!(
            kind,
            OrderEventKind::Filled
                | OrderEventKind::Canceled
                | OrderEventKind::Rejected
                | OrderEventKind::Expired
        ) {
            self.state.open.retain(|(id, order_id, _)| {
                *order_id != event.order_id && *id != event.client_order_id
            });
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(&self.state).map_err(|error| format!("flow strategy: {error}"))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state =
            postcard::from_bytes(bytes).map_err(|error| format!("flow strategy: {error}"))?;
        Ok(())
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("orders_sent".to_owned(), self.state.sent),
            ("fills".to_owned(), self.state.fills),
            ("rejects".to_owned(), self.state.rejects),
            ("working".to_owned(), self.state.open.len() as u64),
        ]
    }
}
