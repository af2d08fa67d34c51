//! Unit tests of every transition, the awkward races and every bad-input reject.

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderAction,
    OrderCommand, OrderEvent, OrderEventKind, OrderFlags, OrderId, OrderType, Price, Qty,
    RejectReason, Side, TimeInForce, UnixNanos,
};

use super::*;

/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const BTC: InstrumentId = InstrumentId(0);
const ETH: InstrumentId = InstrumentId(1);
const A: AccountId = AccountId(0);
const B: AccountId = AccountId(1);

/// Prices at scale 2 with tick 0.05 (mantissa 5); quantities at scale 3, lot 0.001 (1);
/// minimum notional 10 (so `price × qty >= 1000 × 10^3`).
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

fn config() -> OmsConfig {
    OmsConfig {
        accounts: 2,
        max_live_orders: 64,
        done_retention: 16,
        ..OmsConfig::default()
    }
}

fn cl(text: &str) -> ClientOrderId {
    ClientOrderId::new(text.as_bytes()).unwrap()
}

fn new_cmd(
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
        account: A,
        instrument: BTC,
        price: Price(price),
        stop_price: Price(stop),
        qty: Qty(qty),
        client_order_id: if client.is_empty() {
            ClientOrderId::NONE
        } else {
            cl(client)
        },
        ..OrderCommand::default()
    }
}

fn limit(client: &str, side: Side, price: i64, qty: i64) -> OrderCommand {
    new_cmd(
        client,
        side,
        OrderType::Limit,
        TimeInForce::Gtc,
        price,
        0,
        qty,
    )
}

fn cancel(id: OrderId) -> OrderCommand {
    OrderCommand {
        action: OrderAction::Cancel.code(),
        account: A,
        order_id: id,
        ..OrderCommand::default()
    }
}

/// A replace of `original` (a New command) to `price` / `qty`.
fn replace(original: &OrderCommand, id: OrderId, price: i64, qty: i64) -> OrderCommand {
    OrderCommand {
        action: OrderAction::Replace.code(),
        order_id: id,
        price: Price(price),
        qty: Qty(qty),
        client_order_id: ClientOrderId::NONE,
        ..*original
    }
}

fn fill(exec_id: u64, price: i64, qty: i64) -> Fill {
    Fill {
        exec_id,
        price: Price(price),
        qty: Qty(qty),
        liquidity: Liquidity::Maker,
        fee: 3,
    }
}

fn kind(e: &OrderEvent) -> OrderEventKind {
    OrderEventKind::try_from(e.kind).unwrap()
}

fn reason(e: &OrderEvent) -> RejectReason {
    RejectReason::try_from(e.reject_reason).unwrap()
}

/// The manager, the events it emitted since the last `take`, and the engine time.
struct H {
    om: OrderManager,
    events: Vec<OrderEvent>,
    now: UnixNanos,
}

impl H {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: OmsConfig) -> Self {
        Self {
            om: OrderManager::new(config, &registry()).unwrap(),
            events: Vec::new(),
            now: UnixNanos(T0),
        }
    }

    fn cmd(&mut self, cmd: &OrderCommand) -> CommandOutcome {
        let events = &mut self.events;
        let outcome = self.om.on_command(cmd, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        outcome
    }

    /// Places a command that must create an order; returns its id.
    fn place(&mut self, cmd: &OrderCommand) -> OrderId {
        match self.cmd(cmd) {
            CommandOutcome::Route(id) | CommandOutcome::Held(id) => id,
            other => panic!("not created: {other:?} {:?}", self.events),
        }
    }

    /// Places and acknowledges a limit order.
    fn working(&mut self, cmd: &OrderCommand) -> OrderId {
        let id = self.place(cmd);
        self.ack(id).unwrap();
        self.take();
        id
    }

    fn ack(&mut self, id: OrderId) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self.om.on_venue_ack(id, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn fill(&mut self, id: OrderId, f: Fill) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_venue_fill(id, &f, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn canceled(&mut self, id: OrderId) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_venue_canceled(id, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn expired(&mut self, id: OrderId) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_venue_expired(id, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn replaced(&mut self, id: OrderId) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_venue_replaced(id, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn rejected(&mut self, id: OrderId, why: RejectReason) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_venue_rejected(id, why, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn cancel_rejected(&mut self, id: OrderId, why: RejectReason) -> Result<(), IllegalTransition> {
        let events = &mut self.events;
        let r = self
            .om
            .on_cancel_rejected(id, why, self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        r
    }

    fn price(&mut self, instrument: InstrumentId, price: i64) -> usize {
        let events = &mut self.events;
        let n = self.om.on_trigger_price(
            instrument,
            TriggerSource::LastTrade,
            Price(price),
            self.now,
            &mut |e| events.push(e),
        );
        self.om.check_invariants().unwrap();
        n
    }

    fn time(&mut self, now: u64) -> usize {
        self.now = UnixNanos(now);
        let events = &mut self.events;
        let n = self.om.on_time(self.now, &mut |e| events.push(e));
        self.om.check_invariants().unwrap();
        n
    }

    fn take(&mut self) -> Vec<OrderEvent> {
        std::mem::take(&mut self.events)
    }

    fn kinds(&mut self) -> Vec<OrderEventKind> {
        self.take().iter().map(kind).collect()
    }

    fn order(&self, id: OrderId) -> &Order {
        self.om.order(id).unwrap()
    }

    /// Every order held, for "nothing changed" checks.
    fn orders(&self) -> Vec<Order> {
        self.om.orders().cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

#[test]
fn limit_order_lifecycle_partial_then_full() {
    let mut h = H::new();
    let id = h.place(&limit("c1", Side::Buy, 10_000, 2_000));
    assert_eq!(id, OrderId(1));
    let events = h.take();
    assert_eq!(events.len(), 1);
    assert_eq!(kind(&events[0]), OrderEventKind::PendingNew);
    assert_eq!(events[0].order_id, id);
    assert_eq!(events[0].leaves_qty, Qty(2_000));
    assert_eq!(events[0].client_order_id, cl("c1"));
    assert_eq!(h.order(id).status, OrderStatus::PendingNew);

    h.ack(id).unwrap();
    assert_eq!(h.kinds(), [OrderEventKind::Accepted]);
    assert_eq!(h.order(id).status, OrderStatus::New);

    h.fill(id, fill(11, 10_000, 500)).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::PartiallyFilled);
    assert_eq!(
        (e[0].last_qty, e[0].cum_qty, e[0].leaves_qty),
        (Qty(500), Qty(500), Qty(1_500))
    );
    assert_eq!(
        (e[0].exec_id, e[0].last_price, e[0].fee, e[0].liquidity),
        (11, Price(10_000), 3, 1)
    );

    h.fill(id, fill(12, 9_995, 1_500)).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::Filled);
    assert_eq!((e[0].cum_qty, e[0].leaves_qty), (Qty(2_000), Qty(0)));
    // (10000×500 + 9995×1500) / 2000 = 9996.25 → 9996 (truncated).
    assert_eq!(e[0].avg_price, Price(9_996));
    let order = h.order(id);
    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!((order.fees, order.fill_count), (6, 2));
    assert_eq!(h.om.open_count(A), 0);
    assert_eq!(h.om.live_count(), 0);
    assert_eq!(h.om.counters().filled, 1);
}

#[test]
fn average_price_truncates_toward_zero() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Sell, 10_000, 3_000));
    h.fill(id, fill(1, 10_000, 1_000)).unwrap();
    h.fill(id, fill(2, 10_005, 1_000)).unwrap();
    h.fill(id, fill(3, 10_005, 1_000)).unwrap();
    // 30010000 / 3000 = 10003.33 → 10003
    assert_eq!(h.order(id).avg_price(), Price(10_003));
    assert_eq!(h.order(id).notional, 30_010_000 * 1_000 / 1_000);
}

#[test]
fn fill_while_pending_new_is_an_implicit_ack_and_a_late_ack_is_illegal() {
    let mut h = H::new();
    let id = h.place(&limit("c1", Side::Buy, 10_000, 2_000));
    h.take();
    h.fill(id, fill(1, 10_000, 1_000)).unwrap();
    assert_eq!(h.order(id).status, OrderStatus::PartiallyFilled);
    let before = h.orders();
    let err = h.ack(id).unwrap_err();
    assert!(matches!(
        err,
        IllegalTransition::InvalidState {
            event: VenueEvent::Ack,
            ..
        }
    ));
    assert_eq!(h.orders(), before);
    assert!(h.take().len() == 1, "only the fill's event");
}

#[test]
fn partial_fill_then_cancel() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 2_000));
    h.fill(id, fill(1, 10_000, 500)).unwrap();
    h.take();
    assert_eq!(h.cmd(&cancel(id)), CommandOutcome::SendCancel(id));
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::PendingCancel);
    assert_eq!(e[0].leaves_qty, Qty(1_500));
    assert_eq!(h.order(id).visible_state(), OrderEventKind::PendingCancel);
    // A fill racing the cancel still applies.
    h.fill(id, fill(2, 10_000, 500)).unwrap();
    assert_eq!(h.order(id).pending, Pending::Cancel { expiring: false });
    h.canceled(id).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[1]), OrderEventKind::Canceled);
    assert_eq!((e[1].cum_qty, e[1].leaves_qty), (Qty(1_000), Qty(0)));
    assert_eq!(h.order(id).status, OrderStatus::Canceled);
}

