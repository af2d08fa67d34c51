//! Price → tick index without a division instruction.
//!
//! An `i64` division costs 10–40 cycles, more than the rest of a level update. For a tick
//! `d = 2^k · m` (`m` odd) the book keeps `inv = m⁻¹ mod 2^64`. Then (Hacker's Delight
//! §10-17) `x` is a multiple of `d` exactly when `t = rotr(x · inv, k) <= ⌊(2^64 - 1) / d⌋`,
//! and `t` is the quotient `x / d`: the multiply by `inv` undoes the odd factor, and any
//! low bits left over (an odd-part or power-of-two remainder) end up in the high bits
//! after the rotation, making `t` huge. Bounding `t` by `⌊MAX_PRICE / d⌋` instead also
//! rejects every negative `x` (they land above `⌊i64::MAX / d⌋`) and, with `t >= 1`, zero.

use aaiti_model::Price;

use crate::BookError;

/// Largest accepted price mantissa: `2^62 - 1`, so that the sum of two prices (a doubled
/// mid) and every window bound computed from a tick index fit an `i64`.
pub(crate) const MAX_PRICE: i64 = (1 << 62) - 1;

#[derive(Clone, Copy, Debug)]
pub(crate) struct TickSize {
    tick: i64,
    inv: u64,
    shift: u32,
    /// Largest valid tick index, `MAX_PRICE / tick`.
    max_index: u64,
}

impl TickSize {
    pub(crate) fn new(tick: Price) -> Result<Self, BookError> {
        if tick.0 <= 0 || tick.0 > MAX_PRICE {
            return Err(BookError::InvalidTickSize { tick });
        }
        let shift = tick.0.trailing_zeros();
        let odd = (tick.0 >> shift) as u64;
        // Newton's iteration doubles the correct low bits each step; odd * odd ≡ 1 mod 8
        // gives 3 bits to start, so five steps reach 96 >= 64.
        let mut inv = odd;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        debug_assert_eq!(odd.wrapping_mul(inv), 1);
        Ok(Self {
            tick: tick.0,
            inv,
            shift,
            max_index: (MAX_PRICE / tick.0) as u64,
        })
    }

    pub(crate) fn tick(&self) -> Price {
        Price(self.tick)
    }

    /// The tick index `price / tick`, in `1..=MAX_PRICE / tick`.
    #[inline]
    pub(crate) fn index(&self, price: Price) -> Result<i64, BookError> {
        let t = (price.0 as u64)
            .wrapping_mul(self.inv)
            .rotate_right(self.shift);
        if t.wrapping_sub(1) < self.max_index {
            Ok(t as i64)
        } else {
            Err(self.reject(price))
        }
    }

    /// The price of tick index `t` (which came from [`Self::index`], so it cannot overflow).
    #[inline]
    pub(crate) fn price(&self, t: i64) -> Price {
        Price(t * self.tick)
    }

    #[cold]
    #[inline(never)]
    fn reject(&self, price: Price) -> BookError {
        if price.0 <= 0 {
            BookError::NonPositivePrice { price }
        } else if price.0 % self.tick != 0 {
            BookError::OffTick {
                price,
                tick: Price(self.tick),
            }
        } else {
            BookError::PriceTooLarge {
                price,
                max: Price(MAX_PRICE),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(tick: i64, x: i64) -> Result<i64, BookError> {
        if x <= 0 {
            Err(BookError::NonPositivePrice { price: Price(x) })
        } else if x % tick != 0 {
            Err(BookError::OffTick {
                price: Price(x),
                tick: Price(tick),
            })
        } else if x > MAX_PRICE {
            Err(BookError::PriceTooLarge {
                price: Price(x),
                max: Price(MAX_PRICE),
            })
        } else {
            Ok(x / tick)
        }
    }

    #[test]
    fn matches_division() {
        let ticks = [
            1,
            2,
            3,
            5,
            7,
            8,
            10,
            12,
            25,
            100,
            1 << 20,
            3 << 40,
            1_000_000_007,
            MAX_PRICE,
        ];
        let mut xs = vec![
            0,
            1,
            -1,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            MAX_PRICE,
        ];
        xs.extend([MAX_PRICE + 1, 1 << 62, -(1 << 62), 64, -64, 100, -100]);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            xs.push(seed as i64);
            xs.push((seed >> (seed % 60)) as i64);
        }
        for &tick in &ticks {
            let ts = TickSize::new(Price(tick)).unwrap();
            let mut cases = xs.clone();
            for &x in &xs {
                // Multiples of the tick and their neighbours.
                let m = x.wrapping_rem(MAX_PRICE / tick + 1).wrapping_mul(tick);
                cases.extend([m, m.wrapping_add(1), m.wrapping_sub(1), m.wrapping_neg()]);
            }
            for x in cases {
                assert_eq!(
                    ts.index(Price(x)),
                    reference(tick, x),
                    "tick {tick} price {x}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_ticks() {
        for tick in [0, -1, i64::MIN, MAX_PRICE + 1] {
            assert_eq!(
                TickSize::new(Price(tick)).err(),
                Some(BookError::InvalidTickSize { tick: Price(tick) })
            );
        }
    }
}
