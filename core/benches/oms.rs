//! Order manager: nanoseconds per event for new-order creation, acknowledgement, fill
//! processing and cancel (request and venue confirmation), beside a naive baseline in the
//! same run, plus the stop trigger check.
//!
//! * `oms`: [`OrderManager`] with its tables allocated at start (the steady state: slots,
//!   index entries and stop-book room are reused; the session indices are reset between
//!   rounds, outside the timing).
//! * `naive`: the way an order manager is often first written — orders in a
//!   `HashMap<String, Order>` keyed by an owned `String` client id (std SipHash), an id →
//!   client id `HashMap<u64, String>`, `f64` prices and quantities, a `Vec` of execution ids
//!   per order, and events that carry a cloned `String` client id. Same validations (qty
//!   positive, price on tick, duplicate client id, duplicate exec id, overfill).
//!
//! Latency: every call is timed on its own with `quanta::Clock::raw` (TSC) into an
//! HdrHistogram; the figures include the clock's own cost, which is printed first.
//! Throughput: a whole batch of calls timed with one `Instant` pair (no per-call clock),
//! best of the rounds.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-oms cargo bench -p aaiti-core --bench oms` (a few
//! seconds once built).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup with constant, valid inputs"
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use aaiti_core::oms::{CommandOutcome, Fill, Liquidity, OmsConfig, OrderManager, TriggerSource};
use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderAction,
    OrderCommand, OrderEvent, OrderId, OrderType, Price, Qty, RejectReason, Side, TimeInForce,
    UnixNanos,
};
use hdrhistogram::Histogram;
use quanta::Clock;

/// Orders per round (all live at once at the peak).
const ORDERS: usize = 50_000;
/// Timed rounds (after one warm-up round).
const ROUNDS: usize = 6;
const NOW: UnixNanos = UnixNanos(1_700_000_000_000_000_000);
/// 60 000.00 at scale 2 (tick 0.01).
const PRICE: i64 = 6_000_000;
const QTY: i64 = 1_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()
}

fn registry() -> InstrumentRegistry {
    InstrumentRegistry::from_specs(&[InstrumentSpec {
        venue: "paper".into(),
        symbol: "BTCUSD".into(),
        base: "BTC".into(),
        quote: "USD".into(),
        price_scale: 2,
        qty_scale: 3,
        tick_size: "0.01".into(),
        lot_size: "0.001".into(),
        min_notional: "5".into(),
    }])
    .unwrap()
}

/// Operations, in lifecycle order.
const OPS: [&str; 5] = [
    "new order",
    "venue ack",
    "fill",
    "cancel request",
    "cancel confirmed",
];

/// Per-operation latency histograms and best batch throughput (ns per call).
struct Results {
    latency: [Histogram<u64>; 5],
    batch_ns: [f64; 5],
}

impl Results {
    fn new() -> Self {
        Self {
            latency: [
                histogram(),
                histogram(),
                histogram(),
                histogram(),
                histogram(),
            ],
            batch_ns: [f64::MAX; 5],
        }
    }

    /// Runs `round` once untimed (warm-up), `ROUNDS` times with per-call latency, and
    /// `ROUNDS` times for batch throughput.
    fn collect(mut round: impl FnMut(Option<&mut [Histogram<u64>; 5]>) -> [f64; 5]) -> Self {
        let mut results = Self::new();
        round(None);
        for _ in 0..ROUNDS {
            round(Some(&mut results.latency));
        }
        for _ in 0..ROUNDS {
            let batch = round(None);
            for (best, ns) in results.batch_ns.iter_mut().zip(batch) {
                *best = best.min(ns);
            }
        }
        results
    }
}

/// Calls `f`, timing it with the TSC clock into `hist` if given.
#[inline(always)]
fn call<R>(clock: &Clock, hist: Option<&mut Histogram<u64>>, f: impl FnOnce() -> R) -> R {
    match hist {
        Some(hist) => {
            let start = clock.raw();
            let r = f();
            let end = clock.raw();
            hist.saturating_record(clock.delta_as_nanos(start, end).max(1));
            r
        }
        None => f(),
    }
}

