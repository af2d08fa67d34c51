//! Property tests: random order / fill / price sequences.
//!
//! * accepted orders never take a position beyond its limit, whatever fills;
//! * realized + unrealized P&L equals the mark-to-market of the fills (cash flows plus the
//!   position at the mark), and balances and equity move by exactly that minus fees;
//! * the incrementally maintained margin and exposure figures equal a recomputation from
//!   scratch, and `used + free = collateral`, `equity = Σ assets`;
//! * the same inputs give the same outputs, also across a snapshot and restore.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use aaiti_model::{
    AccountId, InstrumentId, OrderFlags, OrderId, OrderType, Price, Qty, Side, UnixNanos,
};
use aaiti_risk::config::InstrumentLimitsConfig;
use aaiti_risk::{MarginMode, RiskEngine};
use proptest::prelude::*;
use support::*;

const ACCOUNTS: [AccountId; 3] = [CASH, CROSS, ISO];
const INSTRUMENTS: [InstrumentId; 3] = [BTC, ETH, BTCEUR];
/// Reference prices (price scale 2 for all three).
const BASE: [i64; 3] = [6_000_000, 300_000, 5_500_000];
/// One unit of base asset in qty mantissas (qty scales 5, 4, 8).
const UNIT: [i64; 3] = [100_000, 10_000, 100_000_000];
/// `10^qty_places`: fee (price scale) to raw.
const FEE_TO_RAW: [i128; 3] = [100_000, 10_000, 100_000_000];

#[derive(Clone, Debug)]
enum Op {
    /// A new order checked then, if accepted, tracked.
    New {
        a: usize,
        i: usize,
        buy: bool,
        bps: i64,
        size: i64,
        reduce_only: bool,
        market: bool,
    },
    /// A (partial) fill of one of the account's open orders.
    Fill {
        a: usize,
        pick: usize,
        pct: i64,
        improve: i64,
        fee: i64,
    },
    /// A cancel.
    Cancel { a: usize, pick: usize },
    /// A partial cancel.
    Reduce { a: usize, pick: usize, pct: i64 },
    /// A new mark.
    Mark { i: usize, bps: i64 },
    /// A fill of no tracked order (only in the P&L property).
    External {
        a: usize,
        i: usize,
        buy: bool,
        bps: i64,
        size: i64,
        fee: i64,
    },
}

fn tracked_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, any::<bool>(), -700..700i64, 1..=150_000i64, prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(a, i, buy, bps, size, reduce_only, market)| Op::New { a, i, buy, bps, size, reduce_only, market }),
        3 => (0..3usize, any::<usize>(), 1..=100i64, 0..50i64, -100..1_000i64)
            .prop_map(|(a, pick, pct, improve, fee)| Op::Fill { a, pick, pct, improve, fee }),
        1 => (0..3usize, any::<usize>()).prop_map(|(a, pick)| Op::Cancel { a, pick }),
        1 => (0..3usize, any::<usize>(), 0..100i64).prop_map(|(a, pick, pct)| Op::Reduce { a, pick, pct }),
        2 => (0..3usize, -800..800i64).prop_map(|(i, bps)| Op::Mark { i, bps }),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => tracked_op(),
        3 => (0..3usize, 0..3usize, any::<bool>(), -900..900i64, 1..=200_000i64, -100..2_000i64)
            .prop_map(|(a, i, buy, bps, size, fee)| Op::External { a, i, buy, bps, size, fee }),
    ]
}

fn qty(i: usize, size: i64) -> i64 {
    // `size` is in 1e-5 base units.
    (i128::from(UNIT[i]) * i128::from(size) / 100_000).max(1) as i64
}

fn price(i: usize, bps: i64) -> i64 {
    BASE[i] * (10_000 + bps) / 10_000
}

