//! "No allocation per message in steady state" on the live read path: frames read by
//! tungstenite, copied into the connection's reused buffer, normalized by the handler.
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

mod live_support;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::{Duration, Instant},
};

use aaiti_feeds::{BinanceFeed, FeedConfig, RecordBuffer, live::Connection};
use aaiti_model::{InstrumentRegistry, InstrumentSpec, StreamId};
use live_support::*;

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

#[test]
fn no_allocation_per_message_over_ws() {
    assert_eq!(measure(false).0, 0);
}

/// Known gap: rustls' buffered `ClientConnection` moves each decrypted TLS record into a
/// fresh `Vec` (about one allocation per message here). Its unbuffered API would remove
/// that; until then this pins the cost so it cannot grow unnoticed.
#[test]
fn about_one_allocation_per_message_over_wss() {
    let (allocations, messages) = measure(true);
    assert!(
        allocations <= messages * 3 / 2,
        "{allocations} for {messages}"
    );
}

/// Allocations while the second half of 6000 messages is received (the first half sized
/// every buffer).
fn measure(tls: bool) -> (u64, u64) {
    let server = TestServer::start(ServerOptions {
        tls,
        ..ServerOptions::new(recording(BINANCE_SPOT, 6_000))
    });
    let registry = InstrumentRegistry::from_specs(&[InstrumentSpec {
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
    .unwrap();
    let venue = registry.venue_id("binance").unwrap();
    let feed = BinanceFeed::new_spot(&registry, venue, StreamId(1), FeedConfig::default());
    let mut conn = Connection::new(feed, &registry, client_config(&server, false, 90)).unwrap();
    let mut out = RecordBuffer::with_capacity(8192);
    let start = Instant::now();
    let mut counted_messages = 0u64;
    let mut allocations = 0u64;
    while conn.stats().messages < 6_000 && start.elapsed() < Duration::from_secs(10) {
        out.clear();
        let warm = conn.stats().messages >= 3_000;
        let before = conn.stats().messages;
        ALLOCATIONS.with(|a| a.set(0));
        COUNTING.with(|c| c.set(warm));
        let _ = conn.poll(now(), &mut out).unwrap();
        COUNTING.with(|c| c.set(false));
        if warm {
            allocations += ALLOCATIONS.with(Cell::get);
            counted_messages += conn.stats().messages - before;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    eprintln!("tls {tls}: {allocations} allocations for {counted_messages} messages");
    assert!(counted_messages > 1_000);
    (allocations, counted_messages)
}
