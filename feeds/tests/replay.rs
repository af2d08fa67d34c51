//! Replay: both recording formats, gzip, and pacing on an injected clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_feeds::{
    BinanceFeed, FeedConfig, FeedHandler, KrakenV1Feed, RecordBuffer,
    replay::{Clock, Pace, Pacer, RecordingFormat, RecordingReader, ReplayError, replay},
};
use aaiti_model::{StreamId, UnixNanos};
use util::*;

/// A clock that only moves when slept on (or told to).
#[derive(Debug, Default)]
struct ManualClock {
    now: u64,
    sleeps: Vec<u64>,
}

impl Clock for ManualClock {
    fn now_ns(&mut self) -> u64 {
        self.now
    }

    fn sleep_ns(&mut self, ns: u64) {
        self.sleeps.push(ns);
        self.now += ns;
    }
}

#[test]
fn reads_receive_nanos_lines() {
    let text = b"1723161253937085768 {\"a\":1}\n\n1723161254036059768 {\"b\":2}\r\n1723161254036059769 [3]";
    let mut reader = RecordingReader::new(&text[..], None);
    let first = reader.next_message().unwrap().unwrap();
    assert_eq!(
        (first.ts_recv, &*first.payload, first.line),
        (UnixNanos(1_723_161_253_937_085_768), &b"{\"a\":1}"[..], 1)
    );
    let second = reader.next_message().unwrap().unwrap();
    assert_eq!(
        (second.ts_recv.0, &*second.payload, second.line),
        (1_723_161_254_036_059_768, &b"{\"b\":2}"[..], 3)
    );
    assert_eq!(&*reader.next_message().unwrap().unwrap().payload, b"[3]");
    assert!(reader.next_message().unwrap().is_none());
    assert_eq!(reader.format(), Some(RecordingFormat::ReceiveNanos));

    let mut bad = RecordingReader::new(&b"12x {}\n5 {}\n"[..], Some(RecordingFormat::ReceiveNanos));
    assert!(matches!(
        bad.next_message(),
        Err(ReplayError::BadLine { line: 1, .. })
    ));
    assert_eq!(
        bad.next_message().unwrap().unwrap().ts_recv,
        UnixNanos(5),
        "the reader continues"
    );
}

#[test]
fn reads_capture_lines() {
    let text = "wss://ws.kraken.com <-> 1618678132.3858151\n\
                wss://ws.kraken.com <- 1618678132.8253062: {\"event\":\"subscribe\"}\n\
                1618678132.8258188: {\"event\":\"systemStatus\"}\n\
                1618678133.2949052: {\"event\":\"heartbeat\"}\n";
    let mut reader = RecordingReader::new(text.as_bytes(), None);
    let first = reader.next_message().unwrap().unwrap();
    assert_eq!(first.ts_recv, UnixNanos(1_618_678_132_825_818_800));
    assert_eq!(&*first.payload, br#"{"event":"systemStatus"}"#);
    assert_eq!(first.line, 3);
    assert_eq!(
        reader.next_message().unwrap().unwrap().ts_recv,
        UnixNanos(1_618_678_133_294_905_200)
    );
    assert!(reader.next_message().unwrap().is_none());
    assert_eq!(reader.client_lines(), 1);
    assert_eq!(
        reader.connected_at(),
        Some(UnixNanos(1_618_678_132_385_815_100))
    );
}

#[test]
fn reads_the_recordings() {
    let mut reader = RecordingReader::open(BINANCE_SPOT).unwrap();
    let mut count = 0;
    let mut last = UnixNanos::ZERO;
    while let Some(message) = reader.next_message().unwrap() {
        assert!(message.payload.starts_with(b"{"));
        last = message.ts_recv;
        count += 1;
    }
    assert_eq!(count, 99_574, "both gzip members");
    assert!(last.0 > 1_723_161_253_937_085_768 + 650_000_000_000);

    for (path, messages, client) in [
        (KRAKEN_V1_BOOK, 4_321, 1),
        (COINBASE, 9_946, 3),
        (KRAKEN_V1_TRADE, 49, 1),
    ] {
        let mut reader = RecordingReader::open(path).unwrap();
        let mut count = 0;
        while reader.next_message().unwrap().is_some() {
            count += 1;
        }
        assert_eq!((count, reader.client_lines()), (messages, client), "{path}");
        assert_eq!(reader.format(), Some(RecordingFormat::Capture));
    }
}

#[test]
fn pacing_on_an_injected_clock() {
    let recorded =
        [1_000, 1_000, 1_500, 3_500, 3_000, 4_000].map(|ms: u64| UnixNanos(ms * 1_000_000));
    let run = |pace: Pace| {
        let mut pacer = Pacer::new(pace, ManualClock::default()).unwrap();
        let slept: Vec<u64> = recorded
            .iter()
            .map(|&t| pacer.wait(t) / 1_000_000)
            .collect();
        (slept, pacer.clock().now / 1_000_000)
    };
    // Recorded pace: the gaps between messages; the out-of-order one is due at once.
    assert_eq!(run(Pace::Recorded), (vec![0, 0, 500, 2_000, 0, 500], 3_000));
    assert_eq!(
        run(Pace::Speed(2.0)),
        (vec![0, 0, 250, 1_000, 0, 250], 1_500)
    );
    assert_eq!(run(Pace::Speed(0.5)).1, 6_000);
    assert_eq!(run(Pace::Max), (vec![0; 6], 0));
    // Time spent processing counts against the wait.
    let mut pacer = Pacer::new(Pace::Recorded, ManualClock::default()).unwrap();
    pacer.wait(UnixNanos(1_000));
    pacer.clock_mut().now += 300;
    assert_eq!(pacer.wait(UnixNanos(1_700)), 400);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            Pacer::new(Pace::Speed(bad), ManualClock::default()),
            Err(ReplayError::BadSpeed(_))
        ));
    }
}

