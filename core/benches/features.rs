//! Feature engine: nanoseconds per book update for the full feature set on the real Binance
//! BTCUSDT updates of the bundled recording, beside the book update alone in the same run.
//!
//! The recording is decoded once, before any timing, into the records the engine sees
//! (book deltas, trades, feed events, each with its engine time). Then, alternating,
//! best of the rounds:
//!
//! * `baseline`: [`Market::on_delta`] / `on_trade` / `on_feed_event` for every record: the
//!   book update alone (every delta of every venue update);
//! * `features`: the same, plus [`FeatureEngine::on_book`] after every complete update of
//!   a valid book and [`FeatureEngine::on_trade`] for every trade, as the signal stage does;
//! * the same at `sample_ms` = 1000: a sample closes on one update in ten, the others only
//!   move the engine's clock and remember the mid;
//! * `engine alone`: `on_book` on a fixed book (the recording's final one), engine time
//!   moving one sample per call, so that every call closes a sample and computes every
//!   feature: the engine's worst case, without the book.
//!
//! The spec is the bundled model's (core/models/training/btcusdt-ridge.spec.json) plus the
//! kinds it does not use (`mid`, `microprice`, a plain SMA/EMA, MACD line and signal,
//! Bollinger mean/std/bands): 28 features, every kind. At `sample_ms` = 100 and Binance's
//! 100 ms depth stream nearly every update closes a sample.
//!
//! The book's memory is touched in a warm-up pass first and the same market is reused (a
//! replay of the recording starts with its snapshot, which rebuilds the same book), so
//! neither loop pays first-touch page faults; the engine is new each round (its time must
//! start over).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-features cargo bench -p aaiti-core --bench features`.
//! `AAITI_BENCH_ONLY=baseline|features` runs 5 passes of one loop and nothing else (for
//! `valgrind --tool=callgrind`: the difference of the two instruction counts divided by
//! the updates is the engine's cost in instructions per update).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "bench setup with constant, valid inputs; the report goes to stdout"
)]

use std::hint::black_box;
use std::io::BufReader;
use std::time::Instant;

use aaiti_core::config;
use aaiti_core::market::Market;
use aaiti_core::replay::BUNDLED_BINANCE_BTCUSDT;
use aaiti_core::signals::features::{FeatureEngine, FeatureSpec};
use aaiti_feeds::replay::RecordingReader;
use aaiti_feeds::{BinanceFeed, FeedConfig, FeedHandler, RecordBuffer};
use aaiti_model::{
    BookDelta, FeedEvent, Instrument, InstrumentId, InstrumentRegistry, RecordKind, StreamId,
    Trade, UnixNanos,
};

const ROUNDS: usize = 15;
const ENGINE_CALLS: u64 = 1_000_000;

/// A decoded record with its engine time.
enum Event {
    Delta(BookDelta, UnixNanos),
    Trade(Trade, UnixNanos),
    Feed(FeedEvent),
}

fn spec() -> FeatureSpec {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/training/btcusdt-ridge.spec.json"
    );
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let more = serde_json::json!([
        {"name": "mid", "kind": "mid"},
        {"name": "microprice", "kind": "microprice"},
        {"name": "sma_20", "kind": "sma", "period": 20},
        {"name": "ema_20", "kind": "ema", "period": 20},
        {"name": "macd_line", "kind": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "line"},
        {"name": "macd_signal", "kind": "macd", "fast": 12, "slow": 26, "signal": 9, "output": "signal"},
        {"name": "bb_mean", "kind": "bollinger", "period": 20, "k": 2.0, "output": "mean"},
        {"name": "bb_std", "kind": "bollinger", "period": 20, "k": 2.0, "output": "std"},
        {"name": "bb_upper", "kind": "bollinger", "period": 20, "k": 2.0, "output": "upper"}
    ]);
    let features = spec["features"].as_array_mut().unwrap();
    features.extend(more.as_array().unwrap().iter().cloned());
    let spec: FeatureSpec = serde_json::from_value(spec).unwrap();
    spec.validate().unwrap();
    spec
}

/// The recording as the replay source decodes it, with engine times as the signal stage
/// keeps them.
fn decode(registry: &InstrumentRegistry) -> Vec<Event> {
    let gzip = flate2::read::MultiGzDecoder::new(BUNDLED_BINANCE_BTCUSDT);
    let mut reader = RecordingReader::new(BufReader::with_capacity(1 << 16, gzip), None);
    let venue = registry.venue_id("binance").unwrap();
    let mut feed = BinanceFeed::new_spot(registry, venue, StreamId(1), FeedConfig::default());
    let mut buffer = RecordBuffer::with_capacity(4096);
    let mut clock = UnixNanos(0);
    let mut events = Vec::new();
    while let Some(message) = reader.next_message().unwrap() {
        buffer.clear();
        feed.on_tick(message.ts_recv, &mut buffer);
        let _ = feed.on_message(message.payload, message.ts_recv, &mut buffer);
        for event in buffer.iter() {
            let mut now = event.header.ts_event;
            if now.0 == 0 {
                now = clock;
            }
            clock = clock.max(now);
            match RecordKind::try_from(event.header.kind) {
                Ok(RecordKind::BookDelta) => {
                    events.push(Event::Delta(*event.payload::<BookDelta>().unwrap(), now));
                }
                Ok(RecordKind::Trade) => {
                    events.push(Event::Trade(*event.payload::<Trade>().unwrap(), now));
                }
                Ok(RecordKind::FeedEvent) => {
                    events.push(Event::Feed(*event.payload::<FeedEvent>().unwrap()));
                }
                _ => {}
            }
        }
    }
    events
}