/// Applies `op`; returns a text of every outcome (for the determinism property).
fn apply(
    risk: &mut RiskEngine,
    op: &Op,
    step: u64,
    marks: &mut [i64; 3],
    next_id: &mut u64,
) -> String {
    let now = UnixNanos(T0.0 + step * 1_000_000);
    let mut breaches = Vec::new();
    let out = match *op {
        Op::New {
            a,
            i,
            buy,
            bps,
            size,
            reduce_only,
            market,
        } => {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut o = order(
                ACCOUNTS[a],
                INSTRUMENTS[i],
                side,
                price(i, bps),
                qty(i, size),
            );
            o.reference_price = Price(marks[i]);
            if reduce_only {
                o.flags = OrderFlags::REDUCE_ONLY;
            }
            if market {
                o.order_type = OrderType::Market;
            }
            let result = risk.check_new_order(&o, now);
            if result.is_ok() {
                *next_id += 1;
                risk.on_order_accepted(
                    o.account,
                    o.instrument,
                    OrderId(*next_id),
                    side,
                    o.price,
                    o.qty,
                )
                .unwrap();
            }
            format!("{result:?}")
        }
        Op::Fill {
            a,
            pick,
            pct,
            improve,
            fee,
        } => {
            let orders = risk.open_orders(ACCOUNTS[a]).unwrap();
            if orders.is_empty() {
                return String::new();
            }
            let o = orders[pick % orders.len()];
            let fill_qty = (o.leaves * pct / 100).max(1);
            let px = match o.side {
                Side::Buy => (o.price - improve).max(1),
                Side::Sell => o.price + improve,
            };
            let f = aaiti_risk::Fill {
                ts: now,
                ..fill(
                    ACCOUNTS[a],
                    InstrumentId(o.instrument),
                    o.order_id.0,
                    o.side,
                    px,
                    fill_qty,
                    fee,
                )
            };
            format!("{:?}", risk.on_fill(&f, &mut breaches))
        }
        Op::Cancel { a, pick } => {
            let orders = risk.open_orders(ACCOUNTS[a]).unwrap();
            if orders.is_empty() {
                return String::new();
            }
            let id = orders[pick % orders.len()].order_id;
            format!("{:?}", risk.on_order_done(ACCOUNTS[a], id))
        }
        Op::Reduce { a, pick, pct } => {
            let orders = risk.open_orders(ACCOUNTS[a]).unwrap();
            if orders.is_empty() {
                return String::new();
            }
            let o = orders[pick % orders.len()];
            format!(
                "{:?}",
                risk.on_order_reduced(ACCOUNTS[a], o.order_id, Qty(o.leaves * pct / 100))
            )
        }
        Op::Mark { i, bps } => {
            marks[i] = price(i, bps);
            format!(
                "{:?}",
                risk.on_mark(INSTRUMENTS[i], Price(marks[i]), now, &mut breaches)
            )
        }
        Op::External {
            a,
            i,
            buy,
            bps,
            size,
            fee,
        } => {
            let side = if buy { Side::Buy } else { Side::Sell };
            let f = aaiti_risk::Fill {
                ts: now,
                ..fill(
                    ACCOUNTS[a],
                    INSTRUMENTS[i],
                    0,
                    side,
                    price(i, bps),
                    qty(i, size),
                    fee,
                )
            };
            format!("{:?}", risk.on_fill(&f, &mut breaches))
        }
    };
    format!("{out} {breaches:?}")
}

/// An engine with position limits (1 BTC, 1 ETH, 1 BTC on BTC-EUR), a price band and
/// margin; other limits wide.
fn limited() -> RiskEngine {
    let mut file = loose();
    for (symbol, venue, limit) in [
        ("BTCUSDT", "binance", "1"),
        ("ETHUSDT", "binance", "1"),
        ("BTC-EUR", "coinbase", "1"),
    ] {
        file.risk.instruments.push(InstrumentLimitsConfig {
            venue: Some(venue.into()),
            symbol: Some(symbol.into()),
            max_position: Some(limit.into()),
            ..Default::default()
        });
    }
    file.risk.instrument_defaults.price_band_bps = Some(1_000);
    for account in &mut file.accounts {
        account.limits.max_leverage = Some("10".into());
        account.limits.max_open_orders = Some(20);
    }
    build(&file)
}