#[test]
fn replay_drives_a_handler_through_the_same_path_as_live() {
    let registry = registry(&[
        spec("kraken", "WAVES/EUR", 6, 8),
        spec("kraken", "XMR/USD", 8, 8),
        spec("kraken", "KSM/XBT", 8, 8),
        spec("kraken", "GRT/ETH", 9, 8),
        spec("kraken", "SC/EUR", 6, 8),
        spec("kraken", "ETH/CHF", 5, 8),
        spec("kraken", "OCEAN/XBT", 9, 8),
        spec("kraken", "OMG/USD", 6, 8),
        spec("kraken", "XBT/CHF", 5, 8),
        spec("kraken", "ADA/XBT", 9, 8),
    ]);
    let mut feed = KrakenV1Feed::new(
        &registry,
        registry.venue_id("kraken").unwrap(),
        StreamId(9),
        FeedConfig::default(),
    );
    let mut reader = RecordingReader::open(KRAKEN_V1_BOOK).unwrap();
    let mut pacer = Pacer::new(Pace::Speed(1000.0), ManualClock::default()).unwrap();
    let mut out = RecordBuffer::new();
    let mut records = 0u64;
    let summary = replay(&mut reader, &mut pacer, &mut feed, &mut out, |batch| {
        records += batch.len() as u64
    })
    .unwrap();
    assert_eq!(summary.messages, 4_321);
    assert_eq!(summary.rejected, 0);
    assert_eq!(summary.records, records);
    assert_eq!(feed.stats().accepted_total(), 4_321);
    // 31 s of recording at 1000x: about 31 ms of (manual) sleeping.
    let slept: u64 = pacer.clock().sleeps.iter().sum();
    assert!((25_000_000..35_000_000).contains(&slept), "{slept}");

    // The Binance recording at full speed through the trait object.
    let registry = binance_registry();
    let mut binance: Box<dyn FeedHandler> = Box::new(BinanceFeed::new_spot(
        &registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        FeedConfig::default(),
    ));
    let mut reader = RecordingReader::open(BINANCE_SPOT).unwrap();
    let mut pacer = Pacer::new(Pace::Max, ManualClock::default()).unwrap();
    let summary = replay(&mut reader, &mut pacer, binance.as_mut(), &mut out, |_| {}).unwrap();
    assert_eq!((summary.messages, summary.rejected), (99_574, 0));
    assert_eq!(binance.stats().gaps, 0);
    assert!(pacer.clock().sleeps.is_empty());
}
