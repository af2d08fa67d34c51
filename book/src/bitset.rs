//! A two-level occupancy bitmap over the slots of a side's window.
//!
//! Level 0 has one bit per slot, level 1 one bit per non-zero level-0 word (so one level-1
//! word covers 4096 slots). Finding the next occupied slot takes one or two
//! `trailing_zeros` when it lies within 4096 slots, as the next level of a book almost
//! always does; otherwise a scan of at most 64 level-1 words (512 bytes). A third level
//! would make that scan two more `trailing_zeros` but cost every update another
//! read-modify-write, for a case that is rare.

/// Largest supported number of slots: 64 level-1 words × 64 × 64.
pub(crate) const MAX_SLOTS: usize = 1 << 18;
/// Smallest supported number of slots: one level-0 word.
pub(crate) const MIN_SLOTS: usize = 64;

/// Bits at positions `>= bit` of a word (`bit` in `0..64`).
#[inline]
const fn from_bit(bit: usize) -> u64 {
    u64::MAX << bit
}

/// Bits at positions `> bit` of a word (`bit` in `0..64`); empty for bit 63.
#[inline]
const fn after_bit(bit: usize) -> u64 {
    (u64::MAX << bit) << 1
}

/// A zeroed `[T; N]` allocated directly on the heap (never built on the stack). Large zeroed
/// allocations come from `calloc`, whose pages the OS supplies lazily: only the pages that
/// get written become resident.
pub(crate) fn zeroed_box<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    let slice = vec![T::default(); N].into_boxed_slice();
    let Ok(array) = slice.try_into() else {
        unreachable!("a boxed slice of length N converts to [T; N]")
    };
    array
}

/// Level-0 words.
const L0_WORDS: usize = MAX_SLOTS / 64;
/// Level-1 words.
const L1_WORDS: usize = L0_WORDS / 64;

/// Occupancy bitmap over up to [`MAX_SLOTS`] slots. The arrays are sized for the maximum so
/// that indices masked with `MAX_SLOTS - 1` need no bounds checks; a smaller window only
/// ever sets (and so only touches) the bits of its first slots.
pub(crate) struct Bitset {
    l0: Box<[u64; L0_WORDS]>,
    l1: [u64; L1_WORDS],
}

impl Bitset {
    /// An empty bitmap.
    pub(crate) fn new() -> Self {
        Self {
            l0: zeroed_box(),
            l1: [0; L1_WORDS],
        }
    }

    /// Writes the level-0 words covering the first `slots` slots (keeping their values).
    pub(crate) fn prefault(&mut self, slots: usize) {
        for word in &mut self.l0[..slots.div_ceil(64).min(L0_WORDS)] {
            *word = std::hint::black_box(*word);
        }
    }

    /// Sets (`on`) or clears the bit of `slot`, keeping the summaries exact. Branch-free:
    /// callers use it on paths where the old state of the bit is unpredictable.
    #[inline]
    pub(crate) fn assign(&mut self, slot: usize, on: bool) {
        let slot = slot & (MAX_SLOTS - 1);
        let w0 = slot >> 6;
        let w1 = w0 >> 6;
        let bit0 = 1 << (slot & 63);
        let bit1 = 1 << (w0 & 63);
        let word = (self.l0[w0] & !bit0) | (bit0 * u64::from(on));
        self.l0[w0] = word;
        self.l1[w1] = (self.l1[w1] & !bit1) | (bit1 * u64::from(word != 0));
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.l0[(slot & (MAX_SLOTS - 1)) >> 6] & (1 << (slot & 63)) != 0
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.l1.iter().all(|&w| w == 0)
    }

    /// Lowest set slot of level-1 word `w1` (which must be non-zero).
    #[inline]
    fn first_in_l1(&self, w1: usize) -> usize {
        let w0 =
            ((w1 & (L1_WORDS - 1)) << 6) | self.l1[w1 & (L1_WORDS - 1)].trailing_zeros() as usize;
        (w0 << 6) | self.l0[w0 & (L0_WORDS - 1)].trailing_zeros() as usize
    }

    /// The lowest set slot `>= slot`, if any (`slot` must be in range).
    #[inline]
    pub(crate) fn next_at_or_after(&self, slot: usize) -> Option<usize> {
        let slot = slot & (MAX_SLOTS - 1);
        let w0 = slot >> 6;
        let bits = self.l0[w0] & from_bit(slot & 63);
        if bits != 0 {
            return Some((w0 << 6) | bits.trailing_zeros() as usize);
        }
        let w1 = w0 >> 6;
        let words = self.l1[w1] & after_bit(w0 & 63);
        if words != 0 {
            let w0 = (w1 << 6) | words.trailing_zeros() as usize;
            return Some((w0 << 6) | self.l0[w0].trailing_zeros() as usize);
        }
        self.first_in_l1_from(w1 + 1)
    }

    /// Lowest set slot in level-1 words `from..` (a bounded scan of at most 64 words).
    #[inline]
    fn first_in_l1_from(&self, from: usize) -> Option<usize> {
        let w1 = from + self.l1.get(from..)?.iter().position(|&w| w != 0)?;
        Some(self.first_in_l1(w1))
    }

    /// The first set slot met walking up from `slot` and wrapping around at the end.
    #[inline]
    pub(crate) fn next_cyclic(&self, slot: usize) -> Option<usize> {
        match self.next_at_or_after(slot) {
            Some(found) => Some(found),
            None => self.first_in_l1_from(0),
        }
    }

    /// Clears every bit (cost proportional to the set words).
    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        for w1 in 0..L1_WORDS {
            while self.l1[w1] != 0 {
                let w0 = (w1 << 6) | self.l1[w1].trailing_zeros() as usize;
                self.l0[w0] = 0;
                self.l1[w1] &= self.l1[w1] - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_searches_all_levels() {
        for slots in [64, 128, 4096, 1 << 13, MAX_SLOTS] {
            let mut set = Bitset::new();
            assert_eq!(set.next_cyclic(0), None);
            assert!(set.is_empty());
            let mut marks = vec![0, 1, 63, 64, 65, slots / 2, slots - 64, slots - 1];
            marks.retain(|&m| m < slots);
            marks.sort_unstable();
            marks.dedup();
            for &m in &marks {
                set.assign(m, true);
            }
            for &m in &marks {
                assert!(set.contains(m));
            }
            for start in 0..slots {
                let want = marks.iter().copied().filter(|&m| m >= start).min();
                assert_eq!(
                    set.next_at_or_after(start),
                    want,
                    "slots {slots} start {start}"
                );
                assert_eq!(set.next_cyclic(start), want.or(Some(0)));
            }
            set.assign(0, false);
            set.assign(1, false);
            assert_eq!(set.next_cyclic(slots - 1), Some(slots - 1));
            set.assign(slots - 1, false);
            let first = if slots == 64 { 32 } else { 63 };
            assert_eq!(set.next_cyclic(slots - 1), Some(first));
            set.clear();
            assert!(set.is_empty());
            assert!(set.l0.iter().chain(set.l1.iter()).all(|&w| w == 0));
        }
    }

    #[test]
    fn remove_clears_summaries() {
        let mut set = Bitset::new();
        set.assign(70_000, true);
        set.assign(70_001, true);
        set.assign(70_000, false);
        assert_eq!(set.next_cyclic(0), Some(70_001));
        set.assign(70_001, false);
        assert!(set.is_empty());
        assert_eq!(set.next_cyclic(5), None);
    }
}
