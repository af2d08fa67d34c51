//! One position: signed quantity, cost basis, realized P&L and fees, in raw notional units.
//!
//! Raw notional is the product of a price mantissa and a quantity mantissa (quote asset,
//! at price + quantity decimal places), so every amount here is exact. The position keeps
//! its **cost basis** (the signed sum `Σ qty × price` of what is still open) instead of an
//! average price: the average entry is `cost / qty`, and a partial close removes the
//! proportional share `cost × closed / |qty|` (truncated toward zero). Whatever the
//! truncation, removed + remaining = previous cost, so
//!
//! `realized + unrealized = Σ cash flows + qty × mark` holds exactly, where a fill's cash
//! flow is `-side × price × qty` and `unrealized = qty × mark − cost`.

use aaiti_model::{Price, Qty, Side};
use serde::{Deserialize, Serialize};

/// A position on one instrument of one account.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Signed quantity mantissa (long > 0).
    pub qty: i64,
    /// Signed cost basis of the open quantity, raw notional (`qty × average entry`).
    pub cost: i128,
    /// Realized P&L, raw notional, before fees.
    pub realized: i128,
    /// Fees paid (negative: rebates), raw notional units.
    pub fees: i128,
}

impl Position {
    /// The position after a fill and the realized P&L of this fill (raw), or `None` if a
    /// value would overflow. `price` and `qty` must be positive (checked by the caller).
    ///
    /// * same direction (or flat): quantity and cost grow;
    /// * opposite direction: the closed part realizes `closed × price − removed cost`
    ///   (sign-adjusted for shorts); a fill larger than the position flips it, and the
    ///   remainder opens at `price`.
    #[inline]
    pub fn after_fill(&self, side: Side, price: Price, qty: Qty) -> Option<(Self, i128)> {
        let sign = side.sign();
        let q = qty.0;
        let px = i128::from(price.0);
        if self.qty == 0 || (self.qty > 0) == (sign > 0) {
            let new_qty = self.qty.checked_add(sign.checked_mul(q)?)?;
            let cost = self
                .cost
                .checked_add(i128::from(sign) * px.checked_mul(i128::from(q))?)?;
            return Some((
                Self {
                    qty: new_qty,
                    cost,
                    ..*self
                },
                0,
            ));
        }
        let open = i128::from(self.qty).abs();
        let closed = i128::from(q).min(open);
        let removed = if closed == open {
            self.cost
        } else {
            mul_div_exactish(self.cost, closed, open)?
        };
        // Closing a long sells (+price·closed); closing a short buys (−price·closed).
        let proceeds = i128::from(-sign).checked_mul(px.checked_mul(closed)?)?;
        let realized = proceeds.checked_sub(removed)?;
        let total_realized = self.realized.checked_add(realized)?;
        let rest = i128::from(q) - closed;
        let next = if rest > 0 {
            Self {
                qty: i64::try_from(i128::from(sign) * rest).ok()?,
                cost: i128::from(sign).checked_mul(px.checked_mul(rest)?)?,
                realized: total_realized,
                fees: self.fees,
            }
        } else {
            Self {
                qty: i64::try_from(i128::from(self.qty) + i128::from(sign) * closed).ok()?,
                cost: self.cost.checked_sub(removed)?,
                realized: total_realized,
                fees: self.fees,
            }
        };
        Some((next, realized))
    }

    /// Unrealized P&L at `mark`, raw: `qty × mark − cost` (saturating).
    #[inline]
    pub fn unrealized(&self, mark: Price) -> i128 {
        i128::from(self.qty)
            .saturating_mul(i128::from(mark.0))
            .saturating_sub(self.cost)
    }

    /// Average entry price mantissa (truncated toward zero), 0 when flat.
    pub fn avg_entry(&self) -> i64 {
        if self.qty == 0 {
            return 0;
        }
        crate::error::saturate(self.cost / i128::from(self.qty))
    }
}

/// `x × n / d` with `0 < n < d` (so the result is below `|x|`), without overflow: splits
/// `x` by `d` when `x × n` does not fit.
#[inline]
fn mul_div_exactish(x: i128, n: i128, d: i128) -> Option<i128> {
    match x.checked_mul(n) {
        Some(product) => Some(product / d),
        None => {
            let (q, r) = (x / d, x % d);
            q.checked_mul(n)?.checked_add(r.checked_mul(n)? / d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: Position, side: Side, price: i64, qty: i64) -> (Position, i128) {
        p.after_fill(side, Price(price), Qty(qty)).unwrap()
    }

    #[test]
    fn increase_averages_entry() {
        let (p, r) = fill(Position::default(), Side::Buy, 100, 2);
        assert_eq!((p.qty, p.cost, r), (2, 200, 0));
        let (p, r) = fill(p, Side::Buy, 130, 1);
        assert_eq!((p.qty, p.cost, r), (3, 330, 0));
        assert_eq!(p.avg_entry(), 110);
        assert_eq!(p.unrealized(Price(120)), 30);
    }

    #[test]
    fn reduce_realizes_proportional_cost() {
        let (p, _) = fill(Position::default(), Side::Buy, 100, 3);
        let (p, _) = fill(p, Side::Buy, 101, 1); // cost 401, avg 100.25
        let (p, r) = fill(p, Side::Sell, 110, 2);
        // removed = 401·2/4 = 200 (truncated from 200.5)
        assert_eq!((p.qty, p.cost, r), (2, 201, 20));
        assert_eq!(p.realized, 20);
        // Closing the rest realizes the remainder of the cost.
        let (p, r) = fill(p, Side::Sell, 110, 2);
        assert_eq!((p.qty, p.cost, r), (0, 0, 19));
        assert_eq!(p.realized, 39);
        // Total: sold 4 at 110 = 440, bought for 401.
        assert_eq!(p.realized, 440 - 401);
    }

    #[test]
    fn short_then_cover() {
        let (p, _) = fill(Position::default(), Side::Sell, 100, 2);
        assert_eq!((p.qty, p.cost), (-2, -200));
        assert_eq!(p.unrealized(Price(90)), 20);
        let (p, r) = fill(p, Side::Buy, 90, 1);
        assert_eq!((p.qty, p.cost, r), (-1, -100, 10));
    }

    #[test]
    fn flip_opens_remainder_at_fill_price() {
        let (p, _) = fill(Position::default(), Side::Buy, 100, 2);
        let (p, r) = fill(p, Side::Sell, 120, 5);
        assert_eq!(r, 40);
        assert_eq!((p.qty, p.cost, p.realized), (-3, -360, 40));
        assert_eq!(p.avg_entry(), 120);
        let (p, r) = fill(p, Side::Buy, 100, 4);
        assert_eq!(r, 60);
        assert_eq!((p.qty, p.cost, p.realized), (1, 100, 100));
    }

    #[test]
    fn overflow_is_none() {
        let p = Position {
            qty: i64::MAX - 1,
            ..Position::default()
        };
        assert!(p.after_fill(Side::Buy, Price(1), Qty(5)).is_none());
        let p = Position {
            qty: 1,
            cost: i128::MAX - 5,
            ..Position::default()
        };
        assert!(
            p.after_fill(Side::Buy, Price(i64::MAX), Qty(i64::MAX))
                .is_none()
        );
    }
}
