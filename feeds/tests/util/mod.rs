//! Shared helpers of the integration tests: registries, the recordings, a reference book
//! built from emitted deltas, and Kraken's CRC32 book checksum over it.
#![allow(dead_code, reason = "each test file uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::collections::BTreeMap;

use aaiti_feeds::replay::RecordingReader;
use aaiti_model::{
    BookAction, BookDelta, Envelope, FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry,
    InstrumentSpec, RecordKind, Scale, Side, UnixNanos, fixed::write_fixed,
};

pub(crate) const BINANCE_SPOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz"
);
pub(crate) const KRAKEN_V1_BOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kraken/ws_v1_book1000_20210417_31s.txt"
);
pub(crate) const KRAKEN_V1_TRADE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kraken/ws_v1_trade_20210417.txt"
);
pub(crate) const KRAKEN_V2_SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kraken/v2/book_snapshot_checksum_example.json"
);
pub(crate) const COINBASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/coinbase/exchange_ws_20210417_31s.txt"
);
pub(crate) const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data");

/// One instrument spec with generous tick and lot sizes.
pub(crate) fn spec(venue: &str, symbol: &str, price_scale: u8, qty_scale: u8) -> InstrumentSpec {
    let unit = |scale: u8| {
        if scale == 0 {
            "1".to_owned()
        } else {
            format!("0.{}1", "0".repeat(usize::from(scale) - 1))
        }
    };
    InstrumentSpec {
        venue: venue.into(),
        symbol: symbol.into(),
        base: "B".into(),
        quote: "Q".into(),
        price_scale,
        qty_scale,
        tick_size: unit(price_scale),
        lot_size: unit(qty_scale),
        min_notional: "0".into(),
    }
}

pub(crate) fn registry(specs: &[InstrumentSpec]) -> InstrumentRegistry {
    InstrumentRegistry::from_specs(specs).unwrap()
}

/// Binance BTCUSDT at the venue's tick (0.01) and lot (0.00001) precision.
pub(crate) fn binance_registry() -> InstrumentRegistry {
    registry(&[spec("binance", "BTCUSDT", 2, 8)])
}

/// Every message of a recording as (receive time, bytes).
pub(crate) fn read_recording(path: &str) -> Vec<(UnixNanos, Vec<u8>)> {
    let mut reader = RecordingReader::open(path).unwrap();
    let mut messages = Vec::new();
    while let Some(message) = reader.next_message().unwrap() {
        messages.push((message.ts_recv, message.payload.to_vec()));
    }
    messages
}

pub(crate) fn feed_events(records: &[Envelope]) -> Vec<FeedEvent> {
    records
        .iter()
        .filter_map(|e| e.payload::<FeedEvent>().copied())
        .collect()
}

pub(crate) fn has_event(records: &[Envelope], kind: FeedEventKind) -> bool {
    feed_events(records).iter().any(|e| e.kind == kind.code())
}

pub(crate) fn count_kind(records: &[Envelope], kind: RecordKind) -> usize {
    records
        .iter()
        .filter(|e| e.header.kind == kind.code())
        .count()
}

/// An L2 book built from `BookDelta`s only.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefBook {
    pub(crate) bids: BTreeMap<i64, i64>,
    pub(crate) asks: BTreeMap<i64, i64>,
    pub(crate) venue_seq: u64,
}

impl RefBook {
    pub(crate) fn apply(&mut self, delta: &BookDelta) {
        let side = |code| Side::try_from(code).unwrap();
        match BookAction::try_from(delta.action).unwrap() {
            BookAction::Clear => {
                self.bids.clear();
                self.asks.clear();
            }
            BookAction::Set => {
                assert!(delta.qty.0 > 0, "Set with quantity {}", delta.qty.0);
                match side(delta.side) {
                    Side::Buy => self.bids.insert(delta.price.0, delta.qty.0),
                    Side::Sell => self.asks.insert(delta.price.0, delta.qty.0),
                };
            }
            BookAction::Delete => {
                match side(delta.side) {
                    Side::Buy => self.bids.remove(&delta.price.0),
                    Side::Sell => self.asks.remove(&delta.price.0),
                };
            }
        }
        self.venue_seq = delta.venue_seq;
    }

    pub(crate) fn best_bid(&self) -> Option<i64> {
        self.bids.keys().next_back().copied()
    }

    pub(crate) fn best_ask(&self) -> Option<i64> {
        self.asks.keys().next().copied()
    }
}

/// Books per instrument.
#[derive(Default)]
pub(crate) struct RefBooks {
    pub(crate) books: BTreeMap<InstrumentId, RefBook>,
}

impl RefBooks {
    pub(crate) fn apply_all(&mut self, records: &[Envelope]) {
        for envelope in records {
            if let Some(delta) = envelope.payload::<BookDelta>() {
                self.books.entry(delta.instrument).or_default().apply(delta);
            }
        }
    }
}

/// Digits of `mantissa` at `scale` as Kraken's checksum writes them: the decimal text
/// without the point and without leading zeros.
fn checksum_digits(mantissa: i64, scale: Scale, out: &mut String) {
    let mut buf = [0u8; 32];
    let text = write_fixed(mantissa, scale, &mut buf);
    let digits: String = text
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    out.push_str(digits.trim_start_matches('0'));
}

/// Kraken's CRC32 over the top 10 asks (best first) then the top 10 bids (best first).
pub(crate) fn kraken_checksum(book: &RefBook, price_scale: Scale, qty_scale: Scale) -> u32 {
    let mut text = String::new();
    for (&price, &qty) in book.asks.iter().take(10) {
        checksum_digits(price, price_scale, &mut text);
        checksum_digits(qty, qty_scale, &mut text);
    }
    for (&price, &qty) in book.bids.iter().rev().take(10) {
        checksum_digits(price, price_scale, &mut text);
        checksum_digits(qty, qty_scale, &mut text);
    }
    crc32fast::hash(text.as_bytes())
}
