//! A three-level occupancy bitmap over the slots of a side's window.
//!
//! Level 0 has one bit per slot, level 1 one bit per non-zero level-0 word, level 2 one bit
//! per non-zero level-1 word. Finding the next occupied slot is at most three
//! `trailing_zeros` on the way up and three on the way down, whatever the window size.

/// Largest supported number of slots: 64 × 64 × 64 (level 2 is a single word).
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

#[derive(Clone)]
pub(crate) struct Bitset {
    l0: Box<[u64]>,
    l1: Box<[u64]>,
    l2: u64,
}

impl Bitset {
    /// An empty bitmap of `slots` bits; `slots` is a power of two in
    /// `MIN_SLOTS..=MAX_SLOTS` (checked by the caller).
    pub(crate) fn new(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two() && (MIN_SLOTS..=MAX_SLOTS).contains(&slots));
        let words = slots / 64;
        Self {
            l0: vec![0; words].into_boxed_slice(),
            l1: vec![0; words.div_ceil(64)].into_boxed_slice(),
            l2: 0,
        }
    }

    /// Sets (`on`) or clears the bit of `slot`, keeping the summaries exact. Branch-free:
    /// callers use it on paths where the old state of the bit is unpredictable.
    #[inline]
    pub(crate) fn assign(&mut self, slot: usize, on: bool) {
        let w0 = slot >> 6;
        let w1 = w0 >> 6;
        let bit0 = 1 << (slot & 63);
        let bit1 = 1 << (w0 & 63);
        let bit2 = 1 << w1;
        let word = (self.l0[w0] & !bit0) | (bit0 * u64::from(on));
        self.l0[w0] = word;
        let summary = (self.l1[w1] & !bit1) | (bit1 * u64::from(word != 0));
        self.l1[w1] = summary;
        self.l2 = (self.l2 & !bit2) | (bit2 * u64::from(summary != 0));
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.l0[slot >> 6] & (1 << (slot & 63)) != 0
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.l2 == 0
    }

    /// Lowest set slot of level-1 word `w1` (which must be non-zero).
    #[inline]
    fn first_in_l1(&self, w1: usize) -> usize {
        let w0 = (w1 << 6) | self.l1[w1].trailing_zeros() as usize;
        (w0 << 6) | self.l0[w0].trailing_zeros() as usize
    }

    /// The lowest set slot `>= slot`, if any (`slot` must be in range).
    #[inline]
    pub(crate) fn next_at_or_after(&self, slot: usize) -> Option<usize> {
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
        let groups = self.l2 & after_bit(w1);
        if groups != 0 {
            return Some(self.first_in_l1(groups.trailing_zeros() as usize));
        }
        None
    }

    /// The first set slot met walking up from `slot` and wrapping around at the end.
    #[inline]
    pub(crate) fn next_cyclic(&self, slot: usize) -> Option<usize> {
        match self.next_at_or_after(slot) {
            Some(found) => Some(found),
            None if self.l2 != 0 => Some(self.first_in_l1(self.l2.trailing_zeros() as usize)),
            None => None,
        }
    }

    /// Clears every bit (cost proportional to the set words).
    pub(crate) fn clear(&mut self) {
        while self.l2 != 0 {
            let w1 = self.l2.trailing_zeros() as usize;
            while self.l1[w1] != 0 {
                let w0 = (w1 << 6) | self.l1[w1].trailing_zeros() as usize;
                self.l0[w0] = 0;
                self.l1[w1] &= self.l1[w1] - 1;
            }
            self.l2 &= self.l2 - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_searches_all_levels() {
        for slots in [64, 128, 4096, 1 << 13, MAX_SLOTS] {
            let mut set = Bitset::new(slots);
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
        let mut set = Bitset::new(MAX_SLOTS);
        set.assign(70_000, true);
        set.assign(70_001, true);
        set.assign(70_000, false);
        assert_eq!(set.next_cyclic(0), Some(70_001));
        set.assign(70_001, false);
        assert!(set.is_empty());
        assert_eq!(set.next_cyclic(5), None);
    }
}
