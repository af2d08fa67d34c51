//! Primary/backup failover against two local servers: the primary goes silent, the backup
//! takes over within `failover_after`, the primary comes back and takes over again after
//! `failback_after`; books resync on each switch and no standby record leaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod live_support;

use std::{
    sync::atomic::Ordering::SeqCst,
    thread,
    time::{Duration, Instant},
};

use aaiti_feeds::{
    BinanceFeed, FeedConfig, RecordBuffer,
    live::{ActiveFeed, Connection, Failover, FailoverConfig},
};
use aaiti_model::{
    Envelope, FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, InstrumentSpec,
    RecordKind, StreamId, VenueId,
};
use live_support::*;

const OUT: StreamId = StreamId(100);

type Pair = Failover<BinanceFeed, BinanceFeed>;

fn spec(venue: &str) -> InstrumentSpec {
    InstrumentSpec {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: 2,
        qty_scale: 8,
        tick_size: "0.01".into(),
        lot_size: "0.00001".into(),
        min_notional: "5".into(),
    }
}

/// Which side a forwarded record came from: the primary is venue "binance" (instrument 0),
/// the backup "binance-b" (instrument 1), so every record tells its source.
fn source(e: &Envelope) -> Option<ActiveFeed> {
    let instrument = match e.kind().ok()? {
        RecordKind::FeedEvent => {
            let event = e.payload::<FeedEvent>()?;
            if event.instrument != InstrumentId(u32::MAX) {
                event.instrument
            } else {
                return Some(if event.venue == VenueId(0) {
                    ActiveFeed::Primary
                } else {
                    ActiveFeed::Backup
                });
            }
        }
        RecordKind::BookDelta => e.payload::<aaiti_model::BookDelta>()?.instrument,
        RecordKind::Trade => e.payload::<aaiti_model::Trade>()?.instrument,
        RecordKind::TopOfBook => e.payload::<aaiti_model::TopOfBook>()?.instrument,
        _ => return None,
    };
    Some(if instrument == InstrumentId(0) {
        ActiveFeed::Primary
    } else {
        ActiveFeed::Backup
    })
}

fn kind(e: &Envelope) -> Option<FeedEventKind> {
    e.payload::<FeedEvent>()
        .and_then(|f| FeedEventKind::try_from(f.kind).ok())
}

