//! The per-account order rate throttle: a token bucket on engine time.
//!
//! Implemented as the generic cell rate algorithm (GCRA), the integer form of a token
//! bucket: one `u64` "theoretical arrival time" per account. With an emission interval
//! `T = 60 s / orders_per_minute` and a burst of `B` orders, an order at engine time `t` is
//! allowed when `tat ≤ t + (B − 1)·T`, and then `tat = max(tat, t) + T`. So `B` orders can
//! go at once after an idle period, then one per `T`; tokens refill with engine time
//! (`UnixNanos` from the events), never with the wall clock. Time going backwards is
//! harmless (`max`).

use serde::{Deserialize, Serialize};

/// One account's throttle state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Theoretical arrival time of the next order, ns since the epoch.
    pub tat_ns: u64,
}

impl Throttle {
    /// `Ok` if an order at `now_ns` is allowed, else the ns to wait. `emission_ns == 0`
    /// means unthrottled.
    #[inline]
    pub fn check(&self, now_ns: u64, emission_ns: u64, tolerance_ns: u64) -> Result<(), u64> {
        if emission_ns == 0 {
            return Ok(());
        }
        let allowed_until = now_ns.saturating_add(tolerance_ns);
        if self.tat_ns <= allowed_until {
            Ok(())
        } else {
            Err(self.tat_ns - allowed_until)
        }
    }

    /// Takes one token (call only after [`Throttle::check`] allowed the order).
    #[inline]
    pub fn consume(&mut self, now_ns: u64, emission_ns: u64) {
        if emission_ns != 0 {
            self.tat_ns = self.tat_ns.max(now_ns).saturating_add(emission_ns);
        }
    }

    /// Orders that could go right now (for reports); `u32::MAX` when unthrottled.
    pub fn available(&self, now_ns: u64, emission_ns: u64, burst: u32) -> u32 {
        if emission_ns == 0 {
            return u32::MAX;
        }
        let backlog = self.tat_ns.saturating_sub(now_ns).div_ceil(emission_ns);
        u32::try_from(u64::from(burst).saturating_sub(backlog)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 60_000_000; // 1000 per minute
    const BURST: u64 = 5;

    #[test]
    fn burst_then_refill_on_engine_time() {
        let mut throttle = Throttle::default();
        let tolerance = T * (BURST - 1);
        let t0 = 1_700_000_000_000_000_000;
        for _ in 0..BURST {
            assert_eq!(throttle.check(t0, T, tolerance), Ok(()));
            throttle.consume(t0, T);
        }
        assert_eq!(throttle.available(t0, T, BURST as u32), 0);
        // The sixth order must wait exactly one emission interval.
        assert_eq!(throttle.check(t0, T, tolerance), Err(T));
        assert_eq!(throttle.check(t0 + T - 1, T, tolerance), Err(1));
        assert_eq!(throttle.check(t0 + T, T, tolerance), Ok(()));
        throttle.consume(t0 + T, T);
        assert!(throttle.check(t0 + T, T, tolerance).is_err());
        // After an idle period the full burst is back.
        let later = t0 + 10 * T * BURST;
        assert_eq!(throttle.available(later, T, BURST as u32), BURST as u32);
    }

    #[test]
    fn unthrottled_and_time_going_back() {
        let mut throttle = Throttle::default();
        for _ in 0..100 {
            assert_eq!(throttle.check(5, 0, 0), Ok(()));
            throttle.consume(5, 0);
        }
        assert_eq!(throttle.tat_ns, 0);
        throttle.consume(1_000, T);
        // An earlier timestamp does not refill anything.
        assert_eq!(throttle.check(10, T, 0), Err(1_000 + T - 10));
    }
}
