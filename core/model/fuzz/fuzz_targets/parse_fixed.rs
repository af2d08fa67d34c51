//! Fuzz `parse_fixed`: no panics, exact agreement with the scalar reference parser, and
//! consistency with formatting and `Decimal` conversion (see `../common/parse_fixed_check.rs`).
//!
//! Run from `core/model/fuzz` (nightly): `cargo +nightly fuzz run parse_fixed`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/parse_fixed_check.rs"]
mod parse_fixed_check;

fuzz_target!(|data: &[u8]| {
    parse_fixed_check::check_input(data);
});
