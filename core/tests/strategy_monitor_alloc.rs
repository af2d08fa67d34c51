//! The model strategy, the rule strategy and the model monitors allocate nothing per event:
//! a counting global allocator (this file is its own test binary) around every callback,
//! while a driver with the real order manager acknowledges, fills and cancels their orders.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
#![allow(
    unsafe_code,
    reason = "a global allocator is the only way to observe allocations"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aaiti_core::market::Market;
use aaiti_core::oms::{CommandOutcome, Fill, Liquidity, OmsConfig, OrderManager};
use aaiti_core::signals::monitor::{
    AccuracyTracker, DriftMonitor, DriftParams, Histogram, Reference,
};
use aaiti_core::strategy::ml::{MlParams, MlStrategy};
use aaiti_core::strategy::rule::{RuleParams, RuleStrategy};
use aaiti_core::strategy::{Intents, Strategy};
use aaiti_model::{
    AccountId, BookAction, BookDelta, FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry,
    InstrumentSpec, OrderCommand, OrderEvent, Price, Qty, Side, Signal, TimeInForce, UnixNanos,
    VenueId,
};

thread_local! {
    /// Allocations made by this thread (const-initialised: reading it never allocates).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: during thread teardown the slot may be gone; those calls are not ours.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements the
// `GlobalAlloc` contract; counting touches only a const-initialised thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const BTC: InstrumentId = InstrumentId(0);
const MS: u64 = 1_000_000;

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
        min_notional: "0".into(),
    }])
    .unwrap()
}

/// The market, the order manager and an instant venue; counts the allocations made inside
/// strategy callbacks only.
struct Driver {
    market: Market,
    oms: OrderManager,
    now: UnixNanos,
    intents: Intents,
    commands: Vec<OrderCommand>,
    events: Vec<OrderEvent>,
    exec_id: u64,
    strategy_allocations: u64,
    fills: u64,
}

impl Driver {
    fn new() -> Self {
        let registry = registry();
        let mut market = Market::new(&registry).unwrap();
        market.on_feed_event(&FeedEvent {
            instrument: BTC,
            kind: FeedEventKind::BookValid.code(),
            venue: VenueId(0),
            venue_seq: 0,
            expected: 0,
            value: 0,
        });
        let config = OmsConfig {
            accounts: 2,
            max_live_orders: 64,
            done_retention: 64,
            ..OmsConfig::default()
        };
        Self {
            market,
            oms: OrderManager::new(config, &registry).unwrap(),
            now: UnixNanos(1_700_000_000_000_000_000),
            intents: Intents::new(),
            commands: Vec::with_capacity(Intents::CAPACITY),
            events: Vec::with_capacity(256),
            exec_id: 0,
            strategy_allocations: 0,
            fills: 0,
        }
    }

    fn measured(&mut self, call: impl FnOnce(&Market, &mut Intents)) {
        let before = allocations();
        call(&self.market, &mut self.intents);
        self.strategy_allocations += allocations() - before;
    }

    fn book(&mut self, strategy: &mut dyn Strategy, bid: i64, ask: i64) {
        self.now = UnixNanos(self.now.0 + 100 * MS);
        for (side, action, price, flags) in [
            (0, BookAction::Clear, 0, 0),
            (Side::Buy.code(), BookAction::Set, bid, 0),
            (
                Side::Sell.code(),
                BookAction::Set,
                ask,
                BookDelta::FLAG_LAST,
            ),
        ] {
            let delta = BookDelta {
                instrument: BTC,
                side,
                action: action.code(),
                flags,
                _pad: 0,
                price: Price(price),
                qty: Qty(1_000),
                venue_seq: 0,
            };
            assert!(self.market.on_delta(&delta, self.now));
        }
        // Resting orders the market moved through (a bid below a buy, an ask above a sell)
        // filled at their limit before this update reached the strategy.
        let mut crossed = [None; 8];
        for (slot, order) in crossed.iter_mut().zip(
            self.oms
                .orders()
                .filter(|o| o.status.is_at_venue() && o.pending.is_none())
                .filter(|o| match o.side {
                    Side::Buy => o.price.0 > bid,
                    Side::Sell => o.price.0 < ask,
                }),
        ) {
            *slot = Some((order.id, order.price, order.leaves_qty()));
        }
        for (id, price, qty) in crossed.into_iter().flatten() {
            self.fill(id, price, qty);
        }
        self.settle(strategy);
        let now = self.now;
        self.measured(|market, out| strategy.on_book(market, BTC, now, out));
        self.settle(strategy);
    }

    fn signal(&mut self, strategy: &mut dyn Strategy, prediction: f64) {
        let signal = Signal {
            model: 0,
            model_version: 1,
            instrument: BTC,
            horizon_ms: 2_000,
            prediction,
            confidence: 0.9,
            flags: 0,
            feature_count: 4,
        };
        let now = self.now;
        self.measured(|market, out| strategy.on_signal(market, &signal, now, out));
        self.settle(strategy);
    }

    fn fill(&mut self, id: aaiti_model::OrderId, price: Price, qty: Qty) {
        self.exec_id += 1;
        let fill = Fill {
            exec_id: self.exec_id,
            price,
            qty,
            liquidity: Liquidity::Maker,
            fee: 1,
        };
        let events = &mut self.events;
        self.oms
            .on_venue_fill(id, &fill, self.now, &mut |e| events.push(e))
            .unwrap();
        self.fills += 1;
    }

