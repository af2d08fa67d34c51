//! One producer to one consumer on two pinned cores, three ways in one run:
//!
//! * `runtime`: AAITI's pipeline (a source thread and a stage thread, manual placement,
//!   busy-spin) — everything a real hop pays: emitter dispatch, slot write, counters,
//!   drain-marker check, stage call;
//! * `disruptor`: the bare `disruptor` crate, `build_single_producer` + a managed consumer;
//! * `crossbeam`: a bounded `crossbeam-channel`, consumer spinning on `try_recv`.
//!
//! All three move the same 192-byte `Envelope` (a 32-byte trade payload in use).
//!
//! Throughput (criterion): N events as fast as possible, time from the first publish to the
//! consumer's last receive.
//!
//! Latency (printed after criterion's groups): open loop at a fixed rate; each event carries
//! its *scheduled* send time (not the actual one), so a stalled producer shows up as latency
//! instead of hiding it (coordinated omission). The consumer records `now - scheduled` into
//! an HdrHistogram. Both clocks are `Instant` (CLOCK_MONOTONIC) against one shared base.
//!
//! Run: `cargo bench -p aaiti-core --bench ring_hop` (cores 0 and 1 must be free).
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test or bench run"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aaiti_core::runtime::{
    Emitter, Pipeline, PlacementConfig, PlacementMode, RingSettings, Source, SourceStatus, Stage,
    ThreadConfig, WaitStrategy, plan,
};
use aaiti_model::{Envelope, InstrumentId, Price, Qty, RecordHeader, StreamId, Trade, UnixNanos};
use criterion::{Criterion, Throughput, criterion_group};
use disruptor::{BusySpin, ProcessorSettings, Producer};
use hdrhistogram::Histogram;

const CAPACITY: usize = 65_536;
const PRODUCER_CORE: usize = 0;
const CONSUMER_CORE: usize = 1;

fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

fn event(seq: u64, sent_ns: u64) -> Envelope {
    let trade = Trade {
        instrument: InstrumentId(0),
        aggressor: 1,
        _pad: [0; 3],
        price: Price(6_173_763),
        qty: Qty(241),
        trade_id: seq,
    };
    Envelope::new(
        RecordHeader::new(StreamId(1), seq, UnixNanos(sent_ns), UnixNanos(sent_ns)),
        &trade,
    )
}

fn pin(core: usize) {
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()
}

// ------------------------------------------------------------------------------------------
// The runtime's side: a paced or unpaced source and a recording sink.
// ------------------------------------------------------------------------------------------

struct BenchSource {
    base: Instant,
    events: u64,
    interval_ns: u64,
    next_due_ns: u64,
    sent: u64,
    started_ns: Arc<AtomicU64>,
}

impl Source for BenchSource {
    fn name(&self) -> &str {
        "bench-source"
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        if self.sent == self.events {
            return SourceStatus::Finished;
        }
        let now = now_ns(self.base);
        if self.sent == 0 {
            self.started_ns.store(now, Ordering::Relaxed);
            self.next_due_ns = now;
        }
        if self.interval_ns == 0 {
            // Unpaced: a burst per poll, like a feed handler draining a socket.
            for _ in 0..64.min(self.events - self.sent) {
                self.sent += 1;
                out.emit_record(
                    RecordHeader::new(StreamId(1), self.sent, UnixNanos(now), UnixNanos(now)),
                    event(self.sent, now).payload::<Trade>().unwrap(),
                );
            }
            return SourceStatus::Busy;
        }
        if now < self.next_due_ns {
            return SourceStatus::Idle;
        }
        let scheduled = self.next_due_ns;
        self.sent += 1;
        self.next_due_ns += self.interval_ns;
        out.emit_record(
            RecordHeader::new(
                StreamId(1),
                self.sent,
                UnixNanos(scheduled),
                UnixNanos(scheduled),
            ),
            event(self.sent, scheduled).payload::<Trade>().unwrap(),
        );
        SourceStatus::Busy
    }
}

struct BenchSink {
    base: Instant,
    warmup: u64,
    seen: u64,
    last_ns: Arc<AtomicU64>,
    record_latency: bool,
    latency: Option<Histogram<u64>>,
    done: crossbeam_channel::Sender<Histogram<u64>>,
}

