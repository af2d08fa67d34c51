//! Configuration: the `[risk]` section and the `[[accounts]]` list, compiled against the
//! [`InstrumentRegistry`] into integer limits by [`compile`].
//!
//! Every value is optional and layered; the last layer that sets a key wins:
//!
//! * account limits: built-in desk defaults → `[risk.account_defaults]` →
//!   `[accounts.limits]` of the account;
//! * instrument limits: built-in desk defaults → `[risk.instrument_defaults]` →
//!   `[[risk.instruments]]` for that venue + symbol → `[[accounts.instruments]]` of the
//!   account for that venue + symbol.
//!
//! Decimal values are strings in human units, parsed exactly (never rounded): valuation
//! amounts in the valuation currency, order notionals per instrument in its quote asset,
//! quantities in its base asset, balances in their asset. A decimal limit of `"none"`
//! means no limit; an integer limit of `0` means no limit (except `order_burst`).
//!
//! # Built-in defaults (a trading desk's)
//!
//! | key | default |
//! |---|---|
//! | `valuation_currency` | `"USD"` (rates: `USD`, `USDT`, `USDC` = 1) |
//! | `max_order_notional` (account) | `"1000000"` |
//! | `max_gross_exposure` | `"10000000"` |
//! | `max_net_exposure` | `"5000000"` |
//! | `max_open_orders` (account) | 500 |
//! | `orders_per_minute` / `order_burst` | 1000 / 100 |
//! | `max_drawdown_bps` | 1000 (10 % of the intraday high-water mark) |
//! | `max_concentration_bps` | 10000 (one instrument ≤ 100 % of equity) |
//! | `max_correlated_exposure` / `correlation_threshold_bps` | `"5000000"` / 7000 |
//! | `max_leverage` (account) | `"5"` |
//! | `margin_call_action` | `"reduce_only"` |
//! | `enabled` (instrument) | `true` |
//! | `max_order_qty`, `max_order_notional` (instrument), `max_position` | `"none"` |
//! | `price_band_bps` | 500 |
//! | `max_open_orders` (instrument) | 200 |
//! | `max_leverage` (instrument) | `"10"` |
//! | `initial_margin_bps` | 0 (from the leverage caps only) |
//! | `maintenance_margin_bps` | half the initial margin rate |
//!
//! See the crate documentation for a complete commented example.

use std::collections::BTreeMap;

use aaiti_model::{FixedError, InstrumentRegistry, VenueId};
use serde::{Deserialize, Serialize};

use crate::account::TradingState;
use crate::decimal::{parse_i128, pow10};
use crate::engine::RiskSetup;
use crate::limits::{
    AccountLimits, AccountType, AssetParams, CellLimits, Conv, DEFAULT_OPEN_ORDER_CAPACITY,
    InstrumentParams, MAX_OPEN_ORDER_CAPACITY, MarginCallAction, MarginMode, NO_LIMIT,
    NO_LIMIT_QTY, RATE_PLACES, RiskLimits, VALUE_PLACES,
};

/// The `[risk]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Currency of every account-level amount (exposures, equity, account limits).
    pub valuation_currency: String,
    /// Static conversion table: value of one unit of each asset in the valuation
    /// currency, as decimal strings. Every quote asset of the registry and every asset
    /// with a balance needs one; the valuation currency itself is 1. A table given in the
    /// configuration replaces the default one.
    pub rates: BTreeMap<String, String>,
    /// Global trading state at start-up.
    pub trading_state: TradingState,
    /// Venues on which no new order is accepted.
    pub disabled_venues: Vec<String>,
    /// Limits for every account.
    pub account_defaults: AccountLimitsConfig,
    /// Limits for every instrument (no `venue` / `symbol` here).
    pub instrument_defaults: InstrumentLimitsConfig,
    /// Per-instrument overrides (with `venue` and `symbol`).
    pub instruments: Vec<InstrumentLimitsConfig>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            valuation_currency: "USD".to_owned(),
            rates: ["USD", "USDT", "USDC"]
                .into_iter()
                .map(|asset| (asset.to_owned(), "1".to_owned()))
                .collect(),
            trading_state: TradingState::Active,
            disabled_venues: Vec::new(),
            account_defaults: AccountLimitsConfig::default(),
            instrument_defaults: InstrumentLimitsConfig::default(),
            instruments: Vec::new(),
        }
    }
}