/// ns per call since `start`.
fn per_call(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64 / ORDERS as f64
}

// ------------------------------------------------------------------------------------------
// The order manager.
// ------------------------------------------------------------------------------------------

fn bench_oms(clock: &Clock) -> Results {
    let config = OmsConfig {
        accounts: 1,
        max_live_orders: ORDERS as u32,
        done_retention: 4_096,
        session_orders_capacity: ORDERS as u32,
        session_fills_capacity: ORDERS as u32,
        ..OmsConfig::default()
    };
    let mut om = OrderManager::new(config, &registry()).unwrap();
    let commands: Vec<OrderCommand> = (0..ORDERS)
        .map(|i| OrderCommand {
            action: OrderAction::New.code(),
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell }.code(),
            order_type: OrderType::Limit.code(),
            time_in_force: TimeInForce::Gtc.code(),
            account: AccountId(0),
            instrument: InstrumentId(0),
            price: Price(PRICE + (i as i64 % 100) * if i % 2 == 0 { -1 } else { 1 }),
            qty: Qty(QTY),
            client_order_id: ClientOrderId::new(format!("CL-{i:08}").as_bytes()).unwrap(),
            ..OrderCommand::default()
        })
        .collect();
    let cancel_template = OrderCommand {
        action: OrderAction::Cancel.code(),
        account: AccountId(0),
        ..OrderCommand::default()
    };
    let mut ids: Vec<OrderId> = Vec::with_capacity(ORDERS);
    let mut events = 0u64;
    let mut sink = |e: OrderEvent| {
        events += 1;
        black_box(&e);
    };
    let mut exec_id = 0u64;
    let results = Results::collect(|mut latency| {
        // A new session per round (outside the timing): client ids may be used again.
        om.reset_session();
        ids.clear();
        let mut batch = [0.0; 5];
        let start = Instant::now();
        for cmd in &commands {
            let hist = latency.as_mut().map(|l| &mut l[0]);
            let outcome = call(clock, hist, || om.on_command(cmd, NOW, &mut sink));
            if let CommandOutcome::Route(id) = outcome {
                ids.push(id);
            }
        }
        batch[0] = per_call(start);
        assert_eq!(ids.len(), ORDERS, "every order created");
        let start = Instant::now();
        for &id in &ids {
            let hist = latency.as_mut().map(|l| &mut l[1]);
            call(clock, hist, || om.on_venue_ack(id, NOW, &mut sink)).unwrap();
        }
        batch[1] = per_call(start);
        let start = Instant::now();
        for (&id, cmd) in ids.iter().zip(&commands) {
            exec_id += 1;
            let fill = Fill {
                exec_id,
                price: cmd.price,
                qty: Qty(QTY / 4),
                liquidity: Liquidity::Maker,
                fee: -12,
            };
            let hist = latency.as_mut().map(|l| &mut l[2]);
            call(clock, hist, || om.on_venue_fill(id, &fill, NOW, &mut sink)).unwrap();
        }
        batch[2] = per_call(start);
        let start = Instant::now();
        for &id in &ids {
            let cmd = OrderCommand {
                order_id: id,
                ..cancel_template
            };
            let hist = latency.as_mut().map(|l| &mut l[3]);
            let outcome = call(clock, hist, || om.on_command(&cmd, NOW, &mut sink));
            debug_assert_eq!(outcome, CommandOutcome::SendCancel(id));
        }
        batch[3] = per_call(start);
        let start = Instant::now();
        for &id in &ids {
            let hist = latency.as_mut().map(|l| &mut l[4]);
            call(clock, hist, || om.on_venue_canceled(id, NOW, &mut sink)).unwrap();
        }
        batch[4] = per_call(start);
        batch
    });
    assert_eq!(om.counters().illegal, 0);
    assert_eq!(om.live_count(), 0);
    black_box(events);
    results
}