fn start(risk: &mut RiskEngine) -> [i64; 3] {
    for (i, instrument) in INSTRUMENTS.iter().enumerate() {
        risk.on_mark(*instrument, Price(BASE[i]), T0, &mut Vec::new())
            .unwrap();
    }
    BASE
}

fn check_figures(risk: &RiskEngine) -> Result<(), TestCaseError> {
    risk.audit().map_err(TestCaseError::fail)?;
    for (k, account) in ACCOUNTS.iter().enumerate() {
        let view = risk.account(*account).unwrap();
        let m = view.margin;
        prop_assert_eq!(m.free + m.initial_margin, m.collateral);
        match m.mode {
            MarginMode::Cross | MarginMode::Cash => prop_assert_eq!(m.collateral, m.equity),
            MarginMode::Isolated => prop_assert!(m.collateral <= m.equity),
        }
        prop_assert!(
            view.gross_exposure >= view.net_position.abs(),
            "account {}",
            k
        );
        prop_assert!(view.gross_exposure >= 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn accepted_orders_never_breach_the_position_limit(ops in prop::collection::vec(tracked_op(), 1..80)) {
        let mut risk = limited();
        let mut marks = start(&mut risk);
        let limits = [100_000i64, 10_000, 100_000_000];
        let mut next_id = 0;
        for (step, op) in ops.iter().enumerate() {
            apply(&mut risk, op, step as u64, &mut marks, &mut next_id);
            for account in ACCOUNTS {
                for (i, instrument) in INSTRUMENTS.iter().enumerate() {
                    let view = risk.position(account, *instrument).unwrap();
                    prop_assert!(view.position.qty.abs() <= limits[i], "{:?} {:?} after {:?}", account, view, op);
                    prop_assert!(view.position.qty >= 0 || account != CASH, "cash account short");
                    // The worst case of what is open stays within the limit too.
                    prop_assert!(view.position.qty + view.open_buy <= limits[i]);
                    prop_assert!(view.open_sell - view.position.qty <= limits[i]);
                }
            }
        }
        check_figures(&risk)?;
    }

    #[test]
    fn pnl_and_balances_add_up(ops in prop::collection::vec(any_op(), 1..80)) {
        let mut risk = build(&loose());
        let mut marks = start(&mut risk);
        let mut next_id = 0;
        // Per (account, instrument): Σ −side × price × qty (raw), Σ side × qty, Σ fee.
        let mut flows = [[0i128; 3]; 3];
        let mut qtys = [[0i64; 3]; 3];
        let mut fees = [[0i128; 3]; 3];
        for (step, op) in ops.iter().enumerate() {
            let fill = match *op {
                Op::External { a, i, buy, bps, size, fee } => Some((a, i, buy, price(i, bps), qty(i, size), fee)),
                Op::Fill { a, pick, pct, improve, fee } => {
                    let orders = risk.open_orders(ACCOUNTS[a]).unwrap();
                    (!orders.is_empty()).then(|| {
                        let o = orders[pick % orders.len()];
                        let i = INSTRUMENTS.iter().position(|x| x.0 == o.instrument).unwrap();
                        let buy = o.side == Side::Buy;
                        let px = if buy { (o.price - improve).max(1) } else { o.price + improve };
                        (a, i, buy, px, (o.leaves * pct / 100).max(1), fee)
                    })
                }
                _ => None,
            };
            let result = apply(&mut risk, op, step as u64, &mut marks, &mut next_id);
            if let Some((a, i, buy, px, q, fee)) = fill {
                prop_assert!(result.starts_with("Ok"), "{}", result);
                let sign: i128 = if buy { 1 } else { -1 };
                flows[a][i] -= sign * i128::from(px) * i128::from(q);
                qtys[a][i] += if buy { q } else { -q };
                fees[a][i] += i128::from(fee);
            }
        }
        let limits = risk.limits().clone();
        for (a, account) in ACCOUNTS.iter().enumerate() {
            let mode = limits.accounts[a].margin_mode;
            let mut money = vec![0i128; limits.assets.len()];
            let mut equity_money = vec![0i128; limits.assets.len()];
            for (i, instrument) in INSTRUMENTS.iter().enumerate() {
                let view = risk.position(*account, *instrument).unwrap();
                let p = view.position;
                prop_assert_eq!(p.qty, qtys[a][i]);
                prop_assert_eq!(p.fees, fees[a][i] * FEE_TO_RAW[i]);
                let mtm = flows[a][i] + i128::from(p.qty) * i128::from(view.mark);
                // realized + unrealized = mark-to-market of the fills.
                prop_assert_eq!(p.realized + view.unrealized, mtm);
                if p.qty == 0 {
                    prop_assert_eq!(p.cost, 0);
                    prop_assert_eq!(p.realized, flows[a][i]);
                }
                let inst = &limits.instruments[i];
                let quote = inst.quote as usize;
                let fee_money = inst.fee_to_money.apply(fees[a][i]);
                money[quote] += match mode {
                    MarginMode::Cash => inst.to_money.apply(flows[a][i]),
                    _ => inst.to_money.apply(p.realized),
                } - fee_money;
                equity_money[quote] += match mode {
                    MarginMode::Cash => inst.to_money.apply(i128::from(p.qty) * i128::from(view.mark)),
                    _ => inst.to_money.apply(view.unrealized),
                };
            }
            let mut equity = 0;
            for (k, asset) in limits.assets.iter().enumerate() {
                let opening = if asset.name == "USDT" { 1_000_000 * USD } else { 0 };
                let balance = risk.balance(*account, &asset.name).unwrap();
                prop_assert_eq!(balance, opening + money[k], "{} {}", a, asset.name);
                equity += asset.to_value.apply(balance + equity_money[k]);
            }
            prop_assert_eq!(risk.account(*account).unwrap().margin.equity, equity);
        }
        check_figures(&risk)?;
    }

    #[test]
    fn margin_figures_match_a_recomputation(ops in prop::collection::vec(any_op(), 1..60)) {
        let mut risk = limited();
        let mut marks = start(&mut risk);
        let mut next_id = 0;
        for (step, op) in ops.iter().enumerate() {
            apply(&mut risk, op, step as u64, &mut marks, &mut next_id);
            check_figures(&risk)?;
        }
    }

    #[test]
    fn replay_and_restore_are_deterministic(ops in prop::collection::vec(any_op(), 2..60), cut in 0usize..60) {
        let run = |ops: &[Op], risk: &mut RiskEngine, marks: &mut [i64; 3], next_id: &mut u64, offset: usize| {
            ops.iter()
                .enumerate()
                .map(|(k, op)| apply(risk, op, (offset + k) as u64, marks, next_id))
                .collect::<Vec<_>>()
        };
        let cut = cut % ops.len();
        let mut first = limited();
        let mut marks = start(&mut first);
        let mut id = 0;
        let all = run(&ops, &mut first, &mut marks, &mut id, 0);

        let mut second = limited();
        let mut marks2 = start(&mut second);
        let mut id2 = 0;
        let mut outputs = run(&ops[..cut], &mut second, &mut marks2, &mut id2, 0);
        let bytes = postcard::to_allocvec(&second).unwrap();
        let mut restored: RiskEngine = postcard::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&restored, &second);
        outputs.extend(run(&ops[cut..], &mut restored, &mut marks2, &mut id2, cut));
        prop_assert_eq!(outputs, all);
        prop_assert_eq!(restored, first);
    }
}

/// Any values at all, including unknown ids and extreme mantissas.
#[derive(Clone, Debug)]
enum Raw {
    Check {
        a: u32,
        i: u32,
        buy: bool,
        price: i64,
        qty: i64,
        reference: i64,
        flags: u8,
        market: bool,
        liquidation: bool,
    },
    Accept {
        a: u32,
        i: u32,
        id: u64,
        buy: bool,
        price: i64,
        qty: i64,
    },
    Reduce {
        a: u32,
        id: u64,
        qty: i64,
    },
    Fill {
        a: u32,
        i: u32,
        id: u64,
        buy: bool,
        price: i64,
        qty: i64,
        fee: i64,
    },
    Mark {
        i: u32,
        price: i64,
    },
}

fn wild() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => (i64::MAX / 4)..i64::MAX,
        1 => any::<i64>(),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => Just(0i64),
        1 => -1_000i64..1_000,
        1 => 1i64..10_000_000,
    ]
}

