//! Book updates: [`L2Book`] beside a `BTreeMap` book, on two streams.
//!
//! * `synthetic_1M`: 1 000 000 level updates from a deterministic generator (xorshift): a
//!   random walk of the mid; most updates within a few ticks of the touch, a quarter spread
//!   over the next few thousand ticks, a few beyond the window, about 40 % deletes, and the
//!   deletes a venue sends when the touch moves through resting levels.
//! * `btcusdt`: the level updates of the recorded Binance BTCUSDT diff-depth stream
//!   (`data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz`, 650 s, ~298 k updates,
//!   prices from 15 432.50 to 200 000.00), applied after the REST snapshot. Prices at scale 2
//!   (tick 0.01), quantities at scale 8.
//!
//! Both books validate each update the same way (positive, on tick, quantity not negative).
//! Decoding happens once, before any timing.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-book cargo bench -p aaiti-book --bench book`.
//! Criterion reports the time for a whole stream and the throughput in updates per second;
//! after it, a latency pass prints per-update percentiles (method described at
//! [`latency`]) and the summary in ns/update and M updates/s.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
#![allow(
    clippy::expect_used,
    reason = "bench setup: a missing or bad recording must abort"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use aaiti_book::L2Book;
use aaiti_model::{Price, Qty, Scale, Side};
use criterion::{BenchmarkId, Criterion, Throughput};
use hdrhistogram::Histogram;

/// One level update as the feed handler hands it to the book.
#[derive(Clone, Copy)]
struct Update {
    side: Side,
    price: Price,
    qty: Qty,
}

/// A stream: the state to start from (untimed) and the updates to time.
struct Stream {
    name: &'static str,
    tick: Price,
    snapshot_bids: Vec<(Price, Qty)>,
    snapshot_asks: Vec<(Price, Qty)>,
    updates: Vec<Update>,
}

// -------------------------------------------------------------------------------------------
// The baseline: a plain BTreeMap book, as most Rust books are written.
// -------------------------------------------------------------------------------------------

struct BTreeBook {
    tick: i64,
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

impl BTreeBook {
    fn new(tick: Price) -> Self {
        Self {
            tick: tick.0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }

    // Inlined like `L2Book::apply`, so that neither side of the comparison pays a call.
    #[inline(always)]
    fn apply(&mut self, side: Side, price: Price, qty: Qty) -> Result<(), ()> {
        if price.0 <= 0 || price.0 % self.tick != 0 || qty.0 < 0 {
            return Err(());
        }
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if qty.0 == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids.last_key_value().map(|(&p, &q)| (p, q))
    }

    fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks.first_key_value().map(|(&p, &q)| (p, q))
    }
}

/// Best bid and best ask.
type Touch = (Option<(Price, Qty)>, Option<(Price, Qty)>);

/// What the benchmark needs from a book.
trait Book {
    const NAME: &'static str;
    fn fresh(tick: Price) -> Self;
    fn apply(&mut self, u: &Update) -> bool;
    fn reset(&mut self, stream: &Stream);
    fn touch(&self) -> Touch;
}

impl Book for L2Book {
    const NAME: &'static str = "L2Book";

    fn fresh(tick: Price) -> Self {
        L2Book::new(tick).expect("valid tick")
    }

    #[inline(always)]
    fn apply(&mut self, u: &Update) -> bool {
        L2Book::apply(self, u.side, u.price, u.qty).is_ok()
    }

    fn reset(&mut self, stream: &Stream) {
        self.replace_snapshot(
            stream.snapshot_bids.iter().copied(),
            stream.snapshot_asks.iter().copied(),
        )
        .expect("valid snapshot");
    }

    fn touch(&self) -> Touch {
        (self.best_bid(), self.best_ask())
    }
}

/// The same book with a window of 2^16 ticks instead of the default 2^18: shows what the
/// window size buys on a feed whose updates spread far from the touch.
struct SmallWindow(L2Book);

impl Book for SmallWindow {
    const NAME: &'static str = "L2Book_w65536";

    fn fresh(tick: Price) -> Self {
        Self(L2Book::with_window(tick, 1 << 16).expect("valid window"))
    }

    #[inline(always)]
    fn apply(&mut self, u: &Update) -> bool {
        Book::apply(&mut self.0, u)
    }

    fn reset(&mut self, stream: &Stream) {
        self.0.reset(stream);
    }

    fn touch(&self) -> Touch {
        self.0.touch()
    }
}

impl Book for BTreeBook {
    const NAME: &'static str = "BTreeMap";

