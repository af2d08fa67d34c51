//! Features: incremental indicators computed from an instrument's book and trades, the
//! vector a model scores.
//!
//! A model's feature vector (names, order, parameters, normalisation) is declared in its
//! metadata as a [`FeatureSpec`], never in code, and the same [`FeatureEngine`] computes it
//! for training (the [`export`] of a recording to CSV) and for serving (the signal stage):
//! there is one implementation, so what a model was trained on is what it is served.
//!
//! # Sampling
//!
//! Price-series indicators run on a sampling clock of `sample_ms` milliseconds of engine time
//! (the `now` the caller passes: the event's `ts_event`, never the wall clock). Sample `k`
//! ends at `k × sample_ms` since the Unix epoch. A book update at `now` *closes* every sample
//! whose end lies in `(last closed end, now]`:
//!
//! * the last of them (ending at `⌊now / sample_ms⌋ × sample_ms`, its *timestamp*) holds the
//!   state after this update: its mid, the trades seen since the previous close, and the
//!   instantaneous book features (spread, microprice, imbalance) of this update. It is the
//!   vector [`FeatureEngine::on_book`] reports and the model scores;
//! * any earlier ones saw no book update: they carry the previous mid over and hold no
//!   trades (samples are pushed oldest first, so windows stay in time order);
//! * a gap longer than the spec's longest history ([`FeatureSpec::history_samples`]) resets
//!   every indicator instead (the history is stale): the engine warms up again.
//!
//! Only book updates close samples (the vector is scored at a book update); trades
//! accumulate into the sample being built. An update whose book lacks a side closes nothing
//! (there is no mid) and the sample stays open. Engine time that goes backwards closes
//! nothing.
//!
//! Periods, horizons and windows are counted in **samples** (a `period` of 20 at
//! `sample_ms = 100` spans two seconds).
//!
//! # Features
//!
//! Every feature is a [`FeatureDef`]: a unique `name`, a `kind` with its parameters, and a
//! normalisation (`norm`). The mid, microprice and moving averages are in price units (the
//! instrument's price scale applied), volumes in base-asset units.
//!
//! | `kind` | parameters | value | warm after (samples) |
//! |---|---|---|---:|
//! | `mid` | | (bid + ask) / 2 | 1 |
//! | `spread_bps` | | (ask − bid) / mid × 10⁴ | 1 |
//! | `microprice` | | (bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty) | 1 |
//! | `microprice_deviation_bps` | | (microprice − mid) / mid × 10⁴ | 1 |
//! | `book_imbalance` | `levels` (1..=50) | (Σbid qty − Σask qty) / (Σbid qty + Σask qty) over the best `levels` of each side; 0 if both are empty | 1 |
//! | `log_return` | `horizon` | ln(mid_t / mid_(t−horizon)) | horizon + 1 |
//! | `realized_vol` | `window` | √(Σ r²) of the last `window` one-sample log returns r | window + 1 |
//! | `sma` | `period`, `output` = `price` (default) or `deviation_bps` | mean of the last `period` mids; or (mid / sma − 1) × 10⁴ | period |
//! | `ema` | `period`, `output` as `sma` | α = 2 / (period + 1), seeded with the first mid | period |
//! | `rsi` | `period` | Wilder's RSI (0..100): average gain and loss seeded with the simple mean of the first `period` changes, then smoothed with 1 / period; 100 with no loss, 50 with neither | period + 1 |
//! | `macd` | `fast` < `slow`, `signal`, `output` = `line`, `signal` or `histogram` | line = EMA(fast) − EMA(slow), signal = EMA(signal) of the line (each seeded with its first value), histogram = line − signal | slow + signal − 1 |
//! | `bollinger` | `period`, `k` > 0, `output` = `mean`, `std`, `upper`, `lower`, `percent_b` or `width` | over the last `period` mids: mean m, population std s, upper/lower = m ± k·s, %b = (mid − lower) / (upper − lower) (0.5 when s = 0), width = (upper − lower) / m | period |
//! | `trade_flow` | `window`, `output` = `imbalance` (default) or `signed_volume` | over the last `window` samples: (buy − sell) / (buy + sell) of aggressor volume (0 without volume), or buy − sell volume; trades with an unknown aggressor are left out | window + 1 |
//! | `trade_intensity` | `window` | trades per second over the last `window` samples | window + 1 |
//!
//! Windows, periods and horizons are between 1 and [`MAX_WINDOW`] samples. The trade
//! features need one more sample than their window because the first sample's span (since
//! the engine started) is undefined.
//!
//! Rolling windows are fixed-capacity ring buffers allocated at construction, with running
//! sums. The SMA and Bollinger sums are exact integers over the mids' mantissas (kept about
//! a recent value, so the variance is exact too: flat prices have a std of exactly 0);
//! volumes and trade counts are exact integers as well. The one float running sum (squared
//! returns) is rebuilt without a pass over the window by a second sum that only ever adds:
//! after `window` pushes it covers exactly the window and replaces the running sum, so
//! rounding drift never outlives one window. Every update is O(1) (imbalance is O(levels))
//! and allocates nothing.
//!
//! # Normalisation
//!
//! `norm` is `"none"` (the raw value) or `{"zscore": {"mean": m, "std": s}}` ((value − m) / s,
//! with `m` and `s` computed by training on its training split). [`FeatureEngine::raw`]
//! holds the raw values, [`FeatureEngine::normalized`] the `f32` inputs of the model.
//!
//! # Example
//!
//! A spec as it appears in model metadata:
//!
//! ```
//! use aaiti_core::signals::features::FeatureSpec;
//!
//! let spec: FeatureSpec = serde_json::from_str(r#"{
//!     "sample_ms": 100,
//!     "features": [
//!         {"name": "ret_10", "kind": "log_return", "horizon": 10},
//!         {"name": "imb_5", "kind": "book_imbalance", "levels": 5,
//!          "norm": {"zscore": {"mean": 0.02, "std": 0.4}}},
//!         {"name": "rsi_14", "kind": "rsi", "period": 14}
//!     ]
//! }"#).unwrap();
//! spec.validate().unwrap();
//! assert_eq!(spec.names().collect::<Vec<_>>(), ["ret_10", "imb_5", "rsi_14"]);
//! assert_eq!(spec.history_samples(), 15);
//! ```

