//! Kraken: the v1 book recording verified by its own checksums, the v1 trade recording, and
//! v2 books and trades.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::collections::BTreeMap;

use aaiti_feeds::{
    FeedConfig, FeedHandler, KrakenV1Feed, KrakenV2Feed, MessageKind, MessageOutcome, RecordBuffer,
    RejectReason,
};
use aaiti_model::{
    BookCheck, BookDelta, ChecksumMethod, FeedEventKind, InstrumentId, InstrumentRegistry,
    RecordKind, Scale, Side, StreamId, Trade, UnixNanos,
};
use util::*;

/// The v1 recording's pairs, at the precision Kraken writes them (read off the snapshots:
/// the checksum is computed over exactly those digits).
fn kraken_v1_registry() -> InstrumentRegistry {
    let text = std::fs::read_to_string(KRAKEN_V1_BOOK).unwrap();
    let mut specs = Vec::new();
    for line in text.lines().filter(|l| l.contains(r#"{"as":[[""#)) {
        let pair = line.rsplit('"').nth(1).unwrap();
        let price = line
            .split(r#"{"as":[[""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let decimals = price.split('.').nth(1).map_or(0, str::len) as u8;
        specs.push(spec("kraken", pair, decimals, 8));
    }
    specs.push(spec("kraken", "BTC/USD", 1, 8));
    registry(&specs)
}

fn v1_feed(registry: &InstrumentRegistry) -> KrakenV1Feed {
    KrakenV1Feed::new(
        registry,
        registry.venue_id("kraken").unwrap(),
        StreamId(3),
        FeedConfig::default(),
    )
}

fn scales(registry: &InstrumentRegistry, id: InstrumentId) -> (Scale, Scale) {
    let instrument = registry.get(id).unwrap();
    (instrument.price_scale, instrument.qty_scale)
}

#[test]
fn v1_book_recording_checksums_verify() {
    let registry = kraken_v1_registry();
    assert_eq!(registry.len(), 11);
    let mut feed = v1_feed(&registry);
    let mut out = RecordBuffer::new();
    let mut books = RefBooks::default();
    let (mut checks, mut verified) = (0u32, 0u32);
    let mut checks_per_pair: BTreeMap<InstrumentId, u32> = BTreeMap::new();
    let mut deepest = 0usize;
    for (ts, mut bytes) in read_recording(KRAKEN_V1_BOOK) {
        out.clear();
        feed.on_message(&mut bytes, ts, &mut out).unwrap();
        for envelope in out.as_slice() {
            if let Some(delta) = envelope.payload::<BookDelta>() {
                books
                    .books
                    .entry(delta.instrument)
                    .or_default()
                    .apply(delta);
            }
            if let Some(check) = envelope.payload::<BookCheck>() {
                assert_eq!(check.method, ChecksumMethod::KrakenCrc32.code());
                assert_eq!(check.depth, 10);
                let book = &books.books[&check.instrument];
                deepest = deepest.max(book.bids.len()).max(book.asks.len());
                let (ps, qs) = scales(&registry, check.instrument);
                checks += 1;
                *checks_per_pair.entry(check.instrument).or_default() += 1;
                if kraken_checksum(book, ps, qs) == check.checksum {
                    verified += 1;
                }
                assert_eq!(book.venue_seq, check.venue_seq);
            }
        }
    }
    let stats = feed.stats();
    println!("checksums: {verified} of {checks} verify; deepest side {deepest}; {stats:?}");
    assert_eq!(stats.rejected_total(), 0);
    assert_eq!(stats.accepted(MessageKind::BookSnapshot), 10);
    assert_eq!(stats.accepted(MessageKind::BookUpdate), 4_269);
    assert_eq!(checks, 4_269);
    assert_eq!(verified, 4_269);
    assert_eq!(checks_per_pair.len(), 10);
    assert!(
        deepest <= 1000,
        "books are truncated to the subscribed depth"
    );
    assert_eq!(stats.books_valid, 10);
    assert_eq!(
        stats.messages,
        4_323 - 1 - 1,
        "header and client line are not messages"
    );
}

#[test]
fn v1_republished_and_truncated_levels() {
    let registry = registry(&[spec("kraken", "XBT/USD", 1, 8)]);
    let mut feed = v1_feed(&registry);
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(1);
    let mut snapshot = br#"[1,{"as":[["101.0","1.00000000","1618678133.1"],["102.0","2.00000000","1618678133.1"]],"bs":[["99.0","1.00000000","1618678133.1"]]},"book-10","XBT/USD"]"#.to_vec();
    feed.on_message(&mut snapshot, ts, &mut out).unwrap();
    assert!(has_event(out.as_slice(), FeedEventKind::BookValid));
    // Fill the asks to 10 levels, then insert a better one: the worst falls out of scope
    // and is deleted by the handler; a republished level is a plain Set.
    let mut levels = String::new();
    for i in 3..=10 {
        if i > 3 {
            levels.push(',');
        }
        levels.push_str(&format!(r#"["1{i:02}.0","1.00000000","1618678134.{i}"]"#));
    }
    let mut fill = format!(r#"[1,{{"a":[{levels}],"c":"1"}},"book-10","XBT/USD"]"#).into_bytes();
    out.clear();
    feed.on_message(&mut fill, ts, &mut out).unwrap();
    let mut better = br#"[1,{"a":[["100.5","1.00000000","1618678135.1"],["111.0","1.00000000","1618678135.1","r"]]},{"b":[["98.0","0.00000000","1618678135.2"]],"c":"2"},"book-10","XBT/USD"]"#.to_vec();
    out.clear();
    feed.on_message(&mut better, ts, &mut out).unwrap();
    let deltas: Vec<BookDelta> = out
        .iter()
        .filter_map(|e| e.payload::<BookDelta>().copied())
        .collect();
    // 100.5 set, 111.0 set (republished), 98.0 not held (no delete), then 110.0 and 111.0
    // truncated.
    let summary: Vec<(u8, i64, u8)> = deltas
        .iter()
        .map(|d| (d.action, d.price.0, d.flags))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 1005, 0),
            (1, 1110, 0),
            (2, 1100, 0),
            (2, 1110, BookDelta::FLAG_LAST)
        ]
    );
    assert_eq!(deltas[2].side, Side::Sell.code());
    let check = out.iter().find_map(|e| e.payload::<BookCheck>()).unwrap();
    assert_eq!(check.checksum, 2);
    assert_eq!(feed.stats().truncated_levels, 2);
    assert_eq!(feed.stats().republished_levels, 1);
    // Resync: updates are dropped until the next snapshot.
    out.clear();
    assert!(feed.request_resync(InstrumentId(0), ts, &mut out));
    assert!(has_event(out.as_slice(), FeedEventKind::ResyncRequested));
    assert_eq!(
        feed.on_message(&mut fill.clone(), ts, &mut out).unwrap(),
        MessageOutcome::Dropped(MessageKind::BookUpdate)
    );
    assert!(!feed.is_book_valid(InstrumentId(0)));
}

#[test]
fn v1_trade_recording() {
    let registry = kraken_v1_registry();
    let mut feed = v1_feed(&registry);
    let mut out = RecordBuffer::new();
    let mut trades = Vec::new();
    for (ts, mut bytes) in read_recording(KRAKEN_V1_TRADE) {
        out.clear();
        feed.on_message(&mut bytes, ts, &mut out).unwrap();
        trades.extend(out.iter().filter_map(|e| e.payload::<Trade>().copied()));
    }
    println!("{} trades, {:?}", trades.len(), feed.stats());
    assert!(!trades.is_empty());
    assert_eq!(feed.stats().rejected_total(), 0);
    assert!(
        trades
            .iter()
            .all(|t| t.price.0 > 0 && t.qty.0 > 0 && t.aggressor != 0)
    );
    let doc = std::fs::read(format!("{DATA}/kraken/v1/trade.json")).unwrap();
    out.clear();
    feed.on_message(&mut doc.clone(), UnixNanos(1), &mut out)
        .unwrap();
    let trade = out.as_slice()[0].payload::<Trade>().unwrap();
    assert_eq!(
        (trade.price.0, trade.qty.0, trade.aggressor),
        (35_411_000_000, 89_594_024, Side::Sell.code())
    );
    assert_eq!(
        out.as_slice()[0].header.ts_event,
        UnixNanos(1_618_678_142_557_535_000)
    );
}

fn v2_feed(registry: &InstrumentRegistry) -> KrakenV2Feed {
    KrakenV2Feed::new(
        registry,
        registry.venue_id("kraken").unwrap(),
        StreamId(4),
        FeedConfig::default(),
    )
}

#[test]
fn v2_book_snapshot_and_updates_with_checksums() {
    let registry = registry(&[spec("kraken", "BTC/USD", 1, 8)]);
    let (ps, qs) = scales(&registry, InstrumentId(0));
    let mut feed = v2_feed(&registry);
    let mut out = RecordBuffer::new();
    let mut book = RefBook::default();
    let verify = |out: &RecordBuffer, book: &mut RefBook| -> Vec<bool> {
        let mut results = Vec::new();
        for envelope in out.as_slice() {
            if let Some(delta) = envelope.payload::<BookDelta>() {
                book.apply(delta);
            }
            if let Some(check) = envelope.payload::<BookCheck>() {
                results.push(kraken_checksum(book, ps, qs) == check.checksum);
            }
        }
        results
    };
    let mut ack = br#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440410Z"}"#.to_vec();
    assert_eq!(
        feed.on_message(&mut ack, UnixNanos(1), &mut out).unwrap(),
        MessageOutcome::Control
    );
    assert_eq!(feed.depth(InstrumentId(0)), Some(10));
    let mut snapshot = std::fs::read(KRAKEN_V2_SNAPSHOT).unwrap();
    out.clear();
    let outcome = feed
        .on_message(&mut snapshot, UnixNanos(1), &mut out)
        .unwrap();
    assert_eq!(outcome, MessageOutcome::Applied(MessageKind::BookSnapshot));
    assert_eq!(
        verify(&out, &mut book),
        [true],
        "documented checksum 3310070434"
    );
    assert_eq!(
        out.iter()
            .find_map(|e| e.payload::<BookCheck>())
            .unwrap()
            .checksum,
        3_310_070_434
    );
    assert_eq!(book.best_bid(), Some(452_835));
    assert_eq!(book.asks[&452_852], 100_000);
    // Hand-written updates; their checksums come from the reference book so that the test
    // checks the deltas (insert inside the top 10 with truncation, delete, modify).
    let updates = [
        r#"{"bids":[{"price":45283.6,"qty":0.5}],"asks":[]}"#,
        r#"{"bids":[{"price":45283.4,"qty":0}],"asks":[{"price":45285.2,"qty":0.25},{"price":45284.0,"qty":1.0}]}"#,
        r#"{"bids":[],"asks":[{"price":45299.5,"qty":0.0},{"price":45300.0,"qty":2.5}]}"#,
    ];
    for (i, sides) in updates.iter().enumerate() {
        // Compute the expected checksum by applying the same change to a copy.
        let mut expected = book.clone();
        let parsed: serde_json::Value = serde_json::from_str(sides).unwrap();
        for (key, side) in [("bids", Side::Buy), ("asks", Side::Sell)] {
            for level in parsed[key].as_array().unwrap() {
                let price = (level["price"].as_f64().unwrap() * 10.0).round() as i64;
                let qty = (level["qty"].as_f64().unwrap() * 1e8).round() as i64;
                let map = if side == Side::Buy {
                    &mut expected.bids
                } else {
                    &mut expected.asks
                };
                if qty == 0 {
                    map.remove(&price)
                } else {
                    map.insert(price, qty)
                };
            }
        }
        while expected.bids.len() > 10 {
            let worst = *expected.bids.keys().next().unwrap();
            expected.bids.remove(&worst);
        }
        while expected.asks.len() > 10 {
            let worst = *expected.asks.keys().next_back().unwrap();
            expected.asks.remove(&worst);
        }
        let checksum = kraken_checksum(&expected, ps, qs);
        let inner = &sides[1..sides.len() - 1];
        let mut message = format!(
            r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD",{inner},"checksum":{checksum},"timestamp":"2023-10-06T17:35:5{i}.440295Z"}}]}}"#
        )
        .into_bytes();
        out.clear();
        let outcome = feed
            .on_message(&mut message, UnixNanos(2), &mut out)
            .unwrap();
        assert_eq!(outcome, MessageOutcome::Applied(MessageKind::BookUpdate));
        assert_eq!(verify(&out, &mut book), [true], "update {i}");
        assert_eq!(book.bids.len().max(book.asks.len()), 10);
        assert_eq!(
            out.as_slice()[0].header.ts_event.0 % 1_000_000_000,
            440_295_000
        );
    }
    // Exponents and wrong types are rejected; nothing changes.
    let before = book.clone();
    for (bad, reason) in [
        (
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":4.5e4,"qty":1}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:59Z"}]}"#,
            RejectReason::BadNumber,
        ),
        (
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"45000.0","qty":1}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:59Z"}]}"#,
            RejectReason::WrongType,
        ),
        (
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45000.05,"qty":1}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:59Z"}]}"#,
            RejectReason::TooManyDecimals,
        ),
        (
            r#"{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","bids":[],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:59Z"}]}"#,
            RejectReason::UnknownSymbol,
        ),
    ] {
        out.clear();
        let err = feed
            .on_message(&mut bad.as_bytes().to_vec(), UnixNanos(3), &mut out)
            .unwrap_err();
        assert_eq!(err.reason(), reason, "{bad}");
        assert_eq!(count_kind(out.as_slice(), RecordKind::BookDelta), 0);
    }
    assert_eq!(book.bids, before.bids);
}

