//! The real-time risk monitor: EWMA volatility and correlations, VaR, sizing (issue 5).
//!
//! [`RiskMonitor`] runs on engine time only (event timestamps, never the wall clock):
//!
//! 1. [`on_price`](RiskMonitor::on_price) on every tick stores the instrument's latest
//!    price: O(1), no allocation.
//! 2. [`on_clock`](RiskMonitor::on_clock) with every event's time closes the sampling
//!    interval (default 1 s, aligned to whole multiples since the epoch) once engine time
//!    reaches its end: one log return per instrument (carried forward when no price came,
//!    missing before the first price, a long gap is one sample scaled by 1/√intervals),
//!    the EWMA covariance update (RiskMetrics, λ = 0.94 by default, see [`MonitorConfig`]),
//!    a slot of the fixed ring of historical scenarios, and the [`CorrelationMatrix`]
//!    refreshed in place. O(n²), no allocation.
//! 3. [`evaluate`](RiskMonitor::evaluate) after each close, per account, with its signed
//!    position notionals: parametric and historical VaR at the configured confidence and
//!    horizon, the limit check and its [`VarBreach`] / `RiskEvent`. O(n² + window·n), no
//!    allocation.
//!
//! Also: [`target_qty`](RiskMonitor::target_qty), volatility-adjusted position sizing for
//! strategies; [`CorrelationMatrix::correlated_with`], the correlated group for the
//! pre-trade correlated-exposure limit; serde on everything for snapshots.
//!
//! ```
//! use aaiti_model::{AccountId, InstrumentId, UnixNanos};
//! use aaiti_risk::monitor::{MonitorConfig, RiskMonitor};
//!
//! let config: MonitorConfig = toml::from_str(
//!     r#"
//!     horizon_s = 60
//!     [[limits]]
//!     account = 0
//!     var_limit = "1000.00"
//!     "#,
//! )
//! .unwrap();
//! let mut monitor = RiskMonitor::new(&config, 2).unwrap();
//! let second = 1_000_000_000;
//! for t in 0..100_u64 {
//!     let ts = UnixNanos(t * second);
//!     // Engine loop: the clock first, then the event.
//!     if monitor.on_clock(ts) {
//!         let report = monitor.evaluate(AccountId(0), &[50_000.0, -20_000.0], ts);
//!         if let Some(event) = report.risk_event() {
//!             // journal `event`, apply `report.breach.unwrap().action`
//!             # let _ = event;
//!         }
//!     }
//!     let wiggle = if t % 2 == 0 { 1.001 } else { 0.999 };
//!     monitor.on_price(InstrumentId(0), 100.0 * wiggle, ts);
//!     monitor.on_price(InstrumentId(1), 50.0 * wiggle, ts);
//! }
//! let var = monitor.var(&[50_000.0, -20_000.0]);
//! assert!(var.parametric > 0.0 && var.historical >= 0.0);
//! assert_eq!(monitor.correlation().rho_bp(0, 1), 10_000);
//! ```
//!
//! Limits: positions are valued linearly (delta, log returns: no options); means are taken
//! as zero; √time scaling from the interval to the horizon assumes independent returns; an
//! instrument that joins late has zero returns in the older scenarios.

pub mod correlation;

mod config;
mod ewma;
mod normal;
mod report;
mod sampler;
mod scenarios;
mod var;

use aaiti_model::{AccountId, InstrumentId, Price, Qty, Scale, UnixNanos};
use serde::{Deserialize, Serialize};

pub use self::config::{
    AccountVarLimit, BreachAction, MAX_INSTRUMENTS, MAX_RING_VALUES, MAX_WINDOW, MonitorConfig,
    MonitorError, VarMethod,
};
pub use self::correlation::CorrelationMatrix;
pub use self::normal::inverse_normal_cdf;
pub use self::report::{MonitorReport, VarBreach};
pub use self::var::{MAX_NOTIONAL, VarFigures};

use self::config::ParsedLimit;
use self::ewma::EwmaCovariance;
use self::sampler::PriceSampler;
use self::scenarios::ScenarioRing;
use self::var::VarScratch;

/// Everything a snapshot holds; the rest of [`RiskMonitor`] derives from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct MonitorState {
    config: MonitorConfig,
    sampler: PriceSampler,
    ewma: EwmaCovariance,
    ring: ScenarioRing,
    correlation: CorrelationMatrix,
    /// Per parsed limit (sorted by account): above the limit at the last evaluation.
    in_breach: Vec<bool>,
}

