//! Compiled risk parameters: every limit as an integer mantissa, basis points or a count,
//! resolved per account and per (account, instrument) cell, plus the unit conversions.
//!
//! [`crate::config::compile`] builds a [`RiskLimits`] from configuration; the engine holds
//! one and swaps it whole in [`RiskEngine::replace_limits`](crate::RiskEngine::replace_limits).
//!
//! # Units
//!
//! | amount | integer | places |
//! |---|---|---|
//! | valuation (exposures, equity, account limits) | `i128` | [`VALUE_PLACES`] of the valuation currency |
//! | money (balances, fees, P&L per asset) | `i128` | the asset's [`AssetParams::places`] |
//! | raw notional (`price × qty` mantissas) | `i128` | the instrument's price + qty places, quote asset |
//! | quantities, prices | `i64` | the instrument's scales |
//! | ratios | `u32` / `i16` | basis points |
//!
//! "No limit" is the type's maximum ([`NO_LIMIT`], [`NO_LIMIT_QTY`], `u32::MAX`).

use aaiti_model::VenueId;
use serde::{Deserialize, Serialize};

use crate::RiskError;
use crate::decimal::pow10;

/// Decimal places of valuation amounts (1e-8 of the valuation currency).
pub const VALUE_PLACES: u32 = 8;
/// Decimal places of conversion rates (value of one unit of an asset in the valuation
/// currency).
pub const RATE_PLACES: u32 = 12;
/// Unlimited valuation or notional limit.
pub const NO_LIMIT: i128 = i128::MAX;
/// Unlimited quantity limit.
pub const NO_LIMIT_QTY: i64 = i64::MAX;
/// Open orders tracked per account when its limit is not set (`max_open_orders = 0`).
pub const DEFAULT_OPEN_ORDER_CAPACITY: u32 = 4_096;
/// Highest configurable `max_open_orders` per account (tracking is preallocated).
pub const MAX_OPEN_ORDER_CAPACITY: u32 = 65_536;
/// Extra preallocated open-order slots per account for liquidation orders, which bypass
/// the open-order limit.
pub const LIQUIDATION_SLOTS: usize = 16;

/// `x × mul / div`: an exact unit conversion when one side is 1, a rate conversion
/// otherwise. Integer division truncates toward zero.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    /// Multiplier (> 0).
    pub mul: i128,
    /// Divisor (> 0).
    pub div: i128,
}

impl Conv {
    /// The identity.
    pub const ONE: Self = Self { mul: 1, div: 1 };

    /// The conversion from `from` to `to` decimal places, multiplied by `rate` (a
    /// mantissa at `rate_places`). `None` if a power of ten leaves the `i128` range.
    pub(crate) fn places(from: u32, to: u32, rate: i128, rate_places: u32) -> Option<Self> {
        // x·rate / 10^(from + rate_places - to)
        let up = to;
        let down = from + rate_places;
        let (mul, div) = if up >= down {
            (rate.checked_mul(pow10(up - down)?)?, 1)
        } else {
            (rate, pow10(down - up)?)
        };
        if mul <= 0 {
            return None;
        }
        // Reduced, so a rate of 1 between places is a pure multiplication or division.
        let g = gcd(mul, div);
        Some(Self {
            mul: mul / g,
            div: div / g,
        })
    }

    /// `x × mul / div`, saturating at the `i128` range (never panics).
    #[inline]
    pub fn apply(self, x: i128) -> i128 {
        if self.div == 1 {
            x.saturating_mul(self.mul)
        } else if self.mul == 1 {
            x / self.div
        } else {
            mul_div(x, self.mul, self.div)
        }
    }

