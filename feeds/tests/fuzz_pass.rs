//! A short stable-Rust fuzz pass over every normalizer (the cargo-fuzz targets in `fuzz/`
//! run the same checks for longer on nightly): random bytes and mutated real messages
//! never panic; a rejected message appends exactly one `Rejected` event and leaves the
//! books and the counters of accepted work untouched; accepted output validates and is
//! numbered without gaps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_feeds::{
    BinanceFeed, CoinbaseFeed, FeedConfig, FeedHandler, KrakenV1Feed, KrakenV2Feed, RecordBuffer,
};
use aaiti_model::{
    FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, StreamId, UnixNanos,
};
use proptest::prelude::*;
use util::*;

fn probe<H: FeedHandler>(feed: &H) -> String {
    let s = feed.stats();
    format!(
        "{} {} {} {} {} {} {} {} {}",
        feed.is_book_valid(InstrumentId(0)),
        s.updates_applied,
        s.updates_buffered,
        s.updates_dropped,
        s.snapshots_applied,
        s.snapshots_discarded,
        s.gaps,
        s.books_valid,
        s.truncated_levels,
    )
}

fn check<H: FeedHandler>(feed: &mut H, message: &[u8]) {
    let before = probe(feed);
    let seq = feed.last_seq();
    let mut out = RecordBuffer::new();
    let mut bytes = message.to_vec();
    let result = feed.on_message(&mut bytes, UnixNanos(1_700_000_000_000_000_000), &mut out);
    for (i, envelope) in out.iter().enumerate() {
        envelope.validate().unwrap();
        assert_eq!(envelope.header.seq, seq + 1 + i as u64);
    }
    if let Err(error) = result {
        assert_eq!(out.len(), 1);
        let event = out.as_slice()[0].payload::<FeedEvent>().unwrap();
        assert_eq!(event.kind, FeedEventKind::Rejected.code());
        assert_eq!(event.value, i64::from(error.reason().code()));
        assert_eq!(probe(feed), before);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Flip(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Op::Flip(a, b)),
        any::<usize>().prop_map(Op::Truncate),
        (any::<usize>(), 1..16usize).prop_map(|(a, n)| Op::Delete(a, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(a, b)| Op::Insert(a, b)),
        (any::<usize>(), 1..40usize).prop_map(|(a, n)| Op::Duplicate(a, n)),
    ]
}

fn mutate(message: &[u8], ops: &[Op]) -> Vec<u8> {
    let mut m = message.to_vec();
    for op in ops {
        let len = m.len().max(1);
        match op {
            Op::Flip(at, byte) => {
                if let Some(b) = m.get_mut(at % len) {
                    *b ^= byte | 1;
                }
            }
            Op::Truncate(at) => m.truncate(at % len),
            Op::Delete(at, n) => {
                let at = (at % len).min(m.len());
                let end = (at + n).min(m.len());
                m.drain(at..end);
            }
            Op::Insert(at, bytes) => {
                let at = at % (m.len() + 1);
                m.splice(at..at, bytes.iter().copied());
            }
            Op::Duplicate(at, n) => {
                let at = (at % len).min(m.len());
                let end = (at + n).min(m.len());
                let chunk = m[at..end].to_vec();
                m.splice(at..at, chunk);
            }
        }
    }
    m
}

fn input(corpus: &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (0..corpus.len(), prop::collection::vec(op(), 1..4))
            .prop_map(move |(i, ops)| mutate(&corpus[i], &ops)),
    ]
}

fn corpus(lines: &[&str]) -> &'static [Vec<u8>] {
    Box::leak(
        lines
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn binance_corpus() -> &'static [Vec<u8>] {
    corpus(&[
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":101,"u":103,"b":[["61737.63000000","0.50000000"],["61730.17000000","0.00000000"]],"a":[["61837.64000000","1.54698000"]]}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BTCUSDT","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.01","10"]],"asks":[["0.02","100"]]}}"#,
        r#"{"lastUpdateId":104,"bids":[["61737.00","1"]],"asks":[["61838.00","1"]]}"#,
        r#"{"result":null,"id":1}"#,
    ])
}

fn binance(registry: &InstrumentRegistry, fast_path: bool) -> BinanceFeed {
    let config = FeedConfig {
        fast_path,
        ..FeedConfig::default()
    };
    let mut feed = BinanceFeed::new_spot(
        registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        config,
    );
    let mut snapshot =
        br#"{"lastUpdateId":100,"bids":[["61737.00","1"]],"asks":[["61838.00","1"]]}"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new())
        .unwrap();
    feed
}

