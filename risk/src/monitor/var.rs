//! Parametric and historical VaR over pre-allocated buffers.

use serde::{Deserialize, Serialize};

use super::scenarios::ScenarioRing;

/// Notionals of larger magnitude are treated as this (valuation-currency units): keeps
/// every product finite, so no infinity (and from it no NaN) can come out.
pub const MAX_NOTIONAL: f64 = 1e18;

/// VaR of one book at one instant, in valuation-currency units, as a positive loss.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VarFigures {
    /// Parametric (delta-normal) VaR: z(confidence) · √(wᵀΣw) · √(horizon / interval).
    pub parametric: f64,
    /// Historical-simulation VaR: the confidence quantile of the scenario losses −wᵀr,
    /// scaled by √(horizon / interval); 0 when no scenario is stored yet.
    pub historical: f64,
    /// √(wᵀΣw): the book's standard deviation of P&L over one interval.
    pub sigma_interval: f64,
    /// Scenarios the historical figure used.
    pub scenarios: u32,
    /// True when an instrument the book holds has fewer returns than
    /// `warmup_samples` (its risk is estimated from little data, or is missing).
    pub warming_up: bool,
}

/// Buffers for one VaR computation, sized at construction (not snapshotted).
#[derive(Clone, Debug)]
pub(crate) struct VarScratch {
    /// Sanitised notionals.
    pub(crate) weights: Vec<f64>,
    /// Σw.
    pub(crate) sigma_w: Vec<f64>,
    /// Parametric component VaR per instrument (sums to the parametric VaR).
    pub(crate) component_parametric: Vec<f64>,
    /// Parametric marginal VaR per instrument: ∂VaR/∂wᵢ.
    pub(crate) marginal_parametric: Vec<f64>,
    /// Historical component per instrument: the loss of instrument `i` in the quantile
    /// scenario, scaled (sums to the historical VaR).
    pub(crate) component_historical: Vec<f64>,
    /// Loss per scenario.
    pub(crate) losses: Vec<f64>,
    /// Copy of `losses` the quantile selection reorders.
    pub(crate) select: Vec<f64>,
}

impl VarScratch {
    pub(crate) fn new(n: usize, window: usize) -> Self {
        Self {
            weights: vec![0.0; n],
            sigma_w: vec![0.0; n],
            component_parametric: vec![0.0; n],
            marginal_parametric: vec![0.0; n],
            component_historical: vec![0.0; n],
            losses: vec![0.0; window],
            select: vec![0.0; window],
        }
    }

    /// Copies `notionals` into `weights`: missing entries and non-finite values are 0,
    /// magnitudes are capped at [`MAX_NOTIONAL`].
    pub(crate) fn load(&mut self, notionals: &[f64]) {
        self.weights.fill(0.0);
        for (w, &x) in self.weights.iter_mut().zip(notionals) {
            *w = if x.is_finite() {
                x.clamp(-MAX_NOTIONAL, MAX_NOTIONAL)
            } else {
                0.0
            };
        }
    }
}

/// Parametric VaR of `scratch.weights` over the covariance `cov` (row-major `n × n`, per
/// interval); fills the component and marginal buffers. Returns (VaR, σ per interval).
///
/// `scale` is z · √(horizon / interval). wᵀΣw is clamped at 0 before the square root:
/// while an instrument warms up the normalised EWMA matrix can be slightly indefinite.
pub(crate) fn parametric(cov: &[f64], scratch: &mut VarScratch, scale: f64) -> (f64, f64) {
    let n = scratch.weights.len();
    let mut variance = 0.0;
    for ((row, sw), &wa) in cov
        .chunks_exact(n.max(1))
        .zip(scratch.sigma_w.iter_mut())
        .zip(&scratch.weights)
    {
        let dot: f64 = row.iter().zip(&scratch.weights).map(|(c, w)| c * w).sum();
        *sw = dot;
        variance += wa * dot;
    }
    let sigma = variance.max(0.0).sqrt();
    let var = scale * sigma;
    let per_sigma = if sigma > 0.0 { scale / sigma } else { 0.0 };
    for (((component, marginal), &sw), &w) in scratch
        .component_parametric
        .iter_mut()
        .zip(scratch.marginal_parametric.iter_mut())
        .zip(&scratch.sigma_w)
        .zip(&scratch.weights)
    {
        *marginal = sw * per_sigma;
        *component = w * *marginal;
    }
    (var, sigma)
}

/// 1-based rank of the `confidence` quantile among `m` sorted losses:
/// the smallest `j` with `j / m ≥ confidence` (no interpolation), so that at most
/// `(1 − confidence)·m` scenarios lose more. 500 scenarios at 99 %: the 495th smallest,
/// i.e. the 6th largest loss. The 1e-9 absorbs the rounding of `confidence · m`.
pub(crate) fn quantile_rank(m: usize, confidence: f64) -> usize {
    let rank = (confidence * m as f64 - 1e-9).ceil();
    (rank.max(1.0) as usize).min(m)
}

