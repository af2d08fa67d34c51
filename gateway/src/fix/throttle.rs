//! Per-session message throttle.
//!
//! A token bucket: the bucket holds up to `burst` tokens and refills at `per_minute` tokens
//! per minute; each inbound application message takes one token, and a message that finds
//! the bucket empty is throttled (the session answers it with a BusinessMessageReject and
//! keeps the session up). Time is passed in, so the bucket is deterministic under test.
//!
//! The arithmetic is exact integer arithmetic: the level is kept in "token-nanoseconds",
//! where one token is worth 60 000 000 000 units (one minute of nanoseconds) and every
//! elapsed nanosecond adds `per_minute` units. No rounding drift, no floats.

use aaiti_model::UnixNanos;

/// Units of one token: one minute in nanoseconds.
const TOKEN: u128 = 60_000_000_000;

/// A token bucket (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub struct Throttle {
    per_minute: u32,
    /// Most units the bucket holds (`burst` tokens).
    capacity: u128,
    /// Units in the bucket at `last`.
    level: u128,
    /// When `level` was last brought up to date.
    last: UnixNanos,
}

impl Throttle {
    /// A full bucket of `burst` tokens refilling at `per_minute` tokens per minute.
    /// `per_minute == 0` disables the throttle (every message passes); a `burst` of 0 is
    /// taken as 1 so that an enabled throttle can pass anything at all.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let capacity = u128::from(burst.max(1)) * TOKEN;
        Self {
            per_minute,
            capacity,
            level: capacity,
            last: UnixNanos::ZERO,
        }
    }

    /// Messages per minute allowed (0: unlimited).
    pub const fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one token at `now`: `true` if the message may pass. Time going backwards
    /// (a wall clock stepped back) adds nothing rather than failing.
    pub fn try_acquire(&mut self, now: UnixNanos) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let elapsed = u128::from(now.saturating_since(self.last));
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(u128::from(self.per_minute)))
            .min(self.capacity);
        if now > self.last {
            self.last = now;
        }
        if self.level >= TOKEN {
            self.level -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn burst_then_steady_rate() {
        let mut throttle = Throttle::new(60, 3);
        let start = UnixNanos(1_000 * SECOND);
        assert!(throttle.try_acquire(start));
        assert!(throttle.try_acquire(start));
        assert!(throttle.try_acquire(start));
        assert!(!throttle.try_acquire(start), "burst of 3 spent");
        // 60 per minute: one token per second.
        assert!(!throttle.try_acquire(UnixNanos(start.0 + SECOND - 1)));
        assert!(throttle.try_acquire(UnixNanos(start.0 + SECOND)));
        assert!(!throttle.try_acquire(UnixNanos(start.0 + SECOND)));
        // A long pause refills only up to the burst.
        let later = UnixNanos(start.0 + 3_600 * SECOND);
        for _ in 0..3 {
            assert!(throttle.try_acquire(later));
        }
        assert!(!throttle.try_acquire(later));
    }

    #[test]
    fn fractional_refill_is_exact() {
        // 1000 per minute: one token every 60 ms.
        let mut throttle = Throttle::new(1_000, 1);
        let start = UnixNanos(5 * SECOND);
        assert!(throttle.try_acquire(start));
        let mut passed = 0;
        for step in 1..=1_000_u64 {
            if throttle.try_acquire(UnixNanos(start.0 + step * 6_000_000)) {
                passed += 1;
            }
        }
        // 6 s at 1000/min = 100 tokens.
        assert_eq!(passed, 100);
    }

    #[test]
    fn disabled_and_backwards_clock() {
        let mut off = Throttle::new(0, 0);
        for _ in 0..10_000 {
            assert!(off.try_acquire(UnixNanos(1)));
        }
        let mut throttle = Throttle::new(60, 1);
        assert!(throttle.try_acquire(UnixNanos(100 * SECOND)));
        assert!(!throttle.try_acquire(UnixNanos(50 * SECOND)));
        assert!(throttle.try_acquire(UnixNanos(101 * SECOND)));
    }
}
