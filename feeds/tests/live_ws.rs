//! The live WebSocket client against the local server (`live_support`): TLS, subscribe,
//! records equal to a replay, reconnect with backoff and REST resync, gaps, pings, dead
//! connections, bad frames.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod live_support;

use std::{sync::atomic::Ordering::SeqCst, time::Duration};

use aaiti_feeds::{
    BinanceFeed, FeedConfig, RecordBuffer,
    live::{ConnState, Connection, LiveConfig, LiveError, Subscription},
};
use aaiti_model::{
    Envelope, FeedEventKind, InstrumentId, InstrumentRegistry, InstrumentSpec, StreamId, UnixNanos,
};
use live_support::*;

const HANDLER_STREAM: StreamId = StreamId(1);
const EVENTS: u16 = 90;

fn registry() -> InstrumentRegistry {
    InstrumentRegistry::from_specs(&[InstrumentSpec {
        venue: "binance".into(),
        symbol: "BTCUSDT".into(),
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: 2,
        qty_scale: 8,
        tick_size: "0.01".into(),
        lot_size: "0.00001".into(),
        min_notional: "5".into(),
    }])
    .unwrap()
}

fn feed(registry: &InstrumentRegistry) -> BinanceFeed {
    let venue = registry.venue_id("binance").unwrap();
    BinanceFeed::new_spot(registry, venue, HANDLER_STREAM, FeedConfig::default())
}

fn connect(server: &TestServer, rest: bool) -> (Connection<BinanceFeed>, LiveConfig) {
    let registry = registry();
    let config = client_config(server, rest, EVENTS);
    let conn = Connection::new(feed(&registry), &registry, config.clone()).unwrap();
    (conn, config)
}

/// Receive times are ours: compare records without them (`ts_event` too where the venue
/// gives none and it is the receive time).
fn normalized(e: &Envelope) -> Envelope {
    let mut e = *e;
    if e.header.ts_event == e.header.ts_recv {
        e.header.ts_event = UnixNanos(0);
    }
    e.header.ts_recv = UnixNanos(0);
    e
}

#[test]
fn wss_subscribe_and_records_equal_replay() {
    let messages = recording(BINANCE_SPOT, 2_000);
    let server = TestServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::new(messages.clone())
    });
    let (mut conn, _) = connect(&server, false);
    let mut log = Vec::new();
    let done = run(&mut conn, &mut log, Duration::from_secs(10), |c, _| {
        c.stats().messages >= 2_000
    });
    assert!(done, "received {} of 2000", conn.stats().messages);
    assert_eq!(
        *server.shared.paths.lock().unwrap(),
        ["/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker"]
    );
    // The connection's own events: exactly one Connected, on its stream.
    let own: Vec<&Envelope> = log
        .iter()
        .filter(|e| e.header.stream == StreamId(EVENTS))
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(events(&log)[0], FeedEventKind::Connected);
    // The handler's records equal a replay of the same messages.
    let registry = registry();
    let mut reference = feed(&registry);
    let mut out = RecordBuffer::new();
    let mut expected = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mut bytes = message.clone();
        out.clear();
        let _ = reference.on_message(&mut bytes, UnixNanos(1_000 + i as u64), &mut out);
        expected.extend(out.iter().map(normalized));
    }
    let got: Vec<Envelope> = log
        .iter()
        .filter(|e| e.header.stream == HANDLER_STREAM)
        .map(normalized)
        .collect();
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.as_bytes(), e.as_bytes(), "record {i}");
    }
    assert!(conn.books_valid());
    assert_eq!(conn.stats().connects, 1);
}

#[test]
fn reconnects_resubscribes_and_resyncs_over_rest() {
    let server = TestServer::start(ServerOptions {
        binance_book: true,
        tls: true,
        pace: Duration::from_micros(100),
        ..ServerOptions::new(recording(BINANCE_SPOT, 12_000))
    });
    server.shared.drop_after.store(800, SeqCst);
    let (mut conn, _) = connect(&server, true);
    let mut log = Vec::new();
    let done = run(&mut conn, &mut log, Duration::from_secs(10), |c, log| {
        c.stats().connects >= 2
            && c.books_valid()
            && story(log)
                .iter()
                .filter(|k| **k == FeedEventKind::BookValid)
                .count()
                >= 2
    });
    let story = story(&log);
    assert!(done, "{:?} {:?}", conn.stats(), story);
    use FeedEventKind::*;
    assert!(
        in_order(
            &story,
            &[
                Connected,
                BookValid,
                Disconnected,
                ResyncRequested,
                Connected,
                BookValid
            ]
        ),
        "{story:?}"
    );
    // Between the drop and the new snapshot nothing says the book is valid.
    let disconnected = story.iter().position(|k| *k == Disconnected).unwrap();
    let valid_again = disconnected
        + story[disconnected..]
            .iter()
            .position(|k| *k == BookValid)
            .unwrap();
    assert!(story[disconnected..valid_again].contains(&Connected));
    let stats = conn.stats();
    assert_eq!(stats.disconnects, 1);
    assert!(stats.snapshots_applied >= 2, "{stats:?}");
    // Both connections subscribed with the same streams; both snapshots were over https.
    let paths = server.shared.paths.lock().unwrap().clone();
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0], paths[1]);
    assert!(
        server
            .shared
            .rest_paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/api/v3/depth?symbol=BTCUSDT&limit=1000")
    );
}

