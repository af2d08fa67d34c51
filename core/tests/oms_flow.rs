//! The order manager driven the way the engine drives it, through the public API only:
//! commands in, events journaled as envelopes, venue requests derived from the outcomes and
//! events (the routing rule of the module docs), a toy venue answering them, stops fed
//! from trades, time from ticks, and a snapshot/restore in the middle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::VecDeque;

use aaiti_core::oms::{
    CommandOutcome, Fill, Liquidity, OmsConfig, OrderManager, OrderStatus, Pending, TriggerSource,
};
use aaiti_model::{
    AccountId, ClientOrderId, Envelope, InstrumentId, InstrumentRegistry, InstrumentSpec,
    OrderAction, OrderCommand, OrderEvent, OrderEventKind, OrderId, OrderType, Price, Qty,
    RecordHeader, RejectReason, Side, StreamId, TimeInForce, UnixNanos,
};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const BTC: InstrumentId = InstrumentId(0);

/// What the engine sends to the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    New(OrderId),
    Cancel(OrderId),
    Replace(OrderId),
}

/// The engine's side: the manager, a journal of envelopes, the venue outbox.
struct Engine {
    om: OrderManager,
    journal: Vec<Envelope>,
    outbox: VecDeque<Request>,
    seq: u64,
    now: UnixNanos,
}

impl Engine {
    fn new() -> Self {
        let spec = InstrumentSpec {
            venue: "paper".into(),
            symbol: "BTCUSD".into(),
            base: "BTC".into(),
            quote: "USD".into(),
            price_scale: 2,
            qty_scale: 3,
            tick_size: "0.01".into(),
            lot_size: "0.001".into(),
            min_notional: "5".into(),
        };
        let registry = InstrumentRegistry::from_specs(&[spec]).unwrap();
        let config = OmsConfig {
            accounts: 1,
            ..OmsConfig::default()
        };
        Self {
            om: OrderManager::new(config, &registry).unwrap(),
            journal: Vec::new(),
            outbox: VecDeque::new(),
            seq: 0,
            now: UnixNanos(T0),
        }
    }

    /// Journals `events` and applies the routing rule to them.
    fn handle(&mut self, events: Vec<OrderEvent>) {
        for event in events {
            self.seq += 1;
            let header = RecordHeader::new(StreamId(9), self.seq, self.now, self.now);
            let envelope = Envelope::new(header, &event);
            envelope.validate().unwrap();
            self.journal.push(envelope);
            match OrderEventKind::try_from(event.kind).unwrap() {
                OrderEventKind::Triggered => self.outbox.push_back(Request::New(event.order_id)),
                OrderEventKind::PendingCancel => {
                    self.outbox.push_back(Request::Cancel(event.order_id));
                }
                OrderEventKind::PendingReplace => {
                    self.outbox.push_back(Request::Replace(event.order_id));
                }
                _ => {}
            }
        }
    }

    fn command(&mut self, cmd: &OrderCommand) -> CommandOutcome {
        let mut events = Vec::new();
        let outcome = if cmd.action() == Some(OrderAction::New) {
            // validate -> (risk) -> accept, as the engine does.
            match self.om.validate_new(cmd, self.now) {
                Err(reason) => {
                    self.om.reject_new(cmd, reason, &mut |e| events.push(e));
                    CommandOutcome::Rejected(reason)
                }
                Ok(view) if view.qty > Qty(5_000) => {
                    // Our stand-in risk check: at most 5 BTC per order.
                    self.om
                        .reject_new(cmd, RejectReason::MaxOrderQty, &mut |e| events.push(e));
                    CommandOutcome::Rejected(RejectReason::MaxOrderQty)
                }
                Ok(view) => self.om.accept_new(&view, self.now, &mut |e| events.push(e)),
            }
        } else {
            self.om.on_command(cmd, self.now, &mut |e| events.push(e))
        };
        if let CommandOutcome::Route(id) = outcome {
            self.outbox.push_back(Request::New(id));
        }
        self.handle(events);
        outcome
    }

