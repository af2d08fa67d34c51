//! Fixed-point prices and quantities.
//!
//! # Representation
//!
//! A [`Price`] or a [`Qty`] is an `i64` *mantissa*; the number it stands for is
//! `mantissa / 10^places`, where the number of decimal places comes from a [`Scale`]
//! (`0..=18`) that belongs to the instrument, not to the value. The scale is therefore
//! passed explicitly wherever text or [`rust_decimal::Decimal`] values are converted:
//!
//! | text               | scale | mantissa          |
//! |--------------------|-------|-------------------|
//! | `"61737.63000000"` | 8     | `6_173_763_000_000` |
//! | `"0.00241"`        | 5     | `241`             |
//! | `"-1.5"`           | 1     | `-15`             |
//!
//! Both newtypes are `#[repr(transparent)]` and [`bytemuck::Pod`], so they can sit in the
//! journal's and the rings' plain-old-data records. No floating point is used anywhere:
//! parsing, formatting, rescaling and notional computations are exact integer arithmetic
//! that either give the exact answer or a [`FixedError`] — they never round.
//!
//! # Accepted text
//!
//! [`parse_fixed`] (and [`Price::parse`] / [`Qty::parse`]) accept exactly the strict grammar
//! used by exchange feeds:
//!
//! ```text
//! number   = [ "-" ] digits [ "." digits ]
//! digits   = DIGIT { DIGIT }          ; ASCII '0'..='9'
//! ```
//!
//! * Leading zeros in the integer part are fine (`"00012.5"`); `"-0"` is zero.
//! * Everything else is rejected: the empty string, `+`, whitespace, exponents (`"1e-8"`),
//!   `".5"`, `"5."`, `"1.2.3"`, `"--1"`, a lone `"-"`, any non-ASCII byte.
//! * Fraction digits beyond the scale are accepted only when they are all `0`
//!   (`"61737.63000000"` at scale 2 is `6_173_763`); a non-zero digit there is
//!   [`FixedError::TooManyDecimals`] — values are never rounded.
//! * The value must fit an `i64` mantissa at the scale, else [`FixedError::Overflow`].
//!   `"-9223372036854775808"` at scale 0 is accepted as `i64::MIN`.
//! * Inputs longer than [`MAX_TEXT_LEN`] (64) bytes are rejected with
//!   [`FixedError::TooLong`] before anything else is looked at, which bounds the work.
//!
//! When a text is wrong in several ways, the error reported is decided in this order:
//! empty / too long, then the first grammar error from the left (an [`InvalidChar`] or
//! [`UnexpectedEnd`] with its byte position), then [`TooManyDecimals`], then [`Overflow`].
//!
//! # Implementation
//!
//! [`parse_fixed`] works on little-endian `u64` words of eight text bytes (SWAR, "SIMD within
//! a register", in safe code and without allocating): eight bytes are checked for "is an
//! ASCII digit" with three bit operations, the `.` or the end of the text is found with
//! `trailing_zeros`, and up to eight digits are turned into their value with three
//! multiplications. It has three tiers:
//!
//! 1. texts of at most 16 bytes with at most 7 integer digits and at most 8 fraction digits
//!    (the shape of nearly every price and quantity on the wire) are handled with two
//!    overlapping word loads and no loop;
//! 2. other texts are scanned eight bytes at a time;
//! 3. anything the first two do not accept — every invalid text, and rare valid ones such as
//!    more than 19 integer digits with leading zeros — goes to `parse_fixed_reference`, the
//!    straightforward byte-by-byte parser that defines the accepted language and the exact
//!    error values. The fast tiers only ever return a value the reference parser agrees with,
//!    so the results are identical; the unit, property and fuzz tests check this.
//!
//! [`InvalidChar`]: FixedError::InvalidChar
//! [`UnexpectedEnd`]: FixedError::UnexpectedEnd
//! [`TooManyDecimals`]: FixedError::TooManyDecimals
//! [`Overflow`]: FixedError::Overflow

use core::fmt;

use bytemuck::{Pod, Zeroable};
use rust_decimal::Decimal;

/// Longest text [`parse_fixed`] accepts, in bytes; longer inputs are [`FixedError::TooLong`].
///
/// The longest canonical text of an `i64` mantissa is 21 bytes
/// (`"-9.223372036854775808"`), so this leaves plenty of room for padding zeros.
pub const MAX_TEXT_LEN: usize = 64;

/// Size of the buffer [`write_fixed`], [`Price::write_ascii`] and [`Qty::write_ascii`] write
/// into. The longest text they produce is 21 bytes.
pub const ASCII_BUF_LEN: usize = 32;

/// `10^n` for `n` in `0..=19` (all fit a `u64`).
const POW10: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `10^n` for `n` in `0..=19`, without a bounds check: the table is padded to 32 entries and
/// the index masked (callers never pass more than 19; the padding entries are 0).
#[inline(always)]
const fn pow10(n: usize) -> u64 {
    const PADDED: [u64; 32] = {
        let mut table = [0u64; 32];
        let mut i = 0;
        while i < POW10.len() {
            table[i] = POW10[i];
            i += 1;
        }
        table
    };
    PADDED[n & 31]
}

/// `10^n` as `i128`; `n` must be at most 38.
const fn pow10_i128(n: u32) -> i128 {
    let mut value = 1i128;
    let mut i = 0;
    while i < n {
        value *= 10;
        i += 1;
    }
    value
}

/// Number of decimal places of a fixed-point value, `0..=18`.
///
/// The scale is a property of the instrument (its tick size or lot size precision) and is
/// passed explicitly to every conversion; the mantissa does not carry it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scale(u8);

impl Scale {
    /// Largest supported number of decimal places (10^18 still fits an `i64`).
    pub const MAX_PLACES: u8 = 18;

    /// A scale of `places` decimal places.
    ///
    /// # Errors
    ///
    /// [`FixedError::ScaleOutOfRange`] if `places` exceeds [`Scale::MAX_PLACES`].
    pub const fn new(places: u8) -> Result<Self, FixedError> {
        if places > Self::MAX_PLACES {
            return Err(FixedError::ScaleOutOfRange { places });
        }
        Ok(Self(places))
    }

    /// Decimal places.
    pub const fn places(self) -> u8 {
        self.0
    }

    /// `10^places`: the mantissa of the value `1` at this scale.
    pub const fn factor(self) -> i64 {
        // At most 10^18, which is below i64::MAX.
        POW10[self.0 as usize] as i64
    }
}

