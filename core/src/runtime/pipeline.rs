//! Builds the rings a [`Plan`] needs, starts one thread per planned thread, stops them by
//! draining, and reports what happened.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aaiti_model::{Control, ControlAction, Envelope, RecordHeader, StreamId};
use serde::Serialize;

use super::placement::{PipelineShape, Plan, ThreadPlan};
use super::ring::{self, Polled, RingConsumer, RingShared, RingStats};
use super::snapshot::SnapshotPort;
use super::stage::{Emitter, Sink, Source, SourceStatus, Stage};
use super::wait::WaitStrategy;
use crate::sys;

/// Records on this stream are the runtime's own (drain markers). Sources and stages must
/// use other stream ids.
pub const RUNTIME_STREAM: StreamId = StreamId(0);

/// Ring sizing and batching.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RingSettings {
    /// Slots per ring; a power of two.
    pub capacity: usize,
    /// Most events taken from a ring (or polled from the sources) before the stages get
    /// their batch-end signal.
    pub batch_limit: u64,
}

/// Why a pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The plan does not match the pipeline (a bug in the caller: plans come from
    /// [`super::placement::plan`] on the same shape).
    #[error("the placement plan does not match the pipeline: {0}")]
    PlanMismatch(String),
    /// Ring capacity is not a power of two.
    #[error("ring capacity {0} is not a power of two of at least 2")]
    BadCapacity(usize),
    /// The OS refused a thread.
    #[error("cannot start thread {name:?}: {source}")]
    Spawn {
        /// Thread name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// Shared between the threads and the stop handle.
struct Flags {
    stop_requested: AtomicBool,
    aborted: Arc<AtomicBool>,
    /// Sequence of the runtime's own records on [`RUNTIME_STREAM`].
    runtime_seq: AtomicU64,
    /// A snapshot request id waiting for a source thread to emit it (0: none).
    snapshot_requested: AtomicU64,
    /// Last snapshot request id handed out.
    snapshot_ids: AtomicU64,
    /// Source threads emit a last snapshot request when they stop.
    snapshot_on_stop: bool,
    /// Sources that keep the run going ([`Source::keeps_running`]) and have not finished;
    /// the run ends when it reaches 0 (never, when there were none).
    lasting_sources: AtomicUsize,
    /// Whether there were any lasting sources.
    has_lasting_sources: bool,
}

/// Asks a running pipeline for a snapshot of every stage (see [`super::snapshot`]).
#[derive(Clone)]
pub struct SnapshotTrigger(Arc<Flags>);

impl SnapshotTrigger {
    /// Requests a snapshot; a source thread emits the request at its next poll. Returns the
    /// request id. A request not yet emitted is replaced (ids are not reused).
    pub fn request(&self) -> u64 {
        let id = self.0.snapshot_ids.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.snapshot_requested.store(id, Ordering::Release);
        id
    }
}

/// Requests a drain-and-stop of a running pipeline; cheap to clone, usable from a signal
/// handler thread.
#[derive(Clone)]
pub struct StopHandle(Arc<Flags>);

impl StopHandle {
    /// Asks every source thread to stop polling its sources and send the drain marker.
    /// Events already emitted are still processed by every stage.
    pub fn request_stop(&self) {
        self.0.stop_requested.store(true, Ordering::Release);
    }

    /// True once a stop was requested (or a thread failed).
    pub fn stop_requested(&self) -> bool {
        self.0.stop_requested.load(Ordering::Acquire)
    }
}

/// A pipeline being assembled: sources and stages in order.
pub struct Pipeline {
    sources: Vec<Box<dyn Source>>,
    stages: Vec<Box<dyn Stage>>,
    settings: RingSettings,
    snapshots: Option<SnapshotPort>,
    snapshot_on_stop: bool,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new(settings: RingSettings) -> Self {
        Self {
            sources: Vec::new(),
            stages: Vec::new(),
            settings,
            snapshots: None,
            snapshot_on_stop: false,
        }
    }

    /// Stages hand their state to `port` when a snapshot request passes; with `on_stop`,
    /// every source thread requests a last snapshot when it stops (sources finished or a
    /// stop requested), so a clean restart replays nothing.
    pub fn snapshots(mut self, port: SnapshotPort, on_stop: bool) -> Self {
        self.snapshots = Some(port);
        self.snapshot_on_stop = on_stop;
        self
    }

    /// Number of stages (a snapshot has one section per stage).
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Restores stage `name` from its snapshot section, before the pipeline starts.
    ///
    /// # Errors
    ///
    /// No stage has that name, or the stage refused the state (the message says why).
    pub fn restore_stage(&mut self, name: &str, state: &[u8]) -> Result<(), String> {
        match self.stages.iter_mut().find(|stage| stage.name() == name) {
            Some(stage) => stage.restore(state),
            None => Err(format!("the pipeline has no stage named {name:?}")),
        }
    }

    /// Adds a source.
    pub fn source(mut self, source: Box<dyn Source>) -> Self {
        self.sources.push(source);
        self
    }

    /// Appends a stage.
    pub fn stage(mut self, stage: Box<dyn Stage>) -> Self {
        self.stages.push(stage);
        self
    }

    /// Passes `event` through every stage in order, on the calling thread, before the
    /// pipeline starts: recovery rebuilds the stages' state from the journal this way. The
    /// event should carry [`aaiti_model::RecordHeader::FLAG_REPLAY`]; what the last stage
    /// emits is dropped.
    pub fn recover_event(&mut self, event: &Envelope) {
        let mut sink = Sink::End;
        Emitter::new(&mut self.stages, &mut sink).emit(event);
    }

    /// Tells source `index` (configuration order) where the journal left it.
    pub fn resume_source(&mut self, index: usize, last_seq: u64) {
        if let Some(source) = self.sources.get_mut(index) {
            source.resume_after(last_seq);
        }
    }

    /// The names, for placement.
    pub fn shape(&self) -> PipelineShape {
        PipelineShape {
            sources: self.sources.iter().map(|s| s.name().to_owned()).collect(),
            stages: self.stages.iter().map(|s| s.name().to_owned()).collect(),
            serving: self.sources.iter().map(|s| !s.keeps_running()).collect(),
        }
    }

    /// Wires rings and starts the threads of `plan`.
    pub fn start(self, plan: &Plan) -> Result<Running, RuntimeError> {
        let capacity = self.settings.capacity;
        if capacity < 2 || !capacity.is_power_of_two() {
            return Err(RuntimeError::BadCapacity(capacity));
        }
        check_plan(plan, self.sources.len(), self.stages.len())?;
        let lasting = self.sources.iter().filter(|s| s.keeps_running()).count();
        let flags = Arc::new(Flags {
            stop_requested: AtomicBool::new(false),
            aborted: Arc::new(AtomicBool::new(false)),
            runtime_seq: AtomicU64::new(0),
            snapshot_requested: AtomicU64::new(0),
            snapshot_ids: AtomicU64::new(0),
            snapshot_on_stop: self.snapshot_on_stop && self.snapshots.is_some(),
            lasting_sources: AtomicUsize::new(lasting),
            has_lasting_sources: lasting > 0,
        });

        // One ring in front of every thread that does not run sources.
        let stage_count = self.stages.len();
        let mut inputs: Vec<Option<(RingConsumer, usize)>> = Vec::new();
        let mut outputs: Vec<Option<ring::RingPublisher>> =
            (0..plan.threads.len()).map(|_| None).collect();
        let mut rings = Vec::new();
        for (index, thread) in plan.threads.iter().enumerate() {
            if !thread.sources.is_empty() {
                inputs.push(None);
                continue;
            }
            let first = thread.stages.start;
            let producers: Vec<usize> = plan
                .threads
                .iter()
                .enumerate()
                .filter(|(_, t)| last_position(t) == Some(first))
                .map(|(i, _)| i)
                .collect();
            let may_park = matches!(thread.wait, WaitStrategy::Park { .. });
            let name = self.stages[first].name().to_owned();
            let (publishers, consumer, shared) = ring::ring(
                &name,
                capacity,
                producers.len(),
                may_park,
                Arc::clone(&flags.aborted),
            );
            for (producer, publisher) in producers.iter().zip(publishers) {
                outputs[*producer] = Some(publisher);
            }
            inputs.push(Some((consumer, producers.len())));
            rings.push(shared);
            debug_assert!(index > 0);
        }

        let mut sources: Vec<Option<Box<dyn Source>>> =
            self.sources.into_iter().map(Some).collect();
        let mut stages: Vec<Option<Box<dyn Stage>>> = self.stages.into_iter().map(Some).collect();
        let mut handles = Vec::with_capacity(plan.threads.len());
        for ((thread, input), output) in plan.threads.iter().zip(inputs).zip(outputs) {
            let input = match input {
                Some((consumer, producers)) => Input::Ring {
                    consumer,
                    producers,
                },
                None => Input::Sources(
                    thread
                        .sources
                        .iter()
                        .filter_map(|&s| sources[s].take())
                        .collect(),
                ),
            };
            let worker = Worker {
                input,
                stages: thread
                    .stages
                    .clone()
                    .filter_map(|s| stages[s].take())
                    .collect(),
                sink: output.map_or(Sink::End, Sink::Ring),
                snapshots: self.snapshots.clone(),
                flags: Arc::clone(&flags),
                batch_limit: self.settings.batch_limit.max(1),
                wait: thread.wait,
            };
            debug_assert!(thread.stages.end <= stage_count);
            let core = thread.core;
            let spawned = std::thread::Builder::new()
                .name(thread.name.clone())
                .spawn(move || {
                    let pinned = core.map(sys::pin_current_thread);
                    let mut outcome =
                        match std::panic::catch_unwind(AssertUnwindSafe(|| worker.run())) {
                            Ok(outcome) => outcome,
                            Err(panic) => WorkerOutcome::failed(panic_message(&*panic)),
                        };
                    outcome.pinned = pinned;
                    outcome
                });
            match spawned {
                Ok(handle) => handles.push((thread.clone(), handle)),
                Err(source) => {
                    let stop = StopHandle(Arc::clone(&flags));
                    stop.request_stop();
                    flags.aborted.store(true, Ordering::Release);
                    return Err(RuntimeError::Spawn {
                        name: thread.name.clone(),
                        source,
                    });
                }
            }
        }
        Ok(Running {
            handles,
            flags,
            rings,
            started: Instant::now(),
        })
    }
}

/// The pipeline position a thread's output feeds: the stage after its last one.
fn last_position(thread: &ThreadPlan) -> Option<usize> {
    if thread.stages.is_empty() {
        Some(0)
    } else {
        Some(thread.stages.end)
    }
}

fn check_plan(plan: &Plan, sources: usize, stages: usize) -> Result<(), RuntimeError> {
    let mut source_seen = vec![false; sources];
    let mut stage_seen = vec![false; stages];
    for thread in &plan.threads {
        for &s in &thread.sources {
            match source_seen.get_mut(s) {
                Some(seen) if !*seen => *seen = true,
                _ => {
                    return Err(RuntimeError::PlanMismatch(format!(
                        "source {s} placed twice or unknown"
                    )));
                }
            }
        }
        for s in thread.stages.clone() {
            match stage_seen.get_mut(s) {
                Some(seen) if !*seen => *seen = true,
                _ => {
                    return Err(RuntimeError::PlanMismatch(format!(
                        "stage {s} placed twice or unknown"
                    )));
                }
            }
        }
        if thread.sources.is_empty() && thread.stages.is_empty() {
            return Err(RuntimeError::PlanMismatch(format!(
                "thread {} runs nothing",
                thread.name
            )));
        }
    }
    if source_seen.contains(&false) || stage_seen.contains(&false) {
        return Err(RuntimeError::PlanMismatch(
            "not every source and stage is placed".into(),
        ));
    }
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// A started pipeline.
pub struct Running {
    handles: Vec<(ThreadPlan, JoinHandle<WorkerOutcome>)>,
    flags: Arc<Flags>,
    rings: Vec<Arc<RingShared>>,
    started: Instant,
}

impl Running {
    /// A handle to request a drain-and-stop, e.g. from a Ctrl-C handler.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.flags))
    }

    /// True once every thread has exited.
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(|(_, handle)| handle.is_finished())
    }

    /// A handle to request snapshots (only useful when the pipeline was given a port with
    /// [`Pipeline::snapshots`]).
    pub fn snapshot_trigger(&self) -> SnapshotTrigger {
        SnapshotTrigger(Arc::clone(&self.flags))
    }

    /// Live ring statistics.
    pub fn ring_stats(&self) -> Vec<RingStats> {
        self.rings.iter().map(|r| r.stats()).collect()
    }

    /// Waits for every thread to exit (after the sources finish or a stop request) and
    /// reports.
    pub fn wait(self) -> RunReport {
        let mut threads = Vec::with_capacity(self.handles.len());
        for (plan, handle) in self.handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|panic| WorkerOutcome::failed(panic_message(&*panic)));
            if outcome.failure.is_some() {
                self.flags.aborted.store(true, Ordering::Release);
                self.flags.stop_requested.store(true, Ordering::Release);
            }
            threads.push(ThreadReport {
                name: plan.name,
                core: plan.core,
                pinned: outcome.pinned.unwrap_or(false),
                wait: plan.wait.to_string(),
                events: outcome.events,
                batches: outcome.batches,
                drained: outcome.drained,
                failure: outcome.failure,
                components: outcome.components,
            });
        }
        let elapsed = self.started.elapsed();
        RunReport {
            elapsed_s: elapsed.as_secs_f64(),
            failed: threads.iter().any(|t| t.failure.is_some() || !t.drained),
            threads,
            rings: self.rings.iter().map(|r| r.stats()).collect(),
        }
    }
}

