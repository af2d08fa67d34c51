//! The instrument registry: every tradable (venue, symbol) pair with its trading rules.
//!
//! Built once at start-up from configuration ([`InstrumentSpec`], which deserializes from
//! TOML); afterwards ids are dense indices and lookups by id are array reads.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{FixedError, InstrumentId, Price, Qty, Scale, VenueId};

/// One instrument as written in configuration. Decimal values are strings so that they are
/// parsed exactly (no float on the way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// Venue name, e.g. `binance`.
    pub venue: String,
    /// The venue's own symbol, e.g. `BTCUSDT`, `BTC-USD`, `XBT/USD`.
    pub symbol: String,
    /// Base asset, e.g. `BTC`.
    pub base: String,
    /// Quote asset, e.g. `USDT`.
    pub quote: String,
    /// Decimal places of prices.
    pub price_scale: u8,
    /// Decimal places of quantities.
    pub qty_scale: u8,
    /// Minimum price increment, e.g. `"0.01"`.
    pub tick_size: String,
    /// Minimum quantity increment, e.g. `"0.00001"`.
    pub lot_size: String,
    /// Minimum order notional in the quote asset, e.g. `"5"`; at the price scale.
    #[serde(default = "zero_text")]
    pub min_notional: String,
}

fn zero_text() -> String {
    "0".to_owned()
}

/// A registered instrument with its values parsed to fixed point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Dense id (registry position).
    pub id: InstrumentId,
    /// Dense venue id.
    pub venue: VenueId,
    /// Venue symbol.
    pub symbol: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price scale.
    pub price_scale: Scale,
    /// Quantity scale.
    pub qty_scale: Scale,
    /// Tick size at `price_scale`.
    pub tick_size: Price,
    /// Lot size at `qty_scale`.
    pub lot_size: Qty,
    /// Minimum notional at `price_scale`.
    pub min_notional: Price,
}

impl Instrument {
    /// True if `price` is a whole number of ticks.
    #[inline]
    pub fn is_on_tick(&self, price: Price) -> bool {
        price.0 % self.tick_size.0 == 0
    }

    /// True if `qty` is a whole number of lots.
    #[inline]
    pub fn is_on_lot(&self, qty: Qty) -> bool {
        qty.0 % self.lot_size.0 == 0
    }
}

/// Why an instrument configuration is invalid. Each variant names the instrument (by its
/// position in the list and its symbol) and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// A decimal value does not parse at the instrument's scale.
    #[error("instruments[{index}] ({symbol}): `{key}` = {value:?} is invalid: {source}")]
    BadValue {
        /// Position in the list.
        index: usize,
        /// Symbol.
        symbol: String,
        /// Key.
        key: &'static str,
        /// The text given.
        value: String,
        /// Parse error.
        source: FixedError,
    },
    /// A value must be strictly positive.
    #[error("instruments[{index}] ({symbol}): `{key}` must be greater than zero")]
    NotPositive {
        /// Position in the list.
        index: usize,
        /// Symbol.
        symbol: String,
        /// Key.
        key: &'static str,
    },
    /// A scale is out of range.
    #[error("instruments[{index}] ({symbol}): `{key}` = {places} is out of range (0..=18)")]
    BadScale {
        /// Position in the list.
        index: usize,
        /// Symbol.
        symbol: String,
        /// Key.
        key: &'static str,
        /// Places given.
        places: u8,
    },
    /// A text field is empty.
    #[error("instruments[{index}]: `{key}` must not be empty")]
    Empty {
        /// Position in the list.
        index: usize,
        /// Key.
        key: &'static str,
    },
    /// The same (venue, symbol) appears twice.
    #[error(
        "instruments[{index}]: {venue}:{symbol} is listed twice (first at instruments[{first}])"
    )]
    Duplicate {
        /// Position of the repeat.
        index: usize,
        /// Position of the first.
        first: usize,
        /// Venue.
        venue: String,
        /// Symbol.
        symbol: String,
    },
    /// More venues or instruments than the id types hold.
    #[error("too many {what}: at most {max} are supported")]
    TooMany {
        /// "venues" or "instruments".
        what: &'static str,
        /// Limit.
        max: usize,
    },
}

