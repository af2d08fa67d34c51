//! The monitor's configuration and its errors.

use aaiti_model::{AccountId, FixedError, Scale, parse_fixed};
use serde::{Deserialize, Serialize};

/// Most instruments one monitor covers: the covariance matrices are `n × n` `f64` (two of
/// them, 32 MiB each at this bound).
pub const MAX_INSTRUMENTS: usize = 2_048;
/// Most historical scenarios kept.
pub const MAX_WINDOW: u32 = 100_000;
/// Most `f64` returns the scenario ring may hold (`window × instruments`, 80 MB).
pub const MAX_RING_VALUES: usize = 10_000_000;

/// What the engine does when an account's VaR is above its limit. The codes are the
/// `action` codes of [`aaiti_model::RiskEvent`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachAction {
    /// Record the breach only.
    Alert,
    /// Only orders that reduce a position are accepted.
    #[default]
    ReduceOnly,
    /// No new orders for the account.
    Halt,
}

impl BreachAction {
    /// The `RiskEvent::action` code: 0 alert, 1 reduce-only, 2 halt.
    pub const fn code(self) -> u8 {
        match self {
            Self::Alert => 0,
            Self::ReduceOnly => 1,
            Self::Halt => 2,
        }
    }
}

/// Which VaR figure is compared with the limit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarMethod {
    /// The larger of the parametric and the historical VaR (the conservative choice: the
    /// historical figure catches fat tails the normal model misses, the parametric one
    /// reacts faster after a quiet window).
    #[default]
    Max,
    /// Parametric (delta-normal, EWMA covariances) only.
    Parametric,
    /// Historical simulation only.
    Historical,
}

/// A VaR limit for one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountVarLimit {
    /// The account (dense id).
    pub account: AccountId,
    /// The limit in valuation-currency units as a decimal string (`"250000.00"`), exact at
    /// [`MonitorConfig::valuation_places`].
    pub var_limit: String,
    /// Overrides [`MonitorConfig::action`] for this account.
    #[serde(default)]
    pub action: Option<BreachAction>,
}

/// Configuration of the [`RiskMonitor`](super::RiskMonitor) (TOML section, unknown keys are
/// errors). Every key has a default:
///
/// ```toml
/// interval_ms = 1000        # return sampling interval on engine time
/// ewma_lambda = 0.94        # RiskMetrics decay per interval
/// window = 500              # historical scenarios kept (500 intervals = 8 min 20 s)
/// confidence = 0.99
/// horizon_s = 60            # VaR horizon; sqrt-time scaled from the interval
/// warmup_samples = 30       # returns before an instrument's volatility counts as known
/// valuation_places = 8      # decimal places of VaR values and limits in RiskEvent records
/// breach_on = "max"         # max | parametric | historical
/// action = "reduce_only"    # alert | reduce_only | halt
///
/// [[limits]]
/// account = 0
/// var_limit = "250000.00"
/// action = "halt"           # optional, overrides `action`
/// ```
///
/// **λ = 0.94** is the RiskMetrics value, calibrated for daily returns. Applied per 1 s
/// interval it gives a half-life of ln 0.5 / ln 0.94 ≈ 11 intervals (11 s) and an effective
/// memory 1/(1−λ) ≈ 17 s: a deliberately fast estimate that follows intraday volatility
/// bursts within seconds, which is what a real-time breach monitor is for, at the price of
/// noisy correlations (few effective samples). Raise it (0.99: half-life 69 s; 0.999:
/// 11.5 min) for steadier correlations, e.g. when the correlation matrix feeds the pre-trade
/// correlated-exposure limit.
///
/// **Horizon 60 s** (not the textbook 1 day): the window of 1 s samples covers minutes, and
/// the breach action (reduce-only, halt) is meant to bring the book down within about a
/// minute. Any horizon is scaled from the interval by √(horizon/interval), which assumes
/// independent returns; for a conventional 1-day figure set `horizon_s = 86400`, knowing
/// that 1 s returns carry microstructure noise (bid/ask bounce) that this scaling inflates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Length of a sampling interval on engine time, ms (1 ..= 86_400_000).
    pub interval_ms: u64,
    /// EWMA decay per interval, 0 < λ < 1.
    pub ewma_lambda: f64,
    /// Historical scenarios kept (1 ..= [`MAX_WINDOW`]).
    pub window: u32,
    /// VaR confidence, 0.5 < c < 1.
    pub confidence: f64,
    /// VaR horizon, s (1 ..= 31_536_000).
    pub horizon_s: u64,
    /// Returns an instrument needs before its volatility counts as known (sizing returns 0
    /// before; the report says `warming_up` while a held instrument has fewer).
    pub warmup_samples: u32,
    /// Decimal places of the VaR values and limits in [`VarBreach`](super::VarBreach) and
    /// `RiskEvent` records (0 ..= 18; default 8, the places of the pre-trade side's
    /// valuation amounts, so both kinds of risk event read alike). An `i64` at 8 places
    /// holds up to 92 billion.
    pub valuation_places: u8,
    /// Which VaR is compared with the limits.
    pub breach_on: VarMethod,
    /// Default action on a breach.
    pub action: BreachAction,
    /// Per-account limits; accounts without one are reported but never breach.
    pub limits: Vec<AccountVarLimit>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            ewma_lambda: 0.94,
            window: 500,
            confidence: 0.99,
            horizon_s: 60,
            warmup_samples: 30,
            valuation_places: 8,
            breach_on: VarMethod::Max,
            action: BreachAction::ReduceOnly,
            limits: Vec::new(),
        }
    }
}