/// What a run did: per thread, per ring, per stage.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Wall time from start to the last thread's exit.
    pub elapsed_s: f64,
    /// True if a thread failed or stopped without a complete drain.
    pub failed: bool,
    /// Threads.
    pub threads: Vec<ThreadReport>,
    /// Rings.
    pub rings: Vec<RingStats>,
}

impl RunReport {
    /// A counter reported by a source or stage, by component and counter name.
    pub fn counter(&self, component: &str, counter: &str) -> Option<u64> {
        self.threads
            .iter()
            .flat_map(|t| &t.components)
            .filter(|c| c.name == component)
            .flat_map(|c| &c.counters)
            .find(|(name, _)| name == counter)
            .map(|(_, value)| *value)
    }
}

/// One thread's part of a [`RunReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// Name.
    pub name: String,
    /// Core it was to be pinned to.
    pub core: Option<usize>,
    /// Whether pinning succeeded.
    pub pinned: bool,
    /// Wait strategy.
    pub wait: String,
    /// Events taken from its input (ring events or source polls that emitted).
    pub events: u64,
    /// Batches.
    pub batches: u64,
    /// True if it stopped after a complete drain (every upstream's marker seen).
    pub drained: bool,
    /// Panic message, if it failed.
    pub failure: Option<String>,
    /// Counters of its sources and stages.
    pub components: Vec<ComponentReport>,
}

