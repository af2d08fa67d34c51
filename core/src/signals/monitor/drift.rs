//! Drift of a model's live inputs and predictions away from its training reference.

use serde::{Deserialize, Serialize};

use super::{HistogramOf, MonitorError, Reference, bin_of, psi};

/// Settings of a [`DriftMonitor`]. The defaults are the usual rules of thumb.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftParams {
    /// Observations between two evaluations (default 1000). Small windows give noisy PSIs:
    /// with `b` bins the PSI of a sample of the reference itself is about `(b − 1) / window`.
    pub window: u32,
    /// PSI at which a distribution is reported as moderately shifted (default 0.1).
    pub psi_warn: f64,
    /// PSI at which a distribution is reported as significantly shifted (default 0.25).
    pub psi_alert: f64,
    /// Floor of the live and reference bin shares, so an empty bin gives a finite PSI term
    /// (default 1e-4).
    pub epsilon: f64,
    /// Share of the counts kept after an evaluation, in `0..1` (default 0: every window is
    /// judged on its own; 0.5 halves the past at each evaluation, an exponential decay).
    pub carry: f64,
    /// Shift of the predictions' mean, in reference standard deviations, that warns
    /// (default 0.25).
    pub mean_shift_warn: f64,
    /// Shift of the predictions' mean, in reference standard deviations, that alerts
    /// (default 0.5).
    pub mean_shift_alert: f64,
    /// Ratio of the live to the reference standard deviation of the predictions (or its
    /// inverse) that warns (default 1.5).
    pub std_ratio_warn: f64,
    /// The same ratio that alerts (default 2).
    pub std_ratio_alert: f64,
}

impl Default for DriftParams {
    fn default() -> Self {
        Self {
            window: 1000,
            psi_warn: 0.1,
            psi_alert: 0.25,
            epsilon: 1e-4,
            carry: 0.0,
            mean_shift_warn: 0.25,
            mean_shift_alert: 0.5,
            std_ratio_warn: 1.5,
            std_ratio_alert: 2.0,
        }
    }
}

impl DriftParams {
    /// Checks every value.
    ///
    /// # Errors
    ///
    /// The first parameter out of range.
    pub fn validate(&self) -> Result<(), MonitorError> {
        let bad = |key, value, fix| Err(MonitorError::BadParam { key, value, fix });
        if self.window == 0 {
            return bad("window", 0.0, "at least 1 observation");
        }
        if !(self.psi_warn > 0.0 && self.psi_warn.is_finite()) {
            return bad("psi_warn", self.psi_warn, "a positive number");
        }
        if !(self.psi_alert >= self.psi_warn && self.psi_alert.is_finite()) {
            return bad("psi_alert", self.psi_alert, "a number >= psi_warn");
        }
        if !(self.epsilon > 0.0 && self.epsilon < 0.01) {
            return bad("epsilon", self.epsilon, "between 0 and 0.01, exclusive");
        }
        if !(0.0..1.0).contains(&self.carry) {
            return bad("carry", self.carry, "0 (reset) up to, excluding, 1");
        }
        if !(self.mean_shift_warn > 0.0 && self.mean_shift_warn.is_finite()) {
            return bad("mean_shift_warn", self.mean_shift_warn, "a positive number");
        }
        if !(self.mean_shift_alert >= self.mean_shift_warn && self.mean_shift_alert.is_finite()) {
            return bad(
                "mean_shift_alert",
                self.mean_shift_alert,
                "a number >= mean_shift_warn",
            );
        }
        if !(self.std_ratio_warn > 1.0 && self.std_ratio_warn.is_finite()) {
            return bad("std_ratio_warn", self.std_ratio_warn, "a number above 1");
        }
        if !(self.std_ratio_alert >= self.std_ratio_warn && self.std_ratio_alert.is_finite()) {
            return bad(
                "std_ratio_alert",
                self.std_ratio_alert,
                "a number >= std_ratio_warn",
            );
        }
        Ok(())
    }
}