/// Account-level limits (valuation amounts in the valuation currency).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountLimitsConfig {
    /// Largest single order, valued (`"none"`: no limit).
    pub max_order_notional: Option<String>,
    /// Largest worst-case gross exposure.
    pub max_gross_exposure: Option<String>,
    /// Largest worst-case net exposure, either direction.
    pub max_net_exposure: Option<String>,
    /// Most open orders (0: the tracking capacity, 4096).
    pub max_open_orders: Option<u32>,
    /// Order rate per minute (0: unthrottled).
    pub orders_per_minute: Option<u32>,
    /// Orders at once after an idle period (at least 1).
    pub order_burst: Option<u32>,
    /// Drawdown from the intraday high-water mark that halts the account, bps (0: off).
    pub max_drawdown_bps: Option<u32>,
    /// Largest worst-case exposure of one instrument per unit of equity, bps (0: off).
    pub max_concentration_bps: Option<u32>,
    /// Largest sum of worst-case exposures of correlated instruments (`"none"`: off).
    pub max_correlated_exposure: Option<String>,
    /// Correlation at or above which instruments count together, bps (−10000..=10000).
    pub correlation_threshold_bps: Option<i32>,
    /// Account-wide leverage cap (decimal, at least `"1"`; margin accounts).
    pub max_leverage: Option<String>,
    /// `alert`, `reduce_only` or `flatten` on a maintenance-margin breach.
    pub margin_call_action: Option<MarginCallAction>,
}

impl AccountLimitsConfig {
    /// The built-in desk defaults (see the [module docs](self)).
    pub fn desk_defaults() -> Self {
        Self {
            max_order_notional: Some("1000000".into()),
            max_gross_exposure: Some("10000000".into()),
            max_net_exposure: Some("5000000".into()),
            max_open_orders: Some(500),
            orders_per_minute: Some(1000),
            order_burst: Some(100),
            max_drawdown_bps: Some(1000),
            max_concentration_bps: Some(10_000),
            max_correlated_exposure: Some("5000000".into()),
            correlation_threshold_bps: Some(7000),
            max_leverage: Some("5".into()),
            margin_call_action: Some(MarginCallAction::ReduceOnly),
        }
    }
}

/// Instrument-level limits; `venue` and `symbol` identify the instrument in overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstrumentLimitsConfig {
    /// Venue name (overrides only).
    pub venue: Option<String>,
    /// Venue symbol (overrides only).
    pub symbol: Option<String>,
    /// New orders allowed.
    pub enabled: Option<bool>,
    /// Largest order quantity, base units (`"none"`: no limit).
    pub max_order_qty: Option<String>,
    /// Largest order notional, quote units (`"none"`: no limit).
    pub max_order_notional: Option<String>,
    /// Price band around the reference price, bps (0: off).
    pub price_band_bps: Option<u32>,
    /// Largest worst-case position either way, base units (`"none"`: no limit).
    pub max_position: Option<String>,
    /// Most open orders of one account on the instrument (0: no limit).
    pub max_open_orders: Option<u32>,
    /// Leverage cap (decimal, at least `"1"`).
    pub max_leverage: Option<String>,
    /// Initial margin rate floor, bps (0: from leverage only).
    pub initial_margin_bps: Option<u32>,
    /// Maintenance margin rate, bps (default: half the initial rate).
    pub maintenance_margin_bps: Option<u32>,
}

impl InstrumentLimitsConfig {
    /// The built-in desk defaults (see the [module docs](self)).
    pub fn desk_defaults() -> Self {
        Self {
            venue: None,
            symbol: None,
            enabled: Some(true),
            max_order_qty: Some("none".into()),
            max_order_notional: Some("none".into()),
            price_band_bps: Some(500),
            max_position: Some("none".into()),
            max_open_orders: Some(200),
            max_leverage: Some("10".into()),
            initial_margin_bps: Some(0),
            maintenance_margin_bps: None,
        }
    }
}

/// One `[[accounts]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Dense id; optional, must equal the entry's position when given.
    #[serde(default)]
    pub id: Option<u32>,
    /// Unique name.
    pub name: String,
    /// `paper` or `live` (for the order router).
    pub account_type: AccountType,
    /// `cash`, `cross` or `isolated`.
    #[serde(default = "default_margin_mode")]
    pub margin_mode: MarginMode,
    /// Opening balances per asset, decimal strings (`{ USDT = "100000" }`).
    #[serde(default)]
    pub balances: BTreeMap<String, String>,
    /// Trading state at start-up.
    #[serde(default)]
    pub trading_state: TradingState,
    /// Account limits over `[risk.account_defaults]`.
    #[serde(default)]
    pub limits: AccountLimitsConfig,
    /// This account's per-instrument overrides (with `venue` and `symbol`).
    #[serde(default)]
    pub instruments: Vec<InstrumentLimitsConfig>,
}