/// Every instrument the engine knows, with dense ids.
#[derive(Debug, Clone, Default)]
pub struct InstrumentRegistry {
    instruments: Vec<Instrument>,
    venues: Vec<String>,
    by_venue_symbol: HashMap<(VenueId, String), InstrumentId>,
}

impl InstrumentRegistry {
    /// Validates the specs and assigns ids in list order. Venue ids are assigned in order of
    /// first appearance.
    pub fn from_specs(specs: &[InstrumentSpec]) -> Result<Self, InstrumentError> {
        if specs.len() > u32::MAX as usize {
            return Err(InstrumentError::TooMany {
                what: "instruments",
                max: u32::MAX as usize,
            });
        }
        let mut registry = Self::default();
        for (index, spec) in specs.iter().enumerate() {
            let instrument = registry.parse_one(index, spec)?;
            let key = (instrument.venue, instrument.symbol.clone());
            if let Some(first) = registry.by_venue_symbol.get(&key) {
                return Err(InstrumentError::Duplicate {
                    index,
                    first: first.index(),
                    venue: spec.venue.clone(),
                    symbol: spec.symbol.clone(),
                });
            }
            registry.by_venue_symbol.insert(key, instrument.id);
            registry.instruments.push(instrument);
        }
        Ok(registry)
    }