    /// `x × mul / div`, or `None` if the result leaves the `i128` range.
    #[inline]
    pub fn apply_checked(self, x: i128) -> Option<i128> {
        if self.div == 1 {
            x.checked_mul(self.mul)
        } else if self.mul == 1 {
            Some(x / self.div)
        } else {
            match x.checked_mul(self.mul) {
                Some(product) => Some(product / self.div),
                None => {
                    let (q, r) = (x / self.div, x % self.div);
                    q.checked_mul(self.mul)?
                        .checked_add(r.checked_mul(self.mul)? / self.div)
                }
            }
        }
    }
}

/// Greatest common divisor of two positive numbers.
fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `x × m / d` for `m, d > 0`, saturating; falls back to splitting `x` by `d` when the
/// product overflows.
#[inline]
fn mul_div(x: i128, m: i128, d: i128) -> i128 {
    match x.checked_mul(m) {
        Some(product) => product / d,
        None => {
            let (q, r) = (x / d, x % d);
            q.saturating_mul(m).saturating_add(r.saturating_mul(m) / d)
        }
    }
}

/// Whether the account is simulated or real; the order router uses it, risk does not.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// Orders go to the paper venue.
    Paper,
    /// Orders go to the real venue.
    Live,
}

/// How an account's orders are funded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMode {
    /// Spot: buys are paid in full from the quote balance, sells need inventory (no
    /// shorts), no leverage.
    Cash,
    /// One margin pool per account: equity (cash + unrealized P&L) backs every position.
    Cross,
    /// Margin per position: unrealized gains do not back other positions and the
    /// maintenance check is per position.
    Isolated,
}

/// What a maintenance-margin breach triggers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginCallAction {
    /// A risk event only.
    Alert,
    /// The account becomes reduce-only.
    ReduceOnly,
    /// The account becomes reduce-only and the engine flattens the breached positions.
    Flatten,
}

impl MarginCallAction {
    /// The [`aaiti_model::RiskEvent`] `action` code (0 alert, 1 reduce-only, 4 flatten).
    pub const fn action_code(self) -> u8 {
        match self {
            Self::Alert => 0,
            Self::ReduceOnly => 1,
            Self::Flatten => 4,
        }
    }
}

/// One asset (currency or coin) known to risk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetParams {
    /// Asset name, e.g. `USDT`.
    pub name: String,
    /// Decimal places of money amounts in this asset: at least 8, at least the price +
    /// quantity places of every instrument quoted in it, at most 18.
    pub places: u32,
    /// Value of one unit in the valuation currency, at [`RATE_PLACES`]; 0 if unvalued.
    pub rate: i128,
    /// Money (at `places`) to valuation amount.
    pub to_value: Conv,
}

/// Per-instrument facts and conversions (from the registry and the rate table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentParams {
    /// Venue id.
    pub venue: VenueId,
    /// Venue name.
    pub venue_name: String,
    /// Venue symbol.
    pub symbol: String,
    /// Base asset index into [`RiskLimits::assets`].
    pub base: u32,
    /// Quote asset index into [`RiskLimits::assets`].
    pub quote: u32,
    /// Price decimal places.
    pub price_places: u32,
    /// Quantity decimal places.
    pub qty_places: u32,
    /// Raw notional to quote money (exact unless price + qty places exceed 18).
    pub to_money: Conv,
    /// Fee (quote, at the price scale) to quote money.
    pub fee_to_money: Conv,
    /// Fee (quote, at the price scale) to raw notional units: `10^qty_places`.
    pub fee_to_raw: i128,
    /// Raw notional to valuation amount.
    pub to_value: Conv,
}

