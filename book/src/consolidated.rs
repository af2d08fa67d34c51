//! Consolidated top of book: the best bid and ask for one asset across venues.

use aaiti_model::{Price, Qty, Scale, TopOfBook, VenueId};

/// Why a consolidated-top operation was rejected (the state is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsolidatedError {
    /// A venue quotes with more decimal places than the common scale can hold exactly.
    #[error(
        "venue {venue} {what} scale of {venue_places} places is finer than the common scale of \
         {common_places}; raise the common scale"
    )]
    ScaleTooFine {
        /// The venue.
        venue: VenueId,
        /// `"price"` or `"qty"`.
        what: &'static str,
        /// The venue's decimal places.
        venue_places: u8,
        /// The common decimal places.
        common_places: u8,
    },
    /// A venue listed twice at construction.
    #[error("venue {venue} is listed twice")]
    DuplicateVenue {
        /// The venue.
        venue: VenueId,
    },
    /// An update for a venue not given at construction.
    #[error("venue {venue} is not part of this consolidated top")]
    UnknownVenue {
        /// The venue.
        venue: VenueId,
    },
    /// A level with a non-positive price or quantity.
    #[error("venue {venue} level {price:?} x {qty:?} is not positive")]
    InvalidLevel {
        /// The venue.
        venue: VenueId,
        /// The price.
        price: Price,
        /// The quantity.
        qty: Qty,
    },
    /// A value that does not fit an `i64` at the common scale.
    #[error("venue {venue} value {value} overflows at the common scale")]
    Overflow {
        /// The venue.
        venue: VenueId,
        /// The mantissa at the venue's scale.
        value: i64,
    },
}

/// One venue's price and quantity scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueScales {
    /// The venue.
    pub venue: VenueId,
    /// Decimal places of its prices for this asset.
    pub price: Scale,
    /// Decimal places of its quantities for this asset.
    pub qty: Scale,
}

/// A best level and the venue quoting it; price and quantity at the common scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLevel {
    /// Venue quoting the level.
    pub venue: VenueId,
    /// Price at the common price scale.
    pub price: Price,
    /// Quantity at the common quantity scale.
    pub qty: Qty,
}

/// One venue's best bid and ask at the common scales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quote {
    /// Best bid `(price, qty)`, if any.
    pub bid: Option<(Price, Qty)>,
    /// Best ask `(price, qty)`, if any.
    pub ask: Option<(Price, Qty)>,
}

#[derive(Debug, Clone)]
struct VenueQuote {
    venue: VenueId,
    price_factor: i64,
    qty_factor: i64,
    bid: Option<(Price, Qty)>,
    ask: Option<(Price, Qty)>,
}

/// Best bid and best ask across several venues' books for one asset.
///
/// Each venue's top of book is converted to common price and quantity scales given at
/// construction (each must be at least as fine as every venue's, so conversion is an exact
/// multiplication). An update is O(venues) and allocation-free; queries are O(1).
///
/// Ties go to the larger quantity, then to the venue listed first.
#[derive(Debug, Clone)]
pub struct ConsolidatedTop {
    price_scale: Scale,
    qty_scale: Scale,
    /// Index into `quotes` by `VenueId`, `u32::MAX` for venues not included.
    slots: Vec<u32>,
    quotes: Vec<VenueQuote>,
    best_bid: Option<usize>,
    best_ask: Option<usize>,
}

impl ConsolidatedTop {
    /// A consolidated top over `venues`, reporting prices at `price_scale` and quantities at
    /// `qty_scale`.
    ///
    /// # Errors
    /// [`ConsolidatedError::ScaleTooFine`] if a venue's scale is finer than the common one;
    /// [`ConsolidatedError::DuplicateVenue`].
    pub fn new(
        venues: &[VenueScales],
        price_scale: Scale,
        qty_scale: Scale,
    ) -> Result<Self, ConsolidatedError> {
        let factor = |venue, what, scale: Scale, common: Scale| {
            let (venue_places, common_places) = (scale.places(), common.places());
            if venue_places > common_places {
                return Err(ConsolidatedError::ScaleTooFine {
                    venue,
                    what,
                    venue_places,
                    common_places,
                });
            }
            // At most 10^18, which fits an i64.
            Ok(10_i64.pow(u32::from(common_places - venue_places)))
        };
        let mut slots = Vec::new();
        let mut quotes = Vec::with_capacity(venues.len());
        for v in venues {
            let index = v.venue.index();
            if slots.len() <= index {
                slots.resize(index + 1, u32::MAX);
            }
            if slots[index] != u32::MAX {
                return Err(ConsolidatedError::DuplicateVenue { venue: v.venue });
            }
            slots[index] = quotes.len() as u32;
            quotes.push(VenueQuote {
                venue: v.venue,
                price_factor: factor(v.venue, "price", v.price, price_scale)?,
                qty_factor: factor(v.venue, "qty", v.qty, qty_scale)?,
                bid: None,
                ask: None,
            });
        }
        Ok(Self {
            price_scale,
            qty_scale,
            slots,
            quotes,
            best_bid: None,
            best_ask: None,
        })
    }

