//! The Binance fast path against the simd-json general path: identical records (byte for
//! byte) and identical rejections, on the whole recording and on mutated real messages
//! (byte flips, truncations, inserted whitespace, reordered fields, exponent and other
//! number spellings, escapes, duplicated keys).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::sync::OnceLock;

use aaiti_feeds::{
    BinanceFeed, BinanceMarket, FeedConfig, FeedError, FeedHandler, MessageOutcome, RecordBuffer,
};
use aaiti_model::{InstrumentRegistry, StreamId, UnixNanos};
use proptest::prelude::*;
use util::*;

fn feed(registry: &InstrumentRegistry, market: BinanceMarket, fast_path: bool) -> BinanceFeed {
    let venue = registry.venue_id("binance").unwrap();
    let config = FeedConfig {
        fast_path,
        ..FeedConfig::default()
    };
    BinanceFeed::new(registry, venue, StreamId(1), config, market)
}

type Outcome = Result<MessageOutcome, FeedError>;

fn run(
    feed: &mut BinanceFeed,
    message: &[u8],
    ts: UnixNanos,
    out: &mut RecordBuffer,
) -> (Outcome, Vec<Vec<u8>>) {
    out.clear();
    let mut bytes = message.to_vec();
    let outcome = feed.on_message(&mut bytes, ts, out);
    (outcome, out.iter().map(|e| e.as_bytes().to_vec()).collect())
}

#[test]
fn whole_recording_is_identical_on_both_paths() {
    let registry = binance_registry();
    let mut fast = feed(&registry, BinanceMarket::Spot, true);
    let mut general = feed(&registry, BinanceMarket::Spot, false);
    let mut out = RecordBuffer::new();
    for (ts, message) in read_recording(BINANCE_SPOT) {
        let a = run(&mut fast, &message, ts, &mut out);
        let b = run(&mut general, &message, ts, &mut out);
        assert_eq!(a, b, "{}", String::from_utf8_lossy(&message));
    }
    assert_eq!(
        fast.stats().fast_path_hits,
        99_573,
        "every stream message takes the fast path"
    );
    assert_eq!(general.stats().fast_path_hits, 0);
}

/// Real messages of each fast-path shape, spread over the recording, plus futures diffs.
fn samples() -> &'static [(BinanceMarket, Vec<u8>)] {
    static SAMPLES: OnceLock<Vec<(BinanceMarket, Vec<u8>)>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut out = Vec::new();
        let (mut depth, mut trade, mut ticker) = (0, 0, 0);
        for (_, message) in read_recording(BINANCE_SPOT) {
            let text = String::from_utf8_lossy(&message);
            let slot = if text.contains("depthUpdate") {
                depth += 1;
                depth
            } else if text.contains(r#""e":"trade""#) {
                trade += 1;
                trade
            } else {
                ticker += 1;
                ticker
            };
            if slot % 97 == 1 {
                out.push((BinanceMarket::Spot, message));
            }
        }
        for (first, last, prev) in [(100, 110, 99), (111, 111, 110), (5, 200, 4)] {
            out.push((
                BinanceMarket::UsdFutures,
                format!(
                    r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"T":1723161255200,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},"b":[["61737.63000000","1.50000000"],["61700.00","0"]],"a":[["61837.64000000","0.00100000"]]}}}}"#
                )
                .into_bytes(),
            ));
        }
        out
    })
}

