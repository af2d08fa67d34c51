//! Property tests for `aaiti_model::fixed`: formatting/parsing round trips, differential
//! tests of `parse_fixed` against `rust_decimal` and against the scalar reference parser,
//! `Decimal` conversions, and a stable "fuzz-style" run of the `parse_fixed` fuzz target's
//! checks on random byte strings.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap values the strategies make valid"
)]
#![allow(
    clippy::panic,
    reason = "the shared fuzz check panics on a violated property"
)]

use aaiti_model::fixed::{
    ASCII_BUF_LEN, FixedError, MAX_TEXT_LEN, Price, Qty, Scale, parse_fixed, parse_fixed_reference,
    rescale,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rust_decimal::Decimal;

#[path = "../fuzz/common/parse_fixed_check.rs"]
mod parse_fixed_check;

fn scale() -> impl Strategy<Value = Scale> {
    (0..=Scale::MAX_PLACES).prop_map(|places| Scale::new(places).unwrap())
}

/// Mantissas biased towards the interesting ends of the range.
fn mantissa() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -1_000_000_000i64..1_000_000_000,
        Just(i64::MIN),
        Just(i64::MAX),
        (i64::MIN..i64::MIN + 1000),
        (i64::MAX - 1000..=i64::MAX),
    ]
}

/// Grammatical decimal strings: optional `-`, 1..=20 integer digits, optionally a `.` and
/// 1..=20 fraction digits, at most 28 digits in all so `rust_decimal` represents every one
/// exactly.
fn decimal_text() -> impl Strategy<Value = String> {
    (1usize..=20)
        .prop_flat_map(|int_len| {
            let max_frac = (28 - int_len).min(20);
            (
                any::<bool>(),
                proptest::collection::vec(0u8..10, int_len),
                prop_oneof![Just(0usize), 1..=max_frac],
                proptest::collection::vec(prop_oneof![3 => 0u8..10, 1 => Just(0u8)], max_frac),
            )
        })
        .prop_map(|(neg, int, frac_len, frac)| {
            let mut text = String::new();
            if neg {
                text.push('-');
            }
            text.extend(int.iter().map(|d| char::from(b'0' + d)));
            if frac_len > 0 {
                text.push('.');
                text.extend(frac[..frac_len].iter().map(|d| char::from(b'0' + d)));
            }
            text
        })
}

/// What `parse_fixed` must return for a grammatical text that `rust_decimal` read as
/// `decimal`.
fn expected_via_decimal(decimal: Decimal, scale: Scale) -> Result<i64, FixedError> {
    let places = scale.places();
    let (m, s) = (decimal.mantissa(), decimal.scale());
    let p = u32::from(places);
    let value = if s > p {
        let divisor = 10i128.pow(s - p);
        if m % divisor != 0 {
            return Err(FixedError::TooManyDecimals { places });
        }
        m / divisor
    } else {
        m.checked_mul(10i128.pow(p - s))
            .ok_or(FixedError::Overflow { places })?
    };
    i64::try_from(value).map_err(|_| FixedError::Overflow { places })
}

/// Bytes that are likely to confuse a number parser.
fn nasty_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"0123456789.-+eE /:xX,_".to_vec()),
        Just(0u8),
        Just(0x80u8),
        Just(0xffu8),
        any::<u8>(),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, u8),
    Replace(usize, u8),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), nasty_byte()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), nasty_byte()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn apply(text: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::Insert(at, b) => text.insert(at % (text.len() + 1), b),
        Mutation::Replace(at, b) if !text.is_empty() => {
            let at = at % text.len();
            text[at] = b;
        }
        Mutation::Delete(at) if !text.is_empty() => {
            text.remove(at % text.len());
        }
        _ => {}
    }
}

/// A valid number text, in any of the shapes a feed sends.
fn valid_text() -> impl Strategy<Value = (Vec<u8>, Scale)> {
    prop_oneof![
        // Canonical text of a mantissa, sometimes with extra trailing zeros / leading zeros.
        (mantissa(), scale(), 0usize..12, 0usize..4).prop_map(|(m, s, pad, lead)| {
            let mut text = Price(m).display(s).to_string();
            if pad > 0 {
                if s.places() == 0 {
                    text.push('.');
                }
                text.extend(std::iter::repeat_n('0', pad));
            }
            let digits_at = usize::from(m < 0);
            text.insert_str(digits_at, &"0".repeat(lead));
            (text.into_bytes(), s)
        }),
        (decimal_text(), scale()).prop_map(|(t, s)| (t.into_bytes(), s)),
    ]
}

