//! Live accuracy: every prediction joined with the return that followed it.

use aaiti_model::{Price, UnixNanos};
use serde::{Deserialize, Serialize};

use super::MonitorError;

/// A prediction joined with its realised forward return: what the stage journals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// Engine time of the prediction.
    pub predicted_at: UnixNanos,
    /// Engine time of the mid that resolved it (the first at or after the horizon; later
    /// than the horizon when the market was quiet).
    pub resolved_at: UnixNanos,
    /// The predicted forward log return.
    pub prediction: f64,
    /// `ln(mid at resolution / mid at prediction)`.
    pub realised: f64,
}

/// Running scores of a model's resolved predictions. Each is `None` until it is defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccuracyScores {
    /// Predictions resolved.
    pub count: u64,
    /// Share of resolutions where the prediction and the realised return have the same sign,
    /// among those where neither is zero.
    pub hit_rate: Option<f64>,
    /// Mean squared error of the predicted against the realised log return.
    pub mse: Option<f64>,
    /// Information coefficient: Pearson correlation of predictions and realised returns
    /// (none until both vary).
    pub ic: Option<f64>,
    /// Mean realised log return.
    pub mean_realised: Option<f64>,
    /// Mean prediction.
    pub mean_prediction: Option<f64>,
    /// Predictions waiting for their horizon.
    pub pending: u64,
    /// Predictions dropped because the queue was full.
    pub overflowed: u64,
    /// Predictions or mids refused (non-positive mid, non-finite prediction).
    pub invalid: u64,
}

/// One queued prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Pending {
    at: UnixNanos,
    mid: i64,
    prediction: f64,
}

/// Joins one model's predictions with the realised log return of the mid over their
/// horizon and keeps running scores ([`AccuracyScores`]).
///
/// [`on_prediction`](Self::on_prediction) queues the prediction with the mid of the moment;
/// [`on_mid`](Self::on_mid) resolves, oldest first, every queued prediction whose horizon
/// has elapsed at that mid. The queue is a ring of fixed capacity allocated at construction:
/// a prediction arriving when it is full is dropped and counted (`overflowed`); size it at
/// least the prediction rate times the horizon. Predictions are expected in engine-time
/// order (the queue resolves from its head).
///
/// Scores are running sums (count, hits, squared errors, Σp, Σr, Σp², Σr², Σpr), so every
/// score is O(1) to read; the correlation uses them in their centred form. The state is
/// plain serde, for engine snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyTracker {
    horizon_ns: u64,
    queue: Vec<Pending>,
    head: usize,
    len: usize,
    count: u64,
    hits: u64,
    signed: u64,
    sum_sq_error: f64,
    sum_p: f64,
    sum_r: f64,
    sum_pp: f64,
    sum_rr: f64,
    sum_pr: f64,
    overflowed: u64,
    invalid: u64,
}

impl AccuracyTracker {
    /// Most queued predictions a tracker may be built for.
    pub const MAX_CAPACITY: usize = 1 << 24;

    /// A tracker of predictions for `horizon_ms` ahead, queueing at most `capacity`.
    ///
    /// # Errors
    ///
    /// A zero horizon, or a capacity of 0 or above [`Self::MAX_CAPACITY`].
    pub fn new(horizon_ms: u32, capacity: usize) -> Result<Self, MonitorError> {
        if horizon_ms == 0 {
            return Err(MonitorError::BadParam {
                key: "horizon_ms",
                value: 0.0,
                fix: "at least 1 ms",
            });
        }
        if capacity == 0 || capacity > Self::MAX_CAPACITY {
            return Err(MonitorError::BadParam {
                key: "capacity",
                value: capacity as f64,
                fix: "1 to 16777216 predictions",
            });
        }
        Ok(Self {
            horizon_ns: u64::from(horizon_ms) * 1_000_000,
            queue: vec![Pending::default(); capacity],
            head: 0,
            len: 0,
            count: 0,
            hits: 0,
            signed: 0,
            sum_sq_error: 0.0,
            sum_p: 0.0,
            sum_r: 0.0,
            sum_pp: 0.0,
            sum_rr: 0.0,
            sum_pr: 0.0,
            overflowed: 0,
            invalid: 0,
        })
    }

    /// Queues `prediction` (a forward log return) made at `now` when the mid was `mid`.
    /// Returns false, and counts, when it is dropped: the queue is full (`overflowed`), or
    /// the mid is not positive or the prediction not finite (`invalid`).
    pub fn on_prediction(&mut self, now: UnixNanos, mid: Price, prediction: f64) -> bool {
        if mid.0 <= 0 || !prediction.is_finite() {
            self.invalid += 1;
            return false;
        }
        let capacity = self.queue.len();
        if self.len >= capacity {
            self.overflowed += 1;
            return false;
        }
        let tail = (self.head + self.len) % capacity;
        if let Some(slot) = self.queue.get_mut(tail) {
            *slot = Pending {
                at: now,
                mid: mid.0,
                prediction,
            };
            self.len += 1;
        }
        true
    }

