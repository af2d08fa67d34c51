//! Time as nanoseconds since the Unix epoch.

use bytemuck::{Pod, Zeroable};

/// Nanoseconds since 1970-01-01T00:00:00Z (UTC), as a plain `u64`.
///
/// `u64` nanoseconds reach the year 2554. The engine never reads the wall clock on its hot
/// path; it takes time from event timestamps, so this type has no `now()` of its own: I/O
/// threads stamp `ts_recv` through [`UnixNanos::from_system_time`].
#[repr(transparent)]
#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Pod,
    Zeroable,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// The epoch itself; also "no timestamp".
    pub const ZERO: Self = Self(0);

    /// Nanoseconds between `earlier` and `self`, or 0 if `earlier` is later.
    pub const fn saturating_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Converts a `SystemTime` (saturating before the epoch and after year 2554).
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(elapsed) => Self(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)),
            Err(_) => Self::ZERO,
        }
    }

    /// Builds a timestamp from whole milliseconds (venues such as Binance send these).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// Builds a timestamp from whole microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros.saturating_mul(1_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate() {
        assert_eq!(
            UnixNanos::from_millis(1_723_161_253_000).0,
            1_723_161_253_000_000_000
        );
        assert_eq!(UnixNanos::from_millis(u64::MAX).0, u64::MAX);
        assert_eq!(UnixNanos(5).saturating_since(UnixNanos(9)), 0);
        assert_eq!(UnixNanos(9).saturating_since(UnixNanos(5)), 4);
        let before_epoch = std::time::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(UnixNanos::from_system_time(before_epoch), UnixNanos::ZERO);
    }
}
