//! The L2 book of one instrument on one venue.

use aaiti_model::{BookAction, BookDelta, InstrumentId, Price, Qty, Side, TopOfBook};

use crate::BookError;
use crate::side::{SideBook, SideIter};
use crate::tick::{MAX_PRICE, TickSize};

/// Default (and largest) window size in ticks: 2^18, which at BTCUSDT's 0.01 tick spans
/// $2 621, enough for ~98 % of the updates Binance's diff-depth stream sends (it covers its
/// whole published depth). The window's memory is reserved at its largest size and zeroed
/// lazily by the OS, so only the pages where levels actually sit become resident: a book
/// whose levels span few ticks costs little whatever the window.
pub const DEFAULT_WINDOW_TICKS: usize = MAX_WINDOW_TICKS;

/// Largest window size in ticks: 2^18, the reach of the two-level bitmap (64 summary words of
/// 64 bits, each summarising a 64-bit word).
pub const MAX_WINDOW_TICKS: usize = crate::bitset::MAX_SLOTS;

/// Index of a side in [`L2Book::sides`]: `Buy` (code 1) → 0, `Sell` (code 2) → 1.
#[inline]
const fn side_index(side: Side) -> usize {
    side.code() as usize - 1
}

/// Multiplier from tick index to a side's key (lower key = better): -1 for bids, +1 for asks.
#[inline]
const fn side_key_sign(side: Side) -> i64 {
    2 * side.code() as i64 - 3
}

const _: () = assert!(side_index(Side::Buy) == 0 && side_index(Side::Sell) == 1);
const _: () = assert!(side_key_sign(Side::Buy) == -1 && side_key_sign(Side::Sell) == 1);

/// An L2 (price-level) order book of one instrument on one venue, on fixed-point prices.
///
/// Prices and quantities are the instrument's mantissas; the book knows only its tick size.
/// Every price must be a positive multiple of the tick no larger than [`Self::MAX_PRICE`].
/// See the [crate docs](crate) for the data structure and its costs.
pub struct L2Book {
    tick: TickSize,
    /// Bids at index 0, asks at 1 ([`side_index`]).
    sides: [SideBook; 2],
    venue_seq: u64,
}

impl std::fmt::Debug for L2Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2Book")
            .field("tick", &self.tick.tick())
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("bid_levels", &self.sides[0].len())
            .field("ask_levels", &self.sides[1].len())
            .field("venue_seq", &self.venue_seq)
            .finish()
    }
}

impl L2Book {
    /// Largest accepted price mantissa, `2^62 - 1`: the sum of two prices fits an `i64`.
    pub const MAX_PRICE: Price = Price(MAX_PRICE);

    /// An empty book for an instrument with tick size `tick` (a price mantissa), with a
    /// window of [`DEFAULT_WINDOW_TICKS`].
    ///
    /// # Errors
    /// [`BookError::InvalidTickSize`] if `tick` is not in `1..=MAX_PRICE`.
    pub fn new(tick: Price) -> Result<Self, BookError> {
        Self::with_window(tick, DEFAULT_WINDOW_TICKS)
    }

    /// An empty book whose direct-indexed window spans `window_ticks` ticks per side.
    ///
    /// Levels within the window around the touch are updated in O(1); levels beyond it are
    /// kept in an ordered map (O(log n)). A larger window keeps more of the book on the fast
    /// path and moves less often; a smaller one bounds resident memory (at most
    /// `16 × window_ticks` bytes of quantities plus a bitmap of 1/64 of that) for a venue
    /// whose levels spread over many ticks. Size it to cover where the venue's updates land.
    /// Address space is reserved for [`MAX_WINDOW_TICKS`] whatever the size (about 4 MiB per
    /// book), which lets the hot path index without bounds checks.
    ///
    /// # Errors
    /// [`BookError::InvalidTickSize`] as for [`Self::new`]; [`BookError::InvalidWindow`]
    /// unless `window_ticks` is a power of two in `64..=MAX_WINDOW_TICKS`.
    pub fn with_window(tick: Price, window_ticks: usize) -> Result<Self, BookError> {
        let tick = TickSize::new(tick)?;
        let (min, max) = (crate::bitset::MIN_SLOTS, crate::bitset::MAX_SLOTS);
        if !window_ticks.is_power_of_two() || !(min..=max).contains(&window_ticks) {
            return Err(BookError::InvalidWindow {
                window_ticks,
                min,
                max,
            });
        }
        Ok(Self {
            tick,
            sides: [SideBook::new(window_ticks), SideBook::new(window_ticks)],
            venue_seq: 0,
        })
    }

