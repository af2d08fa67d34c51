//! The paper venue's configuration (`[paper]` in the engine's TOML) and fee rates.

use std::fmt;

use aaiti_model::{Scale, parse_fixed};
use serde::{Deserialize, Serialize};

use super::PaperError;

/// A fee rate in basis points (1 bp = 0.01 % of the notional), exact to 0.0001 bp.
///
/// Negative rates are rebates. Stored as an integer number of ten-thousandths of a basis
/// point, so the configuration stays `Eq` and fee arithmetic never touches floating point.
/// In TOML it is written as a number (`2`, `-0.25`) or a decimal string (`"-0.25"`); a float
/// is rounded to the nearest 0.0001 bp.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeeBp(i64);

impl FeeBp {
    /// Internal units per basis point.
    pub const UNITS_PER_BP: i64 = 10_000;
    /// Largest accepted magnitude, in basis points (100 % of the notional).
    pub const MAX_ABS_BP: i64 = 10_000;
    /// Zero fee.
    pub const ZERO: Self = Self(0);

    /// A rate of `units` ten-thousandths of a basis point, or `None` beyond
    /// ±[`FeeBp::MAX_ABS_BP`].
    pub const fn from_units(units: i64) -> Option<Self> {
        if units.unsigned_abs() > (Self::MAX_ABS_BP * Self::UNITS_PER_BP) as u64 {
            None
        } else {
            Some(Self(units))
        }
    }

    /// A whole number of basis points, or `None` beyond ±[`FeeBp::MAX_ABS_BP`].
    pub const fn from_bp(bp: i64) -> Option<Self> {
        match bp.checked_mul(Self::UNITS_PER_BP) {
            Some(units) => Self::from_units(units),
            None => None,
        }
    }

    /// A rate from a float number of basis points, rounded to the nearest 0.0001 bp; `None`
    /// if not finite or out of range.
    pub fn from_bp_f64(bp: f64) -> Option<Self> {
        let units = (bp * Self::UNITS_PER_BP as f64).round();
        let max = (Self::MAX_ABS_BP * Self::UNITS_PER_BP) as f64;
        if units.is_finite() && units.abs() <= max {
            Self::from_units(units as i64)
        } else {
            None
        }
    }

    /// Parses a decimal such as `"-0.25"` exactly (at most four decimal places).
    pub fn parse(text: &str) -> Option<Self> {
        let scale = Scale::new(4).ok()?;
        Self::from_units(parse_fixed(text.as_bytes(), scale).ok()?)
    }

    /// Ten-thousandths of a basis point.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// The rate in basis points, as a float (display only).
    pub fn as_bp_f64(self) -> f64 {
        self.0 as f64 / Self::UNITS_PER_BP as f64
    }
}

impl fmt::Display for FeeBp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / 10_000, abs % 10_000);
        if frac == 0 {
            return write!(f, "{sign}{whole} bp");
        }
        let mut digits = format!("{frac:04}");
        while digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{sign}{whole}.{digits} bp")
    }
}

/// Human-readable formats (TOML, JSON) see a number of basis points; binary formats
/// (postcard snapshots) the exact integer units.
impl Serialize for FeeBp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // Exact on the way back: |units| <= 1e8 is far inside f64's 2^53.
            serializer.serialize_f64(self.as_bp_f64())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for FeeBp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "a fee rate in basis points between -10000 and 10000, \
                                 as a number (2, -0.25) or a decimal string (\"-0.25\")";
        struct Bp;
        impl serde::de::Visitor<'_> for Bp {
            type Value = FeeBp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FeeBp, E> {
                FeeBp::from_bp(v).ok_or_else(|| E::custom(format!("{v} bp: expected {EXPECTING}")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FeeBp, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(FeeBp::from_bp)
                    .ok_or_else(|| E::custom(format!("{v} bp: expected {EXPECTING}")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<FeeBp, E> {
                FeeBp::from_bp_f64(v)
                    .ok_or_else(|| E::custom(format!("{v} bp: expected {EXPECTING}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FeeBp, E> {
                FeeBp::parse(v).ok_or_else(|| E::custom(format!("{v:?}: expected {EXPECTING}")))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Bp)
        } else {
            let units = i64::deserialize(deserializer)?;
            FeeBp::from_units(units)
                .ok_or_else(|| serde::de::Error::custom("fee rate out of range in snapshot"))
        }
    }
}

/// How a resting order's estimated queue position moves when its price level shrinks by
/// more than the trades printed at that price explain (i.e. by cancels).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueModel {
    /// Cancels are all behind the order: only trades (and the level shrinking below the
    /// estimate) move it forward. Pessimistic.
    Conservative,
    /// Cancels are spread evenly over the level: the queue ahead shrinks by
    /// `cancelled × ahead / level`. The default.
    #[default]
    Proportional,
    /// Cancels are all ahead of the order. Optimistic.
    Optimistic,
}

/// How much of a resting order a trade printing *through* its price fills (a trade below a
/// resting buy's price or above a resting sell's).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeThrough {
    /// Up to the trade's quantity, shared in price-time priority by the orders it went
    /// through. The default.
    #[default]
    TradeQty,
    /// Every order the trade went through fills completely.
    Full,
}

/// The paper venue's configuration. Every key is optional; unknown keys are errors.
///
/// See the [module documentation](super) for a commented TOML example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaperConfig {
    /// One-way latency from the engine to the venue, in microseconds of engine (event) time:
    /// a request submitted at `t` takes effect at `t + latency`. 0: immediately.
    pub latency_us: u64,
    /// Fee rate for fills that provided liquidity (resting orders); negative = rebate.
    pub maker_fee_bp: FeeBp,
    /// Fee rate for fills that took liquidity; negative = rebate.
    pub taker_fee_bp: FeeBp,
    /// Queue position estimate on cancels.
    pub queue_model: QueueModel,
    /// Fills from trades printing through a resting order's price.
    pub trade_through: TradeThrough,
    /// Most resting orders, and most requests in flight (pre-allocated).
    pub max_orders: u32,
    /// Most book levels a taker order walks.
    pub max_walk_levels: u32,
    /// Finished order ids remembered, so that a late cancel gets `TooLateToCancel` rather
    /// than `UnknownOrder` (oldest forgotten first).
    pub done_orders_kept: u32,
    /// Seconds after 00:00 UTC at which `Day` orders expire.
    pub day_roll_utc_s: u32,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            latency_us: 1_000,
            maker_fee_bp: FeeBp(10 * FeeBp::UNITS_PER_BP),
            taker_fee_bp: FeeBp(10 * FeeBp::UNITS_PER_BP),
            queue_model: QueueModel::Proportional,
            trade_through: TradeThrough::TradeQty,
            max_orders: 16_384,
            max_walk_levels: 1_000,
            done_orders_kept: 16_384,
            day_roll_utc_s: 0,
        }
    }
}