// ------------------------------------------------------------------------------------------
// The naive baseline.
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NaiveStatus {
    PendingNew,
    New,
    PartiallyFilled,
    Filled,
    PendingCancel,
    Canceled,
}

struct NaiveOrder {
    id: u64,
    side: Side,
    price: f64,
    qty: f64,
    cum_qty: f64,
    avg_price: f64,
    fees: f64,
    status: NaiveStatus,
    exec_ids: Vec<u64>,
}

/// An event as the naive manager emits it.
#[allow(dead_code, reason = "only handed to black_box")]
struct NaiveEvent {
    order_id: u64,
    client_order_id: String,
    status: NaiveStatus,
    cum_qty: f64,
    leaves_qty: f64,
    avg_price: f64,
}

struct Naive {
    orders: HashMap<String, NaiveOrder>,
    by_id: HashMap<u64, String>,
    next_id: u64,
    tick: f64,
}

impl Naive {
    fn new() -> Self {
        Self {
            orders: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 1,
            tick: 0.01,
        }
    }

    fn emit(order: &NaiveOrder, client: &str, out: &mut impl FnMut(NaiveEvent)) {
        out(NaiveEvent {
            order_id: order.id,
            client_order_id: client.to_string(),
            status: order.status,
            cum_qty: order.cum_qty,
            leaves_qty: order.qty - order.cum_qty,
            avg_price: order.avg_price,
        });
    }

    fn new_order(
        &mut self,
        client: &str,
        side: Side,
        price: f64,
        qty: f64,
        out: &mut impl FnMut(NaiveEvent),
    ) -> Result<u64, RejectReason> {
        if qty <= 0.0 {
            return Err(RejectReason::InvalidQuantity);
        }
        if price <= 0.0 || ((price / self.tick).round() * self.tick - price).abs() > 1e-9 {
            return Err(RejectReason::InvalidPrice);
        }
        if self.orders.contains_key(client) {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let id = self.next_id;
        self.next_id += 1;
        let order = NaiveOrder {
            id,
            side,
            price,
            qty,
            cum_qty: 0.0,
            avg_price: 0.0,
            fees: 0.0,
            status: NaiveStatus::PendingNew,
            exec_ids: Vec::new(),
        };
        Self::emit(&order, client, out);
        self.orders.insert(client.to_string(), order);
        self.by_id.insert(id, client.to_string());
        Ok(id)
    }

    fn ack(&mut self, id: u64, out: &mut impl FnMut(NaiveEvent)) -> Result<(), &'static str> {
        let client = self.by_id.get(&id).ok_or("unknown order")?;
        let order = self.orders.get_mut(client).ok_or("unknown order")?;
        if order.status != NaiveStatus::PendingNew {
            return Err("bad state");
        }
        order.status = NaiveStatus::New;
        Self::emit(order, client, out);
        Ok(())
    }

