//! The incremental building blocks of the features: a fixed-capacity ring, rolling sums and
//! moments that do not drift, EMA, Wilder's RSI and MACD. Each update is O(1) and allocates
//! nothing; memory is taken at construction. Everything serializes for engine snapshots, and
//! `fits` checks that restored state has the shape a spec builds (a snapshot is outside
//! input: a ring whose head lies past its end must not reach indexing).

use serde::{Deserialize, Serialize};

/// An integer sum as `f64`: the same rounding as `value as f64`, but one instruction in the
/// `i64` range where every real sum lies (converting an `i128` is a library call).
#[inline]
pub(super) fn to_f64(value: i128) -> f64 {
    let small = value as i64;
    if i128::from(small) == value {
        small as f64
    } else {
        wide_to_f64(value)
    }
}

/// Out of line, or the compiler merges both paths of [`to_f64`] into the library call.
#[cold]
#[inline(never)]
fn wide_to_f64(value: i128) -> f64 {
    value as f64
}

/// A ring of the last `capacity` values pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Ring<T> {
    buf: Vec<T>,
    /// Where the next value goes.
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring of `capacity` slots (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![T::default(); capacity.max(1)],
            head: 0,
            len: 0,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `value`; returns the value it evicts once the ring is full.
    #[inline]
    pub(super) fn push(&mut self, value: T) -> Option<T> {
        let capacity = self.buf.len();
        let old = match self.buf.get_mut(self.head) {
            Some(slot) => std::mem::replace(slot, value),
            None => return None, // unreachable: head < capacity (checked on restore)
        };
        self.head += 1;
        if self.head == capacity {
            self.head = 0;
        }
        if self.len == capacity {
            Some(old)
        } else {
            self.len += 1;
            None
        }
    }

    /// The value pushed `back` pushes ago (0: the newest), if the ring still holds it.
    #[inline]
    pub(super) fn back(&self, back: usize) -> Option<T> {
        if back >= self.len {
            return None;
        }
        let capacity = self.buf.len();
        // head < capacity and back < len <= capacity: one subtraction wraps it.
        let mut index = self.head + capacity - 1 - back;
        if index >= capacity {
            index -= capacity;
        }
        self.buf.get(index).copied()
    }

    pub(super) fn clear(&mut self) {
        self.buf.fill(T::default());
        self.head = 0;
        self.len = 0;
    }

    /// Same capacity as `fresh` and a consistent position.
    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.buf.len() == fresh.buf.len()
            && self.head < self.buf.len()
            && self.len <= self.buf.len()
    }
}

/// Rolling mean and population variance of the last `window` integer values (mid prices as
/// doubled price mantissas), exact.
///
/// The sums are integers about a shift (a recent value), so they neither drift nor lose the
/// variance of prices far from zero: `n·Σd² − (Σd)²` is the exact variance numerator. The
/// shift is moved without a pass over the window: a second pair of sums about the new shift
/// starts with every `window`-th push and, after `window` pushes, covers exactly the window
/// and replaces the running pair. Deviations then stay within the range of two windows, so
/// the sums fit an `i128` for any real price path (wrapping arithmetic keeps a path that
/// does not from panicking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RollingStats {
    values: Ring<i64>,
    shift: i64,
    sum: i128,
    sum_sq: i128,
    next_shift: i64,
    fresh_sum: i128,
    fresh_sum_sq: i128,
    fresh_count: usize,
}

