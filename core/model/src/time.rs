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

/// Days from 1970-01-01 to the civil date `(year, month, day)` (proleptic Gregorian;
/// Howard Hinnant's `days_from_civil`). Negative before 1970.
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01 (the inverse of
/// [`days_from_civil`]).
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + (month <= 2) as i64;
    (year, month, day)
}

#[cfg(test)]
mod civil_tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