impl Stage for BenchSink {
    fn name(&self) -> &str {
        "bench-sink"
    }

    #[inline]
    fn on_event(&mut self, event: &Envelope, _out: &mut Emitter<'_>) {
        self.seen += 1;
        let now = now_ns(self.base);
        if self.record_latency
            && self.seen > self.warmup
            && let Some(latency) = &mut self.latency
        {
            latency.saturating_record(now.saturating_sub(event.header.ts_recv.0).max(1));
        }
        self.last_ns.store(now, Ordering::Relaxed);
    }

    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {
        if let Some(latency) = self.latency.take() {
            let _ = self.done.send(latency);
        }
    }
}

fn runtime_placement() -> PlacementConfig {
    PlacementConfig {
        mode: PlacementMode::Manual,
        threads: vec![
            ThreadConfig {
                name: "bench-io".into(),
                run: vec!["bench-source".into()],
                core: Some(PRODUCER_CORE),
                wait: WaitStrategy::BusySpin,
            },
            ThreadConfig {
                name: "bench-stage".into(),
                run: vec!["bench-sink".into()],
                core: Some(CONSUMER_CORE),
                wait: WaitStrategy::BusySpin,
            },
        ],
        ..PlacementConfig::default()
    }
}

/// Runs the pipeline; returns (first publish -> last receive, latency histogram).
fn run_runtime(events: u64, interval_ns: u64, warmup: u64) -> (Duration, Histogram<u64>) {
    let base = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let (done, receive) = crossbeam_channel::bounded(1);
    let pipeline = Pipeline::new(RingSettings {
        capacity: CAPACITY,
        batch_limit: 1024,
    })
    .source(Box::new(BenchSource {
        base,
        events,
        interval_ns,
        next_due_ns: 0,
        sent: 0,
        started_ns: Arc::clone(&started),
    }))
    .stage(Box::new(BenchSink {
        base,
        warmup,
        seen: 0,
        last_ns: Arc::clone(&last),
        record_latency: interval_ns > 0,
        latency: Some(histogram()),
        done,
    }));
    let cores = aaiti_core::sys::available_cores();
    let planned = plan(&pipeline.shape(), &runtime_placement(), &cores).unwrap();
    let report = pipeline.start(&planned).unwrap().wait();
    assert!(!report.failed);
    let elapsed = last
        .load(Ordering::Relaxed)
        .saturating_sub(started.load(Ordering::Relaxed));
    (Duration::from_nanos(elapsed), receive.recv().unwrap())
}

// ------------------------------------------------------------------------------------------
// Bare disruptor.
// ------------------------------------------------------------------------------------------

fn run_disruptor(events: u64, interval_ns: u64, warmup: u64) -> (Duration, Histogram<u64>) {
    let base = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (done, receive) = crossbeam_channel::bounded(1);
    let consumer_last = Arc::clone(&last);
    let mut latency = Some(histogram());
    let mut seen = 0_u64;
    let record = interval_ns > 0;
    let handler = move |event: &Envelope, _sequence: i64, _end_of_batch: bool| {
        seen += 1;
        let now = now_ns(base);
        if record
            && seen > warmup
            && let Some(latency) = &mut latency
        {
            latency.saturating_record(now.saturating_sub(event.header.ts_recv.0).max(1));
        }
        consumer_last.store(now, Ordering::Relaxed);
        if seen == events
            && let Some(latency) = latency.take()
        {
            let _ = done.send(latency);
        }
    };
    // Build from the unpinned main thread: the disruptor checks the *calling* thread's
    // affinity mask when asked to pin its consumer.
    let mut producer = disruptor::build_single_producer(CAPACITY, Envelope::default, BusySpin)
        .pin_at_core(CONSUMER_CORE)
        .handle_events_with(handler)
        .build();
    let started = std::thread::spawn(move || {
        pin(PRODUCER_CORE);
        let started = now_ns(base);
        let mut next_due = started;
        for seq in 1..=events {
            let stamp = if interval_ns == 0 {
                now_ns(base)
            } else {
                while now_ns(base) < next_due {}
                let scheduled = next_due;
                next_due += interval_ns;
                scheduled
            };
            let trade = *event(seq, stamp).payload::<Trade>().unwrap();
            producer.publish(|slot| {
                slot.set(
                    RecordHeader::new(StreamId(1), seq, UnixNanos(stamp), UnixNanos(stamp)),
                    &trade,
                )
            });
        }
        // Dropping the producer joins the consumer thread after it drained the ring.
        drop(producer);
        started
    })
    .join()
    .unwrap();
    let histogram = receive.recv().unwrap();
    let elapsed = last.load(Ordering::Relaxed).saturating_sub(started);
    (Duration::from_nanos(elapsed), histogram)
}

