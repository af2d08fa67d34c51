//! Positions, balances, P&L, open-order tracking, marks, drawdown and margin calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use aaiti_model::{
    AccountId, InstrumentId, OrderId, Price, Qty, RejectReason as R, RiskEventKind, Side, UnixNanos,
};
use aaiti_risk::engine::NS_PER_DAY;
use aaiti_risk::{
    BreachAction, FlattenOrder, MarginCallAction, RiskError, RiskReject, Scope, TradingState,
};
use support::*;

#[test]
fn margin_account_fills_increase_reduce_and_flip() {
    let mut risk = build(&loose());
    // Buy 1 @ 60000, fee 6.00 USDT (price scale).
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 600),
    );
    let p = risk.position(CROSS, BTC).unwrap().position;
    assert_eq!(
        (p.qty, p.cost, p.realized, p.fees),
        (ONE_BTC, 600_000_000_000, 0, 60_000_000)
    );
    assert_eq!(
        risk.balance(CROSS, "USDT"),
        Some(100_000_000_000_000 - 600_000_000)
    );

    // Buy 1 @ 62000: average 61000.
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_200_000, ONE_BTC, 0),
    );
    assert_eq!(
        risk.position(CROSS, BTC).unwrap().position.avg_entry(),
        6_100_000
    );

    // Sell 0.5 @ 63000, fee 3.15: realizes +1000.
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Sell, 6_300_000, 50_000, 315),
    );
    let p = risk.position(CROSS, BTC).unwrap().position;
    assert_eq!((p.qty, p.realized), (150_000, 1_000 * 10_000_000));
    assert_eq!(p.avg_entry(), 6_100_000);

    // Sell 2.5 @ 59000: closes 1.5 (−3000) and opens a 1 BTC short at 59000.
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Sell, 5_900_000, 250_000, 0),
    );
    let p = risk.position(CROSS, BTC).unwrap().position;
    assert_eq!((p.qty, p.cost), (-ONE_BTC, -590_000_000_000));
    assert_eq!(p.realized, -2_000 * 10_000_000);
    assert_eq!(p.fees, 915 * 100_000);

    // Marked at 58000 the short gains 1000.
    assert!(mark(&mut risk, BTC, 5_800_000).is_empty());
    let view = risk.position(CROSS, BTC).unwrap();
    assert_eq!(view.unrealized, 1_000 * 10_000_000);
    // Balance: 1e6 − 6 + 1000 − 3.15 − 3000; equity adds the unrealized 1000.
    assert_eq!(risk.balance(CROSS, "USDT"), Some(99_799_085_000_000));
    let account = risk.account(CROSS).unwrap();
    assert_eq!(account.margin.equity, 99_899_085_000_000);
    // equity − opening equity = realized + unrealized − fees.
    assert_eq!(
        account.margin.equity - 1_000_000 * USD,
        (-2_000 + 1_000) * USD - 915_000_000
    );
    assert_eq!(account.net_position, -58_000 * USD);
    risk.audit().unwrap();

    // Closing the short flattens everything.
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 5_800_000, ONE_BTC, 0),
    );
    let p = risk.position(CROSS, BTC).unwrap().position;
    assert_eq!((p.qty, p.cost, p.realized), (0, 0, -1_000 * 10_000_000));
    let account = risk.account(CROSS).unwrap();
    assert_eq!(account.gross_exposure, 0);
    assert_eq!(
        account.margin.equity,
        1_000_000 * USD - 1_000 * USD - 915_000_000
    );
    risk.audit().unwrap();
}

#[test]
fn cash_account_moves_notional_and_marks_inventory() {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CASH, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 600),
    );
    assert_eq!(
        risk.balance(CASH, "USDT"),
        Some((1_000_000 - 60_000) * USD - 600_000_000)
    );
    assert_eq!(
        risk.account(CASH).unwrap().margin.equity,
        1_000_000 * USD - 600_000_000
    );
    fill_quiet(
        &mut risk,
        fill(CASH, BTC, 0, Side::Sell, 6_500_000, 40_000, 0),
    );
    assert_eq!(
        risk.position(CASH, BTC).unwrap().position.realized,
        2_000 * 10_000_000
    );
    mark(&mut risk, BTC, 6_500_000);
    // 1e6 − 6 + realized 2000 + unrealized 0.6 × 5000.
    let equity = risk.account(CASH).unwrap().margin.equity;
    assert_eq!(equity, (1_000_000 + 2_000 + 3_000) * USD - 600_000_000);
    assert_eq!(risk.account(CASH).unwrap().margin.initial_margin, 0);
    risk.audit().unwrap();
}

