//! The FIX 4.4 inbound path on arbitrary bytes: frame, parse, validate, decode for every
//! role, and the answer to every reject.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the message size limit, so the BodyLength limit is fuzzed too.
    let (limit, bytes) = match data.split_first() {
        Some((&pick, rest)) => (
            [16, 64, 512, common::MAX_MESSAGE][usize::from(pick % 4)],
            rest,
        ),
        None => (common::MAX_MESSAGE, data),
    };
    common::pipeline(bytes, limit);
});