/// Errors from fixed-point parsing and conversion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedError {
    /// Scale beyond [`Scale::MAX_PLACES`].
    #[error("scale of {places} decimal places is out of range (0..=18)")]
    ScaleOutOfRange {
        /// Requested places.
        places: u8,
    },
    /// The text is empty.
    #[error("empty number")]
    Empty,
    /// The text is longer than [`MAX_TEXT_LEN`] bytes.
    #[error("number text of {len} bytes is longer than the {max}-byte limit")]
    TooLong {
        /// Length of the rejected text, in bytes.
        len: usize,
        /// The limit ([`MAX_TEXT_LEN`]).
        max: usize,
    },
    /// A byte that the grammar does not allow at this position.
    #[error("invalid byte 0x{byte:02x} at position {pos} of number")]
    InvalidChar {
        /// Zero-based byte offset into the text.
        pos: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The text ends where a digit is required (`"-"`, `"5."`).
    #[error("number ends at position {pos} where a digit is required")]
    UnexpectedEnd {
        /// Zero-based byte offset of the missing digit (the text's length).
        pos: usize,
    },
    /// The value has a non-zero digit beyond the scale's decimal places; it would have to be
    /// rounded, which is never done.
    #[error("value has more significant decimals than the scale's {places} places")]
    TooManyDecimals {
        /// The target scale's decimal places.
        places: u8,
    },
    /// The value does not fit the integer type (an `i64` mantissa, or the `i128` notional)
    /// at the target scale.
    #[error("value does not fit the mantissa at {places} decimal places")]
    Overflow {
        /// The target scale's decimal places.
        places: u8,
    },
}

// ---------------------------------------------------------------------------------------
// Parsing: reference implementation
// ---------------------------------------------------------------------------------------

/// The straightforward byte-by-byte parser; it defines the accepted grammar and the exact
/// error returned for each input (see the [module documentation](self)).
///
/// [`parse_fixed`] must return exactly what this returns for every input; it exists for
/// differential tests and fuzzing and as the fallback of the fast path. Use [`parse_fixed`].
///
/// # Errors
///
/// As [`parse_fixed`].
#[doc(hidden)]
pub fn parse_fixed_reference(text: &[u8], scale: Scale) -> Result<i64, FixedError> {
    let len = text.len();
    if len == 0 {
        return Err(FixedError::Empty);
    }
    if len > MAX_TEXT_LEN {
        return Err(FixedError::TooLong {
            len,
            max: MAX_TEXT_LEN,
        });
    }
    let places = scale.places();

    let neg = text[0] == b'-';
    let int_start = usize::from(neg);
    let mut i = int_start;
    while i < len && text[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    if int_end == int_start {
        return Err(match text.get(i) {
            Some(&byte) => FixedError::InvalidChar { pos: i, byte },
            None => FixedError::UnexpectedEnd { pos: i },
        });
    }
    let mut frac: &[u8] = &[];
    if let Some(&byte) = text.get(i) {
        if byte != b'.' {
            return Err(FixedError::InvalidChar { pos: i, byte });
        }
        i += 1;
        let frac_start = i;
        while i < len && text[i].is_ascii_digit() {
            i += 1;
        }
        if let Some(&byte) = text.get(i) {
            return Err(FixedError::InvalidChar { pos: i, byte });
        }
        if i == frac_start {
            return Err(FixedError::UnexpectedEnd { pos: i });
        }
        frac = &text[frac_start..];
    }

    let kept = usize::from(places);
    if frac.len() > kept && frac[kept..].iter().any(|&b| b != b'0') {
        return Err(FixedError::TooManyDecimals { places });
    }

    let overflow = FixedError::Overflow { places };
    let mut mag: u64 = 0;
    let digits = text[int_start..int_end]
        .iter()
        .copied()
        .chain((0..kept).map(|k| frac.get(k).copied().unwrap_or(b'0')));
    for b in digits {
        mag = mag
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| overflow.clone())?;
    }
    if neg {
        if mag > 1u64 << 63 {
            return Err(overflow);
        }
        Ok(0u64.wrapping_sub(mag) as i64)
    } else {
        i64::try_from(mag).map_err(|_| overflow)
    }
}

// ---------------------------------------------------------------------------------------
// Parsing: SWAR fast path
// ---------------------------------------------------------------------------------------

/// `'0'` in every byte.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;
/// `0x76` in every byte: `0x76 + b` has bit 7 set iff `b >= 10` (for `b <= 0x89`).
const ADD_GE10: u64 = 0x7676_7676_7676_7676;
/// Bit 7 of every byte.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Up to seven bytes (the whole of a text shorter than 8 bytes) as a little-endian word with
/// zero bytes above the text, built from overlapping 4/2/1-byte loads.
#[inline(always)]
fn load_short(text: &[u8]) -> u64 {
    let len = text.len();
    if let (Some(lo), Some(hi)) = (text.first_chunk::<4>(), text.last_chunk::<4>()) {
        // len in 4..=7: the two loads overlap on identical bytes, so OR-ing is exact.
        u64::from(u32::from_le_bytes(*lo)) | (u64::from(u32::from_le_bytes(*hi)) << (8 * (len - 4)))
    } else if let (Some(lo), Some(hi)) = (text.first_chunk::<2>(), text.last_chunk::<2>()) {
        u64::from(u16::from_le_bytes(*lo)) | (u64::from(u16::from_le_bytes(*hi)) << (8 * (len - 2)))
    } else {
        text.first().map_or(0, |&b| u64::from(b))
    }
}

/// The eight bytes at `text[p..]` as a little-endian word; bytes past the end of the text
/// read as zero (which is not a digit, so digit runs stop at the end of the text).
#[inline(always)]
fn load_at(text: &[u8], p: usize) -> u64 {
    if let Some(chunk) = text.get(p..).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*chunk);
    }
    let len = text.len();
    match text.last_chunk::<8>() {
        // The window `text[len-8..len]` shifted so that byte `p` comes first.
        Some(tail) => u64::from_le_bytes(*tail)
            .checked_shr(8 * (p + 8 - len) as u32)
            .unwrap_or(0),
        None => load_short(text).checked_shr(8 * p as u32).unwrap_or(0),
    }
}

/// For `x = word ^ ASCII_ZEROS` (ASCII digits become `0..=9`): a mask with bit 7 set in the
/// *lowest* byte of `word` that is not an ASCII digit, and none below it; zero iff all eight
/// bytes are digits.
///
/// A byte of `x` that is `10..=0x7f` gets bit 7 from `+ 0x76`; one `>= 0x80` has it already.
/// Only such a byte (`>= 0x8a`) can carry into the byte above it and set a spurious bit there,
/// so bits above the lowest non-digit may be wrong, which is why callers only use
/// `trailing_zeros` and `== 0`.
#[inline(always)]
const fn non_digits(x: u64) -> u64 {
    (x.wrapping_add(ADD_GE10) | x) & HIGH_BITS
}

/// Value of the eight digits in `x` (digit values `0..=9` per byte, first digit in the lowest
/// byte): pairs of digits are combined with one multiply-shift, then the four pairs with two
/// independent multiplies whose sum, shifted down 32 bits, is the number.
#[inline(always)]
const fn eight_digits(x: u64) -> u64 {
    const PAIRS_02: u64 = 0x0000_00ff_0000_00ff;
    // 100 + 10^6·2^32 and 1 + 10^4·2^32.
    const MUL_02: u64 = 100 + (1_000_000 << 32);
    const MUL_13: u64 = 1 + (10_000 << 32);
    // Byte 2k now holds 10·d(2k) + d(2k+1).
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & PAIRS_02)
        .wrapping_mul(MUL_02)
        .wrapping_add(((x >> 16) & PAIRS_02).wrapping_mul(MUL_13)))
        >> 32
}