    /// Writes the whole window of both sides once, so that the OS backs it with memory now
    /// rather than on the first update that lands in each page (a page fault, ~1 µs, on the
    /// hot path). Call at start-up for books that must not pay it while trading; it makes
    /// the window fully resident (`16 × window_ticks` bytes). The book's contents are
    /// unchanged.
    pub fn prefault(&mut self) {
        for side in &mut self.sides {
            side.prefault();
        }
    }

    /// The tick size.
    pub fn tick_size(&self) -> Price {
        self.tick.tick()
    }

    /// The window size in ticks (per side).
    pub fn window_ticks(&self) -> usize {
        self.sides[0].window_ticks()
    }

    /// Sets the level at `price` on `side` to `qty`; a `qty` of 0 removes the level (removing
    /// a level that is not there is not an error: venues send such deletes).
    ///
    /// O(1) within the window; O(log n) for a level beyond it. A new best price outside the
    /// window, or the touch walking far from where the window was placed, moves the window
    /// (cost proportional to the levels that change store). Allocates only when a level
    /// beyond the window is inserted.
    ///
    /// # Errors
    /// The book is unchanged on error: [`BookError::NonPositivePrice`],
    /// [`BookError::OffTick`], [`BookError::PriceTooLarge`], [`BookError::NegativeQty`].
    // Always inlined: out of line, the call saved and restored six registers, about a third
    // of the instructions of an update (callgrind).
    #[inline(always)]
    pub fn apply(&mut self, side: Side, price: Price, qty: Qty) -> Result<(), BookError> {
        let t = self.tick.index(price)?;
        if qty.0 < 0 {
            return Err(BookError::NegativeQty { price, qty });
        }
        // Arithmetic rather than a branch on the side: feeds interleave sides unpredictably.
        self.sides[side_index(side)].update(t * side_key_sign(side), qty.0);
        Ok(())
    }

    /// Applies a [`BookDelta`] (its `instrument` is not checked: routing is the caller's job).
    /// On success the delta's `venue_seq` becomes [`Self::venue_seq`].
    ///
    /// # Errors
    /// As [`Self::apply`], plus [`BookError::UnknownSide`] / [`BookError::UnknownAction`]
    /// for bad codes. The book is unchanged on error.
    pub fn apply_delta(&mut self, delta: &BookDelta) -> Result<(), BookError> {
        let side = || Side::try_from(delta.side).map_err(|code| BookError::UnknownSide { code });
        match BookAction::try_from(delta.action) {
            Ok(BookAction::Set) => self.apply(side()?, delta.price, delta.qty)?,
            Ok(BookAction::Delete) => self.apply(side()?, delta.price, Qty(0))?,
            Ok(BookAction::Clear) => self.clear(),
            Err(code) => return Err(BookError::UnknownAction { code }),
        }
        self.venue_seq = delta.venue_seq;
        Ok(())
    }

    /// Removes every level of both sides (the window keeps its place and its memory).
    pub fn clear(&mut self) {
        self.sides[0].clear();
        self.sides[1].clear();
    }

    /// Replaces the whole book with a snapshot. Levels with quantity 0 are skipped; a price
    /// given twice keeps its last quantity.
    ///
    /// # Errors
    /// As [`Self::apply`] for the first bad level; the book is then left **empty**, never
    /// holding part of a snapshot.
    pub fn replace_snapshot<B, A>(&mut self, bids: B, asks: A) -> Result<(), BookError>
    where
        B: IntoIterator<Item = (Price, Qty)>,
        A: IntoIterator<Item = (Price, Qty)>,
    {
        self.clear();
        let result = bids
            .into_iter()
            .try_for_each(|(price, qty)| self.apply(Side::Buy, price, qty))
            .and_then(|()| {
                asks.into_iter()
                    .try_for_each(|(price, qty)| self.apply(Side::Sell, price, qty))
            });
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// The `venue_seq` of the last delta applied with [`Self::apply_delta`] (0 if none).
    pub fn venue_seq(&self) -> u64 {
        self.venue_seq
    }

    /// Sets the venue sequence reported by [`Self::top_of_book`] (after a snapshot).
    pub fn set_venue_seq(&mut self, venue_seq: u64) {
        self.venue_seq = venue_seq;
    }

    #[inline]
    fn side(&self, side: Side) -> &SideBook {
        &self.sides[side_index(side)]
    }

    /// Price of a side's key.
    #[inline]
    fn price_of(&self, side: Side, key: i64) -> Price {
        match side {
            Side::Buy => self.tick.price(-key),
            Side::Sell => self.tick.price(key),
        }
    }

    /// The best (highest) bid, O(1).
    #[inline]
    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.best(Side::Buy)
    }

