//! Coinbase: the Exchange recording (books rebuilt and compared with the venue's ticker) and
//! Advanced Trade `l2_data` with its sequence numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_feeds::{
    CoinbaseFeed, FeedConfig, FeedHandler, MessageKind, MessageOutcome, RecordBuffer, RejectReason,
};
use aaiti_model::{
    BookDelta, FeedEventKind, InstrumentId, InstrumentRegistry, RecordKind, Side, StreamId,
    TopOfBook, Trade, UnixNanos,
};
use util::*;

const PRODUCTS: [&str; 10] = [
    "SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP",
    "CRV-EUR", "SKL-GBP",
];

fn coinbase_registry() -> InstrumentRegistry {
    let mut specs: Vec<_> = PRODUCTS.iter().map(|p| spec("coinbase", p, 8, 8)).collect();
    specs.push(spec("coinbase", "BTC-USD", 2, 8));
    registry(&specs)
}

fn feed(registry: &InstrumentRegistry) -> CoinbaseFeed {
    CoinbaseFeed::new(
        registry,
        registry.venue_id("coinbase").unwrap(),
        StreamId(5),
        FeedConfig::default(),
    )
}

#[test]
fn exchange_recording_books_agree_with_ticker() {
    let registry = coinbase_registry();
    let mut feed = feed(&registry);
    let mut out = RecordBuffer::new();
    let mut books = RefBooks::default();
    let (mut checks, mut agree) = (0u32, 0u32);
    let mut trades = 0;
    for (ts, mut bytes) in read_recording(COINBASE) {
        out.clear();
        feed.on_message(&mut bytes, ts, &mut out).unwrap();
        books.apply_all(out.as_slice());
        trades += count_kind(out.as_slice(), RecordKind::Trade);
        for top in out.iter().filter_map(|e| e.payload::<TopOfBook>()) {
            let Some(book) = books.books.get(&top.instrument) else {
                continue;
            };
            checks += 1;
            if book.best_bid() == Some(top.bid_price.0) && book.best_ask() == Some(top.ask_price.0)
            {
                agree += 1;
            }
        }
    }
    let stats = feed.stats();
    println!("book vs ticker best bid/ask: {agree} of {checks} agree; {trades} trades; {stats:?}");
    assert_eq!(stats.rejected_total(), 0);
    assert_eq!(stats.accepted(MessageKind::BookSnapshot), 10);
    assert_eq!(stats.accepted(MessageKind::Ticker), 107);
    assert_eq!(
        stats.accepted(MessageKind::Trade),
        107,
        "97 match + 10 last_match"
    );
    assert_eq!(
        stats.updates_dropped, 0,
        "every l2update follows its snapshot"
    );
    assert_eq!(stats.books_valid, 10);
    assert_eq!(books.books.len(), 10);
    assert_eq!(checks, 107);
    assert!(agree >= 100, "{agree} of {checks}");
    for book in books.books.values() {
        assert!(book.best_bid() < book.best_ask(), "books never cross");
    }
}

