//! Kill switches, limit changes, reports and snapshots.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use aaiti_model::{
    AccountId, OrderFlags, OrderId, Price, Qty, RejectReason as R, RiskEventKind, Side, UnixNanos,
};
use aaiti_risk::account::{AccountState, Cell, MarkState};
use aaiti_risk::limits::NO_LIMIT_QTY;
use aaiti_risk::monitor::correlation::CorrelationMatrix;
use aaiti_risk::{FlattenOrder, RiskEngine, RiskError, RiskLimits, Scope, TradingState, compile};
use serde::{Deserialize, Serialize};
use support::*;

/// A book of positions and orders on CROSS and ISO.
fn busy() -> RiskEngine {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, 6_000_000, ONE_BTC, 100),
    );
    fill_quiet(
        &mut risk,
        fill(CROSS, ETH, 0, Side::Sell, 300_000, 20_000, 0),
    );
    submit(
        &mut risk,
        &order(CROSS, BTC, Side::Sell, 6_100_000, 50_000),
        1,
    )
    .unwrap();
    submit(&mut risk, &order(CROSS, ETH, Side::Buy, 290_000, 10_000), 2).unwrap();
    submit(
        &mut risk,
        &order(ISO, BTC, Side::Buy, 5_900_000, ONE_BTC),
        3,
    )
    .unwrap();
    risk
}

#[test]
fn kill_switch_returns_cancels_and_flattens() {
    let mut risk = busy();
    let intent = risk
        .engage_kill_switch(Scope::Account(CROSS), true)
        .unwrap();
    assert_eq!(intent.cancel, [(CROSS, OrderId(1)), (CROSS, OrderId(2))]);
    assert_eq!(
        intent.flatten,
        [
            FlattenOrder {
                account: CROSS,
                instrument: BTC,
                side: Side::Sell,
                qty: Qty(ONE_BTC)
            },
            FlattenOrder {
                account: CROSS,
                instrument: ETH,
                side: Side::Buy,
                qty: Qty(20_000)
            },
        ]
    );
    assert_eq!(intent.event.kind, RiskEventKind::KillSwitch.code());
    assert_eq!(
        (
            intent.event.action,
            intent.event.account,
            intent.event.value
        ),
        (4, CROSS, 1)
    );

    // The engine cancels, then sends the flattening orders as liquidation orders.
    for (account, id) in &intent.cancel {
        risk.on_order_done(*account, *id).unwrap();
    }
    for (k, f) in intent.flatten.iter().enumerate() {
        let mut o = order(f.account, f.instrument, f.side, 1, f.qty.0);
        o.liquidation = true;
        o.flags = OrderFlags::REDUCE_ONLY;
        risk.check_new_order(&o, T0).unwrap();
        risk.on_order_accepted(
            o.account,
            o.instrument,
            OrderId(100 + k as u64),
            o.side,
            o.price,
            o.qty,
        )
        .unwrap();
        let price = if f.side == Side::Sell {
            6_000_000
        } else {
            300_000
        };
        fill_quiet(
            &mut risk,
            fill(
                f.account,
                f.instrument,
                100 + k as u64,
                f.side,
                price,
                f.qty.0,
                0,
            ),
        );
    }
    assert_eq!(risk.position(CROSS, BTC).unwrap().position.qty, 0);
    assert_eq!(risk.position(CROSS, ETH).unwrap().position.qty, 0);
    assert_eq!(risk.open_orders(CROSS).unwrap().len(), 0);
    assert_eq!(
        risk.check_new_order(&order(CROSS, BTC, Side::Buy, 6_000_000, 1), T0)
            .unwrap_err()
            .reason,
        R::KillSwitch
    );

    let global = risk.engage_kill_switch(Scope::Global, false).unwrap();
    assert_eq!(global.cancel, [(ISO, OrderId(3))]);
    assert!(global.flatten.is_empty());
    assert_eq!(
        (global.event.action, global.event.account),
        (3, AccountId(u32::MAX))
    );
    assert!(risk.report(T0).global_kill_switch);
    let release = risk.release_kill_switch(Scope::Global).unwrap();
    assert_eq!(
        (release.kind, release.value),
        (RiskEventKind::KillSwitch.code(), 0)
    );
    assert_eq!(
        risk.engage_kill_switch(Scope::Account(AccountId(5)), false),
        Err(RiskError::UnknownAccount(AccountId(5)))
    );
    assert_eq!(
        risk.set_trading_state(Scope::Account(AccountId(5)), TradingState::Halted),
        Err(RiskError::UnknownAccount(AccountId(5)))
    );
    risk.audit().unwrap();
}

