//! The pre-trade check, open-order tracking, fills and marks allocate nothing: a counting
//! global allocator (this file is its own test binary, so it counts nothing else).
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

#[allow(dead_code, reason = "shared by several test files")]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aaiti_model::{OrderId, Price, Qty, Side, UnixNanos};
use aaiti_risk::monitor::correlation::CorrelationMatrix;
use support::*;

thread_local! {
    /// Allocations made by this thread (const-initialised: reading it never allocates).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
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
fn hot_path_does_not_allocate() {
    let mut file = loose();
    for account in &mut file.accounts {
        account.limits.max_open_orders = Some(64);
        account.limits.orders_per_minute = Some(1000);
        account.limits.order_burst = Some(50);
        account.limits.max_drawdown_bps = Some(500);
        account.limits.max_correlated_exposure = Some("10000000".into());
        account.limits.max_concentration_bps = Some(50_000);
        account.limits.max_gross_exposure = Some("50000000".into());
    }
    file.risk.instrument_defaults.price_band_bps = Some(1_000);
    file.risk.instrument_defaults.max_position = Some("100".into());
    let mut risk = build(&file);
    let mut rho = CorrelationMatrix::identity(4);
    rho.set_rho_bp(0, 1, 9_000);
    risk.set_correlations(rho);
    let mut breaches = Vec::with_capacity(64);
    let prices = [6_000_000, 300_000, 5_500_000, 15_000];
    let instruments = [BTC, ETH, BTCEUR, SOL];

    let before = allocations();
    let mut id = 0u64;
    let mut accepted = 0;
    for step in 0..20_000u64 {
        let now = UnixNanos(T0.0 + step * 20_000_000);
        let k = (step % 4) as usize;
        let account = [CASH, CROSS, ISO][(step % 3) as usize];
        let wiggle = (step % 11) as i64 - 5;
        let price = prices[k] + wiggle * prices[k] / 1_000;
        breaches.clear();
        risk.on_mark(instruments[k], Price(price), now, &mut breaches)
            .unwrap();
        let side = if step % 2 == 0 { Side::Buy } else { Side::Sell };
        let mut o = order(
            account,
            instruments[k],
            side,
            price,
            1 + (step % 5) as i64 * 100,
        );
        o.reference_price = Price(price);
        if risk.check_new_order(&o, now).is_ok() {
            id += 1;
            accepted += 1;
            risk.on_order_accepted(account, o.instrument, OrderId(id), side, o.price, o.qty)
                .unwrap();
            match step % 3 {
                0 => {
                    let f = aaiti_risk::Fill {
                        ts: now,
                        ..fill(account, o.instrument, id, side, price, o.qty.0, 3)
                    };
                    risk.on_fill(&f, &mut breaches).unwrap();
                }
                1 => risk
                    .on_order_reduced(account, OrderId(id), Qty(o.qty.0 / 2))
                    .unwrap(),
                _ => risk.on_order_done(account, OrderId(id)).unwrap(),
            }
        }
        // Keep the book bounded: cancel the oldest open orders.
        let open = risk.open_orders(account).unwrap();
        if open.len() > 40 {
            let oldest = open[0].order_id;
            risk.on_order_done(account, oldest).unwrap();
        }
    }
    let after = allocations();
    assert!(accepted > 5_000, "only {accepted} orders accepted");
    assert_eq!(after - before, 0, "the hot path allocated");
    risk.audit().unwrap();
}