    fn trade(&mut self, price: i64) {
        let mut events = Vec::new();
        self.om.on_trigger_price(
            BTC,
            TriggerSource::LastTrade,
            Price(price),
            self.now,
            &mut |e| events.push(e),
        );
        self.handle(events);
    }

    fn tick(&mut self, now: u64) {
        self.now = UnixNanos(now);
        let mut events = Vec::new();
        self.om.on_time(self.now, &mut |e| events.push(e));
        self.handle(events);
    }

    /// A toy venue: acknowledges new orders, fills market orders at `market` in two
    /// halves, fills limit orders that cross `market` completely, confirms every cancel and
    /// replace.
    fn venue(&mut self, market: i64) {
        let mut exec = 1_000 + self.seq * 10;
        while let Some(request) = self.outbox.pop_front() {
            let mut events = Vec::new();
            let out = &mut |e| events.push(e);
            let now = self.now;
            match request {
                Request::New(id) => {
                    self.om.on_venue_ack(id, now, out).unwrap();
                    let order = self.om.order(id).unwrap().clone();
                    let crosses = match order.side {
                        Side::Buy => order.price.0 >= market,
                        Side::Sell => order.price.0 <= market,
                    };
                    if order.venue_type() == OrderType::Market {
                        let half = Qty(order.qty.0 / 2);
                        for qty in [half, Qty(order.qty.0 - half.0)] {
                            exec += 1;
                            let fill = Fill {
                                exec_id: exec,
                                price: Price(market),
                                qty,
                                liquidity: Liquidity::Taker,
                                fee: 7,
                            };
                            self.om.on_venue_fill(id, &fill, now, out).unwrap();
                        }
                    } else if crosses {
                        exec += 1;
                        let fill = Fill {
                            exec_id: exec,
                            price: Price(market),
                            qty: order.leaves_qty(),
                            liquidity: Liquidity::Taker,
                            fee: 5,
                        };
                        self.om.on_venue_fill(id, &fill, now, out).unwrap();
                    }
                }
                Request::Cancel(id) => self.om.on_venue_canceled(id, now, out).unwrap(),
                Request::Replace(id) => self.om.on_venue_replaced(id, now, out).unwrap(),
            }
            self.handle(events);
        }
    }

    fn kinds(&self, id: OrderId) -> Vec<OrderEventKind> {
        self.journal
            .iter()
            .filter_map(|e| e.payload::<OrderEvent>())
            .filter(|e| e.order_id == id)
            .map(|e| OrderEventKind::try_from(e.kind).unwrap())
            .collect()
    }
}

fn new_order(
    client: &str,
    side: Side,
    order_type: OrderType,
    tif: TimeInForce,
    price: i64,
    stop: i64,
    qty: i64,
) -> OrderCommand {
    OrderCommand {
        action: OrderAction::New.code(),
        side: side.code(),
        order_type: order_type.code(),
        time_in_force: tif.code(),
        account: AccountId(0),
        instrument: BTC,
        price: Price(price),
        stop_price: Price(stop),
        qty: Qty(qty),
        client_order_id: ClientOrderId::new(client.as_bytes()).unwrap(),
        ..OrderCommand::default()
    }
}