/// Value of the first `n` (`1..=8`) digits of `x` (as for [`eight_digits`]); the bytes above
/// them are shifted out and zeros (leading zero digits) shifted in.
#[inline(always)]
const fn first_digits(x: u64, n: usize) -> u64 {
    eight_digits(x << (8 * (8 - n)))
}

/// The SWAR parser for the common shape: at most 16 bytes, at most 7 integer digits
/// (counting a `-`), at most 8 fraction digits — `"61737.63000000"`, `"0.00241"`, `"12"`.
///
/// Two overlapping little-endian words cover the text: the first eight bytes hold the sign,
/// the integer digits and the `.`, the last eight bytes hold the whole fraction. One
/// non-digit test finds the `.` (or the end), one more checks the fraction, and each part is
/// converted with [`eight_digits`]. `None`: another shape (the caller tries [`parse_long`])
/// or an invalid text.
#[inline(always)]
fn parse_short(text: &[u8], scale: Scale) -> Option<i64> {
    let len = text.len();
    let (head, tail) = match (text.first_chunk::<8>(), text.last_chunk::<8>()) {
        (Some(head), Some(tail)) if len <= 16 => {
            (u64::from_le_bytes(*head), u64::from_le_bytes(*tail))
        }
        (None, None) if len > 0 => {
            let word = load_short(text);
            (word, word << (8 * (8 - len)))
        }
        _ => return None,
    };
    let places = usize::from(scale.places());
    if head as u8 == b'-' {
        parse_short_negative(head, tail, len, places)
    } else {
        parse_short_words::<false>(head, tail, len, places)
    }
}

/// [`parse_short_words`] for negative numbers, kept out of line.
#[inline(never)]
fn parse_short_negative(head: u64, tail: u64, len: usize, places: usize) -> Option<i64> {
    parse_short_words::<true>(head, tail, len, places)
}

/// The body of [`parse_short`]: `head` is the first eight bytes of the `len`-byte text
/// (zero bytes past its end), `tail` the last eight (zero bytes before its start);
/// `NEG` says the first byte is `-`, which is then read as a leading zero digit.
#[inline(always)]
fn parse_short_words<const NEG: bool>(
    head: u64,
    tail: u64,
    len: usize,
    places: usize,
) -> Option<i64> {
    let x = head ^ ASCII_ZEROS ^ if NEG { u64::from(b'-' ^ b'0') } else { 0 };
    let nd = non_digits(x);
    if nd == 0 {
        return None; // eight or more integer digits: parse_long
    }
    // The first non-digit: the '.', or the zero padding past the end of a short text.
    let dot = (nd.trailing_zeros() / 8) as usize;
    if dot <= usize::from(NEG) {
        return None; // no integer digit
    }
    let int = first_digits(x, dot);
    // The fraction's value and how many of the scale's places it fills.
    let (frac, frac_places) = if dot < len {
        let frac_len = len - dot - 1;
        if (x >> (8 * dot)) as u8 != (b'.' ^ b'0') || frac_len.wrapping_sub(1) >= 8 {
            return None; // not a '.', or no / more than 8 fraction digits
        }
        // The fraction is the top `frac_len` bytes of the tail; clear the bytes below it.
        let f = (tail ^ ASCII_ZEROS) & (u64::MAX << (8 * (8 - frac_len)));
        if non_digits(f) != 0 {
            return None;
        }
        if frac_len <= places {
            (eight_digits(f), frac_len)
        } else {
            // The last `drop` digits lie beyond the scale: they must all be zero.
            let drop = frac_len - places;
            if f >> (8 * (8 - drop)) != 0 {
                return None;
            }
            (
                eight_digits(f.checked_shl(8 * drop as u32).unwrap_or(0)),
                places,
            )
        }
    } else {
        (0, 0)
    };
    let missing = places - frac_places;
    // int < 10^dot, so below 10^18 (and in range) when dot + places <= 18.
    let mag = if dot + places <= 18 {
        int * pow10(places) + frac * pow10(missing)
    } else {
        let wide = u128::from(int) * u128::from(pow10(places)) + u128::from(frac * pow10(missing));
        if wide > i64::MAX as u128 + u128::from(NEG) {
            return None;
        }
        wide as u64
    };
    Some(if NEG {
        0u64.wrapping_sub(mag) as i64
    } else {
        mag as i64
    })
}

/// The SWAR parser for texts of any length, used for what [`parse_short`] does not take
/// (over 16 bytes, 8 or more integer digits, more than 8 fraction digits): digit runs are
/// scanned and converted eight bytes at a time. `None`: the caller then runs the reference
/// parser, which produces the error (or handles the rare valid input, such as more than 19
/// integer digits with leading zeros).
#[inline]
fn parse_long(text: &[u8], scale: Scale) -> Option<i64> {
    let len = text.len();
    if len > MAX_TEXT_LEN {
        return None;
    }
    let neg = *text.first()? == b'-';
    let mut p = usize::from(neg);

    // Integer part.
    let mut int: u64 = 0;
    let mut int_digits = 0usize;
    loop {
        let x = load_at(text, p) ^ ASCII_ZEROS;
        let nd = non_digits(x);
        let n = if nd == 0 {
            8
        } else {
            (nd.trailing_zeros() / 8) as usize
        };
        if n > 0 {
            int_digits += n;
            if int_digits > 19 {
                return None;
            }
            int = int * pow10(n) + first_digits(x, n);
            p += n;
        }
        if n < 8 || p == len {
            break;
        }
    }
    if int_digits == 0 {
        return None;
    }

    // Fraction: keep the first `places` digits; the others must be '0'.
    let mut frac: u64 = 0;
    let mut missing = usize::from(scale.places());
    if p < len {
        if text[p] != b'.' {
            return None;
        }
        p += 1;
        if p == len {
            return None;
        }
        while p < len {
            let x = load_at(text, p) ^ ASCII_ZEROS;
            let nd = non_digits(x);
            let n = if nd == 0 {
                8
            } else {
                (nd.trailing_zeros() / 8) as usize
            };
            // A non-digit inside the text (rather than the zero padding past its end).
            if n == 0 || (n < 8 && p + n < len) {
                return None;
            }
            let used = n.min(missing);
            if used > 0 {
                frac = frac * pow10(used) + first_digits(x, used);
                missing -= used;
            }
            if used < n {
                // Digits `used..n` of this window lie beyond the scale: all must be 0.
                let beyond = (x >> (8 * used)) & (u64::MAX >> (64 - 8 * (n - used)));
                if beyond != 0 {
                    return None;
                }
            }
            p += n;
        }
    }

    // int < 10^19 and places <= 18, so the product fits a u128.
    let mag = u128::from(int) * u128::from(pow10(usize::from(scale.places())))
        + u128::from(frac * pow10(missing));
    let limit = i64::MAX as u128 + u128::from(neg);
    if mag > limit {
        return None;
    }
    let mag = mag as u64;
    Some(if neg {
        0u64.wrapping_sub(mag) as i64
    } else {
        mag as i64
    })
}

#[cold]
#[inline(never)]
fn parse_slow(text: &[u8], scale: Scale) -> Result<i64, FixedError> {
    parse_fixed_reference(text, scale)
}

