//! A fixed, seedless hasher for the lookup maps of the order manager and the desk gateway.
//!
//! The maps are only ever used for lookups (never iterated where the order would matter),
//! so a deterministic hasher keeps runs reproducible without affecting outputs. The
//! function is the Fx hash (rustc's): one rotate, xor and multiply per word, with a final
//! rotation so that hashbrown's bucket index (low bits) and tag (top 7 bits) both see well
//! mixed bits. It is not DoS-resistant: the keys come from our own strategies, venues and
//! authenticated desk sessions (whose order counts are bounded and throttled).

use std::hash::{BuildHasher, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Builds [`FxHasher`]s; `Default` so maps can be deserialized and created empty.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = FxHasher;

    #[inline]
    fn build_hasher(&self) -> FxHasher {
        FxHasher { hash: 0 }
    }
}

/// The hasher.
#[derive(Copy, Clone, Debug)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(K).rotate_left(5);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Spread the product's well-mixed high bits into the low bits used for the index.
        self.hash.rotate_left(26) ^ (self.hash >> 17)
    }
}

/// A `HashMap` with the fixed hasher.
pub(crate) type FixedMap<K, V> = std::collections::HashMap<K, V, FixedState>;
/// A `HashSet` with the fixed hasher.
pub(crate) type FixedSet<K> = std::collections::HashSet<K, FixedState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spread() {
        let hash = |x: u64| FixedState.hash_one(x);
        assert_eq!(hash(42), hash(42));
        assert_ne!(hash(1), hash(2));
        // Sequential keys land in many different low-bit buckets.
        let mut buckets = [0u32; 64];
        for i in 0..6400u64 {
            buckets[(hash(i) & 63) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50 && n < 150), "{buckets:?}");
        let mut h = FixedState.build_hasher();
        h.write(b"0123456789abc");
        let mut g = FixedState.build_hasher();
        g.write(b"0123456789abd");
        assert_ne!(h.finish(), g.finish());
    }
}
