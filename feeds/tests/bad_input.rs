//! Every reject class, on every venue: a typed error, one `Rejected` event carrying the
//! reason code, counters, and no other change (books, sequences, sync state).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_feeds::{
    BinanceFeed, CoinbaseFeed, FeedConfig, FeedHandler, KrakenV1Feed, KrakenV2Feed, MessageKind,
    MessageOutcome, RecordBuffer, RejectReason,
};
use aaiti_model::{FeedEvent, FeedEventKind, InstrumentId, StreamId, UnixNanos};
use util::*;

const DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":101,"u":103,"b":[["61737.63000000","0.50000000"]],"a":[["61837.64000000","1.54698000"]]}}"#;

fn depth_with(from: &str, to: &str) -> String {
    assert!(DEPTH.contains(from), "{from}");
    DEPTH.replacen(from, to, 1)
}

/// Feeds `message` and checks the rejection contract.
fn assert_rejected<H: FeedHandler>(
    feed: &mut H,
    message: &[u8],
    reason: RejectReason,
    probe: impl Fn(&H) -> String,
) {
    let before = probe(feed);
    let seq = feed.last_seq();
    let rejected = feed.stats().rejected(reason);
    let mut out = RecordBuffer::new();
    let mut bytes = message.to_vec();
    let err = feed
        .on_message(&mut bytes, UnixNanos(42), &mut out)
        .unwrap_err();
    assert_eq!(err.reason(), reason, "{}", String::from_utf8_lossy(message));
    assert_eq!(out.len(), 1, "only the Rejected event");
    let event = out.as_slice()[0].payload::<FeedEvent>().unwrap();
    assert_eq!(event.kind, FeedEventKind::Rejected.code());
    assert_eq!(event.value, i64::from(reason.code()));
    assert_eq!(out.as_slice()[0].header.seq, seq + 1);
    assert_eq!(feed.stats().rejected(reason), rejected + 1);
    assert_eq!(probe(feed), before, "state changed by a rejected message");
}

fn binance_probe(feed: &BinanceFeed) -> String {
    let s = feed.stats();
    format!(
        "{:?} {} {} {} {} {}",
        feed.book_update_id(InstrumentId(0)),
        s.updates_applied,
        s.updates_buffered,
        s.updates_dropped,
        s.snapshots_applied,
        s.gaps
    )
}