/// Limits of one account (valuation amounts at [`VALUE_PLACES`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    /// Account name.
    pub name: String,
    /// Paper or live.
    pub account_type: AccountType,
    /// Cash, cross or isolated margin.
    pub margin_mode: MarginMode,
    /// Largest single order, valued.
    pub max_order_notional: i128,
    /// Largest worst-case gross exposure, valued.
    pub max_gross_exposure: i128,
    /// Largest worst-case net exposure (either direction), valued.
    pub max_net_exposure: i128,
    /// Most open orders (always finite: the tracking capacity).
    pub max_open_orders: u32,
    /// Order rate, orders per minute (0: unthrottled).
    pub orders_per_minute: u32,
    /// Orders allowed at once after an idle period (at least 1).
    pub order_burst: u32,
    /// Throttle emission interval, ns per order (derived; 0: unthrottled).
    pub emission_ns: u64,
    /// Throttle burst tolerance, ns (derived).
    pub tolerance_ns: u64,
    /// Drawdown from the intraday equity high-water mark that halts the account, bps
    /// (0: off).
    pub max_drawdown_bps: u32,
    /// Largest worst-case exposure of one instrument as a share of equity, bps (0: off).
    pub max_concentration_bps: u32,
    /// Largest sum of worst-case exposures of instruments correlated with the order's.
    pub max_correlated_exposure: i128,
    /// Correlation (bps) at or above which instruments count together.
    pub correlation_threshold_bps: i16,
    /// Account-wide leverage cap, in 1/10_000 (50_000 = 5×).
    pub max_leverage_e4: i128,
    /// Maintenance breach action.
    pub margin_call_action: MarginCallAction,
}

impl AccountLimits {
    /// Recomputes the derived throttle fields from `orders_per_minute` and `order_burst`.
    pub(crate) fn derive(&mut self) {
        self.order_burst = self.order_burst.max(1);
        if self.orders_per_minute == 0 {
            self.emission_ns = 0;
            self.tolerance_ns = 0;
        } else {
            self.emission_ns = 60_000_000_000 / u64::from(self.orders_per_minute);
            self.tolerance_ns = self
                .emission_ns
                .saturating_mul(u64::from(self.order_burst - 1));
        }
        self.max_open_orders = self.max_open_orders.clamp(1, MAX_OPEN_ORDER_CAPACITY);
    }
}

/// Limits of one (account, instrument) cell (quantities at the instrument's qty scale).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellLimits {
    /// The account may trade the instrument.
    pub enabled: bool,
    /// Largest order quantity.
    pub max_order_qty: i64,
    /// Largest order notional, raw (quote asset at price + qty places).
    pub max_order_notional: i128,
    /// Price band around the reference price, bps (0: off).
    pub price_band_bps: u32,
    /// Largest worst-case position either way (position + same-side open orders + order).
    pub max_position: i64,
    /// Most open orders of the account on the instrument (0: no limit).
    pub max_open_orders: u32,
    /// Initial margin rate, bps (from the leverage caps; 0 for cash accounts).
    pub initial_margin_bps: u32,
    /// Maintenance margin rate, bps (0 for cash accounts).
    pub maintenance_margin_bps: u32,
}

/// Every compiled limit and conversion; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskLimits {
    /// Valuation currency name.
    pub valuation_currency: String,
    /// Assets, dense.
    pub assets: Vec<AssetParams>,
    /// Instruments, in registry order.
    pub instruments: Vec<InstrumentParams>,
    /// Per venue: trading enabled.
    pub venues_enabled: Vec<bool>,
    /// Accounts, in configuration order.
    pub accounts: Vec<AccountLimits>,
    /// Cells, `account × instruments.len() + instrument`.
    pub cells: Vec<CellLimits>,
}

impl RiskLimits {
    /// Index of the (account, instrument) cell (`None` if out of range).
    #[inline]
    pub fn cell_index(&self, account: usize, instrument: usize) -> Option<usize> {
        if instrument >= self.instruments.len() || account >= self.accounts.len() {
            return None;
        }
        Some(account * self.instruments.len() + instrument)
    }

    /// The limits of an (account, instrument) cell.
    pub fn cell(&self, account: usize, instrument: usize) -> Option<&CellLimits> {
        self.cells.get(self.cell_index(account, instrument)?)
    }

    /// Mutable limits of an (account, instrument) cell (for building changed limits).
    pub fn cell_mut(&mut self, account: usize, instrument: usize) -> Option<&mut CellLimits> {
        let index = self.cell_index(account, instrument)?;
        self.cells.get_mut(index)
    }

