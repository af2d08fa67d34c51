//! Every pre-trade check, accepted at its boundary and rejected just beyond it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use aaiti_model::{
    AccountId, InstrumentId, OrderFlags, OrderId, OrderType, Price, RejectReason as R, Side,
    UnixNanos,
};
use aaiti_risk::config::InstrumentLimitsConfig;
use aaiti_risk::monitor::correlation::CorrelationMatrix;
use aaiti_risk::{RiskEngine, RiskReject, Scope, TradingState};
use support::*;

const BTC_60K: i64 = 6_000_000;

fn rej(reason: R, value: i64, limit: i64) -> Result<(), RiskReject> {
    Err(RiskReject {
        reason,
        value,
        limit,
    })
}

fn check(risk: &mut RiskEngine, order: &aaiti_risk::NewOrder) -> Result<(), RiskReject> {
    risk.check_new_order(order, T0)
}

fn override_for(symbol: &str, venue: &str) -> InstrumentLimitsConfig {
    InstrumentLimitsConfig {
        venue: Some(venue.into()),
        symbol: Some(symbol.into()),
        ..Default::default()
    }
}

#[test]
fn max_order_qty() {
    let mut file = loose();
    let mut btc = override_for("BTCUSDT", "binance");
    btc.max_order_qty = Some("1".into());
    file.risk.instruments.push(btc);
    let mut risk = build(&file);
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Buy, BTC_60K, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CASH, BTC, Side::Sell, BTC_60K, ONE_BTC + 1)
        ),
        rej(R::MaxOrderQty, ONE_BTC + 1, ONE_BTC)
    );
    // Other instruments are not limited.
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 1_000_000)),
        Ok(())
    );
}

#[test]
fn max_order_notional_per_instrument_in_quote() {
    let mut file = loose();
    let mut btc = override_for("BTCUSDT", "binance");
    btc.max_order_notional = Some("60000".into());
    file.risk.instruments.push(btc);
    let mut risk = build(&file);
    let limit = 60_000 * 10_000_000; // raw at 2 + 5 places
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC + 1)
        ),
        rej(R::MaxOrderNotional, BTC_60K * (ONE_BTC + 1), limit)
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Buy, BTC_60K + 1, ONE_BTC)
        ),
        rej(R::MaxOrderNotional, (BTC_60K + 1) * ONE_BTC, limit)
    );
}

#[test]
fn max_order_notional_per_account_in_valuation_currency() {
    let mut file = loose();
    file.accounts[1].limits.max_order_notional = Some("60000".into());
    let mut risk = build(&file);
    let limit = 60_000 * USD as i64;
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC + 1)
        ),
        rej(R::MaxOrderNotional, 6_000_060_000_000, limit)
    );
    // EUR-quoted: 1 BTC at 55555.55 EUR = 59999.994 USD; at 55555.56 = 60000.0048 USD.
    let one = 100_000_000; // qty scale 8
    assert_eq!(
        check(&mut risk, &order(CROSS, BTCEUR, Side::Buy, 5_555_555, one)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTCEUR, Side::Buy, 5_555_556, one)),
        rej(R::MaxOrderNotional, 6_000_000_480_000, limit)
    );
    // Another account keeps the default (none in `loose`).
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 2 * ONE_BTC)),
        Ok(())
    );
}

#[test]
fn price_band_around_the_reference() {
    let mut file = loose();
    file.risk.instrument_defaults.price_band_bps = Some(500);
    let mut risk = build(&file);
    let with_ref = |side, price| {
        let mut o = order(CROSS, BTC, side, price, ONE_BTC);
        o.reference_price = Price(BTC_60K);
        o
    };
    assert_eq!(check(&mut risk, &with_ref(Side::Buy, 6_300_000)), Ok(()));
    assert_eq!(
        check(&mut risk, &with_ref(Side::Buy, 6_300_001)),
        rej(R::PriceBand, 501, 500)
    );
    assert_eq!(check(&mut risk, &with_ref(Side::Sell, 5_700_000)), Ok(()));
    assert_eq!(
        check(&mut risk, &with_ref(Side::Sell, 5_699_999)),
        rej(R::PriceBand, 501, 500)
    );
    let mut no_reference = with_ref(Side::Buy, BTC_60K);
    no_reference.reference_price = Price(0);
    assert_eq!(check(&mut risk, &no_reference), rej(R::PriceBand, -1, 500));
}