#[test]
fn replace_limits_takes_effect_and_reports_the_change() {
    let mut risk = busy();
    risk.on_mark(BTC, Price(6_000_000), T0, &mut Vec::new())
        .unwrap();
    let mut file = loose();
    file.risk.instrument_defaults.max_order_qty = Some("none".into());
    file.risk
        .instruments
        .push(aaiti_risk::config::InstrumentLimitsConfig {
            venue: Some("binance".into()),
            symbol: Some("BTCUSDT".into()),
            max_order_qty: Some("1".into()),
            ..Default::default()
        });
    file.accounts[1].limits.max_leverage = Some("2".into());
    let new = compile(&file.risk, &file.accounts, &registry())
        .unwrap()
        .limits;
    let before_im = risk.account(CROSS).unwrap().margin.initial_margin;

    let change = risk.replace_limits(new.clone()).unwrap();
    let qty_changes: Vec<_> = change
        .diffs
        .iter()
        .filter(|d| d.field == "max_order_qty")
        .map(|d| (d.account, d.instrument, d.old, d.new))
        .collect();
    assert_eq!(
        qty_changes,
        [0, 1, 2].map(|a| (
            Some(a),
            Some(0),
            i128::from(NO_LIMIT_QTY),
            i128::from(ONE_BTC)
        ))
    );
    assert!(
        change
            .diffs
            .iter()
            .any(|d| d.field == "max_leverage" && d.account == Some(1))
    );
    let events = change.events();
    assert_eq!(events.len(), change.diffs.len());
    assert!(
        events
            .iter()
            .all(|e| e.kind == RiskEventKind::LimitsChanged.code())
    );
    assert_eq!(risk.limits(), &new);
    assert_eq!(
        risk.check_new_order(&order(ISO, BTC, Side::Buy, 5_000_000, ONE_BTC + 1), T0)
            .unwrap_err()
            .reason,
        R::MaxOrderQty
    );
    // Leverage 100 → 2: the initial margin in use is revalued at once.
    assert_eq!(
        risk.account(CROSS).unwrap().margin.initial_margin,
        before_im * 50
    );
    risk.audit().unwrap();

    // Undo.
    let undo = risk.replace_limits(change.previous).unwrap();
    assert_eq!(undo.diffs.len(), change.diffs.len());
    assert_eq!(
        risk.account(CROSS).unwrap().margin.initial_margin,
        before_im
    );

    // Limits of another shape are refused and change nothing.
    let before = risk.clone();
    let mut fewer = loose();
    fewer.accounts.pop();
    let other = compile(&fewer.risk, &fewer.accounts, &registry())
        .unwrap()
        .limits;
    assert!(matches!(
        risk.replace_limits(other),
        Err(RiskError::Shape { .. })
    ));
    let mut modes = loose();
    modes.accounts[0].margin_mode = aaiti_risk::MarginMode::Cross;
    let other = compile(&modes.risk, &modes.accounts, &registry())
        .unwrap()
        .limits;
    assert!(matches!(
        risk.replace_limits(other),
        Err(RiskError::Invalid { .. })
    ));
    let mut broken: RiskLimits = new;
    broken.cells.pop();
    assert!(risk.replace_limits(broken).is_err());
    assert_eq!(risk, before);
}

#[test]
fn rates_change_revalues_equity() {
    let mut risk = build(&loose());
    let one = 100_000_000;
    fill_quiet(
        &mut risk,
        fill(CROSS, BTCEUR, 0, Side::Buy, 5_000_000, one, 0),
    );
    fill_quiet(
        &mut risk,
        fill(CROSS, BTCEUR, 0, Side::Sell, 5_100_000, one, 0),
    );
    assert_eq!(
        risk.account(CROSS).unwrap().margin.equity,
        (1_000_000 + 1_080) * USD
    );
    let mut file = loose();
    file.risk.rates.insert("EUR".into(), "1.5".into());
    let new = compile(&file.risk, &file.accounts, &registry())
        .unwrap()
        .limits;
    let change = risk.replace_limits(new).unwrap();
    assert!(change.diffs.iter().any(|d| d.field == "rate"));
    assert_eq!(
        risk.account(CROSS).unwrap().margin.equity,
        (1_000_000 + 1_500) * USD
    );
}

#[test]
fn report_is_serializable_text() {
    let mut risk = busy();
    risk.on_mark(BTC, Price(6_050_000), T0, &mut Vec::new())
        .unwrap();
    let report = risk.report(T0);
    assert_eq!(report.valuation_currency, "USD");
    let cross = &report.accounts[1];
    assert_eq!(cross.name, "cross");
    assert_eq!(cross.positions.len(), 2);
    let btc = &cross.positions[0];
    assert_eq!(
        (
            btc.symbol.as_str(),
            btc.qty.as_str(),
            btc.avg_entry.as_str(),
            btc.mark.as_str()
        ),
        ("BTCUSDT", "1", "60000", "60500")
    );
    assert_eq!(
        (btc.unrealized_pnl.as_str(), btc.fees.as_str()),
        ("500", "1")
    );
    assert_eq!(btc.open_sell, "0.5");
    assert_eq!(cross.equity, "1000499");
    assert_eq!(cross.open_orders, 2);
    let bytes = postcard::to_allocvec(&report).unwrap();
    assert!(!bytes.is_empty());
}

