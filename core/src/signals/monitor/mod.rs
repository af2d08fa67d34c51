//! Model monitoring: is a model still looking at the world it was trained on, and is it still
//! right?
//!
//! * [`DriftMonitor`] compares the distribution of a model's live (normalised) inputs and of
//!   its predictions with the training data's, summarised in the model metadata as a
//!   [`Reference`]: the population stability index (PSI) of every feature and of the
//!   predictions every `window` observations, plus the shift of the predictions' mean and
//!   standard deviation, with warn and alert levels.
//! * [`AccuracyTracker`] joins every prediction with the realised forward log return of the
//!   mid once its horizon has elapsed, and keeps running scores (hit rate, MSE, information
//!   coefficient).
//!
//! Both are per model, do O(1) work per observation (O(log bins) for the bin search) and
//! allocate only in their constructors. Neither reads a clock: callers pass engine time.
//!
//! # Histogram convention
//!
//! A [`Histogram`] with edges `e[0] < e[1] < ... < e[n-1]` has `n + 1` bins: bin 0 holds
//! `x < e[0]`, bin `i` holds `e[i-1] <= x < e[i]`, bin `n` holds `x >= e[n-1]`. That is
//! `numpy.searchsorted(edges, x, side="right")`, the rule the training script must use when it
//! writes the fractions. Fractions are the share of training samples in each bin; they must
//! be finite, non-negative and sum to 1 (within 1e-3; they are renormalised).
//!
//! # Population stability index
//!
//! `PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)` over the bins, with `a_i` the live share and
//! `e_i` the reference share, both floored at `epsilon` (default 1e-4) so an empty bin gives a
//! large but finite term. Rules of thumb the defaults follow: below 0.1 no shift, 0.1 to 0.25
//! a moderate shift (warn), above 0.25 a significant one (alert).

mod accuracy;
mod drift;

pub use accuracy::{AccuracyScores, AccuracyTracker, Resolution};
pub use drift::{
    DriftAlert, DriftLevel, DriftMonitor, DriftParams, DriftSubject, DriftSummary, FeaturePsi,
};
use serde::{Deserialize, Serialize};

/// A distribution summarised as a histogram: `edges.len() + 1 == fractions.len()`
/// (below the first edge, between edges, above the last), fractions summing to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, ascending.
    pub edges: Vec<f64>,
    /// Share of the training samples in each bin.
    pub fractions: Vec<f64>,
}

/// The training data's distributions a model's live inputs and outputs are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// One histogram per feature, in input order.
    pub features: Vec<Histogram>,
    /// The model's predictions on the training data.
    pub prediction: Histogram,
}

/// Which reference histogram an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramOf {
    /// The histogram of the feature at this input position.
    Feature(usize),
    /// The predictions' histogram.
    Prediction,
}

impl std::fmt::Display for HistogramOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Feature(index) => write!(f, "the reference histogram of feature {index}"),
            Self::Prediction => f.write_str("the reference histogram of the predictions"),
        }
    }
}

/// Why a monitor cannot be built or an observation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MonitorError {
    /// A reference histogram breaks the [`Histogram`] rules.
    #[error("{of}: {problem}")]
    BadHistogram {
        /// Which histogram.
        of: HistogramOf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A parameter is out of range.
    #[error("`{key}` = {value} is out of range: {fix}")]
    BadParam {
        /// Parameter name.
        key: &'static str,
        /// The value given.
        value: f64,
        /// The valid range.
        fix: &'static str,
    },
    /// An observation has another number of features than the reference.
    #[error("{got} features observed, the reference describes {expected}")]
    FeatureCount {
        /// Features in the reference.
        expected: usize,
        /// Features observed.
        got: usize,
    },
}

/// Tolerance on the sum of a histogram's fractions (metadata writers round).
const FRACTION_SUM_TOLERANCE: f64 = 1e-3;

