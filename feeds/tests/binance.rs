//! Binance: the spot recording end to end, gaps, and the futures `pu` chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_feeds::{
    BinanceFeed, FeedConfig, FeedError, FeedHandler, MessageKind, MessageOutcome, RecordBuffer,
    RejectReason,
};
use aaiti_model::{
    BookAction, BookDelta, FeedEventKind, InstrumentId, RecordKind, StreamId, TopOfBook, Trade,
    UnixNanos,
};
use util::*;

fn spot() -> BinanceFeed {
    let registry = binance_registry();
    BinanceFeed::new_spot(
        &registry,
        registry.venue_id("binance").unwrap(),
        StreamId(7),
        FeedConfig::default(),
    )
}

#[test]
fn spot_recording_end_to_end() {
    let messages = read_recording(BINANCE_SPOT);
    assert_eq!(messages.len(), 99_574);
    let mut feed = spot();
    let mut out = RecordBuffer::new();
    let mut books = RefBooks::default();
    let mut last_ticker: Option<TopOfBook> = None;
    let mut tickers: Vec<TopOfBook> = Vec::new();
    let (mut bbo_checks, mut bbo_agree, mut by_id_agree) = (0u32, 0u32, 0u32);
    let mut expected_seq = 1;
    let mut outcomes = std::collections::BTreeMap::new();
    for (ts, bytes) in &messages {
        let mut bytes = bytes.clone();
        out.clear();
        let outcome = feed.on_message(&mut bytes, *ts, &mut out).unwrap();
        *outcomes.entry(format!("{outcome:?}")).or_insert(0u32) += 1;
        for envelope in out.as_slice() {
            assert_eq!(envelope.header.seq, expected_seq);
            assert_eq!(envelope.header.stream, StreamId(7));
            // Buffered diffs keep their own receive time.
            assert!(envelope.header.ts_recv <= *ts);
            envelope.validate().unwrap();
            expected_seq += 1;
        }
        books.apply_all(out.as_slice());
        if let Some(top) = out.as_slice().iter().find_map(|e| e.payload::<TopOfBook>()) {
            last_ticker = Some(*top);
            tickers.push(*top);
        }
        // After each applied diff, compare with the venue's latest bookTicker.
        if outcome == MessageOutcome::Applied(MessageKind::BookUpdate)
            && let Some(top) = last_ticker
        {
            let book = &books.books[&InstrumentId(0)];
            bbo_checks += 1;
            if book.best_bid() == Some(top.bid_price.0) && book.best_ask() == Some(top.ask_price.0)
            {
                bbo_agree += 1;
            }
            // The venue's BBO as of the book's update id: the last bookTicker with u <= it.
            let id = book.venue_seq;
            if let Some(top) = tickers.iter().rev().find(|t| t.venue_seq <= id)
                && book.best_bid() == Some(top.bid_price.0)
                && book.best_ask() == Some(top.ask_price.0)
            {
                by_id_agree += 1;
            }
        }
    }
    let stats = feed.stats();
    println!("outcomes: {outcomes:?}");
    println!("stats: {stats:?}");
    println!(
        "book vs bookTicker best bid/ask: latest received {bbo_agree} of {bbo_checks} agree, \
         latest with u <= book id {by_id_agree} of {bbo_checks}"
    );
    assert_eq!(stats.messages, 99_574);
    assert_eq!(stats.rejected_total(), 0);
    assert_eq!(stats.accepted(MessageKind::BookSnapshot), 1);
    assert_eq!(stats.accepted(MessageKind::BookUpdate), 6_495);
    assert_eq!(stats.accepted(MessageKind::Ticker), 73_174);
    assert_eq!(stats.accepted(MessageKind::Trade), 19_904);
    assert_eq!(stats.gaps, 0);
    assert_eq!(stats.resyncs_requested, 0);
    assert_eq!(stats.snapshots_applied, 1);
    assert_eq!(stats.books_valid, 1);
    // The diffs before the snapshot were buffered; those wholly older than it dropped (the
    // documented rule); every other diff applied.
    assert_eq!(stats.updates_dropped + stats.updates_applied, 6_495);
    assert!(stats.updates_dropped <= stats.updates_buffered);
    assert!(
        stats.fast_path_hits >= 99_573 - 10,
        "fast path hits {}",
        stats.fast_path_hits
    );
    assert!(!feed.needs_snapshot(InstrumentId(0)));
    assert!(feed.is_book_valid(InstrumentId(0)));
    assert!(
        bbo_agree as f64 >= 0.99 * f64::from(bbo_checks),
        "{bbo_agree} of {bbo_checks}"
    );
    assert_eq!(feed.last_seq(), expected_seq - 1);
}

