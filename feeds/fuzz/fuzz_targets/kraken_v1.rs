//! Kraken v1 normalizer on arbitrary bytes, on a valid book.
#![no_main]

mod common;

use aaiti_feeds::{FeedConfig, KrakenV1Feed, RecordBuffer};
use aaiti_model::{StreamId, UnixNanos};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registry = common::registry("kraken", &[("XBT/USD", 1, 8)]);
    let venue = registry.venue_id("kraken").expect("venue");
    let mut feed = KrakenV1Feed::new(&registry, venue, StreamId(1), FeedConfig::default());
    let mut snapshot = br#"[1,{"as":[["101.0","1.00000000","1618678133.1"]],"bs":[["99.0","1.00000000","1618678133.1"]]},"book-10","XBT/USD"]"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new())
        .expect("snapshot");
    common::check(&mut feed, data);
});
