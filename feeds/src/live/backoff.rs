//! Reconnect delays: exponential backoff with deterministic jitter.

/// Backoff settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry (milliseconds).
    pub initial_ms: u64,
    /// Upper bound of the delay (milliseconds).
    pub max_ms: u64,
    /// Up to this percentage of each delay is subtracted at random (0..=100), so that many
    /// clients cut off together do not come back together.
    pub jitter_pct: u8,
    /// Seed of the jitter's xorshift generator (0 is replaced by a fixed non-zero seed), so
    /// that a run can be repeated exactly.
    pub seed: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_ms: 100,
            max_ms: 30_000,
            jitter_pct: 20,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// Exponential backoff: `initial`, `2 x initial`, `4 x initial`... capped at `max`, each
/// minus up to `jitter_pct` percent.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// A backoff at its first delay.
    pub fn new(config: BackoffConfig) -> Self {
        let state = if config.seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            config.seed
        };
        Self {
            config,
            attempt: 0,
            state,
        }
    }

    /// The next delay in nanoseconds; each call doubles the base delay up to the cap.
    pub fn next_delay_ns(&mut self) -> u64 {
        let base_ms = self
            .config
            .initial_ms
            .saturating_mul(1u64 << self.attempt.min(32))
            .min(self.config.max_ms.max(self.config.initial_ms));
        self.attempt = self.attempt.saturating_add(1);
        let base_ns = base_ms.saturating_mul(1_000_000);
        let jitter_span = base_ns / 100 * u64::from(self.config.jitter_pct.min(100));
        let jitter = if jitter_span == 0 {
            0
        } else {
            self.next_random() % (jitter_span + 1)
        };
        base_ns - jitter
    }

    /// Back to the first delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Delays handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// xorshift64* (Vigna): fast, deterministic, good enough for jitter.
    fn next_random(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_deterministically() {
        let config = BackoffConfig {
            initial_ms: 100,
            max_ms: 1_000,
            jitter_pct: 20,
            seed: 7,
        };
        let mut a = Backoff::new(config.clone());
        let mut b = Backoff::new(config);
        let delays: Vec<u64> = (0..8).map(|_| a.next_delay_ns()).collect();
        let again: Vec<u64> = (0..8).map(|_| b.next_delay_ns()).collect();
        assert_eq!(delays, again);
        for (i, &d) in delays.iter().enumerate() {
            let base = (100u64 << i).min(1_000) * 1_000_000;
            assert!(d <= base && d >= base - base / 5, "{i}: {d} vs {base}");
        }
        a.reset();
        assert!(a.next_delay_ns() <= 100_000_000);
    }

    #[test]
    fn no_jitter_and_huge_attempts() {
        let mut b = Backoff::new(BackoffConfig {
            initial_ms: 5,
            max_ms: 1,
            jitter_pct: 0,
            seed: 0,
        });
        for _ in 0..100 {
            assert_eq!(b.next_delay_ns(), 5_000_000);
        }
    }
}