    fn fill(
        &mut self,
        id: u64,
        exec_id: u64,
        price: f64,
        qty: f64,
        fee: f64,
        out: &mut impl FnMut(NaiveEvent),
    ) -> Result<(), &'static str> {
        let client = self.by_id.get(&id).ok_or("unknown order")?;
        let order = self.orders.get_mut(client).ok_or("unknown order")?;
        if !matches!(
            order.status,
            NaiveStatus::New | NaiveStatus::PartiallyFilled | NaiveStatus::PendingCancel
        ) {
            return Err("fill after done");
        }
        if order.exec_ids.contains(&exec_id) {
            return Err("duplicate exec id");
        }
        if order.cum_qty + qty > order.qty + 1e-9 {
            return Err("overfill");
        }
        let through = match order.side {
            Side::Buy => price > order.price,
            Side::Sell => price < order.price,
        };
        if through {
            return Err("through the limit");
        }
        order.exec_ids.push(exec_id);
        order.avg_price = (order.avg_price * order.cum_qty + price * qty) / (order.cum_qty + qty);
        order.cum_qty += qty;
        order.fees += fee;
        if order.status != NaiveStatus::PendingCancel {
            order.status = if (order.qty - order.cum_qty).abs() < 1e-9 {
                NaiveStatus::Filled
            } else {
                NaiveStatus::PartiallyFilled
            };
        }
        Self::emit(order, client, out);
        Ok(())
    }

    fn cancel(&mut self, id: u64, out: &mut impl FnMut(NaiveEvent)) -> Result<(), RejectReason> {
        let client = self.by_id.get(&id).ok_or(RejectReason::UnknownOrder)?;
        let order = self
            .orders
            .get_mut(client)
            .ok_or(RejectReason::UnknownOrder)?;
        if !matches!(
            order.status,
            NaiveStatus::PendingNew | NaiveStatus::New | NaiveStatus::PartiallyFilled
        ) {
            return Err(RejectReason::TooLateToCancel);
        }
        order.status = NaiveStatus::PendingCancel;
        Self::emit(order, client, out);
        Ok(())
    }

    fn canceled(&mut self, id: u64, out: &mut impl FnMut(NaiveEvent)) -> Result<(), &'static str> {
        let client = self.by_id.get(&id).ok_or("unknown order")?;
        let order = self.orders.get_mut(client).ok_or("unknown order")?;
        if order.status != NaiveStatus::PendingCancel {
            return Err("bad state");
        }
        order.status = NaiveStatus::Canceled;
        Self::emit(order, client, out);
        Ok(())
    }
}

fn bench_naive(clock: &Clock) -> Results {
    let clients: Vec<String> = (0..ORDERS).map(|i| format!("CL-{i:08}")).collect();
    let prices: Vec<f64> = (0..ORDERS)
        .map(|i| (PRICE + (i as i64 % 100) * if i % 2 == 0 { -1 } else { 1 }) as f64 / 100.0)
        .collect();
    let sides: Vec<Side> = (0..ORDERS)
        .map(|i| if i % 2 == 0 { Side::Buy } else { Side::Sell })
        .collect();
    let mut ids: Vec<u64> = Vec::with_capacity(ORDERS);
    let mut events = 0u64;
    let mut sink = |e: NaiveEvent| {
        events += 1;
        black_box(&e);
    };
    let mut exec_id = 0u64;
    let results = Results::collect(|mut latency| {
        // A new session per round: a fresh manager (dropping the old one is not timed).
        let mut naive = Naive::new();
        ids.clear();
        let mut batch = [0.0; 5];
        let start = Instant::now();
        for i in 0..ORDERS {
            let (client, side, price) = (&clients[i], sides[i], prices[i]);
            let hist = latency.as_mut().map(|l| &mut l[0]);
            let id = call(clock, hist, || {
                naive.new_order(client, side, price, 1.0, &mut sink)
            });
            ids.push(id.unwrap());
        }
        batch[0] = per_call(start);
        let start = Instant::now();
        for &id in &ids {
            let hist = latency.as_mut().map(|l| &mut l[1]);
            call(clock, hist, || naive.ack(id, &mut sink)).unwrap();
        }
        batch[1] = per_call(start);
        let start = Instant::now();
        for (&id, &price) in ids.iter().zip(&prices) {
            exec_id += 1;
            let hist = latency.as_mut().map(|l| &mut l[2]);
            call(clock, hist, || {
                naive.fill(id, exec_id, price, 0.25, -0.12, &mut sink)
            })
            .unwrap();
        }
        batch[2] = per_call(start);
        let start = Instant::now();
        for &id in &ids {
            let hist = latency.as_mut().map(|l| &mut l[3]);
            call(clock, hist, || naive.cancel(id, &mut sink)).unwrap();
        }
        batch[3] = per_call(start);
        let start = Instant::now();
        for &id in &ids {
            let hist = latency.as_mut().map(|l| &mut l[4]);
            call(clock, hist, || naive.canceled(id, &mut sink)).unwrap();
        }
        batch[4] = per_call(start);
        batch
    });
    black_box(events);
    results
}

// ------------------------------------------------------------------------------------------
// Stop trigger check.
// ------------------------------------------------------------------------------------------