impl Histogram {
    /// The bin of `x` (see the module docs for the rule). NaN goes to the last bin; callers
    /// filter non-finite values before.
    #[inline]
    pub fn bin(&self, x: f64) -> usize {
        bin_of(&self.edges, x)
    }

    /// Checks the [`Histogram`] rules.
    ///
    /// # Errors
    ///
    /// The first rule broken, for the histogram `of`.
    pub fn validate(&self, of: HistogramOf) -> Result<(), MonitorError> {
        let bad = |problem| Err(MonitorError::BadHistogram { of, problem });
        if self.fractions.len() != self.edges.len() + 1 {
            return bad("it needs exactly one more fraction than edges");
        }
        if self.edges.iter().any(|edge| !edge.is_finite()) {
            return bad("an edge is not a finite number");
        }
        if self.edges.windows(2).any(|pair| pair[0] >= pair[1]) {
            return bad("edges must be strictly ascending");
        }
        if self
            .fractions
            .iter()
            .any(|share| !share.is_finite() || *share < 0.0)
        {
            return bad("a fraction is negative or not a finite number");
        }
        let sum: f64 = self.fractions.iter().sum();
        if (sum - 1.0).abs() > FRACTION_SUM_TOLERANCE {
            return bad("fractions must sum to 1");
        }
        Ok(())
    }

    /// Mean and standard deviation of the distribution the histogram implies: each bin is a
    /// uniform distribution over its interval. Interior bins span their edges; the two open
    /// outer bins get the width of their neighbouring interior bin (with a single edge they
    /// are points at the edge; with none the histogram says nothing and the result is
    /// `(0, 0)`). So `mean = Σ f_i·m_i` and `var = Σ f_i·((m_i − mean)² + w_i²/12)` with `m_i`
    /// the bin's centre and `w_i` its width. Fractions are used as given (validated ones sum
    /// to 1).
    pub fn implied_moments(&self) -> (f64, f64) {
        let n = self.edges.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let bin = |i: usize| -> (f64, f64) {
            // (centre, width) of bin i.
            match (i, n) {
                (_, 1) => (self.edges[0], 0.0),
                (0, _) => {
                    let width = self.edges[1] - self.edges[0];
                    (self.edges[0] - width / 2.0, width)
                }
                (i, n) if i == n => {
                    let width = self.edges[n - 1] - self.edges[n - 2];
                    (self.edges[n - 1] + width / 2.0, width)
                }
                (i, _) => {
                    let width = self.edges[i] - self.edges[i - 1];
                    (self.edges[i - 1] + width / 2.0, width)
                }
            }
        };
        let mean: f64 = self
            .fractions
            .iter()
            .enumerate()
            .map(|(i, share)| share * bin(i).0)
            .sum();
        let var: f64 = self
            .fractions
            .iter()
            .enumerate()
            .map(|(i, share)| {
                let (centre, width) = bin(i);
                share * ((centre - mean).powi(2) + width * width / 12.0)
            })
            .sum();
        (mean, var.max(0.0).sqrt())
    }
}

/// `numpy.searchsorted(edges, x, side="right")`: the number of edges at or below `x`.
#[inline]
fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|edge| *edge <= x)
}