#[test]
fn cancel_racing_a_fill_to_completion() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    h.cmd(&cancel(id));
    h.fill(id, fill(1, 10_000, 1_000)).unwrap();
    assert_eq!(h.order(id).status, OrderStatus::Filled);
    assert!(h.order(id).answer_owed);
    h.take();
    // The venue confirms a cancel after the fill: illegal, nothing changes.
    let before = h.orders();
    assert!(matches!(
        h.canceled(id).unwrap_err(),
        IllegalTransition::InvalidState {
            status: OrderStatus::Filled,
            ..
        }
    ));
    assert_eq!(h.orders(), before);
    // The venue's cancel reject (too late) is forwarded once.
    h.cancel_rejected(id, RejectReason::None).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::CancelRejected);
    assert_eq!(reason(&e[0]), RejectReason::TooLateToCancel);
    assert_eq!(h.order(id).status, OrderStatus::Filled);
    assert!(h.cancel_rejected(id, RejectReason::None).is_err());
    // A new cancel of the filled order is rejected too late.
    assert_eq!(
        h.cmd(&cancel(id)),
        CommandOutcome::Rejected(RejectReason::TooLateToCancel)
    );
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::CancelRejected);
    assert_eq!(e[0].order_id, id);
}

#[test]
fn cancel_reject_from_the_venue_keeps_the_order_working() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    h.cmd(&cancel(id));
    h.take();
    h.cancel_rejected(id, RejectReason::None).unwrap();
    let e = h.take();
    assert_eq!(reason(&e[0]), RejectReason::VenueReject);
    assert_eq!(h.order(id).status, OrderStatus::New);
    assert!(h.order(id).pending.is_none());
    // No request in flight now: another reject is illegal.
    assert!(h.cancel_rejected(id, RejectReason::None).is_err());
}

#[test]
fn venue_reject_and_expiry() {
    let mut h = H::new();
    let id = h.place(&limit("c1", Side::Buy, 10_000, 1_000));
    h.take();
    h.rejected(id, RejectReason::PostOnlyWouldCross).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::Rejected);
    assert_eq!(reason(&e[0]), RejectReason::PostOnlyWouldCross);
    assert_eq!(h.order(id).status, OrderStatus::Rejected);

    let id = h.place(&limit("c2", Side::Buy, 10_000, 1_000));
    h.take();
    h.rejected(id, RejectReason::None).unwrap();
    assert_eq!(reason(&h.take()[0]), RejectReason::VenueReject);

    // Reject after ack is illegal.
    let id = h.working(&limit("c3", Side::Buy, 10_000, 1_000));
    assert!(h.rejected(id, RejectReason::VenueReject).is_err());

    // IOC: the venue expires the remainder.
    let ioc = new_cmd(
        "c4",
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Ioc,
        10_000,
        0,
        2_000,
    );
    let id = h.working(&ioc);
    h.fill(id, fill(1, 10_000, 500)).unwrap();
    h.expired(id).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[1]), OrderEventKind::Expired);
    assert_eq!(h.order(id).status, OrderStatus::Expired);
    assert_eq!(h.order(id).time_in_force, TimeInForce::Ioc);
    assert!(h.expired(id).is_err());
}