/// How far a distribution has moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftLevel {
    /// Within the warn thresholds.
    #[default]
    Ok,
    /// Past a warn threshold.
    Warn,
    /// Past an alert threshold.
    Alert,
}

impl DriftLevel {
    fn of(value: f64, warn: f64, alert: f64) -> Self {
        if value >= alert {
            Self::Alert
        } else if value >= warn {
            Self::Warn
        } else {
            Self::Ok
        }
    }
}

/// What a [`DriftAlert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSubject {
    /// The PSI of the feature at this input position.
    FeaturePsi(u32),
    /// The PSI of the predictions.
    PredictionPsi,
    /// The shift of the predictions' mean, in reference standard deviations (signed).
    PredictionMeanShift,
    /// The live over the reference standard deviation of the predictions.
    PredictionStdRatio,
}

/// One measure past its warn threshold at an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    /// What was measured.
    pub subject: DriftSubject,
    /// The measure (PSI, mean shift or standard deviation ratio).
    pub value: f64,
    /// Warn or alert.
    pub level: DriftLevel,
}

/// A feature's PSI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeaturePsi {
    /// Input position.
    pub index: u32,
    /// Its PSI.
    pub psi: f64,
}

/// The result of one evaluation (every `window` observations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftSummary {
    /// Evaluations so far, this one included.
    pub evaluation: u64,
    /// Observations weighed in (the window plus the carried past).
    pub weight: f64,
    /// The feature with the highest PSI (none for a model without features).
    pub worst_feature: Option<FeaturePsi>,
    /// Features past `psi_warn` (alerting ones included).
    pub features_warn: u32,
    /// Features past `psi_alert`.
    pub features_alert: u32,
    /// The predictions' PSI.
    pub prediction_psi: f64,
    /// `(live mean − reference mean) / reference std` of the predictions; none when the
    /// reference implies no spread.
    pub prediction_mean_shift: Option<f64>,
    /// `live std / reference std` of the predictions; none when the reference implies no
    /// spread.
    pub prediction_std_ratio: Option<f64>,
    /// The highest level of any measure.
    pub level: DriftLevel,
}

/// Drift of one model's inputs and predictions against its [`Reference`]. See the
/// [module docs](super) for the histogram rule and the PSI.
///
/// Every [`observe`](Self::observe) adds one to the bin of each feature value and of the
/// prediction; every `window` observations the PSIs and the prediction moments are computed
/// ([`DriftSummary`], [`alerts`](Self::alerts), [`feature_psi`](Self::feature_psi)) and the
/// counts are reset, or scaled by `carry`. The predictions' mean and standard deviation come
/// from weighted sums of their deviations from the reference mean (kept small, so the
/// variance does not cancel catastrophically), decayed like the counts.
///
/// The state is plain serde, for engine snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftMonitor {
    params: DriftParams,
    features: usize,
    /// Histogram `h` (features in order, then the predictions) owns
    /// `edges[edge_start[h]..edge_start[h + 1]]` and `bins[edge_start[h] + h..]`
    /// (`edge count + 1` bins): flat arrays allocated once.
    edge_start: Vec<u32>,
    edges: Vec<f64>,
    /// Reference shares floored at `epsilon`.
    expected: Vec<f64>,
    /// Live (possibly decayed) bin weights.
    counts: Vec<f64>,
    /// PSI of every feature at the last evaluation.
    psi: Vec<f64>,
    prediction_psi: f64,
    reference_mean: f64,
    reference_std: f64,
    weight: f64,
    /// Σ (prediction − reference mean) and its square, weighted like `counts`.
    deviation_sum: f64,
    deviation_sq_sum: f64,
    in_window: u32,
    observations: u64,
    non_finite: u64,
    evaluations: u64,
    last: Option<DriftSummary>,
}

