//! How the venue reads the market's books without depending on `aaiti-book`.

use aaiti_model::{InstrumentId, Price, Qty, Side};

/// Read access to one instrument's L2 book, as the engine keeps it.
///
/// The engine implements it for its `aaiti_book::L2Book` (plus the book's validity flag).
/// Implementations may return anything: the venue skips levels with a non-positive price or
/// quantity and never fills beyond an order's limit, whatever the view says.
pub trait DepthView {
    /// Best level of `side` (`Buy`: highest bid, `Sell`: lowest ask).
    fn best(&self, side: Side) -> Option<(Price, Qty)>;

    /// Calls `f` with the levels of `side`, best first, until it returns `false` or the
    /// levels run out.
    fn for_each_level(&self, side: Side, f: &mut dyn FnMut(Price, Qty) -> bool);

    /// Displayed quantity at `price` on `side` (zero if there is no level).
    fn level_qty(&self, side: Side, price: Price) -> Qty;

    /// True if the book is synchronised and may be traded on. While false, new orders are
    /// rejected with `BookInvalid`, replaces that need the book are refused, and book updates
    /// only re-base queue estimates.
    fn is_valid(&self) -> bool;
}

/// The books of every instrument the venue trades, by instrument id.
pub trait Books {
    /// The per-instrument view.
    type Book: DepthView + ?Sized;

    /// The book of `instrument`, or `None` if there is none (treated as invalid).
    fn book(&self, instrument: InstrumentId) -> Option<&Self::Book>;
}

/// A slice of books indexed by [`InstrumentId::index`].
impl<B: DepthView> Books for [B] {
    type Book = B;

    #[inline]
    fn book(&self, instrument: InstrumentId) -> Option<&B> {
        self.get(instrument.index())
    }
}

/// A simple [`DepthView`]: two sorted `Vec`s of levels, O(levels) updates.
///
/// For tests, benchmarks and tools; the engine uses its own books.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VecBook {
    /// Bids, highest first.
    bids: Vec<(Price, Qty)>,
    /// Asks, lowest first.
    asks: Vec<(Price, Qty)>,
    /// Value of [`DepthView::is_valid`].
    pub valid: bool,
}

impl VecBook {
    /// An empty, valid book.
    pub fn new() -> Self {
        Self {
            bids: Vec::new(),
            asks: Vec::new(),
            valid: true,
        }
    }

    /// Sets the level at `price` on `side` to `qty`; a quantity of zero or less removes it.
    pub fn set(&mut self, side: Side, price: Price, qty: Qty) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let at = levels.binary_search_by(|&(p, _)| match side {
            Side::Buy => price.cmp(&p),
            Side::Sell => p.cmp(&price),
        });
        match (at, qty.0 > 0) {
            (Ok(i), true) => levels[i].1 = qty,
            (Ok(i), false) => {
                levels.remove(i);
            }
            (Err(i), true) => levels.insert(i, (price, qty)),
            (Err(_), false) => {}
        }
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// The levels of `side`, best first.
    pub fn levels(&self, side: Side) -> &[(Price, Qty)] {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }
}

impl DepthView for VecBook {
    #[inline]
    fn best(&self, side: Side) -> Option<(Price, Qty)> {
        self.levels(side).first().copied()
    }

    #[inline]
    fn for_each_level(&self, side: Side, f: &mut dyn FnMut(Price, Qty) -> bool) {
        for &(price, qty) in self.levels(side) {
            if !f(price, qty) {
                break;
            }
        }
    }

    #[inline]
    fn level_qty(&self, side: Side, price: Price) -> Qty {
        let levels = self.levels(side);
        let at = levels.binary_search_by(|&(p, _)| match side {
            Side::Buy => price.cmp(&p),
            Side::Sell => p.cmp(&price),
        });
        at.map_or(Qty::ZERO, |i| levels[i].1)
    }

    #[inline]
    fn is_valid(&self) -> bool {
        self.valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_book_keeps_order() {
        let mut book = VecBook::new();
        book.set(Side::Buy, Price(99), Qty(1));
        book.set(Side::Buy, Price(100), Qty(2));
        book.set(Side::Sell, Price(102), Qty(3));
        book.set(Side::Sell, Price(101), Qty(4));
        assert_eq!(book.best(Side::Buy), Some((Price(100), Qty(2))));
        assert_eq!(book.best(Side::Sell), Some((Price(101), Qty(4))));
        assert_eq!(book.level_qty(Side::Sell, Price(102)), Qty(3));
        book.set(Side::Sell, Price(101), Qty(0));
        assert_eq!(book.best(Side::Sell), Some((Price(102), Qty(3))));
        assert_eq!(book.level_qty(Side::Buy, Price(5)), Qty(0));
        let mut seen = Vec::new();
        book.for_each_level(Side::Buy, &mut |p, q| {
            seen.push((p, q));
            true
        });
        assert_eq!(seen, vec![(Price(100), Qty(2)), (Price(99), Qty(1))]);
    }
}