impl PaperConfig {
    /// Largest `latency_us` (one minute).
    pub const MAX_LATENCY_US: u64 = 60_000_000;
    /// Largest `max_orders` and `done_orders_kept`.
    pub const MAX_ORDERS: u32 = 1 << 22;

    /// Checks ranges; the error names the key and the fix.
    ///
    /// # Errors
    ///
    /// [`PaperError::Config`] for the first key out of range.
    pub fn validate(&self) -> Result<(), PaperError> {
        let bad = |key: &'static str, fix: &'static str| Err(PaperError::Config { key, fix });
        if self.latency_us > Self::MAX_LATENCY_US {
            return bad("latency_us", "use at most 60000000 (one minute)");
        }
        if self.max_orders == 0 || self.max_orders > Self::MAX_ORDERS {
            return bad("max_orders", "use 1..=4194304");
        }
        if self.max_walk_levels == 0 {
            return bad("max_walk_levels", "use at least 1");
        }
        if self.done_orders_kept > Self::MAX_ORDERS {
            return bad("done_orders_kept", "use 0..=4194304");
        }
        if self.day_roll_utc_s >= 86_400 {
            return bad("day_roll_utc_s", "use 0..=86399 seconds after midnight UTC");
        }
        Ok(())
    }

    /// `latency_us` in nanoseconds.
    pub const fn latency_ns(&self) -> u64 {
        self.latency_us.saturating_mul(1_000)
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as ValueError, F64Deserializer, I64Deserializer};

    use super::*;

    #[test]
    fn fee_rates_parse_exactly() {
        assert_eq!(FeeBp::parse("-0.25"), Some(FeeBp(-2_500)));
        assert_eq!(FeeBp::parse("10"), Some(FeeBp(100_000)));
        assert_eq!(FeeBp::parse("0.00001"), None);
        assert_eq!(FeeBp::parse("10001"), None);
        assert_eq!(FeeBp::from_bp_f64(0.1), Some(FeeBp(1_000)));
        assert_eq!(FeeBp::from_bp_f64(f64::NAN), None);
        assert_eq!(FeeBp::from_bp(i64::MAX), None);
        let fee: FeeBp = FeeBp::deserialize(F64Deserializer::<ValueError>::new(-0.75)).unwrap();
        assert_eq!(fee.units(), -7_500);
        let fee: FeeBp = FeeBp::deserialize(I64Deserializer::<ValueError>::new(3)).unwrap();
        assert_eq!(fee.units(), 30_000);
        let de: serde::de::value::StrDeserializer<'_, ValueError> = "1.5".into_deserializer();
        assert_eq!(FeeBp::deserialize(de).unwrap().units(), 15_000);
        let de: serde::de::value::StrDeserializer<'_, ValueError> = "abc".into_deserializer();
        assert!(FeeBp::deserialize(de).is_err());
        assert_eq!(FeeBp(-2_500).to_string(), "-0.25 bp");
    }

    #[test]
    fn config_ranges() {
        assert!(PaperConfig::default().validate().is_ok());
        let bad = PaperConfig {
            max_orders: 0,
            ..PaperConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(PaperError::Config {
                key: "max_orders",
                ..
            })
        ));
        let bad = PaperConfig {
            day_roll_utc_s: 86_400,
            ..PaperConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
