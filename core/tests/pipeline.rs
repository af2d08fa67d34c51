//! The runtime end to end: every placement drains completely on stop, back-pressure is
//! counted and loses nothing, a failing stage stops the pipeline without a hang.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test or bench run"
)]

use std::time::Duration;

use aaiti_core::runtime::{
    Emitter, Pipeline, PlacementConfig, PlacementMode, RingSettings, RunReport, Stage,
    ThreadConfig, WaitStrategy, plan,
};
use aaiti_core::synthetic::{CountingSink, PassThrough, SyntheticSource};
use aaiti_model::{Control, ControlAction, Envelope, RecordHeader, StreamId, UnixNanos};

const SETTINGS: RingSettings = RingSettings {
    capacity: 1024,
    batch_limit: 128,
};

/// Tests share two cores with each other: threads yield or park instead of spinning.
fn polite(wait: WaitStrategy) -> PlacementConfig {
    PlacementConfig {
        wait,
        pin: false,
        ..PlacementConfig::default()
    }
}

fn synthetic_pipeline(sources: u16, events: u64, settings: RingSettings) -> Pipeline {
    let mut pipeline = Pipeline::new(settings);
    for index in 1..=sources {
        pipeline = pipeline.source(Box::new(SyntheticSource::new(
            &format!("synthetic-{index}"),
            index,
            events,
            0,
        )));
    }
    pipeline
        .stage(Box::new(PassThrough::new("passthrough")))
        .stage(Box::new(CountingSink::new("counter")))
}

fn emitted(report: &RunReport, sources: u16) -> u64 {
    (1..=sources)
        .map(|i| {
            report
                .counter(&format!("synthetic-{i}"), "emitted")
                .unwrap()
        })
        .sum()
}

fn assert_complete(report: &RunReport, sources: u16) {
    assert!(!report.failed, "{report:#?}");
    assert!(report.threads.iter().all(|t| t.drained), "{report:#?}");
    let sent = emitted(report, sources);
    assert!(sent > 0);
    assert_eq!(report.counter("passthrough", "forwarded"), Some(sent));
    assert_eq!(
        report.counter("counter", "events"),
        Some(sent),
        "{report:#?}"
    );
    assert_eq!(report.counter("counter", "gaps"), Some(0));
    assert_eq!(report.counter("counter", "out_of_order"), Some(0));
    assert_eq!(
        report.counter("counter", "streams"),
        Some(u64::from(sources))
    );
    assert_eq!(report.counter("counter", "shutdown_seen"), Some(1));
    for ring in &report.rings {
        // Data events plus one drain marker per producer thread.
        assert_eq!(ring.published, ring.consumed, "{ring:?}");
        assert_eq!(ring.dropped_after_abort, 0);
    }
}

fn run_until_stopped(
    pipeline: Pipeline,
    placement: &PlacementConfig,
    cores: &[usize],
) -> RunReport {
    let planned = plan(&pipeline.shape(), placement, cores).unwrap();
    let running = pipeline.start(&planned).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    running.stop_handle().request_stop();
    running.wait()
}

#[test]
fn drains_on_stop_with_auto_placement_on_1_2_and_16_cores() {
    for cores in [1_usize, 2, 16] {
        for wait in [WaitStrategy::Yield, WaitStrategy::Park { timeout_us: 100 }] {
            let sources = 2;
            let pipeline = synthetic_pipeline(sources, 0, SETTINGS);
            let report =
                run_until_stopped(pipeline, &polite(wait), &(0..cores).collect::<Vec<_>>());
            let expected_threads = match cores {
                1 => 1,
                2 => 2,
                _ => 4, // two source threads into a multi-producer ring, one per stage
            };
            assert_eq!(report.threads.len(), expected_threads, "cores={cores}");
            if cores == 16 {
                assert_eq!(report.rings[0].producers, 2, "multi-producer ring");
            }
            assert_complete(&report, sources);
        }
    }
}

#[test]
fn bounded_sources_finish_by_themselves() {
    let pipeline = synthetic_pipeline(3, 20_000, SETTINGS);
    let planned = plan(
        &pipeline.shape(),
        &polite(WaitStrategy::Yield),
        &[0, 1, 2, 3],
    )
    .unwrap();
    let report = pipeline.start(&planned).unwrap().wait();
    assert_complete(&report, 3);
    assert_eq!(report.counter("counter", "events"), Some(60_000));
}

/// Spins for a while per event: a consumer slower than its producer.
struct Slow {
    spins: u32,
}

impl Stage for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        for _ in 0..self.spins {
            std::hint::spin_loop();
        }
        out.emit(event);
    }
}