fn depth(first: u64, last: u64, bid: &str) -> Vec<u8> {
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":{first},"u":{last},"b":[["{bid}","1.00000000"]],"a":[]}}}}"#
    )
    .into_bytes()
}

fn snapshot(id: u64) -> Vec<u8> {
    format!(r#"{{"lastUpdateId":{id},"bids":[["100.00","1"]],"asks":[["101.00","2"]]}}"#)
        .into_bytes()
}

#[test]
fn spot_sync_buffers_drops_stale_and_detects_gaps() {
    let mut feed = spot();
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(1);
    let id = InstrumentId(0);
    assert!(feed.needs_snapshot(id));
    // Buffered before the snapshot: 10..=12 is stale (u <= 15), 13..=17 straddles it.
    for (first, last) in [(10, 12), (13, 17)] {
        let outcome = feed
            .on_message(&mut depth(first, last, "99.00"), ts, &mut out)
            .unwrap();
        assert_eq!(outcome, MessageOutcome::Buffered(MessageKind::BookUpdate));
    }
    assert!(out.is_empty());
    let outcome = feed.on_message(&mut snapshot(15), ts, &mut out).unwrap();
    assert_eq!(outcome, MessageOutcome::Applied(MessageKind::BookSnapshot));
    let deltas: Vec<BookDelta> = out
        .iter()
        .filter_map(|e| e.payload::<BookDelta>().copied())
        .collect();
    assert_eq!(deltas[0].action, BookAction::Clear.code());
    assert_eq!(
        deltas.len(),
        4,
        "clear, 2 snapshot levels, 1 buffered diff level"
    );
    assert_eq!(
        deltas[2].flags,
        BookDelta::FLAG_SNAPSHOT | BookDelta::FLAG_LAST
    );
    assert_eq!(deltas[3].venue_seq, 17);
    assert_eq!(deltas[3].flags, BookDelta::FLAG_LAST);
    assert!(has_event(out.as_slice(), FeedEventKind::BookValid));
    assert_eq!(feed.book_update_id(id), Some(17));
    assert_eq!(feed.stats().updates_dropped, 1);

    // In sequence, then stale, then a gap.
    out.clear();
    assert_eq!(
        feed.on_message(&mut depth(18, 20, "99.50"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Applied(MessageKind::BookUpdate)
    );
    assert_eq!(
        feed.on_message(&mut depth(19, 20, "99.50"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Dropped(MessageKind::BookUpdate)
    );
    out.clear();
    // 21..=22 is missing.
    assert_eq!(
        feed.on_message(&mut depth(23, 25, "99.60"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Buffered(MessageKind::BookUpdate)
    );
    let events = feed_events(out.as_slice());
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, FeedEventKind::Gap.code());
    assert_eq!((events[0].venue_seq, events[0].expected), (23, 21));
    assert_eq!(events[1].kind, FeedEventKind::ResyncRequested.code());
    assert_eq!(
        count_kind(out.as_slice(), RecordKind::BookDelta),
        0,
        "nothing applied on a gap"
    );
    assert!(feed.needs_snapshot(id));
    assert!(!feed.is_book_valid(id));
    assert_eq!(feed.stats().gaps, 1);

    // Later diffs wait for the snapshot; an old snapshot is refused.
    out.clear();
    feed.on_message(&mut depth(26, 30, "99.70"), ts, &mut out)
        .unwrap();
    assert_eq!(
        feed.on_message(&mut snapshot(20), ts, &mut out).unwrap(),
        MessageOutcome::Dropped(MessageKind::BookSnapshot)
    );
    assert!(has_event(out.as_slice(), FeedEventKind::ResyncRequested));
    assert_eq!(feed.stats().snapshots_discarded, 1);
    // A good one: 23..=25 straddles 24, then 26..=30 chains.
    out.clear();
    feed.on_message(&mut snapshot(24), ts, &mut out).unwrap();
    assert!(has_event(out.as_slice(), FeedEventKind::BookValid));
    assert_eq!(feed.book_update_id(id), Some(30));
}

#[test]
fn spot_gap_in_recording_when_a_diff_is_dropped() {
    let messages = read_recording(BINANCE_SPOT);
    let mut feed = spot();
    let mut out = RecordBuffer::new();
    let mut depth_seen = 0;
    let mut gap_records = Vec::new();
    for (ts, bytes) in &messages {
        let is_depth = bytes.windows(13).any(|w| w == b"\"depthUpdate\"");
        if is_depth {
            depth_seen += 1;
            if depth_seen == 100 {
                continue; // lost on the wire
            }
        }
        out.clear();
        feed.on_message(&mut bytes.clone(), *ts, &mut out).unwrap();
        if has_event(out.as_slice(), FeedEventKind::Gap) {
            gap_records = out.as_slice().to_vec();
            break;
        }
    }
    assert_eq!(depth_seen, 101, "the gap is found on the next diff");
    assert!(has_event(&gap_records, FeedEventKind::ResyncRequested));
    assert!(feed.needs_snapshot(InstrumentId(0)));
    assert!(!feed.is_book_valid(InstrumentId(0)));
    assert_eq!(feed.stats().gaps, 1);
}

fn futures_depth(first: u64, last: u64, prev: u64) -> Vec<u8> {
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"T":1723161255200,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},"b":[["100.10","1.5"]],"a":[["101.10","0"]]}}}}"#
    )
    .into_bytes()
}