/// Parses an exchange decimal string into its mantissa at `scale`, exactly.
///
/// See the [module documentation](self) for the grammar. Examples:
///
/// ```
/// use aaiti_model::fixed::{parse_fixed, FixedError, Scale};
/// let s8 = Scale::new(8)?;
/// assert_eq!(parse_fixed(b"61737.63000000", s8), Ok(6_173_763_000_000));
/// assert_eq!(parse_fixed(b"61737.63000000", Scale::new(2)?), Ok(6_173_763));
/// assert_eq!(parse_fixed(b"0.00241", Scale::new(5)?), Ok(241));
/// assert_eq!(parse_fixed(b"-1.5", Scale::new(1)?), Ok(-15));
/// assert_eq!(
///     parse_fixed(b"0.00241", Scale::new(4)?),
///     Err(FixedError::TooManyDecimals { places: 4 })
/// );
/// assert_eq!(
///     parse_fixed(b"1e-8", s8),
///     Err(FixedError::InvalidChar { pos: 1, byte: b'e' })
/// );
/// # Ok::<(), FixedError>(())
/// ```
///
/// # Errors
///
/// [`FixedError::Empty`], [`FixedError::TooLong`], [`FixedError::InvalidChar`],
/// [`FixedError::UnexpectedEnd`], [`FixedError::TooManyDecimals`] or
/// [`FixedError::Overflow`], in that order of precedence.
#[inline]
pub fn parse_fixed(text: &[u8], scale: Scale) -> Result<i64, FixedError> {
    match parse_short(text, scale) {
        Some(mantissa) => Ok(mantissa),
        None => parse_other(text, scale),
    }
}

/// [`parse_fixed`] for everything [`parse_short`] does not take: long texts through
/// [`parse_long`], errors through the reference parser.
#[inline(never)]
fn parse_other(text: &[u8], scale: Scale) -> Result<i64, FixedError> {
    match parse_long(text, scale) {
        Some(mantissa) => Ok(mantissa),
        None => parse_slow(text, scale),
    }
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// `"00" "01" … "99"`.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes exactly `count` decimal digits of `value` (`value < 10^count`, leading zeros
/// included) ending just before `buf[end]`; returns the index of the first one.
#[inline]
fn write_fraction(
    buf: &mut [u8; ASCII_BUF_LEN],
    mut end: usize,
    mut value: u64,
    count: usize,
) -> usize {
    let stop = end - count;
    while end >= stop + 2 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        buf[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if end > stop {
        end -= 1;
        buf[end] = b'0' + value as u8;
    }
    end
}

/// Writes the decimal digits of `value` (at least one, no leading zeros) ending just
/// before `buf[end]`; returns the index of the first one.
#[inline]
fn write_integer(buf: &mut [u8; ASCII_BUF_LEN], mut end: usize, mut value: u64) -> usize {
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        buf[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if value >= 10 {
        let pair = value as usize * 2;
        buf[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        end - 2
    } else {
        buf[end - 1] = b'0' + value as u8;
        end - 1
    }
}

/// Writes the canonical text of `mantissa` at `scale` into the end of `buf` and returns it.
///
/// The text has exactly `scale.places()` decimals, no dot at scale 0, a `-` for negative
/// values (never for zero) and no allocation is made: `6_173_763_000_000` at scale 8 is
/// `"61737.63000000"`, `-15` at scale 1 is `"-1.5"`, `i64::MIN` at scale 0 is
/// `"-9223372036854775808"`. It is at most 21 bytes long and [`parse_fixed`] parses it back
/// to `mantissa`.
pub fn write_fixed(mantissa: i64, scale: Scale, buf: &mut [u8; ASCII_BUF_LEN]) -> &[u8] {
    let start = write_magnitude(mantissa.unsigned_abs(), scale, buf);
    if mantissa < 0 {
        let start = start - 1;
        buf[start] = b'-';
        &buf[start..]
    } else {
        &buf[start..]
    }
}

/// Writes the unsigned text of `mag` at `scale` at the end of `buf`; returns its start.
fn write_magnitude(mag: u64, scale: Scale, buf: &mut [u8; ASCII_BUF_LEN]) -> usize {
    let places = usize::from(scale.places());
    let end = ASCII_BUF_LEN;
    if places == 0 {
        return write_integer(buf, end, mag);
    }
    let factor = POW10[places];
    let dot = write_fraction(buf, end, mag % factor, places) - 1;
    buf[dot] = b'.';
    write_integer(buf, dot, mag / factor)
}

/// [`fmt::Display`] of a mantissa at a scale; made by [`Price::display`] and
/// [`Qty::display`].
///
/// Prints the same text as [`write_fixed`]. Width, fill, alignment, `+` and `0` flags are
/// honoured as for integers; precision is ignored (the scale decides the decimals).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FixedDisplay {
    mantissa: i64,
    scale: Scale,
}

impl FixedDisplay {
    /// Display of `mantissa` at `scale`.
    pub const fn new(mantissa: i64, scale: Scale) -> Self {
        Self { mantissa, scale }
    }
}

impl fmt::Display for FixedDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ASCII_BUF_LEN];
        let start = write_magnitude(self.mantissa.unsigned_abs(), self.scale, &mut buf);
        let digits = core::str::from_utf8(&buf[start..]).map_err(|_| fmt::Error)?;
        f.pad_integral(self.mantissa >= 0, "", digits)
    }
}

// ---------------------------------------------------------------------------------------
// Rescaling and notional
// ---------------------------------------------------------------------------------------

/// Converts a mantissa at scale `from` to the mantissa of the same value at scale `to`,
/// exactly.
///
/// ```
/// use aaiti_model::fixed::{rescale, FixedError, Scale};
/// let (s2, s8) = (Scale::new(2)?, Scale::new(8)?);
/// assert_eq!(rescale(6_173_763, s2, s8), Ok(6_173_763_000_000));
/// assert_eq!(rescale(6_173_763_000_000, s8, s2), Ok(6_173_763));
/// assert_eq!(rescale(6_173_763_000_001, s8, s2), Err(FixedError::TooManyDecimals { places: 2 }));
/// # Ok::<(), FixedError>(())
/// ```
///
/// # Errors
///
/// [`FixedError::TooManyDecimals`] if going to fewer places would drop a non-zero digit,
/// [`FixedError::Overflow`] if going to more places leaves the `i64` range.
pub const fn rescale(mantissa: i64, from: Scale, to: Scale) -> Result<i64, FixedError> {
    if to.0 >= from.0 {
        match mantissa.checked_mul(POW10[(to.0 - from.0) as usize] as i64) {
            Some(m) => Ok(m),
            None => Err(FixedError::Overflow { places: to.0 }),
        }
    } else {
        let divisor = POW10[(from.0 - to.0) as usize] as i64;
        if mantissa % divisor != 0 {
            return Err(FixedError::TooManyDecimals { places: to.0 });
        }
        Ok(mantissa / divisor)
    }
}