    fn fresh(tick: Price) -> Self {
        BTreeBook::new(tick)
    }

    #[inline(always)]
    fn apply(&mut self, u: &Update) -> bool {
        BTreeBook::apply(self, u.side, u.price, u.qty).is_ok()
    }

    fn reset(&mut self, stream: &Stream) {
        self.clear();
        for &(p, q) in &stream.snapshot_bids {
            let _ = BTreeBook::apply(self, Side::Buy, p, q);
        }
        for &(p, q) in &stream.snapshot_asks {
            let _ = BTreeBook::apply(self, Side::Sell, p, q);
        }
    }

    fn touch(&self) -> Touch {
        (self.best_bid(), self.best_ask())
    }
}

/// Applies the whole stream to `book` (already reset), returning the time taken.
#[inline(never)]
fn run<B: Book>(book: &mut B, updates: &[Update]) -> Duration {
    let start = Instant::now();
    let mut ok = 0usize;
    for u in updates {
        ok += usize::from(book.apply(u));
    }
    let elapsed = start.elapsed();
    black_box(ok);
    black_box(book.touch());
    elapsed
}

// -------------------------------------------------------------------------------------------
// Streams
// -------------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The synthetic stream (tick 1, BTC-like prices at scale 2: the mid starts at 60 000.00).
fn synthetic(len: usize) -> Stream {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut mid: i64 = 6_000_000; // best bid is mid - 1, best ask mid + 1 at a 2-tick spread
    let mut bids: BTreeMap<i64, i64> = BTreeMap::new();
    let mut asks: BTreeMap<i64, i64> = BTreeMap::new();
    let mut updates = Vec::with_capacity(len + 64);
    let push = |updates: &mut Vec<Update>, side, price: i64, qty: i64| {
        updates.push(Update {
            side,
            price: Price(price),
            qty: Qty(qty),
        });
    };
    while updates.len() < len {
        if rng.below(50) == 0 {
            // The mid moves; the venue removes the levels the touch walks through.
            let step = rng.below(5) as i64 + 1;
            mid += if rng.below(2) == 0 { step } else { -step };
            while let Some((&p, _)) = bids.last_key_value().filter(|(p, _)| **p >= mid) {
                bids.remove(&p);
                push(&mut updates, Side::Buy, p, 0);
            }
            while let Some((&p, _)) = asks.first_key_value().filter(|(p, _)| **p <= mid) {
                asks.remove(&p);
                push(&mut updates, Side::Sell, p, 0);
            }
        }
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let r = rng.below(1000);
        let distance = if r < 700 {
            // Exponential, mean 6 ticks, from the touch.
            (-rng.unit().max(1e-12).ln() * 6.0) as i64
        } else if r < 960 {
            rng.below(3_000) as i64
        } else if r < 990 {
            3_000 + rng.below(40_000) as i64
        } else {
            100_000 + rng.below(3_000_000) as i64 // beyond the default window
        };
        let delete = rng.below(100) < 40;
        let qty = if delete {
            0
        } else {
            1 + rng.below(200_000_000) as i64
        };
        let (map, price) = match side {
            Side::Buy => (&mut bids, mid - 1 - distance),
            Side::Sell => (&mut asks, mid + 1 + distance),
        };
        if price <= 0 {
            continue;
        }
        if qty == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
        push(&mut updates, side, price, qty);
    }
    updates.truncate(len);
    Stream {
        name: "synthetic_1M",
        tick: Price(1),
        snapshot_bids: Vec::new(),
        snapshot_asks: Vec::new(),
        updates,
    }
}

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz"
);

fn levels(value: &serde_json::Value, price_scale: Scale, qty_scale: Scale) -> Vec<(Price, Qty)> {
    let text = |v: &serde_json::Value| v.as_str().expect("decimal string").to_owned();
    value
        .as_array()
        .expect("level array")
        .iter()
        .map(|level| {
            let (price, qty) = (text(&level[0]), text(&level[1]));
            (
                Price::parse_str(&price, price_scale).expect("price at scale 2"),
                Qty::parse_str(&qty, qty_scale).expect("qty at scale 8"),
            )
        })
        .collect()
}