// ---------------------------------------------------------------------------------------
// Illegal venue transitions
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_exec_id_overfill_and_fill_after_cancel_change_nothing() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    h.fill(id, fill(7, 10_000, 400)).unwrap();
    h.take();
    let before = h.orders();

    assert_eq!(
        h.fill(id, fill(7, 10_000, 100)).unwrap_err(),
        IllegalTransition::DuplicateExecId {
            order_id: id,
            exec_id: 7
        }
    );
    assert_eq!(
        h.fill(id, fill(8, 10_000, 601)).unwrap_err(),
        IllegalTransition::Overfill {
            order_id: id,
            exec_id: 8,
            qty: Qty(1_000),
            cum_qty: Qty(400),
            fill_qty: Qty(601)
        }
    );
    assert!(matches!(
        h.fill(id, fill(0, 10_000, 1)).unwrap_err(),
        IllegalTransition::InvalidFill { .. }
    ));
    assert!(matches!(
        h.fill(id, fill(9, 10_000, 0)).unwrap_err(),
        IllegalTransition::InvalidFill { .. }
    ));
    assert!(matches!(
        h.fill(id, fill(9, -5, 1)).unwrap_err(),
        IllegalTransition::InvalidFill { .. }
    ));
    assert!(matches!(
        h.fill(id, fill(9, 10_005, 1)).unwrap_err(),
        IllegalTransition::FillOutsideLimit { .. }
    ));
    let mut huge_fee = fill(9, 10_000, 1);
    huge_fee.fee = i64::MAX;
    h.fill(id, fill(10, 10_000, 1)).unwrap();
    assert!(matches!(
        h.fill(id, huge_fee).unwrap_err(),
        IllegalTransition::InvalidFill { .. }
    ));
    h.take();
    let before_cancel = h.orders();
    assert_ne!(before, before_cancel);

    h.cmd(&cancel(id));
    h.canceled(id).unwrap();
    h.take();
    let done = h.orders();
    assert!(matches!(
        h.fill(id, fill(11, 10_000, 1)).unwrap_err(),
        IllegalTransition::FillAfterDone {
            status: OrderStatus::Canceled,
            ..
        }
    ));
    assert_eq!(h.orders(), done);
    assert!(h.take().is_empty());
    let c = h.om.counters();
    assert_eq!(c.illegal, 8);
    assert_eq!(
        c.illegal_by_kind[IllegalTransition::DuplicateExecId {
            order_id: id,
            exec_id: 0
        }
        .index()],
        1
    );
}

#[test]
fn reports_for_unknown_or_retired_orders() {
    let mut h = H::with(OmsConfig {
        done_retention: 1,
        ..config()
    });
    assert!(matches!(
        h.ack(OrderId(99)).unwrap_err(),
        IllegalTransition::UnknownOrder { .. }
    ));
    assert!(matches!(
        h.fill(OrderId(0), fill(1, 1, 1)).unwrap_err(),
        IllegalTransition::UnknownOrder { .. }
    ));
    let first = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    h.cmd(&cancel(first));
    h.fill(first, fill(1, 10_000, 1_000)).unwrap();
    let second = h.working(&limit("c2", Side::Buy, 10_000, 1_000));
    h.cmd(&cancel(second));
    h.canceled(second).unwrap();
    // `first` was retired when `second` ended (retention 1).
    assert!(h.om.is_retired(first));
    assert!(h.om.order(first).is_none());
    assert!(matches!(
        h.fill(first, fill(2, 10_000, 1)).unwrap_err(),
        IllegalTransition::RetiredOrder { .. }
    ));
    // Its owed cancel reject arrives late: ignored, counted.
    h.take();
    h.cancel_rejected(first, RejectReason::TooLateToCancel)
        .unwrap();
    assert!(h.take().is_empty());
    assert_eq!(h.om.counters().late_cancel_rejects, 1);
    // Commands for it: too late; its client id stays taken for the session.
    assert_eq!(
        h.cmd(&cancel(first)),
        CommandOutcome::Rejected(RejectReason::TooLateToCancel)
    );
    assert_eq!(
        h.cmd(&limit("c1", Side::Buy, 10_000, 1_000)),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
}

// ---------------------------------------------------------------------------------------
// Replace
// ---------------------------------------------------------------------------------------

#[test]
fn replace_priority_rules() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let id = h.working(&original);
    let created = h.order(id).priority_at;

    // Quantity down: keeps priority.
    h.now = UnixNanos(T0 + SEC);
    assert_eq!(
        h.cmd(&replace(&original, id, 10_000, 1_500)),
        CommandOutcome::SendReplace(id)
    );
    assert_eq!(h.kinds(), [OrderEventKind::PendingReplace]);
    let Pending::Replace(request) = h.order(id).pending else {
        panic!("no replace pending")
    };
    assert_eq!(request.priority, PriorityEffect::Keeps);
    // The order keeps its values until the venue confirms.
    assert_eq!(h.order(id).qty, Qty(2_000));
    h.replaced(id).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::Replaced);
    assert_eq!(e[0].leaves_qty, Qty(1_500));
    assert_eq!(h.order(id).priority_at, created);

    // Quantity up: loses.
    h.now = UnixNanos(T0 + 2 * SEC);
    h.cmd(&replace(&original, id, 10_000, 1_800));
    h.replaced(id).unwrap();
    assert_eq!(h.order(id).priority_at, UnixNanos(T0 + 2 * SEC));
    // Price change with a smaller quantity: loses.
    h.now = UnixNanos(T0 + 3 * SEC);
    h.cmd(&replace(&original, id, 9_995, 1_000));
    let Pending::Replace(request) = h.order(id).pending else {
        panic!("no replace pending")
    };
    assert_eq!(request.priority, PriorityEffect::Loses);
    h.replaced(id).unwrap();
    let order = h.order(id);
    assert_eq!(
        (order.price, order.qty, order.priority_at),
        (Price(9_995), Qty(1_000), UnixNanos(T0 + 3 * SEC))
    );
    assert_eq!(h.om.counters().replaced, 3);
}

#[test]
fn replace_racing_a_fill() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let id = h.working(&original);
    h.fill(id, fill(1, 10_000, 1_000)).unwrap();
    h.take();
    // Below or at the filled quantity: rejected at request time.
    for qty in [800, 1_000] {
        assert_eq!(
            h.cmd(&replace(&original, id, 10_000, qty)),
            CommandOutcome::Rejected(RejectReason::InvalidQuantity)
        );
        let e = h.take();
        assert_eq!(kind(&e[0]), OrderEventKind::CancelRejected);
        assert_eq!(reason(&e[0]), RejectReason::InvalidQuantity);
    }
    // Replace to 1 200, then a fill of 500 arrives first (within the old 2 000).
    h.cmd(&replace(&original, id, 10_000, 1_200));
    h.fill(id, fill(2, 10_000, 500)).unwrap();
    assert_eq!(h.order(id).cum_qty, Qty(1_500));
    // The venue (wrongly) confirms a quantity below the filled one: illegal, kept pending.
    let before = h.orders();
    assert_eq!(
        h.replaced(id).unwrap_err(),
        IllegalTransition::ReplaceBelowFilled {
            order_id: id,
            qty: Qty(1_200),
            cum_qty: Qty(1_500)
        }
    );
    assert_eq!(h.orders(), before);
    // It rejects the replace instead: the order works on with its old quantity.
    h.take();
    h.cancel_rejected(id, RejectReason::TooLateToCancel)
        .unwrap();
    assert_eq!(reason(&h.take()[0]), RejectReason::TooLateToCancel);
    assert_eq!(
        (h.order(id).qty, h.order(id).leaves_qty()),
        (Qty(2_000), Qty(500))
    );
}