/// A source's or stage's counters.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    /// Name.
    pub name: String,
    /// Counters.
    pub counters: Vec<(String, u64)>,
}

enum Input {
    Sources(Vec<Box<dyn Source>>),
    /// A ring and the number of threads producing into it (= drain markers to expect).
    Ring {
        consumer: RingConsumer,
        producers: usize,
    },
}

struct Worker {
    input: Input,
    stages: Vec<Box<dyn Stage>>,
    sink: Sink,
    snapshots: Option<SnapshotPort>,
    flags: Arc<Flags>,
    batch_limit: u64,
    wait: WaitStrategy,
}

struct WorkerOutcome {
    events: u64,
    batches: u64,
    drained: bool,
    pinned: Option<bool>,
    failure: Option<String>,
    components: Vec<ComponentReport>,
}

impl WorkerOutcome {
    fn failed(message: String) -> Self {
        Self {
            events: 0,
            batches: 0,
            drained: false,
            pinned: None,
            failure: Some(message),
            components: Vec::new(),
        }
    }
}

/// Marks `flags` aborted if the worker unwinds, so blocked producers elsewhere give up.
struct AbortOnUnwind<'a>(&'a Flags);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.aborted.store(true, Ordering::Release);
            self.0.stop_requested.store(true, Ordering::Release);
        }
    }
}