/// The book update alone.
fn baseline(market: &mut Market, events: &[Event]) {
    for event in events {
        match event {
            Event::Delta(delta, now) => {
                black_box(market.on_delta(delta, *now));
            }
            Event::Trade(trade, now) => market.on_trade(trade, *now),
            Event::Feed(feed) => market.on_feed_event(feed),
        }
    }
}

/// The book update and the feature engine, as the signal stage drives them. Returns the
/// samples closed.
fn with_features(
    market: &mut Market,
    engine: &mut FeatureEngine,
    id: InstrumentId,
    events: &[Event],
) -> u64 {
    let mut closed = 0;
    for event in events {
        match event {
            Event::Delta(delta, now) => {
                if market.on_delta(delta, *now)
                    && delta.flags & BookDelta::FLAG_LAST != 0
                    && let Some(state) = market.get(id)
                    && state.valid()
                    && engine.on_book(state, *now)
                {
                    closed += 1;
                    black_box(engine.normalized());
                }
            }
            Event::Trade(trade, now) => {
                market.on_trade(trade, *now);
                engine.on_trade(trade, *now);
            }
            Event::Feed(feed) => market.on_feed_event(feed),
        }
    }
    closed
}

fn ns_per(elapsed: std::time::Duration, count: u64) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

fn main() {
    let registry = config::load(None).unwrap().registry;
    let venue = registry.venue_id("binance").unwrap();
    let id = registry.find(venue, "BTCUSDT").unwrap();
    let instrument: Instrument = registry.get(id).unwrap().clone();
    let spec = spec();
    let events = decode(&registry);
    let updates = events
        .iter()
        .filter(|e| matches!(e, Event::Delta(d, _) if d.flags & BookDelta::FLAG_LAST != 0))
        .count() as u64;
    let deltas = events
        .iter()
        .filter(|e| matches!(e, Event::Delta(..)))
        .count();
    let trades = events
        .iter()
        .filter(|e| matches!(e, Event::Trade(..)))
        .count();

    let mut market = Market::new(&registry).unwrap();
    // Warm-up: touches the book's pages.
    baseline(&mut market, &events);

    match std::env::var("AAITI_BENCH_ONLY").as_deref() {
        Ok("baseline") => {
            for _ in 0..5 {
                baseline(&mut market, &events);
            }
            println!("baseline x5: {updates} updates per pass");
            return;
        }
        Ok("features") => {
            for _ in 0..5 {
                let mut engine = FeatureEngine::new(&spec, &instrument).unwrap();
                with_features(&mut market, &mut engine, id, &events);
            }
            println!("features x5: {updates} updates per pass");
            return;
        }
        _ => {}
    }

    // The same features sampled once a second: most updates only move the clock.
    let mut spec_1s = spec.clone();
    spec_1s.sample_ms = 1_000;
    let mut best_base = f64::MAX;
    let mut best_full = f64::MAX;
    let mut best_1s = f64::MAX;
    let mut samples = 0;
    let mut samples_1s = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        baseline(&mut market, &events);
        best_base = best_base.min(ns_per(started.elapsed(), updates));

        let mut engine = FeatureEngine::new(&spec, &instrument).unwrap();
        let started = Instant::now();
        samples = with_features(&mut market, &mut engine, id, &events);
        best_full = best_full.min(ns_per(started.elapsed(), updates));

        let mut engine = FeatureEngine::new(&spec_1s, &instrument).unwrap();
        let started = Instant::now();
        samples_1s = with_features(&mut market, &mut engine, id, &events);
        best_1s = best_1s.min(ns_per(started.elapsed(), updates));
    }

    // The engine alone on the final book: every call closes one sample.
    let state = market.get(id).unwrap();
    let mut engine = FeatureEngine::new(&spec, &instrument).unwrap();
    let start = UnixNanos(1_723_161_900_000_000_000);
    let step = u64::from(spec.sample_ms) * 1_000_000;
    for i in 0..10_000 {
        engine.on_book(state, UnixNanos(start.0 + i * step));
    }
    let mut best_alone = f64::MAX;
    for round in 0..5u64 {
        let base = start.0 + (10_000 + round * ENGINE_CALLS) * step;
        let started = Instant::now();
        for i in 0..ENGINE_CALLS {
            black_box(engine.on_book(black_box(state), UnixNanos(base + i * step)));
        }
        best_alone = best_alone.min(ns_per(started.elapsed(), ENGINE_CALLS));
    }
    assert!(engine.warm() && !engine.non_finite());

    println!(
        "bundled BTCUSDT recording: {updates} book updates ({deltas} deltas, {:.1} per update), \
         {trades} trades; {} features, sample_ms {}; {samples} samples closed ({:.0} % of the \
         updates); best of {ROUNDS} rounds",
        deltas as f64 / updates as f64,
        spec.len(),
        spec.sample_ms,
        100.0 * samples as f64 / updates as f64,
    );
    println!("baseline (book update alone)   {best_base:8.1} ns per update");
    println!("book update + features         {best_full:8.1} ns per update");
    println!(
        "features' share                {:8.1} ns per update ({:.2}x the baseline)",
        best_full - best_base,
        best_full / best_base
    );
    println!(
        "at sample_ms 1000               {best_1s:8.1} ns per update ({:.1} ns over the baseline; \
         {samples_1s} samples closed)",
        best_1s - best_base
    );
    println!(
        "engine alone, sample closing   {best_alone:8.1} ns per call (every feature computed)"
    );
}
