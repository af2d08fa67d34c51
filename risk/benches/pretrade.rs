//! Pre-trade check and fill processing latency.
//!
//! A cross-margin account with every check enabled (size, notional per instrument and per
//! account, price band, self-trade, open orders, worst-case position, gross, net,
//! concentration, correlated exposure, margin, throttle), positions on 4 of 10 instruments
//! and 50 open orders. Each call is timed with `quanta::Clock::raw` (the measured cost of a
//! back-to-back pair of reads is subtracted, and printed) into an HDR histogram; a batch
//! is then timed as a whole for throughput. Beside it runs a naive implementation of the
//! same checks (string-keyed `HashMap`s, `f64` math, scanning the open orders), so each
//! figure comes with a ratio.
//!
//! `CARGO_TARGET_DIR=/work/target-risk cargo bench -p aaiti-risk --bench pretrade`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::collections::HashMap;
use std::hint::black_box;

use aaiti_model::{
    AccountId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderFlags, OrderId, OrderType,
    Price, Qty, Side, UnixNanos,
};
use aaiti_risk::config::{
    AccountConfig, AccountLimitsConfig, InstrumentLimitsConfig, RiskConfigFile,
};
use aaiti_risk::monitor::correlation::CorrelationMatrix;
use aaiti_risk::{AccountType, Fill, MarginMode, NewOrder, RiskEngine, compile};
use hdrhistogram::Histogram;
use quanta::Clock;

const SYMBOLS: [&str; 10] = [
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT",
    "LINKUSDT", "DOTUSDT",
];
/// Binance-like scales: price and quantity decimal places per instrument.
const PRICE_PLACES: [u8; 10] = [2, 2, 2, 2, 4, 4, 5, 2, 3, 3];
const QTY_PLACES: [u8; 10] = [5, 4, 3, 3, 0, 1, 0, 2, 2, 2];
/// Mark prices and a typical order size (mantissas at those scales).
const MARKS: [i64; 10] = [
    6_000_000, 300_000, 15_000, 60_000, 6_000, 4_500, 15_000, 3_500, 15_000, 7_000,
];
const SIZES: [i64; 10] = [
    2_000, 4_000, 8_000, 2_000, 2_000, 30_000, 9_000, 3_000, 9_000, 18_000,
];
const T0: u64 = 1_700_000_000_000_000_000;
const ORDERS: usize = 4_096;

fn registry() -> InstrumentRegistry {
    let unit = |places: u8| {
        if places == 0 {
            "1".to_owned()
        } else {
            format!("0.{}1", "0".repeat(usize::from(places) - 1))
        }
    };
    let specs: Vec<_> = SYMBOLS
        .iter()
        .enumerate()
        .map(|(i, symbol)| InstrumentSpec {
            venue: "binance".into(),
            symbol: (*symbol).into(),
            base: symbol.trim_end_matches("USDT").into(),
            quote: "USDT".into(),
            price_scale: PRICE_PLACES[i],
            qty_scale: QTY_PLACES[i],
            tick_size: unit(PRICE_PLACES[i]),
            lot_size: unit(QTY_PLACES[i]),
            min_notional: "5".into(),
        })
        .collect();
    InstrumentRegistry::from_specs(&specs).unwrap()
}

fn config(usdt_rate: &str) -> RiskConfigFile {
    let mut file = RiskConfigFile::default();
    file.risk.rates.insert("USDT".into(), usdt_rate.into());
    file.risk.account_defaults = AccountLimitsConfig {
        max_order_notional: Some("200000".into()),
        max_gross_exposure: Some("5000000".into()),
        max_net_exposure: Some("3000000".into()),
        max_open_orders: Some(500),
        orders_per_minute: Some(1000),
        order_burst: Some(100),
        max_drawdown_bps: Some(1000),
        max_concentration_bps: Some(20_000),
        max_correlated_exposure: Some("4000000".into()),
        correlation_threshold_bps: Some(7000),
        max_leverage: Some("5".into()),
        margin_call_action: None,
    };
    file.risk.instrument_defaults = InstrumentLimitsConfig {
        max_order_qty: Some("1000000".into()),
        max_order_notional: Some("250000".into()),
        price_band_bps: Some(500),
        max_position: Some("5000000".into()),
        max_open_orders: Some(100),
        max_leverage: Some("10".into()),
        ..Default::default()
    };
    file.accounts = vec![AccountConfig {
        id: None,
        name: "desk".into(),
        account_type: AccountType::Live,
        margin_mode: MarginMode::Cross,
        balances: [("USDT".to_owned(), "1000000".to_owned())].into(),
        trading_state: Default::default(),
        limits: AccountLimitsConfig::default(),
        instruments: Vec::new(),
    }];
    file
}

/// Tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The account state: positions on 4 instruments, 50 resting orders (buys 1-3 % below
/// the mark, sells 1-3 % above), marks and correlations.
fn engine(usdt_rate: &str) -> RiskEngine {
    let file = config(usdt_rate);
    let mut risk =
        RiskEngine::new(compile(&file.risk, &file.accounts, &registry()).unwrap()).unwrap();
    let account = AccountId(0);
    let mut breaches = Vec::new();
    for (i, mark) in MARKS.iter().enumerate() {
        risk.on_mark(
            InstrumentId(i as u32),
            Price(*mark),
            UnixNanos(T0),
            &mut breaches,
        )
        .unwrap();
    }
    for (i, side) in [
        (0, Side::Buy),
        (1, Side::Sell),
        (2, Side::Buy),
        (4, Side::Buy),
    ] {
        let fill = Fill {
            account,
            instrument: InstrumentId(i),
            order_id: OrderId(0),
            side,
            price: Price(MARKS[i as usize]),
            qty: Qty(SIZES[i as usize] * 10),
            fee: 0,
            ts: UnixNanos(T0),
        };
        risk.on_fill(&fill, &mut breaches).unwrap();
    }
    let mut rng = Rng(7);
    for k in 0..50u64 {
        let i = (k % 10) as usize;
        let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
        let off = 100 + rng.below(200) as i64; // bps
        let price = match side {
            Side::Buy => MARKS[i] * (10_000 - off) / 10_000,
            Side::Sell => MARKS[i] * (10_000 + off) / 10_000,
        };
        risk.on_order_accepted(
            account,
            InstrumentId(i as u32),
            OrderId(k + 1),
            side,
            Price(price.max(1)),
            Qty(SIZES[i]),
        )
        .unwrap();
    }
    let mut rho = CorrelationMatrix::identity(10);
    for (a, b, r) in [
        (0, 1, 8_500),
        (0, 2, 7_800),
        (1, 2, 8_000),
        (0, 3, 6_000),
        (7, 8, 7_500),
    ] {
        rho.set_rho_bp(a, b, r);
    }
    risk.set_correlations(rho);
    assert!(breaches.is_empty());
    risk.audit().unwrap();
    risk
}