mod engine;
pub mod export;
mod indicators;

use serde::{Deserialize, Serialize};

pub use engine::{FeatureEngine, Sample};

/// Longest period, window or horizon, in samples.
pub const MAX_WINDOW: u32 = 100_000;
/// Most book levels a `book_imbalance` may sum per side.
pub const MAX_LEVELS: u32 = 50;
/// Most features in one spec.
pub const MAX_FEATURES: usize = 256;
/// Longest sample interval: one hour.
pub const MAX_SAMPLE_MS: u32 = 3_600_000;
/// Longest feature name.
pub const MAX_NAME_LEN: usize = 64;

/// A model's feature vector: which features, in which order, with which parameters and
/// normalisation. Declared in the model's metadata, not in code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Milliseconds of engine time between two samples (the model is scored once a sample).
    pub sample_ms: u32,
    /// The features, in input order.
    pub features: Vec<FeatureDef>,
}

/// One feature: its name, what it computes, and how it is normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDef {
    /// Unique name: 1 to [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// The indicator and its parameters (`"kind": "...", <parameters>` beside the name).
    // `deny_unknown_fields` cannot sit on a struct with a flattened field; the kinds deny
    // unknown fields themselves, and they see every key but `name` and `norm`.
    #[serde(flatten)]
    pub kind: FeatureKind,
    /// Normalisation applied before the model sees the value.
    #[serde(default)]
    pub norm: Normalization,
}

