//! A correlation matrix between instruments, in basis points, read by the pre-trade
//! correlated-exposure check and refreshed by the monitor.

use serde::{Deserialize, Serialize};

/// Symmetric correlation matrix over dense instrument indexes, stored in basis points
/// (-10_000 ..= 10_000) so the pre-trade path compares integers. The diagonal is 10_000.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationMatrix {
    n: usize,
    rho_bp: Vec<i16>,
}

impl CorrelationMatrix {
    /// Identity matrix over `n` instruments (no correlations known yet).
    pub fn identity(n: usize) -> Self {
        let mut rho_bp = vec![0_i16; n * n];
        for i in 0..n {
            rho_bp[i * n + i] = 10_000;
        }
        Self { n, rho_bp }
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the matrix covers no instrument.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Correlation of `a` and `b` in basis points; 0 for indexes outside the matrix.
    #[inline]
    pub fn rho_bp(&self, a: usize, b: usize) -> i16 {
        if a < self.n && b < self.n {
            self.rho_bp[a * self.n + b]
        } else {
            0
        }
    }

    /// Sets the correlation of `a` and `b` (both orders), clamped to -10_000 ..= 10_000.
    /// Indexes outside the matrix and the diagonal are ignored.
    pub fn set_rho_bp(&mut self, a: usize, b: usize, rho_bp: i32) {
        if a < self.n && b < self.n && a != b {
            let value = rho_bp.clamp(-10_000, 10_000) as i16;
            self.rho_bp[a * self.n + b] = value;
            self.rho_bp[b * self.n + a] = value;
        }
    }

    /// Copies `other` into `self`, reusing `self`'s storage when both cover the same number
    /// of instruments (the engine hands the monitor's matrix to the pre-trade checker this
    /// way every interval without allocating).
    pub fn copy_from(&mut self, other: &Self) {
        self.n = other.n;
        self.rho_bp.clear();
        self.rho_bp.extend_from_slice(&other.rho_bp);
    }

    /// Instruments `b` with `rho_bp(a, b) >= min_rho_bp`, `a` itself included, in index
    /// order: the group whose positions a correlated-exposure limit counts together with
    /// `a`'s. Empty when `a` is outside the matrix. Allocates nothing.
    pub fn correlated_with(&self, a: usize, min_rho_bp: i16) -> impl Iterator<Item = usize> + '_ {
        let row: &[i16] = if a < self.n {
            &self.rho_bp[a * self.n..(a + 1) * self.n]
        } else {
            &[]
        };
        row.iter()
            .enumerate()
            .filter(move |&(_, &rho)| rho >= min_rho_bp)
            .map(|(b, _)| b)
    }

    /// Recomputes every correlation in place from a row-major `n × n` covariance matrix:
    /// rho = cov(a, b) / √(var(a)·var(b)), rounded to the nearest basis point and clamped to
    /// ±10_000. A pair where either variance is zero or not finite (no data yet, a price
    /// that never moved) gets 0. The diagonal stays 10_000. Returns `false`, changing
    /// nothing, when `covariance` is not `n × n`.
    pub fn refresh_from_covariance(&mut self, covariance: &[f64]) -> bool {
        let n = self.n;
        if covariance.len() != n * n || self.rho_bp.len() != n * n {
            return false;
        }
        for a in 0..n {
            let var_a = covariance[a * n + a];
            for b in (a + 1)..n {
                let denominator = (var_a * covariance[b * n + b]).sqrt();
                let rho = covariance[a * n + b] / denominator;
                let bp = if denominator > 0.0 && denominator.is_finite() && rho.is_finite() {
                    to_bp(rho)
                } else {
                    0
                };
                self.rho_bp[a * n + b] = bp;
                self.rho_bp[b * n + a] = bp;
            }
        }
        true
    }

    /// [`refresh_from_covariance`](Self::refresh_from_covariance) given also
    /// `inv_sd[a] = 1/√cov(a, a)` (0 for an unknown or zero variance): no square root or
    /// division per pair, whole rows written contiguously. `cov · (inv_a · inv_b)` is the
    /// same product for (a, b) and (b, a), so the matrix stays exactly symmetric; it can
    /// differ from the general method by one basis point next to a rounding boundary.
    pub(crate) fn refresh_from_scaled_covariance(
        &mut self,
        covariance: &[f64],
        inv_sd: &[f64],
    ) -> bool {
        let n = self.n;
        if covariance.len() != n * n || inv_sd.len() != n || self.rho_bp.len() != n * n {
            return false;
        }
        for (a, (rho_row, cov_row)) in self
            .rho_bp
            .chunks_exact_mut(n)
            .zip(covariance.chunks_exact(n))
            .enumerate()
        {
            let inv_a = inv_sd[a];
            for ((rho, &c), &inv_b) in rho_row.iter_mut().zip(cov_row).zip(inv_sd) {
                *rho = to_bp(c * (inv_a * inv_b));
            }
            rho_row[a] = 10_000;
        }
        true
    }

