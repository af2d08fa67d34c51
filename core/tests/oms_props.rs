//! Property tests of the order manager: random command, venue, price and time sequences
//! (valid and invalid) never panic, never overfill, keep `leaves = qty − cum` for open
//! orders, never change a done order, leave state untouched on every reject and illegal
//! report, and emit per order only legal paths of the state machine (checked against an
//! independent model below). A second property runs each sequence with and without
//! snapshot/restore round trips in the middle and requires identical outputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;

use aaiti_core::oms::{
    CommandOutcome, Fill, IllegalTransition, Liquidity, OmsConfig, Order, OrderManager,
    OrderStatus, Pending, TriggerSource,
};
use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderAction,
    OrderCommand, OrderEvent, OrderEventKind, OrderId, OrderType, Price, Qty, Record, RejectReason,
    Side, TimeInForce, UnixNanos,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
/// Prices (tick 5): invalid ones, a band around 10 000, one off tick.
const PRICES: [i64; 12] = [
    0, -5, 9_900, 9_950, 9_995, 10_000, 10_000, 10_005, 10_050, 10_100, 10_003, 10_200,
];
const QTYS: [i64; 10] = [0, -1_000, 1, 100, 500, 1_000, 1_000, 1_500, 2_000, 2_001];
const FILL_QTYS: [i64; 7] = [0, 1, 100, 300, 500, 1_000, 2_000];

fn registry() -> InstrumentRegistry {
    let spec = |symbol: &str| InstrumentSpec {
        venue: "paper".into(),
        symbol: symbol.into(),
        base: "X".into(),
        quote: "USD".into(),
        price_scale: 2,
        qty_scale: 3,
        tick_size: "0.05".into(),
        lot_size: "0.001".into(),
        min_notional: "10".into(),
    };
    InstrumentRegistry::from_specs(&[spec("BTCUSD"), spec("ETHUSD")]).unwrap()
}

fn manager() -> OrderManager {
    let config = OmsConfig {
        accounts: 2,
        max_live_orders: 12,
        done_retention: 4,
        session_orders_capacity: 64,
        session_fills_capacity: 64,
        stops_capacity: 4,
        ..OmsConfig::default()
    };
    OrderManager::new(config, &registry()).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    New {
        account: u8,
        instrument: u8,
        side: u8,
        kind: u8,
        tif: u8,
        flags: u8,
        price: u8,
        stop: u8,
        qty: u8,
        client: u8,
        expire: u8,
    },
    Cancel {
        target: u8,
        by_client: bool,
        foreign: bool,
    },
    Replace {
        target: u8,
        price: u8,
        stop: u8,
        qty: u8,
        client: u8,
    },
    Status {
        target: u8,
    },
    Ack {
        target: u8,
    },
    Fill {
        target: u8,
        exec: u8,
        price: u8,
        qty: u8,
    },
    Canceled {
        target: u8,
    },
    Expired {
        target: u8,
    },
    Rejected {
        target: u8,
    },
    Replaced {
        target: u8,
    },
    CancelRejected {
        target: u8,
    },
    Price {
        instrument: u8,
        price: u8,
        source: u8,
    },
    Time {
        step: u8,
    },
    CancelAll {
        account: u8,
    },
    ResetSession,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    let t = any::<u8>();
    prop_oneof![
        6 => (any::<[u8; 11]>()).prop_map(|b| Op::New {
            account: b[0],
            instrument: b[1],
            side: b[2],
            kind: b[3],
            tif: b[4],
            flags: b[5],
            price: b[6],
            stop: b[7],
            qty: b[8],
            client: b[9],
            expire: b[10],
        }),
        2 => (t, any::<bool>(), any::<u8>()).prop_map(|(target, by_client, f)| Op::Cancel {
            target,
            by_client,
            foreign: f < 20,
        }),
        2 => (t, any::<[u8; 4]>()).prop_map(|(target, b)| Op::Replace {
            target,
            price: b[0],
            stop: b[1],
            qty: b[2],
            client: b[3],
        }),
        1 => t.prop_map(|target| Op::Status { target }),
        4 => t.prop_map(|target| Op::Ack { target }),
        6 => (t, any::<[u8; 3]>()).prop_map(|(target, b)| Op::Fill {
            target,
            exec: b[0],
            price: b[1],
            qty: b[2],
        }),
        2 => t.prop_map(|target| Op::Canceled { target }),
        1 => t.prop_map(|target| Op::Expired { target }),
        1 => t.prop_map(|target| Op::Rejected { target }),
        2 => t.prop_map(|target| Op::Replaced { target }),
        2 => t.prop_map(|target| Op::CancelRejected { target }),
        3 => any::<[u8; 3]>().prop_map(|b| Op::Price {
            instrument: b[0],
            price: b[1],
            source: b[2],
        }),
        1 => any::<u8>().prop_map(|step| Op::Time { step }),
        1 => any::<u8>().prop_map(|account| Op::CancelAll { account }),
        1 => Just(Op::ResetSession),
        1 => Just(Op::Snapshot),
    ]
}