#[test]
fn fails_over_on_silence_and_fails_back_after_recovery() {
    let messages = recording(BINANCE_SPOT, 15_000);
    let options = ServerOptions {
        binance_book: true,
        pace: Duration::from_micros(500),
        ..ServerOptions::new(messages)
    };
    let primary_server = TestServer::start(options.clone());
    let backup_server = TestServer::start(options);
    let registry = InstrumentRegistry::from_specs(&[spec("binance"), spec("binance-b")]).unwrap();
    let venue_a = registry.venue_id("binance").unwrap();
    let venue_b = registry.venue_id("binance-b").unwrap();
    let primary = Connection::new(
        BinanceFeed::new_spot(&registry, venue_a, StreamId(1), FeedConfig::default()),
        &registry,
        client_config(&primary_server, true, 91),
    )
    .unwrap();
    let backup = Connection::new(
        BinanceFeed::new_spot(&registry, venue_b, StreamId(2), FeedConfig::default()),
        &registry,
        client_config(&backup_server, true, 92),
    )
    .unwrap();
    let failover_after = Duration::from_millis(250);
    let failback_after = Duration::from_millis(400);
    let mut failover = Failover::new(
        primary,
        backup,
        FailoverConfig {
            stream: OUT,
            failover_after_ms: failover_after.as_millis() as u64,
            failback_after_ms: failback_after.as_millis() as u64,
        },
    )
    .unwrap();
    let mut out = RecordBuffer::with_capacity(4096);
    let mut log: Vec<Envelope> = Vec::new();
    let mut poll_until = |failover: &mut Failover<BinanceFeed, BinanceFeed>,
                          log: &mut Vec<Envelope>,
                          timeout: Duration,
                          done: &dyn Fn(&Pair, &[Envelope]) -> bool|
     -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            out.clear();
            failover.poll(now(), &mut out).unwrap();
            log.extend(out.iter().copied());
            if done(failover, log) {
                return true;
            }
            thread::sleep(Duration::from_micros(200));
        }
        false
    };

    // Both up, the primary forwarded with a valid book.
    assert!(poll_until(
        &mut failover,
        &mut log,
        Duration::from_secs(5),
        &|f, log| {
            f.primary().books_valid()
                && f.backup().books_valid()
                && log
                    .iter()
                    .any(|e| kind(e) == Some(FeedEventKind::BookValid))
                && f.primary().stats().messages > 200
        }
    ));
    assert_eq!(failover.active(), ActiveFeed::Primary);

    // The primary goes silent: the backup takes over within failover_after (+ slack).
    primary_server.shared.silent.store(true, SeqCst);
    let silent_at = Instant::now();
    assert!(poll_until(
        &mut failover,
        &mut log,
        Duration::from_secs(5),
        &|f, _| { f.active() == ActiveFeed::Backup }
    ));
    let took = silent_at.elapsed();
    assert!(took >= failover_after, "{took:?}");
    assert!(
        took < failover_after + Duration::from_millis(700),
        "{took:?}"
    );
    // The backup's book resyncs for downstream.
    let switched = log.len();
    assert!(poll_until(
        &mut failover,
        &mut log,
        Duration::from_secs(5),
        &|_, log| {
            log[switched..]
                .iter()
                .any(|e| kind(e) == Some(FeedEventKind::BookValid))
        }
    ));

    // The primary comes back: failback only after failback_after of health.
    primary_server.shared.silent.store(false, SeqCst);
    let resumed_at = Instant::now();
    assert!(poll_until(
        &mut failover,
        &mut log,
        Duration::from_secs(5),
        &|f, _| { f.active() == ActiveFeed::Primary }
    ));
    let took = resumed_at.elapsed();
    assert!(took >= failback_after, "{took:?}");
    assert!(
        took < failback_after + Duration::from_millis(1_500),
        "{took:?}"
    );
    let back = log.len();
    assert!(poll_until(
        &mut failover,
        &mut log,
        Duration::from_secs(5),
        &|_, log| {
            log[back..]
                .iter()
                .any(|e| kind(e) == Some(FeedEventKind::BookValid))
        }
    ));

    // Downstream: one gap-free stream; Failover then Failback; each switch followed by
    // ResyncRequested then BookValid of the new side before any of its book deltas.
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.header.stream, OUT);
        assert_eq!(e.header.seq, i as u64 + 1);
    }
    let failover_at = log
        .iter()
        .position(|e| kind(e) == Some(FeedEventKind::Failover))
        .unwrap();
    let failback_at = log
        .iter()
        .position(|e| kind(e) == Some(FeedEventKind::Failback))
        .unwrap();
    assert!(failover_at < failback_at);
    let stats = *failover.stats();
    assert_eq!((stats.failovers, stats.failbacks), (1, 1));
    assert!(stats.standby_dropped > 100, "{stats:?}");
    // No record of the standby leaks: the source of every record matches the active side.
    for (i, e) in log.iter().enumerate() {
        // The Failover event names the backup, the Failback event the primary.
        let expected = if (failover_at..failback_at).contains(&i) {
            ActiveFeed::Backup
        } else {
            ActiveFeed::Primary
        };
        assert_eq!(source(e), Some(expected), "record {i}: {e:?}");
    }
    for start in [failover_at, failback_at] {
        let side: Vec<&Envelope> = log[start + 1..].iter().collect();
        let resync = side
            .iter()
            .position(|e| kind(e) == Some(FeedEventKind::ResyncRequested))
            .unwrap();
        let valid = side
            .iter()
            .position(|e| kind(e) == Some(FeedEventKind::BookValid))
            .unwrap();
        assert_eq!(
            resync, 0,
            "the first record after a switch is the resync request"
        );
        assert!(resync < valid);
        // The first book delta after the resync request starts the new snapshot (`Clear`):
        // no delta of the new side lands on the book downstream built from the old one.
        let first_delta = side[resync + 1..valid]
            .iter()
            .find_map(|e| e.payload::<aaiti_model::BookDelta>())
            .expect("a snapshot before BookValid");
        assert_eq!(first_delta.action, aaiti_model::BookAction::Clear.code());
        assert_ne!(first_delta.flags & aaiti_model::BookDelta::FLAG_SNAPSHOT, 0);
    }
}