#[test]
fn self_trade_prevention() {
    let mut risk = build(&loose());
    submit(
        &mut risk,
        &order(CROSS, BTC, Side::Sell, 6_100_000, ONE_BTC),
        1,
    )
    .unwrap();
    submit(
        &mut risk,
        &order(CROSS, BTC, Side::Buy, 5_900_000, ONE_BTC),
        2,
    )
    .unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 6_099_999, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 6_100_000, 1)),
        rej(R::SelfTrade, 6_100_000, 6_100_000)
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, 5_900_001, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, 5_900_000, 1)),
        rej(R::SelfTrade, 5_900_000, 5_900_000)
    );
    let mut market = order(CROSS, BTC, Side::Buy, 5_000_000, 1);
    market.order_type = OrderType::Market;
    assert_eq!(
        check(&mut risk, &market),
        rej(R::SelfTrade, 5_000_000, 6_100_000)
    );
    // Other accounts and instruments are not affected.
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, 6_200_000, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 6_200_000, 1)),
        Ok(())
    );
    // The best resting price is recomputed when the best order goes.
    submit(
        &mut risk,
        &order(CROSS, BTC, Side::Sell, 6_200_000, ONE_BTC),
        3,
    )
    .unwrap();
    risk.on_order_done(CROSS, OrderId(1)).unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 6_199_999, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 6_200_000, 1)),
        rej(R::SelfTrade, 6_200_000, 6_200_000)
    );
    risk.on_order_done(CROSS, OrderId(3)).unwrap();
    assert_eq!(check(&mut risk, &market), Ok(()));
}

#[test]
fn max_open_orders_per_account_and_instrument() {
    let mut file = loose();
    file.accounts[1].limits.max_open_orders = Some(3);
    let mut eth = override_for("ETHUSDT", "binance");
    eth.max_open_orders = Some(1);
    file.accounts[1].instruments.push(eth);
    let mut risk = build(&file);
    submit(&mut risk, &order(CROSS, ETH, Side::Buy, 100_000, 1), 1).unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 100_000, 1)),
        rej(R::MaxOpenOrders, 1, 1)
    );
    submit(&mut risk, &order(CROSS, BTC, Side::Buy, 100_000, 1), 2).unwrap();
    submit(&mut risk, &order(CROSS, BTC, Side::Buy, 100_000, 1), 3).unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, SOL, Side::Buy, 100_000, 1)),
        rej(R::MaxOpenOrders, 3, 3)
    );
    risk.on_order_done(CROSS, OrderId(2)).unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, SOL, Side::Buy, 100_000, 1)),
        Ok(())
    );
    // A fill to zero leaves frees the slot too.
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CROSS, ETH, 1, Side::Buy, 100_000, 1, 0),
        &mut breaches,
    )
    .unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 100_000, 1)),
        Ok(())
    );
}

