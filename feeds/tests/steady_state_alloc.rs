//! "No allocation per message in steady state": a counting global allocator around a second
//! pass over each recording (the first pass sized every buffer).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
#![allow(
    unsafe_code,
    reason = "a counting GlobalAlloc wrapper around the system allocator"
)]

mod util;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use aaiti_feeds::{BinanceFeed, CoinbaseFeed, FeedConfig, FeedHandler, KrakenV1Feed, RecordBuffer};
use aaiti_model::{InstrumentId, StreamId, UnixNanos};
use util::*;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the thread-locals are const-initialized `Cell`s without destructors, so touching
// them never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn second_pass_allocations<H: FeedHandler>(feed: &mut H, path: &str) -> u64 {
    let mut messages = read_recording(path);
    let mut originals: Vec<Vec<u8>> = messages.iter().map(|(_, m)| m.clone()).collect();
    let mut out = RecordBuffer::new();
    let pass = |feed: &mut H, messages: &mut Vec<(UnixNanos, Vec<u8>)>, out: &mut RecordBuffer| {
        for (ts, bytes) in messages.iter_mut() {
            out.clear();
            let _ = feed.on_message(bytes, *ts, out);
        }
    };
    pass(feed, &mut messages, &mut out);
    // Restore the bytes (parsing may unescape in place), outside the counted region.
    for ((_, bytes), original) in messages.iter_mut().zip(&mut originals) {
        bytes.clear();
        bytes.extend_from_slice(original);
    }
    // The second pass's timestamps all precede the first's, so most messages also append an
    // `OutOfOrderTimestamp` event: give the output room for that (the buffer grows only on a
    // new high-water mark, which is not the steady state under test).
    out = RecordBuffer::with_capacity(out.capacity() * 2);
    // Start the second pass as the first started: every book waiting for its snapshot.
    for id in 0..20 {
        feed.request_resync(InstrumentId(id), UnixNanos(0), &mut out);
    }
    out.clear();
    allocations(|| pass(feed, &mut messages, &mut out))
}

#[test]
fn no_allocation_per_message_in_steady_state() {
    let registry = binance_registry();
    let mut binance = BinanceFeed::new_spot(
        &registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        FeedConfig::default(),
    );
    assert_eq!(
        second_pass_allocations(&mut binance, BINANCE_SPOT),
        0,
        "binance, fast path"
    );

    let mut general = BinanceFeed::new_spot(
        &registry,
        registry.venue_id("binance").unwrap(),
        StreamId(1),
        FeedConfig {
            fast_path: false,
            ..FeedConfig::default()
        },
    );
    assert_eq!(
        second_pass_allocations(&mut general, BINANCE_SPOT),
        0,
        "binance, simd-json"
    );

    let names = [
        "SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP",
        "CRV-EUR", "SKL-GBP",
    ];
    let cb_registry = util::registry(&names.map(|n| spec("coinbase", n, 8, 8)));
    let mut coinbase = CoinbaseFeed::new(
        &cb_registry,
        cb_registry.venue_id("coinbase").unwrap(),
        StreamId(2),
        FeedConfig::default(),
    );
    assert_eq!(
        second_pass_allocations(&mut coinbase, COINBASE),
        0,
        "coinbase"
    );

    let pairs = [
        ("WAVES/EUR", 6),
        ("XMR/USD", 8),
        ("KSM/XBT", 8),
        ("GRT/ETH", 9),
        ("SC/EUR", 6),
        ("ETH/CHF", 5),
        ("OCEAN/XBT", 9),
        ("OMG/USD", 6),
        ("XBT/CHF", 5),
        ("ADA/XBT", 9),
    ];
    let kr_registry = util::registry(&pairs.map(|(p, s)| spec("kraken", p, s, 8)));
    let mut kraken = KrakenV1Feed::new(
        &kr_registry,
        kr_registry.venue_id("kraken").unwrap(),
        StreamId(3),
        FeedConfig::default(),
    );
    assert_eq!(
        second_pass_allocations(&mut kraken, KRAKEN_V1_BOOK),
        0,
        "kraken v1"
    );
}