    /// The best (lowest) ask, O(1).
    #[inline]
    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.best(Side::Sell)
    }

    /// The best level of `side`, O(1).
    #[inline]
    pub fn best(&self, side: Side) -> Option<(Price, Qty)> {
        let (key, qty) = self.side(side).best()?;
        Some((self.price_of(side, key), Qty(qty)))
    }

    /// Best ask minus best bid (zero or negative if the book is locked or crossed).
    pub fn spread(&self) -> Option<Price> {
        let ((bid, _), (ask, _)) = (self.best_bid()?, self.best_ask()?);
        Some(Price(ask.0 - bid.0))
    }

    /// Best bid plus best ask: the mid price at twice the price mantissa, exact.
    pub fn mid_x2(&self) -> Option<i64> {
        let ((bid, _), (ask, _)) = (self.best_bid()?, self.best_ask()?);
        // Both are <= MAX_PRICE = 2^62 - 1, so the sum fits.
        Some(bid.0 + ask.0)
    }

    /// The mid price rounded down to the price mantissa (see [`Self::mid_x2`] for the exact
    /// value). Not necessarily on tick.
    pub fn mid(&self) -> Option<Price> {
        self.mid_x2().map(|x2| Price(x2.div_euclid(2)))
    }

    /// Size-weighted mid: `(bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty)`, in price
    /// mantissa units as an `f64` (derived analytics; not for order prices). It leans toward
    /// the side with less quantity, where the next trade is more likely to move the price.
    pub fn microprice(&self) -> Option<f64> {
        let ((bid, bid_qty), (ask, ask_qty)) = (self.best_bid()?, self.best_ask()?);
        let (bq, aq) = (bid_qty.0 as f64, ask_qty.0 as f64);
        Some((bid.0 as f64 * aq + ask.0 as f64 * bq) / (bq + aq))
    }

    /// Order-book imbalance over the best `levels` levels of each side:
    /// `(bid qty − ask qty) / (bid qty + ask qty)`, in `[-1, 1]`; positive means more bids.
    /// `None` if both sides hold no quantity in those levels (or `levels` is 0). O(levels).
    pub fn imbalance(&self, levels: usize) -> Option<f64> {
        let sum = |side: &SideBook| side.iter().take(levels).map(|(_, q)| i128::from(q)).sum();
        let (bid, ask): (i128, i128) = (sum(&self.sides[0]), sum(&self.sides[1]));
        if bid + ask == 0 {
            return None;
        }
        Some((bid - ask) as f64 / (bid + ask) as f64)
    }

    /// Writes the best `out.len()` levels of `side`, best first, into `out` and returns how
    /// many were written (fewer if the side has fewer levels). Does not allocate.
    pub fn depth(&self, side: Side, out: &mut [(Price, Qty)]) -> usize {
        let mut written = 0;
        for (slot, level) in out.iter_mut().zip(self.levels(side)) {
            *slot = level;
            written += 1;
        }
        written
    }

    /// Number of price levels on `side`, O(1).
    #[inline]
    pub fn level_count(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// True if neither side holds a level.
    pub fn is_empty(&self) -> bool {
        self.sides[0].len() == 0 && self.sides[1].len() == 0
    }

    /// Displayed quantity at `price` on `side` (zero if there is no level, or the price is
    /// not a valid price of this book). O(1) near the touch.
    pub fn qty_at(&self, side: Side, price: Price) -> Qty {
        match self.tick.index(price) {
            Ok(t) => Qty(self.sides[side_index(side)].qty_at(t * side_key_sign(side))),
            Err(_) => Qty(0),
        }
    }

    /// True if the best bid is at or above the best ask (crossed or locked). Venues can
    /// publish such states transiently; the book stores what it is told.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some((b, _)), Some((a, _))) if b >= a)
    }

    /// The levels of `side`, best first (bids descending, asks ascending). Walks the window's
    /// bitmap, then the overflow map; does not allocate.
    pub fn levels(&self, side: Side) -> Levels<'_> {
        Levels {
            book: self,
            side,
            inner: self.side(side).iter(),
        }
    }

    /// The top of book as a record; a missing side has price and quantity 0.
    pub fn top_of_book(&self, instrument: InstrumentId) -> TopOfBook {
        let (bid_price, bid_qty) = self.best_bid().unwrap_or_default();
        let (ask_price, ask_qty) = self.best_ask().unwrap_or_default();
        TopOfBook {
            instrument,
            _pad: 0,
            bid_price,
            bid_qty,
            ask_price,
            ask_qty,
            venue_seq: self.venue_seq,
        }
    }
}

