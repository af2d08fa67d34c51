//! The monitor's per-tick and per-interval paths allocate nothing: a counting global
//! allocator (this file is its own test binary, so it counts nothing else).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
#![allow(
    unsafe_code,
    reason = "a global allocator is the only way to observe allocations"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aaiti_model::{AccountId, InstrumentId, UnixNanos};
use aaiti_risk::monitor::{CorrelationMatrix, MonitorConfig, RiskMonitor};

thread_local! {
    /// Allocations made by this thread (const-initialised: reading it never allocates).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: during thread teardown the slot may be gone; those calls are not ours.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements the
// `GlobalAlloc` contract; counting touches only a const-initialised thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn ticks_closes_evaluations_and_sizing_do_not_allocate() {
    const N: usize = 50;
    const SECOND: u64 = 1_000_000_000;
    let config: MonitorConfig = toml::from_str(
        "window = 100\n[[limits]]\naccount = 0\nvar_limit = \"0.01\"\n\
         [[limits]]\naccount = 1\nvar_limit = \"1000000000\"",
    )
    .unwrap();
    let mut monitor = RiskMonitor::new(&config, N).unwrap();
    let mut copy = CorrelationMatrix::identity(N);
    // Inputs prepared up front: a deterministic wiggle per instrument and interval.
    let intervals = 400_u64;
    let prices: Vec<f64> = (0..intervals as usize * N)
        .map(|k| 100.0 * (1.0 + 0.001 * (((k * 7_919) % 13) as f64 - 6.0)))
        .collect();
    let book: Vec<f64> = (0..N).map(|i| (i as f64 - 25.0) * 1_000.0).collect();

    let run = |monitor: &mut RiskMonitor, copy: &mut CorrelationMatrix, from: u64, to: u64| {
        let mut checksum = 0.0;
        for t in from..to {
            for i in 0..N {
                let ts = UnixNanos(t * SECOND + 1_000 + i as u64);
                monitor.on_price(InstrumentId(i as u32), prices[t as usize * N + i], ts);
            }
            if monitor.on_clock(UnixNanos((t + 1) * SECOND)) {
                for account in [AccountId(0), AccountId(1), AccountId(2)] {
                    let report = monitor.evaluate(account, &book, UnixNanos((t + 1) * SECOND));
                    checksum += report.var.parametric + report.var.historical;
                    if let Some(event) = report.risk_event() {
                        checksum += event.value as f64;
                    }
                }
                copy.copy_from(monitor.correlation());
                checksum += copy.correlated_with(0, 5_000).count() as f64;
                checksum += monitor.target_qty(100.0, InstrumentId(3), 100.0, 1e6);
            }
        }
        checksum
    };
    // Warm-up (fills the ring; the first evaluation may not allocate either, but the
    // claim is about the steady state).
    let warm = run(&mut monitor, &mut copy, 0, 200);
    let before = allocations();
    let steady = run(&mut monitor, &mut copy, 200, intervals);
    let after = allocations();
    assert!(warm.is_finite() && steady.is_finite() && steady > 0.0);
    assert_eq!(after - before, 0, "allocations on the monitor's paths");
    // The counter works.
    let v = std::hint::black_box(vec![1_u8; 10]);
    assert!(allocations() > after && v.len() == 10);
}