#[test]
fn documented_messages() {
    let registry = coinbase_registry();
    let mut feed = feed(&registry);
    let mut out = RecordBuffer::new();
    let doc = |name: &str| std::fs::read(format!("{DATA}/coinbase/{name}.json")).unwrap();
    let ts = UnixNanos(1);
    // An update before the snapshot is dropped.
    assert_eq!(
        feed.on_message(&mut doc("l2update"), ts, &mut out).unwrap(),
        MessageOutcome::Dropped(MessageKind::BookUpdate)
    );
    assert_eq!(
        feed.on_message(&mut doc("snapshot"), ts, &mut out).unwrap(),
        MessageOutcome::Applied(MessageKind::BookSnapshot)
    );
    assert!(has_event(out.as_slice(), FeedEventKind::BookValid));
    out.clear();
    assert_eq!(
        feed.on_message(&mut doc("l2update"), ts, &mut out).unwrap(),
        MessageOutcome::Applied(MessageKind::BookUpdate)
    );
    let delta = out.as_slice()[0].payload::<BookDelta>().unwrap();
    assert_eq!(
        (delta.side, delta.price.0, delta.qty.0, delta.flags),
        (
            Side::Sell.code(),
            79_230_000,
            744_150_000_000,
            BookDelta::FLAG_LAST
        )
    );
    assert_eq!(
        out.as_slice()[0].header.ts_event,
        UnixNanos(1_618_677_817_075_351_000)
    );
    out.clear();
    feed.on_message(&mut doc("match"), ts, &mut out).unwrap();
    let trade = out.as_slice()[0].payload::<Trade>().unwrap();
    assert_eq!(
        (trade.trade_id, trade.aggressor, trade.price.0),
        (1_568_268, Side::Buy.code(), 79_100_000)
    );
    out.clear();
    feed.on_message(&mut doc("ticker"), ts, &mut out).unwrap();
    let top = out.as_slice()[0].payload::<TopOfBook>().unwrap();
    assert_eq!(
        (
            top.bid_price.0,
            top.ask_price.0,
            top.bid_qty.0,
            top.venue_seq
        ),
        (79_010_000, 79_110_000, 0, 201_390_042)
    );
    assert_eq!(
        feed.on_message(&mut doc("subscriptions"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Control
    );
    let mut with_sizes = br#"{"type":"ticker","sequence":5,"product_id":"BTC-USD","price":"100.00","best_bid":"99.00","best_bid_size":"1.5","best_ask":"101.00","best_ask_size":"0.25"}"#.to_vec();
    out.clear();
    feed.on_message(&mut with_sizes, ts, &mut out).unwrap();
    let top = out.as_slice()[0].payload::<TopOfBook>().unwrap();
    assert_eq!((top.bid_qty.0, top.ask_qty.0), (150_000_000, 25_000_000));
    let mut full_channel = br#"{"type":"received","product_id":"BTC-USD"}"#.to_vec();
    assert_eq!(
        feed.on_message(&mut full_channel, ts, &mut out)
            .unwrap_err()
            .reason(),
        RejectReason::UnknownMessageType
    );
}

fn l2_data(sequence: u64, kind: &str, updates: &str) -> Vec<u8> {
    format!(
        r#"{{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":{sequence},"events":[{{"type":"{kind}","product_id":"BTC-USD","updates":[{updates}]}}]}}"#
    )
    .into_bytes()
}

#[test]
fn advanced_trade_level2_and_sequence_gaps() {
    let registry = coinbase_registry();
    let mut feed = feed(&registry);
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(1);
    let btc = InstrumentId(10);
    let snapshot = r#"{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73","new_quantity":"0.06317902"},{"side":"offer","event_time":"1970-01-01T00:00:00Z","price_level":"21921.74","new_quantity":"1.5"}"#;
    feed.on_message(&mut l2_data(0, "snapshot", snapshot), ts, &mut out)
        .unwrap();
    assert!(feed.is_book_valid(btc));
    let update = r#"{"side":"bid","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.73","new_quantity":"0"}"#;
    out.clear();
    feed.on_message(&mut l2_data(1, "update", update), ts, &mut out)
        .unwrap();
    let delta = out.as_slice()[0].payload::<BookDelta>().unwrap();
    assert_eq!((delta.action, delta.venue_seq), (2, 1));
    let mut heartbeat = br#"{"channel":"heartbeats","client_id":"","timestamp":"2023-02-09T20:32:51Z","sequence_num":2,"events":[{"current_time":"2023-02-09 20:32:51.123 +0000 UTC m=+1.0","heartbeat_counter":3}]}"#.to_vec();
    assert_eq!(
        feed.on_message(&mut heartbeat, ts, &mut out).unwrap(),
        MessageOutcome::Control
    );
    // Sequence 3 is lost.
    out.clear();
    assert_eq!(
        feed.on_message(&mut l2_data(4, "update", update), ts, &mut out)
            .unwrap(),
        MessageOutcome::Dropped(MessageKind::BookUpdate)
    );
    let events = feed_events(out.as_slice());
    assert_eq!(events[0].kind, FeedEventKind::Gap.code());
    assert_eq!((events[0].venue_seq, events[0].expected), (4, 3));
    assert_eq!(events[1].kind, FeedEventKind::ResyncRequested.code());
    assert!(!feed.is_book_valid(btc));
    assert_eq!(feed.stats().gaps, 1);
    feed.on_message(&mut l2_data(5, "snapshot", snapshot), ts, &mut out)
        .unwrap();
    assert!(feed.is_book_valid(btc));
}