    fn parse_one(
        &mut self,
        index: usize,
        spec: &InstrumentSpec,
    ) -> Result<Instrument, InstrumentError> {
        for (key, text) in [
            ("venue", &spec.venue),
            ("symbol", &spec.symbol),
            ("base", &spec.base),
            ("quote", &spec.quote),
        ] {
            if text.trim().is_empty() {
                return Err(InstrumentError::Empty { index, key });
            }
        }
        let symbol = || spec.symbol.clone();
        let scale = |key: &'static str, places: u8| {
            Scale::new(places).map_err(|_| InstrumentError::BadScale {
                index,
                symbol: symbol(),
                key,
                places,
            })
        };
        let price_scale = scale("price_scale", spec.price_scale)?;
        let qty_scale = scale("qty_scale", spec.qty_scale)?;
        let bad =
            |key: &'static str, value: &String, source: FixedError| InstrumentError::BadValue {
                index,
                symbol: symbol(),
                key,
                value: value.clone(),
                source,
            };
        let tick_size = Price::parse_str(&spec.tick_size, price_scale)
            .map_err(|e| bad("tick_size", &spec.tick_size, e))?;
        let lot_size = Qty::parse_str(&spec.lot_size, qty_scale)
            .map_err(|e| bad("lot_size", &spec.lot_size, e))?;
        let min_notional = Price::parse_str(&spec.min_notional, price_scale)
            .map_err(|e| bad("min_notional", &spec.min_notional, e))?;
        for (key, positive) in [("tick_size", tick_size.0 > 0), ("lot_size", lot_size.0 > 0)] {
            if !positive {
                return Err(InstrumentError::NotPositive {
                    index,
                    symbol: symbol(),
                    key,
                });
            }
        }
        if min_notional.0 < 0 {
            return Err(InstrumentError::NotPositive {
                index,
                symbol: symbol(),
                key: "min_notional",
            });
        }
        let venue = self.intern_venue(&spec.venue)?;
        Ok(Instrument {
            id: InstrumentId(self.instruments.len() as u32),
            venue,
            symbol: spec.symbol.clone(),
            base: spec.base.clone(),
            quote: spec.quote.clone(),
            price_scale,
            qty_scale,
            tick_size,
            lot_size,
            min_notional,
        })
    }

    fn intern_venue(&mut self, name: &str) -> Result<VenueId, InstrumentError> {
        if let Some(position) = self.venues.iter().position(|v| v == name) {
            return Ok(VenueId(position as u16));
        }
        if self.venues.len() >= usize::from(u16::MAX) {
            return Err(InstrumentError::TooMany {
                what: "venues",
                max: usize::from(u16::MAX),
            });
        }
        self.venues.push(name.to_owned());
        Ok(VenueId((self.venues.len() - 1) as u16))
    }

    /// The instrument with this id, if registered.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.index())
    }

    /// Looks up a venue's symbol (an edge operation: feeds resolve symbols once).
    pub fn find(&self, venue: VenueId, symbol: &str) -> Option<InstrumentId> {
        self.by_venue_symbol
            .get(&(venue, symbol.to_owned()))
            .copied()
    }

    /// The id of a venue by name.
    pub fn venue_id(&self, name: &str) -> Option<VenueId> {
        self.venues
            .iter()
            .position(|v| v == name)
            .map(|p| VenueId(p as u16))
    }

    /// The name of a venue.
    pub fn venue_name(&self, id: VenueId) -> Option<&str> {
        self.venues.get(id.index()).map(String::as_str)
    }

    /// All instruments in id order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// True if no instrument is registered.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(venue: &str, symbol: &str) -> InstrumentSpec {
        InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            price_scale: 2,
            qty_scale: 8,
            tick_size: "0.01".into(),
            lot_size: "0.00001".into(),
            min_notional: "5".into(),
        }
    }

    #[test]
    fn builds_dense_ids() {
        let registry = InstrumentRegistry::from_specs(&[
            spec("binance", "BTCUSDT"),
            spec("coinbase", "BTC-USD"),
            spec("binance", "ETHUSDT"),
        ])
        .unwrap();
        assert_eq!(registry.len(), 3);
        let binance = registry.venue_id("binance").unwrap();
        assert_eq!(binance, VenueId(0));
        assert_eq!(registry.venue_id("coinbase"), Some(VenueId(1)));
        assert_eq!(registry.find(binance, "ETHUSDT"), Some(InstrumentId(2)));
        assert_eq!(registry.find(binance, "BTC-USD"), None);
        let btc = registry.get(InstrumentId(0)).unwrap();
        assert_eq!(btc.tick_size, Price(1));
        assert_eq!(btc.lot_size, Qty(1000));
        assert_eq!(btc.min_notional, Price(500));
        assert!(btc.is_on_tick(Price(6_173_763)));
        assert!(!btc.is_on_lot(Qty(1001)));
        assert!(registry.get(InstrumentId(3)).is_none());
    }

    #[test]
    fn rejects_bad_specs_with_context() {
        let mut bad = spec("binance", "BTCUSDT");
        bad.tick_size = "0.001".into();
        let error = InstrumentRegistry::from_specs(&[bad]).unwrap_err();
        assert!(
            matches!(
                error,
                InstrumentError::BadValue {
                    key: "tick_size",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("BTCUSDT"));

        let mut zero = spec("binance", "BTCUSDT");
        zero.lot_size = "0".into();
        assert!(matches!(
            InstrumentRegistry::from_specs(&[zero]),
            Err(InstrumentError::NotPositive {
                key: "lot_size",
                ..
            })
        ));

        let mut scale = spec("binance", "BTCUSDT");
        scale.qty_scale = 19;
        assert!(matches!(
            InstrumentRegistry::from_specs(&[scale]),
            Err(InstrumentError::BadScale {
                key: "qty_scale",
                places: 19,
                ..
            })
        ));

        let duplicate = InstrumentRegistry::from_specs(&[spec("k", "X"), spec("k", "X")]);
        assert!(matches!(
            duplicate,
            Err(InstrumentError::Duplicate {
                index: 1,
                first: 0,
                ..
            })
        ));

        let mut empty = spec("binance", "BTCUSDT");
        empty.quote = " ".into();
        assert!(matches!(
            InstrumentRegistry::from_specs(&[empty]),
            Err(InstrumentError::Empty { key: "quote", .. })
        ));
    }

    #[test]
    fn parses_from_toml() {
        let text = r#"
            venue = "kraken"
            symbol = "XBT/USD"
            base = "BTC"
            quote = "USD"
            price_scale = 1
            qty_scale = 8
            tick_size = "0.1"
            lot_size = "0.00000001"
        "#;
        let spec: InstrumentSpec = toml::from_str(text).unwrap();
        assert_eq!(spec.min_notional, "0");
        let registry = InstrumentRegistry::from_specs(&[spec]).unwrap();
        assert_eq!(registry.get(InstrumentId(0)).unwrap().tick_size, Price(1));
    }
}
