//! EWMA (RiskMetrics) variances and covariances of per-interval log returns.

use serde::{Deserialize, Serialize};

/// Zero-mean exponentially weighted covariances, updated once per interval:
///
/// `S ← λ·S + (1−λ)·r·rᵀ` (the RiskMetrics recursion; intraday means are negligible next to
/// volatility and estimating them adds noise).
///
/// `S` starts at 0, so after `k` samples its weights sum to `1 − λᵏ`, not 1: a fresh
/// instrument's variance would read low for about 1/(1−λ) intervals. The estimate used is
/// therefore normalised by the weight actually accumulated, as RiskMetrics does for finite
/// samples: `Σ_ab = S_ab / min(w_a, w_b)`, where `w_a = 1 − λ^(samples of a)` is itself
/// kept as an EWMA of "a had a return" (instruments join once and stay, so a pair's
/// overlap is the shorter history). After one sample `Σ_aa = r²`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EwmaCovariance {
    n: usize,
    /// `S`, row-major `n × n`.
    raw: Vec<f64>,
    /// Accumulated weight per instrument, `1 − λ^samples`.
    weight: Vec<f64>,
    /// `1 / weight` (0 where the weight is 0), kept from the last update.
    inv_weight: Vec<f64>,
    /// `1 / √Σ_aa` (0 where the variance is 0 or subnormal), for the correlations.
    inv_sd: Vec<f64>,
    /// Returns seen per instrument.
    samples: Vec<u64>,
    /// `Σ`, the normalised estimate, row-major `n × n` (what VaR and correlations read).
    cov: Vec<f64>,
}

impl EwmaCovariance {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n,
            raw: vec![0.0; n * n],
            weight: vec![0.0; n],
            inv_weight: vec![0.0; n],
            inv_sd: vec![0.0; n],
            samples: vec![0; n],
            cov: vec![0.0; n * n],
        }
    }

    pub(crate) fn is_consistent(&self, n: usize) -> bool {
        self.n == n
            && self.raw.len() == n * n
            && self.cov.len() == n * n
            && self.weight.len() == n
            && self.inv_weight.len() == n
            && self.inv_sd.len() == n
            && self.samples.len() == n
            && self.raw.iter().chain(&self.cov).all(|x| x.is_finite())
            && self.weight.iter().all(|w| (0.0..=1.0).contains(w))
    }

    /// Σ, row-major `n × n`, per interval.
    pub(crate) fn cov(&self) -> &[f64] {
        &self.cov
    }

    /// `1 / σ` per instrument (0 when the variance is 0), as of the last update.
    pub(crate) fn inv_sd(&self) -> &[f64] {
        &self.inv_sd
    }

    pub(crate) fn samples(&self, instrument: usize) -> u64 {
        self.samples.get(instrument).copied().unwrap_or(0)
    }

    /// Variance per interval of `instrument` (0 when unknown or out of range).
    pub(crate) fn variance(&self, instrument: usize) -> f64 {
        if instrument < self.n {
            self.cov[instrument * self.n + instrument]
        } else {
            0.0
        }
    }

    /// One interval's returns. `returns[i]` is 0 where `valid[i]` is false.
    pub(crate) fn update(&mut self, returns: &[f64], valid: &[bool], lambda: f64) {
        let n = self.n;
        debug_assert!(returns.len() == n && valid.len() == n);
        let gain = 1.0 - lambda;
        for ((w, samples), &ok) in self.weight.iter_mut().zip(&mut self.samples).zip(valid) {
            if ok {
                *w = lambda * *w + gain;
                *samples = samples.saturating_add(1);
            } else {
                *w *= lambda;
            }
        }
        // The full square rather than a triangle and a mirror: rows are contiguous and the
        // inner loop vectorises. `gain * (ra * rb)` is the same product in row a and row b,
        // so the matrix stays exactly symmetric.
        for (row, &ra) in self.raw.chunks_exact_mut(n).zip(returns) {
            for (s, &rb) in row.iter_mut().zip(returns) {
                *s = lambda * *s + gain * (ra * rb);
            }
        }
        // 1 / min(wa, wb) = max(1/wa, 1/wb): one reciprocal per instrument instead of a
        // division per entry. An instrument without data has w = 0 and S row 0 exactly
        // (its returns were all 0), so its reciprocal can be 0 and its entries stay 0.
        for (inv, &w) in self.inv_weight.iter_mut().zip(&self.weight) {
            *inv = if w > 0.0 { 1.0 / w } else { 0.0 };
        }
        for ((cov_row, raw_row), &inv_a) in self
            .cov
            .chunks_exact_mut(n)
            .zip(self.raw.chunks_exact(n))
            .zip(&self.inv_weight)
        {
            for ((c, &s), &inv_b) in cov_row.iter_mut().zip(raw_row).zip(&self.inv_weight) {
                *c = s * inv_a.max(inv_b);
            }
        }
        for (a, inv) in self.inv_sd.iter_mut().enumerate() {
            let variance = self.cov[a * n + a];
            // Below the smallest normal f64 the reciprocal's square could overflow.
            *inv = if variance >= f64::MIN_POSITIVE && variance.is_finite() {
                1.0 / variance.sqrt()
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computation() {
        let lambda = 0.94;
        let mut e = EwmaCovariance::new(2);
        // Instrument 1 has no data at the first interval.
        e.update(&[0.01, 0.0], &[true, false], lambda);
        assert_eq!(e.samples(0), 1);
        assert_eq!(e.samples(1), 0);
        // One sample: raw 0.06 * 1e-4, weight 0.06, so the estimate is r² itself.
        assert!((e.variance(0) - 1e-4).abs() < 1e-18);
        assert_eq!(e.variance(1), 0.0);
        assert_eq!(e.cov()[1], 0.0);

        e.update(&[-0.02, 0.03], &[true, true], lambda);
        let raw00 = 0.94 * 0.06 * 1e-4 + 0.06 * 4e-4;
        let w0 = 0.94 * 0.06 + 0.06;
        let w1 = 0.06;
        let raw11 = 0.06 * 9e-4;
        let raw01 = 0.06 * (-0.02 * 0.03);
        assert!((e.variance(0) - raw00 / w0).abs() < 1e-18);
        assert!((e.variance(1) - raw11 / w1).abs() < 1e-18);
        assert!((e.cov()[1] - raw01 / w1).abs() < 1e-18);
        assert_eq!(e.cov()[1], e.cov()[2]);

        // A third interval with a zero return decays by lambda and renormalises.
        e.update(&[0.0, 0.0], &[true, true], lambda);
        let (w0, w1) = (0.94 * w0 + 0.06, 0.94 * w1 + 0.06);
        assert!((e.variance(0) - 0.94 * raw00 / w0).abs() < 1e-18);
        assert!((e.variance(1) - 0.94 * raw11 / w1).abs() < 1e-18);
        assert!((e.cov()[1] - 0.94 * raw01 / w1).abs() < 1e-18);
        assert!(e.is_consistent(2));
    }

    #[test]
    fn long_history_converges_to_the_plain_recursion() {
        // With w ≈ 1 the normalisation vanishes: constant returns give variance r².
        let mut e = EwmaCovariance::new(1);
        for _ in 0..2_000 {
            e.update(&[0.003], &[true], 0.94);
        }
        assert!((e.variance(0) - 9e-6).abs() < 1e-18);
    }
}