#[test]
fn max_position_counts_open_orders_worst_case() {
    let mut file = loose();
    file.risk.instrument_defaults.max_position = Some("1".into());
    let mut risk = build(&file);
    submit(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 60_000), 1).unwrap();
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 40_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 40_001)),
        rej(R::MaxPosition, ONE_BTC + 1, ONE_BTC)
    );
    // The sell side is checked on its own worst case.
    let ask = BTC_60K + 100_000;
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, ask, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, ask, ONE_BTC + 1)),
        rej(R::MaxPosition, ONE_BTC + 1, ONE_BTC)
    );
    // Filled: the position replaces the open order.
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CROSS, BTC, 1, Side::Buy, BTC_60K, 60_000, 0),
        &mut breaches,
    )
    .unwrap();
    assert_eq!(risk.position(CROSS, BTC).unwrap().open_buy, 0);
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 40_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 40_001)),
        rej(R::MaxPosition, ONE_BTC + 1, ONE_BTC)
    );
    // Selling 1.6 takes the long 0.6 to short 1.0.
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, BTC_60K, 160_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, BTC_60K, 160_001)),
        rej(R::MaxPosition, ONE_BTC + 1, ONE_BTC)
    );
}

#[test]
fn gross_exposure_only_blocks_raising_orders() {
    let mut file = loose();
    file.accounts[1].limits.max_gross_exposure = Some("120000".into());
    let mut risk = build(&file);
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, BTC_60K, ONE_BTC, 0),
    );
    mark(&mut risk, BTC, BTC_60K);
    assert_eq!(risk.account(CROSS).unwrap().gross_exposure, 60_000 * USD);
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Buy, BTC_60K, ONE_BTC + 1)
        ),
        rej(R::MaxGrossExposure, 12_000_060_000_000, 12_000_000_000_000)
    );
    // Selling up to 3 BTC leaves the worst case at or below 2 BTC either way.
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Sell, BTC_60K, 3 * ONE_BTC)
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Sell, BTC_60K, 3 * ONE_BTC + 1)
        ),
        rej(R::MaxGrossExposure, 12_000_060_000_000, 12_000_000_000_000)
    );
    // Another instrument adds to the gross.
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 300_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 300_001)),
        rej(R::MaxGrossExposure, 12_000_020_000_000, 12_000_000_000_000)
    );
    // Already above the limit (the mark doubled): a reducing sell still passes.
    mark(&mut risk, BTC, 2 * BTC_60K);
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 1))
            .unwrap_err()
            .reason,
        R::MaxGrossExposure
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CROSS, BTC, Side::Sell, 2 * BTC_60K, ONE_BTC / 2)
        ),
        Ok(())
    );
}

#[test]
fn net_exposure_each_direction() {
    let mut file = loose();
    file.accounts[1].limits.max_net_exposure = Some("100000".into());
    let mut risk = build(&file);
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, BTC_60K, ONE_BTC, 0),
    );
    // Long side: 60000 + ETH up to 40000.
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 200_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 200_000, 200_001)),
        rej(R::MaxNetExposure, 10_000_020_000_000, 10_000_000_000_000)
    );
    // Short side: selling 2.66666 BTC gives -99999.6; 2.66668 gives -100000.8.
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, BTC_60K, 266_666)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Sell, BTC_60K, 266_668)),
        rej(R::MaxNetExposure, 10_000_080_000_000, 10_000_000_000_000)
    );
}

#[test]
fn concentration_share_of_equity() {
    let mut file = loose();
    file.accounts[1].limits.max_concentration_bps = Some(1000);
    let mut risk = build(&file);
    // Equity 1_000_000: one instrument up to 100_000.
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 166_666)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 166_667)),
        rej(R::Concentration, 1001, 1000)
    );
}