#[test]
fn pnl_settles_in_the_quote_asset() {
    let mut risk = build(&loose());
    let one = 100_000_000; // BTC-EUR qty scale 8
    fill_quiet(
        &mut risk,
        fill(CROSS, BTCEUR, 0, Side::Buy, 5_000_000, one, 0),
    );
    fill_quiet(
        &mut risk,
        fill(CROSS, BTCEUR, 0, Side::Sell, 5_100_000, one, 0),
    );
    // EUR money has 10 places (2 + 8).
    assert_eq!(risk.balance(CROSS, "EUR"), Some(1_000 * 10_000_000_000));
    assert_eq!(risk.balance(CROSS, "USDT"), Some(1_000_000 * USD));
    assert_eq!(
        risk.account(CROSS).unwrap().margin.equity,
        (1_000_000 + 1_080) * USD
    );
    risk.audit().unwrap();
}

#[test]
fn open_order_lifecycle() {
    let mut risk = build(&loose());
    let accept = |risk: &mut aaiti_risk::RiskEngine, id, side, price, qty| {
        risk.on_order_accepted(CASH, BTC, OrderId(id), side, Price(price), Qty(qty))
    };
    accept(&mut risk, 1, Side::Buy, 6_000_000, ONE_BTC).unwrap();
    accept(&mut risk, 2, Side::Buy, 5_900_000, ONE_BTC).unwrap();
    let view = risk.position(CASH, BTC).unwrap();
    assert_eq!((view.open_buy, view.open_orders), (2 * ONE_BTC, 2));
    assert_eq!(risk.report(T0).accounts[0].balances[0].reserved, "119000");

    let before = risk.clone();
    assert_eq!(
        accept(&mut risk, 1, Side::Sell, 6_100_000, 1),
        Err(RiskError::DuplicateOrder {
            account: CASH,
            order_id: OrderId(1)
        })
    );
    assert!(accept(&mut risk, 0, Side::Sell, 6_100_000, 1).is_err());
    assert_eq!(
        accept(&mut risk, 3, Side::Sell, 6_100_000, 0),
        Err(RiskError::InvalidQuantity(0))
    );
    assert_eq!(
        accept(&mut risk, 3, Side::Sell, -1, 1),
        Err(RiskError::InvalidPrice(-1))
    );
    assert_eq!(
        risk.on_order_accepted(AccountId(7), BTC, OrderId(3), Side::Buy, Price(1), Qty(1)),
        Err(RiskError::UnknownAccount(AccountId(7)))
    );
    assert_eq!(
        risk.on_order_accepted(
            CASH,
            InstrumentId(9),
            OrderId(3),
            Side::Buy,
            Price(1),
            Qty(1)
        ),
        Err(RiskError::UnknownInstrument(InstrumentId(9)))
    );
    assert_eq!(
        risk.on_order_reduced(CASH, OrderId(1), Qty(ONE_BTC + 1)),
        Err(RiskError::LeavesIncrease {
            order_id: OrderId(1),
            leaves: ONE_BTC,
            requested: ONE_BTC + 1
        })
    );
    assert_eq!(
        risk.on_order_reduced(CASH, OrderId(1), Qty(-1)),
        Err(RiskError::InvalidQuantity(-1))
    );
    assert_eq!(
        risk.on_order_done(CASH, OrderId(42)),
        Err(RiskError::UnknownOrder {
            account: CASH,
            order_id: OrderId(42)
        })
    );
    assert_eq!(
        risk.on_order_done(AccountId(9), OrderId(1)),
        Err(RiskError::UnknownAccount(AccountId(9)))
    );
    assert_eq!(risk, before);

    // Partial cancel, then a partial fill by order id, then the rest.
    risk.on_order_reduced(CASH, OrderId(1), Qty(60_000))
        .unwrap();
    assert_eq!(risk.position(CASH, BTC).unwrap().open_buy, 160_000);
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CASH, BTC, 1, Side::Buy, 6_000_000, 20_000, 0),
        &mut breaches,
    )
    .unwrap();
    let view = risk.position(CASH, BTC).unwrap();
    assert_eq!(
        (view.open_buy, view.position.qty, view.open_orders),
        (140_000, 20_000, 2)
    );
    risk.on_fill(
        &fill(CASH, BTC, 1, Side::Buy, 6_000_000, 40_000, 0),
        &mut breaches,
    )
    .unwrap();
    assert_eq!(risk.position(CASH, BTC).unwrap().open_orders, 1);
    assert_eq!(
        risk.on_order_done(CASH, OrderId(1)),
        Err(RiskError::UnknownOrder {
            account: CASH,
            order_id: OrderId(1)
        })
    );
    risk.on_order_done(CASH, OrderId(2)).unwrap();
    let view = risk.position(CASH, BTC).unwrap();
    assert_eq!((view.open_buy, view.open_orders), (0, 0));
    assert_eq!(risk.report(T0).accounts[0].balances[0].reserved, "0");
    assert_eq!(risk.balance(CASH, "USDT"), Some((1_000_000 - 36_000) * USD));
    assert!(breaches.is_empty());
    risk.audit().unwrap();
}

