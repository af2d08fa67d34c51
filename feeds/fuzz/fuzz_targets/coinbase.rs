//! Coinbase normalizer on arbitrary bytes, on a valid book.
#![no_main]

mod common;

use aaiti_feeds::{CoinbaseFeed, FeedConfig, RecordBuffer};
use aaiti_model::{StreamId, UnixNanos};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registry = common::registry("coinbase", &[("BTC-USD", 2, 8)]);
    let venue = registry.venue_id("coinbase").expect("venue");
    let mut feed = CoinbaseFeed::new(&registry, venue, StreamId(1), FeedConfig::default());
    let mut snapshot = br#"{"type":"snapshot","product_id":"BTC-USD","asks":[["30862.60","1.5"]],"bids":[["30800.00","2"]]}"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new())
        .expect("snapshot");
    common::check(&mut feed, data);
});