impl Worker {
    fn run(mut self) -> WorkerOutcome {
        let flags = Arc::clone(&self.flags);
        let _guard = AbortOnUnwind(&flags);
        let mut events = 0_u64;
        let mut batches = 0_u64;
        let mut idle_rounds = 0_u32;
        let mut input = std::mem::replace(&mut self.input, Input::Sources(Vec::new()));
        let drained = match &mut input {
            Input::Sources(sources) => {
                let mut finished = vec![false; sources.len()];
                loop {
                    // Every thread's lasting sources are done (serving ones never are).
                    let lasting_done = self.flags.has_lasting_sources
                        && self.flags.lasting_sources.load(Ordering::Acquire) == 0;
                    if self.flags.stop_requested.load(Ordering::Acquire)
                        || lasting_done
                        || !finished.contains(&false)
                    {
                        break;
                    }
                    let mut busy = false;
                    if self.flags.snapshot_requested.load(Ordering::Relaxed) != 0 {
                        let id = self.flags.snapshot_requested.swap(0, Ordering::AcqRel);
                        if id != 0 {
                            self.emit_snapshot_request(id);
                            busy = true;
                        }
                    }
                    for (source, done) in sources.iter_mut().zip(finished.iter_mut()) {
                        if *done {
                            continue;
                        }
                        match source.poll(&mut Emitter::with_snapshots(
                            &mut self.stages,
                            &mut self.sink,
                            self.snapshots.as_ref(),
                        )) {
                            SourceStatus::Busy => busy = true,
                            SourceStatus::Idle => {}
                            SourceStatus::Finished => {
                                *done = true;
                                if source.keeps_running() {
                                    self.flags.lasting_sources.fetch_sub(1, Ordering::AcqRel);
                                }
                            }
                        }
                    }
                    if busy {
                        events += 1;
                        batches += 1;
                        idle_rounds = 0;
                        self.batch_end();
                    } else {
                        idle_rounds = idle_rounds.saturating_add(1);
                        self.idle(None, idle_rounds);
                    }
                }
                if self.flags.snapshot_on_stop && !self.flags.aborted.load(Ordering::Acquire) {
                    let id = self.flags.snapshot_ids.fetch_add(1, Ordering::Relaxed) + 1;
                    self.emit_snapshot_request(id);
                }
                true
            }
            Input::Ring {
                consumer,
                producers,
            } => {
                let mut markers = 0_usize;
                let expected = *producers;
                loop {
                    let stages = &mut self.stages;
                    let sink = &mut self.sink;
                    let snapshots = self.snapshots.as_ref();
                    let polled = consumer.poll(self.batch_limit, |event| {
                        if is_drain_marker(event) {
                            markers += 1;
                        } else {
                            Emitter::with_snapshots(stages, sink, snapshots).emit(event);
                        }
                    });
                    match polled {
                        Polled::Events(count) => {
                            events += count as u64;
                            batches += 1;
                            idle_rounds = 0;
                            self.batch_end();
                            if markers >= expected {
                                break true;
                            }
                        }
                        Polled::Empty => {
                            idle_rounds = idle_rounds.saturating_add(1);
                            self.idle(Some(consumer), idle_rounds);
                        }
                        // Every producer is gone without all markers: an upstream thread failed.
                        Polled::Closed => break false,
                    }
                }
            }
        };
        self.shutdown();
        let mut components: Vec<ComponentReport> = Vec::new();
        if let Input::Sources(sources) = &input {
            components.extend(sources.iter().map(|s| ComponentReport {
                name: s.name().to_owned(),
                counters: s.report(),
            }));
        }
        components.extend(self.stages.iter().map(|s| ComponentReport {
            name: s.name().to_owned(),
            counters: s.report(),
        }));
        WorkerOutcome {
            events,
            batches,
            drained,
            pinned: None,
            failure: None,
            components,
        }
    }