#[test]
fn fills_reject_bad_input_without_state_change() {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 0),
    );
    let before = risk.clone();
    let mut breaches = Vec::new();
    let base = fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 0);
    let cases = [
        (
            {
                let mut f = base;
                f.qty.0 = 0;
                f
            },
            RiskError::InvalidQuantity(0),
        ),
        (
            {
                let mut f = base;
                f.qty.0 = -3;
                f
            },
            RiskError::InvalidQuantity(-3),
        ),
        (
            {
                let mut f = base;
                f.price.0 = 0;
                f
            },
            RiskError::InvalidPrice(0),
        ),
        (
            {
                let mut f = base;
                f.account = AccountId(3);
                f
            },
            RiskError::UnknownAccount(AccountId(3)),
        ),
        (
            {
                let mut f = base;
                f.instrument = InstrumentId(4);
                f
            },
            RiskError::UnknownInstrument(InstrumentId(4)),
        ),
        (
            {
                let mut f = base;
                f.qty.0 = i64::MAX;
                f
            },
            RiskError::Overflow { what: "position" },
        ),
    ];
    for (f, error) in cases {
        assert_eq!(risk.on_fill(&f, &mut breaches), Err(error), "{f:?}");
    }
    let mut huge_fee = base;
    huge_fee.account = CASH;
    huge_fee.fee = i64::MAX;
    huge_fee.price.0 = i64::MAX;
    huge_fee.qty.0 = i64::MAX / 2;
    assert!(risk.on_fill(&huge_fee, &mut breaches).is_err());
    assert_eq!(
        risk.on_mark(InstrumentId(4), Price(1), T0, &mut breaches),
        Err(RiskError::UnknownInstrument(InstrumentId(4)))
    );
    assert_eq!(
        risk.on_mark(BTC, Price(0), T0, &mut breaches),
        Err(RiskError::InvalidPrice(0))
    );
    assert_eq!(risk, before);
    assert!(breaches.is_empty());

    // A fill of an order risk does not track is applied and counted.
    risk.on_fill(
        &fill(CROSS, BTC, 77, Side::Buy, 6_000_000, 1, 0),
        &mut breaches,
    )
    .unwrap();
    assert_eq!(risk.account(CROSS).unwrap().untracked_fills, 1);
    assert_eq!(risk.position(CROSS, BTC).unwrap().position.qty, ONE_BTC + 1);
}