#[test]
fn binance_rejects_every_class_and_keeps_its_book() {
    for fast_path in [true, false] {
        let registry = binance_registry();
        let venue = registry.venue_id("binance").unwrap();
        let config = FeedConfig {
            fast_path,
            max_levels_per_message: 4,
            ..FeedConfig::default()
        };
        let mut feed = BinanceFeed::new_spot(&registry, venue, StreamId(1), config);
        let mut out = RecordBuffer::new();
        let mut snapshot =
            br#"{"lastUpdateId":100,"bids":[["61737.00","1"]],"asks":[["61838.00","1"]]}"#.to_vec();
        feed.on_message(&mut snapshot, UnixNanos(1), &mut out)
            .unwrap();
        assert_eq!(feed.book_update_id(InstrumentId(0)), Some(100));
        let cases: Vec<(String, RejectReason)> = vec![
            (DEPTH[..DEPTH.len() / 2].to_owned(), RejectReason::Truncated),
            (String::new(), RejectReason::Truncated),
            ("\u{1}garbage{".to_owned(), RejectReason::Malformed),
            (DEPTH.replace("}}", "}}}"), RejectReason::Malformed),
            ("[1,2,3]".to_owned(), RejectReason::UnknownMessageType),
            (
                depth_with("btcusdt@depth@100ms", "btcusdt@kline_1m"),
                RejectReason::UnknownMessageType,
            ),
            (
                r#"{"e":"kline","E":1,"s":"BTCUSDT"}"#.to_owned(),
                RejectReason::UnknownMessageType,
            ),
            (
                depth_with(r#""E":"#, r#""x":1,"E":"#),
                RejectReason::UnknownField,
            ),
            (
                depth_with(r#","data""#, r#","extra":1,"data""#),
                RejectReason::UnknownField,
            ),
            (
                depth_with(r#""u":103"#, r#""u":103,"u":103"#),
                RejectReason::DuplicateField,
            ),
            (depth_with(r#""u":103,"#, ""), RejectReason::MissingField),
            (
                depth_with("1723161255208", r#""1723161255208""#),
                RejectReason::WrongType,
            ),
            (
                depth_with(r#""61737.63000000""#, "61737.63"),
                RejectReason::WrongType,
            ),
            (
                depth_with(r#"[["61737.63000000","0.50000000"]]"#, r#""61737.63""#),
                RejectReason::WrongType,
            ),
            (
                depth_with(
                    r#"["61737.63000000","0.50000000"]"#,
                    r#"["61737.63000000"]"#,
                ),
                RejectReason::WrongType,
            ),
            (
                depth_with("1723161255208", "1723161255208.5"),
                RejectReason::WrongType,
            ),
            (
                depth_with("BTCUSDT", "ETHUSDT").replace("btcusdt", "ethusdt"),
                RejectReason::UnknownSymbol,
            ),
            (
                depth_with("61737.63000000", "6.173763e4"),
                RejectReason::BadNumber,
            ),
            (
                depth_with("61737.63000000", "61737.63000000 "),
                RejectReason::BadNumber,
            ),
            (depth_with("61737.63000000", ""), RejectReason::BadNumber),
            (
                depth_with("61737.63000000", "99999999999999999999"),
                RejectReason::NumberOutOfRange,
            ),
            (
                depth_with("61737.63000000", "61737.631"),
                RejectReason::TooManyDecimals,
            ),
            (
                depth_with(r#""U":101"#, r#""U":-101"#),
                RejectReason::NumberOutOfRange,
            ),
            (
                depth_with("1723161255208", "17231612552080000"),
                RejectReason::BadTimestamp,
            ),
            (
                depth_with("0.50000000", "-0.50000000"),
                RejectReason::InvalidQuantity,
            ),
            (
                depth_with("61737.63000000", "0.00"),
                RejectReason::InvalidPrice,
            ),
            (
                depth_with("61737.63000000", "-61737.63"),
                RejectReason::InvalidPrice,
            ),
            (
                depth_with(r#""U":101"#, r#""U":104"#),
                RejectReason::Inconsistent,
            ),
            (
                depth_with(r#""s":"BTCUSDT""#, r#""s":"ETHUSDT""#),
                RejectReason::Inconsistent,
            ),
            (
                depth_with("depthUpdate", "trade"),
                RejectReason::Inconsistent,
            ),
            (
                depth_with(
                    r#"["61737.63000000","0.50000000"]"#,
                    &[r#"["1.00","1"]"#; 5].join(","),
                ),
                RejectReason::TooLarge,
            ),
        ];
        for (message, reason) in &cases {
            assert_rejected(&mut feed, message.as_bytes(), *reason, binance_probe);
        }
        let covered: std::collections::BTreeSet<_> = cases.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            covered.len(),
            RejectReason::ALL.len(),
            "every reason exercised"
        );
        // The book is intact: the next diff in sequence applies.
        let mut good = DEPTH.as_bytes().to_vec();
        assert_eq!(
            feed.on_message(&mut good, UnixNanos(2), &mut out).unwrap(),
            MessageOutcome::Applied(MessageKind::BookUpdate)
        );
        assert_eq!(feed.book_update_id(InstrumentId(0)), Some(103));
        assert_eq!(feed.stats().rejected_total(), cases.len() as u64);
    }
}

#[test]
fn kraken_v1_rejects() {
    let registry = registry(&[spec("kraken", "XBT/USD", 1, 8)]);
    let mut feed = KrakenV1Feed::new(
        &registry,
        registry.venue_id("kraken").unwrap(),
        StreamId(2),
        FeedConfig::default(),
    );
    let mut out = RecordBuffer::new();
    let mut snapshot = br#"[1,{"as":[["101.0","1.00000000","1618678133.1"]],"bs":[["99.0","1.00000000","1618678133.1"]]},"book-10","XBT/USD"]"#.to_vec();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut out)
        .unwrap();
    let probe = |f: &KrakenV1Feed| {
        format!(
            "{} {} {}",
            f.is_book_valid(InstrumentId(0)),
            f.stats().updates_applied,
            f.stats().truncated_levels
        )
    };
    let update =
        r#"[1,{"a":[["101.5","1.00000000","1618678134.1"]],"c":"123"},"book-10","XBT/USD"]"#;
    for (message, reason) in [
        (&update[..20], RejectReason::Truncated),
        ("not json", RejectReason::Malformed),
        (r#"{"event":"nope"}"#, RejectReason::UnknownMessageType),
        (
            &update.replace("book-10", "ticker"),
            RejectReason::UnknownMessageType,
        ),
        (
            &update.replace("book-10", "book-7"),
            RejectReason::UnknownMessageType,
        ),
        (
            &update.replace(r#""c":"123""#, r#""c":"123","x":1"#),
            RejectReason::UnknownField,
        ),
        (
            &update.replace(r#""c":"123""#, r#""c":"123","c":"1""#),
            RejectReason::DuplicateField,
        ),
        (
            &update.replace(r#""c":"123""#, r#""c":123"#),
            RejectReason::WrongType,
        ),
        (
            &update.replace("XBT/USD", "ETH/USD"),
            RejectReason::UnknownSymbol,
        ),
        (&update.replace("101.5", "1.015e2"), RejectReason::BadNumber),
        (
            &update.replace("101.5", "101.55"),
            RejectReason::TooManyDecimals,
        ),
        (
            &update.replace(r#""c":"123""#, r#""c":"99999999999""#),
            RejectReason::NumberOutOfRange,
        ),
        (
            &update.replace("1.00000000", "-1.00000000"),
            RejectReason::InvalidQuantity,
        ),
        (
            &update.replace("1618678134.1", "yesterday"),
            RejectReason::BadTimestamp,
        ),
        (
            &update.replace(r#""1618678134.1"]"#, r#""1618678134.1","x"]"#),
            RejectReason::Inconsistent,
        ),
    ] {
        assert_rejected(&mut feed, message.as_bytes(), reason, probe);
    }
}

#[test]
fn kraken_v2_rejects() {
    let registry = registry(&[spec("kraken", "BTC/USD", 1, 8)]);
    let mut feed = KrakenV2Feed::new(
        &registry,
        registry.venue_id("kraken").unwrap(),
        StreamId(2),
        FeedConfig::default(),
    );
    let mut out = RecordBuffer::new();
    feed.on_message(
        &mut std::fs::read(KRAKEN_V2_SNAPSHOT).unwrap(),
        UnixNanos(1),
        &mut out,
    )
    .unwrap();
    let probe = |f: &KrakenV2Feed| {
        format!(
            "{} {}",
            f.is_book_valid(InstrumentId(0)),
            f.stats().updates_applied
        )
    };
    let update = r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.6,"qty":0.5}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#;
    for (message, reason) in [
        (&update[..50], RejectReason::Truncated),
        ("{]", RejectReason::Malformed),
        (
            &update.replace(r#""channel":"book""#, r#""channel":"ohlc""#),
            RejectReason::UnknownMessageType,
        ),
        (
            &update.replace(r#""checksum":1"#, r#""checksum":1,"depth":10"#),
            RejectReason::UnknownField,
        ),
        (
            &update.replace(r#""qty":0.5"#, r#""qty":0.5,"qty":1"#),
            RejectReason::DuplicateField,
        ),
        (
            &update.replace(r#","timestamp":"2023-10-06T17:35:55.440295Z""#, ""),
            RejectReason::MissingField,
        ),
        (
            &update.replace("45283.6", r#""45283.6""#),
            RejectReason::WrongType,
        ),
        (
            &update.replace("BTC/USD", "ETH/USD"),
            RejectReason::UnknownSymbol,
        ),
        (
            &update.replace("45283.6", "4.52836e4"),
            RejectReason::BadNumber,
        ),
        (
            &update.replace("45283.6", "45283.65"),
            RejectReason::TooManyDecimals,
        ),
        (
            &update.replace("45283.6", "9223372036854775808.0"),
            RejectReason::NumberOutOfRange,
        ),
        (
            &update.replace("0.5", "-0.5"),
            RejectReason::InvalidQuantity,
        ),
        (&update.replace("45283.6", "0"), RejectReason::InvalidPrice),
        (
            &update.replace(r#""checksum":1"#, r#""checksum":4294967296"#),
            RejectReason::NumberOutOfRange,
        ),
        (
            &update.replace("2023-10-06T17", "2023-13-06T17"),
            RejectReason::BadTimestamp,
        ),
    ] {
        assert_rejected(&mut feed, message.as_bytes(), reason, probe);
    }
}

#[test]
fn coinbase_rejects() {
    let registry = registry(&[spec("coinbase", "SKL-USD", 4, 1)]);
    let mut feed = CoinbaseFeed::new(
        &registry,
        registry.venue_id("coinbase").unwrap(),
        StreamId(2),
        FeedConfig::default(),
    );
    let mut out = RecordBuffer::new();
    let mut snapshot = std::fs::read(format!("{DATA}/coinbase/snapshot.json")).unwrap();
    feed.on_message(&mut snapshot, UnixNanos(1), &mut out)
        .unwrap();
    let probe = |f: &CoinbaseFeed| {
        format!(
            "{} {}",
            f.is_book_valid(InstrumentId(0)),
            f.stats().updates_applied
        )
    };
    let update = r#"{"type":"l2update","product_id":"SKL-USD","changes":[["sell","0.7923","7441.5"]],"time":"2021-04-17T16:43:37.075351Z"}"#;
    for (message, reason) in [
        (&update[..update.len() - 1], RejectReason::Truncated),
        ("\u{ff}", RejectReason::Malformed),
        (
            &update.replace("l2update", "l3update"),
            RejectReason::UnknownMessageType,
        ),
        (
            &update.replace(r#""time""#, r#""sequence":1,"time""#),
            RejectReason::UnknownField,
        ),
        (
            &update.replace(
                r#""product_id":"SKL-USD""#,
                r#""product_id":"SKL-USD","product_id":"SKL-USD""#,
            ),
            RejectReason::DuplicateField,
        ),
        (
            &update.replace(r#","time":"2021-04-17T16:43:37.075351Z""#, ""),
            RejectReason::MissingField,
        ),
        (
            &update.replace(r#""7441.5""#, "7441.5"),
            RejectReason::WrongType,
        ),
        (
            &update.replace("SKL-USD", "BTC-USD"),
            RejectReason::UnknownSymbol,
        ),
        (
            &update.replace("0.7923", "7.923E-1"),
            RejectReason::BadNumber,
        ),
        (
            &update.replace("7441.5", "7441.55"),
            RejectReason::TooManyDecimals,
        ),
        (
            &update.replace("7441.5", "7441.5e400"),
            RejectReason::BadNumber,
        ),
        (
            &update.replace("7441.5", "-7441.5"),
            RejectReason::InvalidQuantity,
        ),
        (
            &update.replace("0.7923", "-0.7923"),
            RejectReason::InvalidPrice,
        ),
        (
            &update.replace(r#""sell""#, r#""short""#),
            RejectReason::Inconsistent,
        ),
        (
            &update.replace("2021-04-17T16", "2021-04-17X16"),
            RejectReason::BadTimestamp,
        ),
        (
            &update.replace("7441.5", "99999999999999999999.5"),
            RejectReason::NumberOutOfRange,
        ),
    ] {
        assert_rejected(&mut feed, message.as_bytes(), reason, probe);
    }
}

#[test]
fn reject_logging_is_rate_limited_but_counting_is_not() {
    let registry = binance_registry();
    let mut feed = BinanceFeed::new_spot(
        &registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        FeedConfig::default(),
    );
    let mut out = RecordBuffer::new();
    for i in 0..1000u64 {
        let mut garbage = b"garbage".to_vec();
        assert!(
            feed.on_message(&mut garbage, UnixNanos(i * 1_000_000), &mut out)
                .is_err()
        );
    }
    assert_eq!(feed.stats().rejected(RejectReason::Malformed), 1000);
    assert_eq!(
        count_kind(out.as_slice(), aaiti_model::RecordKind::FeedEvent),
        1000
    );
}