/// `price × qty` as the product of the mantissas, in an `i128`.
///
/// The result is a mantissa at `price_scale.places() + qty_scale.places()` decimal places
/// (up to 36, more than a [`Scale`] allows; see [`notional_at`] to bring it to a
/// [`Scale`]). It cannot overflow: `|i64::MIN|² = 2^126`.
///
/// ```
/// use aaiti_model::fixed::{notional, Price, Qty};
/// // 61737.63 (scale 2) × 0.5 (scale 1) = 30868.815 at scale 3.
/// assert_eq!(notional(Price(6_173_763), Qty(5)), 30_868_815);
/// ```
pub const fn notional(price: Price, qty: Qty) -> i128 {
    price.0 as i128 * qty.0 as i128
}

/// `price × qty` as an exact mantissa at `out_scale`, in an `i128`.
///
/// Computes [`notional`] (at `price_scale + qty_scale` places) and rescales it exactly to
/// `out_scale`; it never rounds or truncates.
///
/// ```
/// use aaiti_model::fixed::{notional_at, FixedError, Price, Qty, Scale};
/// let (s1, s2, s3) = (Scale::new(1)?, Scale::new(2)?, Scale::new(3)?);
/// // 61737.63 × 0.5 = 30868.815
/// assert_eq!(notional_at(Price(6_173_763), s2, Qty(5), s1, s3), Ok(30_868_815));
/// assert_eq!(
///     notional_at(Price(6_173_763), s2, Qty(5), s1, s2),
///     Err(FixedError::TooManyDecimals { places: 2 })
/// );
/// # Ok::<(), FixedError>(())
/// ```
///
/// # Errors
///
/// [`FixedError::TooManyDecimals`] if the exact product has a non-zero digit beyond
/// `out_scale`; [`FixedError::Overflow`] if it does not fit an `i128` at `out_scale`.
pub const fn notional_at(
    price: Price,
    price_scale: Scale,
    qty: Qty,
    qty_scale: Scale,
    out_scale: Scale,
) -> Result<i128, FixedError> {
    let product = notional(price, qty);
    let from = price_scale.0 as u32 + qty_scale.0 as u32;
    let to = out_scale.0 as u32;
    if to >= from {
        match product.checked_mul(pow10_i128(to - from)) {
            Some(n) => Ok(n),
            None => Err(FixedError::Overflow {
                places: out_scale.0,
            }),
        }
    } else {
        let divisor = pow10_i128(from - to);
        if product % divisor != 0 {
            return Err(FixedError::TooManyDecimals {
                places: out_scale.0,
            });
        }
        Ok(product / divisor)
    }
}

/// Mantissa of `value` at `scale`, exactly (the body of `Price::from_decimal`).
fn mantissa_from_decimal(value: Decimal, scale: Scale) -> Result<i64, FixedError> {
    let places = scale.places();
    let value = value.normalize();
    let value_places = value.scale();
    if value_places > u32::from(places) {
        return Err(FixedError::TooManyDecimals { places });
    }
    value
        .mantissa()
        .checked_mul(pow10_i128(u32::from(places) - value_places))
        .and_then(|m| i64::try_from(m).ok())
        .ok_or(FixedError::Overflow { places })
}

/// The exact [`Decimal`] of `mantissa` at `scale` (the body of `Price::to_decimal`).
const fn mantissa_to_decimal(mantissa: i64, scale: Scale) -> Decimal {
    let mag = mantissa.unsigned_abs();
    // Scale is at most 18 < Decimal::MAX_SCALE (28), and the magnitude fits 64 of the 96 bits.
    Decimal::from_parts(
        mag as u32,
        (mag >> 32) as u32,
        0,
        mantissa < 0,
        scale.0 as u32,
    )
}

// ---------------------------------------------------------------------------------------
// Price and Qty
// ---------------------------------------------------------------------------------------

/// A price: `i64` mantissa; the scale comes from the instrument.
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
pub struct Price(pub i64);

/// A quantity: `i64` mantissa; the scale comes from the instrument.
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
pub struct Qty(pub i64);

macro_rules! fixed_methods {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("The ", $what, " zero (mantissa 0 at any scale).")]
            pub const ZERO: Self = Self(0);

            #[doc = concat!("The ", $what, " with this raw mantissa.")]
            #[inline]
            pub const fn from_mantissa(mantissa: i64) -> Self {
                Self(mantissa)
            }

            /// The raw mantissa.
            #[inline]
            pub const fn mantissa(self) -> i64 {
                self.0
            }

            #[doc = concat!("Parses a ", $what, " from exchange text at `scale` (see [`parse_fixed`]).")]
            ///
            /// # Errors
            ///
            /// As [`parse_fixed`].
            #[inline]
            pub fn parse(text: &[u8], scale: Scale) -> Result<Self, FixedError> {
                parse_fixed(text, scale).map(Self)
            }

            #[doc = concat!("Parses a ", $what, " from a `&str` at `scale` (see [`parse_fixed`]).")]
            ///
            /// # Errors
            ///
            /// As [`parse_fixed`].
            #[inline]
            pub fn parse_str(text: &str, scale: Scale) -> Result<Self, FixedError> {
                Self::parse(text.as_bytes(), scale)
            }

            /// Sum, or `None` on `i64` overflow. Both operands must have the same scale.
            #[inline]
            #[must_use]
            pub const fn checked_add(self, rhs: Self) -> Option<Self> {
                match self.0.checked_add(rhs.0) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// Difference, or `None` on `i64` overflow. Both operands must have the same scale.
            #[inline]
            #[must_use]
            pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
                match self.0.checked_sub(rhs.0) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// `true` for zero.
            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            /// `true` for values above zero.
            #[inline]
            pub const fn is_positive(self) -> bool {
                self.0 > 0
            }

            /// The exact value as a [`Decimal`] with `scale` decimal places.
            #[inline]
            pub const fn to_decimal(self, scale: Scale) -> Decimal {
                mantissa_to_decimal(self.0, scale)
            }

            #[doc = concat!("The ", $what, " equal to `value` at `scale`, exactly.")]
            ///
            /// Trailing zeros of `value` do not matter (`1.500` at scale 1 is mantissa 15).
            ///
            /// # Errors
            ///
            /// [`FixedError::TooManyDecimals`] if `value` has a non-zero digit beyond
            /// `scale`, [`FixedError::Overflow`] if the mantissa does not fit an `i64`.
            #[inline]
            pub fn from_decimal(value: Decimal, scale: Scale) -> Result<Self, FixedError> {
                mantissa_from_decimal(value, scale).map(Self)
            }

            /// The exact text at `scale`, as a [`fmt::Display`] (see [`write_fixed`]).
            #[inline]
            pub const fn display(self, scale: Scale) -> FixedDisplay {
                FixedDisplay::new(self.0, scale)
            }

            /// Writes the exact text at `scale` into `buf` without allocating and returns it
            /// (the same text as [`display`](Self::display); see [`write_fixed`]).
            #[inline]
            pub fn write_ascii(self, scale: Scale, buf: &mut [u8; ASCII_BUF_LEN]) -> &[u8] {
                write_fixed(self.0, scale, buf)
            }
        }
    };
}

fixed_methods!(Price, "price");
fixed_methods!(Qty, "quantity");

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]
mod tests {
    use super::*;