#[test]
fn marks_revalue_every_holder() {
    let mut risk = build(&loose());
    // A mark on an instrument nobody holds only sets the price.
    assert!(mark(&mut risk, ETH, 300_000).is_empty());
    assert_eq!(risk.position(CROSS, ETH).unwrap().mark, 300_000);
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 0),
    );
    fill_quiet(
        &mut risk,
        fill(ISO, BTC, 0, Side::Sell, 6_000_000, ONE_BTC, 0),
    );
    risk.on_order_accepted(
        CASH,
        BTC,
        OrderId(1),
        Side::Buy,
        Price(5_000_000),
        Qty(ONE_BTC),
    )
    .unwrap();
    mark(&mut risk, BTC, 6_100_000);
    assert_eq!(risk.account(CROSS).unwrap().margin.equity, 1_001_000 * USD);
    assert_eq!(risk.account(ISO).unwrap().margin.equity, 999_000 * USD);
    assert_eq!(risk.account(CASH).unwrap().gross_exposure, 61_000 * USD);
    risk.audit().unwrap();
}

#[test]
fn drawdown_halts_from_the_intraday_high() {
    let mut file = loose();
    file.accounts[1].limits.max_drawdown_bps = Some(1000);
    file.accounts[1]
        .balances
        .insert("USDT".into(), "100000".into());
    let mut risk = build(&file);
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 0),
    );
    assert!(mark(&mut risk, BTC, 7_000_000).is_empty());
    assert_eq!(risk.account(CROSS).unwrap().high_water_mark, 110_000 * USD);
    // 10 % of 110000 = 11000: equity 99010 is 999 bps down, 99000 is 1000 bps.
    assert!(mark(&mut risk, BTC, 5_901_000).is_empty());
    assert_eq!(risk.account(CROSS).unwrap().drawdown_bps, 999);
    let breaches = mark(&mut risk, BTC, 5_900_000);
    assert_eq!(breaches.len(), 1);
    let event = breaches[0].event;
    assert_eq!(event.kind, RiskEventKind::Drawdown.code());
    assert_eq!(event.reason, R::DrawdownHalt.code());
    assert_eq!(
        (event.action, event.account, event.value, event.limit),
        (2, CROSS, 1000, 1000)
    );
    assert_eq!(breaches[0].action, BreachAction::Halt);
    assert_eq!(
        risk.account(CROSS).unwrap().trading_state,
        TradingState::Halted
    );
    let o = order(CROSS, BTC, Side::Sell, 5_990_000, 1);
    assert_eq!(
        risk.check_new_order(&o, T0),
        Err(RiskReject {
            reason: R::DrawdownHalt,
            value: 2,
            limit: 0
        })
    );
    // No repeat while halted; other accounts unaffected.
    assert!(mark(&mut risk, BTC, 5_000_000).is_empty());
    assert_eq!(
        risk.check_new_order(&order(ISO, BTC, Side::Buy, 5_000_000, 1), T0),
        Ok(())
    );

    // The desk re-activates without resetting: the next update halts again.
    risk.set_trading_state(Scope::Account(CROSS), TradingState::Active)
        .unwrap();
    assert_eq!(mark(&mut risk, BTC, 5_000_100).len(), 1);
    // Resetting the high-water mark first lets it trade.
    risk.set_trading_state(Scope::Account(CROSS), TradingState::Active)
        .unwrap();
    risk.reset_high_water_mark(CROSS).unwrap();
    assert!(mark(&mut risk, BTC, 5_000_200).is_empty());
    assert_eq!(risk.check_new_order(&o, T0), Ok(()));
}

#[test]
fn high_water_mark_resets_each_utc_day() {
    let mut file = loose();
    file.accounts[1].limits.max_drawdown_bps = Some(1000);
    file.accounts[1]
        .balances
        .insert("USDT".into(), "100000".into());
    let mut risk = build(&file);
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CROSS, BTC, 0, Side::Buy, 6_000_000, 10 * ONE_BTC, 0),
        &mut breaches,
    )
    .unwrap();
    let day = T0.0 / NS_PER_DAY;
    let mut at = |price, ts: u64| {
        let mut out = Vec::new();
        risk.on_mark(BTC, Price(price), UnixNanos(ts), &mut out)
            .unwrap();
        (out.len(), risk.account(CROSS).unwrap().high_water_mark)
    };
    assert_eq!(at(6_100_000, T0.0), (0, 110_000 * USD));
    // Next day: the high restarts at the first equity (95000), so a fall to 90000 (−5.3 %)
    // does not halt, though it is 18 % below yesterday's high.
    let tomorrow = (day + 1) * NS_PER_DAY;
    assert_eq!(at(5_950_000, tomorrow + 5), (0, 95_000 * USD));
    assert_eq!(at(5_900_000, tomorrow + 10), (0, 95_000 * USD));
    // 10 % below 95000 is 85500.
    assert_eq!(at(5_855_000, tomorrow + 20).0, 1);
}

