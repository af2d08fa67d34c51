//! The documented TOML example compiles; typos and bad values are refused with their key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use aaiti_risk::config::{RiskConfigFile, compile};
use aaiti_risk::limits::{NO_LIMIT, NO_LIMIT_QTY, VALUE_PLACES};
use aaiti_risk::{AccountType, MarginCallAction, MarginMode, RiskEngine, TradingState};
use support::registry;

/// The ```toml block of the crate documentation.
fn documented_example() -> String {
    let lib = include_str!("../src/lib.rs");
    let mut inside = false;
    let mut out = String::new();
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if doc.starts_with("```toml") {
            inside = true;
        } else if inside && doc.starts_with("```") {
            break;
        } else if inside {
            out.push_str(doc);
            out.push('\n');
        }
    }
    assert!(out.contains("[risk]"), "example not found");
    out
}

#[test]
fn documented_example_compiles() {
    let file: RiskConfigFile = toml::from_str(&documented_example()).unwrap();
    let setup = compile(&file.risk, &file.accounts, &registry()).unwrap();
    let limits = &setup.limits;
    assert_eq!(limits.accounts.len(), 2);
    let paper = &limits.accounts[0];
    assert_eq!(
        (paper.name.as_str(), paper.account_type, paper.margin_mode),
        ("paper-1", AccountType::Paper, MarginMode::Cash)
    );
    assert_eq!(paper.orders_per_minute, 1000);
    assert_eq!(paper.order_burst, 100);
    assert_eq!(paper.max_drawdown_bps, 1000);
    let desk = &limits.accounts[1];
    assert_eq!(desk.account_type, AccountType::Live);
    assert_eq!(desk.margin_mode, MarginMode::Cross);
    assert_eq!(
        desk.max_gross_exposure,
        1_000_000 * 10i128.pow(VALUE_PLACES)
    );
    assert_eq!(desk.margin_call_action, MarginCallAction::Flatten);
    // binance:BTCUSDT, qty scale 5: global override 20, desk override 2; 3x → 3334 bps.
    let (global, own) = (limits.cell(0, 0).unwrap(), limits.cell(1, 0).unwrap());
    assert_eq!(
        (global.max_position, own.max_position),
        (2_000_000, 200_000)
    );
    assert_eq!(own.max_order_qty, 500_000);
    assert_eq!(own.initial_margin_bps, 3334);
    assert_eq!(own.maintenance_margin_bps, 1667);
    assert_eq!(global.initial_margin_bps, 0, "cash accounts have no margin");
    assert_eq!(limits.cell(1, 1).unwrap().max_position, NO_LIMIT_QTY);
    assert_eq!(setup.global_state, TradingState::Active);
    let usd = limits.asset_index("USD").unwrap();
    assert_eq!(setup.balances[1][usd], 50_000 * 100_000_000);
    let engine = RiskEngine::new(setup).unwrap();
    // 250000 USDT + 50000 USD.
    assert_eq!(
        engine
            .account(aaiti_model::AccountId(1))
            .unwrap()
            .margin
            .equity,
        300_000 * 100_000_000
    );
}

#[test]
fn empty_config_gets_desk_defaults() {
    let file: RiskConfigFile = toml::from_str(
        r#"
        [risk.rates]
        USDT = "1"
        EUR = "1.1"

        [[accounts]]
        name = "a"
        account_type = "paper"
        "#,
    )
    .unwrap();
    let setup = compile(&file.risk, &file.accounts, &registry()).unwrap();
    let a = &setup.limits.accounts[0];
    assert_eq!(a.margin_mode, MarginMode::Cash);
    assert_eq!(
        (a.orders_per_minute, a.max_drawdown_bps, a.max_open_orders),
        (1000, 1000, 500)
    );
    assert_eq!(a.max_order_notional, 1_000_000 * 100_000_000);
    assert_ne!(a.max_correlated_exposure, NO_LIMIT);
    assert_eq!(setup.limits.cell(0, 0).unwrap().price_band_bps, 500);
    assert!(setup.limits.cell(0, 0).unwrap().enabled);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let typo =
        toml::from_str::<RiskConfigFile>("[risk.account_defaults]\nmax_gros_exposure = \"1\"\n")
            .unwrap_err();
    assert!(typo.to_string().contains("max_gros_exposure"), "{typo}");
    let typo =
        toml::from_str::<RiskConfigFile>("[[accounts]]\nname = \"a\"\naccount_type = \"demo\"\n")
            .unwrap_err();
    assert!(typo.to_string().contains("demo"), "{typo}");

    let file: RiskConfigFile = toml::from_str(
        r#"
        [risk.rates]
        USDT = "1"
        EUR = "1.1"
        [[risk.instruments]]
        venue = "binance"
        symbol = "ETHUSDT"
        max_position = "1.00001"
        [[accounts]]
        name = "a"
        account_type = "live"
        "#,
    )
    .unwrap();
    let error = compile(&file.risk, &file.accounts, &registry()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`risk.instruments[0].max_position` = \"1.00001\" is not a valid decimal here: \
         value has more significant decimals than the scale's 4 places"
    );

    let file: RiskConfigFile = toml::from_str(
        r#"
        [risk]
        disabled_venues = ["ftx"]
        "#,
    )
    .unwrap();
    let error = compile(&file.risk, &file.accounts, &registry()).unwrap_err();
    assert!(
        error.to_string().contains("risk.disabled_venues[0]"),
        "{error}"
    );

    let file: RiskConfigFile = toml::from_str(
        r#"
        [risk.rates]
        USDT = "-1"
        "#,
    )
    .unwrap();
    let error = compile(&file.risk, &file.accounts, &registry()).unwrap_err();
    assert!(error.to_string().contains("risk.rates.USDT"), "{error}");
}