/// Orders inside every limit: within 0.5 % of the mark and not crossing the account's own
/// resting orders (which rest at least 1 % away).
fn orders() -> Vec<NewOrder> {
    let mut rng = Rng(42);
    (0..ORDERS)
        .map(|k| {
            let i = rng.below(10) as usize;
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let off = rng.below(50) as i64;
            let price = match side {
                Side::Buy => MARKS[i] * (10_000 - off) / 10_000,
                Side::Sell => MARKS[i] * (10_000 + off) / 10_000,
            };
            NewOrder {
                account: AccountId(0),
                instrument: InstrumentId(i as u32),
                order_id: OrderId(1_000 + k as u64),
                side,
                order_type: OrderType::Limit,
                price: Price(price.max(1)),
                qty: Qty(SIZES[i] * (1 + rng.below(3) as i64)),
                flags: OrderFlags::NONE,
                reference_price: Price(MARKS[i]),
                liquidation: false,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The naive peer: same checks, string keys, f64, scans.
// ---------------------------------------------------------------------------------------

struct NaiveOrder {
    account: String,
    symbol: String,
    buy: bool,
    price: f64,
    qty: f64,
    reference: f64,
}

struct NaiveResting {
    symbol: String,
    buy: bool,
    price: f64,
    qty: f64,
}

struct NaiveAccount {
    balance: f64,
    positions: HashMap<String, (f64, f64)>, // qty, avg entry
    open: Vec<NaiveResting>,
    limits: HashMap<String, f64>,
    tokens: f64,
    last_refill_ns: u64,
}

struct Naive {
    accounts: HashMap<String, NaiveAccount>,
    marks: HashMap<String, f64>,
    instrument_limits: HashMap<String, HashMap<String, f64>>,
    correlations: HashMap<(String, String), f64>,
}

impl Naive {
    fn new() -> Self {
        let mut limits = HashMap::new();
        for (key, value) in [
            ("max_order_notional", 200_000.0),
            ("max_gross", 5_000_000.0),
            ("max_net", 3_000_000.0),
            ("max_open_orders", 500.0),
            ("orders_per_minute", 1000.0),
            ("concentration", 2.0),
            ("correlated", 4_000_000.0),
            ("threshold", 0.7),
            ("leverage", 5.0),
        ] {
            limits.insert(key.to_owned(), value);
        }
        let mut instrument_limits = HashMap::new();
        let mut marks = HashMap::new();
        for (i, symbol) in SYMBOLS.iter().enumerate() {
            let mut l = HashMap::new();
            for (key, value) in [
                ("max_qty", 1_000_000.0),
                ("max_notional", 250_000.0),
                ("band", 0.05),
                ("max_position", 5_000_000.0),
                ("max_open", 100.0),
            ] {
                l.insert(key.to_owned(), value);
            }
            instrument_limits.insert((*symbol).to_owned(), l);
            marks.insert((*symbol).to_owned(), px(i, MARKS[i]));
        }
        let mut account = NaiveAccount {
            balance: 1_000_000.0,
            positions: HashMap::new(),
            open: Vec::new(),
            limits,
            tokens: 100.0,
            last_refill_ns: 0,
        };
        for (i, sign) in [(0usize, 1.0), (1, -1.0), (2, 1.0), (4, 1.0)] {
            account.positions.insert(
                SYMBOLS[i].to_owned(),
                (sign * qty(i, SIZES[i]) * 10.0, px(i, MARKS[i])),
            );
        }
        let mut rng = Rng(7);
        for k in 0..50u64 {
            let i = (k % 10) as usize;
            let buy = k % 2 == 0;
            let off = (100 + rng.below(200)) as f64 / 10_000.0;
            let mark = px(i, MARKS[i]);
            account.open.push(NaiveResting {
                symbol: SYMBOLS[i].to_owned(),
                buy,
                price: if buy {
                    mark * (1.0 - off)
                } else {
                    mark * (1.0 + off)
                },
                qty: qty(i, SIZES[i]),
            });
        }
        let mut correlations = HashMap::new();
        for (a, b, r) in [
            (0, 1, 0.85),
            (0, 2, 0.78),
            (1, 2, 0.8),
            (0, 3, 0.6),
            (7, 8, 0.75),
        ] {
            correlations.insert((SYMBOLS[a].to_owned(), SYMBOLS[b].to_owned()), r);
            correlations.insert((SYMBOLS[b].to_owned(), SYMBOLS[a].to_owned()), r);
        }
        let mut accounts = HashMap::new();
        accounts.insert("desk".to_owned(), account);
        Self {
            accounts,
            marks,
            instrument_limits,
            correlations,
        }
    }

    /// The same checks; `Err` names the failed one.
    fn check(&mut self, o: &NaiveOrder, now_ns: u64) -> Result<(), &'static str> {
        let account = self.accounts.get_mut(&o.account).ok_or("account")?;
        let il = self.instrument_limits.get(&o.symbol).ok_or("instrument")?;
        let lim = |key: &str| account.limits.get(key).copied().unwrap_or(f64::INFINITY);
        if o.qty <= 0.0 || o.price <= 0.0 {
            return Err("input");
        }
        // Throttle: token bucket in f64.
        let elapsed_s = now_ns.saturating_sub(account.last_refill_ns) as f64 / 1e9;
        let tokens = (account.tokens + elapsed_s * lim("orders_per_minute") / 60.0).min(100.0);
        if tokens < 1.0 {
            return Err("rate");
        }
        if o.qty > il["max_qty"] {
            return Err("qty");
        }
        let notional = o.price * o.qty;
        if notional > il["max_notional"] || notional > lim("max_order_notional") {
            return Err("notional");
        }
        if (o.price - o.reference).abs() > il["band"] * o.reference {
            return Err("band");
        }
        let mut open_here = 0.0;
        let (mut open_buy, mut open_sell) = (0.0, 0.0);
        for r in &account.open {
            if r.symbol == o.symbol {
                open_here += 1.0;
                if r.buy {
                    open_buy += r.qty;
                    if !o.buy && o.price <= r.price {
                        return Err("self trade");
                    }
                } else {
                    open_sell += r.qty;
                    if o.buy && o.price >= r.price {
                        return Err("self trade");
                    }
                }
            }
        }
        if account.open.len() as f64 >= lim("max_open_orders") || open_here >= il["max_open"] {
            return Err("open orders");
        }
        let pos = account.positions.get(&o.symbol).map_or(0.0, |p| p.0);
        let worst_qty = if o.buy {
            pos + open_buy + o.qty
        } else {
            open_sell + o.qty - pos
        };
        if worst_qty > il["max_position"] {
            return Err("position");
        }
        // Exposures: every instrument's worst case at its mark (open orders scanned again).
        let mut gross = 0.0;
        let mut net_long = 0.0;
        let mut net_short = 0.0;
        let mut correlated = 0.0;
        let mut upnl = 0.0;
        let mut this_worst = 0.0;
        for symbol in SYMBOLS {
            let mark = self.marks[symbol];
            let (q, avg) = account.positions.get(symbol).copied().unwrap_or((0.0, 0.0));
            upnl += q * (mark - avg);
            let (mut b, mut s) = (0.0, 0.0);
            for r in &account.open {
                if r.symbol == symbol {
                    if r.buy { b += r.qty } else { s += r.qty }
                }
            }
            if symbol == o.symbol {
                if o.buy { b += o.qty } else { s += o.qty }
            }
            let long = (q + b) * mark;
            let short = (q - s) * mark;
            let worst = long.abs().max(short.abs());
            gross += worst;
            net_long += long;
            net_short += short;
            if symbol == o.symbol {
                this_worst = worst;
                correlated += worst;
            } else if self
                .correlations
                .get(&(o.symbol.clone(), symbol.to_owned()))
                .is_some_and(|r| *r >= lim("threshold"))
            {
                correlated += worst;
            }
        }
        if gross > lim("max_gross") {
            return Err("gross");
        }
        if net_long > lim("max_net") || -net_short > lim("max_net") {
            return Err("net");
        }
        let equity = account.balance + upnl;
        if this_worst > lim("concentration") * equity {
            return Err("concentration");
        }
        if correlated > lim("correlated") {
            return Err("correlated");
        }
        if gross / lim("leverage") > equity {
            return Err("margin");
        }
        account.tokens = tokens - 1.0;
        account.last_refill_ns = now_ns;
        Ok(())
    }
}

/// A price mantissa as `f64`.
fn px(i: usize, mantissa: i64) -> f64 {
    mantissa as f64 / 10f64.powi(i32::from(PRICE_PLACES[i]))
}

/// A quantity mantissa as `f64`.
fn qty(i: usize, mantissa: i64) -> f64 {
    mantissa as f64 / 10f64.powi(i32::from(QTY_PLACES[i]))
}

fn naive_orders(orders: &[NewOrder]) -> Vec<NaiveOrder> {
    orders
        .iter()
        .map(|o| NaiveOrder {
            account: "desk".into(),
            symbol: SYMBOLS[o.instrument.index()].into(),
            buy: o.side == Side::Buy,
            price: px(o.instrument.index(), o.price.0),
            qty: qty(o.instrument.index(), o.qty.0),
            reference: px(o.instrument.index(), o.reference_price.0),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

/// Median cost of two back-to-back `raw()` reads, in ns.
fn clock_overhead(clock: &Clock) -> u64 {
    let mut samples: Vec<u64> = (0..100_000)
        .map(|_| {
            let start = clock.raw();
            let end = clock.raw();
            clock.delta_as_nanos(start, end)
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

struct Stats {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    batch_ns: f64,
}

fn measure(clock: &Clock, overhead: u64, iterations: usize, mut call: impl FnMut(usize)) -> Stats {
    for k in 0..iterations / 10 {
        call(k);
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    for k in 0..iterations {
        let start = clock.raw();
        call(k);
        let end = clock.raw();
        let ns = clock
            .delta_as_nanos(start, end)
            .saturating_sub(overhead)
            .max(1);
        histogram.saturating_record(ns);
    }
    let start = clock.raw();
    for k in 0..iterations {
        call(k);
    }
    let end = clock.raw();
    Stats {
        p50: histogram.value_at_quantile(0.50),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
        batch_ns: clock.delta_as_nanos(start, end) as f64 / iterations as f64,
    }
}

fn print(name: &str, s: &Stats) {
    println!(
        "{name:<34} p50 {:>6} ns  p99 {:>6} ns  p99.9 {:>7} ns  max {:>8} ns | batch {:>8.1} ns/op = {:>6.2} M ops/s",
        s.p50,
        s.p99,
        s.p999,
        s.max,
        s.batch_ns,
        1_000.0 / s.batch_ns
    );
}

fn main() {
    let clock = Clock::new();
    let overhead = clock_overhead(&clock);
    println!("clock: quanta raw() pair overhead {overhead} ns (subtracted from each sample)");
    println!("note: shared 2-core machine; figures are noisy, compare the ratios");

    let iterations = 1_000_000;
    let orders = orders();
    let mut risk = engine("1");
    let mut outcomes = std::collections::BTreeMap::new();
    for o in &orders {
        let outcome = match risk.would_accept(o, UnixNanos(T0)) {
            Ok(()) => "accepted",
            Err(reject) => reject.reason.name(),
        };
        *outcomes.entry(outcome).or_insert(0usize) += 1;
    }
    println!("state: 4 positions, 50 open orders, 10 instruments; test orders: {outcomes:?}");
    // Engine time advances 61 ms per order: just under the 1000/min throttle, so every
    // call runs the whole check and takes a token.
    let mut now = T0;
    let ours = measure(&clock, overhead, iterations, |k| {
        now += 61_000_000;
        let order = &orders[k % ORDERS];
        black_box(risk.check_new_order(black_box(order), UnixNanos(now))).ok();
    });
    print("check_new_order (aaiti-risk)", &ours);
    // A USDT rate other than 1 turns the valuation into a multiply-divide (i128 division).
    let mut risk_rate = engine("0.9998");
    let mut now = T0;
    let with_rate = measure(&clock, overhead, iterations, |k| {
        now += 61_000_000;
        let order = &orders[k % ORDERS];
        black_box(risk_rate.check_new_order(black_box(order), UnixNanos(now))).ok();
    });
    print("check_new_order (USDT rate 0.9998)", &with_rate);

    let mut naive = Naive::new();
    let naive_orders = naive_orders(&orders);
    let accepted_naive = naive_orders
        .iter()
        .take(1_000)
        .enumerate()
        .filter(|(k, o)| naive.check(o, T0 + *k as u64 * 61_000_000).is_ok())
        .count();
    println!("naive peer: {accepted_naive}/1000 test orders pass");
    let mut now = T0 + 10_000 * 61_000_000;
    let theirs = measure(&clock, overhead, iterations / 4, |k| {
        now += 61_000_000;
        black_box(naive.check(black_box(&naive_orders[k % ORDERS]), now)).ok();
    });
    print("check (naive: HashMap<String>, f64)", &theirs);
    println!(
        "ratio naive / aaiti-risk: p50 {:.1}x  p99 {:.1}x  batch {:.1}x",
        theirs.p50 as f64 / ours.p50 as f64,
        theirs.p99 as f64 / ours.p99 as f64,
        theirs.batch_ns / ours.batch_ns
    );

    // Fills: alternating buys and sells on an instrument the account holds, untracked.
    let mut risk = engine("1");
    let mut breaches = Vec::with_capacity(16);
    let mut rng = Rng(99);
    let fills: Vec<Fill> = (0..ORDERS)
        .map(|k| {
            let i = [0usize, 1, 2, 4][k % 4];
            Fill {
                account: AccountId(0),
                instrument: InstrumentId(i as u32),
                order_id: OrderId(0),
                side: if (k / 4) % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
                price: Price(MARKS[i] + rng.below(21) as i64 - 10),
                qty: Qty(SIZES[i]),
                fee: 1,
                ts: UnixNanos(T0 + k as u64),
            }
        })
        .collect();
    let fill_stats = measure(&clock, overhead, iterations, |k| {
        breaches.clear();
        black_box(risk.on_fill(black_box(&fills[k % ORDERS]), &mut breaches)).ok();
    });
    print("on_fill (aaiti-risk)", &fill_stats);
    let mut price_step = 0i64;
    let mark_stats = measure(&clock, overhead, iterations, |k| {
        breaches.clear();
        price_step = (price_step + 7) % 200;
        let i = k % 10;
        black_box(risk.on_mark(
            InstrumentId(i as u32),
            Price(MARKS[i] * (10_000 + price_step - 100) / 10_000),
            UnixNanos(T0),
            &mut breaches,
        ))
        .ok();
    });
    print("on_mark (aaiti-risk, 1 holder)", &mark_stats);
    risk.audit().unwrap();
}
