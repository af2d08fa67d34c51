//! One side of a book: a price-indexed ring window near the touch plus an ordered overflow
//! store for every level outside it.
//!
//! The side works on *keys* where lower is better: an ask's key is its tick index, a bid's
//! the negated tick index. One implementation then serves both sides.
//!
//! # Invariants (checked by `assert_invariants` in the tests)
//!
//! * The window covers keys `base..base + cap`; a level with a key in it lives in
//!   `qty[key & mask]` (0 = no level) with its bit set in `bits`; every other level lives in
//!   `overflow`.
//! * The side is empty, or `best` is the lowest key of all and lies in the window. So the
//!   window never holds a key below `best`, and every overflow key is `>= base + cap`.
//! * `window_len` counts the window's levels; `best == EMPTY` exactly when it is 0, and
//!   then `base` is `EMPTY` too, so that every key lies outside the window.
//!
//! # Re-centring
//!
//! A new best below `base` moves the window down so the best sits `margin` ticks above
//! `base`, evicting the levels that fall off the top into `overflow`. When the best rises
//! more than `high` ticks above `base` (deletes walking the touch away, or the window
//! emptying), the window moves up the same way and pulls the overflow levels it now covers.
//! Because the window is a ring, a move touches only the levels that change store, never
//! the whole array. The hysteresis between `margin` and `high` bounds how often it moves.

use std::collections::BTreeMap;

use crate::bitset::{Bitset, MAX_SLOTS, zeroed_box};

/// `best` of an empty side: above every key (tick indices are below 2^62, see
/// `tick::MAX_PRICE`), and close enough to them that `EMPTY - key` fits an `i64`.
pub(crate) const EMPTY: i64 = 1 << 62;

const _: () = assert!(EMPTY > crate::tick::MAX_PRICE);

pub(crate) struct SideBook {
    /// Quantity mantissas of the window's levels, indexed by `key & mask`; 0 = no level.
    /// Sized for the largest window so that slot indices need no bounds checks (a slot is
    /// masked with `MAX_SLOTS - 1`); a smaller window only touches its first `cap` entries,
    /// so the rest of the allocation never becomes resident.
    qty: Box<[i64; MAX_SLOTS]>,
    bits: Bitset,
    mask: i64,
    cap: i64,
    /// Lowest key of the window.
    base: i64,
    /// Lowest key on this side, or [`EMPTY`].
    best: i64,
    window_len: usize,
    /// Levels outside the window, by key.
    overflow: BTreeMap<i64, i64>,
    /// Where a re-centre puts the best, in ticks above `base`.
    margin: i64,
    /// How far above `base` the best may drift before the window moves up.
    high: i64,
}

impl SideBook {
    /// An empty side with a window of `cap` ticks (a power of two the bitmap supports).
    pub(crate) fn new(cap: usize) -> Self {
        let cap_i = cap as i64;
        debug_assert!(cap.is_power_of_two() && cap <= MAX_SLOTS);
        Self {
            qty: zeroed_box(),
            bits: Bitset::new(),
            mask: cap_i - 1,
            cap: cap_i,
            base: EMPTY,
            best: EMPTY,
            window_len: 0,
            overflow: BTreeMap::new(),
            margin: cap_i / 8,
            high: cap_i / 2,
        }
    }

    #[inline]
    fn slot(&self, key: i64) -> usize {
        (key & self.mask) as usize & (MAX_SLOTS - 1)
    }

    #[inline]
    fn in_window(&self, key: i64) -> bool {
        ((key - self.base) as u64) < self.cap as u64
    }

    /// Sets the level at `key` to `qty`, or removes it if `qty` is 0 (a no-op if there is
    /// no level there).
    ///
    /// Inside the window this is branch-free with respect to the slot's old contents: the
    /// slot load misses cache when the book is large, and a branch on it would be
    /// mispredicted often (venues mix inserts, modifies and deletes of absent levels),
    /// throwing away the loads of the updates behind it that the CPU has already started.
    /// The only branches depend on the input and on the cached best, and are rarely taken.
    #[inline(always)]
    pub(crate) fn update(&mut self, key: i64, qty: i64) {
        debug_assert!(qty >= 0);
        if !self.in_window(key) {
            return self.update_outside(key, qty);
        }
        let slot = self.slot(key);
        let old = std::mem::replace(&mut self.qty[slot], qty);
        self.bits.assign(slot, qty != 0);
        // Cannot underflow: a level present before means window_len >= 1.
        self.window_len = self.window_len + usize::from(qty != 0) - usize::from(old != 0);
        // A set can only improve the best (a conditional move); the delete of the best
        // level is the one rare branch, tested with a single compare (qty >= 0, so the OR is
        // zero exactly when both are). An empty side has its window parked at EMPTY, so its
        // first level goes through `update_outside`, which places the window around it.
        let best_deleted = ((self.best - key) | qty) == 0;
        self.best = self.best.min(if qty == 0 { EMPTY } else { key });
        if best_deleted {
            self.find_best_after_delete(slot);
        }
    }