#[test]
fn correlated_exposure_counts_correlated_positions() {
    let mut file = loose();
    file.accounts[1].limits.max_correlated_exposure = Some("150000".into());
    file.accounts[1].limits.correlation_threshold_bps = Some(7000);
    let mut risk = build(&file);
    // ETH 50 × 2000 = 100_000 and SOL 1000 × 100 = 100_000.
    fill_quiet(
        &mut risk,
        fill(CROSS, ETH, 0, Side::Buy, 200_000, 500_000, 0),
    );
    fill_quiet(
        &mut risk,
        fill(CROSS, SOL, 0, Side::Buy, 100_000, 100_000, 0),
    );
    let mut rho = CorrelationMatrix::identity(4);
    rho.set_rho_bp(0, 1, 8000);
    rho.set_rho_bp(0, 3, 6999);
    risk.set_correlations(rho);
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 83_333)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 83_334)),
        rej(
            R::CorrelatedExposure,
            15_000_040_000_000,
            15_000_000_000_000
        )
    );
    // At the threshold SOL counts too.
    let mut rho = CorrelationMatrix::identity(4);
    rho.set_rho_bp(0, 1, 7000);
    rho.set_rho_bp(0, 3, 7000);
    risk.set_correlations(rho);
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 1))
            .unwrap_err()
            .reason,
        R::CorrelatedExposure
    );
    // Without correlations only the instrument itself counts.
    risk.set_correlations(CorrelationMatrix::identity(4));
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 200_000)),
        Ok(())
    );
}

#[test]
fn throttle_burst_and_refill_on_engine_time() {
    let mut file = loose();
    file.accounts[1].limits.orders_per_minute = Some(60);
    file.accounts[1].limits.order_burst = Some(3);
    file.risk.instrument_defaults.max_order_qty = Some("1".into());
    let mut risk = build(&file);
    let o = order(CROSS, BTC, Side::Buy, BTC_60K, 1);
    for _ in 0..3 {
        assert_eq!(risk.check_new_order(&o, T0), Ok(()));
    }
    assert_eq!(
        risk.check_new_order(&o, T0),
        rej(R::RateLimited, 1_000_000_000, 60)
    );
    // A reject by a later check takes no token.
    let big = order(CROSS, BTC, Side::Buy, BTC_60K, 2 * ONE_BTC);
    let later = UnixNanos(T0.0 + 1_000_000_000);
    assert_eq!(
        risk.check_new_order(&big, later).unwrap_err().reason,
        R::MaxOrderQty
    );
    assert_eq!(
        risk.check_new_order(&o, UnixNanos(later.0 - 1)),
        rej(R::RateLimited, 1, 60)
    );
    assert_eq!(risk.check_new_order(&o, later), Ok(()));
    assert_eq!(
        risk.check_new_order(&o, later).unwrap_err().reason,
        R::RateLimited
    );
    // Other accounts have their own bucket (unthrottled here).
    for _ in 0..10 {
        assert_eq!(
            risk.check_new_order(&order(ISO, BTC, Side::Buy, BTC_60K, 1), T0),
            Ok(())
        );
    }
    // would_accept takes nothing.
    let t = UnixNanos(T0.0 + 2_000_000_000);
    for _ in 0..5 {
        assert_eq!(risk.would_accept(&o, t), Ok(()));
    }
}

#[test]
fn cash_balance_and_inventory() {
    let mut file = loose();
    file.accounts[0]
        .balances
        .insert("USDT".into(), "60000".into());
    let mut risk = build(&file);
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Buy, BTC_60K, ONE_BTC)),
        Ok(())
    );
    assert_eq!(
        check(
            &mut risk,
            &order(CASH, BTC, Side::Buy, BTC_60K, ONE_BTC + 1)
        ),
        rej(R::InsufficientBalance, 6_000_060_000_000, 6_000_000_000_000)
    );
    // Open buys reserve their notional.
    submit(&mut risk, &order(CASH, BTC, Side::Buy, BTC_60K, 50_000), 1).unwrap();
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Buy, 5_900_000, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CASH, ETH, Side::Buy, 300_000, 100_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CASH, ETH, Side::Buy, 300_000, 100_001)),
        rej(R::InsufficientBalance, 3_000_030_000_000, 3_000_000_000_000)
    );
    // No shorts: selling needs inventory.
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Sell, 6_100_000, 1)),
        rej(R::InsufficientBalance, 1, 0)
    );
    let mut breaches = Vec::new();
    risk.on_fill(
        &fill(CASH, BTC, 1, Side::Buy, BTC_60K, 50_000, 0),
        &mut breaches,
    )
    .unwrap();
    assert_eq!(risk.balance(CASH, "USDT"), Some(3_000_000_000_000));
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Sell, 6_100_000, 50_000)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Sell, 6_100_000, 50_001)),
        rej(R::InsufficientBalance, 50_001, 50_000)
    );
    submit(
        &mut risk,
        &order(CASH, BTC, Side::Sell, 6_100_000, 20_000),
        2,
    )
    .unwrap();
    assert_eq!(
        check(&mut risk, &order(CASH, BTC, Side::Sell, 6_200_000, 30_001)),
        rej(R::InsufficientBalance, 30_001, 30_000)
    );
}

