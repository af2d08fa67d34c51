//! Pre-trade risk, positions, P&L, margin and VaR (issue 5).
//!
//! The [`RiskEngine`] owns, for every configured account: positions per instrument (signed
//! quantity, cost basis, realized / unrealized P&L, fees), balances per asset, the orders
//! the account has open, its order throttle, trading state, kill switch and equity
//! high-water mark; and it runs the pre-trade check ([`pretrade`]) against limits compiled
//! from configuration ([`config`], [`limits`]). The [`monitor`] module (VaR, volatility,
//! correlations) is separate and feeds the correlation matrix in.
//!
//! Everything on the per-order path is integer fixed point (`i128` notionals, basis-point
//! ratios), allocation-free, lock-free, panic-free and deterministic: time comes from the
//! caller (`UnixNanos` of the events), state lives in dense vectors indexed by account and
//! instrument, and replaying the same calls gives the same results.
//!
//! # Accounting model
//!
//! * P&L and fees settle in the instrument's **quote asset**. Margin accounts (`cross`,
//!   `isolated`): a fill moves the quote balance by realized P&L − fee; equity is balances
//!   plus unrealized P&L. Cash accounts (`cash`, spot-like): a fill moves the quote balance by
//!   −side × notional − fee and the position is the inventory; equity = balances + market
//!   value of positions. In both, `equity − opening equity = realized + unrealized − fees`.
//! * **Valuation**: exposures, equity and account limits are in one valuation currency.
//!   Each instrument's notional is in its quote asset and converted with a static rate
//!   table per asset (`[risk.rates]`, changed at run time with
//!   [`RiskEngine::replace_limits`]). Instrument-level notional limits stay in the quote
//!   asset. See [`limits`] for units and [`margin`] for the worst-case exposure and margin
//!   rules.
//!
//! # How the engine calls it
//!
//! 1. Start-up: `let setup = config::compile(&risk_config, &accounts, &registry)?;` then
//!    [`RiskEngine::new`]`(setup)`, or deserialize a snapshot (a `RiskEngine` is
//!    `Serialize + Deserialize`; deserializing validates and rebuilds).
//! 2. Correlations from the monitor: [`RiskEngine::set_correlations`].
//! 3. New order: [`RiskEngine::check_new_order`]`(&order, now)`; on `Err(reject)`
//!    journal [`RiskReject::event`]; on `Ok` call [`RiskEngine::on_order_accepted`]
//!    before the next check.
//! 4. Execution reports: [`RiskEngine::on_fill`] (with the order id: it also reduces the
//!    order's leaves), [`RiskEngine::on_order_reduced`] (partial cancel / replace down),
//!    [`RiskEngine::on_order_done`] (cancel, expiry, venue reject, or fully filled — a
//!    fill to zero leaves removes the order already, and `on_order_done` then returns
//!    `UnknownOrder`, which is harmless).
//! 5. Market data: [`RiskEngine::on_mark`]`(instrument, price, ts, &mut breaches)`.
//! 6. Breaches from 4 and 5 ([`Breach`]): journal the event; for `Halt` cancel the
//!    account's orders; for `Flatten` send [`RiskEngine::flatten_orders`] as liquidation
//!    orders.
//! 7. Desk: [`RiskEngine::engage_kill_switch`] (returns the orders to cancel and the
//!    positions to flatten), [`RiskEngine::release_kill_switch`],
//!    [`RiskEngine::set_trading_state`], [`RiskEngine::reset_high_water_mark`],
//!    [`RiskEngine::replace_limits`] (recompile the edited configuration; journal
//!    [`LimitsChange::events`]), [`RiskEngine::report`] for a serializable view.
//!
//! ```
//! use aaiti_model::*;
//! use aaiti_risk::config::{compile, RiskConfigFile};
//! use aaiti_risk::{Fill, NewOrder, RiskEngine};
//!
//! let registry = InstrumentRegistry::from_specs(&[InstrumentSpec {
//!     venue: "binance".into(), symbol: "BTCUSDT".into(), base: "BTC".into(),
//!     quote: "USDT".into(), price_scale: 2, qty_scale: 5, tick_size: "0.01".into(),
//!     lot_size: "0.00001".into(), min_notional: "5".into(),
//! }])?;
//! let file: RiskConfigFile = toml::from_str(r#"
//!     [[accounts]]
//!     name = "paper-1"
//!     account_type = "paper"
//!     margin_mode = "cash"
//!     balances = { USDT = "100000" }
//! "#)?;
//! let mut risk = RiskEngine::new(compile(&file.risk, &file.accounts, &registry)?)?;
//!
//! let (account, btc) = (AccountId(0), InstrumentId(0));
//! let order = NewOrder {
//!     account, instrument: btc, order_id: OrderId(1), side: Side::Buy,
//!     order_type: OrderType::Limit, price: Price(6_000_000), qty: Qty(100_000),
//!     flags: OrderFlags::NONE, reference_price: Price(6_000_100), liquidation: false,
//! };
//! let now = UnixNanos(1_700_000_000_000_000_000);
//! risk.check_new_order(&order, now).expect("within limits");
//! risk.on_order_accepted(account, btc, OrderId(1), Side::Buy, order.price, order.qty)?;
//!
//! let mut breaches = Vec::new();
//! risk.on_fill(&Fill { account, instrument: btc, order_id: OrderId(1), side: Side::Buy,
//!     price: Price(6_000_000), qty: Qty(100_000), fee: 6_000, ts: now }, &mut breaches)?;
//! risk.on_mark(btc, Price(6_100_000), now, &mut breaches)?;
//! let view = risk.position(account, btc)?;
//! assert_eq!(view.position.qty, 100_000);
//! assert_eq!(view.unrealized, 100_000 * 100_000); // 1 BTC × 1000 USDT, raw at 7 places
//! assert!(breaches.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Configuration
//!
//! The `[risk]` section and `[[accounts]]`, with every key (values shown are the built-in
//! defaults except the rates, overrides and accounts):
//!
//! ```toml
//! [risk]
//! valuation_currency = "USD"   # currency of exposures, equity and account-level limits
//! trading_state = "active"     # global state at start-up: active | reduce_only | halted
//! disabled_venues = []         # venues that take no new orders
//!
//! # Value of 1 unit of each asset in the valuation currency. Exposures are measured in
//! # each instrument's quote asset and converted with this static table; every quote asset
//! # of [[instruments]] and every asset with a balance needs a rate (start-up fails
//! # otherwise). Giving the table replaces the default (USD, USDT, USDC = 1).
//! [risk.rates]
//! USD = "1"
//! USDT = "1"
//! EUR = "1.08"
//! GBP = "1.27"
//! CHF = "1.13"
//! BTC = "60000"
//! XBT = "60000"
//! ETH = "3000"
//!
//! # Limits of every account. Decimal strings in the valuation currency ("none": no
//! # limit); integers 0 mean no limit.
//! [risk.account_defaults]
//! max_order_notional = "1000000"      # one order's notional
//! max_gross_exposure = "10000000"     # Σ worst-case |position + open orders| × mark
//! max_net_exposure = "5000000"        # |Σ signed worst case| in the order's direction
//! max_open_orders = 500               # per account (0: 4096, the tracking capacity)
//! orders_per_minute = 1000            # token bucket on engine time (0: unthrottled)
//! order_burst = 100                   # orders at once after an idle period
//! max_drawdown_bps = 1000             # halt 10 % below the intraday equity high (0: off)
//! max_concentration_bps = 10000       # one instrument ≤ 100 % of equity (0: off)
//! max_correlated_exposure = "5000000" # Σ exposure of instruments with rho ≥ threshold
//! correlation_threshold_bps = 7000    # rho ≥ 0.70 counts as correlated
//! max_leverage = "5"                  # margin accounts: caps every instrument's leverage
//! margin_call_action = "reduce_only"  # on maintenance breach: alert | reduce_only | flatten
//!
//! # Limits of every instrument: quantities in base units, notionals in quote units.
//! [risk.instrument_defaults]
//! enabled = true
//! max_order_qty = "none"
//! max_order_notional = "none"
//! price_band_bps = 500                # fat finger: ≤ 5 % from the engine's reference price
//! max_position = "none"               # worst case: position + same-side open orders + order
//! max_open_orders = 200               # per account on this instrument (0: no limit)
//! max_leverage = "10"                 # initial margin = 10000 / min(this, account's) bps
//! initial_margin_bps = 0              # floor on the initial margin rate
//! # maintenance_margin_bps = 500      # default: half the initial margin rate
//!
//! # Overrides for one instrument, by venue and symbol.
//! [[risk.instruments]]
//! venue = "binance"
//! symbol = "BTCUSDT"
//! max_order_qty = "5"
//! max_order_notional = "500000"
//! max_position = "20"
//!
//! # Accounts; ids are dense in this order (an `id` key, if given, must match).
//! [[accounts]]
//! name = "paper-1"
//! account_type = "paper"              # paper | live (for the order router)
//! margin_mode = "cash"                # cash | cross | isolated
//! balances = { USDT = "100000" }      # decimal strings per asset
//!
//! [[accounts]]
//! name = "desk-margin"
//! account_type = "live"
//! margin_mode = "cross"
//! balances = { USDT = "250000", USD = "50000" }
//! trading_state = "active"
//!
//! [accounts.limits]                   # this account's overrides of account_defaults
//! max_gross_exposure = "1000000"
//! max_leverage = "3"
//! margin_call_action = "flatten"
//!
//! [[accounts.instruments]]            # this account's overrides for one instrument
//! venue = "binance"
//! symbol = "BTCUSDT"
//! max_position = "2"
//! ```
//!
//! # Limits of this implementation
//!
//! * Rates are static (configuration or admin change), not marked to market.
//! * Cash accounts cannot short, and base-asset balances do not back sells (inventory is
//!   the position acquired through the instrument); fees are not reserved for open buys.
//! * An order's quantity or price cannot be increased in place: check the new order and
//!   mark the old one done.
//! * The high-water mark resets at the first equity update of each UTC day (engine time).
#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod config;
mod decimal;
pub mod engine;
pub mod error;
pub mod limits;
pub mod margin;
pub mod monitor;
pub mod position;
pub mod pretrade;
pub mod report;
pub mod throttle;

pub use account::{OpenOrder, TradingState};
pub use admin::{KillSwitchIntent, LimitsChange, Scope};
pub use config::{RiskConfig, RiskConfigError, compile};
pub use engine::{Fill, RiskEngine, RiskSetup};
pub use error::{RiskError, RiskReject};
pub use limits::{AccountType, MarginCallAction, MarginMode, RiskLimits};
pub use margin::{Breach, BreachAction, FlattenOrder, MarginStatus};
pub use position::Position;
pub use pretrade::NewOrder;
pub use report::{AccountView, PositionView, RiskReport};