proptest! {
    /// (a) `display` then `parse` gives back the mantissa, for `Price` and `Qty`, and
    /// `write_ascii` writes the same text as `display`.
    #[test]
    fn display_parse_round_trip(m in mantissa(), s in scale()) {
        let text = Price(m).display(s).to_string();
        prop_assert_eq!(Price::parse_str(&text, s), Ok(Price(m)));
        prop_assert_eq!(Qty::parse(text.as_bytes(), s), Ok(Qty(m)));
        let mut buf = [0u8; ASCII_BUF_LEN];
        prop_assert_eq!(Qty(m).write_ascii(s, &mut buf), text.as_bytes());
        prop_assert_eq!(text.contains('.'), s.places() > 0);
        if s.places() > 0 {
            let decimals = text.len() - text.find('.').unwrap() - 1;
            prop_assert_eq!(decimals, usize::from(s.places()));
        }
    }

    /// (b) `parse_fixed` succeeds iff `rust_decimal` reads the same text as a value that is
    /// exactly an `i64` mantissa at the scale, and then they agree; the errors match too.
    #[test]
    fn parse_agrees_with_rust_decimal(text in decimal_text(), s in scale()) {
        let expected = expected_via_decimal(Decimal::from_str_exact(&text).unwrap(), s);
        prop_assert_eq!(parse_fixed(text.as_bytes(), s), expected.clone(), "text {}", text);
        prop_assert_eq!(parse_fixed_reference(text.as_bytes(), s), expected);
    }

    /// (c1) Fast parser == reference parser on arbitrary bytes (including over-long ones).
    #[test]
    fn fast_matches_reference_on_bytes(
        text in proptest::collection::vec(any::<u8>(), 0..(MAX_TEXT_LEN + 8)),
        s in scale(),
    ) {
        prop_assert_eq!(parse_fixed(&text, s), parse_fixed_reference(&text, s));
    }

    /// (c2) Same on strings over a number-ish alphabet, which reach much deeper into the
    /// grammar than uniform bytes.
    #[test]
    fn fast_matches_reference_on_numberish(
        text in proptest::collection::vec(
            prop_oneof![8 => b'0'..=b'9', 1 => Just(b'.'), 1 => Just(b'-'), 1 => nasty_byte()],
            0..(MAX_TEXT_LEN + 4),
        ),
        s in scale(),
    ) {
        parse_fixed_check::check_text(&text, s);
    }

    /// (c3) Same on valid numbers with one to three random insertions, replacements or
    /// deletions of bytes like 'e', '+', '.', ' ', '-'.
    #[test]
    fn fast_matches_reference_on_mutated_numbers(
        (mut text, s) in valid_text(),
        mutations in proptest::collection::vec(mutation(), 1..=3),
    ) {
        parse_fixed_check::check_text(&text, s);
        for m in &mutations {
            apply(&mut text, m);
        }
        parse_fixed_check::check_text(&text, s);
    }

    /// Valid numbers in every shape parse to what the reference says (and to a value).
    #[test]
    fn valid_numbers_parse((text, s) in valid_text()) {
        let fast = parse_fixed(&text, s);
        prop_assert_eq!(fast.clone(), parse_fixed_reference(&text, s));
        let value_error = matches!(
            fast,
            Err(FixedError::TooManyDecimals { .. } | FixedError::Overflow { .. })
        );
        prop_assert!(fast.is_ok() || value_error, "grammar error on a valid text");
        // Texts with more than 28 digits (padding zeros) are beyond `rust_decimal`.
        let text = String::from_utf8(text).unwrap();
        if let Ok(d) = Decimal::from_str_exact(&text) {
            prop_assert_eq!(fast, expected_via_decimal(d, s), "text {}", text);
        }
    }

    /// (d) `to_decimal` / `from_decimal` round trip, also through a `Decimal` that carries
    /// extra trailing zeros, and `to_decimal` agrees with the text.
    #[test]
    fn decimal_round_trip(m in mantissa(), s in scale(), extra in 0u32..=10) {
        let d = Price(m).to_decimal(s);
        prop_assert_eq!(d.scale(), u32::from(s.places()));
        prop_assert_eq!(d.to_string(), Price(m).display(s).to_string());
        prop_assert_eq!(Price::from_decimal(d, s), Ok(Price(m)));
        // Skipped when the padded mantissa exceeds `Decimal`'s 96 bits.
        if let Ok(padded) = Decimal::try_from_i128_with_scale(
            i128::from(m) * 10i128.pow(extra),
            u32::from(s.places()) + extra,
        ) {
            prop_assert_eq!(Qty::from_decimal(padded, s), Ok(Qty(m)));
        }
    }

    /// `from_decimal` agrees with parsing the decimal's text.
    #[test]
    fn from_decimal_agrees_with_parse(text in decimal_text(), s in scale()) {
        let d = Decimal::from_str_exact(&text).unwrap();
        prop_assert_eq!(Price::from_decimal(d, s), Price::parse_str(&text, s));
    }

    /// `rescale` is exact: it succeeds iff the value is representable at the target scale,
    /// and rescaling back restores the mantissa.
    #[test]
    fn rescale_is_exact(m in mantissa(), from in scale(), to in scale()) {
        let expected = Price::from_decimal(Price(m).to_decimal(from), to).map(|p| p.0);
        let got = rescale(m, from, to);
        prop_assert_eq!(got.clone(), expected);
        if let Ok(r) = got {
            prop_assert_eq!(rescale(r, to, from), Ok(m));
        }
    }
}