#[test]
fn cross_margin_call_flattens_the_account() {
    let mut file = loose();
    let account = &mut file.accounts[1];
    account.balances.insert("USDT".into(), "10000".into());
    account.limits.max_leverage = Some("5".into());
    account.limits.margin_call_action = Some(MarginCallAction::Flatten);
    let mut risk = build(&file);
    // 0.8 BTC at 60000: IM 20 % = 9600, MM 10 % of value.
    let o = order(CROSS, BTC, Side::Buy, 6_000_000, 80_000);
    submit(&mut risk, &o, 1).unwrap();
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CROSS, BTC, 1, Side::Buy, 6_000_000, 80_000, 0),
        &mut breaches,
    )
    .unwrap();
    assert!(breaches.is_empty());
    // Equity 10000 + 0.8(p − 60000) against 0.08 p: 52778 is safe, 52777 breaches.
    assert!(mark(&mut risk, BTC, 5_277_800).is_empty());
    let breaches = mark(&mut risk, BTC, 5_277_700);
    assert_eq!(breaches.len(), 1);
    let event = breaches[0].event;
    assert_eq!(event.kind, RiskEventKind::MarginCall.code());
    assert_eq!(
        (event.action, event.value, event.limit),
        (4, 422_160_000_000, 422_216_000_000)
    );
    assert_eq!(event.instrument, InstrumentId(u32::MAX));
    assert_eq!(
        breaches[0].action,
        BreachAction::Flatten { instrument: None }
    );
    let view = risk.account(CROSS).unwrap();
    assert!(view.margin.breached);
    assert_eq!(view.trading_state, TradingState::ReduceOnly);
    let mut flatten = Vec::new();
    risk.flatten_orders(CROSS, None, &mut flatten).unwrap();
    assert_eq!(
        flatten,
        [FlattenOrder {
            account: CROSS,
            instrument: BTC,
            side: Side::Sell,
            qty: Qty(80_000)
        }]
    );
    // Edge-triggered: no repeat until it recovers and breaches again.
    assert!(mark(&mut risk, BTC, 5_200_000).is_empty());
    assert!(mark(&mut risk, BTC, 6_000_000).is_empty());
    assert!(!risk.account(CROSS).unwrap().margin.breached);
    assert_eq!(mark(&mut risk, BTC, 5_200_000).len(), 1);
    risk.audit().unwrap();
}

#[test]
fn isolated_margin_call_names_the_position() {
    let mut file = loose();
    let account = &mut file.accounts[2];
    account.balances.insert("USDT".into(), "20000".into());
    account.limits.max_leverage = Some("10".into());
    account.limits.margin_call_action = Some(MarginCallAction::ReduceOnly);
    let mut risk = build(&file);
    fill_quiet(
        &mut risk,
        fill(ISO, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 0),
    );
    fill_quiet(&mut risk, fill(ISO, ETH, 0, Side::Buy, 300_000, 10_000, 0));
    // BTC margin 6000: 6000 + (p − 60000) against 5 % of p: 56843 is safe, 56842 breaches.
    assert!(mark(&mut risk, BTC, 5_684_300).is_empty());
    let breaches = mark(&mut risk, BTC, 5_684_200);
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].event.instrument, BTC);
    assert_eq!(breaches[0].event.action, 1);
    assert_eq!(breaches[0].action, BreachAction::ReduceOnly);
    assert_eq!(
        risk.account(ISO).unwrap().trading_state,
        TradingState::ReduceOnly
    );
    // Account equity is still positive: the account as a whole is far from a call.
    assert!(risk.account(ISO).unwrap().margin.equity > 10_000 * USD);
    let mut flatten = Vec::new();
    risk.flatten_orders(ISO, Some(BTC), &mut flatten).unwrap();
    assert_eq!(flatten.len(), 1);
    risk.audit().unwrap();
}