/// A configured limit, parsed.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct ParsedLimit {
    pub(crate) account: AccountId,
    pub(crate) limit_mantissa: i64,
    pub(crate) limit: f64,
    pub(crate) action: BreachAction,
}

impl MonitorConfig {
    /// Checks every key.
    ///
    /// # Errors
    ///
    /// [`MonitorError::Config`] naming the key, or a limit error.
    pub fn validate(&self) -> Result<(), MonitorError> {
        self.parse_limits().map(|_| ())
    }

    /// Validates and returns the limits sorted by account.
    pub(crate) fn parse_limits(&self) -> Result<Vec<ParsedLimit>, MonitorError> {
        let bad = |key: &'static str, value: String, expected: &'static str| {
            Err(MonitorError::Config {
                key,
                value,
                expected,
            })
        };
        if !(1..=86_400_000).contains(&self.interval_ms) {
            return bad(
                "interval_ms",
                self.interval_ms.to_string(),
                "1 ..= 86400000 (1000: one second)",
            );
        }
        if !(self.ewma_lambda > 0.0 && self.ewma_lambda < 1.0) {
            return bad(
                "ewma_lambda",
                self.ewma_lambda.to_string(),
                "0 < ewma_lambda < 1 (0.94: RiskMetrics)",
            );
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return bad("window", self.window.to_string(), "1 ..= 100000 scenarios");
        }
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return bad(
                "confidence",
                self.confidence.to_string(),
                "0.5 < confidence < 1 (0.99)",
            );
        }
        if !(1..=31_536_000).contains(&self.horizon_s) {
            return bad(
                "horizon_s",
                self.horizon_s.to_string(),
                "1 ..= 31536000 seconds (60: one minute, 86400: one day)",
            );
        }
        let Ok(scale) = Scale::new(self.valuation_places) else {
            return bad(
                "valuation_places",
                self.valuation_places.to_string(),
                "0 ..= 18 decimal places",
            );
        };
        let factor = scale.factor() as f64;
        let mut limits = Vec::with_capacity(self.limits.len());
        for entry in &self.limits {
            let mantissa =
                parse_fixed(entry.var_limit.trim().as_bytes(), scale).map_err(|source| {
                    MonitorError::Limit {
                        account: entry.account,
                        value: entry.var_limit.clone(),
                        source,
                    }
                })?;
            if mantissa <= 0 {
                return Err(MonitorError::NonPositiveLimit {
                    account: entry.account,
                    value: entry.var_limit.clone(),
                });
            }
            limits.push(ParsedLimit {
                account: entry.account,
                limit_mantissa: mantissa,
                limit: mantissa as f64 / factor,
                action: entry.action.unwrap_or(self.action),
            });
        }
        limits.sort_by_key(|limit| limit.account);
        if let Some(pair) = limits.windows(2).find(|p| p[0].account == p[1].account) {
            return Err(MonitorError::DuplicateAccount {
                account: pair[0].account,
            });
        }
        Ok(limits)
    }

    /// Interval length in nanoseconds (valid configurations only).
    pub(crate) fn interval_ns(&self) -> u64 {
        self.interval_ms.saturating_mul(1_000_000)
    }

    /// √(horizon / interval): the sqrt-time factor from one interval to the horizon.
    pub(crate) fn horizon_scale(&self) -> f64 {
        (self.horizon_s as f64 * 1_000.0 / self.interval_ms as f64).sqrt()
    }
}

/// Configuration and snapshot errors of the monitor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MonitorError {
    /// A key has an unusable value.
    #[error("risk monitor config: `{key}` = {value} is invalid; expected {expected}")]
    Config {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A `var_limit` is not a decimal at `valuation_places`.
    #[error(
        "risk monitor config: `limits` account {account}: var_limit {value:?} is not a decimal \
         with at most `valuation_places` decimals: {source}"
    )]
    Limit {
        /// The account.
        account: AccountId,
        /// The text.
        value: String,
        /// Why it does not parse.
        source: FixedError,
    },
    /// A `var_limit` is zero or negative.
    #[error("risk monitor config: `limits` account {account}: var_limit {value:?} must be > 0")]
    NonPositiveLimit {
        /// The account.
        account: AccountId,
        /// The text.
        value: String,
    },
    /// Two `limits` entries for one account.
    #[error("risk monitor config: `limits` has two entries for account {account}; keep one")]
    DuplicateAccount {
        /// The account.
        account: AccountId,
    },
    /// Too many instruments, or a window too large for them.
    #[error(
        "risk monitor: {instruments} instruments × window {window} is too large (at most \
         {MAX_INSTRUMENTS} instruments and {MAX_RING_VALUES} ring values)"
    )]
    TooLarge {
        /// Instruments requested.
        instruments: usize,
        /// Window configured.
        window: u32,
    },
    /// A snapshot does not fit together.
    #[error("risk monitor snapshot is inconsistent: {0}")]
    Snapshot(&'static str),
}