    /// An update outside the window.
    #[cold]
    #[inline(never)]
    fn update_outside(&mut self, key: i64, qty: i64) {
        if qty == 0 {
            // Below the window there are no levels; above it is the overflow.
            if key > self.base {
                self.overflow.remove(&key);
            }
        } else if key < self.base || self.window_len == 0 {
            // A new best outside the window (or the first level of an empty side).
            self.recentre(key - self.margin);
            let slot = self.slot(key);
            self.qty[slot] = qty;
            self.bits.assign(slot, true);
            self.window_len += 1;
            self.best = key;
        } else {
            self.overflow.insert(key, qty);
        }
    }

    /// Marks the (already empty) side empty and parks the window at `EMPTY`, beyond every
    /// key, so that the next level is placed by `update_outside`.
    fn park(&mut self) {
        debug_assert!(self.window_len == 0 && self.overflow.is_empty());
        self.best = EMPTY;
        self.base = EMPTY;
    }

    /// The best level at `slot` was just removed: find the next one.
    #[inline(never)]
    fn find_best_after_delete(&mut self, slot: usize) {
        // Nothing in the window lies below the old best, so the first occupied slot walking
        // up from it (ring order) is the next best.
        match self.bits.next_cyclic(slot) {
            Some(next) => {
                self.best = self.base + ((next as i64 - self.base) & self.mask);
                if self.best - self.base > self.high {
                    self.recentre(self.best - self.margin);
                }
            }
            None => self.refill_from_overflow(),
        }
    }

    /// The window is empty: the overflow's lowest key (if any) becomes the best.
    #[cold]
    #[inline(never)]
    fn refill_from_overflow(&mut self) {
        match self.overflow.first_key_value() {
            Some((&key, _)) => {
                self.recentre(key - self.margin);
                self.best = key;
            }
            None => self.park(),
        }
    }

    /// Moves the window to start at `new_base`, migrating levels between the ring and the
    /// overflow store. Every level below `new_base` must already be gone (the caller is
    /// placing a new best at or above `new_base`, or no level lies below it).
    #[cold]
    #[inline(never)]
    fn recentre(&mut self, new_base: i64) {
        let old_base = self.base;
        if new_base < old_base {
            // Evict the keys that fall off the top: [new_base + cap, old_base + cap).
            let evict_from = (new_base + self.cap).max(old_base);
            self.drain_window(evict_from, old_base + self.cap);
            self.base = new_base;
        } else if new_base > old_base {
            self.base = new_base;
            // Every overflow key is >= old_base + cap; pull those the window now covers. Their
            // ring slots belong to keys below new_base, which are empty.
            let end = new_base + self.cap;
            while let Some(entry) = self.overflow.first_entry() {
                let key = *entry.key();
                if key >= end {
                    break;
                }
                let qty = entry.remove();
                let slot = self.slot(key);
                debug_assert_eq!(self.qty[slot], 0);
                self.qty[slot] = qty;
                self.bits.assign(slot, true);
                self.window_len += 1;
            }
        }
    }

    /// Moves the window's levels with keys in `from..to` (inside the window) to the overflow.
    fn drain_window(&mut self, from: i64, to: i64) {
        let mut key = from;
        while key < to {
            let start = self.slot(key);
            let Some(found) = self.bits.next_cyclic(start) else {
                break;
            };
            key += (found as i64 - start as i64) & self.mask;
            if key >= to {
                break;
            }
            let qty = std::mem::replace(&mut self.qty[found], 0);
            self.bits.assign(found, false);
            self.window_len -= 1;
            self.overflow.insert(key, qty);
            key += 1;
        }
    }