    /// Emits snapshot request `id` into the pipeline (source threads only).
    fn emit_snapshot_request(&mut self, id: u64) {
        let seq = self.flags.runtime_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::clock::now();
        let request = Envelope::new(
            RecordHeader::new(RUNTIME_STREAM, seq, now, now),
            &Control::new(ControlAction::Snapshot, Control::ALL_ACCOUNTS, id),
        );
        Emitter::with_snapshots(&mut self.stages, &mut self.sink, self.snapshots.as_ref())
            .emit(&request);
    }

    fn batch_end(&mut self) {
        for index in 0..self.stages.len() {
            let (head, rest) = self.stages[index..].split_at_mut(1);
            head[0].on_batch_end(&mut Emitter::with_snapshots(
                rest,
                &mut self.sink,
                self.snapshots.as_ref(),
            ));
        }
    }

    /// Gives every stage its shutdown call in order, then passes one drain marker on.
    fn shutdown(&mut self) {
        for index in 0..self.stages.len() {
            let (head, rest) = self.stages[index..].split_at_mut(1);
            head[0].on_shutdown(&mut Emitter::with_snapshots(
                rest,
                &mut self.sink,
                self.snapshots.as_ref(),
            ));
        }
        let seq = self.flags.runtime_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::clock::now();
        let marker = Envelope::new(
            RecordHeader::new(RUNTIME_STREAM, seq, now, now),
            &Control::new(ControlAction::Shutdown, Control::ALL_ACCOUNTS, 0),
        );
        Emitter::new(&mut [], &mut self.sink).emit(&marker);
    }

    fn idle(&self, consumer: Option<&RingConsumer>, idle_rounds: u32) {
        match self.wait {
            WaitStrategy::BusySpin => {}
            WaitStrategy::SpinHint => std::hint::spin_loop(),
            WaitStrategy::Yield => std::thread::yield_now(),
            WaitStrategy::Park { .. } => {
                // A few cheap re-polls first: most gaps between events are short.
                if idle_rounds < 64 {
                    std::hint::spin_loop();
                    return;
                }
                let timeout = self.wait.park_timeout();
                match consumer {
                    Some(consumer) => consumer.park(timeout),
                    None => std::thread::park_timeout(timeout.min(Duration::from_millis(1))),
                }
            }
        }
    }
}

fn is_drain_marker(event: &Envelope) -> bool {
    event.header.stream == RUNTIME_STREAM
        && event
            .payload::<Control>()
            .is_some_and(|c| c.action == ControlAction::Shutdown.code())
}