/// What a feature computes (see the table in the [module docs](self)). Periods, windows and
/// horizons are in samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureKind {
    /// Mid price.
    Mid {},
    /// Bid-ask spread in basis points of the mid.
    SpreadBps {},
    /// Size-weighted mid of the best levels.
    Microprice {},
    /// Microprice minus mid, in basis points of the mid.
    MicropriceDeviationBps {},
    /// Quantity imbalance of the best `levels` levels of each side, in `[-1, 1]`.
    BookImbalance {
        /// Levels per side.
        levels: u32,
    },
    /// Log return of the mid over `horizon` samples.
    LogReturn {
        /// Samples back.
        horizon: u32,
    },
    /// Square root of the sum of squared one-sample log returns over `window` samples.
    RealizedVol {
        /// Returns summed.
        window: u32,
    },
    /// Simple moving average of the mid.
    Sma {
        /// Samples averaged.
        period: u32,
        /// Price or deviation of the mid from it.
        #[serde(default)]
        output: AverageOutput,
    },
    /// Exponential moving average of the mid.
    Ema {
        /// Span: α = 2 / (period + 1).
        period: u32,
        /// Price or deviation of the mid from it.
        #[serde(default)]
        output: AverageOutput,
    },
    /// Wilder's relative strength index of the mid.
    Rsi {
        /// Smoothing period.
        period: u32,
    },
    /// Moving average convergence/divergence of the mid.
    Macd {
        /// Fast EMA period.
        fast: u32,
        /// Slow EMA period (greater than `fast`).
        slow: u32,
        /// Signal EMA period.
        signal: u32,
        /// Which line.
        output: MacdOutput,
    },
    /// Bollinger bands of the mid.
    Bollinger {
        /// Samples in the rolling mean and standard deviation.
        period: u32,
        /// Band half-width in standard deviations.
        k: f64,
        /// Which value.
        output: BollingerOutput,
    },
    /// Aggressor volume imbalance (or signed volume) over `window` samples.
    TradeFlow {
        /// Samples summed.
        window: u32,
        /// Imbalance ratio or signed volume.
        #[serde(default)]
        output: FlowOutput,
    },
    /// Trades per second over `window` samples.
    TradeIntensity {
        /// Samples counted.
        window: u32,
    },
}

/// What a moving-average feature reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AverageOutput {
    /// The average, in price units.
    #[default]
    Price,
    /// (mid / average − 1) × 10⁴.
    DeviationBps,
}

/// Which MACD line a feature reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MacdOutput {
    /// EMA(fast) − EMA(slow).
    Line,
    /// EMA of the line.
    Signal,
    /// Line − signal.
    Histogram,
}

/// Which Bollinger value a feature reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BollingerOutput {
    /// Rolling mean.
    Mean,
    /// Rolling population standard deviation.
    Std,
    /// Mean + k·std.
    Upper,
    /// Mean − k·std.
    Lower,
    /// (mid − lower) / (upper − lower); 0.5 when the bands coincide (flat prices).
    PercentB,
    /// (upper − lower) / mean.
    Width,
}

/// What a trade-flow feature reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowOutput {
    /// (buy − sell) / (buy + sell) volume, in `[-1, 1]`.
    #[default]
    Imbalance,
    /// Buy − sell volume, base-asset units.
    SignedVolume,
}

/// How a raw value becomes a model input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalization {
    /// The raw value.
    #[default]
    None,
    /// (value − mean) / std, from the training split.
    Zscore {
        /// Mean.
        mean: f64,
        /// Standard deviation (finite, > 0).
        std: f64,
    },
}