proptest! {
    // Fixed seed: the same inputs on every run, like replaying a fuzz corpus.
    #![proptest_config(ProptestConfig {
        rng_seed: RngSeed::Fixed(0x00AA_1711),
        ..ProptestConfig::default()
    })]

    /// The `parse_fixed` fuzz target's checks on random byte strings (first byte = scale):
    /// no panic, agreement with the reference parser, consistent errors and round trips.
    #[test]
    fn fuzz_style_parse_fixed(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        parse_fixed_check::check_input(&data);
    }

    /// As above, on digit-heavy byte strings that often form valid numbers.
    #[test]
    fn fuzz_style_parse_fixed_numberish(
        scale_byte in any::<u8>(),
        text in proptest::collection::vec(
            prop_oneof![6 => b'0'..=b'9', 1 => Just(b'.'), 1 => Just(b'-'), 1 => any::<u8>()],
            0..64,
        ),
    ) {
        let mut data = vec![scale_byte];
        data.extend_from_slice(&text);
        parse_fixed_check::check_input(&data);
    }
}

/// Every string of up to 9 bytes over `0 1 . - x`, at scales 0, 1 and 8: the fast parser
/// agrees with the reference everywhere (covers all SWAR window/short-load boundaries).
#[test]
fn exhaustive_short_strings_match_reference() {
    const ALPHABET: &[u8] = b"01.-x";
    let scales = [0, 1, 8].map(|p| Scale::new(p).unwrap());
    let mut text = Vec::with_capacity(9);
    for len in 0..=9u32 {
        for mut code in 0..ALPHABET.len().pow(len) {
            text.clear();
            for _ in 0..len {
                text.push(ALPHABET[code % ALPHABET.len()]);
                code /= ALPHABET.len();
            }
            for s in scales {
                assert_eq!(
                    parse_fixed(&text, s),
                    parse_fixed_reference(&text, s),
                    "{text:?}"
                );
            }
        }
    }
}

/// Every string of up to 6 bytes over `0 1 . - x`, between prefixes and suffixes that move
/// it across the 8- and 16-byte word boundaries of the fast paths.
#[test]
fn exhaustive_infixes_match_reference() {
    const ALPHABET: &[u8] = b"01.-x";
    const PREFIXES: &[&[u8]] = &[b"", b"-", b"98765", b"1234567", b"-1234567", b"12345678"];
    const SUFFIXES: &[&[u8]] = &[b"", b"5", b"0000000", b"00000009"];
    let scales = [0, 1, 2, 8].map(|p| Scale::new(p).unwrap());
    let mut text = Vec::with_capacity(32);
    for len in 0..=6u32 {
        for code in 0..ALPHABET.len().pow(len) {
            for prefix in PREFIXES {
                for suffix in SUFFIXES {
                    text.clear();
                    text.extend_from_slice(prefix);
                    let mut code = code;
                    for _ in 0..len {
                        text.push(ALPHABET[code % ALPHABET.len()]);
                        code /= ALPHABET.len();
                    }
                    text.extend_from_slice(suffix);
                    for s in scales {
                        let fast = parse_fixed(&text, s);
                        assert_eq!(fast, parse_fixed_reference(&text, s), "{text:?}");
                    }
                }
            }
        }
    }
}
