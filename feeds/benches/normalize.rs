//! Normalization cost per message for Binance `depthUpdate` and `trade`: the fast path, the
//! simd-json general path, and serde_json / simd-json with `#[derive(Deserialize)]` structs
//! mirroring the messages (strings for numbers, no conversion) as baselines in the same run;
//! plus whole-recording throughput.
//!
//! `CARGO_TARGET_DIR=/work/target-feeds cargo bench -p aaiti-feeds --bench normalize`
//!
//! The depth updates are real messages from the recording. A diff only normalizes fully
//! (parse, validate, sequence check, deltas emitted) when it continues the book, so each
//! iteration gets a copy whose `U`/`u` are rewritten to chain on the previous one (in the
//! untimed setup).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup"
)]
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::{cell::Cell, hint::black_box, time::Duration};

use aaiti_feeds::{BinanceFeed, FeedConfig, FeedHandler, RecordBuffer, replay::RecordingReader};
use aaiti_model::{InstrumentRegistry, InstrumentSpec, StreamId, UnixNanos};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz"
);

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

fn feed(registry: &InstrumentRegistry, fast_path: bool) -> BinanceFeed {
    let config = FeedConfig {
        fast_path,
        ..FeedConfig::default()
    };
    BinanceFeed::new_spot(
        registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        config,
    )
}

fn recording() -> Vec<(UnixNanos, Vec<u8>)> {
    let mut reader = RecordingReader::open(RECORDING).unwrap();
    let mut messages = Vec::new();
    while let Some(m) = reader.next_message().unwrap() {
        messages.push((m.ts_recv, m.payload.to_vec()));
    }
    messages
}

#[derive(Deserialize)]
struct Combined<T> {
    #[allow(dead_code, reason = "parsed, not used")]
    stream: String,
    data: T,
}

#[allow(dead_code, reason = "parsed, not used")]
#[derive(Deserialize)]
struct DepthOwned {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    s: String,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

#[allow(dead_code, reason = "parsed, not used")]
#[derive(Deserialize)]
struct DepthBorrowed<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    s: &'a str,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct CombinedBorrowed<'a, T> {
    #[allow(dead_code, reason = "parsed, not used")]
    stream: &'a str,
    data: T,
}

#[allow(dead_code, reason = "parsed, not used")]
#[derive(Deserialize)]
struct TradeOwned {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    s: String,
    t: u64,
    p: String,
    q: String,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
    #[serde(rename = "M")]
    best: bool,
}

#[allow(dead_code, reason = "parsed, not used")]
#[derive(Deserialize)]
struct TradeBorrowed<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
    #[serde(rename = "M")]
    best: bool,
}

/// A diff message with the byte ranges of its `U` and `u` digits.
struct Diff {
    bytes: Vec<u8>,
    first: std::ops::Range<usize>,
    last: std::ops::Range<usize>,
    span: u64,
}

fn digits_after(bytes: &[u8], key: &[u8]) -> std::ops::Range<usize> {
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let len = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    at..at + len
}

fn parse_digits(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes).unwrap().parse().unwrap()
}

