//! Shared by the fuzz targets: a registry and the invariant every normalizer keeps.
#![allow(dead_code, reason = "each target uses a subset")]

use aaiti_feeds::{FeedHandler, RecordBuffer};
use aaiti_model::{
    FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, InstrumentSpec, UnixNanos,
};

pub fn registry(venue: &str, symbols: &[(&str, u8, u8)]) -> InstrumentRegistry {
    let unit = |scale: u8| {
        if scale == 0 {
            "1".to_owned()
        } else {
            format!("0.{}1", "0".repeat(usize::from(scale) - 1))
        }
    };
    let specs: Vec<InstrumentSpec> = symbols
        .iter()
        .map(|&(symbol, price_scale, qty_scale)| InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: "B".into(),
            quote: "Q".into(),
            price_scale,
            qty_scale,
            tick_size: unit(price_scale),
            lot_size: unit(qty_scale),
            min_notional: "0".into(),
        })
        .collect();
    InstrumentRegistry::from_specs(&specs).expect("valid specs")
}

fn probe<H: FeedHandler>(feed: &H) -> [u64; 9] {
    let s = feed.stats();
    [
        u64::from(feed.is_book_valid(InstrumentId(0))),
        s.updates_applied,
        s.updates_buffered,
        s.updates_dropped,
        s.snapshots_applied,
        s.snapshots_discarded,
        s.gaps,
        s.books_valid,
        s.truncated_levels,
    ]
}

/// Feeds `data` to `feed`: output records validate and are numbered without gaps; a
/// rejection appends exactly one `Rejected` event and changes nothing else.
pub fn check<H: FeedHandler>(feed: &mut H, data: &[u8]) {
    let before = probe(feed);
    let seq = feed.last_seq();
    let mut out = RecordBuffer::new();
    let mut bytes = data.to_vec();
    let result = feed.on_message(&mut bytes, UnixNanos(1_700_000_000_000_000_000), &mut out);
    for (i, envelope) in out.iter().enumerate() {
        envelope.validate().expect("valid record");
        assert_eq!(envelope.header.seq, seq + 1 + i as u64);
    }
    if let Err(error) = result {
        assert_eq!(out.len(), 1);
        let event = out.as_slice()[0]
            .payload::<FeedEvent>()
            .expect("a feed event");
        assert_eq!(event.kind, FeedEventKind::Rejected.code());
        assert_eq!(event.value, i64::from(error.reason().code()));
        assert_eq!(probe(feed), before);
    }
}