/// Decodes the recording: the REST snapshot and then every diff-depth update after it
/// (Binance's rule: drop events whose final update id `u` is not past `lastUpdateId`).
fn btcusdt() -> Stream {
    let file = std::fs::File::open(RECORDING).expect("open the BTCUSDT recording");
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let (price_scale, qty_scale) = (Scale::new(2).expect("scale"), Scale::new(8).expect("scale"));
    let mut snapshot = None;
    let mut events = Vec::new();
    for line in reader.lines() {
        let line = line.expect("read the recording");
        let Some((_recv_ns, json)) = line.split_once(' ') else {
            continue;
        };
        if json.contains("\"lastUpdateId\"") {
            let v: serde_json::Value = serde_json::from_str(json).expect("snapshot json");
            let last = v["lastUpdateId"].as_u64().expect("lastUpdateId");
            let bids = levels(&v["bids"], price_scale, qty_scale);
            let asks = levels(&v["asks"], price_scale, qty_scale);
            snapshot = Some((last, bids, asks));
        } else if json.contains("\"stream\":\"btcusdt@depth@100ms\"") {
            let v: serde_json::Value = serde_json::from_str(json).expect("depth json");
            let data = &v["data"];
            let last_id = data["u"].as_u64().expect("u");
            let bids = levels(&data["b"], price_scale, qty_scale);
            let asks = levels(&data["a"], price_scale, qty_scale);
            events.push((last_id, bids, asks));
        }
    }
    let (last, snapshot_bids, snapshot_asks) = snapshot.expect("the recording has a snapshot");
    let mut updates = Vec::new();
    for (_, bids, asks) in events.into_iter().filter(|(u, _, _)| *u > last) {
        let as_updates = |side, levels: Vec<(Price, Qty)>| {
            levels
                .into_iter()
                .map(move |(price, qty)| Update { side, price, qty })
        };
        updates.extend(as_updates(Side::Buy, bids));
        updates.extend(as_updates(Side::Sell, asks));
    }
    Stream {
        name: "btcusdt",
        tick: Price(1),
        snapshot_bids,
        snapshot_asks,
        updates,
    }
}

/// Both books must end in the same state (the benchmark compares like with like).
fn cross_check(stream: &Stream) {
    let mut fast = L2Book::fresh(stream.tick);
    let mut slow = BTreeBook::fresh(stream.tick);
    fast.reset(stream);
    slow.reset(stream);
    for u in &stream.updates {
        assert_eq!(Book::apply(&mut fast, u), Book::apply(&mut slow, u));
    }
    assert_eq!(fast.touch(), slow.touch());
    let fast_bids: Vec<_> = fast.levels(Side::Buy).collect();
    let slow_bids: Vec<_> = slow.bids.iter().rev().map(|(&p, &q)| (p, q)).collect();
    assert_eq!(fast_bids, slow_bids);
    let fast_asks: Vec<_> = fast.levels(Side::Sell).collect();
    let slow_asks: Vec<_> = slow.asks.iter().map(|(&p, &q)| (p, q)).collect();
    assert_eq!(fast_asks, slow_asks);
    let deletes = stream.updates.iter().filter(|u| u.qty.0 == 0).count();
    eprintln!(
        "{}: {} updates ({:.0} % deletes); final book {} bids / {} asks, touch {:?}",
        stream.name,
        stream.updates.len(),
        100.0 * deletes as f64 / stream.updates.len() as f64,
        fast_bids.len(),
        fast_asks.len(),
        fast.touch(),
    );
}

// -------------------------------------------------------------------------------------------
// Criterion: time per whole stream, throughput in updates/s
// -------------------------------------------------------------------------------------------

fn throughput_one<B: Book>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    stream: &Stream,
) {
    let mut book = B::fresh(stream.tick);
    group.bench_function(BenchmarkId::from_parameter(B::NAME), |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                book.reset(stream); // untimed: clear and load the snapshot
                total += run(&mut book, &stream.updates);
            }
            total
        });
    });
}