    /// A mid at `now`: resolves every queued prediction whose horizon has elapsed (made at
    /// or before `now − horizon`), oldest first, passing each [`Resolution`] to `resolved`
    /// (for the journal) and adding it to the scores. Returns how many were resolved. A
    /// non-positive mid resolves nothing and is counted as invalid.
    pub fn on_mid(
        &mut self,
        now: UnixNanos,
        mid: Price,
        resolved: &mut impl FnMut(Resolution),
    ) -> usize {
        if mid.0 <= 0 {
            self.invalid += 1;
            return 0;
        }
        let capacity = self.queue.len();
        let mut done = 0;
        while self.len > 0 {
            let Some(&pending) = self.queue.get(self.head) else {
                break;
            };
            if pending.at.0.saturating_add(self.horizon_ns) > now.0 {
                break;
            }
            // Both mids are positive mantissas at the same scale: the scale cancels.
            let realised = (mid.0 as f64 / pending.mid as f64).ln();
            self.score(pending.prediction, realised);
            resolved(Resolution {
                predicted_at: pending.at,
                resolved_at: now,
                prediction: pending.prediction,
                realised,
            });
            self.head = (self.head + 1) % capacity;
            self.len -= 1;
            done += 1;
        }
        done
    }

    fn score(&mut self, p: f64, r: f64) {
        self.count += 1;
        if p != 0.0 && r != 0.0 {
            self.signed += 1;
            if (p > 0.0) == (r > 0.0) {
                self.hits += 1;
            }
        }
        self.sum_sq_error += (p - r) * (p - r);
        self.sum_p += p;
        self.sum_r += r;
        self.sum_pp += p * p;
        self.sum_rr += r * r;
        self.sum_pr += p * r;
    }

    /// The running scores.
    pub fn scores(&self) -> AccuracyScores {
        let n = self.count as f64;
        let defined = self.count > 0;
        let ic = if self.count >= 2 {
            let cov = self.sum_pr - self.sum_p * self.sum_r / n;
            let var_p = self.sum_pp - self.sum_p * self.sum_p / n;
            let var_r = self.sum_rr - self.sum_r * self.sum_r / n;
            // Below this relative size the variance is rounding noise of a constant series.
            let noise = |sum_sq: f64| 1e-12 * sum_sq.max(f64::MIN_POSITIVE);
            (var_p > noise(self.sum_pp) && var_r > noise(self.sum_rr))
                .then(|| (cov / (var_p.sqrt() * var_r.sqrt())).clamp(-1.0, 1.0))
        } else {
            None
        };
        AccuracyScores {
            count: self.count,
            hit_rate: (self.signed > 0).then(|| self.hits as f64 / self.signed as f64),
            mse: defined.then(|| self.sum_sq_error / n),
            ic,
            mean_realised: defined.then(|| self.sum_r / n),
            mean_prediction: defined.then(|| self.sum_p / n),
            pending: self.len as u64,
            overflowed: self.overflowed,
            invalid: self.invalid,
        }
    }

