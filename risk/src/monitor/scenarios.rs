//! The fixed-size ring of historical return scenarios.

use serde::{Deserialize, Serialize};

/// The last `capacity` return vectors (one per closed interval with data); the oldest is
/// overwritten. Allocated once.
///
/// Stored instrument-major (`data[i·capacity + slot]`): a push writes `n` strided values
/// once per interval, while the historical VaR, run per account per interval, sweeps
/// each held instrument's column contiguously (a loop that vectorises).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScenarioRing {
    n: usize,
    capacity: usize,
    len: usize,
    /// Slot the next push writes.
    head: usize,
    /// `n × capacity` returns, instrument-major.
    data: Vec<f64>,
}

impl ScenarioRing {
    pub(crate) fn new(n: usize, capacity: usize) -> Self {
        Self {
            n,
            capacity,
            len: 0,
            head: 0,
            data: vec![0.0; n * capacity],
        }
    }

    pub(crate) fn is_consistent(&self, n: usize, capacity: usize) -> bool {
        self.n == n
            && self.capacity == capacity
            && capacity > 0
            && self.len <= capacity
            && self.head < capacity
            && (self.len == capacity || self.head == self.len)
            && self.data.len() == n * capacity
            && self.data.iter().all(|x| x.is_finite())
    }

    /// Scenarios stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends one scenario (`returns.len() == n`), overwriting the oldest when full.
    pub(crate) fn push(&mut self, returns: &[f64]) {
        debug_assert_eq!(returns.len(), self.n);
        for (column, &r) in self.data.chunks_exact_mut(self.capacity).zip(returns) {
            column[self.head] = r;
        }
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Instrument `i`'s return in each stored scenario, in slot order (until the ring is
    /// full, slots `0..len` are the written ones); empty when `i` is out of range.
    pub(crate) fn column(&self, i: usize) -> &[f64] {
        let start = i.saturating_mul(self.capacity);
        self.data.get(start..start + self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrites_the_oldest() {
        let mut ring = ScenarioRing::new(2, 3);
        assert!(ring.column(0).is_empty());
        for k in 0..5 {
            let x = f64::from(k);
            ring.push(&[x, -x]);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.column(0), &[3.0, 4.0, 2.0]);
        assert_eq!(ring.column(1), &[-3.0, -4.0, -2.0]);
        assert!(ring.column(2).is_empty());
        assert!(ring.is_consistent(2, 3));
    }
}