#[test]
fn margin_cross_uses_equity_isolated_excludes_gains() {
    let mut file = loose();
    for account in &mut file.accounts[1..] {
        account.balances.insert("USDT".into(), "10000".into());
        account.limits.max_leverage = Some("5".into());
    }
    let mut risk = build(&file);
    // 5x on 10000: worst-case exposure up to 50000.
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 83_333)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, BTC_60K, 83_334)),
        rej(R::InsufficientMargin, 1_000_008_000_000, 1_000_000_000_000)
    );
    // Long 0.5 at 60000 in both, then the mark rises to 70000 (+5000 unrealized).
    for account in [CROSS, ISO] {
        fill_quiet(
            &mut risk,
            fill(account, BTC, 0, Side::Buy, BTC_60K, 50_000, 0),
        );
    }
    mark(&mut risk, BTC, 7_000_000);
    assert_eq!(risk.account(CROSS).unwrap().margin.collateral, 15_000 * USD);
    assert_eq!(risk.account(ISO).unwrap().margin.collateral, 10_000 * USD);
    assert_eq!(risk.account(ISO).unwrap().margin.equity, 15_000 * USD);
    // Isolated: (0.5 + q) × 70000 × 20 % ≤ 10000  ⇔  q ≤ 0.214285…
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, 7_000_000, 21_428)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, 7_000_000, 21_429))
            .unwrap_err()
            .reason,
        R::InsufficientMargin
    );
    // Cross: the gain counts: q ≤ 0.571428…
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 7_000_000, 57_142)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 7_000_000, 57_143))
            .unwrap_err()
            .reason,
        R::InsufficientMargin
    );
    // Reducing never needs margin.
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Sell, 7_000_000, 50_000)),
        Ok(())
    );
}

#[test]
fn disabled_instrument_and_venue() {
    let mut file = loose();
    let mut eth = override_for("ETHUSDT", "binance");
    eth.enabled = Some(false);
    file.risk.instruments.push(eth);
    file.risk.disabled_venues = vec!["coinbase".into()];
    let mut sol = override_for("SOLUSDT", "binance");
    sol.enabled = Some(false);
    file.accounts[1].instruments.push(sol);
    let mut risk = build(&file);
    assert_eq!(
        check(&mut risk, &order(CROSS, ETH, Side::Buy, 100_000, 1)),
        rej(R::InstrumentDisabled, 1, 0)
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTCEUR, Side::Buy, 100_000, 1)),
        rej(R::VenueDisabled, 1, 0)
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, SOL, Side::Buy, 100_000, 1)),
        rej(R::InstrumentDisabled, 3, 0)
    );
    assert_eq!(
        check(&mut risk, &order(ISO, SOL, Side::Buy, 100_000, 1)),
        Ok(())
    );
    assert_eq!(
        check(&mut risk, &order(CROSS, BTC, Side::Buy, 100_000, 1)),
        Ok(())
    );
}

