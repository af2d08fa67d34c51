//! The recording readers on arbitrary text: errors, never panics.
#![no_main]

use aaiti_feeds::replay::{RecordingFormat, RecordingReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [
        None,
        Some(RecordingFormat::ReceiveNanos),
        Some(RecordingFormat::Capture),
    ] {
        let mut reader = RecordingReader::new(data, format);
        for _ in 0..10_000 {
            match reader.next_message() {
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            }
        }
    }
});