/// The real-time risk monitor over `n` instruments (dense [`InstrumentId`]s `0..n`); see
/// the [module documentation](self).
///
/// Serialises (serde, e.g. postcard) as its state: configuration, latest prices, EWMA
/// estimates, scenario ring, correlation matrix and breach flags. Deserialising checks that
/// the parts fit together and rebuilds the working buffers, so a restored monitor gives
/// bit-identical results to the one that was saved.
#[derive(Clone, Debug)]
pub struct RiskMonitor {
    state: MonitorState,
    interval_ns: u64,
    /// z(confidence) · √(horizon / interval).
    parametric_scale: f64,
    /// √(horizon / interval).
    horizon_scale: f64,
    /// 10^valuation_places.
    valuation_factor: f64,
    limits: Vec<ParsedLimit>,
    scratch: VarScratch,
    returns: Vec<f64>,
    valid: Vec<bool>,
}

impl RiskMonitor {
    /// A monitor over `instruments` instruments with no data yet.
    ///
    /// # Errors
    ///
    /// An invalid configuration (naming the key), or more than [`MAX_INSTRUMENTS`]
    /// instruments / [`MAX_RING_VALUES`] ring values.
    pub fn new(config: &MonitorConfig, instruments: usize) -> Result<Self, MonitorError> {
        check_size(instruments, config.window)?;
        let limits = config.parse_limits()?;
        Self::from_state(MonitorState {
            config: config.clone(),
            sampler: PriceSampler::new(instruments),
            ewma: EwmaCovariance::new(instruments),
            ring: ScenarioRing::new(instruments, config.window as usize),
            correlation: CorrelationMatrix::identity(instruments),
            in_breach: vec![false; limits.len()],
        })
    }

