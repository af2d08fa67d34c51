//! Venue text to numbers: decimal strings to fixed point, integer and timestamp fields.
//! Nothing here allocates.

use aaiti_model::{Scale, UnixNanos, fixed::parse_fixed};

use crate::error::RejectReason;

/// Latest timestamp accepted: 2200-01-01T00:00:00Z. Anything later is a corrupted field.
pub(crate) const MAX_TIMESTAMP_NS: u64 = 7_258_118_400_000_000_000;

/// A price: a plain decimal, strictly positive, exact at `scale`.
#[inline]
pub(crate) fn price(text: &[u8], scale: Scale) -> Result<i64, RejectReason> {
    match parse_fixed(text, scale) {
        Ok(value) if value > 0 => Ok(value),
        Ok(_) => Err(RejectReason::InvalidPrice),
        Err(error) => Err(RejectReason::from_fixed(&error)),
    }
}

/// A quantity: a plain decimal, zero or positive, exact at `scale`.
#[inline]
pub(crate) fn qty(text: &[u8], scale: Scale) -> Result<i64, RejectReason> {
    match parse_fixed(text, scale) {
        Ok(value) if value >= 0 => Ok(value),
        Ok(_) => Err(RejectReason::InvalidQuantity),
        Err(error) => Err(RejectReason::from_fixed(&error)),
    }
}

/// A trade quantity: strictly positive.
#[inline]
pub(crate) fn trade_qty(text: &[u8], scale: Scale) -> Result<i64, RejectReason> {
    match qty(text, scale) {
        Ok(0) => Err(RejectReason::InvalidQuantity),
        other => other,
    }
}

/// Milliseconds since the epoch (Binance `E`) to a timestamp.
#[inline]
pub(crate) fn millis(ms: u64) -> Result<UnixNanos, RejectReason> {
    match ms.checked_mul(1_000_000) {
        Some(ns) if ns <= MAX_TIMESTAMP_NS => Ok(UnixNanos(ns)),
        _ => Err(RejectReason::BadTimestamp),
    }
}

/// Seconds since the epoch with a fraction, as Kraken v1 and the capture files write them
/// (`"1618678133.365913"`), exactly to nanoseconds.
pub(crate) fn unix_seconds(text: &[u8]) -> Result<UnixNanos, RejectReason> {
    let Ok(nanos) = Scale::new(9) else {
        return Err(RejectReason::BadTimestamp);
    };
    match parse_fixed(text, nanos) {
        Ok(ns) if ns >= 0 && (ns as u64) <= MAX_TIMESTAMP_NS => Ok(UnixNanos(ns as u64)),
        _ => Err(RejectReason::BadTimestamp),
    }
}