    /// The common price scale.
    pub fn price_scale(&self) -> Scale {
        self.price_scale
    }

    /// The common quantity scale.
    pub fn qty_scale(&self) -> Scale {
        self.qty_scale
    }

    fn slot(&self, venue: VenueId) -> Result<usize, ConsolidatedError> {
        match self.slots.get(venue.index()) {
            Some(&slot) if slot != u32::MAX => Ok(slot as usize),
            _ => Err(ConsolidatedError::UnknownVenue { venue }),
        }
    }

    /// Records `venue`'s best bid and ask (at the venue's scales; `None` = no level).
    ///
    /// # Errors
    /// [`ConsolidatedError::UnknownVenue`], [`ConsolidatedError::InvalidLevel`],
    /// [`ConsolidatedError::Overflow`]; nothing changes on error.
    pub fn update(
        &mut self,
        venue: VenueId,
        bid: Option<(Price, Qty)>,
        ask: Option<(Price, Qty)>,
    ) -> Result<(), ConsolidatedError> {
        let slot = self.slot(venue)?;
        let quote = &self.quotes[slot];
        let normalise = |level: Option<(Price, Qty)>| -> Result<_, ConsolidatedError> {
            let Some((price, qty)) = level else {
                return Ok(None);
            };
            if price.0 <= 0 || qty.0 <= 0 {
                return Err(ConsolidatedError::InvalidLevel { venue, price, qty });
            }
            let scale = |value: i64, factor: i64| {
                value
                    .checked_mul(factor)
                    .ok_or(ConsolidatedError::Overflow { venue, value })
            };
            Ok(Some((
                Price(scale(price.0, quote.price_factor)?),
                Qty(scale(qty.0, quote.qty_factor)?),
            )))
        };
        let (bid, ask) = (normalise(bid)?, normalise(ask)?);
        let quote = &mut self.quotes[slot];
        quote.bid = bid;
        quote.ask = ask;
        self.refresh();
        Ok(())
    }

    /// Records `venue`'s [`TopOfBook`] (a side with quantity 0 has no level).
    ///
    /// # Errors
    /// As [`Self::update`].
    pub fn update_top(&mut self, venue: VenueId, top: &TopOfBook) -> Result<(), ConsolidatedError> {
        let level = |price: Price, qty: Qty| (qty.0 != 0).then_some((price, qty));
        self.update(
            venue,
            level(top.bid_price, top.bid_qty),
            level(top.ask_price, top.ask_qty),
        )
    }

    /// Forgets `venue`'s quotes (for example when its feed goes stale or disconnects).
    ///
    /// # Errors
    /// [`ConsolidatedError::UnknownVenue`].
    pub fn remove(&mut self, venue: VenueId) -> Result<(), ConsolidatedError> {
        self.update(venue, None, None)
    }

    fn refresh(&mut self) {
        // Strictly-better comparisons keep the first venue on a full tie.
        let mut best_bid: Option<(usize, Price, Qty)> = None;
        let mut best_ask: Option<(usize, Price, Qty)> = None;
        for (i, quote) in self.quotes.iter().enumerate() {
            if let Some((p, q)) = quote.bid
                && best_bid.is_none_or(|(_, bp, bq)| (p, q) > (bp, bq))
            {
                best_bid = Some((i, p, q));
            }
            if let Some((p, q)) = quote.ask
                && best_ask.is_none_or(|(_, ap, aq)| p < ap || (p == ap && q > aq))
            {
                best_ask = Some((i, p, q));
            }
        }
        self.best_bid = best_bid.map(|(i, _, _)| i);
        self.best_ask = best_ask.map(|(i, _, _)| i);
    }

    /// The highest bid across venues.
    pub fn best_bid(&self) -> Option<VenueLevel> {
        let quote = &self.quotes[self.best_bid?];
        quote.bid.map(|(price, qty)| VenueLevel {
            venue: quote.venue,
            price,
            qty,
        })
    }

    /// The lowest ask across venues.
    pub fn best_ask(&self) -> Option<VenueLevel> {
        let quote = &self.quotes[self.best_ask?];
        quote.ask.map(|(price, qty)| VenueLevel {
            venue: quote.venue,
            price,
            qty,
        })
    }

    /// `venue`'s last quotes at the common scales (`None` for a venue not included).
    pub fn quote(&self, venue: VenueId) -> Option<Quote> {
        let quote = &self.quotes[self.slot(venue).ok()?];
        Some(Quote {
            bid: quote.bid,
            ask: quote.ask,
        })
    }

