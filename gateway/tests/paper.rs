//! Property tests of the paper venue through its public API: random books, orders, trades
//! and book updates never overfill an order, never fill beyond a limit, never take more from
//! a level than it ever displayed, never fill more from a trade than it printed, and give
//! the same outputs after a snapshot round trip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;

use aaiti_gateway::paper::{
    Liquidity, PaperConfig, PaperOrder, PaperVenue, QueueModel, VecBook, VenueEvent, VenueEventKind,
};
use aaiti_model::{
    AccountId, InstrumentId, OrderId, OrderType, Price, Qty, Scale, Side, TimeInForce, UnixNanos,
};
use proptest::prelude::*;

const I: InstrumentId = InstrumentId(0);

#[derive(Clone, Debug)]
enum Op {
    Submit {
        side: Side,
        market: bool,
        price: i64,
        qty: i64,
        tif: TimeInForce,
        post_only: bool,
    },
    Cancel(usize),
    Replace {
        pick: usize,
        price: i64,
        qty: i64,
    },
    Trade {
        price: i64,
        qty: i64,
        aggressor: Option<Side>,
    },
    Level {
        side: Side,
        price: i64,
        qty: i64,
    },
    Clear,
    Validity(bool),
    Wait(u64),
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn op() -> impl Strategy<Value = Op> {
    let tif = prop_oneof![
        Just(TimeInForce::Gtc),
        Just(TimeInForce::Ioc),
        Just(TimeInForce::Fok),
        Just(TimeInForce::Day),
    ];
    prop_oneof![
        6 => (side(), prop::bool::weighted(0.2), 88i64..=112, -1i64..=30, tif, prop::bool::weighted(0.15))
            .prop_map(|(side, market, price, qty, tif, post_only)| Op::Submit {
                side, market, price, qty, tif, post_only
            }),
        2 => (0usize..64).prop_map(Op::Cancel),
        2 => (0usize..64, 88i64..=112, 0i64..=30)
            .prop_map(|(pick, price, qty)| Op::Replace { pick, price, qty }),
        4 => (88i64..=112, 1i64..=25, prop::option::of(side()))
            .prop_map(|(price, qty, aggressor)| Op::Trade { price, qty, aggressor }),
        6 => (side(), 88i64..=112, 0i64..=20).prop_map(|(side, price, qty)| Op::Level { side, price, qty }),
        1 => Just(Op::Clear),
        1 => prop::bool::weighted(0.8).prop_map(Op::Validity),
        1 => (1u64..5_000).prop_map(Op::Wait),
    ]
}

/// What the test knows of an order from the venue's events.
#[derive(Clone, Debug)]
struct Tracked {
    side: Side,
    limit: Option<i64>,
    qty: i64,
    filled: i64,
    done: bool,
}

/// The engine side of the test: the book, the venue, and the checks.
struct Driver {
    venue: PaperVenue,
    books: Vec<VecBook>,
    now: u64,
    next_id: u64,
    orders: BTreeMap<u64, Tracked>,
    /// Per (book side, price): what the level ever offered (initial + every increase).
    offered: BTreeMap<(u8, i64), i64>,
    /// Per (book side, price): quantity taken by taker fills.
    taken: BTreeMap<(u8, i64), i64>,
    log: Vec<VenueEvent>,
}

impl Driver {
    fn new(config: PaperConfig, levels: &[(Side, i64, i64)]) -> Self {
        let mut venue = PaperVenue::new(config).unwrap();
        venue.add_instrument(I, Scale::new(0).unwrap()).unwrap();
        let mut driver = Self {
            venue,
            books: vec![VecBook::new()],
            now: 1_000_000,
            next_id: 1,
            orders: BTreeMap::new(),
            offered: BTreeMap::new(),
            taken: BTreeMap::new(),
            log: Vec::new(),
        };
        for &(side, price, qty) in levels {
            driver.set_level(side, price, qty);
        }
        driver.drain(None);
        driver
    }

    fn books(&self) -> &[VecBook] {
        &self.books[..]
    }

    /// Applies a level change as a venue would publish it: a level that crosses the other
    /// side removes the crossed levels first.
    fn set_level(&mut self, side: Side, price: i64, qty: i64) {
        if qty > 0 {
            let crossed: Vec<i64> = self.books[0]
                .levels(side.opposite())
                .iter()
                .map(|&(p, _)| p.0)
                .filter(|&p| match side {
                    Side::Buy => p <= price,
                    Side::Sell => p >= price,
                })
                .collect();
            for p in crossed {
                self.change(side.opposite(), p, 0);
            }
        }
        self.change(side, price, qty);
    }

    fn change(&mut self, side: Side, price: i64, qty: i64) {
        let now = UnixNanos(self.now);
        self.venue.on_time(now, &self.books[..]);
        let before = self.books[0].level_qty_of(side, price);
        if qty > before {
            *self.offered.entry((side.code(), price)).or_default() += qty - before;
        }
        self.books[0].set(side, Price(price), Qty(qty));
        self.venue
            .on_book_delta(I, side, Price(price), Qty(qty), now, &self.books[..]);
    }