fn pick<T: Copy>(table: &[T], i: u8) -> T {
    table[usize::from(i) % table.len()]
}

fn client(i: u8) -> ClientOrderId {
    match i % 64 {
        63 => ClientOrderId::NONE,
        n => ClientOrderId::new(format!("c{n}").as_bytes()).unwrap(),
    }
}

/// Which entry point produced an event (the model's transitions depend on it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Source {
    Command,
    Ack,
    Fill,
    Canceled,
    Expired,
    Rejected,
    Replaced,
    CancelRejected,
    Trigger,
    Time,
    CancelAll,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Base {
    Armed,
    PendingNew,
    Working,
    Done,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Req {
    None,
    Cancel,
    Replace,
}

/// The model of one order, built only from the events.
#[derive(Clone, Debug)]
struct Track {
    base: Base,
    req: Req,
    owed: bool,
    cum: i64,
}

/// Checks every event against the model; panics with the order's history on a violation.
#[derive(Default)]
struct Model {
    orders: HashMap<u64, Track>,
    history: HashMap<u64, Vec<(Source, OrderEventKind)>>,
}

impl Model {
    fn apply(&mut self, om: &OrderManager, source: Source, e: &OrderEvent) {
        e.validate().unwrap();
        let kind = OrderEventKind::try_from(e.kind).unwrap();
        let id = e.order_id.0;
        self.history.entry(id).or_default().push((source, kind));
        let history = self.history[&id].clone();
        let fail = |why: &str| -> ! { panic!("order {id}: {why}; history {history:?}") };
        use OrderEventKind as K;
        if kind == K::Rejected && id == 0 {
            return; // A rejected new order: nothing was created.
        }
        if kind == K::CancelRejected && source == Source::Command {
            return; // Answer to a bad request: no state change, any target.
        }
        if kind == K::PendingNew {
            if self.orders.contains_key(&id) || source != Source::Command {
                fail("PendingNew twice or not from a command");
            }
            let order = om.order(e.order_id).unwrap();
            let base = if order.order_type == OrderType::Stop
                || order.order_type == OrderType::StopLimit
            {
                Base::Armed
            } else {
                Base::PendingNew
            };
            self.orders.insert(
                id,
                Track {
                    base,
                    req: Req::None,
                    owed: false,
                    cum: 0,
                },
            );
            return;
        }
        let Some(t) = self.orders.get_mut(&id) else {
            fail("event for an order never created");
        };
        let at_venue = matches!(t.base, Base::PendingNew | Base::Working);
        match kind {
            K::Triggered => {
                if t.base != Base::Armed {
                    fail("Triggered when not armed");
                }
                t.base = Base::PendingNew;
            }
            K::Accepted => {
                if t.base != Base::PendingNew || source != Source::Ack {
                    fail("Accepted when not pending new");
                }
                t.base = Base::Working;
            }
            K::PartiallyFilled | K::Filled => {
                if !at_venue || source != Source::Fill {
                    fail("fill when not at the venue");
                }
                if e.last_qty.0 <= 0 || e.cum_qty.0 != t.cum + e.last_qty.0 {
                    fail("fill quantities inconsistent");
                }
                t.cum = e.cum_qty.0;
                if kind == K::Filled {
                    if e.leaves_qty.0 != 0 {
                        fail("Filled with leaves");
                    }
                    t.base = Base::Done;
                    t.owed = t.req != Req::None;
                    t.req = Req::None;
                } else {
                    if e.leaves_qty.0 <= 0 {
                        fail("PartiallyFilled without leaves");
                    }
                    t.base = Base::Working;
                }
            }
            K::PendingCancel | K::PendingReplace => {
                if !at_venue || t.req != Req::None {
                    fail("second request or not at the venue");
                }
                t.req = if kind == K::PendingCancel {
                    Req::Cancel
                } else {
                    Req::Replace
                };
            }
            K::Replaced => {
                if t.base == Base::Armed && t.req == Req::None && source == Source::Command {
                    return;
                }
                if !at_venue || t.req != Req::Replace || source != Source::Replaced {
                    fail("Replaced without a replace in flight");
                }
                t.req = Req::None;
                t.base = if e.leaves_qty.0 == 0 {
                    Base::Done
                } else {
                    Base::Working
                };
            }
            K::Canceled | K::Expired => {
                if t.base == Base::Armed {
                    if t.req != Req::None {
                        fail("armed stop with a request");
                    }
                } else if !at_venue {
                    fail("Canceled/Expired when done");
                } else {
                    let answered = source == Source::Canceled && t.req == Req::Cancel;
                    t.owed = t.req != Req::None && !answered;
                }
                t.base = Base::Done;
                t.req = Req::None;
            }
            K::Rejected => {
                if t.base != Base::PendingNew || source != Source::Rejected {
                    fail("venue Rejected when not pending new");
                }
                t.owed = t.req != Req::None;
                t.base = Base::Done;
                t.req = Req::None;
            }
            K::CancelRejected => {
                if source != Source::CancelRejected {
                    fail("CancelRejected from elsewhere");
                }
                if t.base == Base::Done {
                    if !t.owed {
                        fail("cancel reject for a done order that owed none");
                    }
                    t.owed = false;
                } else {
                    if t.req == Req::None {
                        fail("cancel reject without a request");
                    }
                    t.req = Req::None;
                }
            }
            K::PendingNew => unreachable!(),
        }
    }
}

/// Runs `ops`; returns a log of every outcome and event (to compare runs) after checking
/// the properties at every step.
fn run(ops: &[Op], snapshots: bool) -> Vec<String> {
    let mut om = manager();
    let mut model = Model::default();
    let mut done: HashMap<OrderId, Order> = HashMap::new();
    let mut now = T0;
    let mut log = Vec::new();
    for op in ops {
        let before: Vec<Order> = om.orders().cloned().collect();
        let next_before = om.next_order_id();
        let mut events = Vec::new();
        // Mostly one of the six newest orders; sometimes any id (unknown, 0, retired).
        let target = |t: u8, om: &OrderManager| {
            let last = om.next_order_id().0 - 1;
            if t >= 232 || last == 0 {
                OrderId(u64::from(t) % (last + 3))
            } else {
                OrderId(last - u64::from(t) % last.min(6))
            }
        };
        let (source, result): (Source, String) = match *op {
            Op::New {
                account,
                instrument,
                side,
                kind,
                tif,
                flags,
                price,
                stop,
                qty,
                client: c,
                expire,
            } => {
                // Mostly valid values; each field is invalid in about 1 case in 10 to 25.
                let order_type = if kind >= 250 {
                    9
                } else {
                    pick(&[1u8, 2, 2, 2, 3, 4], kind)
                };
                let time_in_force = if tif >= 250 {
                    0
                } else {
                    pick(&[1u8, 1, 1, 2, 3, 4, 5], tif)
                };
                let limit_type = order_type == 2 || order_type == 4;
                let stop_type = order_type == 3 || order_type == 4;
                let valid_prices = [
                    9_900, 9_950, 9_995, 10_000, 10_000, 10_005, 10_050, 10_100, 10_200,
                ];
                let invalid_prices = [0, -5, 10_003];
                let price = match (limit_type, price) {
                    (true, p) if p < 230 => pick(&valid_prices, p),
                    (true, p) => pick(&invalid_prices, p),
                    (false, p) if p < 240 => 0,
                    (false, p) => pick(&valid_prices, p),
                };
                let stop = match (stop_type, stop) {
                    (true, p) if p < 230 => pick(&valid_prices, p),
                    (true, p) => pick(&invalid_prices, p),
                    (false, p) if p < 240 => 0,
                    (false, p) => pick(&valid_prices, p),
                };
                let qty = if qty < 220 {
                    pick(&[300, 500, 1_000, 1_000, 1_500, 2_000, 2_001], qty)
                } else {
                    pick(&[0, -1_000, 1, 100], qty)
                };
                let expire_at = match (time_in_force, expire) {
                    (5, e) if e < 220 => now + (1 + u64::from(e % 8)) * SEC,
                    (5, _) => T0,
                    (_, e) if e < 245 => 0,
                    _ => now + SEC,
                };
                let cmd = OrderCommand {
                    action: OrderAction::New.code(),
                    side: if side < 245 { 1 + side % 2 } else { 0 },
                    order_type,
                    time_in_force,
                    flags: if flags < 200 {
                        0
                    } else {
                        pick(&[1u8, 2, 3, 0x40], flags)
                    },
                    account: AccountId(if account < 240 {
                        u32::from(account % 2)
                    } else {
                        2
                    }),
                    instrument: InstrumentId(if instrument < 240 {
                        u32::from(instrument % 2)
                    } else {
                        5
                    }),
                    price: Price(price),
                    stop_price: Price(stop),
                    qty: Qty(qty),
                    expire_at: UnixNanos(expire_at),
                    client_order_id: client(c),
                    ..OrderCommand::default()
                };
                let outcome = om.on_command(&cmd, UnixNanos(now), &mut |e| events.push(e));
                if let CommandOutcome::Rejected(_) = outcome {
                    assert_eq!(om.next_order_id(), next_before);
                }
                (Source::Command, format!("{outcome:?}"))
            }
            Op::Cancel {
                target: t,
                by_client,
                foreign,
            } => {
                let id = target(t, &om);
                let order = om.order(id).cloned();
                let mut cmd = OrderCommand {
                    action: OrderAction::Cancel.code(),
                    account: order.as_ref().map_or(AccountId(0), |o| o.account),
                    order_id: id,
                    ..OrderCommand::default()
                };
                if by_client && let Some(o) = &order {
                    cmd.order_id = OrderId(0);
                    cmd.orig_client_order_id = o.client_order_id;
                }
                if foreign {
                    cmd.account = AccountId(1 - cmd.account.0.min(1));
                }
                let outcome = om.on_command(&cmd, UnixNanos(now), &mut |e| events.push(e));
                (Source::Command, format!("{outcome:?}"))
            }
            Op::Replace {
                target: t,
                price,
                stop,
                qty,
                client: c,
            } => {
                let id = target(t, &om);
                let base = om.order(id).cloned();
                let cmd = match &base {
                    Some(o) => OrderCommand {
                        action: OrderAction::Replace.code(),
                        side: o.side.code(),
                        order_type: o.order_type.code(),
                        time_in_force: o.time_in_force.code(),
                        flags: o.flags.0,
                        account: o.account,
                        instrument: o.instrument,
                        order_id: id,
                        price: if o.order_type.has_limit_price() {
                            Price(pick(&PRICES, price))
                        } else {
                            Price(0)
                        },
                        stop_price: if stop < 160 {
                            o.stop_price
                        } else {
                            Price(pick(&PRICES, stop))
                        },
                        qty: Qty(pick(&QTYS, qty)),
                        client_order_id: if c < 128 {
                            ClientOrderId::NONE
                        } else {
                            client(c)
                        },
                        ..OrderCommand::default()
                    },
                    None => OrderCommand {
                        action: OrderAction::Replace.code(),
                        side: 1,
                        order_type: 2,
                        time_in_force: 1,
                        order_id: id,
                        price: Price(10_000),
                        qty: Qty(1_000),
                        ..OrderCommand::default()
                    },
                };
                let outcome = om.on_command(&cmd, UnixNanos(now), &mut |e| events.push(e));
                (Source::Command, format!("{outcome:?}"))
            }
            Op::Status { target: t } => {
                let id = target(t, &om);
                let cmd = OrderCommand {
                    action: OrderAction::Status.code(),
                    account: om.order(id).map_or(AccountId(0), |o| o.account),
                    order_id: id,
                    ..OrderCommand::default()
                };
                let outcome = om.on_command(&cmd, UnixNanos(now), &mut |e| events.push(e));
                (Source::Command, format!("{outcome:?}"))
            }
            Op::Ack { target: t } => {
                let r = om.on_venue_ack(target(t, &om), UnixNanos(now), &mut |e| events.push(e));
                (Source::Ack, format!("{r:?}"))
            }
            Op::Fill {
                target: t,
                exec,
                price,
                qty,
            } => {
                let id = target(t, &om);
                // Mostly at the order's limit (or a market price), sometimes anything.
                let limit = om.order(id).map_or(0, |o| o.price.0);
                let fill_price = if price < 200 && limit > 0 {
                    limit
                } else if price < 200 {
                    10_000
                } else {
                    pick(&PRICES, price)
                };
                let fill_qty = match qty % 8 {
                    6 | 7 => om.order(id).map_or(1, |o| o.leaves_qty().0),
                    _ => pick(&FILL_QTYS, qty),
                };
                let fill = Fill {
                    exec_id: u64::from(exec % 24),
                    price: Price(fill_price),
                    qty: Qty(fill_qty),
                    liquidity: if exec % 2 == 0 {
                        Liquidity::Maker
                    } else {
                        Liquidity::Taker
                    },
                    fee: i64::from(exec) - 100,
                };
                let r = om.on_venue_fill(id, &fill, UnixNanos(now), &mut |e| events.push(e));
                (Source::Fill, format!("{r:?}"))
            }
            Op::Canceled { target: t } => {
                let r =
                    om.on_venue_canceled(target(t, &om), UnixNanos(now), &mut |e| events.push(e));
                (Source::Canceled, format!("{r:?}"))
            }
            Op::Expired { target: t } => {
                let r =
                    om.on_venue_expired(target(t, &om), UnixNanos(now), &mut |e| events.push(e));
                (Source::Expired, format!("{r:?}"))
            }
            Op::Rejected { target: t } => {
                let r = om.on_venue_rejected(
                    target(t, &om),
                    RejectReason::NoLiquidity,
                    UnixNanos(now),
                    &mut |e| events.push(e),
                );
                (Source::Rejected, format!("{r:?}"))
            }
            Op::Replaced { target: t } => {
                let r =
                    om.on_venue_replaced(target(t, &om), UnixNanos(now), &mut |e| events.push(e));
                (Source::Replaced, format!("{r:?}"))
            }
            Op::CancelRejected { target: t } => {
                let r = om.on_cancel_rejected(
                    target(t, &om),
                    RejectReason::None,
                    UnixNanos(now),
                    &mut |e| events.push(e),
                );
                (Source::CancelRejected, format!("{r:?}"))
            }
            Op::Price {
                instrument,
                price,
                source,
            } => {
                let sources = [
                    TriggerSource::LastTrade,
                    TriggerSource::LastTrade,
                    TriggerSource::LastTrade,
                    TriggerSource::Mid,
                ];
                let n = om.on_trigger_price(
                    InstrumentId(u32::from(instrument % 3)),
                    pick(&sources, source),
                    Price(pick(&PRICES, price)),
                    UnixNanos(now),
                    &mut |e| events.push(e),
                );
                (Source::Trigger, format!("{n}"))
            }
            Op::Time { step } => {
                now += u64::from(step % 8) * SEC / 2;
                let n = om.on_time(UnixNanos(now), &mut |e| events.push(e));
                (Source::Time, format!("{n}"))
            }
            Op::CancelAll { account } => {
                let account = match account % 4 {
                    0 => None,
                    n => Some(AccountId(u32::from(n - 1))),
                };
                let n = om.cancel_all(account, UnixNanos(now), &mut |e| events.push(e));
                (Source::CancelAll, format!("{n}"))
            }
            Op::ResetSession => {
                om.reset_session();
                (Source::Command, String::new())
            }
            Op::Snapshot => {
                if snapshots {
                    let bytes = om.snapshot().unwrap();
                    om = OrderManager::restore(&bytes).unwrap();
                    assert_eq!(om.snapshot().unwrap(), bytes);
                }
                (Source::Command, String::new())
            }
        };

        // Internal invariants (indices, lists, stop books, quantities).
        om.check_invariants().unwrap();
        // Rejects and illegal reports change no order.
        let rejected = result.starts_with("Rejected") || result.starts_with("Err");
        if rejected {
            let after: Vec<Order> = om.orders().cloned().collect();
            assert_eq!(before, after, "{op:?} -> {result}");
            assert_eq!(om.next_order_id(), next_before);
            if result.starts_with("Err") {
                assert!(events.is_empty(), "{op:?} -> {result}: {events:?}");
            }
        }
        // Every event is a legal step of its order's path.
        for e in &events {
            model.apply(&om, source, e);
        }
        // Quantities of every order held.
        for order in om.orders() {
            assert!(
                order.cum_qty.0 >= 0 && order.cum_qty <= order.qty,
                "{order:?}"
            );
            if order.status.is_terminal() {
                assert_eq!(order.leaves_qty(), Qty(0));
            } else {
                assert_eq!(order.leaves_qty().0, order.qty.0 - order.cum_qty.0);
                assert!(order.leaves_qty().0 > 0);
            }
            if order.status == OrderStatus::Filled {
                assert_eq!(order.cum_qty, order.qty);
            }
        }
        // Done orders never change (except that an owed cancel reject is delivered).
        for order in om.orders() {
            let mut now_seen = order.clone();
            now_seen.answer_owed = false;
            match done.get(&order.id) {
                Some(first) => assert_eq!(&now_seen, first, "done order changed"),
                None if order.status.is_terminal() => {
                    assert_eq!(order.pending, Pending::None);
                    done.insert(order.id, now_seen);
                }
                None => {}
            }
        }
        log.push(format!("{op:?} -> {result} {events:?}"));
    }
    // Counters add up.
    let c = om.counters();
    assert_eq!(c.illegal, c.illegal_by_kind.iter().sum::<u64>());
    assert!(c.illegal_by_kind.len() == IllegalTransition::KINDS);
    log.push(format!("{:?}", om.orders().collect::<Vec<_>>()));
    log.push(format!("{c:?}"));
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_048, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..160)) {
        run(&ops, false);
    }

    #[test]
    fn snapshots_do_not_change_behaviour(ops in prop::collection::vec(op(), 1..120)) {
        prop_assert_eq!(run(&ops, false), run(&ops, true));
    }
}