#[test]
fn reduce_only_state_and_flag() {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, BTC_60K, ONE_BTC, 0),
    );
    let buy = order(CROSS, BTC, Side::Buy, BTC_60K, 1);
    let sell = |qty| order(CROSS, BTC, Side::Sell, BTC_60K, qty);

    // Flag on an active account.
    let mut flagged = buy;
    flagged.flags = OrderFlags::REDUCE_ONLY;
    assert_eq!(check(&mut risk, &flagged), rej(R::ReduceOnly, 1, ONE_BTC));
    let mut flagged_sell = sell(ONE_BTC);
    flagged_sell.flags = OrderFlags::REDUCE_ONLY;
    assert_eq!(check(&mut risk, &flagged_sell), Ok(()));
    flagged_sell.qty.0 += 1;
    assert_eq!(
        check(&mut risk, &flagged_sell),
        rej(R::ReduceOnly, ONE_BTC + 1, ONE_BTC)
    );
    // Flat: nothing reduces.
    assert_eq!(
        check(&mut risk, &{
            let mut o = order(CROSS, ETH, Side::Sell, 100, 1);
            o.flags = OrderFlags::REDUCE_ONLY;
            o
        }),
        rej(R::ReduceOnly, 1, 0)
    );

    // Account state.
    risk.set_trading_state(Scope::Account(CROSS), TradingState::ReduceOnly)
        .unwrap();
    assert_eq!(check(&mut risk, &buy), rej(R::ReduceOnly, 1, ONE_BTC));
    assert_eq!(check(&mut risk, &sell(ONE_BTC)), Ok(()));
    // Open same-side orders count toward the reduction.
    submit(&mut risk, &sell(ONE_BTC / 2), 1).unwrap();
    assert_eq!(check(&mut risk, &sell(ONE_BTC / 2)), Ok(()));
    assert_eq!(
        check(&mut risk, &sell(ONE_BTC / 2 + 1)),
        rej(R::ReduceOnly, ONE_BTC + 1, ONE_BTC)
    );
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 1)),
        Ok(())
    );

    // Global state applies to everyone.
    risk.set_trading_state(Scope::Account(CROSS), TradingState::Active)
        .unwrap();
    risk.set_trading_state(Scope::Global, TradingState::ReduceOnly)
        .unwrap();
    assert_eq!(check(&mut risk, &buy).unwrap_err().reason, R::ReduceOnly);
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 1)),
        rej(R::ReduceOnly, 1, 0)
    );
    risk.set_trading_state(Scope::Global, TradingState::Halted)
        .unwrap();
    assert_eq!(check(&mut risk, &sell(1)), rej(R::TradingHalted, 2, 0));
    risk.set_trading_state(Scope::Global, TradingState::Active)
        .unwrap();
    risk.set_trading_state(Scope::Account(ISO), TradingState::Halted)
        .unwrap();
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 1)),
        rej(R::TradingHalted, 2, 0)
    );
    risk.on_order_done(CROSS, OrderId(1)).unwrap();
    assert_eq!(check(&mut risk, &buy), Ok(()));
}

#[test]
fn kill_switch_blocks_all_but_liquidation() {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, BTC_60K, ONE_BTC, 0),
    );
    risk.engage_kill_switch(Scope::Account(CROSS), false)
        .unwrap();
    let buy = order(CROSS, BTC, Side::Buy, BTC_60K, 1);
    assert_eq!(check(&mut risk, &buy), rej(R::KillSwitch, 2, 0));
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 1)),
        Ok(())
    );
    let mut liquidation = order(CROSS, BTC, Side::Sell, 1, ONE_BTC);
    liquidation.liquidation = true;
    liquidation.flags = OrderFlags::REDUCE_ONLY;
    liquidation.reference_price = Price(0);
    assert_eq!(check(&mut risk, &liquidation), Ok(()));
    liquidation.qty.0 += 1;
    assert_eq!(
        check(&mut risk, &liquidation),
        rej(R::ReduceOnly, ONE_BTC + 1, ONE_BTC)
    );
    risk.engage_kill_switch(Scope::Global, false).unwrap();
    assert_eq!(
        check(&mut risk, &order(ISO, BTC, Side::Buy, BTC_60K, 1)),
        rej(R::KillSwitch, 1, 0)
    );
    risk.release_kill_switch(Scope::Global).unwrap();
    assert_eq!(check(&mut risk, &buy), rej(R::KillSwitch, 2, 0));
    risk.release_kill_switch(Scope::Account(CROSS)).unwrap();
    assert_eq!(check(&mut risk, &buy), Ok(()));
}