#[test]
fn futures_pu_chain() {
    let registry = binance_registry();
    let venue = registry.venue_id("binance").unwrap();
    let mut feed =
        BinanceFeed::new_usd_futures(&registry, venue, StreamId(8), FeedConfig::default());
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(5);
    let id = InstrumentId(0);
    // Buffered: 90..=99 ends before the snapshot (u < 100: dropped), 100..=110 holds it.
    feed.on_message(&mut futures_depth(90, 99, 89), ts, &mut out)
        .unwrap();
    feed.on_message(&mut futures_depth(100, 110, 99), ts, &mut out)
        .unwrap();
    let mut rest = br#"{"lastUpdateId":100,"E":1723161255000,"T":1723161254999,"bids":[["100.00","1"]],"asks":[["101.00","2"]]}"#.to_vec();
    out.clear();
    feed.on_depth_snapshot(id, &mut rest, ts, &mut out).unwrap();
    assert!(has_event(out.as_slice(), FeedEventKind::BookValid));
    assert_eq!(feed.book_update_id(id), Some(110));
    let deltas: Vec<BookDelta> = out
        .iter()
        .filter_map(|e| e.payload::<BookDelta>().copied())
        .collect();
    assert_eq!(deltas.len(), 5);
    assert_eq!(deltas[4].action, BookAction::Delete.code());
    // pu chains on the previous u, whatever U is.
    out.clear();
    assert_eq!(
        feed.on_message(&mut futures_depth(105, 120, 110), ts, &mut out)
            .unwrap(),
        MessageOutcome::Applied(MessageKind::BookUpdate)
    );
    assert_eq!(
        feed.on_message(&mut futures_depth(121, 130, 120), ts, &mut out)
            .unwrap(),
        MessageOutcome::Applied(MessageKind::BookUpdate)
    );
    // A break in the chain.
    out.clear();
    feed.on_message(&mut futures_depth(140, 150, 135), ts, &mut out)
        .unwrap();
    let events = feed_events(out.as_slice());
    assert_eq!(events[0].kind, FeedEventKind::Gap.code());
    assert_eq!((events[0].venue_seq, events[0].expected), (135, 130));
    assert_eq!(events[1].kind, FeedEventKind::ResyncRequested.code());
    assert!(feed.needs_snapshot(id));
    // The first event after a snapshot must hold lastUpdateId: U <= id <= u.
    out.clear();
    let mut rest = br#"{"lastUpdateId":145,"bids":[],"asks":[]}"#.to_vec();
    feed.on_depth_snapshot(id, &mut rest, ts, &mut out).unwrap();
    assert_eq!(feed.book_update_id(id), Some(150));
    // Futures-only fields are rejected on spot, and vice versa the futures handler wants pu.
    out.clear();
    let mut no_pu = depth(151, 160, "99.00");
    let err = feed.on_message(&mut no_pu, ts, &mut out).unwrap_err();
    assert_eq!(err.reason(), RejectReason::MissingField);
    let mut spot_feed = spot();
    let err = spot_feed
        .on_message(&mut futures_depth(1, 2, 0), ts, &mut out)
        .unwrap_err();
    assert_eq!(err.reason(), RejectReason::UnknownField);
}