    /// Index of an asset by name.
    pub fn asset_index(&self, name: &str) -> Option<usize> {
        self.assets.iter().position(|asset| asset.name == name)
    }

    /// Checks the internal consistency (table sizes, indexes, positive divisors) and
    /// recomputes derived fields; called on every limits change and restore.
    pub(crate) fn validate(&mut self) -> Result<(), RiskError> {
        let expected = self.accounts.len() * self.instruments.len();
        if self.cells.len() != expected {
            return Err(RiskError::Shape {
                what: "limit cells",
                expected,
                found: self.cells.len(),
            });
        }
        let conv_ok = |c: &Conv| c.mul > 0 && c.div > 0;
        for asset in &self.assets {
            // Unvalued assets (no rate) convert to 0: mul 0.
            if asset.to_value.mul < 0 || asset.to_value.div <= 0 || asset.rate < 0 {
                return Err(invalid("asset", &asset.name));
            }
        }
        for inst in &self.instruments {
            let assets = self.assets.len();
            if inst.base as usize >= assets
                || inst.quote as usize >= assets
                || inst.venue.index() >= self.venues_enabled.len()
                || !conv_ok(&inst.to_money)
                || !conv_ok(&inst.fee_to_money)
                || !conv_ok(&inst.to_value)
                || inst.fee_to_raw <= 0
            {
                return Err(invalid("instrument", &inst.symbol));
            }
        }
        for cell in &self.cells {
            if cell.maintenance_margin_bps > cell.initial_margin_bps {
                return Err(RiskError::Invalid {
                    what: "limits",
                    detail: "maintenance margin above initial margin".into(),
                });
            }
        }
        for account in &mut self.accounts {
            account.derive();
        }
        Ok(())
    }
}

fn invalid(what: &'static str, name: &str) -> RiskError {
    RiskError::Invalid {
        what,
        detail: format!("{name}: inconsistent parameters"),
    }
}

/// One changed limit, for the journal and the desk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitDiff {
    /// Account concerned (`None`: not account-specific).
    pub account: Option<u32>,
    /// Instrument or venue or asset concerned (`None`: account-wide).
    pub instrument: Option<u32>,
    /// Field name, as in configuration.
    pub field: &'static str,
    /// Previous value (integer form, see [`RiskLimits`] units; booleans 0/1).
    pub old: i128,
    /// New value.
    pub new: i128,
}