impl RollingStats {
    pub(super) fn new(window: usize) -> Self {
        Self {
            values: Ring::new(window),
            shift: 0,
            sum: 0,
            sum_sq: 0,
            next_shift: 0,
            fresh_sum: 0,
            fresh_sum_sq: 0,
            fresh_count: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: i64) {
        if self.values.len() == 0 {
            self.shift = value;
            self.sum = 0;
            self.sum_sq = 0;
        }
        if self.fresh_count == 0 {
            self.next_shift = value;
        }
        if let Some(old) = self.values.push(value) {
            let d = i128::from(old) - i128::from(self.shift);
            self.sum = self.sum.wrapping_sub(d);
            self.sum_sq = self.sum_sq.wrapping_sub(d.wrapping_mul(d));
        }
        let d = i128::from(value) - i128::from(self.shift);
        self.sum = self.sum.wrapping_add(d);
        self.sum_sq = self.sum_sq.wrapping_add(d.wrapping_mul(d));
        let f = i128::from(value) - i128::from(self.next_shift);
        self.fresh_sum = self.fresh_sum.wrapping_add(f);
        self.fresh_sum_sq = self.fresh_sum_sq.wrapping_add(f.wrapping_mul(f));
        self.fresh_count += 1;
        if self.fresh_count == self.values.capacity() {
            self.shift = self.next_shift;
            self.sum = self.fresh_sum;
            self.sum_sq = self.fresh_sum_sq;
            self.fresh_sum = 0;
            self.fresh_sum_sq = 0;
            self.fresh_count = 0;
        }
    }

    /// Mean of the values held (0 when empty).
    #[inline]
    pub(super) fn mean(&self) -> f64 {
        match self.values.len() {
            0 => 0.0,
            n => self.shift as f64 + to_f64(self.sum) / n as f64,
        }
    }

    /// Population standard deviation of the values held (0 when empty; exactly 0 when they
    /// are all equal).
    #[inline]
    pub(super) fn std(&self) -> f64 {
        match self.values.len() {
            0 => 0.0,
            n => {
                let n = n as i128;
                let numerator = n
                    .wrapping_mul(self.sum_sq)
                    .wrapping_sub(self.sum.wrapping_mul(self.sum))
                    .max(0);
                to_f64(numerator).sqrt() / n as f64
            }
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Self::new(self.values.capacity());
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.values.fits(&fresh.values) && self.fresh_count < self.values.capacity()
    }
}

/// Rolling sum of the last `window` floats. The running sum adds and subtracts, so it drifts;
/// a second sum starts with every `window`-th push, only ever adds, and after `window`
/// pushes covers exactly the window and replaces it: drift never outlives one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RollingSum {
    values: Ring<f64>,
    sum: f64,
    fresh_sum: f64,
    fresh_count: usize,
}

impl RollingSum {
    pub(super) fn new(window: usize) -> Self {
        Self {
            values: Ring::new(window),
            sum: 0.0,
            fresh_sum: 0.0,
            fresh_count: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: f64) {
        if let Some(old) = self.values.push(value) {
            self.sum -= old;
        }
        self.sum += value;
        self.fresh_sum += value;
        self.fresh_count += 1;
        if self.fresh_count == self.values.capacity() {
            self.sum = self.fresh_sum;
            self.fresh_sum = 0.0;
            self.fresh_count = 0;
        }
    }

    #[inline]
    pub(super) fn sum(&self) -> f64 {
        self.sum
    }

    pub(super) fn clear(&mut self) {
        *self = Self::new(self.values.capacity());
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.values.fits(&fresh.values) && self.fresh_count < self.values.capacity()
    }
}

/// Exact rolling sum of integers (volumes in quantity mantissas, trade counts). Wrapping
/// arithmetic is exact modulo 2¹²⁸, so the sum is right whenever the true sum fits, and
/// nothing panics on absurd input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct IntSum {
    values: Ring<i128>,
    sum: i128,
}

impl IntSum {
    pub(super) fn new(window: usize) -> Self {
        Self {
            values: Ring::new(window),
            sum: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: i128) {
        if let Some(old) = self.values.push(value) {
            self.sum = self.sum.wrapping_sub(old);
        }
        self.sum = self.sum.wrapping_add(value);
    }

    #[inline]
    pub(super) fn sum(&self) -> i128 {
        self.sum
    }

    pub(super) fn clear(&mut self) {
        self.values.clear();
        self.sum = 0;
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.values.fits(&fresh.values)
    }
}

/// Exponential moving average, α = 2 / (period + 1), seeded with the first value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Ema {
    alpha: f64,
    value: f64,
    seeded: bool,
}

impl Ema {
    pub(super) fn new(period: u32) -> Self {
        Self {
            alpha: 2.0 / (f64::from(period) + 1.0),
            value: 0.0,
            seeded: false,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: f64) {
        if self.seeded {
            self.value += self.alpha * (value - self.value);
        } else {
            self.value = value;
            self.seeded = true;
        }
    }

    #[inline]
    pub(super) fn value(&self) -> f64 {
        self.value
    }

    pub(super) fn clear(&mut self) {
        self.value = 0.0;
        self.seeded = false;
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.alpha == fresh.alpha
    }
}

/// Wilder's RSI: average gain and loss seeded with the simple mean of the first `period`
/// changes, then `avg = (avg × (period − 1) + x) / period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Rsi {
    period: u32,
    prev: f64,
    started: bool,
    /// Changes seen (values pushed minus one), saturating.
    changes: u64,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub(super) fn new(period: u32) -> Self {
        Self {
            period,
            prev: 0.0,
            started: false,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: f64) {
        if self.started {
            let change = value - self.prev;
            let (gain, loss) = (change.max(0.0), (-change).max(0.0));
            self.changes = self.changes.saturating_add(1);
            let period = f64::from(self.period);
            if self.changes <= u64::from(self.period) {
                // Seeding: plain sums, divided once `period` changes are in.
                self.gain += gain;
                self.loss += loss;
                if self.changes == u64::from(self.period) {
                    self.gain /= period;
                    self.loss /= period;
                }
            } else {
                self.gain = (self.gain * (period - 1.0) + gain) / period;
                self.loss = (self.loss * (period - 1.0) + loss) / period;
            }
        }
        self.prev = value;
        self.started = true;
    }

    /// 0..=100; 100 with gains and no loss, 50 with neither.
    #[inline]
    pub(super) fn value(&self) -> f64 {
        let (gain, loss) = if self.changes >= u64::from(self.period) {
            (self.gain, self.loss)
        } else if self.changes > 0 {
            let n = self.changes as f64;
            (self.gain / n, self.loss / n)
        } else {
            (0.0, 0.0)
        };
        if loss == 0.0 {
            if gain == 0.0 { 50.0 } else { 100.0 }
        } else {
            100.0 - 100.0 / (1.0 + gain / loss)
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Self::new(self.period);
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.period == fresh.period
    }
}

/// MACD: line = EMA(fast) − EMA(slow), signal = EMA(signal) of the line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    pub(super) fn new(fast: u32, slow: u32, signal: u32) -> Self {
        Self {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: f64) {
        self.fast.push(value);
        self.slow.push(value);
        self.signal.push(self.line());
    }

    #[inline]
    pub(super) fn line(&self) -> f64 {
        self.fast.value() - self.slow.value()
    }

    #[inline]
    pub(super) fn signal(&self) -> f64 {
        self.signal.value()
    }

    pub(super) fn clear(&mut self) {
        self.fast.clear();
        self.slow.clear();
        self.signal.clear();
    }

    pub(super) fn fits(&self, fresh: &Self) -> bool {
        self.fast.fits(&fresh.fast)
            && self.slow.fits(&fresh.slow)
            && self.signal.fits(&fresh.signal)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Relative closeness with an absolute floor.
    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
    }

    fn naive_mean_std(window: &[f64]) -> (f64, f64) {
        let n = window.len() as f64;
        let mean = window.iter().sum::<f64>() / n;
        let var = window.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn naive_ema(values: &[f64], period: u32) -> f64 {
        let alpha = 2.0 / (f64::from(period) + 1.0);
        let mut ema = values[0];
        for x in &values[1..] {
            ema = alpha * x + (1.0 - alpha) * ema;
        }
        ema
    }

    /// Wilder's RSI written from its textbook definition, over a whole series.
    fn naive_rsi(values: &[f64], period: usize) -> f64 {
        let changes: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
        let gains: Vec<f64> = changes.iter().map(|c| c.max(0.0)).collect();
        let losses: Vec<f64> = changes.iter().map(|c| (-c).max(0.0)).collect();
        let (gain, loss) = if changes.len() < period {
            let n = changes.len().max(1) as f64;
            (
                gains.iter().sum::<f64>() / n,
                losses.iter().sum::<f64>() / n,
            )
        } else {
            let p = period as f64;
            let mut gain = gains[..period].iter().sum::<f64>() / p;
            let mut loss = losses[..period].iter().sum::<f64>() / p;
            for i in period..changes.len() {
                gain = (gain * (p - 1.0) + gains[i]) / p;
                loss = (loss * (p - 1.0) + losses[i]) / p;
            }
            (gain, loss)
        };
        if loss == 0.0 {
            if gain == 0.0 { 50.0 } else { 100.0 }
        } else {
            100.0 - 100.0 / (1.0 + gain / loss)
        }
    }

    /// Prices near BTC's level in cents, moving by whole cents.
    fn cents() -> impl Strategy<Value = Vec<i64>> {
        (
            5000000i64..7000000,
            prop::collection::vec(-500i64..=500, 1..400),
        )
            .prop_map(|(start, steps)| {
                let mut price = start;
                steps
                    .into_iter()
                    .map(|step| {
                        price = (price + step).max(1);
                        price
                    })
                    .collect()
            })
    }

    fn prices() -> impl Strategy<Value = Vec<f64>> {
        cents().prop_map(|cents| cents.into_iter().map(|c| c as f64 / 100.0).collect())
    }

    #[test]
    fn integer_conversion_rounds_like_a_cast() {
        for value in [
            0i128,
            -1,
            (1 << 53) + 1,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
            i128::from(i64::MAX) + 1,
            -(1i128 << 100) - 12_345,
            i128::MAX,
        ] {
            assert_eq!(to_f64(value).to_bits(), (value as f64).to_bits(), "{value}");
        }
    }

    #[test]
    fn ring_keeps_the_last_values() {
        let mut ring = Ring::<i32>::new(3);
        assert_eq!(ring.back(0), None);
        assert_eq!(ring.push(1), None);
        assert_eq!(ring.push(2), None);
        assert_eq!(ring.push(3), None);
        assert_eq!(ring.push(4), Some(1));
        assert_eq!(
            (ring.back(0), ring.back(1), ring.back(2)),
            (Some(4), Some(3), Some(2))
        );
        assert_eq!(ring.back(3), None);
        assert_eq!(ring.len(), 3);
        ring.clear();
        assert_eq!(ring.back(0), None);
        let broken = Ring::<i32> {
            buf: vec![0; 3],
            head: 3,
            len: 0,
        };
        assert!(!broken.fits(&Ring::new(3)));
        assert!(!Ring::<i32>::new(4).fits(&Ring::new(3)));
    }

    proptest! {
        #[test]
        fn rolling_stats_match_a_naive_window(values in cents(), window in 1usize..50) {
            let mut stats = RollingStats::new(window);
            for (i, &x) in values.iter().enumerate() {
                stats.push(x);
                let held: Vec<f64> =
                    values[(i + 1).saturating_sub(window)..=i].iter().map(|&c| c as f64).collect();
                let (mean, std) = naive_mean_std(&held);
                prop_assert!(close(stats.mean(), mean, 1e-14), "mean {} vs {}", stats.mean(), mean);
                // In cents: the naive two-pass std of values near 6e6 is good to ~1e-9.
                prop_assert!((stats.std() - std).abs() <= 1e-8, "std {} vs {}", stats.std(), std);
                if held.iter().all(|&v| v == held[0]) {
                    prop_assert_eq!(stats.std(), 0.0);
                }
            }
        }

        #[test]
        fn rolling_sum_matches_a_naive_window(values in prop::collection::vec(0.0f64..1e-3, 1..400), window in 1usize..50) {
            let mut sum = RollingSum::new(window);
            for (i, &x) in values.iter().enumerate() {
                sum.push(x);
                let naive: f64 = values[(i + 1).saturating_sub(window)..=i].iter().sum();
                prop_assert!(close(sum.sum(), naive, 1e-12));
            }
        }

        #[test]
        fn int_sum_is_exact(values in prop::collection::vec(0i128..1_000_000_000_000, 1..300), window in 1usize..40) {
            let mut sum = IntSum::new(window);
            for (i, &x) in values.iter().enumerate() {
                sum.push(x);
                let naive: i128 = values[(i + 1).saturating_sub(window)..=i].iter().sum();
                prop_assert_eq!(sum.sum(), naive);
            }
        }

        #[test]
        fn ema_matches_the_recursion(values in prices(), period in 1u32..60) {
            let mut ema = Ema::new(period);
            for (i, &x) in values.iter().enumerate() {
                ema.push(x);
                prop_assert!(close(ema.value(), naive_ema(&values[..=i], period), 1e-12));
            }
        }

        #[test]
        fn rsi_matches_wilder(values in prices(), period in 1usize..30) {
            let mut rsi = Rsi::new(period as u32);
            for (i, &x) in values.iter().enumerate() {
                rsi.push(x);
                let naive = naive_rsi(&values[..=i], period);
                prop_assert!((rsi.value() - naive).abs() <= 1e-9, "{} vs {}", rsi.value(), naive);
                prop_assert!((0.0..=100.0).contains(&rsi.value()));
            }
        }

        #[test]
        fn macd_matches_three_emas(values in prices(), fast in 1u32..10, extra in 1u32..20, signal in 1u32..10) {
            let slow = fast + extra;
            let mut macd = Macd::new(fast, slow, signal);
            let mut lines = Vec::new();
            for (i, &x) in values.iter().enumerate() {
                macd.push(x);
                let line = naive_ema(&values[..=i], fast) - naive_ema(&values[..=i], slow);
                lines.push(line);
                prop_assert!((macd.line() - line).abs() <= 1e-6);
                prop_assert!((macd.signal() - naive_ema(&lines, signal)).abs() <= 1e-6);
            }
        }
    }

    #[test]
    fn rolling_sum_does_not_drift_over_long_runs() {
        // A million pushes of squared returns of very different sizes: without the rebuild
        // the running sum keeps the rounding of every large value that passed through.
        let mut sum = RollingSum::new(20);
        let mut window = std::collections::VecDeque::new();
        let mut plain = 0.0f64;
        for i in 0..1_000_000u64 {
            let x = if i % 97 == 0 {
                1e-2
            } else {
                1e-9 * ((i % 13) as f64 + 1.0)
            };
            sum.push(x);
            window.push_back(x);
            plain += x;
            if window.len() > 20 {
                plain -= window.pop_front().unwrap();
            }
        }
        let naive: f64 = window.iter().sum();
        assert!(close(sum.sum(), naive, 1e-13), "{} vs {naive}", sum.sum());
        // The same running sum without the rebuild is measurably off: the guard matters.
        assert!((plain - naive).abs() > 1e-13 * naive, "{plain} vs {naive}");
    }

    #[test]
    fn rolling_stats_stay_exact_over_long_runs() {
        let mut stats = RollingStats::new(20);
        let mut window = std::collections::VecDeque::new();
        let mut x: i64 = 6_100_000;
        for i in 0..1_000_000i64 {
            x += if i % 7 < 3 { 37 } else { -29 } * (i % 13 + 1);
            stats.push(x);
            window.push_back(x);
            if window.len() > 20 {
                window.pop_front();
            }
        }
        let n = window.len() as i128;
        let sum: i128 = window.iter().map(|&v| i128::from(v)).sum();
        let sum_sq: i128 = window.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
        let std = ((n * sum_sq - sum * sum) as f64).sqrt() / n as f64;
        assert_eq!(stats.std(), std);
        assert!(close(stats.mean(), sum as f64 / n as f64, 1e-15));
    }

    #[test]
    fn constant_prices_have_zero_deviation_and_neutral_rsi() {
        let mut stats = RollingStats::new(5);
        let mut rsi = Rsi::new(3);
        for i in 0..50 {
            stats.push(6_123_457 + i64::from(i < 10) * i);
            rsi.push(61_234.57);
        }
        assert_eq!(stats.std(), 0.0);
        assert_eq!(stats.mean(), 6_123_457.0);
        assert_eq!(rsi.value(), 50.0);
    }
}