#[test]
fn refused_connections_back_off_then_connect() {
    let server = TestServer::start(ServerOptions::new(recording(BINANCE_SPOT, 100)));
    server.refuse_for(Duration::from_millis(400));
    let (mut conn, _) = connect(&server, false);
    let mut log = Vec::new();
    let start = std::time::Instant::now();
    let done = run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().messages >= 50
    });
    assert!(done, "{:?}", conn.stats());
    let stats = conn.stats();
    // Delays 20, 40, 80, 160, 200... ms (minus up to 20 %): about 4 attempts in 400 ms, not
    // hundreds.
    assert!(
        (2..=8).contains(&stats.connect_failures),
        "{} failures",
        stats.connect_failures
    );
    assert!(server.count(&server.shared.refused) >= 2);
    assert!(start.elapsed() >= Duration::from_millis(350));
    assert_eq!(stats.connects, 1);
}

#[test]
fn gives_up_after_max_consecutive_failures() {
    let server = TestServer::start(ServerOptions::new(Vec::new()));
    server.refuse_for(Duration::from_secs(30));
    let registry = registry();
    let mut config = client_config(&server, false, EVENTS);
    config.max_consecutive_failures = Some(3);
    config.backoff.initial_ms = 5;
    let mut conn = Connection::new(feed(&registry), &registry, config).unwrap();
    let mut out = RecordBuffer::new();
    let start = std::time::Instant::now();
    let error = loop {
        match conn.poll(now(), &mut out) {
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => break e,
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    };
    assert!(
        matches!(error, LiveError::GaveUp { attempts: 3 }),
        "{error}"
    );
    assert_eq!(conn.state(), ConnState::GaveUp);
}

#[test]
fn injected_gap_resyncs_from_rest_snapshot() {
    let server = TestServer::start(ServerOptions {
        binance_book: true,
        pace: Duration::from_micros(100),
        ..ServerOptions::new(recording(BINANCE_SPOT, 12_000))
    });
    let (mut conn, _) = connect(&server, true);
    let mut log = Vec::new();
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.books_valid() && c.stats().messages > 300
    }));
    let before = log.len();
    // ~60 messages hold several depth updates: the next one does not chain.
    server.shared.skip.store(60, SeqCst);
    let done = run(&mut conn, &mut log, Duration::from_secs(5), |c, log| {
        c.books_valid() && story(&log[before..]).contains(&FeedEventKind::BookValid)
    });
    let after = story(&log[before..]);
    assert!(done, "{after:?} {:?}", conn.stats());
    use FeedEventKind::*;
    assert!(
        in_order(&after, &[Gap, ResyncRequested, BookValid]),
        "{after:?}"
    );
    assert!(!after.contains(&Disconnected));
    assert!(conn.stats().snapshots_applied >= 2);
    assert_eq!(conn.stats().connects, 1);
}

#[test]
fn chunked_and_failing_rest_responses() {
    let server = TestServer::start(ServerOptions {
        binance_book: true,
        pace: Duration::from_micros(200),
        ..ServerOptions::new(recording(BINANCE_SPOT, 6_000))
    });
    server.shared.rest_fail.store(2, SeqCst);
    server.shared.rest_chunked.store(true, SeqCst);
    let (mut conn, _) = connect(&server, true);
    let mut log = Vec::new();
    let done = run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.books_valid()
    });
    assert!(done, "{:?}", conn.stats());
    let stats = conn.stats();
    assert!(stats.snapshot_failures >= 2, "{stats:?}");
    assert_eq!(stats.snapshots_applied, 1);
}