/// Iterator over one side's levels, best first; from [`L2Book::levels`].
#[derive(Clone)]
pub struct Levels<'a> {
    book: &'a L2Book,
    side: Side,
    inner: SideIter<'a>,
}

impl std::fmt::Debug for Levels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Levels")
            .field("side", &self.side)
            .field("remaining", &self.len())
            .finish()
    }
}

impl Iterator for Levels<'_> {
    type Item = (Price, Qty);

    #[inline]
    fn next(&mut self) -> Option<(Price, Qty)> {
        let (key, qty) = self.inner.next()?;
        Some((self.book.price_of(self.side, key), Qty(qty)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Levels<'_> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aaiti_model::{BookAction, BookDelta};

    use super::*;

    fn book(tick: i64) -> L2Book {
        L2Book::new(Price(tick)).unwrap()
    }

    fn levels(book: &L2Book, side: Side) -> Vec<(i64, i64)> {
        book.levels(side).map(|(p, q)| (p.0, q.0)).collect()
    }

    fn assert_invariants(book: &L2Book) {
        book.sides[0].assert_invariants();
        book.sides[1].assert_invariants();
    }

    #[test]
    fn empty_book_queries() {
        let book = book(1);
        assert_eq!(book.best_bid(), None);
        assert_eq!(book.best_ask(), None);
        assert_eq!(book.spread(), None);
        assert_eq!(book.mid(), None);
        assert_eq!(book.mid_x2(), None);
        assert_eq!(book.microprice(), None);
        assert_eq!(book.imbalance(5), None);
        assert_eq!(book.level_count(Side::Buy), 0);
        assert_eq!(book.levels(Side::Sell).count(), 0);
        assert!(book.is_empty());
        assert!(!book.is_crossed());
        let mut out = [(Price(1), Qty(1)); 4];
        assert_eq!(book.depth(Side::Buy, &mut out), 0);
        let tob = book.top_of_book(InstrumentId(3));
        assert_eq!(
            tob,
            TopOfBook {
                instrument: InstrumentId(3),
                ..TopOfBook::default()
            }
        );
    }

    #[test]
    fn set_update_delete_levels() {
        let mut b = book(5);
        b.apply(Side::Buy, Price(100), Qty(3)).unwrap();
        b.apply(Side::Buy, Price(95), Qty(4)).unwrap();
        b.apply(Side::Buy, Price(105), Qty(1)).unwrap();
        b.apply(Side::Sell, Price(110), Qty(2)).unwrap();
        b.apply(Side::Sell, Price(120), Qty(6)).unwrap();
        assert_eq!(levels(&b, Side::Buy), [(105, 1), (100, 3), (95, 4)]);
        assert_eq!(levels(&b, Side::Sell), [(110, 2), (120, 6)]);
        // Replace a quantity.
        b.apply(Side::Buy, Price(105), Qty(9)).unwrap();
        assert_eq!(b.best_bid(), Some((Price(105), Qty(9))));
        assert_eq!(b.level_count(Side::Buy), 3);
        // Delete the best; next best found.
        b.apply(Side::Buy, Price(105), Qty(0)).unwrap();
        assert_eq!(b.best_bid(), Some((Price(100), Qty(3))));
        // Delete a level that is not there: no-op on both sides, near and far.
        for price in [105, 5, 1_000_000_000] {
            b.apply(Side::Buy, Price(price), Qty(0)).unwrap();
            b.apply(Side::Sell, Price(price), Qty(0)).unwrap();
        }
        assert_eq!(levels(&b, Side::Buy), [(100, 3), (95, 4)]);
        assert_eq!(levels(&b, Side::Sell), [(110, 2), (120, 6)]);
        assert_eq!(b.spread(), Some(Price(10)));
        assert_eq!(b.mid_x2(), Some(210));
        assert_eq!(b.mid(), Some(Price(105)));
        assert!(!b.is_crossed());
        assert_invariants(&b);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.best_ask(), None);
        assert_invariants(&b);
    }

    #[test]
    fn invalid_input_is_rejected_without_change() {
        let mut b = book(10);
        b.apply(Side::Buy, Price(100), Qty(1)).unwrap();
        let before = (levels(&b, Side::Buy), levels(&b, Side::Sell));
        let cases = [
            (
                Price(0),
                Qty(1),
                BookError::NonPositivePrice { price: Price(0) },
            ),
            (
                Price(-10),
                Qty(1),
                BookError::NonPositivePrice { price: Price(-10) },
            ),
            (
                Price(105),
                Qty(1),
                BookError::OffTick {
                    price: Price(105),
                    tick: Price(10),
                },
            ),
            (
                Price(100),
                Qty(-1),
                BookError::NegativeQty {
                    price: Price(100),
                    qty: Qty(-1),
                },
            ),
            (
                Price(i64::MAX - 7),
                Qty(1),
                BookError::PriceTooLarge {
                    price: Price(i64::MAX - 7),
                    max: L2Book::MAX_PRICE,
                },
            ),
        ];
        for (price, qty, err) in cases {
            for side in [Side::Buy, Side::Sell] {
                assert_eq!(b.apply(side, price, qty), Err(err));
                if qty.0 >= 0 {
                    // A bad price is rejected for deletes too.
                    assert_eq!(b.apply(side, price, Qty(0)), Err(err));
                }
            }
        }
        assert_eq!((levels(&b, Side::Buy), levels(&b, Side::Sell)), before);
        assert_eq!(
            L2Book::new(Price(0)).unwrap_err(),
            BookError::InvalidTickSize { tick: Price(0) }
        );
        assert!(matches!(
            L2Book::with_window(Price(1), 1000),
            Err(BookError::InvalidWindow {
                window_ticks: 1000,
                ..
            })
        ));
        assert!(L2Book::with_window(Price(1), 1 << 19).is_err());
        assert!(L2Book::with_window(Price(1), 32).is_err());
    }

    #[test]
    fn extreme_prices_are_kept() {
        let mut b = book(1);
        let max = L2Book::MAX_PRICE;
        b.apply(Side::Sell, max, Qty(1)).unwrap();
        b.apply(Side::Sell, Price(1), Qty(2)).unwrap();
        b.apply(Side::Buy, max, Qty(3)).unwrap();
        b.apply(Side::Buy, Price(1), Qty(4)).unwrap();
        assert_eq!(levels(&b, Side::Sell), [(1, 2), (max.0, 1)]);
        assert_eq!(levels(&b, Side::Buy), [(max.0, 3), (1, 4)]);
        assert_eq!(b.mid_x2(), Some(max.0 + 1));
        assert_eq!(b.spread(), Some(Price(1 - max.0)));
        assert!(b.is_crossed());
        assert_invariants(&b);
        b.apply(Side::Sell, Price(1), Qty(0)).unwrap();
        b.apply(Side::Buy, max, Qty(0)).unwrap();
        assert_eq!(b.best_ask(), Some((max, Qty(1))));
        assert_eq!(b.best_bid(), Some((Price(1), Qty(4))));
        assert_invariants(&b);
    }

    /// BTC walks from 60 000 to 66 000 and back (±10 %) at tick 0.01 (600 000 ticks, many
    /// windows), the venue keeping 50 levels a side and dropping levels behind the touch.
    #[test]
    fn window_recentres_as_price_walks_far() {
        for window in [1 << 10, DEFAULT_WINDOW_TICKS] {
            let mut b = L2Book::with_window(Price(1), window).unwrap();
            type Reference = (BTreeMap<i64, i64>, BTreeMap<i64, i64>);
            let mut reference: Reference = (BTreeMap::new(), BTreeMap::new());
            let set = |b: &mut L2Book, r: &mut Reference, side: Side, price: i64, qty: i64| {
                b.apply(side, Price(price), Qty(qty)).unwrap();
                let map = if side == Side::Buy {
                    &mut r.0
                } else {
                    &mut r.1
                };
                if qty == 0 {
                    map.remove(&price);
                } else {
                    map.insert(price, qty);
                }
            };
            // Resting far levels that must survive the walk.
            set(&mut b, &mut reference, Side::Buy, 1_000_000, 5);
            set(&mut b, &mut reference, Side::Sell, 20_000_000, 5);
            let path = (6_000_000..6_600_000)
                .step_by(7)
                .chain((6_000_000..6_600_000).rev().step_by(7));
            let mut last = 6_000_000;
            for mid in path {
                let up = mid > last;
                last = mid;
                for d in [1, 3, 50] {
                    set(&mut b, &mut reference, Side::Buy, mid - d, d);
                    set(&mut b, &mut reference, Side::Sell, mid + d, d);
                }
                // Levels behind the touch go away as it moves.
                for d in 0..8 {
                    if up {
                        set(&mut b, &mut reference, Side::Sell, mid - d, 0);
                    } else {
                        set(&mut b, &mut reference, Side::Buy, mid + d, 0);
                    }
                }
                assert_eq!(
                    b.best_bid().map(|l| l.0.0),
                    reference.0.last_key_value().map(|l| *l.0)
                );
                assert_eq!(
                    b.best_ask().map(|l| l.0.0),
                    reference.1.first_key_value().map(|l| *l.0)
                );
            }
            assert_invariants(&b);
            let want_bids: Vec<_> = reference.0.iter().rev().map(|(&p, &q)| (p, q)).collect();
            let want_asks: Vec<_> = reference.1.iter().map(|(&p, &q)| (p, q)).collect();
            assert_eq!(levels(&b, Side::Buy), want_bids);
            assert_eq!(levels(&b, Side::Sell), want_asks);
            assert_eq!(levels(&b, Side::Buy).last(), Some(&(1_000_000, 5)));
            assert_eq!(levels(&b, Side::Sell).last(), Some(&(20_000_000, 5)));
            assert_eq!(b.level_count(Side::Buy), reference.0.len());
        }
    }

    #[test]
    fn far_levels_outside_the_window() {
        let mut b = L2Book::with_window(Price(1), 64).unwrap();
        b.apply(Side::Sell, Price(1_000), Qty(1)).unwrap();
        for p in [1_064, 1_100, 50_000, 1_000_000_000] {
            b.apply(Side::Sell, Price(p), Qty(p)).unwrap();
        }
        // A new best far below the window: the old window's levels move to the overflow.
        b.apply(Side::Sell, Price(10), Qty(7)).unwrap();
        assert_invariants(&b);
        assert_eq!(
            levels(&b, Side::Sell),
            [
                (10, 7),
                (1_000, 1),
                (1_064, 1_064),
                (1_100, 1_100),
                (50_000, 50_000),
                (1_000_000_000, 1_000_000_000)
            ]
        );
        // Delete down the book, all from beyond the window at some point.
        for p in [10, 1_000, 1_064, 1_100, 50_000] {
            b.apply(Side::Sell, Price(p), Qty(0)).unwrap();
            assert_invariants(&b);
        }
        assert_eq!(
            b.best_ask(),
            Some((Price(1_000_000_000), Qty(1_000_000_000)))
        );
        assert_eq!(b.level_count(Side::Sell), 1);
    }

    #[test]
    fn analytics() {
        let mut b = book(1);
        b.replace_snapshot(
            [
                (Price(100), Qty(30)),
                (Price(99), Qty(10)),
                (Price(98), Qty(0)),
            ],
            [(Price(102), Qty(10)), (Price(103), Qty(50))],
        )
        .unwrap();
        assert_eq!(b.level_count(Side::Buy), 2);
        assert_eq!(b.mid_x2(), Some(202));
        assert_eq!(b.mid(), Some(Price(101)));
        // (100 * 10 + 102 * 30) / 40 = 101.5
        assert_eq!(b.microprice(), Some(101.5));
        assert_eq!(b.imbalance(1), Some(0.5));
        assert_eq!(b.imbalance(2), Some(-0.2));
        assert_eq!(b.imbalance(0), None);
        let mut out = [(Price(0), Qty(0)); 1];
        assert_eq!(b.depth(Side::Buy, &mut out), 1);
        assert_eq!(out, [(Price(100), Qty(30))]);
        let mut out = [(Price(0), Qty(0)); 5];
        assert_eq!(b.depth(Side::Sell, &mut out), 2);
        assert_eq!(&out[..2], &[(Price(102), Qty(10)), (Price(103), Qty(50))]);
        // Odd sum: mid rounds down, exact value from mid_x2.
        b.apply(Side::Sell, Price(101), Qty(1)).unwrap();
        assert_eq!(b.mid_x2(), Some(201));
        assert_eq!(b.mid(), Some(Price(100)));
        b.apply(Side::Sell, Price(100), Qty(1)).unwrap();
        assert!(b.is_crossed());
        assert_eq!(b.spread(), Some(Price(0)));
        b.clear();
        b.apply(Side::Buy, Price(5), Qty(1)).unwrap();
        assert_eq!(b.imbalance(3), Some(1.0));
    }

    #[test]
    fn snapshot_replaces_and_fails_clean() {
        let mut b = book(1);
        b.apply(Side::Buy, Price(50), Qty(1)).unwrap();
        b.replace_snapshot(
            [(Price(10), Qty(1)), (Price(10), Qty(2))],
            [(Price(11), Qty(3))],
        )
        .unwrap();
        assert_eq!(levels(&b, Side::Buy), [(10, 2)]);
        assert_eq!(levels(&b, Side::Sell), [(11, 3)]);
        let err = b.replace_snapshot([(Price(10), Qty(1))], [(Price(0), Qty(3))]);
        assert_eq!(err, Err(BookError::NonPositivePrice { price: Price(0) }));
        assert!(b.is_empty());
    }

    #[test]
    fn deltas_and_top_of_book() {
        let mut b = book(1);
        let delta = |side: Side, action: BookAction, price, qty, seq| BookDelta {
            side: side.code(),
            action: action.code(),
            price: Price(price),
            qty: Qty(qty),
            venue_seq: seq,
            ..BookDelta::default()
        };
        b.apply_delta(&delta(Side::Buy, BookAction::Set, 10, 5, 1))
            .unwrap();
        b.apply_delta(&delta(Side::Sell, BookAction::Set, 12, 6, 2))
            .unwrap();
        b.apply_delta(&delta(Side::Sell, BookAction::Set, 11, 7, 3))
            .unwrap();
        b.apply_delta(&delta(Side::Sell, BookAction::Delete, 11, 99, 4))
            .unwrap();
        assert_eq!(b.venue_seq(), 4);
        let tob = b.top_of_book(InstrumentId(9));
        assert_eq!(
            (
                tob.instrument,
                tob.bid_price,
                tob.bid_qty,
                tob.ask_price,
                tob.ask_qty,
                tob.venue_seq
            ),
            (InstrumentId(9), Price(10), Qty(5), Price(12), Qty(6), 4)
        );
        let mut bad = delta(Side::Buy, BookAction::Set, 10, 1, 5);
        bad.side = 9;
        assert_eq!(b.apply_delta(&bad), Err(BookError::UnknownSide { code: 9 }));
        bad.action = 0;
        assert_eq!(
            b.apply_delta(&bad),
            Err(BookError::UnknownAction { code: 0 })
        );
        assert_eq!(b.venue_seq(), 4);
        let mut clear = delta(Side::Buy, BookAction::Clear, 0, 0, 6);
        clear.side = 0;
        b.apply_delta(&clear).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.venue_seq(), 6);
        b.set_venue_seq(100);
        assert_eq!(b.top_of_book(InstrumentId(0)).venue_seq, 100);
    }

    #[test]
    fn prefault_keeps_contents() {
        let mut b = L2Book::with_window(Price(1), 1 << 12).unwrap();
        b.apply(Side::Buy, Price(1_000), Qty(5)).unwrap();
        b.apply(Side::Sell, Price(1_003), Qty(6)).unwrap();
        b.apply(Side::Sell, Price(9_000_000), Qty(7)).unwrap();
        b.prefault();
        assert_eq!(levels(&b, Side::Buy), [(1_000, 5)]);
        assert_eq!(levels(&b, Side::Sell), [(1_003, 6), (9_000_000, 7)]);
        assert_invariants(&b);
    }

    #[test]
    fn debug_is_short() {
        let mut b = book(1);
        b.apply(Side::Buy, Price(10), Qty(5)).unwrap();
        let text = format!("{b:?} {:?}", b.levels(Side::Buy));
        assert!(text.len() < 300, "{text}");
        assert_eq!(b.tick_size(), Price(1));
        assert_eq!(b.window_ticks(), DEFAULT_WINDOW_TICKS);
    }
}
