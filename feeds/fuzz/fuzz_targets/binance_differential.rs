//! The Binance fast path against the simd-json general path: same records, same rejects.
#![no_main]

mod common;

use aaiti_feeds::{BinanceFeed, BinanceMarket, FeedConfig, RecordBuffer};
use aaiti_model::{StreamId, UnixNanos};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], market: BinanceMarket, fast_path: bool) -> (String, Vec<Vec<u8>>) {
    let registry = common::registry("binance", &[("BTCUSDT", 2, 8)]);
    let venue = registry.venue_id("binance").expect("venue");
    let config = FeedConfig {
        fast_path,
        ..FeedConfig::default()
    };
    let mut feed = BinanceFeed::new(&registry, venue, StreamId(1), config, market);
    let mut out = RecordBuffer::new();
    let mut snapshot = br#"{"lastUpdateId":100,"bids":[],"asks":[]}"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut out)
        .expect("snapshot");
    out.clear();
    let mut bytes = data.to_vec();
    let result = feed.on_message(&mut bytes, UnixNanos(2), &mut out);
    (
        format!("{result:?}"),
        out.iter().map(|e| e.as_bytes().to_vec()).collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    for market in [BinanceMarket::Spot, BinanceMarket::UsdFutures] {
        assert_eq!(run(data, market, true), run(data, market, false));
    }
});
