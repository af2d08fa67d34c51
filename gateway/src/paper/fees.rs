//! Fee arithmetic: exact integer maths, rounded once.

use aaiti_model::{Price, Qty, notional};

use super::config::FeeBp;

/// `10^n` as `i128` (`n <= 38`).
const fn pow10(n: u32) -> i128 {
    let mut value = 1i128;
    let mut i = 0;
    while i < n {
        value *= 10;
        i += 1;
    }
    value
}

/// Fee of a fill of `qty` at `price`: `price × qty × rate`, in the quote asset as a mantissa
/// at the price scale (the same scale as `price`).
///
/// The exact value is rounded toward +∞ once (in the venue's favour: a fee rounds up, a
/// rebate rounds toward zero) and saturates at the `i64` range.
///
/// ```
/// use aaiti_gateway::paper::{FeeBp, fee};
/// use aaiti_model::{Price, Qty};
/// // 61737.63 (price scale 2) × 0.5 (qty scale 1) × 10 bp = 30.8688... -> 30.87
/// assert_eq!(fee(Price(6_173_763), Qty(5), 1, FeeBp::from_bp(10).unwrap()), 3_087);
/// // A rebate of 0.25 bp on the same fill: -0.7717... -> -0.77
/// assert_eq!(fee(Price(6_173_763), Qty(5), 1, FeeBp::parse("-0.25").unwrap()), -77);
/// ```
pub fn fee(price: Price, qty: Qty, qty_places: u8, rate: FeeBp) -> i64 {
    // notional is at price + qty places; the rate is in 1e-8 of the notional.
    let notional = notional(price, qty);
    if let Some(value) = fee_i64(notional, qty_places, rate.units()) {
        return value;
    }
    let denominator = pow10(8 + u32::from(qty_places.min(18)));
    let rate = i128::from(rate.units());
    // notional = whole × d + rest with |rest| < d <= 10^26, so |rest × rate| < 10^34: exact.
    let whole = notional / denominator;
    let rest = notional - whole * denominator;
    let part = rest * rate;
    let part_whole = part / denominator;
    // Truncation already rounded a negative part up; a positive remainder rounds up by one.
    let part_ceil = part_whole + i128::from(part - part_whole * denominator > 0);
    let value = whole.saturating_mul(rate).saturating_add(part_ceil);
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The same computation in `i64` when everything fits (typical fills): 64-bit divisions
/// are several times cheaper than 128-bit ones. `None` when something would overflow.
#[inline]
fn fee_i64(notional: i128, qty_places: u8, rate: i64) -> Option<i64> {
    let places = 8 + u32::from(qty_places);
    if places > 18 {
        return None;
    }
    let denominator = 10i64.pow(places);
    let notional = i64::try_from(notional).ok()?;
    let whole = notional / denominator;
    let rest = notional - whole * denominator;
    let part = rest.checked_mul(rate)?;
    let part_whole = part / denominator;
    let part_ceil = part_whole + i64::from(part - part_whole * denominator > 0);
    whole.checked_mul(rate)?.checked_add(part_ceil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_toward_plus_infinity() {
        let bp = |x: i64| FeeBp::from_bp(x).unwrap();
        // 100.00 × 1 × 10 bp = 0.10 exactly.
        assert_eq!(fee(Price(10_000), Qty(1), 0, bp(10)), 10);
        // 1.00 × 1 × 1 bp = 0.0001 -> 0.01 (up), rebate -0.0001 -> 0.
        assert_eq!(fee(Price(100), Qty(1), 0, bp(1)), 1);
        assert_eq!(fee(Price(100), Qty(1), 0, bp(-1)), 0);
        assert_eq!(fee(Price(100), Qty(1), 0, FeeBp::ZERO), 0);
        // Extreme values saturate instead of overflowing.
        let huge = fee(Price(i64::MAX), Qty(i64::MAX), 0, bp(10_000));
        assert_eq!(huge, i64::MAX);
        let huge = fee(Price(i64::MAX), Qty(i64::MAX), 18, bp(-10_000));
        assert!(huge < 0);
        // Both paths against the obvious formula (exact in i128 for these magnitudes).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let p = (next() >> (1 + next() % 63)) as i64 * if next() % 5 == 0 { -1 } else { 1 };
            let q = (next() >> (1 + next() % 63)) as i64;
            let places = (next() % 19) as u32;
            let units = (next() % 200_000_001) as i64 - 100_000_000;
            let Some(exact) = (i128::from(p) * i128::from(q)).checked_mul(i128::from(units)) else {
                continue;
            };
            let d = 10i128.pow(8 + places);
            let ceil = exact.div_euclid(d) + i128::from(exact.rem_euclid(d) != 0);
            let rate = FeeBp::from_units(units).unwrap();
            let got = fee(Price(p), Qty(q), places as u8, rate);
            if let Ok(ceil) = i64::try_from(ceil) {
                assert_eq!(got, ceil, "{p} {q} {places} {units}");
            }
        }
        for (p, q, places, units) in [
            (6_173_763, 5, 1, 100_000),
            (6_173_763, 37, 3, -2_500),
            (-7, 3, 0, 1),
            (123_456_789, -987, 2, 7),
            (1, 1, 18, -1),
        ] {
            let exact = i128::from(p) * i128::from(q) * i128::from(units);
            let d = 10i128.pow(8 + places);
            let ceil = exact.div_euclid(d) + i128::from(exact.rem_euclid(d) != 0);
            let rate = FeeBp::from_units(units).unwrap();
            assert_eq!(i128::from(fee(Price(p), Qty(q), places as u8, rate)), ceil);
        }
    }
}