    /// Removes every level. Walks the occupied slots only (O(levels)), so the untouched
    /// part of the window stays untouched.
    pub(crate) fn clear(&mut self) {
        let mut slot = 0;
        while let Some(found) = self.bits.next_cyclic(slot) {
            self.qty[found & (MAX_SLOTS - 1)] = 0;
            self.bits.assign(found, false);
            slot = found;
        }
        self.window_len = 0;
        self.overflow.clear();
        self.park();
    }

    /// Touches every page of the window's storage (see [`crate::L2Book::prefault`]).
    pub(crate) fn prefault(&mut self) {
        let cap = self.cap as usize;
        // Writing back what is there keeps the contents; black_box keeps the writes.
        for q in &mut self.qty[..cap] {
            *q = std::hint::black_box(*q);
        }
        self.bits.prefault(cap);
    }

    /// Quantity at `key` (0 if no level): O(1) inside the window, O(log n) beyond it.
    #[inline]
    pub(crate) fn qty_at(&self, key: i64) -> i64 {
        if self.window_len > 0 && self.in_window(key) {
            self.qty[self.slot(key)]
        } else {
            self.overflow.get(&key).copied().unwrap_or(0)
        }
    }

    /// The best level: `(key, qty)`.
    #[inline]
    pub(crate) fn best(&self) -> Option<(i64, i64)> {
        if self.best == EMPTY {
            None
        } else {
            Some((self.best, self.qty[self.slot(self.best)]))
        }
    }

    /// Number of levels.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.window_len + self.overflow.len()
    }

    /// Window size in ticks.
    pub(crate) fn window_ticks(&self) -> usize {
        self.cap as usize
    }

    /// The levels, best first, as `(key, qty)`.
    pub(crate) fn iter(&self) -> SideIter<'_> {
        SideIter {
            side: self,
            offset: if self.best == EMPTY {
                self.cap
            } else {
                self.best - self.base
            },
            overflow: self.overflow.iter(),
            remaining: self.len(),
        }
    }

    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        let mut count = 0;
        let mut lowest = EMPTY;
        for slot in 0..self.cap as usize {
            let q = self.qty[slot];
            assert!(q >= 0);
            assert_eq!(q != 0, self.bits.contains(slot), "slot {slot}");
            if q != 0 {
                count += 1;
                let key = self.base + ((slot as i64 - self.base) & self.mask);
                lowest = lowest.min(key);
            }
        }
        assert_eq!(count, self.window_len);
        assert_eq!(count == 0, self.bits.is_empty());
        assert_eq!(lowest, self.best, "best must be the lowest window key");
        for (&key, &q) in &self.overflow {
            assert!(q > 0);
            assert!(
                key >= self.base + self.cap,
                "overflow key {key} inside/below window"
            );
        }
        if self.best == EMPTY {
            assert!(self.overflow.is_empty());
            assert_eq!(self.base, EMPTY, "an empty side parks its window");
        }
    }
}

/// Iterator over a side's levels, best first.
#[derive(Clone)]
pub(crate) struct SideIter<'a> {
    side: &'a SideBook,
    /// Next window offset (from `base`) to look at; `cap` once the window is done.
    offset: i64,
    overflow: std::collections::btree_map::Iter<'a, i64, i64>,
    remaining: usize,
}