/// Mostly one account and instrument (so extreme orders, fills and marks meet), sometimes
/// unknown ids.
fn id() -> impl Strategy<Value = u32> {
    prop_oneof![8 => Just(1u32), 1 => 0..3u32, 1 => 0..6u32]
}

fn raw_op() -> impl Strategy<Value = Raw> {
    prop_oneof![
        (
            0..4u32,
            0..5u32,
            any::<bool>(),
            wild(),
            wild(),
            wild(),
            any::<u8>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(a, i, buy, price, qty, reference, flags, market, liquidation)| Raw::Check {
                    a,
                    i,
                    buy,
                    price,
                    qty,
                    reference,
                    flags,
                    market,
                    liquidation
                }
            ),
        (id(), id(), 0..6u64, any::<bool>(), wild(), wild()).prop_map(
            |(a, i, id, buy, price, qty)| Raw::Accept {
                a,
                i,
                id,
                buy,
                price,
                qty
            }
        ),
        (id(), 0..6u64, wild()).prop_map(|(a, id, qty)| Raw::Reduce { a, id, qty }),
        (
            0..4u32,
            0..5u32,
            0..6u64,
            any::<bool>(),
            wild(),
            wild(),
            wild()
        )
            .prop_map(|(a, i, id, buy, price, qty, fee)| Raw::Fill {
                a,
                i,
                id,
                buy,
                price,
                qty,
                fee
            }),
        (id(), wild()).prop_map(|(i, price)| Raw::Mark { i, price }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_never_panic_and_errors_change_nothing(ops in prop::collection::vec(raw_op(), 1..60), limits in any::<bool>()) {
        // With limits, extreme orders stop at the first limit; without, they reach every
        // computation.
        let mut risk = if limits { limited() } else { build(&loose()) };
        let mut breaches = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            let before = risk.clone();
            let now = UnixNanos(T0.0 + step as u64);
            let side = |buy: bool| if buy { Side::Buy } else { Side::Sell };
            let failed = match *op {
                Raw::Check { a, i, buy, price, qty, reference, flags, market, liquidation } => {
                    let o = aaiti_risk::NewOrder {
                        account: AccountId(a),
                        instrument: InstrumentId(i),
                        order_id: OrderId(0),
                        side: side(buy),
                        order_type: if market { OrderType::Market } else { OrderType::Limit },
                        price: Price(price),
                        qty: Qty(qty),
                        flags: OrderFlags(flags),
                        reference_price: Price(reference),
                        liquidation,
                    };
                    risk.check_new_order(&o, now).is_err()
                }
                Raw::Accept { a, i, id, buy, price, qty } => risk
                    .on_order_accepted(AccountId(a), InstrumentId(i), OrderId(id), side(buy), Price(price), Qty(qty))
                    .is_err(),
                Raw::Reduce { a, id, qty } => risk.on_order_reduced(AccountId(a), OrderId(id), Qty(qty)).is_err(),
                Raw::Fill { a, i, id, buy, price, qty, fee } => {
                    let f = aaiti_risk::Fill {
                        account: AccountId(a),
                        instrument: InstrumentId(i),
                        order_id: OrderId(id),
                        side: side(buy),
                        price: Price(price),
                        qty: Qty(qty),
                        fee,
                        ts: now,
                    };
                    risk.on_fill(&f, &mut breaches).is_err()
                }
                Raw::Mark { i, price } => risk.on_mark(InstrumentId(i), Price(price), now, &mut breaches).is_err(),
            };
            if failed {
                prop_assert_eq!(&risk, &before, "{:?}", op);
            }
        }
        let _ = risk.report(UnixNanos(T0.0));
        let bytes = postcard::to_allocvec(&risk).unwrap();
        let restored: RiskEngine = postcard::from_bytes(&bytes).unwrap();
        let _ = restored.audit();
    }
}
