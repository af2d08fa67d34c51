//! The property behind the `parse_fixed` fuzz target, shared with the stable test
//! `core/model/tests/fixed_props.rs` (which `#[path]`-includes this file), so the exact
//! same checks run under `cargo fuzz` (nightly) and under `cargo test` (stable).

use aaiti_model::fixed::{
    ASCII_BUF_LEN, FixedError, MAX_TEXT_LEN, Qty, Scale, parse_fixed, parse_fixed_reference,
    write_fixed,
};

/// Fuzzer entry: the first byte picks the scale (`byte % 19`), the rest is the text.
pub(crate) fn check_input(data: &[u8]) {
    let Some((&first, text)) = data.split_first() else {
        return;
    };
    let Ok(scale) = Scale::new(first % (Scale::MAX_PLACES + 1)) else {
        return;
    };
    check_text(text, scale);
}

/// `parse_fixed` must not panic, must agree exactly with `parse_fixed_reference`, and its
/// answer must be consistent with formatting, `Decimal` conversion and the error context.
pub(crate) fn check_text(text: &[u8], scale: Scale) {
    let fast = parse_fixed(text, scale);
    let reference = parse_fixed_reference(text, scale);
    assert_eq!(
        fast,
        reference,
        "fast vs reference on {text:?} at scale {}",
        scale.places()
    );
    match fast {
        Ok(mantissa) => {
            // The canonical text parses back to the same mantissa ...
            let mut buf = [0u8; ASCII_BUF_LEN];
            let canonical = write_fixed(mantissa, scale, &mut buf);
            assert_eq!(parse_fixed(canonical, scale), Ok(mantissa));
            // ... and is what the input becomes once its zero padding is normalised.
            let decimal = Qty(mantissa).to_decimal(scale);
            assert_eq!(Qty::from_decimal(decimal, scale), Ok(Qty(mantissa)));
            let accepted = text
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'.');
            assert!(accepted, "accepted a text with a foreign byte: {text:?}");
            assert!(!text.is_empty() && text.len() <= MAX_TEXT_LEN);
        }
        Err(FixedError::Empty) => assert!(text.is_empty()),
        Err(FixedError::TooLong { len, max }) => {
            assert_eq!((len, max), (text.len(), MAX_TEXT_LEN));
            assert!(len > max);
        }
        Err(FixedError::InvalidChar { pos, byte }) => assert_eq!(text.get(pos), Some(&byte)),
        Err(FixedError::UnexpectedEnd { pos }) => assert_eq!(pos, text.len()),
        Err(FixedError::TooManyDecimals { places } | FixedError::Overflow { places }) => {
            assert_eq!(places, scale.places());
        }
        Err(other @ FixedError::ScaleOutOfRange { .. }) => {
            panic!("unexpected error {other:?} for {text:?}")
        }
    }
}