/// ns per `on_trigger_price` call that triggers nothing, with `armed` stops per side.
fn bench_trigger_check(clock: &Clock, armed: usize) -> Histogram<u64> {
    let config = OmsConfig {
        accounts: 1,
        max_live_orders: (2 * armed) as u32,
        stops_capacity: armed as u32,
        ..OmsConfig::default()
    };
    let mut om = OrderManager::new(config, &registry()).unwrap();
    for i in 0..2 * armed {
        let buy = i % 2 == 0;
        let offset = 10_000 + (i as i64) * 10;
        let cmd = OrderCommand {
            action: OrderAction::New.code(),
            side: if buy { Side::Buy } else { Side::Sell }.code(),
            order_type: OrderType::Stop.code(),
            time_in_force: TimeInForce::Gtc.code(),
            stop_price: Price(if buy { PRICE + offset } else { PRICE - offset }),
            qty: Qty(QTY),
            client_order_id: ClientOrderId::new(format!("S-{i}").as_bytes()).unwrap(),
            ..OrderCommand::default()
        };
        assert!(matches!(
            om.on_command(&cmd, NOW, &mut |_| {}),
            CommandOutcome::Held(_)
        ));
    }
    let mut hist = histogram();
    for i in 0..200_000i64 {
        let price = Price(PRICE + (i % 2_000) - 1_000);
        let fired = call(clock, Some(&mut hist), || {
            om.on_trigger_price(
                InstrumentId(0),
                TriggerSource::LastTrade,
                price,
                NOW,
                &mut |e| {
                    black_box(e);
                },
            )
        });
        assert_eq!(fired, 0);
    }
    hist
}

// ------------------------------------------------------------------------------------------
// Report.
// ------------------------------------------------------------------------------------------

fn main() {
    let clock = Clock::new();
    let mut overhead = histogram();
    for _ in 0..1_000_000 {
        let start = clock.raw();
        let end = clock.raw();
        overhead.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    eprintln!(
        "clock overhead (quanta raw pair): p50 {} ns, p99 {} ns",
        overhead.value_at_quantile(0.5),
        overhead.value_at_quantile(0.99)
    );
    let started = Instant::now();
    let oms = bench_oms(&clock);
    let naive = bench_naive(&clock);
    eprintln!(
        "\n{ORDERS} orders x {ROUNDS} rounds; latency per call (includes the clock), batch = \
         ns/call without per-call timing (best round)"
    );
    eprintln!(
        "{:<22} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} {:>7}",
        "operation", "oms p50", "p99", "batch", "naive p50", "p99", "batch", "p50 x", "batch x"
    );
    for (i, name) in OPS.into_iter().enumerate() {
        let (a, b) = (&oms.latency[i], &naive.latency[i]);
        let (a50, a99) = (a.value_at_quantile(0.5), a.value_at_quantile(0.99));
        let (b50, b99) = (b.value_at_quantile(0.5), b.value_at_quantile(0.99));
        eprintln!(
            "{name:<22} {a50:>9} {a99:>9} {:>9.1} | {b50:>9} {b99:>9} {:>9.1} | {:>7.2} {:>7.2}",
            oms.batch_ns[i],
            naive.batch_ns[i],
            b50 as f64 / a50 as f64,
            naive.batch_ns[i] / oms.batch_ns[i],
        );
    }
    let life_oms: f64 = oms.batch_ns.iter().sum();
    let life_naive: f64 = naive.batch_ns.iter().sum();
    eprintln!(
        "whole lifecycle (5 events) batch: oms {life_oms:.0} ns ({:.2} M orders/s), naive \
         {life_naive:.0} ns; ratio {:.2}",
        1_000.0 / life_oms,
        life_naive / life_oms
    );
    for armed in [10, 1_000] {
        let h = bench_trigger_check(&clock, armed);
        eprintln!(
            "stop trigger check, {armed} armed stops per side, none firing: p50 {} ns, p99 {} ns",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
    }
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
}
