//! Paper venue latency: a market order walking N levels, and a trade print against M resting
//! orders, each beside a naive `BTreeMap` venue doing the same matching in the same run.
//!
//! Every operation is timed on its own with `quanta` (TSC) into an HDR histogram; the clock's
//! own overhead (an empty start/stop pair) is printed first and is included in every figure.
//! Set-up between operations (restoring the book, re-placing filled orders) is not timed.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-paper cargo bench -p aaiti-gateway --bench paper
//! ```
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary reporting on stdout"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use aaiti_gateway::paper::{
    FeeBp, PaperConfig, PaperOrder, PaperVenue, VecBook, VenueEventKind, fee,
};
use aaiti_model::{
    AccountId, InstrumentId, OrderId, OrderType, Price, Qty, Scale, Side, TimeInForce, UnixNanos,
};
use hdrhistogram::Histogram;
use quanta::Clock;

const I: InstrumentId = InstrumentId(0);
const ITERS: usize = 200_000;
const WARMUP: usize = 20_000;
const LEVEL_QTY: i64 = 10;
/// Displayed quantity at resting orders' levels: trades at the price never reach them.
const DEEP: i64 = 1_000_000_000_000;
const MAKER: i64 = -2_500; // -0.25 bp in 1e-4 bp
const TAKER: i64 = 40_000; // 4 bp

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000, 3).unwrap()
}

fn report(name: &str, ours: &Histogram<u64>, naive: &Histogram<u64>) {
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "{name:<34} paper p50 {:>6} ns p99 {:>6} ns | naive p50 {:>6} ns p99 {:>6} ns | p50 ratio naive/paper {:>5.2}",
        q(ours, 0.5),
        q(ours, 0.99),
        q(naive, 0.5),
        q(naive, 0.99),
        q(naive, 0.5) as f64 / q(ours, 0.5).max(1) as f64,
    );
}

fn config() -> PaperConfig {
    PaperConfig {
        latency_us: 0,
        maker_fee_bp: FeeBp::from_units(MAKER).unwrap(),
        taker_fee_bp: FeeBp::from_units(TAKER).unwrap(),
        max_orders: 65_536,
        ..PaperConfig::default()
    }
}

fn venue() -> PaperVenue {
    let mut venue = PaperVenue::new(config()).unwrap();
    venue.add_instrument(I, Scale::new(0).unwrap()).unwrap();
    venue
}

fn order(id: u64, side: Side, order_type: OrderType, price: i64, qty: i64) -> PaperOrder {
    PaperOrder {
        order_id: OrderId(id),
        account: AccountId(0),
        instrument: I,
        side,
        order_type,
        price: Price(price),
        qty: Qty(qty),
        tif: if order_type == OrderType::Market {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        },
        post_only: false,
        expire_at: UnixNanos::ZERO,
    }
}

// ---------------------------------------------------------------------------------------------
// The naive baseline: BTreeMaps, a Vec of orders per level, a Vec of fills per call.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct NaiveOrder {
    id: u64,
    leaves: i64,
    ahead: i64,
}

#[derive(Clone, Copy)]
struct NaiveFill {
    id: u64,
    price: i64,
    qty: i64,
    fee: i64,
}

#[derive(Default)]
struct Naive {
    asks: BTreeMap<i64, i64>,
    consumed: BTreeMap<i64, i64>,
    bids: BTreeMap<i64, Vec<NaiveOrder>>,
    /// Finished ids, bounded like the venue's (oldest evicted).
    done: BTreeSet<u64>,
}

impl Naive {
    fn remember(&mut self, id: u64) {
        self.done.insert(id);
        if self.done.len() > 16_384 {
            self.done.pop_first();
        }
    }

