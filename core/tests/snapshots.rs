//! Snapshots taken while the pipeline runs are consistent: every stage's section of one
//! request describes the state after exactly the same events, whatever the threads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aaiti_core::runtime::snapshot::{SnapshotSection, collector};
use aaiti_core::runtime::{
    Emitter, Pipeline, PlacementConfig, PlacementMode, RingSettings, Stage, ThreadConfig,
    WaitStrategy, plan,
};
use aaiti_core::synthetic::SyntheticSource;
use aaiti_model::Envelope;

/// Counts the events it saw and a checksum of their sequence numbers; that is its state.
struct Tally {
    name: String,
    events: u64,
    sum: u64,
}

impl Stage for Tally {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        if event.header.stream.0 != 0 {
            self.events += 1;
            self.sum = self.sum.wrapping_mul(31).wrapping_add(event.header.seq);
        }
        out.emit(event);
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut state = self.events.to_le_bytes().to_vec();
        state.extend_from_slice(&self.sum.to_le_bytes());
        Ok(Some(state))
    }
}

fn tally(name: &str) -> Box<dyn Stage> {
    Box::new(Tally {
        name: name.to_owned(),
        events: 0,
        sum: 0,
    })
}

fn thread(name: &str, run: &[&str]) -> ThreadConfig {
    ThreadConfig {
        name: name.to_owned(),
        run: run.iter().map(|s| (*s).to_owned()).collect(),
        core: None,
        wait: WaitStrategy::Yield,
    }
}

#[test]
fn sections_of_one_request_agree_across_threads() {
    const EVENTS: u64 = 1_000_000;
    let completed: Arc<Mutex<BTreeMap<u64, Vec<SnapshotSection>>>> = Arc::default();
    let sink = Arc::clone(&completed);
    let (port, collector_thread) = collector(3, move |id, sections| {
        sink.lock().unwrap().insert(id, sections);
    })
    .unwrap();
    let pipeline = Pipeline::new(RingSettings {
        capacity: 1024,
        batch_limit: 64,
    })
    .source(Box::new(SyntheticSource::new(
        "synthetic",
        1,
        EVENTS,
        4_000_000,
    )))
    .stage(tally("first"))
    .stage(tally("second"))
    .stage(tally("third"))
    .snapshots(port, true);
    // Open loop at 4 M events/s (>= 250 ms). Three threads: the stages see each request at different moments.
    let placement = PlacementConfig {
        mode: PlacementMode::Manual,
        wait: WaitStrategy::Yield,
        pin: false,
        reserve_cores: None,
        threads: vec![
            thread("io", &["synthetic"]),
            thread("a", &["first"]),
            thread("b", &["second", "third"]),
        ],
    };
    let plan = plan(&pipeline.shape(), &placement, &[0, 1]).unwrap();
    let running = pipeline.start(&plan).unwrap();
    let trigger = running.snapshot_trigger();
    while !running.is_finished() {
        trigger.request();
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = running.wait();
    assert!(!report.failed);
    collector_thread.join().unwrap();

    let completed = completed.lock().unwrap();
    assert!(
        completed.len() >= 2,
        "expected periodic snapshots and the one at stop, got {}",
        completed.len()
    );
    let mut saw_partial = false;
    let mut saw_final = false;
    for (id, sections) in completed.iter() {
        let names: Vec<&str> = sections.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names.len(), 3, "request {id}: {names:?}");
        let states: Vec<&Vec<u8>> = sections
            .iter()
            .map(|s| s.state.as_ref().unwrap().as_ref().unwrap())
            .collect();
        assert!(
            states.windows(2).all(|pair| pair[0] == pair[1]),
            "request {id}: the stages disagree on what they had seen"
        );
        let events = u64::from_le_bytes(states[0][..8].try_into().unwrap());
        saw_partial |= events > 0 && events < EVENTS;
        saw_final |= events == EVENTS;
    }
    assert!(saw_final, "the snapshot at stop covers every event");
    // At 4 M events/s the stream lasts at least 250 ms: requests every 2 ms land mid-run.
    assert!(saw_partial, "no snapshot landed mid-run");
}