#[test]
fn answers_server_pings_and_pings_on_schedule() {
    let server = TestServer::start(ServerOptions {
        pace: Duration::from_millis(2),
        ping_every: Some(Duration::from_millis(40)),
        ..ServerOptions::new(recording(BINANCE_SPOT, 2_000))
    });
    let registry = registry();
    let mut config = client_config(&server, false, EVENTS);
    config.ping_interval_ms = 40;
    let mut conn = Connection::new(feed(&registry), &registry, config).unwrap();
    let mut log = Vec::new();
    let done = run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        let s = c.stats();
        s.pings_received >= 5 && s.pongs_received >= 5
    });
    assert!(done, "{:?}", conn.stats());
    // Give the last pong a moment to reach the server.
    run(&mut conn, &mut log, Duration::from_millis(100), |_, _| {
        false
    });
    assert!(server.count(&server.shared.pongs_from_client) >= 5);
    let pings = server.count(&server.shared.pings_from_client);
    assert!(pings >= 5, "{pings}");
    // On schedule: about one per 40 ms of the run, not one per poll.
    assert!(conn.stats().pings_sent < 200, "{:?}", conn.stats());
    assert_eq!(conn.stats().connects, 1);
}

#[test]
fn silent_server_is_declared_dead_and_reconnected() {
    let server = TestServer::start(ServerOptions {
        pace: Duration::from_millis(1),
        ..ServerOptions::new(recording(BINANCE_SPOT, 3_000))
    });
    let registry = registry();
    let mut config = client_config(&server, false, EVENTS);
    config.dead_after_ms = 200;
    let mut conn = Connection::new(feed(&registry), &registry, config).unwrap();
    let mut log = Vec::new();
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().messages > 20
    }));
    server.shared.silent.store(true, SeqCst);
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().dead_timeouts >= 1
    }));
    server.shared.silent.store(false, SeqCst);
    let messages = conn.stats().messages;
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().connects >= 2 && c.stats().messages > messages + 20
    }));
    use FeedEventKind::*;
    assert!(in_order(
        &story(&log),
        &[Connected, Disconnected, Connected]
    ));
}

#[test]
fn bad_frames_are_counted_and_never_panic() {
    let server = TestServer::start(ServerOptions {
        pace: Duration::from_millis(1),
        ..ServerOptions::new(recording(BINANCE_SPOT, 5_000))
    });
    let registry = registry();
    let mut config = client_config(&server, false, EVENTS);
    config.max_message_bytes = 64 * 1024;
    let mut conn = Connection::new(feed(&registry), &registry, config).unwrap();
    let mut log = Vec::new();
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().messages > 10
    }));
    // Binary garbage and a text frame that is not JSON: counted, the connection stays.
    server.inject(Inject::Binary(vec![0xff, 0x00, 0x13, 0x37]));
    server.inject(Inject::Text(
        "{\"stream\":\"btcusdt@trade\",\"data\":{".into(),
    ));
    server.inject(Inject::Text("\u{0}\u{1} not json at all".into()));
    assert!(run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
        c.stats().binary_frames >= 1 && c.stats().rejected >= 2
    }));
    assert_eq!(conn.stats().connects, 1);
    // Invalid UTF-8 in a text frame: RFC 6455 says close; we reconnect.
    server.inject(Inject::RawText(vec![b'{', 0xc3, 0x28, b'}']));
    assert!(
        run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
            c.stats().invalid_utf8 >= 1 && c.stats().connects >= 2 && c.is_open()
        }),
        "{:?}",
        conn.stats()
    );
    // Larger than max_message_bytes: closed and reconnected.
    server.inject(Inject::Text("x".repeat(100 * 1024)));
    assert!(
        run(&mut conn, &mut log, Duration::from_secs(5), |c, _| {
            c.stats().oversized >= 1 && c.stats().connects >= 3 && c.is_open()
        }),
        "{:?}",
        conn.stats()
    );
    let stats = conn.stats();
    assert_eq!(stats.disconnects, 2);
    assert!(stats.messages > 10);
}

#[test]
fn config_errors_name_the_problem() {
    let registry = registry();
    let bad_url = LiveConfig::new("http2://x", Subscription::None);
    assert!(matches!(
        Connection::new(feed(&registry), &registry, bad_url),
        Err(LiveError::BadUrl { .. })
    ));
    let mut bad_root = LiveConfig::new("wss://127.0.0.1:1", Subscription::None);
    bad_root.tls.pem_roots = vec![b"not a pem".to_vec()];
    assert!(matches!(
        Connection::new(feed(&registry), &registry, bad_root),
        Err(LiveError::BadRootCertificate { index: 0, .. })
    ));
    let mut zero = LiveConfig::new("ws://127.0.0.1:1", Subscription::None);
    zero.max_messages_per_poll = 0;
    assert!(matches!(
        Connection::new(feed(&registry), &registry, zero),
        Err(LiveError::BadConfig {
            key: "max_messages_per_poll",
            ..
        })
    ));
    // A book that is not on the connection is never touched.
    let conn = Connection::new(
        feed(&registry),
        &registry,
        LiveConfig::new("ws://127.0.0.1:1", Subscription::None),
    )
    .unwrap();
    assert_eq!(conn.instruments(), [InstrumentId(0)]);
}