#[test]
fn bad_input_is_rejected_without_state_change() {
    let mut risk = build(&loose());
    fill_quiet(
        &mut risk,
        fill(CROSS, BTC, 0, Side::Buy, BTC_60K, ONE_BTC, 0),
    );
    let before = risk.clone();
    let base = order(CROSS, BTC, Side::Buy, BTC_60K, 1);
    let cases = [
        (
            {
                let mut o = base;
                o.qty.0 = 0;
                o
            },
            R::InvalidQuantity,
        ),
        (
            {
                let mut o = base;
                o.qty.0 = -5;
                o
            },
            R::InvalidQuantity,
        ),
        (
            {
                let mut o = base;
                o.price.0 = 0;
                o
            },
            R::InvalidPrice,
        ),
        (
            {
                let mut o = base;
                o.price.0 = i64::MIN;
                o
            },
            R::InvalidPrice,
        ),
        (
            {
                let mut o = base;
                o.account = AccountId(3);
                o
            },
            R::UnknownAccount,
        ),
        (
            {
                let mut o = base;
                o.account = AccountId(u32::MAX);
                o
            },
            R::UnknownAccount,
        ),
        (
            {
                let mut o = base;
                o.instrument = InstrumentId(4);
                o
            },
            R::UnknownInstrument,
        ),
        (
            {
                let mut o = base;
                o.flags = OrderFlags(0x80);
                o
            },
            R::UnsupportedOrder,
        ),
    ];
    for (o, reason) in cases {
        assert_eq!(
            risk.check_new_order(&o, T0).unwrap_err().reason,
            reason,
            "{o:?}"
        );
    }
    // Overflow-sized orders are refused by a limit, never a panic.
    for account in [CASH, CROSS, ISO] {
        for side in [Side::Buy, Side::Sell] {
            let o = order(account, BTC, side, i64::MAX, i64::MAX);
            assert!(risk.check_new_order(&o, T0).is_err(), "{o:?}");
        }
    }
    assert_eq!(risk, before);
}

#[test]
fn extreme_state_never_panics() {
    let mut risk = build(&loose());
    let mut breaches = Vec::new();
    // A position and an open order at the i64 limit, marked at the i64 limit.
    risk.on_fill(
        &fill(CROSS, BTC, 0, Side::Buy, 1, i64::MAX, 0),
        &mut breaches,
    )
    .unwrap();
    risk.on_order_accepted(
        CROSS,
        BTC,
        OrderId(1),
        Side::Buy,
        Price(1),
        aaiti_model::Qty(i64::MAX),
    )
    .unwrap();
    risk.on_mark(BTC, Price(i64::MAX), T0, &mut breaches)
        .unwrap();
    for side in [Side::Buy, Side::Sell] {
        for qty in [1, i64::MAX] {
            let mut o = order(CROSS, BTC, side, i64::MAX, qty);
            o.reference_price = Price(i64::MAX);
            let _ = risk.check_new_order(&o, T0);
        }
    }
    let _ = risk.report(T0);
    let view = risk.account(CROSS).unwrap();
    assert!(view.gross_exposure > 0);
    risk.on_order_done(CROSS, OrderId(1)).unwrap();
    let _ = risk.on_fill(
        &fill(CROSS, BTC, 0, Side::Sell, i64::MAX, i64::MAX, i64::MAX),
        &mut breaches,
    );
    let _ = risk.on_mark(BTC, Price(1), T0, &mut breaches);
}