impl DriftMonitor {
    /// A monitor of a model described by `reference`.
    ///
    /// # Errors
    ///
    /// A histogram breaking the [`Histogram`](super::Histogram) rules or a parameter out of
    /// range.
    pub fn new(reference: &Reference, params: DriftParams) -> Result<Self, MonitorError> {
        params.validate()?;
        let histograms = reference
            .features
            .iter()
            .enumerate()
            .map(|(index, histogram)| (HistogramOf::Feature(index), histogram))
            .chain(std::iter::once((
                HistogramOf::Prediction,
                &reference.prediction,
            )));
        let count = reference.features.len() + 1;
        let mut edge_start = Vec::with_capacity(count + 1);
        let mut edges = Vec::new();
        let mut expected = Vec::new();
        for (of, histogram) in histograms {
            histogram.validate(of)?;
            edge_start.push(edges.len() as u32);
            edges.extend_from_slice(&histogram.edges);
            let sum: f64 = histogram.fractions.iter().sum();
            expected.extend(
                histogram
                    .fractions
                    .iter()
                    .map(|share| (share / sum).max(params.epsilon)),
            );
        }
        edge_start.push(edges.len() as u32);
        if edges.len() + count > u32::MAX as usize {
            return Err(MonitorError::BadHistogram {
                of: HistogramOf::Prediction,
                problem: "the reference has too many bins",
            });
        }
        let (reference_mean, reference_std) = reference.prediction.implied_moments();
        Ok(Self {
            params,
            features: reference.features.len(),
            counts: vec![0.0; expected.len()],
            psi: vec![0.0; reference.features.len()],
            edge_start,
            edges,
            expected,
            prediction_psi: 0.0,
            reference_mean,
            reference_std,
            weight: 0.0,
            deviation_sum: 0.0,
            deviation_sq_sum: 0.0,
            in_window: 0,
            observations: 0,
            non_finite: 0,
            evaluations: 0,
            last: None,
        })
    }