#[test]
fn documented_examples_and_other_messages() {
    let registry = registry(&[
        spec("binance", "BNBBTC", 8, 8),
        spec("binance", "BNBUSDT", 8, 8),
    ]);
    let venue = registry.venue_id("binance").unwrap();
    let mut feed = BinanceFeed::new_spot(&registry, venue, StreamId(1), FeedConfig::default());
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(9);
    let doc = |name: &str| std::fs::read(format!("{DATA}/binance/docs/{name}.json")).unwrap();
    // Raw (non-combined) payloads.
    let outcome = feed.on_message(&mut doc("trade"), ts, &mut out).unwrap();
    assert_eq!(outcome, MessageOutcome::Applied(MessageKind::Trade));
    let trade = *out.as_slice()[0].payload::<Trade>().unwrap();
    assert_eq!(
        (trade.price.0, trade.qty.0, trade.trade_id, trade.aggressor),
        (100_000, 10_000_000_000, 12345, 2)
    );
    assert_eq!(
        out.as_slice()[0].header.ts_event,
        UnixNanos(1_672_515_782_136_000_000)
    );
    assert_eq!(
        feed.on_message(&mut doc("aggTrade"), ts, &mut out).unwrap(),
        MessageOutcome::Applied(MessageKind::AggTrade)
    );
    out.clear();
    assert_eq!(
        feed.on_message(&mut doc("bookTicker"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Applied(MessageKind::Ticker)
    );
    let top = *out.as_slice()[0].payload::<TopOfBook>().unwrap();
    assert_eq!(
        (top.bid_price.0, top.ask_qty.0, top.venue_seq),
        (2_535_190_000, 4_066_000_000, 400_900_217)
    );
    assert_eq!(
        feed.on_message(&mut doc("depthUpdate"), ts, &mut out)
            .unwrap(),
        MessageOutcome::Buffered(MessageKind::BookUpdate)
    );
    // Two instruments wait for a snapshot: a REST snapshot through on_message is ambiguous.
    let err = feed
        .on_message(&mut doc("rest_depth_snapshot"), ts, &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        FeedError::Rejected(aaiti_feeds::Reject::new(
            RejectReason::Inconsistent,
            "lastUpdateId"
        ))
    );
    // Partial depth on a combined stream names its symbol in the stream.
    let mut partial = format!(
        r#"{{"stream":"bnbbtc@depth5@100ms","data":{}}}"#,
        String::from_utf8(doc("partial_depth")).unwrap()
    )
    .into_bytes();
    out.clear();
    assert_eq!(
        feed.on_message(&mut partial, ts, &mut out).unwrap(),
        MessageOutcome::Applied(MessageKind::PartialBook)
    );
    assert_eq!(count_kind(out.as_slice(), RecordKind::BookDelta), 3);
    // Subscription responses are control messages; kline is not a stream we normalize.
    assert_eq!(
        feed.on_message(&mut br#"{"result":null,"id":1}"#.to_vec(), ts, &mut out)
            .unwrap(),
        MessageOutcome::Control
    );
    let err = feed
        .on_message(&mut doc("kline"), ts, &mut out)
        .unwrap_err();
    assert_eq!(err.reason(), RejectReason::UnknownMessageType);
}

#[test]
fn crossed_ticker_and_outlier_trade_are_reported() {
    let mut feed = spot();
    let mut out = RecordBuffer::new();
    let ts = UnixNanos(1);
    let mut crossed = br#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"100.00","B":"1","a":"99.00","A":"1"}}"#.to_vec();
    feed.on_message(&mut crossed, ts, &mut out).unwrap();
    assert!(has_event(out.as_slice(), FeedEventKind::Crossed));
    let trade = |price: &str, time: u64| {
        format!(r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{time},"s":"BTCUSDT","t":1,"p":"{price}","q":"1","T":1,"m":false,"M":true}}}}"#).into_bytes()
    };
    out.clear();
    feed.on_message(&mut trade("99.50", 1_000), ts, &mut out)
        .unwrap();
    assert!(feed_events(out.as_slice()).is_empty());
    feed.on_message(&mut trade("150.00", 2_000), ts, &mut out)
        .unwrap();
    assert!(has_event(out.as_slice(), FeedEventKind::OutlierPrice));
    out.clear();
    feed.on_message(&mut trade("99.60", 1_500), ts, &mut out)
        .unwrap();
    assert!(has_event(
        out.as_slice(),
        FeedEventKind::OutOfOrderTimestamp
    ));
    assert_eq!(feed.stats().crossed, 1);
    assert_eq!(feed.stats().outliers, 1);
    assert_eq!(feed.stats().out_of_order, 1);
    // Staleness in feed time.
    out.clear();
    assert_eq!(feed.on_tick(UnixNanos(1 + 4_000_000_000), &mut out), 0);
    assert_eq!(
        feed.on_tick(UnixNanos(1 + 6_000_000_000), &mut out),
        2,
        "feed and instrument"
    );
    assert_eq!(
        feed.on_tick(UnixNanos(1 + 9_000_000_000), &mut out),
        0,
        "once until heard again"
    );
    assert!(has_event(out.as_slice(), FeedEventKind::Stale));
}
