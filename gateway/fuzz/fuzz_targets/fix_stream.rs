//! Framing a byte stream does not depend on where the reads cut it.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how many cut points follow (two bytes each), the rest is the
    // stream.
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let cut_bytes = (usize::from(count % 16) * 2).min(rest.len());
    let (cuts, stream) = rest.split_at(cut_bytes);
    let cuts: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])))
        .collect();
    assert_eq!(common::feed(stream, &cuts), common::feed(stream, &[]));
});