    /// Ranges of histogram `h` in `edges` and in `counts`/`expected`; None past the end
    /// (only for a state deserialised from a corrupt snapshot).
    #[inline]
    fn ranges(&self, h: usize) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
        let start = *self.edge_start.get(h)? as usize;
        let end = *self.edge_start.get(h + 1)? as usize;
        Some((start..end, start + h..end + h + 1))
    }

    #[inline]
    fn count(&mut self, h: usize, x: f64) {
        if let Some((edges, bins)) = self.ranges(h)
            && let Some(edges) = self.edges.get(edges)
            && let Some(slot) = self.counts.get_mut(bins.start + bin_of(edges, x))
        {
            *slot += 1.0;
        }
    }

    /// Counts one scored input: `features` are the values the model was given (normalised,
    /// in input order) and `prediction` its output. Returns the evaluation when this
    /// observation completes a window. An observation with a non-finite value is skipped
    /// and counted ([`non_finite`](Self::non_finite)); such inputs should not have reached
    /// the model anyway.
    ///
    /// # Errors
    ///
    /// `features` does not have the reference's length (nothing is counted).
    pub fn observe(
        &mut self,
        features: &[f64],
        prediction: f64,
    ) -> Result<Option<DriftSummary>, MonitorError> {
        if features.len() != self.features {
            return Err(MonitorError::FeatureCount {
                expected: self.features,
                got: features.len(),
            });
        }
        if !prediction.is_finite() || features.iter().any(|x| !x.is_finite()) {
            self.non_finite += 1;
            return Ok(None);
        }
        for (h, &x) in features.iter().enumerate() {
            self.count(h, x);
        }
        self.count(self.features, prediction);
        let deviation = prediction - self.reference_mean;
        self.deviation_sum += deviation;
        self.deviation_sq_sum += deviation * deviation;
        self.weight += 1.0;
        self.observations += 1;
        self.in_window += 1;
        if self.in_window < self.params.window {
            return Ok(None);
        }
        Ok(Some(self.evaluate()))
    }

    /// Computes the PSIs and moments of the current window, then resets or decays it.
    fn evaluate(&mut self) -> DriftSummary {
        let params = self.params;
        let mut worst: Option<FeaturePsi> = None;
        let (mut features_warn, mut features_alert) = (0, 0);
        for h in 0..=self.features {
            let value = match self.ranges(h) {
                Some((_, bins)) => match (self.counts.get(bins.clone()), self.expected.get(bins)) {
                    (Some(counts), Some(expected)) => {
                        psi(counts, self.weight, expected, params.epsilon)
                    }
                    _ => 0.0,
                },
                None => 0.0,
            };
            if h == self.features {
                self.prediction_psi = value;
                continue;
            }
            if let Some(slot) = self.psi.get_mut(h) {
                *slot = value;
            }
            if value >= params.psi_warn {
                features_warn += 1;
            }
            if value >= params.psi_alert {
                features_alert += 1;
            }
            if worst.is_none_or(|w| value > w.psi) {
                worst = Some(FeaturePsi {
                    index: h as u32,
                    psi: value,
                });
            }
        }
        let (mean_shift, std_ratio) = if self.reference_std > 0.0 && self.weight > 0.0 {
            let mean = self.deviation_sum / self.weight;
            let var = (self.deviation_sq_sum / self.weight - mean * mean).max(0.0);
            (
                Some(mean / self.reference_std),
                Some(var.sqrt() / self.reference_std),
            )
        } else {
            (None, None)
        };
        self.evaluations += 1;
        let mut summary = DriftSummary {
            evaluation: self.evaluations,
            weight: self.weight,
            worst_feature: worst,
            features_warn,
            features_alert,
            prediction_psi: self.prediction_psi,
            prediction_mean_shift: mean_shift,
            prediction_std_ratio: std_ratio,
            level: DriftLevel::Ok,
        };
        self.last = Some(summary);
        summary.level = self.alerts().map(|a| a.level).max().unwrap_or_default();
        self.last = Some(summary);
        // Next window: forget, or keep a decayed share of the past.
        let carry = params.carry;
        for count in &mut self.counts {
            *count *= carry;
        }
        self.weight *= carry;
        self.deviation_sum *= carry;
        self.deviation_sq_sum *= carry;
        self.in_window = 0;
        summary
    }

    /// The measures past their warn threshold at the last evaluation: features in input
    /// order, then the predictions' PSI, mean shift and standard deviation ratio (a ratio
    /// below 1 is judged by its inverse). Empty before the first evaluation. Does not
    /// allocate.
    pub fn alerts(&self) -> impl Iterator<Item = DriftAlert> + '_ {
        let params = self.params;
        let last = self.last;
        let features = self
            .psi
            .iter()
            .enumerate()
            .filter(move |_| last.is_some())
            .filter_map(move |(index, &value)| {
                let level = DriftLevel::of(value, params.psi_warn, params.psi_alert);
                (level > DriftLevel::Ok).then_some(DriftAlert {
                    subject: DriftSubject::FeaturePsi(index as u32),
                    value,
                    level,
                })
            });
        let prediction = last.into_iter().flat_map(move |summary| {
            let psi = (
                DriftSubject::PredictionPsi,
                summary.prediction_psi,
                DriftLevel::of(summary.prediction_psi, params.psi_warn, params.psi_alert),
            );
            let mean = summary.prediction_mean_shift.map(|shift| {
                (
                    DriftSubject::PredictionMeanShift,
                    shift,
                    DriftLevel::of(shift.abs(), params.mean_shift_warn, params.mean_shift_alert),
                )
            });
            let std = summary.prediction_std_ratio.map(|ratio| {
                // A collapse of the spread is as suspicious as an explosion.
                let spread = if ratio > 0.0 {
                    ratio.max(1.0 / ratio)
                } else {
                    f64::INFINITY
                };
                (
                    DriftSubject::PredictionStdRatio,
                    ratio,
                    DriftLevel::of(spread, params.std_ratio_warn, params.std_ratio_alert),
                )
            });
            [Some(psi), mean, std]
                .into_iter()
                .flatten()
                .filter(|(_, _, level)| *level > DriftLevel::Ok)
                .map(|(subject, value, level)| DriftAlert {
                    subject,
                    value,
                    level,
                })
        });
        features.chain(prediction)
    }

    /// Every feature's PSI at the last evaluation (zeros before the first).
    pub fn feature_psi(&self) -> &[f64] {
        &self.psi
    }

    /// The last evaluation.
    pub fn last(&self) -> Option<&DriftSummary> {
        self.last.as_ref()
    }

    /// The mean and standard deviation the reference histogram of the predictions implies
    /// (see [`Histogram::implied_moments`](super::Histogram::implied_moments)).
    pub fn reference_moments(&self) -> (f64, f64) {
        (self.reference_mean, self.reference_std)
    }

    /// Observations counted so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Observations skipped for a non-finite value.
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// Observations in the current, unfinished window.
    pub fn pending(&self) -> u32 {
        self.in_window
    }

    /// The parameters.
    pub fn params(&self) -> &DriftParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::super::Histogram;
    use super::*;

    fn quartiles() -> Histogram {
        Histogram {
            edges: vec![-1.0, 0.0, 1.0],
            fractions: vec![0.25; 4],
        }
    }

    /// Two features and the prediction, all with the quartile reference (uniform on
    /// [-2, 2] by the implied-moments rule).
    fn reference() -> Reference {
        Reference {
            features: vec![quartiles(), quartiles()],
            prediction: quartiles(),
        }
    }

    fn params(window: u32) -> DriftParams {
        DriftParams {
            window,
            ..DriftParams::default()
        }
    }

    /// A value in each quartile bin's interior.
    const IN_BIN: [f64; 4] = [-1.5, -0.5, 0.5, 1.5];

    /// `n` values spread over the bins in proportion to `shares` (per mille), in an
    /// interleaved order, so that every prefix is roughly balanced.
    fn values(shares_per_mille: [usize; 4], n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        let mut credit = [0_i64; 4];
        for _ in 0..n {
            for (c, share) in credit.iter_mut().zip(shares_per_mille) {
                *c += share as i64;
            }
            let (bin, _) = credit.iter().enumerate().max_by_key(|(_, c)| **c).unwrap();
            credit[bin] -= 1000;
            out.push(IN_BIN[bin]);
        }
        out
    }

    #[test]
    fn identical_distribution_has_zero_psi_and_no_alert() {
        let mut monitor = DriftMonitor::new(&reference(), params(1000)).unwrap();
        let xs = values([250, 250, 250, 250], 1000);
        let mut summary = None;
        for (i, &x) in xs.iter().enumerate() {
            summary = monitor.observe(&[x, -x], x).unwrap();
            assert_eq!(summary.is_some(), i == 999);
        }
        let summary = summary.unwrap();
        assert!(summary.prediction_psi.abs() < 1e-12);
        assert!(summary.worst_feature.unwrap().psi.abs() < 1e-12);
        assert_eq!(summary.level, DriftLevel::Ok);
        assert_eq!(summary.features_warn, 0);
        // Bin centres only: mean 0, std sqrt(1.25) against the reference's sqrt(4/3).
        assert!(summary.prediction_mean_shift.unwrap().abs() < 1e-12);
        let ratio = summary.prediction_std_ratio.unwrap();
        assert!((ratio - (1.25_f64 / (4.0 / 3.0)).sqrt()).abs() < 1e-9);
        assert_eq!(monitor.alerts().count(), 0);
        assert_eq!(monitor.pending(), 0);
    }

    #[test]
    fn a_sample_of_the_reference_stays_below_warn() {
        // Uniform on [-2, 2] from a fixed LCG: a fair sample of the reference.
        let mut monitor = DriftMonitor::new(&reference(), params(5000)).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1_u64 << 53) as f64 * 4.0 - 2.0
        };
        let mut last = None;
        for _ in 0..5000 {
            let (a, b, p) = (uniform(), uniform(), uniform());
            last = monitor.observe(&[a, b], p).unwrap().or(last);
        }
        let summary = last.unwrap();
        assert!(summary.prediction_psi < 0.01, "{summary:?}");
        assert!(summary.worst_feature.unwrap().psi < 0.01, "{summary:?}");
        assert!(summary.prediction_mean_shift.unwrap().abs() < 0.05);
        assert!((summary.prediction_std_ratio.unwrap() - 1.0).abs() < 0.05);
        assert_eq!(summary.level, DriftLevel::Ok);
    }

    #[test]
    fn shifted_distributions_warn_and_alert_with_hand_computed_psi() {
        let mut monitor = DriftMonitor::new(&reference(), params(1000)).unwrap();
        // Feature 0 keeps the reference; feature 1 moves to 0.1/0.2/0.3/0.4 (PSI 0.228217,
        // see the hand computation in the module tests: warn); the predictions move to
        // 0.05/0.15/0.3/0.5:
        //   (0.05-0.25)·ln(0.2) = 0.321888
        //   (0.15-0.25)·ln(0.6) = 0.051083
        //   (0.30-0.25)·ln(1.2) = 0.009116
        //   (0.50-0.25)·ln(2.0) = 0.173287   sum 0.555373: alert.
        let same = values([250, 250, 250, 250], 1000);
        let warn = values([100, 200, 300, 400], 1000);
        let alert = values([50, 150, 300, 500], 1000);
        let mut summary = None;
        for i in 0..1000 {
            summary = monitor.observe(&[same[i], warn[i]], alert[i]).unwrap();
        }
        let summary = summary.unwrap();
        assert!(monitor.feature_psi()[0].abs() < 1e-12);
        assert!((monitor.feature_psi()[1] - 0.228_217).abs() < 1e-5);
        assert!((summary.prediction_psi - 0.555_373).abs() < 1e-5);
        assert_eq!(
            summary.worst_feature.map(|w| w.index),
            Some(1),
            "{summary:?}"
        );
        assert_eq!((summary.features_warn, summary.features_alert), (1, 0));
        assert_eq!(summary.level, DriftLevel::Alert);
        // Mean of the bin centres: -1.5·0.05 - 0.5·0.15 + 0.5·0.3 + 1.5·0.5 = 0.75, i.e.
        // 0.75 / sqrt(4/3) = 0.6495 reference std: past the 0.5 alert.
        let shift = summary.prediction_mean_shift.unwrap();
        assert!((shift - 0.75 / (4.0_f64 / 3.0).sqrt()).abs() < 1e-9);
        let alerts: Vec<DriftAlert> = monitor.alerts().collect();
        let subjects: Vec<(DriftSubject, DriftLevel)> =
            alerts.iter().map(|a| (a.subject, a.level)).collect();
        assert_eq!(
            subjects,
            vec![
                (DriftSubject::FeaturePsi(1), DriftLevel::Warn),
                (DriftSubject::PredictionPsi, DriftLevel::Alert),
                (DriftSubject::PredictionMeanShift, DriftLevel::Alert),
            ]
        );
    }

    #[test]
    fn windows_reset_or_decay() {
        // Window 1: shifted; window 2: the reference. With a reset the second window is
        // clean; with carry 0.5 it judges (0.5·shifted + reference) / 1.5 =
        // 0.18333/0.21667/0.26667/0.33333, whose PSI by hand is
        //   (-0.066667)·ln(0.733333) = 0.020677
        //   (-0.033333)·ln(0.866667) = 0.004770
        //   ( 0.016667)·ln(1.066667) = 0.001076
        //   ( 0.083333)·ln(1.333333) = 0.023974   sum 0.050496.
        let shifted = values([50, 150, 300, 500], 1000);
        let same = values([250, 250, 250, 250], 1000);
        for (carry, expected) in [(0.0, 0.0), (0.5, 0.050_496)] {
            let mut monitor = DriftMonitor::new(
                &reference(),
                DriftParams {
                    carry,
                    ..params(1000)
                },
            )
            .unwrap();
            let first = shifted
                .iter()
                .filter_map(|&x| monitor.observe(&[0.5, 0.5], x).unwrap())
                .last()
                .unwrap();
            assert_eq!(first.evaluation, 1);
            let second = same
                .iter()
                .filter_map(|&x| monitor.observe(&[0.5, 0.5], x).unwrap())
                .last()
                .unwrap();
            assert_eq!(second.evaluation, 2);
            assert!(
                (second.prediction_psi - expected).abs() < 1e-5,
                "carry {carry}: {second:?}"
            );
            assert!((second.weight - (1000.0 + carry * 1000.0)).abs() < 1e-9);
        }
    }

    #[test]
    fn spread_collapse_alerts() {
        let mut monitor = DriftMonitor::new(&reference(), params(100)).unwrap();
        let mut summary = None;
        for _ in 0..100 {
            summary = monitor.observe(&[0.5, 0.5], 0.01).unwrap();
        }
        let summary = summary.unwrap();
        assert_eq!(summary.prediction_std_ratio, Some(0.0));
        assert!(
            monitor
                .alerts()
                .any(|a| a.subject == DriftSubject::PredictionStdRatio
                    && a.level == DriftLevel::Alert)
        );
    }

    #[test]
    fn bad_input_is_refused_or_counted() {
        let mut monitor = DriftMonitor::new(&reference(), params(10)).unwrap();
        assert_eq!(
            monitor.observe(&[1.0], 0.0),
            Err(MonitorError::FeatureCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(monitor.observe(&[f64::NAN, 1.0], 0.0), Ok(None));
        assert_eq!(monitor.observe(&[1.0, 1.0], f64::INFINITY), Ok(None));
        assert_eq!(monitor.non_finite(), 2);
        assert_eq!(monitor.observations(), 0);
        assert_eq!(monitor.pending(), 0);

        let mut broken = reference();
        broken.features[1].fractions = vec![0.5, 0.5];
        let error = DriftMonitor::new(&broken, params(10)).unwrap_err();
        assert!(error.to_string().contains("feature 1"), "{error}");
        for bad in [
            DriftParams {
                window: 0,
                ..DriftParams::default()
            },
            DriftParams {
                psi_alert: 0.05,
                ..DriftParams::default()
            },
            DriftParams {
                carry: 1.0,
                ..DriftParams::default()
            },
            DriftParams {
                epsilon: 0.0,
                ..DriftParams::default()
            },
            DriftParams {
                std_ratio_warn: 0.9,
                ..DriftParams::default()
            },
        ] {
            assert!(matches!(
                DriftMonitor::new(&reference(), bad),
                Err(MonitorError::BadParam { .. })
            ));
        }
    }

    #[test]
    fn a_model_without_features_still_monitors_its_predictions() {
        let reference = Reference {
            features: vec![],
            prediction: quartiles(),
        };
        let mut monitor = DriftMonitor::new(&reference, params(4)).unwrap();
        let mut summary = None;
        for x in IN_BIN {
            summary = monitor.observe(&[], x).unwrap();
        }
        let summary = summary.unwrap();
        assert_eq!(summary.worst_feature, None);
        assert!(summary.prediction_psi.abs() < 1e-12);
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut monitor = DriftMonitor::new(&reference(), params(10)).unwrap();
        for x in [0.1, 1.2, -1.7] {
            monitor.observe(&[x, x], x).unwrap();
        }
        let bytes = postcard::to_stdvec(&monitor).unwrap();
        let restored: DriftMonitor = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored, monitor);
    }
}