    /// Mostly a working order; sometimes a finished or never-seen one.
    fn tracked_id(&self, pick: usize) -> u64 {
        let working: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| !o.done)
            .map(|(&id, _)| id)
            .collect();
        match pick % 8 {
            0 => 999_999,
            1 if !self.orders.is_empty() => {
                *self.orders.keys().nth(pick % self.orders.len()).unwrap()
            }
            _ if !working.is_empty() => working[pick % working.len()],
            _ => 999_998,
        }
    }

    fn run(&mut self, op: &Op) {
        self.now += 1_000;
        let now = UnixNanos(self.now);
        let mut trade = None;
        match *op {
            Op::Submit {
                side,
                market,
                price,
                qty,
                tif,
                post_only,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                let order = PaperOrder {
                    order_id: OrderId(id),
                    account: AccountId(0),
                    instrument: I,
                    side,
                    order_type: if market {
                        OrderType::Market
                    } else {
                        OrderType::Limit
                    },
                    price: Price(price),
                    qty: Qty(qty),
                    tif,
                    post_only,
                    expire_at: UnixNanos::ZERO,
                };
                self.orders.insert(
                    id,
                    Tracked {
                        side,
                        limit: (!market).then_some(price),
                        qty,
                        filled: 0,
                        done: false,
                    },
                );
                self.venue.submit(order, now, &self.books[..]);
            }
            Op::Cancel(pick) => {
                let id = self.tracked_id(pick);
                self.venue.cancel(OrderId(id), now, &self.books[..]);
            }
            Op::Replace { pick, price, qty } => {
                let id = self.tracked_id(pick);
                self.venue
                    .replace(OrderId(id), Price(price), Qty(qty), now, &self.books[..]);
            }
            Op::Trade {
                price,
                qty,
                aggressor,
            } => {
                // Everything due before the trade first, so the trade's own fills are alone.
                self.venue.on_time(now, &self.books[..]);
                self.drain(None);
                self.venue
                    .on_trade(I, Price(price), Qty(qty), aggressor, now, &self.books[..]);
                trade = Some(qty);
            }
            Op::Level { side, price, qty } => self.set_level(side, price, qty),
            Op::Clear => {
                self.venue.on_time(now, &self.books[..]);
                self.books[0].clear();
                self.venue.on_book_clear(I, now, &self.books[..]);
            }
            Op::Validity(valid) => {
                self.books[0].valid = valid;
                if valid {
                    self.venue.on_book_valid(I, now, &self.books[..]);
                }
            }
            Op::Wait(us) => {
                self.now += us * 1_000;
                self.venue.on_time(UnixNanos(self.now), &self.books[..]);
            }
        }
        self.drain(trade);
    }

    /// Drains and checks the venue's events. `trade`: the quantity of the trade that caused
    /// them (maker fills per side must not exceed it).
    fn drain(&mut self, trade: Option<i64>) {
        let mut events = Vec::new();
        self.venue.drain(|e| events.push(e));
        let mut maker_from_trade = [0i64; 2];
        let mut last_ts = self.log.last().map_or(0, |e| e.ts.0);
        for event in &events {
            assert!(event.ts.0 >= last_ts, "event times go forward: {event:?}");
            last_ts = event.ts.0;
            let Some(order) = self.orders.get_mut(&event.order_id.0) else {
                // Cancels and replaces of ids the venue never knew.
                assert!(
                    matches!(event.kind, VenueEventKind::CancelRejected { .. }),
                    "{event:?}"
                );
                continue;
            };
            match event.kind {
                VenueEventKind::Fill {
                    price,
                    qty,
                    liquidity,
                    leaves,
                    cum,
                    ..
                } => {
                    assert!(!order.done, "fill after the end: {event:?}");
                    assert!(qty.0 > 0);
                    order.filled += qty.0;
                    assert!(order.filled <= order.qty, "overfill: {order:?} {event:?}");
                    assert_eq!(cum.0, order.filled);
                    assert_eq!(leaves.0, order.qty - order.filled);
                    if let Some(limit) = order.limit {
                        match order.side {
                            Side::Buy => assert!(price.0 <= limit, "{order:?} {event:?}"),
                            Side::Sell => assert!(price.0 >= limit, "{order:?} {event:?}"),
                        }
                    }
                    match liquidity {
                        Liquidity::Taker => {
                            let key = (order.side.opposite().code(), price.0);
                            let taken = self.taken.entry(key).or_default();
                            *taken += qty.0;
                            let offered = self.offered.get(&key).copied().unwrap_or(0);
                            assert!(
                                *taken <= offered,
                                "level {key:?}: took {taken} of {offered}"
                            );
                        }
                        Liquidity::Maker => {
                            maker_from_trade[usize::from(order.side.code() - 1)] += qty.0;
                        }
                    }
                    order.done = leaves.0 == 0;
                }
                VenueEventKind::Canceled { leaves } | VenueEventKind::Expired { leaves } => {
                    assert!(!order.done, "{event:?}");
                    assert_eq!(leaves.0, order.qty - order.filled, "{event:?}");
                    order.done = true;
                }
                VenueEventKind::Rejected { .. } => {
                    assert_eq!(order.filled, 0);
                    order.done = true;
                }
                VenueEventKind::Replaced {
                    price, qty, leaves, ..
                } => {
                    assert!(!order.done);
                    order.limit = Some(price.0);
                    order.qty = qty.0;
                    assert_eq!(leaves.0, qty.0 - order.filled);
                    assert!(leaves.0 > 0);
                }
                VenueEventKind::Accepted | VenueEventKind::CancelRejected { .. } => {}
            }
        }
        if let Some(qty) = trade {
            for side in maker_from_trade {
                assert!(side <= qty, "trade of {qty} filled {side} on one side");
            }
        }
        self.log.extend(events);
    }
}