/// Historical VaR of `scratch.weights` over the stored scenarios; fills the historical
/// components. Returns (VaR, scenarios used); `scale` is √(horizon / interval).
///
/// Scenario P&L is the same delta (first-order) approximation as the parametric figure,
/// `Σ wᵢ rᵢ` with log returns, so the two differ only in the distribution assumed, not in
/// the valuation. The one-interval quantile is scaled to the horizon by √(horizon /
/// interval) (square-root-of-time, the Basel convention; it assumes independent returns
/// and ignores the fatter tails of overlapping sums). A negative quantile (every
/// scenario at the confidence level profitable) is reported as 0.
pub(crate) fn historical(
    ring: &ScenarioRing,
    scratch: &mut VarScratch,
    confidence: f64,
    scale: f64,
) -> (f64, usize) {
    scratch.component_historical.fill(0.0);
    let m = ring.len();
    if m == 0 {
        return (0.0, 0);
    }
    let losses = &mut scratch.losses[..m];
    losses.fill(0.0);
    // Column by column: each scenario's loss accumulates over instruments in index order
    // (the same sum as row by row), the inner loop running over contiguous scenarios.
    for (i, &w) in scratch.weights.iter().enumerate() {
        if w != 0.0 {
            for (loss, &r) in losses.iter_mut().zip(ring.column(i)) {
                *loss -= w * r;
            }
        }
    }
    let select = &mut scratch.select[..m];
    select.copy_from_slice(losses);
    let rank = quantile_rank(m, confidence);
    let (_, &mut quantile, _) = select.select_nth_unstable_by(rank - 1, f64::total_cmp);
    if quantile <= 0.0 {
        return (0.0, m);
    }
    // The scenario that sets the quantile (the first with that exact loss): its
    // per-instrument losses are the components.
    if let Some(slot) = losses
        .iter()
        .position(|loss| loss.to_bits() == quantile.to_bits())
    {
        for (i, (component, &w)) in scratch
            .component_historical
            .iter_mut()
            .zip(&scratch.weights)
            .enumerate()
        {
            *component = ring.column(i).get(slot).map_or(0.0, |&r| -w * r * scale);
        }
    }
    (quantile * scale, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_rank_convention() {
        assert_eq!(quantile_rank(500, 0.99), 495);
        assert_eq!(quantile_rank(100, 0.99), 99);
        assert_eq!(quantile_rank(20, 0.95), 19);
        assert_eq!(quantile_rank(10, 0.99), 10);
        assert_eq!(quantile_rank(1, 0.99), 1);
        assert_eq!(quantile_rank(1000, 0.975), 975);
    }

    #[test]
    fn historical_on_a_known_scenario_set() {
        // 100 scenarios of one instrument: returns -1 %, -2 %, ..., -100 % (as numbers).
        let mut ring = ScenarioRing::new(2, 100);
        for k in 1..=100 {
            ring.push(&[-0.01 * f64::from(k), 0.5]);
        }
        let mut s = VarScratch::new(2, 100);
        s.load(&[1_000.0, 0.0]);
        // Losses 10, 20, ..., 1000; rank 99 of 100 -> 990.
        let (var, m) = historical(&ring, &mut s, 0.99, 1.0);
        assert_eq!(m, 100);
        assert!((var - 990.0).abs() < 1e-9, "{var}");
        assert!((s.component_historical[0] - 990.0).abs() < 1e-9);
        assert_eq!(s.component_historical[1], 0.0);
        // 95 %: rank 95 -> 950; horizon scale 2 -> 1900.
        let (var, _) = historical(&ring, &mut s, 0.95, 2.0);
        assert!((var - 1_900.0).abs() < 1e-9);
        // A short book gains in every scenario: the quantile is negative, VaR 0.
        s.load(&[-1_000.0, 0.0]);
        let (var, _) = historical(&ring, &mut s, 0.99, 1.0);
        assert_eq!(var, 0.0);
        assert!(s.component_historical.iter().all(|c| *c == 0.0));
    }

    #[test]
    fn parametric_components_add_up() {
        // Σ = [[4, 1], [1, 9]] (per interval), w = (2, -1): wᵀΣw = 16 - 4 + 9 = 21.
        let cov = [4.0, 1.0, 1.0, 9.0];
        let mut s = VarScratch::new(2, 1);
        s.load(&[2.0, -1.0]);
        let (var, sigma) = parametric(&cov, &mut s, 3.0);
        assert!((sigma - 21.0_f64.sqrt()).abs() < 1e-12);
        assert!((var - 3.0 * 21.0_f64.sqrt()).abs() < 1e-12);
        let sum: f64 = s.component_parametric.iter().sum();
        assert!((sum - var).abs() < 1e-12);
        // Marginal: scale · (Σw)ᵢ / σ; Σw = (7, -7).
        assert!((s.marginal_parametric[0] - 3.0 * 7.0 / 21.0_f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn load_sanitises() {
        let mut s = VarScratch::new(3, 1);
        s.load(&[f64::NAN, -1e300]);
        assert_eq!(s.weights, vec![0.0, -MAX_NOTIONAL, 0.0]);
    }
}