/// Every difference between two limit sets of the same shape, in a deterministic order
/// (venues, assets, accounts, then cells in index order).
pub(crate) fn diff(old: &RiskLimits, new: &RiskLimits) -> Vec<LimitDiff> {
    let mut out = Vec::new();
    let mut push =
        |account: Option<u32>, instrument: Option<u32>, field: &'static str, a: i128, b: i128| {
            if a != b {
                out.push(LimitDiff {
                    account,
                    instrument,
                    field,
                    old: a,
                    new: b,
                });
            }
        };
    for (v, (a, b)) in old
        .venues_enabled
        .iter()
        .zip(&new.venues_enabled)
        .enumerate()
    {
        push(
            None,
            Some(v as u32),
            "venue_enabled",
            i128::from(*a),
            i128::from(*b),
        );
    }
    for (k, (a, b)) in old.assets.iter().zip(&new.assets).enumerate() {
        push(None, Some(k as u32), "rate", a.rate, b.rate);
    }
    for (k, (a, b)) in old.accounts.iter().zip(&new.accounts).enumerate() {
        let id = Some(k as u32);
        macro_rules! fields {
            ($($f:ident),*) => {$(
                push(id, None, stringify!($f), i128::from(a.$f), i128::from(b.$f));
            )*};
        }
        fields!(
            max_open_orders,
            orders_per_minute,
            order_burst,
            max_drawdown_bps,
            max_concentration_bps,
            correlation_threshold_bps
        );
        for (name, x, y) in [
            (
                "max_order_notional",
                a.max_order_notional,
                b.max_order_notional,
            ),
            (
                "max_gross_exposure",
                a.max_gross_exposure,
                b.max_gross_exposure,
            ),
            ("max_net_exposure", a.max_net_exposure, b.max_net_exposure),
            (
                "max_correlated_exposure",
                a.max_correlated_exposure,
                b.max_correlated_exposure,
            ),
            ("max_leverage", a.max_leverage_e4, b.max_leverage_e4),
            (
                "margin_call_action",
                i128::from(a.margin_call_action.action_code()),
                i128::from(b.margin_call_action.action_code()),
            ),
        ] {
            push(id, None, name, x, y);
        }
    }
    let n = old.instruments.len().max(1);
    for (index, (a, b)) in old.cells.iter().zip(&new.cells).enumerate() {
        let (account, instrument) = (Some((index / n) as u32), Some((index % n) as u32));
        macro_rules! fields {
            ($($f:ident),*) => {$(
                push(account, instrument, stringify!($f), i128::from(a.$f), i128::from(b.$f));
            )*};
        }
        fields!(
            enabled,
            max_order_qty,
            max_order_notional,
            price_band_bps,
            max_position,
            max_open_orders,
            initial_margin_bps,
            maintenance_margin_bps
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        // 2 price + 8 qty places to 10 money places: identity.
        let c = Conv::places(10, 10, 1, 0).unwrap();
        assert_eq!(c, Conv::ONE);
        // Raw at 10 places, rate 1 at 12 places, to 8 value places: divide by 10^14.
        let c = Conv::places(10, 8, 1_000_000_000_000, 12).unwrap();
        assert_eq!(c, Conv { mul: 1, div: 100 });
        assert_eq!(c.apply(12_345_600_000_000), 123_456_000_000);
        // A rate of 1.08 keeps a reduced fraction.
        let c = Conv::places(7, 8, 1_080_000_000_000, 12).unwrap();
        assert_eq!(c, Conv { mul: 54, div: 5 });
        assert_eq!(c.apply(100), 1_080);
        // Scaling up.
        let c = Conv::places(2, 10, 1, 0).unwrap();
        assert_eq!(c.apply(5), 500_000_000);
        assert_eq!(c.apply(i128::MAX), i128::MAX);
        assert_eq!(c.apply_checked(i128::MAX), None);
        // Rate with overflowing product falls back to the split computation.
        let c = Conv {
            mul: 60_000_000_000_000_000,
            div: 100_000_000_000_000,
        };
        let x = i128::MAX / 1_000;
        assert_eq!(
            c.apply(x),
            (x / c.div) * c.mul + (x % c.div) * c.mul / c.div
        );
        assert_eq!(c.apply(-x), -c.apply(x));
        assert!(Conv::places(30, 0, 1, 12).is_none());
    }

    #[test]
    fn throttle_derivation() {
        let mut a = AccountLimits {
            name: "a".into(),
            account_type: AccountType::Paper,
            margin_mode: MarginMode::Cash,
            max_order_notional: NO_LIMIT,
            max_gross_exposure: NO_LIMIT,
            max_net_exposure: NO_LIMIT,
            max_open_orders: 0,
            orders_per_minute: 1000,
            order_burst: 0,
            emission_ns: 0,
            tolerance_ns: 0,
            max_drawdown_bps: 0,
            max_concentration_bps: 0,
            max_correlated_exposure: NO_LIMIT,
            correlation_threshold_bps: 10_000,
            max_leverage_e4: 10_000,
            margin_call_action: MarginCallAction::Alert,
        };
        a.derive();
        assert_eq!(a.emission_ns, 60_000_000);
        assert_eq!(a.order_burst, 1);
        assert_eq!(a.tolerance_ns, 0);
        assert_eq!(a.max_open_orders, 1);
    }
}