fn throughput(c: &mut Criterion, streams: &[Stream]) {
    for stream in streams {
        let mut group = c.benchmark_group(format!("book_updates/{}", stream.name));
        group.throughput(Throughput::Elements(stream.updates.len() as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        throughput_one::<L2Book>(&mut group, stream);
        throughput_one::<SmallWindow>(&mut group, stream);
        throughput_one::<BTreeBook>(&mut group, stream);
        group.finish();
    }
}

// -------------------------------------------------------------------------------------------
// Latency percentiles and the summary
// -------------------------------------------------------------------------------------------

/// Per-update latency percentiles.
///
/// `Instant::now` (vDSO `clock_gettime`) costs ~20–40 ns here, several times one update, so
/// timing single updates would mostly measure the clock. Instead the stream is applied in
/// batches of `batch` (64) consecutive updates with one `Instant` pair around each batch, and
/// `batch time / batch` is recorded (in picoseconds) into an HDR histogram: the timer cost is
/// under 1 ns/update and the percentiles are those of 64-update averages. That hides how a
/// rare slow update (a window move, an overflow insert) stands out inside its batch, so the
/// maximum batch is printed too, and a second pass times single updates (`batch = 1`) to
/// show the tail of individual updates; those figures include the clock's own cost (printed
/// in the summary header). Both passes follow an untimed warm-up pass over the stream.
fn latency<B: Book>(stream: &Stream, batch: usize, passes: usize) -> Histogram<u64> {
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    let mut book = B::fresh(stream.tick);
    // One untimed pass first: the book's pages and the allocator's free lists are then warm,
    // as in a long-running process (first-touch page faults are measured by nobody here).
    book.reset(stream);
    run(&mut book, &stream.updates);
    for _ in 0..passes {
        book.reset(stream);
        let mut ok = 0usize;
        for chunk in stream.updates.chunks(batch) {
            let start = Instant::now();
            for u in chunk {
                ok += usize::from(book.apply(u));
            }
            let ps = start.elapsed().as_nanos() as u64 * 1000 / chunk.len() as u64;
            hist.saturating_record(ps.max(1));
        }
        black_box(ok);
    }
    hist
}

fn clock_cost_ns() -> f64 {
    let n = 1_000_000u32;
    let start = Instant::now();
    for _ in 0..n {
        black_box(Instant::now());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Best-of-N whole-stream time: the least disturbed run on a noisy machine.
fn best_of<B: Book>(stream: &Stream, runs: usize) -> (f64, f64) {
    let mut book = B::fresh(stream.tick);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            book.reset(stream);
            run(&mut book, &stream.updates).as_nanos() as f64 / stream.updates.len() as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

fn report<B: Book>(stream: &Stream) {
    let (best, median) = best_of::<B>(stream, 30);
    let batched = latency::<B>(stream, 64, 5);
    let single = latency::<B>(stream, 1, 3);
    let ns = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "{:<13} {:<8} best {:>6.2} ns/update ({:>6.1} M/s), median {:>6.2} ns ({:>6.1} M/s) | \
         64-batch p50 {:>6.2} p99 {:>6.2} p99.9 {:>6.2} max {:>8.2} ns | single p50 {:>5.0} \
         p99 {:>5.0} p99.99 {:>6.0} ns",
        stream.name,
        B::NAME,
        best,
        1e3 / best,
        median,
        1e3 / median,
        ns(&batched, 0.5),
        ns(&batched, 0.99),
        ns(&batched, 0.999),
        batched.max() as f64 / 1000.0,
        ns(&single, 0.5),
        ns(&single, 0.99),
        ns(&single, 0.9999),
    );
}

/// `BOOK_BENCH_PROFILE=<stream>/<book>` (e.g. `btcusdt/L2Book`) replays only that pair,
/// `BOOK_BENCH_RUNS` times (default 200), with no timing machinery around it: for `perf` or
/// `valgrind --tool=callgrind --toggle-collect='book::run*'`.
fn profile(streams: &[Stream], which: &str) {
    let runs = std::env::var("BOOK_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    for stream in streams {
        let (best, median) = if which == format!("{}/{}", stream.name, L2Book::NAME) {
            best_of::<L2Book>(stream, runs)
        } else if which == format!("{}/{}", stream.name, SmallWindow::NAME) {
            best_of::<SmallWindow>(stream, runs)
        } else if which == format!("{}/{}", stream.name, BTreeBook::NAME) {
            best_of::<BTreeBook>(stream, runs)
        } else {
            continue;
        };
        eprintln!("{which}: best {best:.2} median {median:.2} ns/update over {runs} runs");
    }
}

fn main() {
    let streams = [synthetic(1_000_000), btcusdt()];
    if let Ok(which) = std::env::var("BOOK_BENCH_PROFILE") {
        profile(&streams, &which);
        return;
    }
    for stream in &streams {
        cross_check(stream);
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &streams);
    c.final_summary();
    eprintln!(
        "\nSummary (ns per level update; clock cost {:.1} ns per Instant::now):",
        clock_cost_ns()
    );
    for stream in &streams {
        report::<L2Book>(stream);
        report::<SmallWindow>(stream);
        report::<BTreeBook>(stream);
    }
}
