//! Kraken v2 normalizer on arbitrary bytes, on a valid book.
#![no_main]

mod common;

use aaiti_feeds::{FeedConfig, KrakenV2Feed, RecordBuffer};
use aaiti_model::{StreamId, UnixNanos};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registry = common::registry("kraken", &[("BTC/USD", 1, 8)]);
    let venue = registry.venue_id("kraken").expect("venue");
    let mut feed = KrakenV2Feed::new(&registry, venue, StreamId(1), FeedConfig::default());
    let mut snapshot = br#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.1}],"asks":[{"price":45285.2,"qty":0.001}],"checksum":1}]}"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new())
        .expect("snapshot");
    common::check(&mut feed, data);
});