    /// True if some venue bids at or above another venue's ask (a cross-venue opportunity,
    /// or stale data).
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.price >= a.price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scales(venue: u16, price: u8, qty: u8) -> VenueScales {
        VenueScales {
            venue: VenueId(venue),
            price: Scale::new(price).unwrap(),
            qty: Scale::new(qty).unwrap(),
        }
    }

    fn common(places: u8) -> Scale {
        Scale::new(places).unwrap()
    }

    #[test]
    fn picks_best_across_venues_with_scaling() {
        let venues = [scales(0, 2, 8), scales(3, 1, 5)];
        let mut top = ConsolidatedTop::new(&venues, common(2), common(8)).unwrap();
        assert_eq!(top.best_bid(), None);
        assert_eq!(top.best_ask(), None);
        // Venue 0: 100.00 / 100.05; venue 3: 100.1 / 100.2 at one decimal place.
        top.update(
            VenueId(0),
            Some((Price(10_000), Qty(5))),
            Some((Price(10_005), Qty(7))),
        )
        .unwrap();
        top.update(
            VenueId(3),
            Some((Price(1_001), Qty(2))),
            Some((Price(1_002), Qty(3))),
        )
        .unwrap();
        let bid = top.best_bid().unwrap();
        assert_eq!(
            (bid.venue, bid.price, bid.qty),
            (VenueId(3), Price(10_010), Qty(2_000))
        );
        let ask = top.best_ask().unwrap();
        assert_eq!(
            (ask.venue, ask.price, ask.qty),
            (VenueId(0), Price(10_005), Qty(7))
        );
        assert!(top.is_crossed());
        top.remove(VenueId(3)).unwrap();
        assert_eq!(top.best_bid().unwrap().venue, VenueId(0));
        assert!(!top.is_crossed());
        assert_eq!(top.quote(VenueId(3)), Some(Quote::default()));
        assert_eq!(top.quote(VenueId(1)), None);
    }

    #[test]
    fn ties_go_to_larger_qty_then_first_venue() {
        let venues = [scales(0, 2, 0), scales(1, 2, 0), scales(2, 2, 0)];
        let mut top = ConsolidatedTop::new(&venues, common(2), common(0)).unwrap();
        for v in 0..3 {
            top.update(
                VenueId(v),
                Some((Price(100), Qty(5))),
                Some((Price(101), Qty(5))),
            )
            .unwrap();
        }
        assert_eq!(top.best_bid().unwrap().venue, VenueId(0));
        assert_eq!(top.best_ask().unwrap().venue, VenueId(0));
        top.update(
            VenueId(2),
            Some((Price(100), Qty(6))),
            Some((Price(101), Qty(9))),
        )
        .unwrap();
        assert_eq!(top.best_bid().unwrap().venue, VenueId(2));
        assert_eq!(top.best_ask().unwrap().venue, VenueId(2));
    }

    #[test]
    fn update_top_reads_zero_qty_as_missing() {
        let mut top = ConsolidatedTop::new(&[scales(1, 2, 2)], common(2), common(2)).unwrap();
        let tob = TopOfBook {
            bid_price: Price(100),
            bid_qty: Qty(1),
            ask_price: Price(0),
            ask_qty: Qty(0),
            ..TopOfBook::default()
        };
        top.update_top(VenueId(1), &tob).unwrap();
        assert_eq!(top.best_bid().unwrap().price, Price(100));
        assert_eq!(top.best_ask(), None);
    }

    #[test]
    fn rejects_bad_input_without_change() {
        assert_eq!(
            ConsolidatedTop::new(&[scales(0, 3, 0)], common(2), common(0)).unwrap_err(),
            ConsolidatedError::ScaleTooFine {
                venue: VenueId(0),
                what: "price",
                venue_places: 3,
                common_places: 2
            }
        );
        assert_eq!(
            ConsolidatedTop::new(&[scales(0, 2, 0), scales(0, 2, 0)], common(2), common(0))
                .unwrap_err(),
            ConsolidatedError::DuplicateVenue { venue: VenueId(0) }
        );
        let mut top = ConsolidatedTop::new(&[scales(0, 0, 0)], common(18), common(0)).unwrap();
        top.update(VenueId(0), Some((Price(5), Qty(1))), None)
            .unwrap();
        let before = top.best_bid();
        assert_eq!(
            top.update(VenueId(0), Some((Price(50), Qty(1))), None),
            Err(ConsolidatedError::Overflow {
                venue: VenueId(0),
                value: 50
            })
        );
        assert_eq!(
            top.update(VenueId(0), Some((Price(1), Qty(-1))), None),
            Err(ConsolidatedError::InvalidLevel {
                venue: VenueId(0),
                price: Price(1),
                qty: Qty(-1)
            })
        );
        assert_eq!(
            top.update(VenueId(9), None, None),
            Err(ConsolidatedError::UnknownVenue { venue: VenueId(9) })
        );
        assert_eq!(top.best_bid(), before);
    }
}