#[test]
fn full_rings_stall_the_producer_and_lose_nothing() {
    let settings = RingSettings {
        capacity: 64,
        batch_limit: 16,
    };
    let pipeline = Pipeline::new(settings)
        .source(Box::new(SyntheticSource::new("synthetic-1", 1, 50_000, 0)))
        .stage(Box::new(Slow { spins: 2_000 }))
        .stage(Box::new(CountingSink::new("counter")));
    let placement = PlacementConfig {
        mode: PlacementMode::Manual,
        pin: false,
        threads: vec![
            ThreadConfig {
                name: "io".into(),
                run: vec!["synthetic-1".into()],
                core: None,
                wait: WaitStrategy::Yield,
            },
            ThreadConfig {
                name: "slow".into(),
                run: vec!["slow".into()],
                core: None,
                wait: WaitStrategy::Park { timeout_us: 50 },
            },
            ThreadConfig {
                name: "sink".into(),
                run: vec!["counter".into()],
                core: None,
                wait: WaitStrategy::Yield,
            },
        ],
        ..PlacementConfig::default()
    };
    let planned = plan(&pipeline.shape(), &placement, &[0, 1]).unwrap();
    let report = pipeline.start(&planned).unwrap().wait();
    assert!(!report.failed, "{report:#?}");
    assert_eq!(report.counter("counter", "events"), Some(50_000));
    assert_eq!(report.counter("counter", "gaps"), Some(0));
    assert!(
        report.rings[0].full_stalls > 0,
        "the ring into the slow stage must have filled: {:?}",
        report.rings
    );
    assert_eq!(report.rings.len(), 2);
}

/// Emits one extra record when the pipeline drains, like a journal writing its final state.
struct FinalWord {
    seen: u64,
}

impl Stage for FinalWord {
    fn name(&self) -> &str {
        "final-word"
    }
    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        self.seen += 1;
        out.emit(event);
    }
    fn on_shutdown(&mut self, out: &mut Emitter<'_>) {
        let header = RecordHeader::new(StreamId(900), 1, UnixNanos(1), UnixNanos(1));
        out.emit_record(
            header,
            &Control::new(ControlAction::Snapshot, Control::ALL_ACCOUNTS, self.seen),
        );
    }
}

#[test]
fn events_emitted_during_shutdown_reach_later_threads() {
    let pipeline = Pipeline::new(SETTINGS)
        .source(Box::new(SyntheticSource::new("synthetic-1", 1, 1_000, 0)))
        .stage(Box::new(FinalWord { seen: 0 }))
        .stage(Box::new(CountingSink::new("counter")));
    let planned = plan(&pipeline.shape(), &polite(WaitStrategy::Yield), &[0, 1, 2]).unwrap();
    assert_eq!(planned.threads.len(), 3);
    let report = pipeline.start(&planned).unwrap().wait();
    assert!(!report.failed);
    assert_eq!(report.counter("counter", "events"), Some(1_001));
    assert_eq!(report.counter("counter", "streams"), Some(2));
}

struct Explodes;

impl Stage for Explodes {
    fn name(&self) -> &str {
        "explodes"
    }
    #[allow(clippy::panic, reason = "the test needs a failing stage")]
    fn on_event(&mut self, event: &Envelope, _out: &mut Emitter<'_>) {
        if event.header.seq == 500 {
            panic!("stage bug at seq 500");
        }
    }
}

#[test]
fn a_failing_stage_stops_the_pipeline_without_hanging() {
    let pipeline = Pipeline::new(RingSettings {
        capacity: 64,
        batch_limit: 8,
    })
    .source(Box::new(SyntheticSource::new("synthetic-1", 1, 0, 0)))
    .stage(Box::new(Explodes));
    let planned = plan(&pipeline.shape(), &polite(WaitStrategy::Yield), &[0, 1]).unwrap();
    let report = pipeline.start(&planned).unwrap().wait();
    assert!(report.failed);
    let failed: Vec<_> = report
        .threads
        .iter()
        .filter_map(|t| t.failure.as_deref())
        .collect();
    assert_eq!(failed, vec!["stage bug at seq 500"]);
}

#[test]
fn bad_ring_capacity_is_refused() {
    let pipeline = synthetic_pipeline(
        1,
        10,
        RingSettings {
            capacity: 1000,
            batch_limit: 1,
        },
    );
    let planned = plan(&pipeline.shape(), &polite(WaitStrategy::Yield), &[0]).unwrap();
    assert!(pipeline.start(&planned).is_err());
}
