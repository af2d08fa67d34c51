//! Untriggered stop orders of one instrument, sorted so that a price check is
//! O(log n + triggered) with no allocation.
//!
//! Each side is a `Vec` sorted so that the next stop to trigger is the *last* element:
//! triggering pops from the end. Buy stops trigger when the price rises to or above their
//! stop, so the lowest stop is last; sell stops trigger when it falls to or below, so the
//! highest is last. Among equal stops the oldest (lowest order id) triggers first. A price
//! that gaps over several stops triggers all of them, buys before sells, each side in that
//! order. Insertion and removal are a binary search plus a `memmove` of the entries after
//! the position (cheap for the tens to thousands of stops an instrument holds).

use aaiti_model::{OrderId, Price, Side};
use serde::{Deserialize, Serialize};

/// One armed stop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StopEntry {
    /// Trigger price.
    pub(super) stop: Price,
    /// Order.
    pub(super) id: OrderId,
    /// The order's slot in the manager's table.
    pub(super) slot: u32,
}

/// Sort key of a buy entry: ascending order puts the lowest stop, then the oldest, last.
#[inline]
fn buy_key(entry: &StopEntry) -> (i64, u64) {
    (!entry.stop.0, !entry.id.0)
}

/// Sort key of a sell entry: ascending order puts the highest stop, then the oldest, last.
#[inline]
fn sell_key(entry: &StopEntry) -> (i64, u64) {
    (entry.stop.0, !entry.id.0)
}

/// A side's sort key function.
type KeyFn = fn(&StopEntry) -> (i64, u64);

/// The stops of one instrument.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StopBook {
    buys: Vec<StopEntry>,
    sells: Vec<StopEntry>,
}

impl StopBook {
    /// An empty book with room for `capacity` stops per side.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            buys: Vec::with_capacity(capacity),
            sells: Vec::with_capacity(capacity),
        }
    }

    fn side(&mut self, side: Side) -> (&mut Vec<StopEntry>, KeyFn) {
        match side {
            Side::Buy => (&mut self.buys, buy_key),
            Side::Sell => (&mut self.sells, sell_key),
        }
    }

    /// Makes room for `additional` more stops per side.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.buys.reserve(additional);
        self.sells.reserve(additional);
    }

    /// Adds a stop.
    pub(super) fn insert(&mut self, side: Side, entry: StopEntry) {
        let (entries, key) = self.side(side);
        let k = key(&entry);
        let position = entries.partition_point(|e| key(e) < k);
        entries.insert(position, entry);
    }

    /// Removes a stop; false if it was not there.
    pub(super) fn remove(&mut self, side: Side, stop: Price, id: OrderId) -> bool {
        let (entries, key) = self.side(side);
        let k = key(&StopEntry { stop, id, slot: 0 });
        match entries.binary_search_by(|e| key(e).cmp(&k)) {
            Ok(position) => {
                entries.remove(position);
                true
            }
            Err(_) => false,
        }
    }

    /// True if a stop on `side` at `stop` triggers at `price` (gaps included).
    #[inline]
    pub(super) fn triggers(side: Side, stop: Price, price: Price) -> bool {
        match side {
            Side::Buy => price >= stop,
            Side::Sell => price <= stop,
        }
    }

    /// Removes and returns the next stop that `price` triggers, if any.
    #[inline]
    pub(super) fn pop_triggered(&mut self, price: Price) -> Option<StopEntry> {
        if let Some(last) = self.buys.last()
            && Self::triggers(Side::Buy, last.stop, price)
        {
            return self.buys.pop();
        }
        if let Some(last) = self.sells.last()
            && Self::triggers(Side::Sell, last.stop, price)
        {
            return self.sells.pop();
        }
        None
    }

    /// Number of stops.
    pub(super) fn len(&self) -> usize {
        self.buys.len() + self.sells.len()
    }

    /// Every entry with its side (for invariant checks).
    pub(super) fn entries(&self) -> impl Iterator<Item = (Side, &StopEntry)> {
        self.buys
            .iter()
            .map(|e| (Side::Buy, e))
            .chain(self.sells.iter().map(|e| (Side::Sell, e)))
    }

    /// True if both sides are sorted by their keys (for snapshot validation).
    pub(super) fn is_sorted(&self) -> bool {
        self.buys.is_sorted_by_key(buy_key) && self.sells.is_sorted_by_key(sell_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(stop: i64, id: u64) -> StopEntry {
        StopEntry {
            stop: Price(stop),
            id: OrderId(id),
            slot: id as u32,
        }
    }

    #[test]
    fn triggers_in_order_including_gaps() {
        let mut book = StopBook::with_capacity(4);
        book.insert(Side::Buy, e(110, 3));
        book.insert(Side::Buy, e(105, 2));
        book.insert(Side::Buy, e(105, 1));
        book.insert(Side::Buy, e(120, 4));
        book.insert(Side::Sell, e(90, 5));
        book.insert(Side::Sell, e(95, 6));
        assert!(book.is_sorted());
        assert_eq!(book.pop_triggered(Price(100)), None);
        // Gap from below 105 to 112: 105 (oldest first), then 110.
        let fired: Vec<u64> = std::iter::from_fn(|| book.pop_triggered(Price(112)))
            .map(|e| e.id.0)
            .collect();
        assert_eq!(fired, vec![1, 2, 3]);
        // Gap down through both sell stops: highest first.
        let fired: Vec<u64> = std::iter::from_fn(|| book.pop_triggered(Price(80)))
            .map(|e| e.id.0)
            .collect();
        assert_eq!(fired, vec![6, 5]);
        assert_eq!(book.len(), 1);
        assert!(book.remove(Side::Buy, Price(120), OrderId(4)));
        assert!(!book.remove(Side::Buy, Price(120), OrderId(4)));
        assert_eq!(book.len(), 0);
    }
}