/// The `U` of a diff (to give the feeds a snapshot it applies on), if it has one.
fn first_id(message: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(message).ok()?;
    let at = text.find(r#""U":"#)? + 4;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Positions of the decimal strings (`"61737.63000000"`) in a message.
fn number_spans(message: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < message.len() {
        if message[i] == b'"' {
            let start = i + 1;
            let mut end = start;
            while end < message.len() && (message[end].is_ascii_digit() || message[end] == b'.') {
                end += 1;
            }
            if end > start && message.get(end) == Some(&b'"') && message[start..end].contains(&b'.')
            {
                spans.push((start, end));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    spans
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Truncate { at: usize },
    Delete { at: usize, len: usize },
    Whitespace { at: usize, ws: u8 },
    Reorder,
    Number { which: usize, spelling: usize },
    Unquote { which: usize },
    Escape { at: usize },
    DuplicateKey { which: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1..8usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop::sample::select(vec![b' ', b'\n', b'\t', b'\r'])
        )
            .prop_map(|(at, ws)| Mutation::Whitespace { at, ws }),
        Just(Mutation::Reorder),
        (any::<usize>(), 0..14usize)
            .prop_map(|(which, spelling)| Mutation::Number { which, spelling }),
        any::<usize>().prop_map(|which| Mutation::Unquote { which }),
        any::<usize>().prop_map(|at| Mutation::Escape { at }),
        any::<usize>().prop_map(|which| Mutation::DuplicateKey { which }),
        (
            any::<usize>(),
            prop::collection::vec(
                prop::sample::select(b"{}[]\",:0123456789.-eEtrufalsn \\".to_vec()),
                1..4
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn respell(number: &str, spelling: usize) -> String {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    match spelling {
        0 => format!("{int}.{frac}e0"),
        1 => format!(
            "{}.{}{}e4",
            int.get(..1).unwrap_or("1"),
            int.get(1..).unwrap_or(""),
            frac
        ),
        2 => format!("+{number}"),
        3 => format!("00{number}"),
        4 => format!("{number}000"),
        5 => format!("{number}1"),
        6 => format!("-{number}"),
        7 => String::new(),
        8 => format!(" {number}"),
        9 => "99999999999999999999.0".to_owned(),
        10 => format!("{int}."),
        11 => format!(".{frac}"),
        12 => "0".to_owned(),
        _ => format!("{int}.{frac}.0"),
    }
}

fn apply(message: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut m = message.to_vec();
    let len = m.len().max(1);
    match mutation {
        Mutation::Flip { at, byte } => {
            let at = at % len;
            if let Some(b) = m.get_mut(at) {
                *b ^= byte | 1;
            }
        }
        Mutation::Truncate { at } => m.truncate(at % len),
        Mutation::Delete { at, len: n } => {
            let at = at % len;
            let end = (at + n).min(m.len());
            m.drain(at..end);
        }
        Mutation::Whitespace { at, ws } => m.insert(at % (m.len() + 1), *ws),
        Mutation::Reorder => {
            // serde_json's map sorts keys: a different (valid) field order.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&m) {
                m = serde_json::to_vec(&value).unwrap();
            }
        }
        Mutation::Number { which, spelling } => {
            let spans = number_spans(&m);
            if !spans.is_empty() {
                let (start, end) = spans[which % spans.len()];
                let text = String::from_utf8(m[start..end].to_vec()).unwrap();
                m.splice(start..end, respell(&text, *spelling).into_bytes());
            }
        }
        Mutation::Unquote { which } => {
            let spans = number_spans(&m);
            if !spans.is_empty() {
                let (start, end) = spans[which % spans.len()];
                m.remove(end);
                m.remove(start - 1);
            }
        }
        Mutation::Escape { at } => {
            // Spell one letter of a string as a \u escape (same string, different bytes).
            let letters: Vec<usize> = (0..m.len())
                .filter(|&i| m[i].is_ascii_alphabetic())
                .collect();
            if !letters.is_empty() {
                let i = letters[at % letters.len()];
                let escaped = format!("\\u{:04x}", m[i]);
                m.splice(i..=i, escaped.into_bytes());
            }
        }
        Mutation::DuplicateKey { which } => {
            // Repeat one `"k":value,` pair of the data object.
            let text = String::from_utf8_lossy(&m).into_owned();
            let keys: Vec<usize> = text.match_indices(",\"").map(|(i, _)| i + 1).collect();
            if !keys.is_empty() {
                let start = keys[which % keys.len()];
                if let Some(len) = text[start..].find(",\"") {
                    let pair = text[start..start + len + 1].to_owned();
                    m.splice(start..start, pair.into_bytes());
                }
            }
        }
        Mutation::Insert { at, bytes } => {
            let at = at % (m.len() + 1);
            m.splice(at..at, bytes.iter().copied());
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_agree(index in any::<usize>(), mutations in prop::collection::vec(mutation(), 1..3)) {
        let samples = samples();
        let (market, original) = &samples[index % samples.len()];
        let mut message = original.clone();
        for m in &mutations {
            message = apply(&message, m);
        }
        let registry = binance_registry();
        let mut fast = feed(&registry, *market, true);
        let mut general = feed(&registry, *market, false);
        let mut out = RecordBuffer::new();
        if let Some(first) = first_id(original) {
            let id = if *market == BinanceMarket::Spot { first } else { first + 1 };
            let snapshot = format!(r#"{{"lastUpdateId":{id},"bids":[],"asks":[]}}"#).into_bytes();
            let a = run(&mut fast, &snapshot, UnixNanos(1), &mut out);
            let b = run(&mut general, &snapshot, UnixNanos(1), &mut out);
            prop_assert_eq!(a, b);
        }
        let a = run(&mut fast, &message, UnixNanos(2), &mut out);
        let b = run(&mut general, &message, UnixNanos(2), &mut out);
        prop_assert_eq!(&a, &b, "{}", String::from_utf8_lossy(&message));
        prop_assert_eq!(fast.book_update_id(aaiti_model::InstrumentId(0)), general.book_update_id(aaiti_model::InstrumentId(0)));
    }
}

#[test]
fn unmutated_samples_take_the_fast_path() {
    let registry = binance_registry();
    for (market, message) in samples() {
        let mut fast = feed(&registry, *market, true);
        let mut out = RecordBuffer::new();
        let _ = run(&mut fast, message, UnixNanos(1), &mut out);
        assert_eq!(
            fast.stats().fast_path_hits,
            1,
            "{}",
            String::from_utf8_lossy(message)
        );
    }
}

#[test]
fn valid_respellings_stay_on_the_fast_path_and_others_fall_back() {
    let registry = binance_registry();
    let (_, depth) = samples()
        .iter()
        .find(|(_, m)| first_id(m).is_some())
        .unwrap();
    for (mutation, fast_hit) in [
        (
            Mutation::Number {
                which: 0,
                spelling: 3,
            },
            true,
        ),
        (
            Mutation::Number {
                which: 1,
                spelling: 4,
            },
            true,
        ),
        (
            Mutation::Number {
                which: 0,
                spelling: 1,
            },
            false,
        ),
        (Mutation::Whitespace { at: 10, ws: b' ' }, false),
        (Mutation::Reorder, false),
        (Mutation::Escape { at: 0 }, false),
    ] {
        let message = apply(depth, &mutation);
        let mut fast = feed(&registry, BinanceMarket::Spot, true);
        let mut general = feed(&registry, BinanceMarket::Spot, false);
        let mut out = RecordBuffer::new();
        let a = run(&mut fast, &message, UnixNanos(1), &mut out);
        let b = run(&mut general, &message, UnixNanos(1), &mut out);
        assert_eq!(a, b);
        assert_eq!(fast.stats().fast_path_hits == 1, fast_hit, "{mutation:?}");
    }
}