    fn sc(places: u8) -> Scale {
        Scale::new(places).unwrap()
    }

    /// Parses with both parsers, checks they agree and returns the result.
    fn parse(text: &str, places: u8) -> Result<i64, FixedError> {
        let fast = parse_fixed(text.as_bytes(), sc(places));
        let reference = parse_fixed_reference(text.as_bytes(), sc(places));
        assert_eq!(
            fast, reference,
            "fast vs reference for {text:?} at scale {places}"
        );
        fast
    }

    fn show(mantissa: i64, places: u8) -> String {
        let text = Price(mantissa).display(sc(places)).to_string();
        let mut buf = [0u8; ASCII_BUF_LEN];
        assert_eq!(
            Price(mantissa).write_ascii(sc(places), &mut buf),
            text.as_bytes()
        );
        text
    }

    #[test]
    fn scale_range_and_factor() {
        assert_eq!(
            Scale::new(19),
            Err(FixedError::ScaleOutOfRange { places: 19 })
        );
        assert_eq!(
            Scale::new(255),
            Err(FixedError::ScaleOutOfRange { places: 255 })
        );
        assert_eq!(sc(0).factor(), 1);
        assert_eq!(sc(8).factor(), 100_000_000);
        assert_eq!(sc(18).factor(), 1_000_000_000_000_000_000);
        assert_eq!(sc(18).places(), 18);
    }

    #[test]
    fn brief_examples() {
        assert_eq!(parse("61737.63000000", 8), Ok(6_173_763_000_000));
        assert_eq!(parse("0.00241", 8), Ok(241_000));
        assert_eq!(parse("0.00241", 5), Ok(241));
        assert_eq!(
            parse("0.00241", 4),
            Err(FixedError::TooManyDecimals { places: 4 })
        );
        assert_eq!(
            parse("1e-8", 8),
            Err(FixedError::InvalidChar { pos: 1, byte: b'e' })
        );
        assert_eq!(parse("-1.5", 1), Ok(-15));
    }

    #[test]
    fn accepts_valid_forms() {
        assert_eq!(parse("0", 0), Ok(0));
        assert_eq!(parse("7", 3), Ok(7000));
        assert_eq!(parse("-0", 2), Ok(0));
        assert_eq!(parse("-0.000", 2), Ok(0));
        assert_eq!(parse("00012.5", 1), Ok(125));
        assert_eq!(parse("0000000000000000000000000000012.5", 1), Ok(125));
        assert_eq!(parse("12345678", 0), Ok(12_345_678));
        assert_eq!(parse("123456789", 0), Ok(123_456_789));
        assert_eq!(parse("1234567890123456", 2), Ok(123_456_789_012_345_600));
        assert_eq!(
            parse("0.123456789012345678", 18),
            Ok(123_456_789_012_345_678)
        );
        assert_eq!(parse("1.5", 18), Ok(1_500_000_000_000_000_000));
        assert_eq!(parse("0.00010000", 8), Ok(10_000));
        assert_eq!(parse("3.451", 8), Ok(345_100_000));
        assert_eq!(parse("3.45100000", 3), Ok(3451));
    }

    #[test]
    fn trailing_zeros_beyond_scale() {
        assert_eq!(parse("61737.63000000", 2), Ok(6_173_763));
        assert_eq!(
            parse("61737.63000000", 0),
            Err(FixedError::TooManyDecimals { places: 0 })
        );
        assert_eq!(parse("61737.00000000", 0), Ok(61_737));
        assert_eq!(parse("5.0", 0), Ok(5));
        assert_eq!(parse("5.000000000000000000000000000000000000000", 0), Ok(5));
        assert_eq!(
            parse("1.000000000000000000001", 18),
            Err(FixedError::TooManyDecimals { places: 18 })
        );
        assert_eq!(parse("0.00000000000000000100", 18), Ok(1));
        assert_eq!(
            parse("0.0000000000000000001", 18),
            Err(FixedError::TooManyDecimals { places: 18 })
        );
        assert_eq!(parse("1.23000000000000000", 2), Ok(123));
        assert_eq!(
            parse("1.23000000000000001", 2),
            Err(FixedError::TooManyDecimals { places: 2 })
        );
    }

    #[test]
    fn grammar_rejects() {
        use FixedError::{Empty, InvalidChar, UnexpectedEnd};
        let cases: &[(&str, FixedError)] = &[
            ("", Empty),
            ("-", UnexpectedEnd { pos: 1 }),
            ("+1", InvalidChar { pos: 0, byte: b'+' }),
            (" 1", InvalidChar { pos: 0, byte: b' ' }),
            ("1 ", InvalidChar { pos: 1, byte: b' ' }),
            ("1.5 ", InvalidChar { pos: 3, byte: b' ' }),
            ("1e-8", InvalidChar { pos: 1, byte: b'e' }),
            ("1E8", InvalidChar { pos: 1, byte: b'E' }),
            ("1.0e5", InvalidChar { pos: 3, byte: b'e' }),
            (".5", InvalidChar { pos: 0, byte: b'.' }),
            ("-.5", InvalidChar { pos: 1, byte: b'.' }),
            ("5.", UnexpectedEnd { pos: 2 }),
            ("-5.", UnexpectedEnd { pos: 3 }),
            ("12345678.", UnexpectedEnd { pos: 9 }),
            ("1.2.3", InvalidChar { pos: 3, byte: b'.' }),
            ("1..2", InvalidChar { pos: 2, byte: b'.' }),
            ("--1", InvalidChar { pos: 1, byte: b'-' }),
            ("1-", InvalidChar { pos: 1, byte: b'-' }),
            ("1,5", InvalidChar { pos: 1, byte: b',' }),
            ("1_000", InvalidChar { pos: 1, byte: b'_' }),
            ("0x10", InvalidChar { pos: 1, byte: b'x' }),
            ("NaN", InvalidChar { pos: 0, byte: b'N' }),
            ("inf", InvalidChar { pos: 0, byte: b'i' }),
            ("61737.6300000\0", InvalidChar { pos: 13, byte: 0 }),
            ("61737\u{e9}", InvalidChar { pos: 5, byte: 0xc3 }),
            ("１", InvalidChar { pos: 0, byte: 0xef }),
            ("12345678:", InvalidChar { pos: 8, byte: b':' }),
            ("12345678/", InvalidChar { pos: 8, byte: b'/' }),
            ("0.1234567/", InvalidChar { pos: 9, byte: b'/' }),
        ];
        for (text, err) in cases {
            for places in [0, 2, 8, 18] {
                assert_eq!(
                    parse(text, places),
                    Err(err.clone()),
                    "{text:?} at {places}"
                );
            }
        }
    }

    #[test]
    fn grammar_error_wins_over_value_errors() {
        // Too many decimals and an invalid byte after them: the grammar error is reported.
        assert_eq!(
            parse("1.25x", 1),
            Err(FixedError::InvalidChar { pos: 4, byte: b'x' })
        );
        // Overflowing integer part then an invalid byte.
        assert_eq!(
            parse("99999999999999999999x", 0),
            Err(FixedError::InvalidChar {
                pos: 20,
                byte: b'x'
            })
        );
        // Both too many decimals and overflow: too many decimals.
        assert_eq!(
            parse("99999999999999999999.123", 2),
            Err(FixedError::TooManyDecimals { places: 2 })
        );
    }

