//! RFC 3339 (UTC) formatting and parsing of nanosecond timestamps, without a date crate.

use std::fmt::Write as _;

use aaiti_model::time::{civil_from_days, days_from_civil};

/// `ns` since the epoch as RFC 3339 UTC with nine fraction digits,
/// e.g. `2024-08-09T00:34:13.000000123Z`.
pub fn format_rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = ns % 1_000_000_000;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = String::with_capacity(30);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out
}

/// Parses a time given on the command line: a whole number of nanoseconds since the epoch,
/// or RFC 3339 (`2024-08-09T00:34:13Z`, `2024-08-09T00:34:13.5+02:00`; a space may replace
/// the `T`; up to nine fraction digits).
///
/// # Errors
///
/// A message naming what is wrong, for the usage error.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map_err(|e| format!("{text:?}: not a valid nanosecond timestamp: {e}"));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{text:?}: expected RFC 3339 (e.g. 2024-08-09T00:34:13.25Z) or nanoseconds since \
             the epoch"
        )
    })
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(num(0..4)?);
    let month = num(5..7)?;
    let day = num(8..10)?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let digits = &b[start..at];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        for (i, d) in digits.iter().enumerate() {
            nanos += u64::from(d - b'0') * 10u64.pow(8 - i as u32);
        }
    }
    let offset_secs: i64 = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// A duration in nanoseconds as short human text: `850ns`, `12.345us`, `3.200ms`, `1.500s`.
pub(crate) fn format_duration_ns(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    if abs < 1_000 {
        format!("{sign}{abs}ns")
    } else if abs < 1_000_000 {
        format!("{sign}{:.3}us", abs as f64 / 1e3)
    } else if abs < 1_000_000_000 {
        format!("{sign}{:.3}ms", abs as f64 / 1e6)
    } else {
        format!("{sign}{:.3}s", abs as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_723_163_653_000_000_123),
            "2024-08-09T00:34:13.000000123Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        for ns in [
            0,
            1,
            951_782_400_000_000_000,
            1_723_163_653_000_000_123,
            4_102_444_799_999_999_999,
        ] {
            assert_eq!(parse_time(&format_rfc3339(ns)), Ok(ns));
        }
        assert_eq!(
            parse_time("2024-08-09T02:34:13.5+02:00"),
            Ok(1_723_163_653_500_000_000)
        );
        assert_eq!(
            parse_time("2024-08-09 00:34:13Z"),
            Ok(1_723_163_653_000_000_000)
        );
        assert_eq!(
            parse_time("1723163653000000123"),
            Ok(1_723_163_653_000_000_123)
        );
        for bad in [
            "",
            "yesterday",
            "2024-02-30T00:00:00Z",
            "2024-08-09T00:34:13",
            "2024-08-09T00:34:13.1234567890Z",
            "-5",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration_ns(850), "850ns");
        assert_eq!(format_duration_ns(12_345), "12.345us");
        assert_eq!(format_duration_ns(-3_200_000), "-3.200ms");
        assert_eq!(format_duration_ns(1_500_000_000), "1.500s");
    }
}
