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
}