    fn from_state(state: MonitorState) -> Result<Self, MonitorError> {
        let config = &state.config;
        let limits = config.parse_limits()?;
        let n = state.sampler.instruments();
        let window = config.window as usize;
        check_size(n, config.window)?;
        let snapshot = |what| Err(MonitorError::Snapshot(what));
        if !state.sampler.is_consistent() {
            return snapshot("price sampler");
        }
        if !state.ewma.is_consistent(n) {
            return snapshot("EWMA covariance size or values");
        }
        if !state.ring.is_consistent(n, window) {
            return snapshot("scenario ring size, cursor or values");
        }
        if state.correlation.len() != n || !state.correlation.is_consistent() {
            return snapshot("correlation matrix");
        }
        if state.in_breach.len() != limits.len() {
            return snapshot("breach flags do not match the configured limits");
        }
        let horizon_scale = config.horizon_scale();
        // Validated above: 0..=18 places, 10^places exact in f64.
        let factor = Scale::new(config.valuation_places).map_or(1.0, |s| s.factor() as f64);
        Ok(Self {
            interval_ns: config.interval_ns(),
            parametric_scale: inverse_normal_cdf(config.confidence) * horizon_scale,
            horizon_scale,
            valuation_factor: factor,
            limits,
            scratch: VarScratch::new(n, window),
            returns: vec![0.0; n],
            valid: vec![false; n],
            state,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.state.config
    }

    /// Number of instruments covered.
    pub fn instruments(&self) -> usize {
        self.state.sampler.instruments()
    }

    // -----------------------------------------------------------------------------------
    // Engine time
    // -----------------------------------------------------------------------------------

    /// Records `price` (in any fixed unit per instrument: only ratios are used) as the
    /// latest of `instrument`, after closing the interval if `ts` ends it (so a price
    /// never lands in an interval that ended before it). Returns whether an interval
    /// closed (then call [`evaluate`](Self::evaluate)).
    ///
    /// Zero, negative and non-finite prices and instruments outside `0..n` are refused and
    /// counted ([`rejected_prices`](Self::rejected_prices)). No allocation.
    #[inline]
    pub fn on_price(&mut self, instrument: InstrumentId, price: f64, ts: UnixNanos) -> bool {
        let closed = self.on_clock(ts);
        self.state.sampler.record(instrument.index(), price);
        closed
    }

    /// [`on_price`](Self::on_price) with a fixed-point price: its mantissa is stored as is,
    /// since returns are ratios the scale cancels (use one form per instrument).
    #[inline]
    pub fn on_price_fixed(
        &mut self,
        instrument: InstrumentId,
        price: Price,
        ts: UnixNanos,
    ) -> bool {
        self.on_price(instrument, price.mantissa() as f64, ts)
    }

    /// Advances engine time to `ts`: closes the open interval if `ts` reached its end (one
    /// close however far time jumped) and returns whether it did. Call it with every
    /// event's time before handling the event. Earlier times are ignored. The first call
    /// starts the clock.
    #[inline]
    pub fn on_clock(&mut self, ts: UnixNanos) -> bool {
        if self.state.sampler.is_due(ts.0, self.interval_ns) {
            self.close_interval(ts.0);
            true
        } else {
            false
        }
    }

    #[inline(never)]
    fn close_interval(&mut self, ts_ns: u64) {
        let state = &mut self.state;
        let (_, any_valid) =
            state
                .sampler
                .close(ts_ns, self.interval_ns, &mut self.returns, &mut self.valid);
        if any_valid {
            state
                .ewma
                .update(&self.returns, &self.valid, state.config.ewma_lambda);
            state.ring.push(&self.returns);
            let refreshed = state
                .correlation
                .refresh_from_scaled_covariance(state.ewma.cov(), state.ewma.inv_sd());
            debug_assert!(refreshed, "correlation matrix sized with the monitor");
        }
    }

    /// Intervals closed so far (a gap counts once).
    pub fn intervals_closed(&self) -> u64 {
        self.state.sampler.closes()
    }

    /// End of the open interval; `None` before the first timestamp.
    pub fn next_close(&self) -> Option<UnixNanos> {
        self.state.sampler.next_close_ns().map(UnixNanos)
    }

    /// Prices refused so far.
    pub fn rejected_prices(&self) -> u64 {
        self.state.sampler.rejected()
    }

    /// Latest accepted price of `instrument`.
    pub fn latest_price(&self, instrument: InstrumentId) -> Option<f64> {
        self.state.sampler.latest(instrument.index())
    }

    /// Log returns of the last closed interval (0 where missing; all 0 after a restore
    /// until the next close).
    pub fn last_returns(&self) -> &[f64] {
        &self.returns
    }

    // -----------------------------------------------------------------------------------
    // Estimates
    // -----------------------------------------------------------------------------------

    /// Returns observed for `instrument` (0 before its second interval with a price).
    pub fn samples(&self, instrument: InstrumentId) -> u64 {
        self.state.ewma.samples(instrument.index())
    }

    /// EWMA covariance of the per-interval log returns of `a` and `b` (0 when unknown).
    pub fn covariance(&self, a: InstrumentId, b: InstrumentId) -> f64 {
        let n = self.instruments();
        let (a, b) = (a.index(), b.index());
        if a < n && b < n {
            self.state.ewma.cov()[a * n + b]
        } else {
            0.0
        }
    }

    /// EWMA volatility (standard deviation of the log return per interval) of
    /// `instrument`, once it has `warmup_samples` returns and has moved; `None` before.
    pub fn volatility(&self, instrument: InstrumentId) -> Option<f64> {
        let index = instrument.index();
        let sigma = self.state.ewma.variance(index).sqrt();
        let warm = self.state.ewma.samples(index) >= u64::from(self.state.config.warmup_samples);
        (warm && sigma > 0.0 && sigma.is_finite()).then_some(sigma)
    }

    /// The correlation matrix, refreshed in place at every close. To hand it to the
    /// pre-trade checker without allocating: [`CorrelationMatrix::copy_from`].
    pub fn correlation(&self) -> &CorrelationMatrix {
        &self.state.correlation
    }

    /// Historical scenarios stored (up to `window`).
    pub fn scenarios(&self) -> usize {
        self.state.ring.len()
    }

    // -----------------------------------------------------------------------------------
    // VaR and limits
    // -----------------------------------------------------------------------------------

    /// Parametric and historical VaR of a book given by its signed notionals per
    /// instrument (valuation-currency units, index = instrument; missing entries are 0,
    /// non-finite ones 0, magnitudes capped at [`MAX_NOTIONAL`]). Also fills the
    /// per-instrument breakdowns. No allocation; never NaN.
    pub fn var(&mut self, notionals: &[f64]) -> VarFigures {
        self.scratch.load(notionals);
        let (parametric, sigma_interval) = var::parametric(
            self.state.ewma.cov(),
            &mut self.scratch,
            self.parametric_scale,
        );
        let (historical, scenarios) = var::historical(
            &self.state.ring,
            &mut self.scratch,
            self.state.config.confidence,
            self.horizon_scale,
        );
        let warmup = u64::from(self.state.config.warmup_samples);
        let ewma = &self.state.ewma;
        let warming_up = self
            .scratch
            .weights
            .iter()
            .enumerate()
            .any(|(i, w)| *w != 0.0 && ewma.samples(i) < warmup);
        VarFigures {
            parametric,
            historical,
            sigma_interval,
            scenarios: scenarios as u32,
            warming_up,
        }
    }

    /// Per-instrument parametric component VaR of the last [`var`](Self::var) call:
    /// wᵢ·(Σw)ᵢ/σ · z·√(h/Δ); sums to the parametric VaR (negative for hedges).
    pub fn component_var_parametric(&self) -> &[f64] {
        &self.scratch.component_parametric
    }

    /// Per-instrument parametric marginal VaR of the last [`var`](Self::var) call:
    /// ∂VaR/∂wᵢ = (Σw)ᵢ/σ · z·√(h/Δ), VaR change per unit of notional added.
    pub fn marginal_var_parametric(&self) -> &[f64] {
        &self.scratch.marginal_parametric
    }

    /// Per-instrument historical component of the last [`var`](Self::var) call: each
    /// instrument's loss in the scenario that sets the quantile, scaled to the horizon;
    /// sums to the historical VaR (all 0 when that is 0).
    pub fn component_var_historical(&self) -> &[f64] {
        &self.scratch.component_historical
    }

    /// The account's VaR limit (valuation-currency units), if configured.
    pub fn var_limit(&self, account: AccountId) -> Option<f64> {
        self.limit_index(account).map(|i| self.limits[i].limit)
    }

    fn limit_index(&self, account: AccountId) -> Option<usize> {
        self.limits
            .binary_search_by_key(&account, |limit| limit.account)
            .ok()
    }

    /// One interval's evaluation of `account`'s book (see [`var`](Self::var) for
    /// `notionals`): VaR, and against the account's limit the breach state. The engine
    /// journals [`MonitorReport::risk_event`] (once per breach episode), applies
    /// `breach.action` while `breach` is `Some`, and fills the drawdown, exposure and
    /// margin fields from the account state. No allocation.
    ///
    /// The value compared is chosen by `breach_on`, converted to a mantissa at
    /// `valuation_places` rounding up; a breach is value > limit.
    pub fn evaluate(
        &mut self,
        account: AccountId,
        notionals: &[f64],
        ts: UnixNanos,
    ) -> MonitorReport {
        let var = self.var(notionals);
        let mut report = MonitorReport {
            ts,
            account,
            var,
            var_limit: None,
            breach: None,
            breach_cleared: false,
            drawdown: None,
            gross_exposure: None,
            net_exposure: None,
            margin_usage: None,
        };
        let Some(index) = self.limit_index(account) else {
            return report;
        };
        let limit = self.limits[index];
        let method = self.state.config.breach_on;
        let observed = match method {
            VarMethod::Max => var.parametric.max(var.historical),
            VarMethod::Parametric => var.parametric,
            VarMethod::Historical => var.historical,
        };
        // `as` saturates (and maps NaN to 0, which cannot occur here).
        let value = (observed * self.valuation_factor).ceil() as i64;
        let was_in_breach = self.state.in_breach[index];
        let in_breach = value > limit.limit_mantissa;
        self.state.in_breach[index] = in_breach;
        report.var_limit = Some(limit.limit);
        if in_breach {
            report.breach = Some(VarBreach {
                value,
                limit: limit.limit_mantissa,
                method,
                action: limit.action,
                first: !was_in_breach,
            });
        } else {
            report.breach_cleared = was_in_breach;
        }
        report
    }

    // -----------------------------------------------------------------------------------
    // Sizing
    // -----------------------------------------------------------------------------------

    /// Volatility-adjusted position size: the quantity whose one-standard-deviation move
    /// over one interval is `risk_budget_per_interval` (valuation-currency units),
    ///
    /// `qty = budget / (σ · price)`, capped at `max_qty`,
    ///
    /// with σ the instrument's EWMA volatility per interval ([`volatility`](Self::volatility))
    /// and `price` in valuation currency per unit. A budget over the VaR horizon at the VaR
    /// confidence converts as `budget_interval = budget_horizon / (z · √(horizon/interval))`.
    /// Returns 0 when the volatility is unknown (fewer than `warmup_samples` returns, or no
    /// movement) or an input is not positive and finite. Strategies round the result down
    /// to the lot size.
    pub fn target_qty(
        &self,
        risk_budget_per_interval: f64,
        instrument: InstrumentId,
        price: f64,
        max_qty: f64,
    ) -> f64 {
        let Some(sigma) = self.volatility(instrument) else {
            return 0.0;
        };
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(positive(risk_budget_per_interval) && positive(price) && max_qty >= 0.0) {
            return 0.0;
        }
        // σ·price can underflow to 0 (qty = inf): the cap applies.
        (risk_budget_per_interval / (sigma * price)).min(max_qty)
    }

    /// [`target_qty`](Self::target_qty) on fixed-point values: `price` at `price_scale`,
    /// the result and `max_qty` at `qty_scale`, rounded down (after forgiving a relative
    /// float error of 1e-12, so that an exact 2.5 computed as 2.4999999999999996 stays 2.5).
    pub fn target_qty_fixed(
        &self,
        risk_budget_per_interval: f64,
        instrument: InstrumentId,
        price: Price,
        price_scale: Scale,
        qty_scale: Scale,
        max_qty: Qty,
    ) -> Qty {
        let qty_factor = qty_scale.factor() as f64;
        let qty = self.target_qty(
            risk_budget_per_interval,
            instrument,
            price.mantissa() as f64 / price_scale.factor() as f64,
            max_qty.mantissa() as f64 / qty_factor,
        );
        Qty((qty * qty_factor * (1.0 + 1e-12)).floor() as i64)
            .min(max_qty)
            .max(Qty::ZERO)
    }
}

fn check_size(instruments: usize, window: u32) -> Result<(), MonitorError> {
    if instruments > MAX_INSTRUMENTS
        || instruments.saturating_mul(window as usize) > MAX_RING_VALUES
    {
        return Err(MonitorError::TooLarge {
            instruments,
            window,
        });
    }
    Ok(())
}

/// Two monitors are equal when their snapshot states are (working buffers aside).
impl PartialEq for RiskMonitor {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state
    }
}

impl Serialize for RiskMonitor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RiskMonitor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = MonitorState::deserialize(deserializer)?;
        Self::from_state(state).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(state: MonitorState) -> MonitorError {
        RiskMonitor::from_state(state).unwrap_err()
    }