#[test]
fn v2_trades_and_control() {
    let registry = registry(&[spec("kraken", "MATIC/USD", 4, 8)]);
    let mut feed = v2_feed(&registry);
    let mut out = RecordBuffer::new();
    let mut trade = br#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"},{"symbol":"MATIC/USD","side":"buy","price":0.5118,"qty":1.5,"ord_type":"limit","trade_id":4665907,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#.to_vec();
    feed.on_message(&mut trade, UnixNanos(1), &mut out).unwrap();
    let trades: Vec<Trade> = out
        .iter()
        .filter_map(|e| e.payload::<Trade>().copied())
        .collect();
    assert_eq!(trades.len(), 2);
    assert_eq!(
        (trades[0].price.0, trades[0].qty.0, trades[0].trade_id),
        (5117, 4_000_000_000, 4_665_906)
    );
    assert_eq!(trades[0].aggressor, Side::Sell.code());
    assert_eq!(trades[1].aggressor, Side::Buy.code());
    for control in [
        r#"{"channel":"heartbeat"}"#,
        r#"{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online","api_version":"v2","connection_id":1}]}"#,
        r#"{"method":"pong","req_id":1,"time_in":"2023-09-25T07:49:37.708706Z","time_out":"2023-09-25T07:49:37.708706Z"}"#,
    ] {
        assert_eq!(
            feed.on_message(&mut control.as_bytes().to_vec(), UnixNanos(1), &mut out)
                .unwrap(),
            MessageOutcome::Control
        );
    }
    // An update before any snapshot is dropped (the book is not valid yet).
    let mut update = br#"{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5,"qty":1}],"asks":[],"checksum":1,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#.to_vec();
    assert_eq!(
        feed.on_message(&mut update, UnixNanos(1), &mut out)
            .unwrap(),
        MessageOutcome::Dropped(MessageKind::BookUpdate)
    );
}
