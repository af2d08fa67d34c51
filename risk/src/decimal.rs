//! Exact decimal text <-> `i128` mantissa conversions for configuration values and reports.
//!
//! The model crate parses into `i64` mantissas; money and valuation amounts here are `i128`
//! (balances at up to 18 decimal places overflow an `i64` above ~9.2 units), so this module
//! parses the same strict grammar (`[-]digits[.digits]`, no exponent, no rounding) into an
//! `i128`. It is used at start-up and for admin reports only, never on the hot path.

use aaiti_model::FixedError;

/// Longest accepted text, in bytes (bounds the work like the model's parser does).
const MAX_LEN: usize = 64;

/// `10^n` as `i128`, or `None` above `10^38`.
pub(crate) const fn pow10(n: u32) -> Option<i128> {
    if n > 38 {
        return None;
    }
    let mut value = 1i128;
    let mut i = 0;
    while i < n {
        value *= 10;
        i += 1;
    }
    Some(value)
}

/// Parses `text` into its mantissa at `places` decimal places, exactly.
///
/// Digits beyond `places` are accepted only when they are zeros.
pub(crate) fn parse_i128(text: &str, places: u32) -> Result<i128, FixedError> {
    let bytes = text.as_bytes();
    let overflow = FixedError::Overflow {
        places: places.min(u32::from(u8::MAX)) as u8,
    };
    if bytes.is_empty() {
        return Err(FixedError::Empty);
    }
    if bytes.len() > MAX_LEN {
        return Err(FixedError::TooLong {
            len: bytes.len(),
            max: MAX_LEN,
        });
    }
    let negative = bytes[0] == b'-';
    let start = usize::from(negative);
    let mut pos = start;
    let mut mantissa: i128 = 0;
    let push = |m: i128, digit: u8| -> Option<i128> {
        m.checked_mul(10)?.checked_add(i128::from(digit - b'0'))
    };
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        mantissa = push(mantissa, bytes[pos]).ok_or_else(|| overflow.clone())?;
        pos += 1;
    }
    if pos == start {
        return Err(match bytes.get(pos) {
            Some(&byte) => FixedError::InvalidChar { pos, byte },
            None => FixedError::UnexpectedEnd { pos },
        });
    }
    let mut kept = 0u32;
    if let Some(&byte) = bytes.get(pos) {
        if byte != b'.' {
            return Err(FixedError::InvalidChar { pos, byte });
        }
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() {
            let byte = bytes[pos];
            if !byte.is_ascii_digit() {
                return Err(FixedError::InvalidChar { pos, byte });
            }
            if kept < places {
                mantissa = push(mantissa, byte).ok_or_else(|| overflow.clone())?;
                kept += 1;
            } else if byte != b'0' {
                return Err(FixedError::TooManyDecimals {
                    places: places.min(u32::from(u8::MAX)) as u8,
                });
            }
            pos += 1;
        }
        if pos == frac_start {
            return Err(FixedError::UnexpectedEnd { pos });
        }
    }
    let factor = pow10(places - kept).ok_or_else(|| overflow.clone())?;
    let mantissa = mantissa.checked_mul(factor).ok_or(overflow)?;
    Ok(if negative { -mantissa } else { mantissa })
}

/// The exact decimal text of `mantissa` at `places` decimal places (trailing zeros of the
/// fraction trimmed, at least one digit before the point).
pub(crate) fn format_i128(mantissa: i128, places: u32) -> String {
    let digits = mantissa.unsigned_abs().to_string();
    let places = places as usize;
    let (int, frac) = if digits.len() > places {
        let (int, frac) = digits.split_at(digits.len() - places);
        (int.to_owned(), frac.to_owned())
    } else {
        ("0".to_owned(), format!("{digits:0>places$}"))
    };
    let frac = frac.trim_end_matches('0');
    let sign = if mantissa < 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_i128("100000", 12), Ok(100_000_000_000_000_000));
        assert_eq!(parse_i128("0.5", 1), Ok(5));
        assert_eq!(parse_i128("-1.250", 2), Ok(-125));
        assert_eq!(parse_i128("7", 0), Ok(7));
        assert_eq!(
            parse_i128("0.001", 2),
            Err(FixedError::TooManyDecimals { places: 2 })
        );
        assert_eq!(
            parse_i128("1e5", 2),
            Err(FixedError::InvalidChar { pos: 1, byte: b'e' })
        );
        assert_eq!(parse_i128("", 2), Err(FixedError::Empty));
        assert_eq!(
            parse_i128("5.", 2),
            Err(FixedError::UnexpectedEnd { pos: 2 })
        );
        assert_eq!(
            parse_i128("-", 2),
            Err(FixedError::UnexpectedEnd { pos: 1 })
        );
        assert_eq!(
            parse_i128(".5", 2),
            Err(FixedError::InvalidChar { pos: 0, byte: b'.' })
        );
        assert!(matches!(
            parse_i128("1000000000000000000000000000000", 18),
            Err(FixedError::Overflow { .. })
        ));
    }

    #[test]
    fn formats_round_trip() {
        for (m, p, text) in [
            (0i128, 2u32, "0"),
            (125, 2, "1.25"),
            (-5, 3, "-0.005"),
            (100_000_000, 8, "1"),
            (123, 0, "123"),
        ] {
            assert_eq!(format_i128(m, p), text);
            assert_eq!(parse_i128(text, p), Ok(m));
        }
    }
}
