//! Latest prices and interval closes on engine time.

use serde::{Deserialize, Serialize};

/// Keeps the latest price of each instrument and, when an interval closes, turns the prices
/// into one log return per instrument.
///
/// Intervals are aligned to multiples of the interval length since the epoch (with 1 s
/// intervals they close on whole seconds of engine time), so two runs over the same events
/// sample identically whatever their first timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PriceSampler {
    /// End of the open interval (ns since the epoch); `None` before the first timestamp.
    next_close_ns: Option<u64>,
    /// Latest accepted price per instrument; 0 = none yet.
    latest: Vec<f64>,
    /// Price at the previous close per instrument; 0 = none.
    prev_close: Vec<f64>,
    /// Intervals closed so far (a gap counts once).
    closes: u64,
    /// Prices refused: zero, negative, not finite, or an instrument out of range.
    rejected: u64,
}

impl PriceSampler {
    pub(crate) fn new(instruments: usize) -> Self {
        Self {
            next_close_ns: None,
            latest: vec![0.0; instruments],
            prev_close: vec![0.0; instruments],
            closes: 0,
            rejected: 0,
        }
    }

    pub(crate) fn instruments(&self) -> usize {
        self.latest.len()
    }

    pub(crate) fn is_consistent(&self) -> bool {
        self.prev_close.len() == self.latest.len()
            && self
                .latest
                .iter()
                .chain(&self.prev_close)
                .all(|p| p.is_finite() && *p >= 0.0)
    }

    pub(crate) fn closes(&self) -> u64 {
        self.closes
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.rejected
    }

    pub(crate) fn next_close_ns(&self) -> Option<u64> {
        self.next_close_ns
    }

    pub(crate) fn latest(&self, instrument: usize) -> Option<f64> {
        self.latest.get(instrument).copied().filter(|p| *p > 0.0)
    }

    /// Stores `price` as the latest of `instrument`: one compare and one store.
    #[inline]
    pub(crate) fn record(&mut self, instrument: usize, price: f64) {
        // `price > 0.0` is false for NaN too; infinity is refused explicitly.
        match self.latest.get_mut(instrument) {
            Some(slot) if price > 0.0 && price < f64::INFINITY => *slot = price,
            _ => self.rejected += 1,
        }
    }

    /// Whether `ts_ns` ends the open interval. Starts the clock on the first call.
    #[inline]
    pub(crate) fn is_due(&mut self, ts_ns: u64, interval_ns: u64) -> bool {
        match self.next_close_ns {
            Some(next) => ts_ns >= next,
            None => {
                self.next_close_ns = Some((ts_ns / interval_ns).saturating_add(1) * interval_ns);
                false
            }
        }
    }

    /// Closes the open interval at `ts_ns` (which [`is_due`](Self::is_due) said ends it).
    ///
    /// Writes each instrument's log return since the previous close into `returns` and
    /// whether it had a price at both closes into `valid`; an instrument with no new price
    /// carries its price forward (return 0, still valid). When engine time jumped over
    /// `k > 1` intervals (a quiet market, a feed gap, a replay pause), the whole move is one
    /// sample, divided by √k so that it stays a per-interval return under the independent
    /// increments the EWMA and the sqrt-time scaling already assume: O(n), not k iterations.
    ///
    /// Returns the number of intervals elapsed (≥ 1) and whether any return is valid.
    pub(crate) fn close(
        &mut self,
        ts_ns: u64,
        interval_ns: u64,
        returns: &mut [f64],
        valid: &mut [bool],
    ) -> (u64, bool) {
        let next = self.next_close_ns.unwrap_or(ts_ns);
        let elapsed = ts_ns.saturating_sub(next) / interval_ns + 1;
        self.next_close_ns = Some(next.saturating_add(elapsed.saturating_mul(interval_ns)));
        self.closes += 1;
        let gap_scale = if elapsed == 1 {
            1.0
        } else {
            1.0 / (elapsed as f64).sqrt()
        };
        let mut any_valid = false;
        let rows = self
            .latest
            .iter()
            .zip(self.prev_close.iter_mut())
            .zip(returns.iter_mut().zip(valid.iter_mut()));
        for ((&latest, prev), (ret, ok)) in rows {
            *ok = latest > 0.0 && *prev > 0.0;
            *ret = 0.0;
            if *ok {
                let r = (latest / *prev).ln() * gap_scale;
                // Only a ratio overflowing f64 (prices 1e-300 and 1e300) gives a non-finite
                // return; such a move carries no usable information.
                if r.is_finite() {
                    *ret = r;
                }
                any_valid = true;
            }
            *prev = latest;
        }
        (elapsed, any_valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn aligns_to_interval_multiples_and_handles_gaps_in_one_step() {
        let mut s = PriceSampler::new(2);
        let (mut r, mut v) = ([0.0; 2], [false; 2]);
        assert!(!s.is_due(10 * SECOND + 300, SECOND));
        assert_eq!(s.next_close_ns(), Some(11 * SECOND));
        s.record(0, 100.0);
        assert!(!s.is_due(11 * SECOND - 1, SECOND));
        assert!(s.is_due(11 * SECOND, SECOND));
        // First close: no previous price, nothing valid.
        assert_eq!(s.close(11 * SECOND, SECOND, &mut r, &mut v), (1, false));
        assert_eq!(v, [false, false]);
        s.record(0, 110.0);
        s.record(1, 50.0);
        // One hour later (3600 intervals since the close at 11 s): one close, the return
        // scaled by 1/sqrt(3600), the next boundary aligned.
        let ts = 11 * SECOND + 3_600 * SECOND + 5;
        assert!(s.is_due(ts, SECOND));
        assert_eq!(s.close(ts, SECOND, &mut r, &mut v), (3_600, true));
        assert_eq!(s.next_close_ns(), Some(3_612 * SECOND));
        assert!((r[0] - (1.1_f64).ln() / 60.0).abs() < 1e-15);
        assert_eq!((r[1], v[1]), (0.0, false));
        // Carry forward: no new price, return 0, still valid.
        assert_eq!(s.close(3_612 * SECOND, SECOND, &mut r, &mut v), (1, true));
        assert_eq!(r, [0.0, 0.0]);
        assert_eq!(v, [true, true]);
        assert_eq!(s.closes(), 3);
    }

    #[test]
    fn refuses_bad_prices() {
        let mut s = PriceSampler::new(1);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            s.record(0, bad);
        }
        s.record(1, 10.0);
        assert_eq!(s.rejected(), 6);
        assert_eq!(s.latest(0), None);
        s.record(0, 10.0);
        assert_eq!(s.latest(0), Some(10.0));
        assert!(s.is_consistent());
    }
}