// ------------------------------------------------------------------------------------------
// crossbeam-channel.
// ------------------------------------------------------------------------------------------

fn run_crossbeam(events: u64, interval_ns: u64, warmup: u64) -> (Duration, Histogram<u64>) {
    let base = Instant::now();
    let (send, receive) = crossbeam_channel::bounded::<Envelope>(CAPACITY);
    let consumer = std::thread::spawn(move || {
        pin(CONSUMER_CORE);
        let mut latency = histogram();
        let mut seen = 0_u64;
        let mut last = 0;
        while seen < events {
            match receive.try_recv() {
                Ok(event) => {
                    seen += 1;
                    last = now_ns(base);
                    if interval_ns > 0 && seen > warmup {
                        latency
                            .saturating_record(last.saturating_sub(event.header.ts_recv.0).max(1));
                    }
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        (last, latency)
    });
    let started = std::thread::spawn(move || {
        pin(PRODUCER_CORE);
        let started = now_ns(base);
        let mut next_due = started;
        for seq in 1..=events {
            let stamp = if interval_ns == 0 {
                now_ns(base)
            } else {
                while now_ns(base) < next_due {}
                let scheduled = next_due;
                next_due += interval_ns;
                scheduled
            };
            send.send(event(seq, stamp)).unwrap();
        }
        started
    })
    .join()
    .unwrap();
    let (last, histogram) = consumer.join().unwrap();
    (
        Duration::from_nanos(last.saturating_sub(started)),
        histogram,
    )
}

// ------------------------------------------------------------------------------------------

type Runner = fn(u64, u64, u64) -> (Duration, Histogram<u64>);
const VARIANTS: [(&str, Runner); 3] = [
    ("runtime", run_runtime),
    ("disruptor", run_disruptor),
    ("crossbeam", run_crossbeam),
];

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_hop_throughput");
    let batch = 1_000_000_u64;
    group.throughput(Throughput::Elements(batch));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for (name, runner) in VARIANTS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| runner(batch, 0, 0).0).sum());
        });
    }
    group.finish();
}

fn latency() {
    let rate_per_s = 500_000_u64;
    let events = 2_000_000_u64;
    let warmup = 100_000_u64;
    eprintln!(
        "\nring_hop_latency: one-way, open loop at {rate_per_s}/s, {events} events ({warmup} warm-up), cores {PRODUCER_CORE}->{CONSUMER_CORE}"
    );
    eprintln!(
        "{:<10} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "variant", "p50 ns", "p90 ns", "p99 ns", "p99.9 ns", "max ns"
    );
    let mut medians = Vec::new();
    for (name, runner) in VARIANTS {
        let (_, h) = runner(events, 1_000_000_000 / rate_per_s, warmup);
        eprintln!(
            "{name:<10} {:>8} {:>8} {:>8} {:>9} {:>9}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
        medians.push((name, h.value_at_quantile(0.5), h.value_at_quantile(0.99)));
    }
    let (_, runtime_p50, runtime_p99) = medians[0];
    let (_, bare_p50, bare_p99) = medians[1];
    eprintln!(
        "runtime / bare disruptor: p50 {:.2}x, p99 {:.2}x",
        runtime_p50 as f64 / bare_p50.max(1) as f64,
        runtime_p99 as f64 / bare_p99.max(1) as f64
    );
}

criterion_group!(benches, throughput);

fn main() {
    benches();
    latency();
    Criterion::default().configure_from_args().final_summary();
}