    /// The horizon in nanoseconds.
    pub fn horizon_ns(&self) -> u64 {
        self.horizon_ns
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A price path with a deterministic wiggle: mid mantissa at step `i`.
    fn mid(i: u64) -> i64 {
        let wiggle = [0, 40, -25, 70, -60, 15, 90, -35, 5, -80];
        10_000_000 + 100 * i as i64 + wiggle[(i % 10) as usize]
    }

    /// Predictions every 10 ms with a 50 ms horizon; `predict(realised)` gives the prediction
    /// from the future realised return (a perfect or a perverse oracle).
    fn run(predict: impl Fn(f64) -> f64) -> (AccuracyTracker, Vec<Resolution>) {
        let mut tracker = AccuracyTracker::new(50, 16).unwrap();
        let mut resolutions = Vec::new();
        for i in 0..200_u64 {
            let now = UnixNanos(i * 10 * MS);
            tracker.on_mid(now, Price(mid(i)), &mut |r| resolutions.push(r));
            let future = (mid(i + 5) as f64 / mid(i) as f64).ln();
            assert!(tracker.on_prediction(now, Price(mid(i)), predict(future)));
        }
        (tracker, resolutions)
    }

    #[test]
    fn a_perfectly_correlated_stream_scores_ic_one_and_hits_all() {
        // Twice the realised return: correlation 1, every sign right, MSE = mean r².
        let (tracker, resolutions) = run(|r| 2.0 * r);
        let scores = tracker.scores();
        assert_eq!(scores.count, 195, "the last 5 are still pending");
        assert_eq!(scores.pending, 5);
        assert_eq!(resolutions.len(), 195);
        assert!((scores.ic.unwrap() - 1.0).abs() < 1e-9, "{scores:?}");
        assert_eq!(scores.hit_rate, Some(1.0));
        let mean_r2 = resolutions
            .iter()
            .map(|r| r.realised * r.realised)
            .sum::<f64>()
            / 195.0;
        assert!((scores.mse.unwrap() - mean_r2).abs() < 1e-15);
        for r in &resolutions {
            assert_eq!(r.resolved_at.0 - r.predicted_at.0, 50 * MS);
            assert!((r.prediction - 2.0 * r.realised).abs() < 1e-15);
        }
        // The drift of the path: +100 per step over 5 steps on about 1e7.
        let mean = scores.mean_realised.unwrap();
        assert!(mean > 4.5e-5 && mean < 5.5e-5, "{mean}");
    }

    #[test]
    fn an_anti_correlated_stream_scores_ic_minus_one_and_hits_none() {
        let (tracker, _) = run(|r| -0.5 * r + 0.0);
        let scores = tracker.scores();
        assert!((scores.ic.unwrap() + 1.0).abs() < 1e-9, "{scores:?}");
        assert_eq!(scores.hit_rate, Some(0.0));
    }

    #[test]
    fn zero_predictions_do_not_count_as_hits_or_misses() {
        let (tracker, _) = run(|_| 0.0);
        let scores = tracker.scores();
        assert_eq!(scores.hit_rate, None);
        assert_eq!(scores.ic, None, "a constant prediction has no correlation");
        assert_eq!(scores.mean_prediction, Some(0.0));
    }

    #[test]
    fn hand_computed_scores() {
        // Mids 100 → 110 and 100 → 90 (scale cancels), predictions +0.05 and +0.02.
        let mut tracker = AccuracyTracker::new(1, 4).unwrap();
        let mut out = Vec::new();
        tracker.on_prediction(UnixNanos(0), Price(10_000), 0.05);
        tracker.on_mid(UnixNanos(MS), Price(11_000), &mut |r| out.push(r));
        tracker.on_prediction(UnixNanos(MS), Price(10_000), 0.02);
        tracker.on_mid(UnixNanos(MS + MS / 2), Price(9_000), &mut |r| out.push(r));
        assert_eq!(out.len(), 1, "the horizon had not elapsed");
        tracker.on_mid(UnixNanos(3 * MS), Price(9_000), &mut |r| out.push(r));
        let (r1, r2) = (1.1_f64.ln(), 0.9_f64.ln()); // 0.0953102, -0.1053605
        assert!((out[0].realised - r1).abs() < 1e-12);
        assert!((out[1].realised - r2).abs() < 1e-12);
        assert_eq!(out[1].resolved_at, UnixNanos(3 * MS));
        let scores = tracker.scores();
        assert_eq!(scores.count, 2);
        assert_eq!(scores.hit_rate, Some(0.5));
        // ((0.05 - 0.0953102)² + (0.02 + 0.1053605)²) / 2 = (0.0020530 + 0.0157153) / 2
        assert!((scores.mse.unwrap() - 0.008_884_1).abs() < 1e-6);
        // With two points the correlation is ±1: the larger prediction (0.05) went with
        // the larger return (+0.095), so +1.
        assert!((scores.ic.unwrap() - 1.0).abs() < 1e-9);
        assert!((scores.mean_realised.unwrap() - (r1 + r2) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn overflow_drops_new_predictions_and_counts_them() {
        let mut tracker = AccuracyTracker::new(100, 3).unwrap();
        for i in 0..5 {
            let kept = tracker.on_prediction(UnixNanos(i * MS), Price(1_000), 0.001);
            assert_eq!(kept, i < 3);
        }
        let scores = tracker.scores();
        assert_eq!((scores.pending, scores.overflowed), (3, 2));
        // The three kept ones resolve; the queue wraps around and takes new ones.
        let mut times = Vec::new();
        let n = tracker.on_mid(UnixNanos(200 * MS), Price(1_001), &mut |r| {
            times.push(r.predicted_at.0 / MS);
        });
        assert_eq!((n, times), (3, vec![0, 1, 2]));
        for i in 0..3 {
            assert!(tracker.on_prediction(UnixNanos((300 + i) * MS), Price(1_000), 0.0));
        }
        assert!(!tracker.on_prediction(UnixNanos(303 * MS), Price(1_000), 0.0));
        assert_eq!(tracker.scores().overflowed, 3);
        assert_eq!(
            tracker.on_mid(UnixNanos(401 * MS), Price(1_000), &mut |_| {}),
            2
        );
        assert_eq!(tracker.scores().pending, 1);
    }

    #[test]
    fn bad_input_is_counted_not_scored() {
        assert!(AccuracyTracker::new(0, 8).is_err());
        assert!(AccuracyTracker::new(10, 0).is_err());
        let mut tracker = AccuracyTracker::new(10, 8).unwrap();
        assert!(!tracker.on_prediction(UnixNanos(0), Price(0), 0.1));
        assert!(!tracker.on_prediction(UnixNanos(0), Price(5), f64::NAN));
        assert!(tracker.on_prediction(UnixNanos(0), Price(5), 0.1));
        assert_eq!(
            tracker.on_mid(UnixNanos(20 * MS), Price(-1), &mut |_| {}),
            0
        );
        let scores = tracker.scores();
        assert_eq!((scores.invalid, scores.count, scores.pending), (3, 0, 1));
        assert_eq!(scores.mse, None);
    }

    #[test]
    fn state_round_trips_through_serde() {
        let (tracker, _) = run(|r| r);
        let bytes = postcard::to_stdvec(&tracker).unwrap();
        let restored: AccuracyTracker = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored, tracker);
    }
}