    fn market_buy(&mut self, id: u64, qty: i64) -> Vec<NaiveFill> {
        let mut fills = Vec::new();
        let mut remaining = qty;
        for (&price, &displayed) in &self.asks {
            let used = self.consumed.get(&price).copied().unwrap_or(0);
            let take = (displayed - used).min(remaining);
            if take <= 0 {
                continue;
            }
            *self.consumed.entry(price).or_insert(0) += take;
            remaining -= take;
            let fee = fee(
                Price(price),
                Qty(take),
                0,
                FeeBp::from_units(TAKER).unwrap(),
            );
            fills.push(NaiveFill {
                id,
                price,
                qty: take,
                fee,
            });
            if remaining == 0 {
                break;
            }
        }
        self.remember(id);
        fills
    }

    /// A sell-aggressor trade against resting bids, same rules as the paper venue.
    fn trade(&mut self, price: i64, qty: i64) -> Vec<NaiveFill> {
        let mut fills = Vec::new();
        let mut budget = qty;
        let mut emptied = Vec::new();
        let mut finished = Vec::new();
        for (&level, orders) in self.bids.range_mut(price..).rev() {
            for o in orders.iter_mut() {
                let fill = if level > price {
                    o.ahead = 0;
                    o.leaves.min(budget)
                } else {
                    let fill = (budget - o.ahead).clamp(0, o.leaves);
                    o.ahead = (o.ahead - qty).max(0);
                    fill
                };
                budget -= fill;
                if fill > 0 {
                    o.leaves -= fill;
                    let fee = fee(
                        Price(level),
                        Qty(fill),
                        0,
                        FeeBp::from_units(MAKER).unwrap(),
                    );
                    fills.push(NaiveFill {
                        id: o.id,
                        price: level,
                        qty: fill,
                        fee,
                    });
                }
            }
            for o in orders.iter().filter(|o| o.leaves == 0) {
                finished.push(o.id);
            }
            orders.retain(|o| o.leaves > 0);
            if orders.is_empty() {
                emptied.push(level);
            }
        }
        for level in emptied {
            self.bids.remove(&level);
        }
        for id in finished {
            self.remember(id);
        }
        fills
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

fn market_walk(clock: &Clock, levels: i64) -> (Histogram<u64>, Histogram<u64>) {
    let mut book = VecBook::new();
    let mut naive = Naive::default();
    for i in 0..levels + 5 {
        book.set(Side::Sell, Price(10_000 + i), Qty(LEVEL_QTY));
        naive.asks.insert(10_000 + i, LEVEL_QTY);
    }
    book.set(Side::Buy, Price(9_999), Qty(LEVEL_QTY));
    let books = [book];
    let mut venue = venue();
    let (mut ours, mut base) = (histogram(), histogram());
    let mut now = 1_000_000u64;
    let mut sink = 0i64;
    for i in 0..ITERS + WARMUP {
        now += 1_000;
        let id = i as u64 + 1;
        let o = order(id, Side::Buy, OrderType::Market, 0, levels * LEVEL_QTY);
        let start = clock.raw();
        venue.submit(o, UnixNanos(now), &books[..]);
        venue.drain(|e| {
            if let VenueEventKind::Fill { qty, .. } = e.kind {
                sink += qty.0;
            }
        });
        let end = clock.raw();
        // The market "refills" what we took: forget the consumed liquidity (untimed).
        venue.on_book_clear(I, UnixNanos(now), &books[..]);
        if i >= WARMUP {
            ours.record(clock.delta_as_nanos(start, end).max(1))
                .unwrap();
        }
    }
    for i in 0..ITERS + WARMUP {
        let start = clock.raw();
        let fills = naive.market_buy(i as u64 + 1, levels * LEVEL_QTY);
        sink += fills
            .iter()
            .map(|f| f.qty + f.fee + f.price + f.id as i64)
            .sum::<i64>();
        drop(black_box(fills));
        let end = clock.raw();
        naive.consumed.clear();
        if i >= WARMUP {
            base.record(clock.delta_as_nanos(start, end).max(1))
                .unwrap();
        }
    }
    black_box(sink);
    (ours, base)
}

/// `resting` bids, four per level, on deep levels. `through`: the trade prints one tick below
/// the best level, filling its four orders (re-placed untimed); otherwise at the best level,
/// moving the four orders' queue estimates without filling.
fn trade_against(clock: &Clock, resting: i64, through: bool) -> (Histogram<u64>, Histogram<u64>) {
    let best = 9_000;
    let mut book = VecBook::new();
    book.set(Side::Sell, Price(best + 10), Qty(LEVEL_QTY));
    for level in 0..resting / 4 + 1 {
        book.set(Side::Buy, Price(best - level), Qty(DEEP));
    }
    let books = [book];
    let mut venue = venue();
    let mut naive = Naive::default();
    let mut next_id = 1u64;
    let mut now = 1_000_000u64;
    for i in 0..resting {
        let price = best - i / 4;
        venue.submit(
            order(next_id, Side::Buy, OrderType::Limit, price, 1),
            UnixNanos(now),
            &books[..],
        );
        let o = NaiveOrder {
            id: next_id,
            leaves: 1,
            ahead: DEEP,
        };
        naive.bids.entry(price).or_default().push(o);
        next_id += 1;
    }
    venue.drain(|_| {});
    let trade_price = if through { best - 1 } else { best };
    let trade_qty = 4;
    let (mut ours, mut base) = (histogram(), histogram());
    let mut sink = 0i64;
    for i in 0..ITERS + WARMUP {
        now += 1_000;
        let start = clock.raw();
        venue.on_trade(
            I,
            Price(trade_price),
            Qty(trade_qty),
            Some(Side::Sell),
            UnixNanos(now),
            &books[..],
        );
        venue.drain(|e| {
            if let VenueEventKind::Fill { qty, .. } = e.kind {
                sink += qty.0;
            }
        });
        let end = clock.raw();
        if through {
            for _ in 0..4 {
                let o = order(next_id, Side::Buy, OrderType::Limit, best, 1);
                venue.submit(o, UnixNanos(now), &books[..]);
                next_id += 1;
            }
            venue.drain(|_| {});
        }
        if i >= WARMUP {
            ours.record(clock.delta_as_nanos(start, end).max(1))
                .unwrap();
        }
    }
    for i in 0..ITERS + WARMUP {
        let start = clock.raw();
        let fills = naive.trade(trade_price, trade_qty);
        sink += fills
            .iter()
            .map(|f| f.qty + f.fee + f.price + f.id as i64)
            .sum::<i64>();
        drop(black_box(fills));
        let end = clock.raw();
        if through {
            let level = naive.bids.entry(best).or_default();
            for _ in 0..4 {
                level.push(NaiveOrder {
                    id: next_id,
                    leaves: 1,
                    ahead: 0,
                });
                next_id += 1;
            }
        }
        if i >= WARMUP {
            base.record(clock.delta_as_nanos(start, end).max(1))
                .unwrap();
        }
    }
    black_box(sink);
    assert_eq!(venue.open_orders(), resting as usize);
    (ours, base)
}

fn main() {
    let clock = Clock::new();
    let mut overhead = histogram();
    for _ in 0..100_000 {
        let start = clock.raw();
        let end = clock.raw();
        overhead
            .record(clock.delta_as_nanos(start, end).max(1))
            .unwrap();
    }
    println!(
        "quanta clock overhead (empty start/stop): p50 {} ns, p99 {} ns (included below)",
        overhead.value_at_quantile(0.5),
        overhead.value_at_quantile(0.99)
    );
    println!("{ITERS} timed operations per case after {WARMUP} warm-up; submit/trade + drain");
    for levels in [1, 5, 20] {
        let (ours, naive) = market_walk(&clock, levels);
        report(
            &format!("market order walking {levels} level(s)"),
            &ours,
            &naive,
        );
    }
    for resting in [16, 256, 4_096] {
        let (ours, naive) = trade_against(&clock, resting, false);
        report(&format!("trade at best, {resting} resting"), &ours, &naive);
        let (ours, naive) = trade_against(&clock, resting, true);
        report(
            &format!("trade through, 4 fills, {resting} resting"),
            &ours,
            &naive,
        );
    }
}