    #[test]
    fn length_limit() {
        let ok = format!("1.{}", "0".repeat(MAX_TEXT_LEN - 2));
        assert_eq!(ok.len(), MAX_TEXT_LEN);
        assert_eq!(parse(&ok, 0), Ok(1));
        let long = format!("{ok}0");
        assert_eq!(
            parse(&long, 0),
            Err(FixedError::TooLong { len: 65, max: 64 })
        );
        // The limit is checked before the grammar.
        let junk = "x".repeat(100);
        assert_eq!(
            parse(&junk, 0),
            Err(FixedError::TooLong { len: 100, max: 64 })
        );
        let zeros = format!("{}1", "0".repeat(MAX_TEXT_LEN - 1));
        assert_eq!(parse(&zeros, 0), Ok(1));
    }

    #[test]
    fn overflow_boundaries() {
        let of = |places| Err(FixedError::Overflow { places });
        assert_eq!(parse("9223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse("9223372036854775808", 0), of(0));
        assert_eq!(parse("-9223372036854775808", 0), Ok(i64::MIN));
        assert_eq!(parse("-9223372036854775809", 0), of(0));
        assert_eq!(parse("00009223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse("99999999999999999999", 0), of(0));
        assert_eq!(parse("18446744073709551616", 0), of(0));
        assert_eq!(parse("100000000000000000000000000000", 0), of(0));
        assert_eq!(parse("9.223372036854775807", 18), Ok(i64::MAX));
        assert_eq!(parse("9.223372036854775808", 18), of(18));
        assert_eq!(parse("-9.223372036854775808", 18), Ok(i64::MIN));
        assert_eq!(parse("-9.223372036854775809", 18), of(18));
        assert_eq!(parse("10", 18), of(18));
        assert_eq!(parse("9", 18), Ok(9_000_000_000_000_000_000));
        assert_eq!(parse("92233720368.54775807", 8), Ok(i64::MAX));
        assert_eq!(parse("92233720368.54775808", 8), of(8));
        assert_eq!(parse("92233720369", 8), of(8));
        assert_eq!(parse("-92233720368.54775808", 8), Ok(i64::MIN));
        assert_eq!(parse("-92233720368.547758080000", 8), Ok(i64::MIN));
    }

    #[test]
    fn display_examples() {
        assert_eq!(show(6_173_763_000_000, 8), "61737.63000000");
        assert_eq!(show(-15, 1), "-1.5");
        assert_eq!(show(15, 0), "15");
        assert_eq!(show(0, 0), "0");
        assert_eq!(show(0, 3), "0.000");
        assert_eq!(show(5, 3), "0.005");
        assert_eq!(show(-5, 3), "-0.005");
        assert_eq!(show(241, 5), "0.00241");
        assert_eq!(show(1, 18), "0.000000000000000001");
        assert_eq!(show(i64::MAX, 0), "9223372036854775807");
        assert_eq!(show(i64::MIN, 0), "-9223372036854775808");
        assert_eq!(show(i64::MIN, 18), "-9.223372036854775808");
        assert_eq!(show(i64::MAX, 18), "9.223372036854775807");
        assert_eq!(show(i64::MIN, 8), "-92233720368.54775808");
        assert_eq!(show(1_000_000_000, 9), "1.000000000");
        assert_eq!(show(100, 0), "100");
        assert_eq!(show(1234, 1), "123.4");
        assert_eq!(format!("{:>8}", Price(-15).display(sc(1))), "    -1.5");
        assert_eq!(format!("{:08}", Price(-15).display(sc(1))), "-00001.5");
        assert_eq!(format!("{:+}", Qty(15).display(sc(1))), "+1.5");
    }

    #[test]
    fn display_parse_round_trips_at_extremes() {
        for places in 0..=Scale::MAX_PLACES {
            for m in [
                i64::MIN,
                i64::MIN + 1,
                -1,
                0,
                1,
                9,
                10,
                99,
                100,
                i64::MAX - 1,
                i64::MAX,
            ] {
                let text = show(m, places);
                assert_eq!(parse(&text, places), Ok(m), "{text} at {places}");
                let mut buf = [0u8; ASCII_BUF_LEN];
                assert!(write_fixed(m, sc(places), &mut buf).len() <= 21);
            }
        }
    }

    #[test]
    fn newtype_methods() {
        let s = sc(8);
        let p = Price::parse_str("61737.63", s).unwrap();
        assert_eq!(p, Price::from_mantissa(6_173_763_000_000));
        assert_eq!(p.mantissa(), 6_173_763_000_000);
        assert_eq!(Qty::parse(b"0.5", s), Ok(Qty(50_000_000)));
        assert_eq!(
            Price::parse_str("abc", s),
            Err(FixedError::InvalidChar { pos: 0, byte: b'a' })
        );
        assert!(Price::ZERO.is_zero() && !Price::ZERO.is_positive());
        assert!(p.is_positive() && !Price(-1).is_positive() && !p.is_zero());
        assert_eq!(Qty(1).checked_add(Qty(2)), Some(Qty(3)));
        assert_eq!(Qty(i64::MAX).checked_add(Qty(1)), None);
        assert_eq!(Qty(1).checked_sub(Qty(2)), Some(Qty(-1)));
        assert_eq!(Qty(i64::MIN).checked_sub(Qty(1)), None);
        assert_eq!(Qty::default(), Qty::ZERO);
        assert_eq!(bytemuck::cast::<Price, i64>(Price(7)), 7);
    }

    #[test]
    fn decimal_conversions() {
        use core::str::FromStr;
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(Price(6_173_763_000_000).to_decimal(sc(8)), d("61737.63"));
        assert_eq!(
            Price(6_173_763_000_000).to_decimal(sc(8)).to_string(),
            "61737.63000000"
        );
        assert_eq!(Price(-15).to_decimal(sc(1)), d("-1.5"));
        assert_eq!(Price(i64::MIN).to_decimal(sc(0)), Decimal::from(i64::MIN));
        assert_eq!(
            Price(i64::MAX).to_decimal(sc(18)),
            d("9.223372036854775807")
        );
        assert_eq!(Price(0).to_decimal(sc(3)), Decimal::ZERO);

        assert_eq!(Price::from_decimal(d("1.500"), sc(1)), Ok(Price(15)));
        assert_eq!(Price::from_decimal(d("1.5"), sc(8)), Ok(Price(150_000_000)));
        assert_eq!(Price::from_decimal(d("-0.00241"), sc(5)), Ok(Price(-241)));
        assert_eq!(
            Price::from_decimal(d("0.00241"), sc(4)),
            Err(FixedError::TooManyDecimals { places: 4 })
        );
        assert_eq!(Price::from_decimal(d("100"), sc(0)), Ok(Price(100)));
        assert_eq!(Price::from_decimal(d("1E+2"), sc(0)), Ok(Price(100)));
        assert_eq!(Price::from_decimal(d("-0.000"), sc(0)), Ok(Price(0)));
        assert_eq!(
            Price::from_decimal(d("9223372036854775808"), sc(0)),
            Err(FixedError::Overflow { places: 0 })
        );
        assert_eq!(
            Price::from_decimal(d("-9223372036854775808"), sc(0)),
            Ok(Price(i64::MIN))
        );
        assert_eq!(
            Price::from_decimal(Decimal::MAX, sc(18)),
            Err(FixedError::Overflow { places: 18 })
        );
        assert_eq!(
            Price::from_decimal(d("10"), sc(18)),
            Err(FixedError::Overflow { places: 18 })
        );
        for places in 0..=Scale::MAX_PLACES {
            for m in [i64::MIN, -1, 0, 1, i64::MAX] {
                assert_eq!(
                    Qty::from_decimal(Qty(m).to_decimal(sc(places)), sc(places)),
                    Ok(Qty(m))
                );
            }
        }
    }

    #[test]
    fn rescale_exact() {
        assert_eq!(rescale(15, sc(1), sc(1)), Ok(15));
        assert_eq!(rescale(15, sc(1), sc(3)), Ok(1500));
        assert_eq!(rescale(1500, sc(3), sc(1)), Ok(15));
        assert_eq!(
            rescale(1501, sc(3), sc(1)),
            Err(FixedError::TooManyDecimals { places: 1 })
        );
        assert_eq!(
            rescale(-1500, sc(3), sc(0)),
            Err(FixedError::TooManyDecimals { places: 0 })
        );
        assert_eq!(rescale(-15000, sc(3), sc(0)), Ok(-15));
        assert_eq!(
            rescale(10, sc(0), sc(18)),
            Err(FixedError::Overflow { places: 18 })
        );
        assert_eq!(rescale(9, sc(0), sc(18)), Ok(9_000_000_000_000_000_000));
        assert_eq!(rescale(i64::MIN, sc(0), sc(0)), Ok(i64::MIN));
        assert_eq!(
            rescale(i64::MIN, sc(18), sc(0)),
            Err(FixedError::TooManyDecimals { places: 0 })
        );
        assert_eq!(
            rescale(i64::MIN, sc(8), sc(0)),
            Err(FixedError::TooManyDecimals { places: 0 })
        );
        assert_eq!(rescale(-9_000_000_000_000_000_000, sc(18), sc(0)), Ok(-9));
    }

    #[test]
    fn notional_exact() {
        let (s0, s1, s2, s3, s8) = (sc(0), sc(1), sc(2), sc(3), sc(8));
        assert_eq!(notional(Price(6_173_763), Qty(5)), 30_868_815);
        assert_eq!(notional(Price(i64::MIN), Qty(i64::MIN)), 1i128 << 126);
        assert_eq!(
            notional(Price(i64::MAX), Qty(i64::MIN)),
            -(i64::MAX as i128) << 63
        );
        assert_eq!(
            notional_at(Price(6_173_763), s2, Qty(5), s1, s3),
            Ok(30_868_815)
        );
        assert_eq!(
            notional_at(Price(6_173_763), s2, Qty(5), s1, s8),
            Ok(3_086_881_500_000)
        );
        assert_eq!(
            notional_at(Price(6_173_763), s2, Qty(5), s1, s2),
            Err(FixedError::TooManyDecimals { places: 2 })
        );
        assert_eq!(
            notional_at(Price(6_173_700), s2, Qty(50), s1, s0),
            Ok(308_685)
        );
        assert_eq!(notional_at(Price(-200), s2, Qty(-30), s1, s0), Ok(6));
        // 36 places down to 0 and back up.
        let big = sc(18);
        assert_eq!(
            notional_at(
                Price(1_000_000_000_000_000_000),
                big,
                Qty(3_000_000_000_000_000_000),
                big,
                s0
            ),
            Ok(3)
        );
        assert_eq!(
            notional_at(Price(i64::MIN), s0, Qty(i64::MIN), s0, s0),
            Ok(1i128 << 126)
        );
        assert_eq!(
            notional_at(Price(i64::MIN), s0, Qty(i64::MIN), s0, s1),
            Err(FixedError::Overflow { places: 1 })
        );
        assert_eq!(
            notional_at(Price(i64::MIN), s1, Qty(i64::MIN), s0, s1),
            Ok(1i128 << 126)
        );
    }

    #[test]
    fn error_messages_carry_context() {
        assert_eq!(
            FixedError::InvalidChar { pos: 1, byte: b'e' }.to_string(),
            "invalid byte 0x65 at position 1 of number"
        );
        assert_eq!(
            FixedError::TooManyDecimals { places: 4 }.to_string(),
            "value has more significant decimals than the scale's 4 places"
        );
    }

    #[test]
    fn swar_helpers() {
        let x = u64::from_le_bytes(*b"12345678") ^ ASCII_ZEROS;
        assert_eq!(non_digits(x), 0);
        assert_eq!(eight_digits(x), 12_345_678);
        assert_eq!(first_digits(x, 3), 123);
        assert_eq!(first_digits(x, 1), 1);
        for (i, bad) in [b'/', b':', b'.', 0, 0x80, 0xb0, 0xff, b' ']
            .into_iter()
            .enumerate()
        {
            let mut bytes = *b"99999999";
            bytes[i] = bad;
            let nd = non_digits(u64::from_le_bytes(bytes) ^ ASCII_ZEROS);
            assert_eq!(
                nd.trailing_zeros(),
                8 * i as u32 + 7,
                "byte {bad:#x} at {i}"
            );
        }
        // Every pair of byte values at every pair of positions, in a field of digits: the
        // lowest non-digit is found exactly whatever the bytes above it are.
        for first in 0..8 {
            for second in first + 1..8 {
                for a in 0..=255u8 {
                    for b in [
                        0u8, b'.', b'0', b'9', 0x7f, 0x80, 0x89, 0x8a, 0xb9, 0xba, 0xff,
                    ] {
                        let mut bytes = *b"01234567";
                        bytes[first] = a;
                        bytes[second] = b;
                        let expected = bytes.iter().position(|c| !c.is_ascii_digit());
                        let nd = non_digits(u64::from_le_bytes(bytes) ^ ASCII_ZEROS);
                        let found = (nd != 0).then(|| (nd.trailing_zeros() / 8) as usize);
                        assert_eq!(found, expected, "{bytes:?}");
                    }
                }
            }
        }
        for len in 0..8 {
            let text = &b"abcdefg"[..len];
            let mut padded = [0u8; 8];
            padded[..len].copy_from_slice(text);
            assert_eq!(load_short(text), u64::from_le_bytes(padded));
            for p in 0..=len {
                let mut shifted = [0u8; 8];
                shifted[..len - p].copy_from_slice(&text[p..]);
                assert_eq!(load_at(text, p), u64::from_le_bytes(shifted));
            }
        }
        let text = b"0123456789ab";
        for p in 0..=text.len() {
            let mut window = [0u8; 8];
            let n = (text.len() - p).min(8);
            window[..n].copy_from_slice(&text[p..p + n]);
            assert_eq!(load_at(text, p), u64::from_le_bytes(window));
        }
    }
}