    /// Commands to the order manager and an instant venue, events back to the strategy.
    fn settle(&mut self, strategy: &mut dyn Strategy) {
        for _ in 0..16 {
            self.commands.extend(self.intents.drain());
            if self.commands.is_empty() && self.events.is_empty() {
                return;
            }
            let now = self.now;
            for command in self.commands.drain(..) {
                let events = &mut self.events;
                let mut push = |e| events.push(e);
                let result = match self.oms.on_command(&command, now, &mut push) {
                    CommandOutcome::Route(id) => {
                        let ioc = self.oms.order(id).map(|o| o.time_in_force);
                        if ioc == Some(TimeInForce::Ioc) {
                            self.oms.on_venue_expired(id, now, &mut push)
                        } else {
                            self.oms.on_venue_ack(id, now, &mut push)
                        }
                    }
                    CommandOutcome::SendCancel(id) => {
                        self.oms.on_venue_canceled(id, now, &mut push)
                    }
                    CommandOutcome::SendReplace(id) => {
                        self.oms.on_venue_replaced(id, now, &mut push)
                    }
                    _ => Ok(()),
                };
                result.unwrap();
            }
            let mut index = 0;
            while index < self.events.len() {
                let event = self.events[index];
                index += 1;
                if event.account == strategy.account() {
                    self.measured(|market, out| strategy.on_order_event(market, &event, now, out));
                }
            }
            self.events.clear();
        }
        panic!("the strategy and the venue do not settle");
    }
}

/// A price path with swings: mid mantissas around 10000.00.
fn bid_at(step: u64) -> i64 {
    let swing = ((step / 40) % 2) as i64 * 2 - 1; // 40 updates up, 40 down
    let within = (step % 40) as i64;
    let wiggle = [0, 3, -2, 5, -4, 1, 6, -3, 2, -5][(step % 10) as usize];
    1_000_000 + swing * within * 8 + wiggle
}

#[test]
fn the_model_strategy_trades_without_allocating() {
    let registry = registry();
    let mut params = MlParams::new("ml", AccountId(0), registry.get(BTC).unwrap(), Qty(100));
    params.min_interval_ms = 150;
    params.order_ttl_ms = 1_000;
    params.vol_warmup_updates = 20;
    params.target_vol_1m_bps = 1e6;
    params.max_loss = Some(Price(1_000_000)); // checked on every event, never reached
    let mut strategy = MlStrategy::new(params).unwrap();
    let mut driver = Driver::new();
    for step in 0..3_000_u64 {
        let bid = bid_at(step);
        driver.book(&mut strategy, bid, bid + 5);
        if step % 7 == 0 {
            // The view flips every 21 updates, often with an order still working.
            let prediction = if (step / 21) % 2 == 0 { 3e-4 } else { -3e-4 };
            driver.signal(&mut strategy, prediction);
        }
    }
    let c = *strategy.counters();
    assert!(c.orders > 20, "{c:?}");
    assert!(c.replaces > 20, "{c:?}");
    assert!(c.cancels > 5, "{c:?}");
    assert!(c.fills > 10, "{c:?}");
    assert!(driver.fills > 10);
    assert_eq!(driver.strategy_allocations, 0, "{c:?}");
}

#[test]
fn the_rule_strategy_trades_without_allocating() {
    let mut strategy = RuleStrategy::new(RuleParams {
        name: "ema".into(),
        account: AccountId(1),
        instrument: BTC,
        fast_updates: 4,
        slow_updates: 16,
        threshold_bps: 0.5,
        order_qty: Qty(10),
        max_position: Qty(30),
    })
    .unwrap();
    let mut driver = Driver::new();
    for step in 0..3_000_u64 {
        let bid = bid_at(step);
        driver.book(&mut strategy, bid, bid + 5);
    }
    let report = strategy.report();
    let fills = report.iter().find(|(name, _)| name == "fills").unwrap().1;
    assert!(fills > 10, "{report:?}");
    assert_eq!(driver.strategy_allocations, 0);
}

#[test]
fn the_monitors_do_not_allocate_per_observation() {
    let histogram = |edges: Vec<f64>| {
        let share = 1.0 / (edges.len() + 1) as f64;
        Histogram {
            fractions: vec![share; edges.len() + 1],
            edges,
        }
    };
    let reference = Reference {
        features: (0..16)
            .map(|_| histogram(vec![-1.5, -0.5, 0.0, 0.5, 1.5]))
            .collect(),
        prediction: histogram(vec![-1e-4, 0.0, 1e-4]),
    };
    let mut drift = DriftMonitor::new(
        &reference,
        DriftParams {
            window: 500,
            carry: 0.5,
            ..DriftParams::default()
        },
    )
    .unwrap();
    let mut accuracy = AccuracyTracker::new(1_000, 64).unwrap();
    let mut features = [0.0_f64; 16];
    let (mut evaluations, mut alerts, mut resolved) = (0, 0, 0);
    let before = allocations();
    for step in 0..20_000_u64 {
        let now = UnixNanos(step * 50 * MS);
        for (i, x) in features.iter_mut().enumerate() {
            // The later features drift away from the reference over time.
            *x = ((step * 31 + i as u64 * 17) % 400) as f64 / 100.0 - 2.0
                + (i as f64) * step as f64 * 1e-5;
        }
        let prediction = ((step * 13) % 100) as f64 * 4e-6 - 2e-4;
        if drift.observe(&features, prediction).unwrap().is_some() {
            evaluations += 1;
            alerts += drift.alerts().count();
        }
        let mid = Price(1_000_000 + ((step * 7) % 50) as i64);
        resolved += accuracy.on_mid(now, mid, &mut |_| {});
        accuracy.on_prediction(now, mid, prediction);
        let _ = accuracy.scores();
    }
    assert_eq!(allocations() - before, 0);
    assert_eq!(evaluations, 40);
    assert!(alerts > 0, "the drifting features alert");
    assert!(resolved > 19_000);
}
