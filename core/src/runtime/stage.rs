//! The stage and source traits and the [`Emitter`] through which they pass events on.

use aaiti_model::{Control, ControlAction, Envelope, Record, RecordHeader, RecordKind};

use super::ring::RingPublisher;
use super::snapshot::{SnapshotPort, SnapshotSection};

/// A step of the pipeline. It gets every event of its input in order, on one thread, and may
/// emit any number of events to the next stage.
///
/// Stages placed on the same thread are fused: [`Emitter::emit`] calls the next stage
/// directly. Between threads the emitter publishes into a ring. A stage cannot tell which.
///
/// Methods run on the hot path: no allocation, no locks, no blocking I/O, no panics on any
/// input (a stage that panics stops the whole pipeline, which then reports the failure).
pub trait Stage: Send {
    /// Name used in placement configuration and reports.
    fn name(&self) -> &str;

    /// Handles one event. Control records arrive here too, in order; the runtime's own
    /// drain marker does not (see [`Stage::on_shutdown`]).
    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>);

    /// Called after the last event of each batch taken from the input ring (or from the
    /// sources), when no further event of this batch is pending: the place to flush.
    fn on_batch_end(&mut self, _out: &mut Emitter<'_>) {}

    /// Called once when the pipeline drains: every event emitted before the stop has been
    /// handled. Events emitted here still reach the following stages before they stop.
    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {}

    /// Counters for the run summary (cold path).
    fn report(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Serializes the stage's state for an engine snapshot. Called on the stage's thread when
    /// a snapshot request reaches it, before the request itself, so the state reflects
    /// exactly the events ahead of the request (cold path: it may allocate). `None`: the
    /// stage keeps no state worth saving. An error spoils this snapshot (it is not written):
    /// a snapshot missing a stateful stage's part would restore a wrong state.
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }

    /// Restores what [`Stage::snapshot`] saved, before the pipeline starts. An error leaves
    /// the stage as it was and makes recovery fall back or fail with the message.
    fn restore(&mut self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// What a [`Source::poll`] call did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Emitted at least one event; poll again soon.
    Busy,
    /// Nothing to emit right now.
    Idle,
    /// Done for good (end of a recording, a bounded generator).
    Finished,
}

/// Where events enter the pipeline: a feed connection, a FIX acceptor, a replay, a generator.
/// Sources run on an I/O thread and are polled in turn; each call must return promptly (a
/// bounded amount of work) so shutdown requests and other sources are served.
pub trait Source: Send {
    /// Name used in placement configuration and reports.
    fn name(&self) -> &str;

    /// Emits what is ready now, at most a bounded batch.
    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus;

    /// Called before the pipeline starts when the journal already holds this source's
    /// records up to `last_seq`: continue after it, without re-emitting or reusing a
    /// sequence number.
    fn resume_after(&mut self, _last_seq: u64) {}

    /// Whether the run lasts as long as this source has events. A run ends when every such
    /// source has finished; sources that only serve requests (admin commands, the desk's
    /// sessions) answer `false` and are stopped with it. A run with no such source lasts
    /// until it is stopped.
    fn keeps_running(&self) -> bool {
        true
    }

    /// Counters for the run summary (cold path).
    fn report(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// Passes events from a stage (or source) to the next stage on the same thread, or into the
/// ring to the next thread, or drops them at the end of the pipeline.
pub struct Emitter<'a> {
    rest: &'a mut [Box<dyn Stage>],
    sink: &'a mut Sink,
    snapshots: Option<&'a SnapshotPort>,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(rest: &'a mut [Box<dyn Stage>], sink: &'a mut Sink) -> Self {
        Self {
            rest,
            sink,
            snapshots: None,
        }
    }

    /// An emitter whose stages hand their state to `snapshots` when a snapshot request
    /// passes.
    pub(crate) fn with_snapshots(
        rest: &'a mut [Box<dyn Stage>],
        sink: &'a mut Sink,
        snapshots: Option<&'a SnapshotPort>,
    ) -> Self {
        Self {
            rest,
            sink,
            snapshots,
        }
    }

    /// Passes `event` on. Blocks (spinning, counted as a ring stall) while the output ring
    /// is full: back-pressure never drops events silently.
    #[inline]
    pub fn emit(&mut self, event: &Envelope) {
        match self.rest.split_first_mut() {
            Some((next, rest)) => {
                if event.header.kind == RecordKind::Control.code()
                    && let Some(port) = self.snapshots
                {
                    capture(next.as_mut(), event, port);
                }
                next.on_event(
                    event,
                    &mut Emitter {
                        rest,
                        sink: self.sink,
                        snapshots: self.snapshots,
                    },
                );
            }
            None => self.sink.publish(event),
        }
    }

    /// Builds an envelope from `header` and `record` and passes it on. Into a ring it is
    /// written in place in the slot, without an intermediate copy.
    #[inline]
    pub fn emit_record<R: Record>(&mut self, header: RecordHeader, record: &R) {
        if self.rest.is_empty() {
            self.sink.publish_with(|slot| slot.set(header, record));
        } else {
            self.emit(&Envelope::new(header, record));
        }
    }
}

/// If `event` is a snapshot request, hands `stage`'s state to the collector (cold path).
#[cold]
fn capture(stage: &mut dyn Stage, event: &Envelope, port: &SnapshotPort) {
    let Some(control) = event.payload::<Control>() else {
        return;
    };
    if control.action == ControlAction::Snapshot.code() {
        port.submit(SnapshotSection {
            id: control.arg,
            stage: stage.name().to_owned(),
            state: stage.snapshot(),
        });
    }
}

/// The end of a thread's chain of stages.
pub(crate) enum Sink {
    /// Publish into the ring to the next thread.
    Ring(RingPublisher),
    /// Last thread of the pipeline: events end here.
    End,
}

impl Sink {
    #[inline]
    fn publish(&mut self, event: &Envelope) {
        self.publish_with(|slot| slot.copy_from(event));
    }

    #[inline]
    fn publish_with<F: FnOnce(&mut Envelope)>(&mut self, write: F) {
        match self {
            Self::Ring(publisher) => publisher.publish_with(write),
            Self::End => {}
        }
    }
}