/// An unsigned decimal integer without sign, spaces or leading `+` (at most 20 digits).
pub(crate) fn unsigned(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in text {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

fn digits(text: &[u8], at: usize, count: usize) -> Option<u32> {
    let mut value = 0u32;
    for &b in text.get(at..at + count)? {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u32::from(digit);
    }
    Some(value)
}

/// An RFC 3339 / ISO 8601 UTC timestamp as Coinbase and Kraken v2 send them:
/// `YYYY-MM-DDTHH:MM:SS[.fraction up to 9 digits][Z | ±HH:MM]` (no designator means UTC).
pub(crate) fn iso8601(text: &[u8]) -> Result<UnixNanos, RejectReason> {
    iso8601_inner(text).ok_or(RejectReason::BadTimestamp)
}

fn iso8601_inner(text: &[u8]) -> Option<UnixNanos> {
    let year = digits(text, 0, 4)?;
    let month = digits(text, 5, 2)?;
    let day = digits(text, 8, 2)?;
    let hour = digits(text, 11, 2)?;
    let minute = digits(text, 14, 2)?;
    let second = digits(text, 17, 2)?;
    if text.get(4) != Some(&b'-')
        || text.get(7) != Some(&b'-')
        || !matches!(text.get(10), Some(b'T' | b't' | b' '))
        || text.get(13) != Some(&b':')
        || text.get(16) != Some(&b':')
    {
        return None;
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if text.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(&b) = text.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(b - b'0');
            } else if b != b'0' {
                // Finer than a nanosecond: not representable without rounding.
                return None;
            }
            i += 1;
        }
        let count = i - start;
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset_s: i64 = match text.get(i..)? {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = i64::from(digits(&[*h1, *h2], 0, 2)?);
            let mm = i64::from(digits(&[*m1, *m2], 0, 2)?);
            if hh > 23 || mm > 59 {
                return None;
            }
            let offset = hh * 3600 + mm * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = aaiti_model::time::days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_s;
    let ns = u64::try_from(seconds)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)?;
    (ns <= MAX_TIMESTAMP_NS).then_some(UnixNanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso8601() {
        assert_eq!(
            iso8601(b"2021-04-17T16:43:37.075351Z"),
            Ok(UnixNanos(1_618_677_817_075_351_000))
        );
        assert_eq!(
            iso8601(b"2023-02-09T20:32:50.714964855Z"),
            Ok(UnixNanos(1_675_974_770_714_964_855))
        );
        assert_eq!(iso8601(b"1970-01-01T00:00:00Z"), Ok(UnixNanos(0)));
        assert_eq!(
            iso8601(b"2024-02-29T00:00:00"),
            Ok(UnixNanos(1_709_164_800_000_000_000))
        );
        assert_eq!(
            iso8601(b"2021-04-17T18:43:37+02:00"),
            Ok(UnixNanos(1_618_677_817_000_000_000))
        );
        for bad in [
            &b"2021-04-17"[..],
            b"2021-02-30T00:00:00Z",
            b"2021-04-17T16:43:37.Z",
            b"2021-04-17T24:00:00Z",
            b"2021-04-17T16:43:37.0000000001Z",
            b"2021-04-17T16:43:37ZZ",
            b"1969-12-31T23:59:59Z",
            b"9999-12-31T23:59:59Z",
        ] {
            assert_eq!(iso8601(bad), Err(RejectReason::BadTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn parses_seconds_and_integers() {
        assert_eq!(
            unix_seconds(b"1618678133.365913"),
            Ok(UnixNanos(1_618_678_133_365_913_000))
        );
        assert_eq!(
            unix_seconds(b"1618678133"),
            Ok(UnixNanos(1_618_678_133_000_000_000))
        );
        assert_eq!(unix_seconds(b"-1"), Err(RejectReason::BadTimestamp));
        assert_eq!(unix_seconds(b"1e9"), Err(RejectReason::BadTimestamp));
        assert_eq!(unsigned(b"2583817756"), Some(2_583_817_756));
        assert_eq!(unsigned(b"18446744073709551616"), None);
        assert_eq!(unsigned(b"+1"), None);
        assert_eq!(
            millis(1_723_161_255_208),
            Ok(UnixNanos(1_723_161_255_208_000_000))
        );
        assert_eq!(millis(u64::MAX / 1000), Err(RejectReason::BadTimestamp));
    }

    #[test]
    fn prices_and_quantities() {
        let s2 = Scale::new(2).unwrap();
        assert_eq!(price(b"61737.63000000", s2), Ok(6_173_763));
        assert_eq!(price(b"0", s2), Err(RejectReason::InvalidPrice));
        assert_eq!(price(b"1e5", s2), Err(RejectReason::BadNumber));
        assert_eq!(price(b"1.001", s2), Err(RejectReason::TooManyDecimals));
        assert_eq!(
            price(b"999999999999999999", s2),
            Err(RejectReason::NumberOutOfRange)
        );
        assert_eq!(qty(b"0.00", s2), Ok(0));
        assert_eq!(qty(b"-1", s2), Err(RejectReason::InvalidQuantity));
        assert_eq!(trade_qty(b"0", s2), Err(RejectReason::InvalidQuantity));
    }
}