trait LevelQty {
    fn level_qty_of(&self, side: Side, price: i64) -> i64;
}

impl LevelQty for VecBook {
    fn level_qty_of(&self, side: Side, price: i64) -> i64 {
        self.levels(side)
            .iter()
            .find(|&&(p, _)| p.0 == price)
            .map_or(0, |&(_, q)| q.0)
    }
}

fn initial_levels() -> impl Strategy<Value = Vec<(Side, i64, i64)>> {
    (
        prop::collection::vec(1i64..=20, 6),
        prop::collection::vec(1i64..=20, 6),
    )
        .prop_map(|(bids, asks)| {
            let mut levels = Vec::new();
            for (i, q) in bids.into_iter().enumerate() {
                levels.push((Side::Buy, 99 - i as i64, q));
            }
            for (i, q) in asks.into_iter().enumerate() {
                levels.push((Side::Sell, 101 + i as i64, q));
            }
            levels
        })
}

fn config_strategy() -> impl Strategy<Value = PaperConfig> {
    (
        prop_oneof![Just(0u64), Just(2), Just(7)],
        prop_oneof![
            Just(QueueModel::Conservative),
            Just(QueueModel::Proportional),
            Just(QueueModel::Optimistic)
        ],
        prop_oneof![Just(3u32), Just(1_000)],
    )
        .prop_map(|(latency_us, queue_model, max_walk_levels)| PaperConfig {
            latency_us,
            queue_model,
            max_walk_levels,
            max_orders: 48,
            ..PaperConfig::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_flow_keeps_invariants(
        config in config_strategy(),
        levels in initial_levels(),
        ops in prop::collection::vec(op(), 1..160),
        cut in 0usize..160,
    ) {
        let mut driver = Driver::new(config, &levels);
        let cut = cut.min(ops.len());
        for op in &ops[..cut] {
            driver.run(op);
        }
        // Snapshot in the middle; both copies must behave identically from here on.
        let bytes = postcard::to_allocvec(&driver.venue).unwrap();
        let restored: PaperVenue = postcard::from_bytes(&bytes).unwrap();
        let mut twin = Driver {
            venue: restored,
            books: driver.books.clone(),
            now: driver.now,
            next_id: driver.next_id,
            orders: driver.orders.clone(),
            offered: driver.offered.clone(),
            taken: driver.taken.clone(),
            log: Vec::new(),
        };
        let already = driver.log.len();
        for op in &ops[cut..] {
            driver.run(op);
            twin.run(op);
        }
        prop_assert_eq!(&driver.log[already..], &twin.log[..]);
        prop_assert_eq!(driver.venue.stats(), twin.venue.stats());
        // Resting orders agree with what the events said.
        for (id, order) in &driver.orders {
            if let Some(view) = driver.venue.order(OrderId(*id)) {
                prop_assert!(!order.done);
                prop_assert_eq!(view.cum.0, order.filled);
                prop_assert_eq!(view.leaves.0, order.qty - order.filled);
                prop_assert!(view.queue_ahead.0 >= 0);
            }
        }
        let _ = driver.books();
    }
}

#[test]
fn same_inputs_same_outputs() {
    let levels = [
        (Side::Buy, 99, 5),
        (Side::Buy, 98, 5),
        (Side::Sell, 101, 5),
        (Side::Sell, 102, 5),
    ];
    let ops = [
        Op::Submit {
            side: Side::Buy,
            market: false,
            price: 99,
            qty: 4,
            tif: TimeInForce::Gtc,
            post_only: false,
        },
        Op::Submit {
            side: Side::Buy,
            market: true,
            price: 0,
            qty: 7,
            tif: TimeInForce::Ioc,
            post_only: false,
        },
        Op::Trade {
            price: 99,
            qty: 8,
            aggressor: Some(Side::Sell),
        },
        Op::Level {
            side: Side::Sell,
            price: 99,
            qty: 3,
        },
        Op::Wait(10),
    ];
    let run = || {
        let mut driver = Driver::new(
            PaperConfig {
                latency_us: 2,
                ..PaperConfig::default()
            },
            &levels,
        );
        for op in &ops {
            driver.run(op);
        }
        driver.log
    };
    let first = run();
    assert!(first.len() >= 5, "{first:?}");
    assert_eq!(first, run());
}