    #[test]
    fn inconsistent_snapshots_are_refused() {
        let mut config = MonitorConfig::default();
        config.limits.push(AccountVarLimit {
            account: AccountId(1),
            var_limit: "10".into(),
            action: None,
        });
        let m = RiskMonitor::new(&config, 3).unwrap();
        assert!(RiskMonitor::from_state(m.state.clone()).is_ok());

        let mut s = m.state.clone();
        s.ring = ScenarioRing::new(3, 499);
        assert!(matches!(refused(s), MonitorError::Snapshot(_)));
        let mut s = m.state.clone();
        s.ewma = EwmaCovariance::new(2);
        assert!(matches!(refused(s), MonitorError::Snapshot(_)));
        let mut s = m.state.clone();
        s.correlation = CorrelationMatrix::identity(4);
        assert!(matches!(refused(s), MonitorError::Snapshot(_)));
        let mut s = m.state.clone();
        s.in_breach.clear();
        assert!(matches!(refused(s), MonitorError::Snapshot(_)));
        let mut s = m.state.clone();
        s.config.ewma_lambda = f64::NAN;
        assert!(matches!(
            refused(s),
            MonitorError::Config {
                key: "ewma_lambda",
                ..
            }
        ));
        let mut s = m.state.clone();
        s.sampler = PriceSampler::new(MAX_INSTRUMENTS + 1);
        assert!(matches!(refused(s), MonitorError::TooLarge { .. }));
    }

    #[test]
    fn derived_constants() {
        let config = MonitorConfig {
            interval_ms: 500,
            horizon_s: 2,
            confidence: 0.975,
            valuation_places: 3,
            ..MonitorConfig::default()
        };
        let m = RiskMonitor::new(&config, 1).unwrap();
        assert_eq!(m.interval_ns, 500_000_000);
        assert_eq!(m.horizon_scale, 2.0);
        assert!((m.parametric_scale - 2.0 * 1.959_963_984_540_054).abs() < 1e-12);
        assert_eq!(m.valuation_factor, 1_000.0);
    }
}