fn diff(bytes: &[u8]) -> Diff {
    let first = digits_after(bytes, br#""U":"#);
    let last = digits_after(bytes, br#""u":"#);
    let span = parse_digits(&bytes[last.clone()]) - parse_digits(&bytes[first.clone()]);
    Diff {
        bytes: bytes.to_vec(),
        first,
        last,
        span,
    }
}

/// A copy of `d` chained after `next` (same digit count), advancing `next`.
fn chained(d: &Diff, next: &Cell<u64>) -> Vec<u8> {
    let mut bytes = d.bytes.clone();
    let first = next.get();
    let last = first + d.span;
    bytes[d.first.clone()].copy_from_slice(first.to_string().as_bytes());
    bytes[d.last.clone()].copy_from_slice(last.to_string().as_bytes());
    next.set(last + 1);
    bytes
}

fn level_count(message: &[u8]) -> usize {
    message
        .windows(3)
        .filter(|w| w == br#"[[""# || w == br#",[""#)
        .count()
}

fn bench_depth(c: &mut Criterion, name: &str, diffs: &[Diff]) {
    let registry = registry();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for fast_path in [true, false] {
        let label = if fast_path {
            "aaiti fast path"
        } else {
            "aaiti simd-json general path"
        };
        let start = 50_000_000_000u64;
        let mut feed = feed(&registry, fast_path);
        let mut out = RecordBuffer::new();
        let mut snapshot =
            format!(r#"{{"lastUpdateId":{},"bids":[],"asks":[]}}"#, start - 1).into_bytes();
        feed.on_message(&mut snapshot, UnixNanos(1), &mut out)
            .unwrap();
        let next = Cell::new(start);
        let index = Cell::new(0usize);
        group.bench_function(label, |b| {
            b.iter_batched_ref(
                || {
                    let i = index.get();
                    index.set(i + 1);
                    chained(&diffs[i % diffs.len()], &next)
                },
                |bytes| {
                    out.clear();
                    feed.on_message(bytes, UnixNanos(2), &mut out).unwrap();
                    black_box(out.len())
                },
                BatchSize::SmallInput,
            );
        });
        assert!(
            !feed.needs_snapshot(aaiti_model::InstrumentId(0)),
            "every diff applied"
        );
        assert_eq!(feed.stats().gaps, 0);
        if feed.stats().messages > 1 {
            // The benchmark ran (it was not filtered out): check it took the intended path.
            assert_eq!(feed.stats().fast_path_hits > 0, fast_path);
        }
    }
    let index = Cell::new(0usize);
    group.bench_function("serde_json derive (String)", |b| {
        b.iter(|| {
            let i = index.get();
            index.set(i + 1);
            let m: Combined<DepthOwned> =
                serde_json::from_slice(&diffs[i % diffs.len()].bytes).unwrap();
            black_box(m.data.b.len())
        });
    });
    group.bench_function("serde_json derive (&str)", |b| {
        b.iter(|| {
            let i = index.get();
            index.set(i + 1);
            let m: CombinedBorrowed<'_, DepthBorrowed<'_>> =
                serde_json::from_slice(&diffs[i % diffs.len()].bytes).unwrap();
            black_box(m.data.b.len())
        });
    });
    group.bench_function("simd-json derive (String)", |b| {
        b.iter_batched_ref(
            || {
                let i = index.get();
                index.set(i + 1);
                diffs[i % diffs.len()].bytes.clone()
            },
            |bytes| {
                let m: Combined<DepthOwned> = simd_json::serde::from_slice(bytes).unwrap();
                black_box(m.data.b.len())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_trade(c: &mut Criterion, trades: &[Vec<u8>]) {
    let registry = registry();
    let mut group = c.benchmark_group("trade");
    group.throughput(Throughput::Elements(1));
    for fast_path in [true, false] {
        let label = if fast_path {
            "aaiti fast path"
        } else {
            "aaiti simd-json general path"
        };
        let mut feed = feed(&registry, fast_path);
        let mut out = RecordBuffer::new();
        let mut messages: Vec<Vec<u8>> = trades.to_vec();
        let index = Cell::new(0usize);
        group.bench_function(label, |b| {
            b.iter(|| {
                let i = index.get() % messages.len();
                index.set(i + 1);
                out.clear();
                // Neither path modifies a message without escapes: the copy is reused.
                feed.on_message(&mut messages[i], UnixNanos(2), &mut out)
                    .unwrap();
                black_box(out.len())
            });
        });
        assert_eq!(messages, trades, "messages unchanged");
    }
    let index = Cell::new(0usize);
    group.bench_function("serde_json derive (String)", |b| {
        b.iter(|| {
            let i = index.get() % trades.len();
            index.set(i + 1);
            let m: Combined<TradeOwned> = serde_json::from_slice(&trades[i]).unwrap();
            black_box(m.data.t)
        });
    });
    group.bench_function("serde_json derive (&str)", |b| {
        b.iter(|| {
            let i = index.get() % trades.len();
            index.set(i + 1);
            let m: CombinedBorrowed<'_, TradeBorrowed<'_>> =
                serde_json::from_slice(&trades[i]).unwrap();
            black_box(m.data.t)
        });
    });
    group.bench_function("simd-json derive (String)", |b| {
        b.iter_batched_ref(
            || {
                let i = index.get() % trades.len();
                index.set(i + 1);
                trades[i].clone()
            },
            |bytes| {
                let m: Combined<TradeOwned> = simd_json::serde::from_slice(bytes).unwrap();
                black_box(m.data.t)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_recording(c: &mut Criterion, messages: &[(UnixNanos, Vec<u8>)]) {
    let registry = registry();
    let mut group = c.benchmark_group("whole recording (99,574 messages)");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for fast_path in [true, false] {
        let label = if fast_path {
            "aaiti fast path"
        } else {
            "aaiti simd-json general path"
        };
        group.bench_function(label, |b| {
            b.iter_batched(
                || (feed(&registry, fast_path), messages.to_vec()),
                |(mut feed, mut messages)| {
                    let mut out = RecordBuffer::with_capacity(4096);
                    let mut records = 0;
                    for (ts, bytes) in &mut messages {
                        out.clear();
                        feed.on_message(bytes, *ts, &mut out).unwrap();
                        records += out.len();
                    }
                    black_box(records)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let messages = recording();
    let depth: Vec<&Vec<u8>> = messages
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.windows(13).any(|w| w == b"\"depthUpdate\""))
        .collect();
    // Real diffs of 18 to 20 levels (about 700-800 bytes), and real diffs of about 1 KB
    // (950-1100 bytes, 24-28 levels).
    let levels_20: Vec<Diff> = depth
        .iter()
        .filter(|m| (18..=20).contains(&level_count(m)))
        .take(32)
        .map(|m| diff(m))
        .collect();
    let kb: Vec<Diff> = depth
        .iter()
        .filter(|m| (950..=1100).contains(&m.len()))
        .take(32)
        .map(|m| diff(m))
        .collect();
    let trades: Vec<Vec<u8>> = messages
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.windows(11).any(|w| w == br#""e":"trade""#))
        .take(32)
        .cloned()
        .collect();
    let mean = |v: &[Diff]| v.iter().map(|d| d.bytes.len()).sum::<usize>() / v.len();
    let mean_levels = |v: &[Diff]| v.iter().map(|d| level_count(&d.bytes)).sum::<usize>() / v.len();
    eprintln!(
        "depthUpdate sets: {} messages of {} levels / {} bytes on average; {} of {} levels / {} bytes; trades {} bytes",
        levels_20.len(),
        mean_levels(&levels_20),
        mean(&levels_20),
        kb.len(),
        mean_levels(&kb),
        mean(&kb),
        trades.iter().map(Vec::len).sum::<usize>() / trades.len(),
    );
    bench_depth(c, "depthUpdate 18-20 levels", &levels_20);
    bench_depth(c, "depthUpdate ~1 KB", &kb);
    bench_trade(c, &trades);
    bench_recording(c, &messages);
}

criterion_group!(normalize, benches);
criterion_main!(normalize);