fn default_margin_mode() -> MarginMode {
    MarginMode::Cash
}

/// A standalone risk configuration file: `[risk]` plus `[[accounts]]` (the engine's own
/// configuration embeds the same two keys).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfigFile {
    /// `[risk]`.
    #[serde(default)]
    pub risk: RiskConfig,
    /// `[[accounts]]`.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
}

/// Why a risk configuration cannot be compiled. Each variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskConfigError {
    /// A decimal value does not parse at the scale it needs.
    #[error("`{key}` = {value:?} is not a valid decimal here: {source}")]
    BadNumber {
        /// Full key.
        key: String,
        /// Text given.
        value: String,
        /// Parse error.
        source: FixedError,
    },
    /// A value is out of range.
    #[error("`{key}` = {value} is invalid: {reason}")]
    BadValue {
        /// Full key.
        key: String,
        /// Value given.
        value: String,
        /// What is required.
        reason: &'static str,
    },
    /// `venue` + `symbol` name no registered instrument.
    #[error("`{key}`: no instrument {venue}:{symbol} in [[instruments]]")]
    UnknownInstrument {
        /// Full key.
        key: String,
        /// Venue.
        venue: String,
        /// Symbol.
        symbol: String,
    },
    /// Unknown venue name.
    #[error("`{key}`: no venue {venue:?} in [[instruments]]")]
    UnknownVenue {
        /// Full key.
        key: String,
        /// Venue.
        venue: String,
    },
    /// An asset that must be valued has no rate.
    #[error(
        "`risk.rates` has no rate for {asset} (needed by {needed_by}); add `{asset} = \"<value of 1 {asset} in {currency}>\"`"
    )]
    MissingRate {
        /// Asset.
        asset: String,
        /// What needs it.
        needed_by: String,
        /// Valuation currency.
        currency: String,
    },
    /// Structural problem (missing or duplicated keys, ids).
    #[error("`{key}`: {problem}")]
    Invalid {
        /// Full key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

type Result<T> = std::result::Result<T, RiskConfigError>;

fn bad_number(key: &str, value: &str, source: FixedError) -> RiskConfigError {
    RiskConfigError::BadNumber {
        key: key.to_owned(),
        value: value.to_owned(),
        source,
    }
}

fn bad_value(key: &str, value: impl ToString, reason: &'static str) -> RiskConfigError {
    RiskConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_string(),
        reason,
    }
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> RiskConfigError {
    RiskConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Index of `name` in `names`, appending it if new.
fn intern(names: &mut Vec<String>, name: &str) -> usize {
    match names.iter().position(|known| known == name) {
        Some(k) => k,
        None => {
            names.push(name.to_owned());
            names.len() - 1
        }
    }
}

/// A non-negative decimal at `places`, or `none` for `no_limit`.
fn parse_limit(key: &str, text: &str, places: u32, no_limit: i128) -> Result<i128> {
    if text == "none" {
        return Ok(no_limit);
    }
    let value = parse_i128(text, places).map_err(|e| bad_number(key, text, e))?;
    if value < 0 {
        return Err(bad_value(key, format!("{text:?}"), "must not be negative"));
    }
    Ok(value)
}

/// A leverage (decimal ≥ 1) in 1/10_000.
fn parse_leverage(key: &str, text: &str) -> Result<i128> {
    let value = parse_i128(text, 4).map_err(|e| bad_number(key, text, e))?;
    if value < 10_000 {
        return Err(bad_value(key, format!("{text:?}"), "must be at least 1"));
    }
    Ok(value)
}

/// The last layer that sets a key: its key prefix and value.
fn pick<'a, T: ?Sized>(layers: &[(&'a str, Option<&'a T>)]) -> Option<(&'a str, &'a T)> {
    layers
        .iter()
        .rev()
        .find_map(|(prefix, value)| value.map(|v| (*prefix, v)))
}

macro_rules! layer {
    ($layers:expr, $field:ident) => {
        pick(
            &$layers
                .iter()
                .map(|(prefix, config)| (prefix.as_str(), config.$field.as_ref()))
                .collect::<Vec<_>>(),
        )
    };
}

/// Compiles the configuration against the registry.
///
/// # Errors
///
/// The first invalid key, with its full name and value.
pub fn compile(
    risk: &RiskConfig,
    accounts: &[AccountConfig],
    registry: &InstrumentRegistry,
) -> Result<RiskSetup> {
    let currency = risk.valuation_currency.trim();
    if currency.is_empty() {
        return Err(invalid("risk.valuation_currency", "must not be empty"));
    }

    // Venues.
    let mut venues: Vec<String> = Vec::new();
    while let Some(name) = registry.venue_name(VenueId(venues.len() as u16)) {
        venues.push(name.to_owned());
        if venues.len() > usize::from(u16::MAX) {
            break;
        }
    }
    let mut venues_enabled = vec![true; venues.len()];
    for (k, name) in risk.disabled_venues.iter().enumerate() {
        let key = format!("risk.disabled_venues[{k}]");
        let Some(v) = venues.iter().position(|known| known == name) else {
            return Err(RiskConfigError::UnknownVenue {
                key,
                venue: name.clone(),
            });
        };
        venues_enabled[v] = false;
    }

    // Assets, in a deterministic order: registry, rates, balances.
    let mut names: Vec<String> = Vec::new();
    intern(&mut names, currency);
    for inst in registry.instruments() {
        intern(&mut names, &inst.quote);
        intern(&mut names, &inst.base);
    }
    for asset in risk.rates.keys() {
        intern(&mut names, asset);
    }
    for account in accounts {
        for asset in account.balances.keys() {
            intern(&mut names, asset);
        }
    }
    let names = names;
    let intern = |name: &str| names.iter().position(|known| known == name).unwrap_or(0);
    let mut places = vec![8u32; names.len()];
    for inst in registry.instruments() {
        let raw = u32::from(inst.price_scale.places()) + u32::from(inst.qty_scale.places());
        let k = intern(&inst.quote);
        places[k] = places[k].max(raw.min(18));
    }
    let mut rates = vec![0i128; names.len()];
    rates[0] = pow10(RATE_PLACES).unwrap_or(1);
    for (asset, text) in &risk.rates {
        let key = format!("risk.rates.{asset}");
        let rate = parse_i128(text, RATE_PLACES).map_err(|e| bad_number(&key, text, e))?;
        if rate <= 0 {
            return Err(bad_value(&key, format!("{text:?}"), "must be above zero"));
        }
        rates[intern(asset)] = rate;
    }
    let missing = |asset: &str, needed_by: String| RiskConfigError::MissingRate {
        asset: asset.to_owned(),
        needed_by,
        currency: currency.to_owned(),
    };
    let mut assets = Vec::with_capacity(names.len());
    for (k, name) in names.iter().enumerate() {
        let to_value = if rates[k] > 0 {
            Conv::places(places[k], VALUE_PLACES, rates[k], RATE_PLACES)
                .ok_or_else(|| invalid(format!("risk.rates.{name}"), "rate out of range"))?
        } else {
            Conv { mul: 0, div: 1 }
        };
        assets.push(AssetParams {
            name: name.clone(),
            places: places[k],
            rate: rates[k],
            to_value,
        });
    }

    // Instruments.
    let mut instruments = Vec::with_capacity(registry.len());
    for inst in registry.instruments() {
        let quote = intern(&inst.quote);
        let base = intern(&inst.base);
        let venue_name = venues.get(inst.venue.index()).cloned().unwrap_or_default();
        let label = format!("{venue_name}:{}", inst.symbol);
        if rates[quote] <= 0 {
            return Err(missing(&inst.quote, format!("instrument {label}")));
        }
        let (ps, qs) = (
            u32::from(inst.price_scale.places()),
            u32::from(inst.qty_scale.places()),
        );
        let too_fine = || {
            invalid(
                format!("instruments ({label})"),
                "price and quantity scales too fine for risk valuation (at most 30 places together)",
            )
        };
        if ps + qs > 30 {
            return Err(too_fine());
        }
        instruments.push(InstrumentParams {
            venue: inst.venue,
            venue_name,
            symbol: inst.symbol.clone(),
            base: base as u32,
            quote: quote as u32,
            price_places: ps,
            qty_places: qs,
            to_money: Conv::places(ps + qs, places[quote], 1, 0).ok_or_else(too_fine)?,
            fee_to_money: Conv::places(ps, places[quote], 1, 0).ok_or_else(too_fine)?,
            fee_to_raw: pow10(qs).ok_or_else(too_fine)?,
            to_value: Conv::places(ps + qs, VALUE_PLACES, rates[quote], RATE_PLACES)
                .ok_or_else(too_fine)?,
        });
    }

    // Overrides.
    let resolve = |key: &str, config: &InstrumentLimitsConfig| -> Result<usize> {
        let (Some(venue), Some(symbol)) = (&config.venue, &config.symbol) else {
            return Err(invalid(key, "needs both `venue` and `symbol`"));
        };
        let Some(v) = registry.venue_id(venue) else {
            return Err(RiskConfigError::UnknownVenue {
                key: format!("{key}.venue"),
                venue: venue.clone(),
            });
        };
        registry
            .find(v, symbol)
            .map(|id| id.index())
            .ok_or_else(|| RiskConfigError::UnknownInstrument {
                key: key.to_owned(),
                venue: venue.clone(),
                symbol: symbol.clone(),
            })
    };
    let overrides = |prefix: &str, list: &[InstrumentLimitsConfig]| -> Result<Vec<Option<usize>>> {
        let mut by_instrument = vec![None; registry.len()];
        for (j, config) in list.iter().enumerate() {
            let key = format!("{prefix}[{j}]");
            let i = resolve(&key, config)?;
            if let Some(first) = by_instrument[i] {
                return Err(invalid(
                    key,
                    format!("same instrument as {prefix}[{first}]"),
                ));
            }
            by_instrument[i] = Some(j);
        }
        Ok(by_instrument)
    };
    if risk.instrument_defaults.venue.is_some() || risk.instrument_defaults.symbol.is_some() {
        return Err(invalid(
            "risk.instrument_defaults",
            "`venue` / `symbol` belong in [[risk.instruments]]",
        ));
    }
    let global_overrides = overrides("risk.instruments", &risk.instruments)?;

    // Accounts.
    let desk_account = AccountLimitsConfig::desk_defaults();
    let desk_instrument = InstrumentLimitsConfig::desk_defaults();
    let mut account_limits = Vec::with_capacity(accounts.len());
    let mut cells = Vec::with_capacity(accounts.len() * registry.len());
    let mut balances = Vec::with_capacity(accounts.len());
    let mut account_states = Vec::with_capacity(accounts.len());
    for (k, account) in accounts.iter().enumerate() {
        let prefix = format!("accounts[{k}]");
        if let Some(id) = account.id
            && id as usize != k
        {
            return Err(bad_value(
                &format!("{prefix}.id"),
                id,
                "ids are dense: must equal the entry's position (0, 1, 2, ...)",
            ));
        }
        if account.name.trim().is_empty() {
            return Err(invalid(format!("{prefix}.name"), "must not be empty"));
        }
        if let Some(first) = accounts[..k].iter().position(|a| a.name == account.name) {
            return Err(invalid(
                format!("{prefix}.name"),
                format!("{:?} is also accounts[{first}]", account.name),
            ));
        }
        let mut opening = vec![0i128; names.len()];
        for (asset, text) in &account.balances {
            let key = format!("{prefix}.balances.{asset}");
            let a = intern(asset);
            if rates[a] <= 0 {
                return Err(missing(asset, key));
            }
            opening[a] = parse_i128(text, places[a]).map_err(|e| bad_number(&key, text, e))?;
        }
        balances.push(opening);
        account_states.push(account.trading_state);

        let layers = [
            ("built-in".to_owned(), &desk_account),
            ("risk.account_defaults".to_owned(), &risk.account_defaults),
            (format!("{prefix}.limits"), &account.limits),
        ];
        let limits = compile_account(&layers, account)?;

        let own_overrides = overrides(&format!("{prefix}.instruments"), &account.instruments)?;
        for (i, inst) in instruments.iter().enumerate() {
            let mut layers = vec![
                ("built-in".to_owned(), &desk_instrument),
                (
                    "risk.instrument_defaults".to_owned(),
                    &risk.instrument_defaults,
                ),
            ];
            if let Some(j) = global_overrides[i] {
                layers.push((format!("risk.instruments[{j}]"), &risk.instruments[j]));
            }
            if let Some(j) = own_overrides[i] {
                layers.push((
                    format!("{prefix}.instruments[{j}]"),
                    &account.instruments[j],
                ));
            }
            cells.push(compile_cell(&layers, inst, &limits)?);
        }
        account_limits.push(limits);
    }

    let mut limits = RiskLimits {
        valuation_currency: currency.to_owned(),
        assets,
        instruments,
        venues_enabled,
        accounts: account_limits,
        cells,
    };
    limits
        .validate()
        .map_err(|e| invalid("risk", e.to_string()))?;
    Ok(RiskSetup {
        limits,
        balances,
        global_state: risk.trading_state,
        account_states,
    })
}

fn compile_account(
    layers: &[(String, &AccountLimitsConfig); 3],
    account: &AccountConfig,
) -> Result<AccountLimits> {
    let value = |field: &str, picked: Option<(&str, &String)>| -> Result<i128> {
        match picked {
            Some((prefix, text)) => {
                parse_limit(&format!("{prefix}.{field}"), text, VALUE_PLACES, NO_LIMIT)
            }
            None => Ok(NO_LIMIT),
        }
    };
    let int = |picked: Option<(&str, &u32)>| picked.map_or(0, |(_, v)| *v);
    let max_open_orders = match layer!(layers, max_open_orders) {
        Some((_, 0)) | None => DEFAULT_OPEN_ORDER_CAPACITY,
        Some((prefix, &n)) if n > MAX_OPEN_ORDER_CAPACITY => {
            return Err(bad_value(
                &format!("{prefix}.max_open_orders"),
                n,
                "at most 65536 open orders can be tracked per account",
            ));
        }
        Some((_, &n)) => n,
    };
    let order_burst = match layer!(layers, order_burst) {
        Some((prefix, 0)) => {
            return Err(bad_value(
                &format!("{prefix}.order_burst"),
                0,
                "must be at least 1",
            ));
        }
        Some((_, &n)) => n,
        None => 1,
    };
    let max_drawdown_bps = match layer!(layers, max_drawdown_bps) {
        Some((prefix, &n)) if n > 10_000 => {
            return Err(bad_value(
                &format!("{prefix}.max_drawdown_bps"),
                n,
                "at most 10000 (100 %)",
            ));
        }
        picked => int(picked),
    };
    let correlation_threshold_bps = match layer!(layers, correlation_threshold_bps) {
        Some((prefix, &n)) if !(-10_000..=10_000).contains(&n) => {
            return Err(bad_value(
                &format!("{prefix}.correlation_threshold_bps"),
                n,
                "must be within -10000..=10000",
            ));
        }
        Some((_, &n)) => n as i16,
        None => 10_000,
    };
    let max_leverage_e4 = match layer!(layers, max_leverage) {
        Some((prefix, text)) => parse_leverage(&format!("{prefix}.max_leverage"), text)?,
        None => 10_000,
    };
    let mut limits = AccountLimits {
        name: account.name.clone(),
        account_type: account.account_type,
        margin_mode: account.margin_mode,
        max_order_notional: value("max_order_notional", layer!(layers, max_order_notional))?,
        max_gross_exposure: value("max_gross_exposure", layer!(layers, max_gross_exposure))?,
        max_net_exposure: value("max_net_exposure", layer!(layers, max_net_exposure))?,
        max_open_orders,
        orders_per_minute: int(layer!(layers, orders_per_minute)),
        order_burst,
        emission_ns: 0,
        tolerance_ns: 0,
        max_drawdown_bps,
        max_concentration_bps: int(layer!(layers, max_concentration_bps)),
        max_correlated_exposure: value(
            "max_correlated_exposure",
            layer!(layers, max_correlated_exposure),
        )?,
        correlation_threshold_bps,
        max_leverage_e4,
        margin_call_action: layer!(layers, margin_call_action)
            .map_or(MarginCallAction::Alert, |(_, action)| *action),
    };
    limits.derive();
    Ok(limits)
}

fn compile_cell(
    layers: &[(String, &InstrumentLimitsConfig)],
    inst: &InstrumentParams,
    account: &AccountLimits,
) -> Result<CellLimits> {
    let label = format!("{}:{}", inst.venue_name, inst.symbol);
    let key = |prefix: &str, field: &str| {
        if prefix.starts_with("risk.instruments[") || prefix.contains(".instruments[") {
            format!("{prefix}.{field}")
        } else {
            format!("{prefix}.{field} (for {label})")
        }
    };
    let qty = |field: &str, picked: Option<(&str, &String)>| -> Result<i64> {
        let Some((prefix, text)) = picked else {
            return Ok(NO_LIMIT_QTY);
        };
        let key = key(prefix, field);
        let value = parse_limit(&key, text, inst.qty_places, i128::from(NO_LIMIT_QTY))?;
        i64::try_from(value).map_err(|_| {
            bad_number(
                &key,
                text,
                FixedError::Overflow {
                    places: inst.qty_places as u8,
                },
            )
        })
    };
    let max_order_notional = match layer!(layers, max_order_notional) {
        Some((prefix, text)) => parse_limit(
            &key(prefix, "max_order_notional"),
            text,
            inst.price_places + inst.qty_places,
            NO_LIMIT,
        )?,
        None => NO_LIMIT,
    };
    let leverage = match layer!(layers, max_leverage) {
        Some((prefix, text)) => parse_leverage(&key(prefix, "max_leverage"), text)?,
        None => 10_000,
    }
    .min(account.max_leverage_e4);
    // ⌈10^8 / leverage_e4⌉ bps (leverage ≥ 1, so at most 10_000).
    let from_leverage = ((100_000_000 + leverage - 1) / leverage) as u32;
    let floor = match layer!(layers, initial_margin_bps) {
        Some((prefix, &n)) if n > 10_000 => {
            return Err(bad_value(
                &key(prefix, "initial_margin_bps"),
                n,
                "at most 10000 (100 %)",
            ));
        }
        Some((_, &n)) => n,
        None => 0,
    };
    let initial = from_leverage.max(floor);
    let maintenance = match layer!(layers, maintenance_margin_bps) {
        Some((prefix, &n)) if n > initial => {
            return Err(bad_value(
                &key(prefix, "maintenance_margin_bps"),
                n,
                "must not exceed the initial margin rate (10000 / leverage, or initial_margin_bps)",
            ));
        }
        Some((_, &n)) => n,
        None => initial / 2,
    };
    let cash = account.margin_mode == MarginMode::Cash;
    Ok(CellLimits {
        enabled: layer!(layers, enabled).is_none_or(|(_, enabled)| *enabled),
        max_order_qty: qty("max_order_qty", layer!(layers, max_order_qty))?,
        max_order_notional,
        price_band_bps: layer!(layers, price_band_bps).map_or(0, |(_, v)| *v),
        max_position: qty("max_position", layer!(layers, max_position))?,
        max_open_orders: layer!(layers, max_open_orders).map_or(0, |(_, v)| *v),
        initial_margin_bps: if cash { 0 } else { initial },
        maintenance_margin_bps: if cash { 0 } else { maintenance },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aaiti_model::InstrumentSpec;

    fn registry() -> InstrumentRegistry {
        let spec = |venue: &str, symbol: &str, base: &str, quote: &str| InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: base.into(),
            quote: quote.into(),
            price_scale: 2,
            qty_scale: 5,
            tick_size: "0.01".into(),
            lot_size: "0.00001".into(),
            min_notional: "5".into(),
        };
        InstrumentRegistry::from_specs(&[
            spec("binance", "BTCUSDT", "BTC", "USDT"),
            spec("kraken", "XBT/EUR", "XBT", "EUR"),
        ])
        .unwrap()
    }

    fn account(name: &str) -> AccountConfig {
        AccountConfig {
            id: None,
            name: name.into(),
            account_type: AccountType::Paper,
            margin_mode: MarginMode::Cross,
            balances: [("USDT".to_owned(), "100000".to_owned())].into(),
            trading_state: TradingState::Active,
            limits: AccountLimitsConfig::default(),
            instruments: Vec::new(),
        }
    }

    fn risk() -> RiskConfig {
        let mut risk = RiskConfig::default();
        risk.rates.insert("EUR".into(), "1.08".into());
        risk
    }

    #[test]
    fn defaults_compile() {
        let setup = compile(&risk(), &[account("a")], &registry()).unwrap();
        let limits = &setup.limits;
        let a = &limits.accounts[0];
        assert_eq!(a.orders_per_minute, 1000);
        assert_eq!(a.emission_ns, 60_000_000);
        assert_eq!(a.max_drawdown_bps, 1000);
        assert_eq!(a.max_gross_exposure, 10_000_000 * 100_000_000);
        let cell = limits.cell(0, 0).unwrap();
        assert_eq!(cell.max_position, NO_LIMIT_QTY);
        assert_eq!(cell.price_band_bps, 500);
        // min(10x instrument, 5x account) = 5x: 20 % initial, 10 % maintenance.
        assert_eq!(cell.initial_margin_bps, 2000);
        assert_eq!(cell.maintenance_margin_bps, 1000);
        let usdt = limits.asset_index("USDT").unwrap();
        assert_eq!(limits.assets[usdt].places, 8);
        assert_eq!(setup.balances[0][usdt], 100_000 * 100_000_000);
        let eur = limits.asset_index("EUR").unwrap();
        assert_eq!(limits.assets[eur].rate, 1_080_000_000_000);
    }

    #[test]
    fn layers_override_in_order() {
        let mut risk = risk();
        risk.instrument_defaults.max_position = Some("10".into());
        risk.instruments.push(InstrumentLimitsConfig {
            venue: Some("binance".into()),
            symbol: Some("BTCUSDT".into()),
            max_position: Some("5".into()),
            max_leverage: Some("2".into()),
            ..Default::default()
        });
        let mut a = account("a");
        a.instruments.push(InstrumentLimitsConfig {
            venue: Some("binance".into()),
            symbol: Some("BTCUSDT".into()),
            max_order_qty: Some("0.5".into()),
            ..Default::default()
        });
        let mut b = account("b");
        b.limits.max_gross_exposure = Some("none".into());
        b.margin_mode = MarginMode::Cash;
        let setup = compile(&risk, &[a, b], &registry()).unwrap();
        let l = &setup.limits;
        assert_eq!(l.cell(0, 0).unwrap().max_position, 500_000);
        assert_eq!(l.cell(0, 0).unwrap().max_order_qty, 50_000);
        assert_eq!(l.cell(0, 0).unwrap().initial_margin_bps, 5000);
        assert_eq!(l.cell(0, 1).unwrap().max_position, 1_000_000);
        assert_eq!(l.cell(1, 0).unwrap().max_order_qty, NO_LIMIT_QTY);
        assert_eq!(l.cell(1, 0).unwrap().initial_margin_bps, 0);
        assert_eq!(l.accounts[1].max_gross_exposure, NO_LIMIT);
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let mut a = account("a");
        a.limits.max_gross_exposure = Some("1e6".into());
        let error = compile(&risk(), &[a], &registry()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("accounts[0].limits.max_gross_exposure"),
            "{error}"
        );
        assert!(error.to_string().contains("1e6"), "{error}");

        let mut risk2 = risk();
        risk2.instrument_defaults.max_order_qty = Some("0.000001".into());
        let error = compile(&risk2, &[account("a")], &registry()).unwrap_err();
        assert!(
            matches!(&error, RiskConfigError::BadNumber { key, .. }
                if key.starts_with("risk.instrument_defaults.max_order_qty")),
            "{error}"
        );

        let error = compile(&RiskConfig::default(), &[account("a")], &registry()).unwrap_err();
        assert!(
            matches!(&error, RiskConfigError::MissingRate { asset, .. } if asset == "EUR"),
            "{error}"
        );

        let mut risk3 = risk();
        risk3.instruments.push(InstrumentLimitsConfig {
            venue: Some("binance".into()),
            symbol: Some("DOGEUSDT".into()),
            ..Default::default()
        });
        assert!(matches!(
            compile(&risk3, &[account("a")], &registry()),
            Err(RiskConfigError::UnknownInstrument { .. })
        ));

        let mut a = account("a");
        a.id = Some(3);
        assert!(matches!(
            compile(&risk(), &[a], &registry()),
            Err(RiskConfigError::BadValue { .. })
        ));
        assert!(matches!(
            compile(&risk(), &[account("a"), account("a")], &registry()),
            Err(RiskConfigError::Invalid { .. })
        ));
        let mut a = account("a");
        a.limits.max_leverage = Some("0.5".into());
        assert!(matches!(
            compile(&risk(), &[a], &registry()),
            Err(RiskConfigError::BadValue { .. })
        ));
        let mut a = account("a");
        a.instruments.push(InstrumentLimitsConfig {
            venue: Some("binance".into()),
            symbol: Some("BTCUSDT".into()),
            maintenance_margin_bps: Some(2500),
            ..Default::default()
        });
        assert!(matches!(
            compile(&risk(), &[a], &registry()),
            Err(RiskConfigError::BadValue { .. })
        ));
        let mut a = account("a");
        a.balances.insert("DOGE".into(), "5".into());
        assert!(matches!(
            compile(&risk(), &[a], &registry()),
            Err(RiskConfigError::MissingRate { .. })
        ));
    }
}
