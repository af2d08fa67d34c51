//! The placeholder pipeline's parts: a synthetic trade generator, a pass-through stage and a
//! counting sink that checks every stream arrives complete and in order. They exercise
//! placement, rings and shutdown for real until the market-data and trading stages exist,
//! and stay useful as a load source for benchmarks.

use aaiti_model::{Envelope, InstrumentId, Price, Qty, RecordHeader, Side, StreamId, Trade};
use hdrhistogram::Histogram;

use crate::clock;
use crate::runtime::{Emitter, Source, SourceStatus, Stage};

/// Most events one [`SyntheticSource::poll`] emits.
const POLL_BATCH: u64 = 64;

/// Emits trades on its own stream at a fixed rate (open loop: each event has a due time,
/// and a late source catches up rather than shifting the schedule) or as fast as the
/// pipeline takes them.
pub struct SyntheticSource {
    name: String,
    stream: StreamId,
    /// Total events; 0 means until stopped.
    events: u64,
    /// Events per second; 0 means as fast as possible.
    rate_per_s: u64,
    emitted: u64,
    started: Option<std::time::Instant>,
    price: i64,
    rng: u64,
}

impl SyntheticSource {
    /// A generator on `stream` (must not be the runtime's stream 0).
    pub fn new(name: &str, stream: u16, events: u64, rate_per_s: u64) -> Self {
        Self {
            name: name.to_owned(),
            stream: StreamId(stream.max(1)),
            events,
            rate_per_s,
            emitted: 0,
            started: None,
            price: 6_173_763,
            rng: 0x9E37_79B9_7F4A_7C15 ^ u64::from(stream),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: deterministic, allocation-free.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// How many events are due now under the rate.
    fn due(&mut self) -> u64 {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let mut budget = POLL_BATCH;
        if self.rate_per_s > 0 {
            let elapsed_ns = started.elapsed().as_nanos();
            let due_total =
                elapsed_ns.saturating_mul(u128::from(self.rate_per_s)) / 1_000_000_000 + 1;
            let due_total = u64::try_from(due_total).unwrap_or(u64::MAX);
            budget = budget.min(due_total.saturating_sub(self.emitted));
        }
        if self.events > 0 {
            budget = budget.min(self.events - self.emitted);
        }
        budget
    }
}

impl Source for SyntheticSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        if self.events > 0 && self.emitted >= self.events {
            return SourceStatus::Finished;
        }
        let due = self.due();
        if due == 0 {
            return SourceStatus::Idle;
        }
        for _ in 0..due {
            let random = self.next_random();
            self.price += (random % 3) as i64 - 1;
            self.emitted += 1;
            let now = clock::now();
            let trade = Trade {
                instrument: InstrumentId(0),
                aggressor: if random & 8 == 0 {
                    Side::Buy.code()
                } else {
                    Side::Sell.code()
                },
                _pad: [0; 3],
                price: Price(self.price),
                qty: Qty(1 + (random >> 40) as i64 % 100_000),
                trade_id: self.emitted,
            };
            out.emit_record(
                RecordHeader::new(self.stream, self.emitted, now, now),
                &trade,
            );
        }
        SourceStatus::Busy
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.emitted = last_seq;
        if self.events > 0 && self.emitted > self.events {
            self.emitted = self.events;
        }
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![("emitted".to_owned(), self.emitted)]
    }
}

/// Forwards every event unchanged.
pub struct PassThrough {
    name: String,
    forwarded: u64,
}

impl PassThrough {
    /// A pass-through stage.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            forwarded: 0,
        }
    }
}

impl Stage for PassThrough {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        self.forwarded += 1;
        out.emit(event);
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![("forwarded".to_owned(), self.forwarded)]
    }
}

/// Counts events, checks that every stream's sequence numbers arrive as 1, 2, 3... with no
/// gap, duplicate or reordering, and records receive-to-sink latency (of live and synthetic
/// records; replayed ones carry their recorded receive time and are only counted).
pub struct CountingSink {
    name: String,
    events: u64,
    /// Last sequence seen per stream id (allocated once: 65,536 entries).
    last_seq: Vec<u64>,
    gaps: u64,
    out_of_order: u64,
    batches: u64,
    shutdown_seen: bool,
    latency_ns: Histogram<u64>,
    /// Records whose `ts_recv` is older than [`MAX_LATENCY_NS`] (replays): not timed.
    not_timed: u64,
}

/// Longest receive-to-sink latency recorded; older receive times are recorded traffic.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

impl CountingSink {
    /// A counting sink.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            events: 0,
            last_seq: vec![0; usize::from(u16::MAX) + 1],
            gaps: 0,
            out_of_order: 0,
            batches: 0,
            shutdown_seen: false,
            latency_ns: latency_histogram(),
            not_timed: 0,
        }
    }
}

/// 1 ns .. 60 s at 3 significant figures; fixed size, so recording never allocates.
#[allow(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram documents as valid"
)]
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

impl Stage for CountingSink {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn on_event(&mut self, event: &Envelope, _out: &mut Emitter<'_>) {
        if event.header.stream == crate::runtime::RUNTIME_STREAM {
            // The runtime's own requests (snapshots) share their numbering with the drain
            // markers stages never see: not a stream to check.
            return;
        }
        self.events += 1;
        let seq = event.header.seq;
        let last = &mut self.last_seq[event.header.stream.index()];
        if seq <= *last {
            self.out_of_order += 1;
        } else {
            if seq != *last + 1 {
                self.gaps += 1;
            }
            *last = seq;
        }
        // Replayed records carry their recorded receive time: no latency to measure there.
        let latency = clock::now().saturating_since(event.header.ts_recv);
        if latency <= MAX_LATENCY_NS {
            self.latency_ns.saturating_record(latency.max(1));
        } else {
            self.not_timed += 1;
        }
    }

    fn on_batch_end(&mut self, _out: &mut Emitter<'_>) {
        self.batches += 1;
    }

    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {
        self.shutdown_seen = true;
    }

    fn report(&self) -> Vec<(String, u64)> {
        let streams = self.last_seq.iter().filter(|&&s| s > 0).count() as u64;
        let mut counters = vec![
            ("events".to_owned(), self.events),
            ("streams".to_owned(), streams),
            ("gaps".to_owned(), self.gaps),
            ("out_of_order".to_owned(), self.out_of_order),
            ("batches".to_owned(), self.batches),
            ("shutdown_seen".to_owned(), u64::from(self.shutdown_seen)),
            ("not_timed".to_owned(), self.not_timed),
        ];
        if !self.latency_ns.is_empty() {
            for (label, quantile) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
                counters.push((
                    format!("latency_{label}_ns"),
                    self.latency_ns.value_at_quantile(quantile),
                ));
            }
            counters.push(("latency_max_ns".to_owned(), self.latency_ns.max()));
        }
        counters
    }
}