/// The PSI of live bin weights `counts` (out of `total`) against reference shares `expected`
/// (already floored at `epsilon`).
fn psi(counts: &[f64], total: f64, expected: &[f64], epsilon: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .zip(expected)
        .map(|(count, expected)| {
            let actual = (count / total).max(epsilon);
            (actual - expected) * (actual / expected).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quartiles() -> Histogram {
        Histogram {
            edges: vec![-1.0, 0.0, 1.0],
            fractions: vec![0.25; 4],
        }
    }

    #[test]
    fn bins_follow_searchsorted_right() {
        let h = quartiles();
        assert_eq!(h.bin(-5.0), 0);
        assert_eq!(h.bin(-1.0), 1, "an edge belongs to the bin above it");
        assert_eq!(h.bin(-0.5), 1);
        assert_eq!(h.bin(0.0), 2);
        assert_eq!(h.bin(0.999), 2);
        assert_eq!(h.bin(1.0), 3);
        assert_eq!(h.bin(f64::INFINITY), 3);
        assert_eq!(h.bin(f64::NEG_INFINITY), 0);
    }

    #[test]
    fn validation_names_the_histogram_and_the_rule() {
        assert_eq!(quartiles().validate(HistogramOf::Prediction), Ok(()));
        let cases = [
            (vec![0.0, 1.0], vec![0.5, 0.5], "one more fraction"),
            (vec![1.0, 0.0], vec![0.3, 0.3, 0.4], "ascending"),
            (vec![0.0, 0.0], vec![0.3, 0.3, 0.4], "ascending"),
            (vec![0.0, f64::NAN], vec![0.3, 0.3, 0.4], "finite"),
            (vec![0.0, 1.0], vec![0.6, -0.1, 0.5], "negative"),
            (vec![0.0, 1.0], vec![0.3, 0.3, 0.3], "sum to 1"),
        ];
        for (edges, fractions, expected) in cases {
            let error = Histogram { edges, fractions }
                .validate(HistogramOf::Feature(4))
                .unwrap_err();
            let text = error.to_string();
            assert!(text.contains("feature 4"), "{text}");
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn implied_moments_of_quartiles_are_those_of_uniform_minus_two_two() {
        // Bins of width 1 centred at -1.5, -0.5, 0.5, 1.5 with 1/4 each: exactly the uniform
        // distribution on [-2, 2], whose mean is 0 and variance 4²/12 = 4/3.
        let (mean, std) = quartiles().implied_moments();
        assert!(mean.abs() < 1e-12);
        assert!((std - (4.0_f64 / 3.0).sqrt()).abs() < 1e-12, "{std}");
        // Everything in the top bin [1, 2): mean 1.5, variance 1/12.
        let top = Histogram {
            edges: vec![-1.0, 0.0, 1.0],
            fractions: vec![0.0, 0.0, 0.0, 1.0],
        };
        let (mean, std) = top.implied_moments();
        assert!((mean - 1.5).abs() < 1e-12);
        assert!((std - (1.0_f64 / 12.0).sqrt()).abs() < 1e-12);
        // Degenerate shapes.
        let one = Histogram {
            edges: vec![2.0],
            fractions: vec![0.5, 0.5],
        };
        assert_eq!(one.implied_moments(), (2.0, 0.0));
        let none = Histogram {
            edges: vec![],
            fractions: vec![1.0],
        };
        assert_eq!(none.implied_moments(), (0.0, 0.0));
    }

    #[test]
    fn psi_matches_a_hand_computation() {
        // Reference quartiles, live shares 0.1 / 0.2 / 0.3 / 0.4:
        //   (0.1-0.25)·ln(0.4)  = 0.137444
        //   (0.2-0.25)·ln(0.8)  = 0.011157
        //   (0.3-0.25)·ln(1.2)  = 0.009116
        //   (0.4-0.25)·ln(1.6)  = 0.070501   sum 0.228217
        let psi_value = psi(&[10.0, 20.0, 30.0, 40.0], 100.0, &[0.25; 4], 1e-4);
        assert!((psi_value - 0.228_217).abs() < 1e-5, "{psi_value}");
        // An empty bin is floored at epsilon: (1e-4 - 0.25)·ln(1e-4/0.25) = 1.955...
        let empty = psi(&[0.0, 1.0], 1.0, &[0.25, 0.75], 1e-4);
        let expected = (1e-4 - 0.25) * (1e-4_f64 / 0.25).ln() + 0.25 * (1.0_f64 / 0.75).ln();
        assert!((empty - expected).abs() < 1e-12);
        assert!(empty.is_finite() && empty > 1.9);
        assert_eq!(psi(&[0.0, 0.0], 0.0, &[0.5, 0.5], 1e-4), 0.0);
    }
}
