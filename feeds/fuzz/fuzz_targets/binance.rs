//! Binance spot normalizer on arbitrary bytes, on a synchronised book.
#![no_main]

mod common;

use aaiti_feeds::{BinanceFeed, FeedConfig, RecordBuffer};
use aaiti_model::{StreamId, UnixNanos};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registry = common::registry("binance", &[("BTCUSDT", 2, 8), ("ETHUSDT", 2, 4)]);
    let venue = registry.venue_id("binance").expect("venue");
    let mut feed = BinanceFeed::new_spot(&registry, venue, StreamId(1), FeedConfig::default());
    let mut snapshot =
        br#"{"lastUpdateId":100,"bids":[["61737.00","1"]],"asks":[["61838.00","1"]]}"#.to_vec();
    let btc = aaiti_model::InstrumentId(0);
    feed.on_depth_snapshot(btc, &mut snapshot, UnixNanos(1), &mut RecordBuffer::new())
        .expect("snapshot");
    common::check(&mut feed, data);
});