/// Why a [`FeatureSpec`] is refused. Each variant names the feature by position and name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureSpecError {
    /// `sample_ms` out of range.
    #[error("`sample_ms` = {0} must be between 1 and {MAX_SAMPLE_MS}")]
    SampleMs(u32),
    /// No feature.
    #[error("`features` is empty: a model needs at least one input")]
    Empty,
    /// Too many features.
    #[error("`features` lists {0} features, more than the {MAX_FEATURES} supported")]
    TooMany(usize),
    /// A name that cannot be used.
    #[error("features[{index}]: name {name:?} {problem}")]
    BadName {
        /// Position.
        index: usize,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The same name twice.
    #[error("features[{index}]: name {name:?} is already used by features[{first}]")]
    Duplicate {
        /// Position of the repeat.
        index: usize,
        /// Position of the first use.
        first: usize,
        /// The name.
        name: String,
    },
    /// A parameter out of range.
    #[error("features[{index}] ({name:?}): `{key}` = {value} {expected}")]
    BadParam {
        /// Position.
        index: usize,
        /// Feature name.
        name: String,
        /// Parameter.
        key: &'static str,
        /// Value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// A normalisation that cannot be applied.
    #[error("features[{index}] ({name:?}): zscore `{key}` = {value} must be {expected}")]
    BadNorm {
        /// Position.
        index: usize,
        /// Feature name.
        name: String,
        /// `mean` or `std`.
        key: &'static str,
        /// Value given.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
}

/// Names the CSV export writes beside the features.
const RESERVED_NAMES: [&str; 2] = ["ts_ns", "instrument"];
/// Prefix of the export's forward-return columns.
const RESERVED_PREFIX: &str = "fwd_ret_";

impl FeatureSpec {
    /// Number of features (the model's input width).
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// True when it declares no feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The names, in input order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|feature| feature.name.as_str())
    }

    /// Samples of history the longest feature needs before it is warm (at least 1).
    pub fn history_samples(&self) -> u64 {
        self.features
            .iter()
            .map(|feature| feature.kind.warm_samples())
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Checks every parameter, name and normalisation.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the feature and the key.
    pub fn validate(&self) -> Result<(), FeatureSpecError> {
        if !(1..=MAX_SAMPLE_MS).contains(&self.sample_ms) {
            return Err(FeatureSpecError::SampleMs(self.sample_ms));
        }
        if self.features.is_empty() {
            return Err(FeatureSpecError::Empty);
        }
        if self.features.len() > MAX_FEATURES {
            return Err(FeatureSpecError::TooMany(self.features.len()));
        }
        for (index, feature) in self.features.iter().enumerate() {
            check_name(index, &feature.name)?;
            if let Some(first) = self.features[..index]
                .iter()
                .position(|other| other.name == feature.name)
            {
                return Err(FeatureSpecError::Duplicate {
                    index,
                    first,
                    name: feature.name.clone(),
                });
            }
            feature.kind.check(index, &feature.name)?;
            check_norm(index, &feature.name, feature.norm)?;
        }
        Ok(())
    }
}

fn check_name(index: usize, name: &str) -> Result<(), FeatureSpecError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("is longer than 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("may only hold A-Z a-z 0-9 _ . - (it is a CSV column)")
    } else if RESERVED_NAMES.contains(&name) || name.starts_with(RESERVED_PREFIX) {
        Some("is reserved by the feature export (ts_ns, instrument, fwd_ret_*)")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(FeatureSpecError::BadName {
            index,
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_norm(index: usize, name: &str, norm: Normalization) -> Result<(), FeatureSpecError> {
    let Normalization::Zscore { mean, std } = norm else {
        return Ok(());
    };
    let bad = |key, value, expected| FeatureSpecError::BadNorm {
        index,
        name: name.to_owned(),
        key,
        value,
        expected,
    };
    if !mean.is_finite() {
        return Err(bad("mean", mean, "finite"));
    }
    if !(std.is_finite() && std > 0.0) {
        return Err(bad("std", std, "finite and greater than 0"));
    }
    Ok(())
}

impl FeatureKind {
    /// Samples of history before the value is complete.
    pub fn warm_samples(&self) -> u64 {
        let n = |value: &u32| u64::from(*value);
        match self {
            Self::Mid {}
            | Self::SpreadBps {}
            | Self::Microprice {}
            | Self::MicropriceDeviationBps {}
            | Self::BookImbalance { .. } => 1,
            Self::LogReturn { horizon } => n(horizon) + 1,
            Self::RealizedVol { window } => n(window) + 1,
            Self::Sma { period, .. } | Self::Ema { period, .. } => n(period),
            Self::Rsi { period } => n(period) + 1,
            Self::Macd { slow, signal, .. } => n(slow) + n(signal) - 1,
            Self::Bollinger { period, .. } => n(period),
            Self::TradeFlow { window, .. } | Self::TradeIntensity { window } => n(window) + 1,
        }
    }

    fn check(&self, index: usize, name: &str) -> Result<(), FeatureSpecError> {
        let bad = |key: &'static str, value: String, expected: String| {
            Err(FeatureSpecError::BadParam {
                index,
                name: name.to_owned(),
                key,
                value,
                expected,
            })
        };
        let window = |key: &'static str, value: u32| {
            if (1..=MAX_WINDOW).contains(&value) {
                Ok(())
            } else {
                bad(
                    key,
                    value.to_string(),
                    format!("must be between 1 and {MAX_WINDOW} samples"),
                )
            }
        };
        match self {
            Self::Mid {} | Self::SpreadBps {} | Self::Microprice {} => Ok(()),
            Self::MicropriceDeviationBps {} => Ok(()),
            Self::BookImbalance { levels } => {
                if (1..=MAX_LEVELS).contains(levels) {
                    Ok(())
                } else {
                    bad(
                        "levels",
                        levels.to_string(),
                        format!("must be between 1 and {MAX_LEVELS}"),
                    )
                }
            }
            Self::LogReturn { horizon } => window("horizon", *horizon),
            Self::RealizedVol { window: w }
            | Self::TradeFlow { window: w, .. }
            | Self::TradeIntensity { window: w } => window("window", *w),
            Self::Sma { period, .. } | Self::Ema { period, .. } | Self::Rsi { period } => {
                window("period", *period)
            }
            Self::Macd {
                fast, slow, signal, ..
            } => {
                window("fast", *fast)?;
                window("slow", *slow)?;
                window("signal", *signal)?;
                if fast >= slow {
                    return bad(
                        "fast",
                        fast.to_string(),
                        format!("must be less than `slow` ({slow})"),
                    );
                }
                Ok(())
            }
            Self::Bollinger { period, k, .. } => {
                window("period", *period)?;
                if k.is_finite() && *k > 0.0 {
                    Ok(())
                } else {
                    bad(
                        "k",
                        k.to_string(),
                        "must be finite and greater than 0".into(),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<FeatureSpec, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    fn one(feature: &str) -> String {
        format!(r#"{{"sample_ms": 100, "features": [{feature}]}}"#)
    }

    fn error(feature: &str) -> String {
        spec(&one(feature))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_kind_parses_and_round_trips() {
        let text = r#"{"sample_ms": 250, "features": [
            {"name": "mid", "kind": "mid"},
            {"name": "spread", "kind": "spread_bps"},
            {"name": "micro", "kind": "microprice"},
            {"name": "micro_dev", "kind": "microprice_deviation_bps"},
            {"name": "imb5", "kind": "book_imbalance", "levels": 5},
            {"name": "ret10", "kind": "log_return", "horizon": 10},
            {"name": "rv", "kind": "realized_vol", "window": 20},
            {"name": "sma", "kind": "sma", "period": 20},
            {"name": "sma_dev", "kind": "sma", "period": 20, "output": "deviation_bps"},
            {"name": "ema", "kind": "ema", "period": 12, "norm": {"zscore": {"mean": 1.5, "std": 0.25}}},
            {"name": "rsi", "kind": "rsi", "period": 14},
            {"name": "macd_h", "kind": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "histogram"},
            {"name": "bb_b", "kind": "bollinger", "period": 20, "k": 2, "output": "percent_b"},
            {"name": "flow", "kind": "trade_flow", "window": 10},
            {"name": "flow_v", "kind": "trade_flow", "window": 10, "output": "signed_volume"},
            {"name": "tps", "kind": "trade_intensity", "window": 50, "norm": "none"}
        ]}"#;
        let parsed = spec(text).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.len(), 16);
        assert_eq!(
            parsed.features[9].norm,
            Normalization::Zscore {
                mean: 1.5,
                std: 0.25
            }
        );
        assert_eq!(
            parsed.features[7].kind,
            FeatureKind::Sma {
                period: 20,
                output: AverageOutput::Price
            }
        );
        assert_eq!(parsed.history_samples(), 51);
        let again: FeatureSpec =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused() {
        let unknown = spec(&one(
            r#"{"name": "a", "kind": "ema", "period": 3, "perod": 4}"#,
        ));
        assert!(unknown.unwrap_err().contains("unknown field `perod`"));
        let unit = spec(&one(r#"{"name": "a", "kind": "mid", "levels": 4}"#));
        assert!(unit.unwrap_err().contains("unknown field `levels`"));
        let kind = spec(&one(r#"{"name": "a", "kind": "vwap"}"#));
        assert!(kind.unwrap_err().contains("unknown variant `vwap`"));
        let missing = spec(&one(r#"{"name": "a", "kind": "rsi"}"#));
        assert!(missing.unwrap_err().contains("missing field `period`"));
        let top = spec(r#"{"sample_ms": 100, "features": [], "extra": 1}"#);
        assert!(top.unwrap_err().contains("unknown field `extra`"));
        let norm = spec(&one(
            r#"{"name": "a", "kind": "mid", "norm": {"zscore": {"mean": 0, "sd": 1}}}"#,
        ));
        assert!(norm.unwrap_err().contains("unknown field `sd`"));
    }

    #[test]
    fn validation_messages_name_the_feature_and_key() {
        assert_eq!(
            error(r#"{"name": "rsi", "kind": "rsi", "period": 0}"#),
            "features[0] (\"rsi\"): `period` = 0 must be between 1 and 100000 samples"
        );
        assert_eq!(
            error(r#"{"name": "ret", "kind": "log_return", "horizon": 100001}"#),
            "features[0] (\"ret\"): `horizon` = 100001 must be between 1 and 100000 samples"
        );
        assert_eq!(
            error(r#"{"name": "imb", "kind": "book_imbalance", "levels": 51}"#),
            "features[0] (\"imb\"): `levels` = 51 must be between 1 and 50"
        );
        assert_eq!(
            error(
                r#"{"name": "m", "kind": "macd", "fast": 26, "slow": 12, "signal": 9, "output": "line"}"#
            ),
            "features[0] (\"m\"): `fast` = 26 must be less than `slow` (12)"
        );
        assert_eq!(
            error(r#"{"name": "bb", "kind": "bollinger", "period": 20, "k": 0, "output": "std"}"#),
            "features[0] (\"bb\"): `k` = 0 must be finite and greater than 0"
        );
        assert_eq!(
            error(r#"{"name": "z", "kind": "mid", "norm": {"zscore": {"mean": 1, "std": 0}}}"#),
            "features[0] (\"z\"): zscore `std` = 0 must be finite and greater than 0"
        );
        assert_eq!(
            error(r#"{"name": "a,b", "kind": "mid"}"#),
            "features[0]: name \"a,b\" may only hold A-Z a-z 0-9 _ . - (it is a CSV column)"
        );
        assert_eq!(
            error(r#"{"name": "fwd_ret_1000ms", "kind": "mid"}"#),
            "features[0]: name \"fwd_ret_1000ms\" is reserved by the feature export (ts_ns, instrument, fwd_ret_*)"
        );
        assert_eq!(
            error(r#"{"name": "", "kind": "mid"}"#),
            "features[0]: name \"\" is empty"
        );
        let duplicate = spec(
            r#"{"sample_ms": 100, "features": [
                {"name": "a", "kind": "mid"}, {"name": "b", "kind": "mid"},
                {"name": "a", "kind": "spread_bps"}]}"#,
        )
        .unwrap();
        assert_eq!(
            duplicate.validate().unwrap_err().to_string(),
            "features[2]: name \"a\" is already used by features[0]"
        );
        let empty = spec(r#"{"sample_ms": 100, "features": []}"#).unwrap();
        assert_eq!(empty.validate(), Err(FeatureSpecError::Empty));
        let zero = spec(r#"{"sample_ms": 0, "features": [{"name": "a", "kind": "mid"}]}"#);
        assert_eq!(
            zero.unwrap().validate().unwrap_err().to_string(),
            "`sample_ms` = 0 must be between 1 and 3600000"
        );
    }

    #[test]
    fn nan_normalisation_is_refused() {
        let mut parsed = spec(&one(r#"{"name": "a", "kind": "mid"}"#)).unwrap();
        parsed.features[0].norm = Normalization::Zscore {
            mean: f64::NAN,
            std: 1.0,
        };
        assert!(matches!(
            parsed.validate(),
            Err(FeatureSpecError::BadNorm { key: "mean", .. })
        ));
        parsed.features[0].norm = Normalization::Zscore {
            mean: 0.0,
            std: f64::INFINITY,
        };
        assert!(matches!(
            parsed.validate(),
            Err(FeatureSpecError::BadNorm { key: "std", .. })
        ));
    }
}