/// Extreme values for venue reports.
const EXTREMES: [i64; 9] = [i64::MIN, -1, 0, 1, 5, 1_000, 10_000, i64::MAX - 1, i64::MAX];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_024, ..ProptestConfig::default() })]

    /// Any bit pattern as a command, any ids and extreme numbers in venue reports: no panic,
    /// invariants hold, nothing overfills.
    #[test]
    fn arbitrary_bytes_never_panic(
        steps in prop::collection::vec(
            (prop::array::uniform32(any::<u8>()), any::<[u8; 8]>(), any::<u64>(), 0u8..10),
            1..80,
        )
    ) {
        let mut om = manager();
        let mut now = T0;
        for (bytes, knobs, raw_id, what) in steps {
            let mut raw = [0u8; 136];
            for (i, chunk) in raw.chunks_mut(32).enumerate() {
                let n = chunk.len();
                chunk.copy_from_slice(&bytes[..n]);
                chunk[0] ^= i as u8;
            }
            let mut cmd: OrderCommand = bytemuck::pod_read_unaligned(&raw);
            // Steer a quarter of them towards plausible values so some pass validation.
            if knobs[0] < 64 {
                cmd.action = 1 + knobs[1] % 4;
                cmd.side = 1 + knobs[2] % 2;
                cmd.order_type = 1 + knobs[3] % 4;
                cmd.time_in_force = 1 + knobs[4] % 5;
                cmd.flags &= 3;
                cmd.account = AccountId(u32::from(knobs[5] % 3));
                cmd.instrument = InstrumentId(u32::from(knobs[6] % 3));
                cmd.order_id = OrderId(raw_id % 8);
                cmd.price = Price(pick(&EXTREMES, knobs[7]));
            }
            let id = if knobs[7] < 200 { OrderId(raw_id % 8) } else { OrderId(raw_id) };
            let number = |k: u8| pick(&EXTREMES, k);
            let fill = Fill {
                exec_id: raw_id % 5,
                price: Price(number(knobs[1])),
                qty: Qty(number(knobs[2])),
                liquidity: Liquidity::Taker,
                fee: number(knobs[3]),
            };
            let reason = RejectReason::try_from(u16::from(knobs[4] % 40)).unwrap_or(RejectReason::None);
            let mut sink = |e: OrderEvent| e.validate().unwrap();
            let t = UnixNanos(now);
            let _ = match what {
                0..=2 => {
                    om.on_command(&cmd, t, &mut sink);
                    Ok(())
                }
                3 => om.on_venue_ack(id, t, &mut sink),
                4 => om.on_venue_fill(id, &fill, t, &mut sink),
                5 => om.on_venue_canceled(id, t, &mut sink),
                6 => om.on_venue_replaced(id, t, &mut sink),
                7 => om.on_cancel_rejected(id, reason, t, &mut sink),
                8 => {
                    om.on_trigger_price(InstrumentId(u32::from(knobs[5] % 3)), TriggerSource::LastTrade, Price(number(knobs[6])), t, &mut sink);
                    Ok(())
                }
                _ => {
                    now = now.saturating_add(raw_id % (u64::MAX / 2));
                    om.on_time(UnixNanos(now), &mut sink);
                    om.on_venue_rejected(id, reason, t, &mut sink)
                }
            };
            om.check_invariants().unwrap();
        }
        let bytes = om.snapshot().unwrap();
        prop_assert_eq!(OrderManager::restore(&bytes).unwrap().snapshot().unwrap(), bytes);
    }
}

/// The generator reaches the interesting states (guards against a vacuous property).
#[test]
fn generator_covers_the_state_machine() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 150);
    let mut kinds = std::collections::HashSet::new();
    let mut errors = std::collections::HashSet::new();
    for _ in 0..200 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        for line in run(&ops, false) {
            for kind in OrderEventKind::ALL {
                if line.contains(&format!("{{ kind: {}, side", kind.code())) {
                    kinds.insert(*kind);
                }
            }
            for name in [
                "Overfill",
                "DuplicateExecId",
                "FillAfterDone",
                "InvalidState",
                "RetiredOrder",
                "NotAtVenue",
                "ReplaceBelowFilled",
                "FillOutsideLimit",
            ] {
                if line.contains(&format!("Err({name}")) {
                    errors.insert(name);
                }
            }
        }
    }
    assert_eq!(kinds.len(), OrderEventKind::ALL.len(), "{kinds:?}");
    if std::env::var_os("OMS_PROPS_STATS").is_some() {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let log = run(&ops, false);
        eprintln!("{}", log[log.len() - 1]);
        eprintln!("{errors:?}");
    }
    assert!(errors.len() >= 7, "{errors:?}");
    let _ = Side::Buy;
    let _ = TimeInForce::Gtc;
}