#[test]
fn engine_flow_end_to_end() {
    use OrderEventKind as K;
    let mut engine = Engine::new();
    engine.trade(6_000_000);

    // A resting bid, a stop-loss sell, a Day order, one risk reject, one validation reject.
    let bid = new_order(
        "bid",
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Gtc,
        5_990_000,
        0,
        1_000,
    );
    let CommandOutcome::Route(bid_id) = engine.command(&bid) else {
        panic!()
    };
    let stop = new_order(
        "sl",
        Side::Sell,
        OrderType::Stop,
        TimeInForce::Gtc,
        0,
        5_950_000,
        2_000,
    );
    let CommandOutcome::Held(stop_id) = engine.command(&stop) else {
        panic!()
    };
    let day = new_order(
        "day",
        Side::Sell,
        OrderType::Limit,
        TimeInForce::Day,
        6_100_000,
        0,
        500,
    );
    let CommandOutcome::Route(day_id) = engine.command(&day) else {
        panic!()
    };
    let big = new_order(
        "big",
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Gtc,
        5_990_000,
        0,
        9_000,
    );
    assert_eq!(
        engine.command(&big),
        CommandOutcome::Rejected(RejectReason::MaxOrderQty)
    );
    let off_tick = new_order(
        "bad",
        Side::Buy,
        OrderType::Market,
        TimeInForce::Ioc,
        1,
        0,
        1_000,
    );
    assert_eq!(
        engine.command(&off_tick),
        CommandOutcome::Rejected(RejectReason::InvalidPrice)
    );
    engine.venue(6_000_000);
    assert_eq!(engine.om.status(bid_id), Some(OrderStatus::New));
    assert_eq!(engine.om.status(stop_id), Some(OrderStatus::Armed));

    // Move the bid down (loses priority), confirmed by the venue.
    let replace = OrderCommand {
        action: OrderAction::Replace.code(),
        order_id: bid_id,
        price: Price(5_980_000),
        client_order_id: ClientOrderId::NONE,
        ..bid
    };
    assert_eq!(
        engine.command(&replace),
        CommandOutcome::SendReplace(bid_id)
    );
    assert!(matches!(
        engine.om.order(bid_id).unwrap().pending,
        Pending::Replace(_)
    ));
    engine.now = UnixNanos(T0 + SEC);
    engine.venue(6_000_000);
    assert_eq!(engine.om.order(bid_id).unwrap().price, Price(5_980_000));
    assert_eq!(
        engine.om.order(bid_id).unwrap().priority_at,
        UnixNanos(T0 + SEC)
    );

    // The market gaps down through the stop: it triggers and is sent as a market order;
    // the venue also fills the bid.
    engine.trade(5_900_000);
    assert_eq!(engine.outbox, [Request::New(stop_id)]);
    engine.venue(5_900_000);
    let stop_order = engine.om.order(stop_id).unwrap();
    assert_eq!(stop_order.status, OrderStatus::Filled);
    assert_eq!(
        (stop_order.avg_price(), stop_order.fees),
        (Price(5_900_000), 14)
    );
    assert_eq!(
        engine.kinds(stop_id),
        [
            K::PendingNew,
            K::Triggered,
            K::Accepted,
            K::PartiallyFilled,
            K::Filled
        ]
    );
    assert_eq!(engine.om.status(bid_id), Some(OrderStatus::New));

    // The session ends: the Day order is canceled at the venue and ends Expired.
    let day_end = engine.om.order(day_id).unwrap().expire_at.0;
    engine.tick(day_end);
    assert_eq!(engine.outbox, [Request::Cancel(day_id)]);
    engine.venue(5_900_000);
    assert_eq!(engine.om.status(day_id), Some(OrderStatus::Expired));

    // Snapshot, restore, carry on with the restored manager.
    let bytes = engine.om.snapshot().unwrap();
    engine.om = OrderManager::restore(&bytes).unwrap();
    let cancel = OrderCommand {
        action: OrderAction::Cancel.code(),
        account: AccountId(0),
        orig_client_order_id: ClientOrderId::new(b"bid").unwrap(),
        ..OrderCommand::default()
    };
    assert_eq!(engine.command(&cancel), CommandOutcome::SendCancel(bid_id));
    engine.venue(5_900_000);
    assert_eq!(
        engine.kinds(bid_id),
        [
            K::PendingNew,
            K::Accepted,
            K::PendingReplace,
            K::Replaced,
            K::PendingCancel,
            K::Canceled
        ]
    );
    assert_eq!(engine.om.live_count(), 0);
    let counters = engine.om.counters();
    assert_eq!(
        (
            counters.orders_created,
            counters.new_rejected,
            counters.illegal
        ),
        (3, 2, 0)
    );
    assert_eq!(counters.rejects(RejectReason::MaxOrderQty), 1);
    // Every journaled record reads back.
    for envelope in &engine.journal {
        Envelope::from_bytes(envelope.as_bytes()).unwrap();
    }
}