/// The serialized layout of a `RiskEngine`, to tamper with snapshots.
#[derive(Serialize, Deserialize)]
struct Mirror {
    limits: RiskLimits,
    global_state: TradingState,
    global_kill: bool,
    accounts: Vec<AccountState>,
    cells: Vec<Cell>,
    marks: Vec<MarkState>,
    holders: Vec<Vec<u32>>,
    correlations: (usize, Vec<i16>),
}

/// Runs the same calls on an engine, returning every outcome.
fn script(risk: &mut RiskEngine) -> Vec<String> {
    let mut out = Vec::new();
    let mut breaches = Vec::new();
    let t = |k: u64| UnixNanos(T0.0 + k * 10_000_000);
    for k in 0..40u64 {
        let side = if k % 3 == 0 { Side::Sell } else { Side::Buy };
        let account = [CASH, CROSS, ISO][(k % 3) as usize];
        let price = 5_900_000 + (k as i64 % 7) * 20_000;
        let o = order(account, BTC, side, price, 10_000 + k as i64 * 100);
        let result = risk.check_new_order(&o, t(k));
        out.push(format!("{result:?}"));
        if result.is_ok() {
            risk.on_order_accepted(account, BTC, OrderId(1_000 + k), side, o.price, o.qty)
                .unwrap();
            if k % 2 == 0 {
                let f = aaiti_risk::Fill {
                    ts: t(k),
                    ..fill(account, BTC, 1_000 + k, side, price, o.qty.0 / 2, 10)
                };
                out.push(format!("{:?}", risk.on_fill(&f, &mut breaches)));
            }
        }
        out.push(format!(
            "{:?}",
            risk.on_mark(BTC, Price(price - 10_000), t(k), &mut breaches)
        ));
    }
    out.push(format!("{breaches:?}"));
    out.push(format!("{:?}", risk.report(t(50))));
    out
}

#[test]
fn snapshot_round_trip_preserves_behaviour() {
    let mut file = loose();
    for account in &mut file.accounts {
        account.limits.orders_per_minute = Some(600);
        account.limits.order_burst = Some(2);
        account.limits.max_drawdown_bps = Some(300);
    }
    file.risk.instrument_defaults.max_position = Some("0.5".into());
    let mut risk = build(&file);
    fill_quiet(
        &mut risk,
        fill(CROSS, ETH, 0, Side::Sell, 300_000, 20_000, 0),
    );
    let mut rho = CorrelationMatrix::identity(4);
    rho.set_rho_bp(0, 1, 9000);
    risk.set_correlations(rho);
    script(&mut risk);
    risk.engage_kill_switch(Scope::Account(ISO), false).unwrap();
    risk.set_trading_state(Scope::Account(CASH), TradingState::ReduceOnly)
        .unwrap();

    let bytes = postcard::to_allocvec(&risk).unwrap();
    let mut restored: RiskEngine = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(restored, risk);
    restored.audit().unwrap();
    assert_eq!(script(&mut restored), script(&mut risk));
    assert_eq!(restored, risk);
    assert_eq!(
        postcard::to_allocvec(&restored).unwrap(),
        postcard::to_allocvec(&risk).unwrap()
    );
}

#[test]
fn corrupt_snapshots_are_refused() {
    let risk = busy();
    let bytes = postcard::to_allocvec(&risk).unwrap();
    let tamper = |edit: &dyn Fn(&mut Mirror)| {
        let mut mirror: Mirror = postcard::from_bytes(&bytes).unwrap();
        edit(&mut mirror);
        let bytes = postcard::to_allocvec(&mirror).unwrap();
        postcard::from_bytes::<RiskEngine>(&bytes)
    };
    assert!(tamper(&|_| {}).is_ok());
    assert!(
        tamper(&|m| {
            m.cells.pop();
        })
        .is_err()
    );
    assert!(
        tamper(&|m| {
            m.marks.push(MarkState::default());
        })
        .is_err()
    );
    assert!(
        tamper(&|m| {
            m.accounts[1].assets.pop();
        })
        .is_err()
    );
    assert!(tamper(&|m| m.accounts[1].open_orders[0].instrument = 99).is_err());
    assert!(tamper(&|m| m.accounts[1].open_orders[0].leaves = -1).is_err());
    assert!(tamper(&|m| m.limits.instruments[0].to_value.div = 0).is_err());
    assert!(tamper(&|m| m.holders.clear()).is_err());
    assert!(
        tamper(&|m| {
            m.correlations.1.pop();
        })
        .is_err()
    );
    assert!(tamper(&|m| m.correlations.1[1] = 5_000).is_err());
    assert!(tamper(&|m| m.correlations.1[0] = 0).is_err());
    assert!(
        tamper(&|m| {
            m.correlations.1[1] = 9_000;
            m.correlations.1[4] = 9_000;
        })
        .is_ok()
    );
    // Derived values are rebuilt, not trusted.
    let fixed = tamper(&|m| {
        m.accounts[1].equity = 5;
        m.cells[4].values.worst = 7;
        m.holders[0].clear();
    })
    .unwrap();
    assert_eq!(fixed, risk);
}