    /// True when the storage matches `n` and the diagonal is 10_000 (snapshot check).
    pub(crate) fn is_consistent(&self) -> bool {
        self.rho_bp.len() == self.n * self.n
            && (0..self.n).all(|i| self.rho_bp[i * self.n + i] == 10_000)
            && self
                .rho_bp
                .iter()
                .all(|rho| (-10_000..=10_000).contains(rho))
    }
}

/// `rho` in basis points, rounded half away from zero, clamped to ±10_000 (infinities
/// clamp, NaN gives 0). `f64::round` is a libm call on baseline x86-64; the truncating cast
/// is one instruction.
#[inline]
fn to_bp(rho: f64) -> i16 {
    let scaled = rho.clamp(-1.0, 1.0) * 10_000.0;
    (scaled + 0.5_f64.copysign(scaled)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_from_covariance_rounds_clamps_and_guards() {
        let mut m = CorrelationMatrix::identity(3);
        // var 4, 9, 0; cov(0,1) = 3 -> 0.5; cov(0,2) with a zero variance -> 0.
        let cov = [4.0, 3.0, 1.0, 3.0, 9.0, 0.0, 1.0, 0.0, 0.0];
        assert!(m.refresh_from_covariance(&cov));
        assert_eq!(m.rho_bp(0, 1), 5_000);
        assert_eq!(m.rho_bp(1, 0), 5_000);
        assert_eq!(m.rho_bp(0, 2), 0);
        assert_eq!(m.rho_bp(2, 2), 10_000);
        // Slightly above 1 from rounding error clamps; NaN and inf give 0.
        let cov = [
            1.0,
            1.000_000_1,
            f64::NAN,
            1.000_000_1,
            1.0,
            0.0,
            f64::NAN,
            0.0,
            f64::INFINITY,
        ];
        assert!(m.refresh_from_covariance(&cov));
        assert_eq!(m.rho_bp(0, 1), 10_000);
        assert_eq!(m.rho_bp(0, 2), 0);
        assert_eq!(m.rho_bp(1, 2), 0);
        assert!(!m.refresh_from_covariance(&[1.0]));
        assert!(m.is_consistent());
    }

    #[test]
    fn basis_points_round_half_away_from_zero() {
        for (rho, bp) in [
            (0.0, 0),
            (0.123_449, 1_234),
            (0.123_45, 1_235),
            (-0.123_45, -1_235),
            (-0.123_449, -1_234),
            (0.999_99, 10_000),
            (1.5, 10_000),
            (-1.5, -10_000),
            (f64::INFINITY, 10_000),
            (f64::NAN, 0),
        ] {
            assert_eq!(to_bp(rho), bp, "{rho}");
        }
    }

    #[test]
    fn scaled_refresh_matches_the_general_one() {
        // A random-ish covariance built as a Gram matrix (positive semi-definite), with
        // one instrument without variance.
        let n = 6;
        let mut x = 0.37_f64;
        let mut factors = vec![0.0; n * 3];
        for f in &mut factors {
            x = (x * 3.7 + 0.11).fract();
            *f = x - 0.5;
        }
        for f in &mut factors[3 * 3..4 * 3] {
            *f = 0.0;
        }
        let mut cov = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                cov[a * n + b] = (0..3)
                    .map(|k| factors[a * 3 + k] * factors[b * 3 + k])
                    .sum();
            }
        }
        let inv_sd: Vec<f64> = (0..n)
            .map(|a| {
                let v = cov[a * n + a];
                if v > 0.0 { 1.0 / v.sqrt() } else { 0.0 }
            })
            .collect();
        let mut general = CorrelationMatrix::identity(n);
        let mut scaled = CorrelationMatrix::identity(n);
        assert!(general.refresh_from_covariance(&cov));
        assert!(scaled.refresh_from_scaled_covariance(&cov, &inv_sd));
        for a in 0..n {
            for b in 0..n {
                let (g, s) = (general.rho_bp(a, b), scaled.rho_bp(a, b));
                assert!(
                    (i32::from(g) - i32::from(s)).abs() <= 1,
                    "({a},{b}) {g} vs {s}"
                );
                assert_eq!(s, scaled.rho_bp(b, a));
            }
        }
        assert_eq!(scaled.rho_bp(3, 3), 10_000);
        assert_eq!(scaled.rho_bp(0, 3), 0);
        assert!(scaled.is_consistent());
        assert!(!scaled.refresh_from_scaled_covariance(&cov, &inv_sd[1..]));
    }

    #[test]
    fn groups_and_copies() {
        let mut m = CorrelationMatrix::identity(4);
        m.set_rho_bp(0, 2, 8_000);
        m.set_rho_bp(0, 3, 6_999);
        m.set_rho_bp(0, 1, -9_000);
        assert_eq!(m.correlated_with(0, 7_000).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(m.correlated_with(9, 7_000).count(), 0);
        let mut copy = CorrelationMatrix::identity(4);
        copy.copy_from(&m);
        assert_eq!(copy, m);
        let mut other_size = CorrelationMatrix::identity(1);
        other_size.copy_from(&m);
        assert_eq!(other_size, m);
    }
}