impl Iterator for SideIter<'_> {
    type Item = (i64, i64);

    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        let side = self.side;
        if self.offset < side.cap {
            let start = side.slot(side.base + self.offset);
            if let Some(found) = side.bits.next_cyclic(start) {
                let offset = self.offset + ((found as i64 - start as i64) & side.mask);
                if offset < side.cap {
                    self.offset = offset + 1;
                    self.remaining -= 1;
                    return Some((side.base + offset, side.qty[found]));
                }
            }
            self.offset = side.cap;
        }
        let (&key, &qty) = self.overflow.next()?;
        self.remaining -= 1;
        Some((key, qty))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for SideIter<'_> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    impl SideBook {
        fn set(&mut self, key: i64, qty: i64) {
            self.update(key, qty);
        }

        fn delete(&mut self, key: i64) {
            self.update(key, 0);
        }
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check(side: &SideBook, reference: &BTreeMap<i64, i64>) {
        side.assert_invariants();
        assert_eq!(side.len(), reference.len());
        let got: Vec<_> = side.iter().collect();
        let want: Vec<_> = reference.iter().map(|(&k, &q)| (k, q)).collect();
        assert_eq!(got, want);
        assert_eq!(
            side.best(),
            reference.first_key_value().map(|(&k, &q)| (k, q))
        );
    }

    #[test]
    fn random_walk_matches_btreemap() {
        for cap in [64, 256, 4096] {
            let mut rng = Rng(0x1234_5678 + cap as u64);
            let mut side = SideBook::new(cap);
            let mut reference = BTreeMap::new();
            let mut mid: i64 = if cap == 256 { -1_000_000 } else { 1_000_000 };
            for step in 0..40_000 {
                if rng.below(10) == 0 {
                    mid += rng.below(41) as i64 - 20;
                }
                let key = match rng.below(100) {
                    0 => mid + rng.below(1 << 20) as i64 - (1 << 19),
                    1..=4 => mid + rng.below(4 * cap as u64) as i64 - cap as i64,
                    _ => mid + rng.below(40) as i64 - 8,
                };
                if rng.below(3) == 0 {
                    side.delete(key);
                    reference.remove(&key);
                } else {
                    let qty = 1 + rng.below(1000) as i64;
                    side.set(key, qty);
                    reference.insert(key, qty);
                }
                if step % 97 == 0 || cap == 64 {
                    check(&side, &reference);
                }
                if step % 10_000 == 9_999 {
                    side.clear();
                    reference.clear();
                    check(&side, &reference);
                }
            }
            check(&side, &reference);
        }
    }

    /// Dense levels over several windows, then the touch walks through all of them: every
    /// window move migrates a full run of keys, including those at the window's edges.
    #[test]
    fn dense_walks_migrate_window_edges() {
        for cap in [64, 256] {
            let span = 5 * cap as i64;
            // Deletes from the best up (the window moves up, pulling from the overflow).
            let mut side = SideBook::new(cap);
            let mut reference = BTreeMap::new();
            for key in 0..span {
                side.set(key, key + 1);
                reference.insert(key, key + 1);
            }
            check(&side, &reference);
            for key in 0..span {
                side.delete(key);
                reference.remove(&key);
                check(&side, &reference);
            }
            // New bests one below the other (the window moves down, evicting its top).
            for key in (0..span).rev() {
                side.set(key - 10_000, 1);
                reference.insert(key - 10_000, 1);
                check(&side, &reference);
            }
            // And back up by deletes, in steps that skip keys.
            for key in (0..span).step_by(3) {
                side.delete(key - 10_000);
                reference.remove(&(key - 10_000));
                check(&side, &reference);
            }
        }
    }

    #[test]
    fn small_window_uses_only_its_slots() {
        let mut side = SideBook::new(64);
        for key in -500..500 {
            side.set(key * 7, 1);
        }
        side.clear();
        for key in (-500..500).rev() {
            side.set(key * 3, 2);
        }
        assert!(side.qty[64..].iter().all(|&q| q == 0));
        side.assert_invariants();
    }

    #[test]
    fn emptying_the_window_pulls_from_overflow() {
        let mut side = SideBook::new(64);
        side.set(100, 1);
        for k in [1_000, 1_001, 5_000, 100_000] {
            side.set(k, 2);
        }
        assert_eq!(side.window_len, 1);
        side.delete(100);
        side.assert_invariants();
        assert_eq!(side.best(), Some((1_000, 2)));
        assert_eq!(side.window_len, 2);
        side.delete(1_000);
        side.delete(1_001);
        assert_eq!(side.best(), Some((5_000, 2)));
        side.delete(5_000);
        side.delete(100_000);
        assert_eq!(side.best(), None);
        assert_eq!(side.len(), 0);
        side.assert_invariants();
    }

    #[test]
    fn new_best_far_below_evicts_window() {
        let mut side = SideBook::new(64);
        for k in 0..40 {
            side.set(1_000 + k, 1 + k);
        }
        side.set(10, 7);
        side.assert_invariants();
        assert_eq!(side.best(), Some((10, 7)));
        assert_eq!(side.len(), 41);
        assert_eq!(side.window_len, 1);
        side.delete(10);
        side.assert_invariants();
        assert_eq!(side.best(), Some((1_000, 1)));
        assert_eq!(side.window_len, 40);
    }
}