#[test]
fn replace_confirmed_at_exactly_the_filled_quantity_ends_the_order() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let id = h.working(&original);
    h.cmd(&replace(&original, id, 10_000, 1_500));
    h.fill(id, fill(1, 10_000, 1_500)).unwrap();
    h.take();
    h.replaced(id).unwrap();
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::Replaced);
    assert_eq!(e[0].leaves_qty, Qty(0));
    assert_eq!(h.order(id).status, OrderStatus::Filled);
    assert_eq!(h.om.open_count(A), 0);
}

#[test]
fn replace_checks() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let id = h.working(&original);
    let mut r = replace(&original, id, 10_000, 1_000);
    r.side = Side::Sell.code();
    assert_eq!(
        h.cmd(&r),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    let mut r = replace(&original, id, 10_000, 1_000);
    r.order_type = OrderType::Market.code();
    assert_eq!(
        h.cmd(&r),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    let mut r = replace(&original, id, 10_000, 1_000);
    r.instrument = ETH;
    assert_eq!(
        h.cmd(&r),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    // Nothing changes.
    assert_eq!(
        h.cmd(&replace(&original, id, 10_000, 2_000)),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    assert_eq!(
        h.cmd(&replace(&original, id, 10_001, 2_000)),
        CommandOutcome::Rejected(RejectReason::InvalidPrice)
    );
    assert_eq!(
        h.cmd(&replace(&original, id, 100, 1_000)),
        CommandOutcome::Rejected(RejectReason::BelowMinNotional)
    );
    // A new client id that is taken.
    h.working(&limit("c2", Side::Buy, 10_000, 1_000));
    let mut r = replace(&original, id, 10_000, 1_000);
    r.client_order_id = cl("c2");
    assert_eq!(
        h.cmd(&r),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
    // One request at a time.
    assert_eq!(h.cmd(&cancel(id)), CommandOutcome::SendCancel(id));
    assert_eq!(
        h.cmd(&replace(&original, id, 10_000, 1_000)),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    assert_eq!(
        h.cmd(&cancel(id)),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );
    assert_eq!(h.order(id).pending, Pending::Cancel { expiring: false });
    h.take();
}

#[test]
fn replace_with_a_new_client_id() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let id = h.working(&original);
    let mut r = replace(&original, id, 10_000, 1_000);
    r.client_order_id = cl("c1-r");
    assert_eq!(h.cmd(&r), CommandOutcome::SendReplace(id));
    // Reserved at once.
    assert_eq!(
        h.cmd(&limit("c1-r", Side::Buy, 10_000, 1_000)),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
    assert_eq!(h.order(id).client_order_id, cl("c1"));
    h.replaced(id).unwrap();
    assert_eq!(h.order(id).client_order_id, cl("c1-r"));
    assert_eq!(h.om.find_by_client_id(A, &cl("c1")).map(|o| o.id), Some(id));
    assert_eq!(
        h.om.find_by_client_id(A, &cl("c1-r")).map(|o| o.id),
        Some(id)
    );
    // Cancel by the new client id.
    let by_client = OrderCommand {
        action: OrderAction::Cancel.code(),
        account: A,
        orig_client_order_id: cl("c1-r"),
        ..OrderCommand::default()
    };
    assert_eq!(h.cmd(&by_client), CommandOutcome::SendCancel(id));
}

// ---------------------------------------------------------------------------------------
// Stops
// ---------------------------------------------------------------------------------------

fn stop(client: &str, side: Side, stop: i64, qty: i64) -> OrderCommand {
    new_cmd(
        client,
        side,
        OrderType::Stop,
        TimeInForce::Gtc,
        0,
        stop,
        qty,
    )
}

#[test]
fn stop_triggers_on_last_trade_and_becomes_market() {
    let mut h = H::new();
    let id = h.place(&stop("s1", Side::Buy, 10_100, 1_000));
    assert_eq!(h.order(id).status, OrderStatus::Armed);
    assert_eq!(h.kinds(), [OrderEventKind::PendingNew]);
    assert_eq!(h.om.armed_stops(BTC), 1);
    // Other instrument, below the stop, other sources, bad prices: nothing.
    assert_eq!(h.price(ETH, 20_000), 0);
    assert_eq!(h.price(BTC, 10_095), 0);
    let events = &mut h.events;
    assert_eq!(
        h.om.on_trigger_price(BTC, TriggerSource::Mid, Price(20_000), h.now, &mut |e| {
            events.push(e)
        }),
        0
    );
    assert_eq!(h.price(BTC, 0), 0);
    assert_eq!(h.price(BTC, -20_000), 0);
    assert_eq!(h.price(InstrumentId(9), 20_000), 0);
    assert!(h.take().is_empty());
    // A report for the armed stop: not at the venue.
    assert!(matches!(
        h.fill(id, fill(1, 10_100, 1)).unwrap_err(),
        IllegalTransition::NotAtVenue { .. }
    ));
    assert_eq!(h.price(BTC, 10_100), 1);
    let e = h.take();
    assert_eq!(kind(&e[0]), OrderEventKind::Triggered);
    assert_eq!(e[0].last_price, Price(10_100));
    let order = h.order(id);
    assert!(order.triggered);
    assert_eq!(order.status, OrderStatus::PendingNew);
    assert_eq!(order.venue_type(), OrderType::Market);
    assert_eq!(h.om.armed_stops(BTC), 0);
    h.ack(id).unwrap();
    h.fill(id, fill(1, 10_150, 1_000)).unwrap();
    assert_eq!(h.order(id).status, OrderStatus::Filled);
}

#[test]
fn stops_trigger_on_a_gap_in_order() {
    let mut h = H::new();
    let b3 = h.place(&stop("b3", Side::Buy, 10_300, 1_000));
    let b1 = h.place(&stop("b1", Side::Buy, 10_100, 1_000));
    let b2 = h.place(&stop("b2", Side::Buy, 10_200, 1_000));
    let b1_twin = h.place(&stop("b1t", Side::Buy, 10_100, 1_000));
    let far = h.place(&stop("b9", Side::Buy, 11_000, 1_000));
    let s1 = h.place(&new_cmd(
        "s1",
        Side::Sell,
        OrderType::StopLimit,
        TimeInForce::Gtc,
        9_800,
        9_900,
        1_000,
    ));
    let s2 = h.place(&stop("s2", Side::Sell, 9_950, 1_000));
    h.take();
    assert_eq!(h.price(BTC, 10_000), 0);
    // Jump over three stop prices at once.
    assert_eq!(h.price(BTC, 10_500), 4);
    let fired: Vec<OrderId> = h.take().iter().map(|e| e.order_id).collect();
    assert_eq!(fired, [b1, b1_twin, b2, b3]);
    assert_eq!(h.order(far).status, OrderStatus::Armed);
    // Gap down through both sell stops: the nearest (highest) first.
    assert_eq!(h.price(BTC, 9_000), 2);
    let e = h.take();
    assert_eq!(e.iter().map(|e| e.order_id).collect::<Vec<_>>(), [s2, s1]);
    assert_eq!(h.order(s1).venue_type(), OrderType::Limit);
    assert_eq!(e[1].price, Price(9_800));
    assert_eq!(h.om.counters().triggered, 6);
}

#[test]
fn stop_placed_through_the_last_price_triggers_at_once() {
    let mut h = H::new();
    h.price(BTC, 10_000);
    let outcome = h.cmd(&stop("s1", Side::Sell, 10_050, 1_000));
    let CommandOutcome::Route(id) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        h.kinds(),
        [OrderEventKind::PendingNew, OrderEventKind::Triggered]
    );
    assert_eq!(h.order(id).status, OrderStatus::PendingNew);
    assert_eq!(h.om.armed_stops(BTC), 0);
}

#[test]
fn armed_stop_cancel_and_replace_are_local() {
    let mut h = H::new();
    let original = stop("s1", Side::Buy, 10_100, 1_000);
    let id = h.place(&original);
    h.take();
    // Replace the stop price: applied at once, re-sorted.
    let mut r = replace(&original, id, 0, 1_000);
    r.stop_price = Price(10_300);
    assert_eq!(h.cmd(&r), CommandOutcome::Done(id));
    assert_eq!(h.kinds(), [OrderEventKind::Replaced]);
    assert_eq!(h.order(id).stop_price, Price(10_300));
    assert_eq!(h.price(BTC, 10_200), 0);
    // Replace the stop through the last price: triggers.
    r.stop_price = Price(10_150);
    assert_eq!(h.cmd(&r), CommandOutcome::Route(id));
    assert_eq!(
        h.kinds(),
        [OrderEventKind::Replaced, OrderEventKind::Triggered]
    );
    // A triggered stop keeps its stop price.
    r.stop_price = Price(10_500);
    assert_eq!(
        h.cmd(&r),
        CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
    );

    let id = h.place(&stop("s2", Side::Buy, 10_500, 1_000));
    h.take();
    assert_eq!(h.cmd(&cancel(id)), CommandOutcome::Done(id));
    assert_eq!(h.kinds(), [OrderEventKind::Canceled]);
    assert_eq!(h.order(id).status, OrderStatus::Canceled);
    assert_eq!(h.om.armed_stops(BTC), 0);
    assert!(h.canceled(id).is_err());
}

// ---------------------------------------------------------------------------------------
// Time in force
// ---------------------------------------------------------------------------------------

fn gtd(client: &str, expire_at: u64) -> OrderCommand {
    OrderCommand {
        expire_at: UnixNanos(expire_at),
        ..new_cmd(
            client,
            Side::Buy,
            OrderType::Limit,
            TimeInForce::Gtd,
            10_000,
            0,
            1_000,
        )
    }
}

#[test]
fn gtd_expiry_at_the_venue_and_for_armed_stops() {
    let mut h = H::new();
    let id = h.working(&gtd("g1", T0 + 10 * SEC));
    let mut armed = new_cmd(
        "g2",
        Side::Buy,
        OrderType::Stop,
        TimeInForce::Gtd,
        0,
        20_000,
        1_000,
    );
    armed.expire_at = UnixNanos(T0 + 5 * SEC);
    let stop_id = h.place(&armed);
    h.take();
    assert_eq!(h.time(T0 + 4 * SEC), 0);
    // The armed stop expires here, at once.
    assert_eq!(h.time(T0 + 5 * SEC), 1);
    assert_eq!(h.kinds(), [OrderEventKind::Expired]);
    assert_eq!(h.order(stop_id).status, OrderStatus::Expired);
    assert_eq!(h.om.armed_stops(BTC), 0);
    // The working order: a cancel request, then Expired when the venue confirms.
    assert_eq!(h.time(T0 + 11 * SEC), 1);
    assert_eq!(h.kinds(), [OrderEventKind::PendingCancel]);
    assert_eq!(h.order(id).pending, Pending::Cancel { expiring: true });
    assert_eq!(h.time(T0 + 12 * SEC), 0, "not requested twice");
    h.canceled(id).unwrap();
    assert_eq!(h.kinds(), [OrderEventKind::Expired]);
    assert_eq!(h.order(id).status, OrderStatus::Expired);
    assert_eq!(h.om.counters().expiry_cancels, 1);
}

#[test]
fn day_orders_expire_at_the_session_end() {
    // Session ends 21:00 UTC. T0 is 22:13:20 UTC, so the next end is tomorrow 21:00.
    let end = 21 * 3_600 * SEC;
    let mut h = H::with(OmsConfig {
        day_session_end_utc_ns: end,
        ..config()
    });
    let day = new_cmd(
        "d1",
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Day,
        10_000,
        0,
        1_000,
    );
    let id = h.working(&day);
    let midnight = T0 - T0 % DAY_NS;
    let expected = midnight + DAY_NS + end;
    assert_eq!(h.order(id).expire_at, UnixNanos(expected));
    assert_eq!(h.time(expected - 1), 0);
    assert_eq!(h.time(expected), 1);
    assert_eq!(h.kinds(), [OrderEventKind::PendingCancel]);
    // Exactly at a session end, a Day order belongs to the next session.
    let cfg = OmsConfig {
        day_session_end_utc_ns: end,
        ..config()
    };
    assert_eq!(cfg.day_expiry(midnight + end), midnight + end + DAY_NS);
    assert_eq!(cfg.day_expiry(midnight + end - 1), midnight + end);
    assert_eq!(OmsConfig::default().day_expiry(midnight), midnight + DAY_NS);
}

#[test]
fn expiry_left_to_the_venue_in_venue_mode() {
    let mut h = H::with(OmsConfig {
        expiry: ExpiryMode::Venue,
        ..config()
    });
    let id = h.working(&gtd("g1", T0 + SEC));
    assert_eq!(h.time(T0 + 2 * SEC), 0);
    assert!(h.take().is_empty());
    h.expired(id).unwrap();
    assert_eq!(h.order(id).status, OrderStatus::Expired);
}

#[test]
fn expiry_during_a_replace_is_deferred_until_it_is_answered() {
    let mut h = H::new();
    let original = gtd("g1", T0 + SEC);
    let id = h.working(&original);
    h.cmd(&replace(&original, id, 10_000, 500));
    h.take();
    assert_eq!(h.time(T0 + 2 * SEC), 1);
    assert!(h.take().is_empty());
    assert_eq!(h.order(id).deferred, Deferred::Expire);
    h.replaced(id).unwrap();
    assert_eq!(
        h.kinds(),
        [OrderEventKind::Replaced, OrderEventKind::PendingCancel]
    );
    h.canceled(id).unwrap();
    assert_eq!(h.kinds(), [OrderEventKind::Expired]);
}

#[test]
fn expiry_queue_drops_dead_entries() {
    let mut h = H::with(OmsConfig {
        max_live_orders: 512,
        ..config()
    });
    for i in 0..300 {
        let id = h.place(&gtd(&format!("g{i}"), T0 + 1_000 * SEC));
        h.cmd(&cancel(id));
        h.canceled(id).unwrap();
    }
    h.take();
    // Compaction happens on the next time step.
    h.time(T0 + SEC);
    assert!(h.om.expiry.len() < 64, "{}", h.om.expiry.len());
    assert_eq!(h.time(T0 + 2_000 * SEC), 0);
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

#[test]
fn every_bad_new_order_is_rejected_precisely_without_a_state_change() {
    use RejectReason as R;
    let mut h = H::with(OmsConfig {
        max_order_lots: 1_000_000,
        max_price_ticks: 1_000_000,
        ..config()
    });
    h.working(&limit("taken", Side::Buy, 10_000, 1_000));
    let base = limit("c1", Side::Buy, 10_000, 1_000);
    let with = |f: &dyn Fn(&mut OrderCommand)| {
        let mut cmd = base;
        f(&mut cmd);
        cmd
    };
    let cases: Vec<(&str, OrderCommand, RejectReason)> = vec![
        (
            "unknown instrument",
            with(&|c| c.instrument = InstrumentId(7)),
            R::UnknownInstrument,
        ),
        (
            "unknown account",
            with(&|c| c.account = AccountId(2)),
            R::UnknownAccount,
        ),
        ("zero qty", with(&|c| c.qty = Qty(0)), R::InvalidQuantity),
        (
            "negative qty",
            with(&|c| c.qty = Qty(-1_000)),
            R::InvalidQuantity,
        ),
        (
            "min qty",
            with(&|c| c.qty = Qty(i64::MIN)),
            R::InvalidQuantity,
        ),
        (
            "absurd qty",
            with(&|c| c.qty = Qty(1_000_001)),
            R::MaxOrderQty,
        ),
        ("max qty", with(&|c| c.qty = Qty(i64::MAX)), R::MaxOrderQty),
        (
            "off tick",
            with(&|c| c.price = Price(10_001)),
            R::InvalidPrice,
        ),
        ("zero price", with(&|c| c.price = Price(0)), R::InvalidPrice),
        (
            "negative price",
            with(&|c| c.price = Price(-10_000)),
            R::InvalidPrice,
        ),
        (
            "absurd price",
            with(&|c| c.price = Price(5_000_005)),
            R::InvalidPrice,
        ),
        (
            "max price",
            with(&|c| c.price = Price(i64::MAX)),
            R::InvalidPrice,
        ),
        (
            "stop on a limit",
            with(&|c| c.stop_price = Price(10_000)),
            R::InvalidPrice,
        ),
        (
            "price on a market",
            with(&|c| c.order_type = OrderType::Market.code()),
            R::InvalidPrice,
        ),
        (
            "stop missing",
            with(&|c| c.order_type = OrderType::StopLimit.code()),
            R::InvalidPrice,
        ),
        (
            "stop off tick",
            with(&|c| {
                c.order_type = OrderType::StopLimit.code();
                c.stop_price = Price(10_002);
            }),
            R::InvalidPrice,
        ),
        (
            "below min notional",
            with(&|c| c.qty = Qty(99)),
            R::BelowMinNotional,
        ),
        (
            "stop below min notional",
            with(&|c| {
                c.order_type = OrderType::Stop.code();
                c.price = Price(0);
                c.stop_price = Price(5);
            }),
            R::BelowMinNotional,
        ),
        (
            "duplicate client id",
            with(&|c| c.client_order_id = cl("taken")),
            R::DuplicateClientOrderId,
        ),
        (
            "post-only market",
            with(&|c| {
                c.order_type = OrderType::Market.code();
                c.price = Price(0);
                c.flags = OrderFlags::POST_ONLY.0;
            }),
            R::UnsupportedOrder,
        ),
        (
            "post-only IOC",
            with(&|c| {
                c.time_in_force = TimeInForce::Ioc.code();
                c.flags = OrderFlags::POST_ONLY.0;
            }),
            R::UnsupportedOrder,
        ),
        (
            "FOK stop",
            with(&|c| {
                c.order_type = OrderType::StopLimit.code();
                c.stop_price = Price(10_100);
                c.time_in_force = TimeInForce::Fok.code();
            }),
            R::UnsupportedOrder,
        ),
        (
            "GTD without expiry",
            with(&|c| c.time_in_force = TimeInForce::Gtd.code()),
            R::UnsupportedOrder,
        ),
        (
            "GTD in the past",
            with(&|c| {
                c.time_in_force = TimeInForce::Gtd.code();
                c.expire_at = UnixNanos(T0);
            }),
            R::UnsupportedOrder,
        ),
        (
            "expiry on GTC",
            with(&|c| c.expire_at = UnixNanos(T0 + SEC)),
            R::UnsupportedOrder,
        ),
        ("bad side", with(&|c| c.side = 0), R::UnsupportedOrder),
        (
            "bad type",
            with(&|c| c.order_type = 77),
            R::UnsupportedOrder,
        ),
        (
            "bad tif",
            with(&|c| c.time_in_force = 0),
            R::UnsupportedOrder,
        ),
        (
            "unknown flags",
            with(&|c| c.flags = 0x80),
            R::UnsupportedOrder,
        ),
        (
            "unknown action",
            with(&|c| c.action = 0),
            R::UnsupportedOrder,
        ),
    ];
    let before = h.orders();
    let next = h.om.next_order_id();
    h.take();
    for (name, cmd, expected) in cases {
        assert_eq!(h.cmd(&cmd), CommandOutcome::Rejected(expected), "{name}");
        let events = h.take();
        assert_eq!(events.len(), 1, "{name}");
        assert_eq!(kind(&events[0]), OrderEventKind::Rejected, "{name}");
        assert_eq!(reason(&events[0]), expected, "{name}");
        assert_eq!(events[0].order_id, OrderId(0), "{name}");
        aaiti_model::Record::validate(&events[0]).unwrap();
        assert_eq!(h.orders(), before, "{name}");
        assert_eq!(h.om.next_order_id(), next, "{name}");
    }
    assert_eq!(h.om.counters().new_rejected, 30);
    assert_eq!(h.om.counters().rejects(R::InvalidPrice), 9);
    // The legal variants of some of the above pass.
    let ok = [
        with(&|c| c.flags = OrderFlags::POST_ONLY.with(OrderFlags::REDUCE_ONLY).0),
        with(&|c| {
            c.order_type = OrderType::Market.code();
            c.price = Price(0);
            c.time_in_force = TimeInForce::Fok.code();
        }),
        with(&|c| {
            c.time_in_force = TimeInForce::Gtd.code();
            c.expire_at = UnixNanos(T0 + 1);
        }),
        with(&|c| c.client_order_id = ClientOrderId::NONE),
        with(&|c| c.client_order_id = ClientOrderId::NONE),
    ];
    for (i, mut cmd) in ok.into_iter().enumerate() {
        if !cmd.client_order_id.is_none() {
            cmd.client_order_id = cl(&format!("ok{i}"));
        }
        assert!(
            matches!(h.cmd(&cmd), CommandOutcome::Route(_)),
            "{i}: {:?}",
            h.take()
        );
    }
}

#[test]
fn max_open_orders() {
    let mut h = H::with(OmsConfig {
        max_live_orders: 2,
        done_retention: 0,
        ..config()
    });
    let a = h.place(&limit("a", Side::Buy, 10_000, 1_000));
    h.place(&limit("b", Side::Buy, 10_000, 1_000));
    assert_eq!(
        h.cmd(&limit("c", Side::Buy, 10_000, 1_000)),
        CommandOutcome::Rejected(RejectReason::MaxOpenOrders)
    );
    h.rejected(a, RejectReason::None).unwrap();
    // done_retention 0: retired at once, slot reused.
    assert!(h.om.is_retired(a));
    h.place(&limit("c", Side::Buy, 10_000, 1_000));
    assert_eq!(h.om.slots.len(), 2);
}

#[test]
fn cancel_and_status_targets() {
    use RejectReason as R;
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    let unknown = cancel(OrderId(42));
    assert_eq!(h.cmd(&unknown), CommandOutcome::Rejected(R::UnknownOrder));
    let e = h.take();
    assert_eq!(
        (kind(&e[0]), reason(&e[0]), e[0].order_id),
        (OrderEventKind::CancelRejected, R::UnknownOrder, OrderId(42))
    );
    assert_eq!(
        h.cmd(&cancel(OrderId(0))),
        CommandOutcome::Rejected(R::UnknownOrder)
    );
    // Another account's order is not found.
    let mut other = cancel(id);
    other.account = B;
    assert_eq!(h.cmd(&other), CommandOutcome::Rejected(R::UnknownOrder));
    other.account = AccountId(5);
    assert_eq!(h.cmd(&other), CommandOutcome::Rejected(R::UnknownAccount));
    // Id and client id disagree.
    let mut both = cancel(OrderId(42));
    both.orig_client_order_id = cl("c1");
    assert_eq!(h.cmd(&both), CommandOutcome::Rejected(R::UnknownOrder));
    both.orig_client_order_id = cl("nope");
    both.order_id = id;
    assert_eq!(h.cmd(&both), CommandOutcome::Rejected(R::UnknownOrder));
    let status = OrderCommand {
        action: OrderAction::Status.code(),
        account: A,
        orig_client_order_id: cl("c1"),
        ..OrderCommand::default()
    };
    h.take();
    assert_eq!(h.cmd(&status), CommandOutcome::Status(id, OrderStatus::New));
    assert!(h.take().is_empty());
    assert_eq!(
        h.cmd(&OrderCommand {
            order_id: OrderId(42),
            ..status
        }),
        CommandOutcome::Rejected(R::UnknownOrder)
    );
    both.orig_client_order_id = cl("c1");
    assert_eq!(h.cmd(&both), CommandOutcome::SendCancel(id));
    assert!(h.om.counters().requests_rejected >= 6);
}

#[test]
fn client_ids_are_unique_per_account_for_the_session() {
    let mut h = H::new();
    let id = h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    // Same id in another account is fine.
    let mut other = limit("c1", Side::Buy, 10_000, 1_000);
    other.account = B;
    h.place(&other);
    h.fill(id, fill(1, 10_000, 1_000)).unwrap();
    // Done, still taken.
    assert_eq!(
        h.cmd(&limit("c1", Side::Buy, 10_000, 1_000)),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
    // A new session frees the ids of done orders only, and forgets their exec ids.
    h.om.reset_session();
    assert_eq!(
        h.cmd(&other),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
    let again = h.place(&limit("c1", Side::Buy, 10_000, 1_000));
    assert_ne!(again, id);
    assert_eq!(
        h.om.find_by_client_id(A, &cl("c1")).map(|o| o.id),
        Some(again)
    );
    assert_eq!(h.om.exec_ids.len(), 0);
}

// ---------------------------------------------------------------------------------------
// Queries, cancel-all, snapshots, config
// ---------------------------------------------------------------------------------------

#[test]
fn open_orders_per_account_in_creation_order_and_cancel_all() {
    let mut h = H::new();
    let a1 = h.working(&limit("a1", Side::Buy, 10_000, 1_000));
    let mut b = limit("b1", Side::Sell, 10_000, 1_000);
    b.account = B;
    let b1 = h.working(&b);
    let a2 = h.place(&stop("a2", Side::Buy, 10_500, 1_000));
    let original = limit("a3", Side::Buy, 10_000, 2_000);
    let a3 = h.working(&original);
    let a4 = h.working(&limit("a4", Side::Buy, 10_000, 1_000));
    h.cmd(&cancel(a4));
    h.canceled(a4).unwrap();
    let open: Vec<OrderId> = h.om.open_orders(A).map(|o| o.id).collect();
    assert_eq!(open, [a1, a2, a3]);
    assert_eq!(h.om.open_orders(B).map(|o| o.id).collect::<Vec<_>>(), [b1]);
    assert_eq!(h.om.open_orders(AccountId(9)).count(), 0);

    h.cmd(&replace(&original, a3, 10_000, 1_000));
    h.take();
    assert_eq!(h.om.cancel_all(Some(A), h.now, &mut |_| {}), 3);
    h.om.check_invariants().unwrap();
    assert_eq!(h.order(a1).pending, Pending::Cancel { expiring: false });
    assert_eq!(h.order(a2).status, OrderStatus::Canceled);
    assert_eq!(h.order(a3).deferred, Deferred::Cancel);
    assert_eq!(h.order(b1).pending, Pending::None);
    // The replace is rejected: the deferred cancel goes out.
    h.cancel_rejected(a3, RejectReason::None).unwrap();
    assert_eq!(
        h.kinds(),
        [
            OrderEventKind::CancelRejected,
            OrderEventKind::PendingCancel
        ]
    );
    assert_eq!(h.om.cancel_all(None, h.now, &mut |_| {}), 1);
}

#[test]
fn snapshot_round_trip_preserves_behaviour() {
    let mut h = H::new();
    let original = limit("c1", Side::Buy, 10_000, 2_000);
    let a = h.working(&original);
    h.fill(a, fill(1, 10_000, 500)).unwrap();
    h.cmd(&replace(&original, a, 9_995, 1_500));
    h.place(&stop("s1", Side::Sell, 9_000, 1_000));
    h.place(&gtd("g1", T0 + 5 * SEC));
    let done = h.working(&limit("c2", Side::Buy, 10_000, 1_000));
    h.fill(done, fill(2, 10_000, 1_000)).unwrap();
    h.price(BTC, 9_500);
    h.take();

    let bytes = h.om.snapshot().unwrap();
    let restored = OrderManager::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot().unwrap(), bytes, "canonical bytes");
    let mut twin = H {
        om: restored,
        events: Vec::new(),
        now: h.now,
    };
    // The same inputs to both give the same outputs.
    let script = |h: &mut H| -> Vec<String> {
        let mut log = Vec::new();
        log.push(format!("{:?}", h.fill(a, fill(1, 10_000, 1))));
        log.push(format!("{:?}", h.replaced(a)));
        log.push(format!("{:?}", h.price(BTC, 8_900)));
        log.push(format!("{:?}", h.time(T0 + 6 * SEC)));
        log.push(format!(
            "{:?}",
            h.cmd(&limit("c2", Side::Buy, 10_000, 1_000))
        ));
        log.push(format!(
            "{:?}",
            h.cmd(&limit("c3", Side::Buy, 10_000, 1_000))
        ));
        log.push(format!("{:?}", h.fill(a, fill(3, 9_995, 1_000))));
        log.push(format!("{:?}", h.take()));
        log.push(format!("{:?}", h.orders()));
        log.push(format!("{:?}", h.om.counters()));
        log
    };
    assert_eq!(script(&mut h), script(&mut twin));
    assert_eq!(h.om.snapshot().unwrap(), twin.om.snapshot().unwrap());

    // Damaged bytes are an error, never a panic.
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(OrderManager::restore(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    for i in (0..flipped.len()).step_by(7) {
        flipped[i] ^= 0x5a;
        let _ = OrderManager::restore(&flipped);
        flipped[i] ^= 0x5a;
    }
}

#[test]
fn restore_rejects_an_inconsistent_state() {
    let mut h = H::new();
    h.working(&limit("c1", Side::Buy, 10_000, 1_000));
    let mut broken = OrderManager::restore(&h.om.snapshot().unwrap()).unwrap();
    broken.live = 5;
    let bytes = broken.snapshot().unwrap();
    assert!(matches!(
        OrderManager::restore(&bytes),
        Err(SnapshotError::Inconsistent(_))
    ));
}

#[test]
fn config_is_validated_with_the_key() {
    let bad = OmsConfig {
        day_session_end_utc_ns: DAY_NS,
        ..OmsConfig::default()
    };
    let error = OrderManager::new(bad, &registry()).unwrap_err();
    assert_eq!(error.key, "day_session_end_utc_ns");
    assert!(
        error
            .to_string()
            .starts_with("oms.day_session_end_utc_ns = ")
    );
    for bad in [
        OmsConfig {
            max_live_orders: 0,
            ..OmsConfig::default()
        },
        OmsConfig {
            max_order_lots: 0,
            ..OmsConfig::default()
        },
        OmsConfig {
            max_price_ticks: -1,
            ..OmsConfig::default()
        },
        OmsConfig {
            max_live_orders: u32::MAX,
            ..OmsConfig::default()
        },
    ] {
        assert!(bad.validate().is_err());
    }
    let parsed: OmsConfig =
        toml::from_str("trigger_source = \"mark\"\nexpiry = \"venue\"").unwrap();
    assert_eq!(parsed.trigger_source, TriggerSource::Mark);
    assert_eq!(parsed.expiry, ExpiryMode::Venue);
    assert!(toml::from_str::<OmsConfig>("nope = 1").is_err());
}

#[test]
fn accounts_can_be_added() {
    let mut h = H::new();
    let mut cmd = limit("c1", Side::Buy, 10_000, 1_000);
    cmd.account = AccountId(3);
    assert_eq!(
        h.cmd(&cmd),
        CommandOutcome::Rejected(RejectReason::UnknownAccount)
    );
    h.om.set_accounts(4);
    h.om.set_accounts(1);
    assert!(matches!(h.cmd(&cmd), CommandOutcome::Route(_)));
    assert_eq!(h.om.config().accounts, 4);
}

#[test]
fn risk_hook_between_validation_and_creation() {
    let mut h = H::new();
    let cmd = limit("c1", Side::Buy, 10_000, 1_000);
    let view = h.om.validate_new(&cmd, h.now).unwrap();
    assert_eq!(
        (view.qty, view.price, view.side),
        (Qty(1_000), Price(10_000), Side::Buy)
    );
    // Risk says no.
    let events = &mut h.events;
    h.om.reject_new(&cmd, RejectReason::MaxPosition, &mut |e| events.push(e));
    let e = h.take();
    assert_eq!(reason(&e[0]), RejectReason::MaxPosition);
    assert_eq!(h.om.live_count(), 0);
    // Risk says yes; accepting the same view twice is a duplicate.
    let events = &mut h.events;
    let outcome = h.om.accept_new(&view, h.now, &mut |e| events.push(e));
    assert!(matches!(outcome, CommandOutcome::Route(_)));
    let events = &mut h.events;
    assert_eq!(
        h.om.accept_new(&view, h.now, &mut |e| events.push(e)),
        CommandOutcome::Rejected(RejectReason::DuplicateClientOrderId)
    );
    h.om.check_invariants().unwrap();
}
