//! Shared fixtures for the risk integration tests.

use aaiti_model::{
    AccountId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderFlags, OrderId, OrderType,
    Price, Qty, Side, UnixNanos,
};
use aaiti_risk::config::{
    AccountConfig, AccountLimitsConfig, InstrumentLimitsConfig, RiskConfigFile,
};
use aaiti_risk::{AccountType, Fill, MarginCallAction, MarginMode, NewOrder, RiskEngine, compile};

/// binance:BTCUSDT, price 2 places, qty 5 places (1 BTC = 100_000; 60000 USDT = 6_000_000).
pub(crate) const BTC: InstrumentId = InstrumentId(0);
/// binance:ETHUSDT, price 2 places, qty 4 places.
pub(crate) const ETH: InstrumentId = InstrumentId(1);
/// coinbase:BTC-EUR, price 2 places, qty 8 places (EUR = 1.08 USD).
pub(crate) const BTCEUR: InstrumentId = InstrumentId(2);
/// binance:SOLUSDT, price 3 places, qty 2 places.
pub(crate) const SOL: InstrumentId = InstrumentId(3);

/// Cash account (USDT 1_000_000).
pub(crate) const CASH: AccountId = AccountId(0);
/// Cross-margin account (USDT 1_000_000).
pub(crate) const CROSS: AccountId = AccountId(1);
/// Isolated-margin account (USDT 1_000_000).
pub(crate) const ISO: AccountId = AccountId(2);

/// One BTC at qty scale 5.
pub(crate) const ONE_BTC: i64 = 100_000;
/// One USDT in valuation mantissas (8 places).
pub(crate) const USD: i128 = 100_000_000;

/// A Tuesday, 2023-11-14T22:13:20Z.
pub(crate) const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

pub(crate) fn registry() -> InstrumentRegistry {
    let spec =
        |venue: &str, symbol: &str, base: &str, quote: &str, ps: u8, qs: u8| InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: base.into(),
            quote: quote.into(),
            price_scale: ps,
            qty_scale: qs,
            tick_size: if ps == 3 { "0.001" } else { "0.01" }.into(),
            lot_size: "0.01".into(),
            min_notional: "0".into(),
        };
    InstrumentRegistry::from_specs(&[
        spec("binance", "BTCUSDT", "BTC", "USDT", 2, 5),
        spec("binance", "ETHUSDT", "ETH", "USDT", 2, 4),
        spec("coinbase", "BTC-EUR", "BTC", "EUR", 2, 8),
        spec("binance", "SOLUSDT", "SOL", "USDT", 3, 2),
    ])
    .unwrap()
}

fn account(name: &str, mode: MarginMode) -> AccountConfig {
    AccountConfig {
        id: None,
        name: name.into(),
        account_type: AccountType::Paper,
        margin_mode: mode,
        balances: [("USDT".to_owned(), "1000000".to_owned())].into(),
        trading_state: Default::default(),
        limits: AccountLimitsConfig::default(),
        instruments: Vec::new(),
    }
}

/// Every limit off (or very wide): tests switch on the one they exercise.
pub(crate) fn loose() -> RiskConfigFile {
    let mut file = RiskConfigFile::default();
    let risk = &mut file.risk;
    risk.rates.insert("EUR".into(), "1.08".into());
    risk.account_defaults = AccountLimitsConfig {
        max_order_notional: Some("none".into()),
        max_gross_exposure: Some("none".into()),
        max_net_exposure: Some("none".into()),
        max_open_orders: Some(0),
        orders_per_minute: Some(0),
        order_burst: Some(1),
        max_drawdown_bps: Some(0),
        max_concentration_bps: Some(0),
        max_correlated_exposure: Some("none".into()),
        correlation_threshold_bps: Some(7000),
        max_leverage: Some("100".into()),
        margin_call_action: Some(MarginCallAction::Alert),
    };
    risk.instrument_defaults = InstrumentLimitsConfig {
        price_band_bps: Some(0),
        max_open_orders: Some(0),
        max_leverage: Some("100".into()),
        ..Default::default()
    };
    file.accounts = vec![
        account("cash", MarginMode::Cash),
        account("cross", MarginMode::Cross),
        account("iso", MarginMode::Isolated),
    ];
    file
}

pub(crate) fn build(file: &RiskConfigFile) -> RiskEngine {
    let setup = compile(&file.risk, &file.accounts, &registry()).unwrap();
    RiskEngine::new(setup).unwrap()
}

/// A limit order with the reference price equal to its price.
pub(crate) fn order(
    account: AccountId,
    instrument: InstrumentId,
    side: Side,
    price: i64,
    qty: i64,
) -> NewOrder {
    NewOrder {
        account,
        instrument,
        order_id: OrderId(0),
        side,
        order_type: OrderType::Limit,
        price: Price(price),
        qty: Qty(qty),
        flags: OrderFlags::NONE,
        reference_price: Price(price),
        liquidation: false,
    }
}

/// Checks then accepts `order` as `id`.
pub(crate) fn submit(
    risk: &mut RiskEngine,
    order: &NewOrder,
    id: u64,
) -> Result<(), aaiti_risk::RiskReject> {
    risk.check_new_order(order, T0)?;
    risk.on_order_accepted(
        order.account,
        order.instrument,
        OrderId(id),
        order.side,
        order.price,
        order.qty,
    )
    .unwrap();
    Ok(())
}

pub(crate) fn fill(
    account: AccountId,
    instrument: InstrumentId,
    order_id: u64,
    side: Side,
    price: i64,
    qty: i64,
    fee: i64,
) -> Fill {
    Fill {
        account,
        instrument,
        order_id: OrderId(order_id),
        side,
        price: Price(price),
        qty: Qty(qty),
        fee,
        ts: T0,
    }
}

/// Applies a fill of no tracked order, expecting no breach.
pub(crate) fn fill_quiet(risk: &mut RiskEngine, fill: Fill) {
    let mut breaches = Vec::new();
    risk.on_fill(&fill, &mut breaches).unwrap();
    assert!(breaches.is_empty(), "{breaches:?}");
}

/// Marks an instrument, returning the breaches.
pub(crate) fn mark(
    risk: &mut RiskEngine,
    instrument: InstrumentId,
    price: i64,
) -> Vec<aaiti_risk::Breach> {
    let mut breaches = Vec::new();
    risk.on_mark(instrument, Price(price), T0, &mut breaches)
        .unwrap();
    breaches
}