fn kraken_v1_corpus() -> &'static [Vec<u8>] {
    corpus(&[
        r#"[1,{"a":[["101.5","1.00000000","1618678134.1"]],"c":"123"},"book-10","XBT/USD"]"#,
        r#"[1,{"a":[["101.5","1.00000000","1618678134.1","r"]]},{"b":[["99.5","0.00000000","1618678134.2"]],"c":"12"},"book-10","XBT/USD"]"#,
        r#"[1,{"as":[["101.0","1.00000000","1618678133.1"]],"bs":[["99.0","1.00000000","1618678133.1"]]},"book-10","XBT/USD"]"#,
        r#"[2,[["354.1","0.89594024","1618678142.557535","s","l",""]],"trade","XBT/USD"]"#,
        r#"{"event":"heartbeat"}"#,
        r#"{"channelID":1664,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#,
    ])
}

fn kraken_v2_corpus() -> &'static [Vec<u8>] {
    corpus(&[
        r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.6,"qty":0.5}],"asks":[{"price":45285.2,"qty":0}],"checksum":1,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#,
        r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000}],"asks":[{"price":45285.2,"qty":0.00100000}],"checksum":3310070434}]}"#,
        r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":45283.5,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#,
        r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true}"#,
        r#"{"channel":"heartbeat"}"#,
    ])
}

fn coinbase_corpus() -> &'static [Vec<u8>] {
    corpus(&[
        r#"{"type":"l2update","product_id":"BTC-USD","changes":[["sell","30862.60","0.5"],["buy","30800.00","0"]],"time":"2021-04-17T16:43:37.075351Z"}"#,
        r#"{"type":"snapshot","product_id":"BTC-USD","asks":[["30862.60","1.5"]],"bids":[["30800.00","2"]]}"#,
        r#"{"type":"match","trade_id":1568268,"maker_order_id":"a","taker_order_id":"b","side":"sell","size":"450","price":"30862.60","product_id":"BTC-USD","sequence":201390075,"time":"2021-04-17T16:43:37.121358Z"}"#,
        r#"{"type":"ticker","sequence":201390042,"product_id":"BTC-USD","price":"30862.60","best_bid":"30800.00","best_ask":"30862.60","side":"buy","time":"2021-04-17T16:43:37.056746Z","trade_id":1568267,"last_size":"1338.3"}"#,
        r#"{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":1,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.73","new_quantity":"0.06317902"}]}]}"#,
        r#"{"type":"heartbeat","sequence":1,"last_trade_id":1,"product_id":"BTC-USD","time":"2021-04-17T16:43:37.121358Z"}"#,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn binance_never_panics_nor_corrupts(message in input(binance_corpus()), fast_path in any::<bool>()) {
        let registry = binance_registry();
        let mut feed = binance(&registry, fast_path);
        check(&mut feed, &message);
        prop_assert_eq!(feed.stats().messages, 2);
    }

    #[test]
    fn kraken_v1_never_panics_nor_corrupts(message in input(kraken_v1_corpus())) {
        let registry = registry(&[spec("kraken", "XBT/USD", 1, 8)]);
        let mut feed = KrakenV1Feed::new(&registry, registry.venue_id("kraken").unwrap(), StreamId(2), FeedConfig::default());
        let mut snapshot = kraken_v1_corpus()[2].clone();
        feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new()).unwrap();
        check(&mut feed, &message);
    }

    #[test]
    fn kraken_v2_never_panics_nor_corrupts(message in input(kraken_v2_corpus())) {
        let registry = registry(&[spec("kraken", "BTC/USD", 1, 8)]);
        let mut feed = KrakenV2Feed::new(&registry, registry.venue_id("kraken").unwrap(), StreamId(3), FeedConfig::default());
        let mut snapshot = kraken_v2_corpus()[1].clone();
        feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new()).unwrap();
        check(&mut feed, &message);
    }

    #[test]
    fn coinbase_never_panics_nor_corrupts(message in input(coinbase_corpus())) {
        let registry = registry(&[spec("coinbase", "BTC-USD", 2, 8)]);
        let mut feed = CoinbaseFeed::new(&registry, registry.venue_id("coinbase").unwrap(), StreamId(4), FeedConfig::default());
        let mut snapshot = coinbase_corpus()[1].clone();
        feed.on_message(&mut snapshot, UnixNanos(1), &mut RecordBuffer::new()).unwrap();
        check(&mut feed, &message);
    }
}
