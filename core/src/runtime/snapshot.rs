//! Consistent snapshots of every stage's state, taken while the pipeline runs.
//!
//! A snapshot request is a [`Control`](aaiti_model::Control) record with action
//! [`Snapshot`](aaiti_model::ControlAction::Snapshot) on [`RUNTIME_STREAM`](super::RUNTIME_STREAM),
//! emitted by a source thread into the pipeline like any event. Each stage, when the request
//! reaches it and before handling it, serializes its state ([`super::Stage::snapshot`]) and
//! hands it to the [`SnapshotPort`]. Because every stage sees the events in the same order,
//! the sections of one request describe the state after exactly the same events, with no
//! pause of the pipeline: the Chandy–Lamport marker idea on a linear pipeline.
//!
//! The port forwards sections to a collector thread (off the hot path), which groups them by
//! request id and, once every stage has answered, hands the complete set to the engine
//! (which writes the snapshot file and applies retention).

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

/// One stage's part of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSection {
    /// The request this answers.
    pub id: u64,
    /// The stage's name.
    pub stage: String,
    /// Its serialized state (`Ok(None)`: stateless; `Err`: the stage could not save it).
    pub state: Result<Option<Vec<u8>>, String>,
}

/// Where stages hand their sections; cheap to clone (one per thread).
#[derive(Clone, Debug)]
pub struct SnapshotPort {
    sender: Sender<SnapshotSection>,
}

impl SnapshotPort {
    /// Hands a section to the collector. Never blocks (unbounded channel: at most one
    /// section per stage per request is in flight).
    pub fn submit(&self, section: SnapshotSection) {
        // The collector only goes away after every worker has stopped; a send error then
        // cannot happen, and losing a section only loses that snapshot.
        let _ = self.sender.send(section);
    }
}

/// Starts a collector thread expecting `stages` sections per request; `complete` gets each
/// complete set (in stage order as received) and runs on the collector thread. The thread
/// ends when every port clone is dropped (the pipeline stopped); requests still incomplete
/// then are dropped (a stage never answered: it failed).
///
/// # Errors
///
/// The OS refused the thread.
pub fn collector<F>(stages: usize, complete: F) -> std::io::Result<(SnapshotPort, JoinHandle<()>)>
where
    F: FnMut(u64, Vec<SnapshotSection>) + Send + 'static,
{
    let (sender, receiver) = crossbeam_channel::unbounded();
    let handle = std::thread::Builder::new()
        .name("snapshots".into())
        .spawn(move || collect(&receiver, stages, complete))?;
    Ok((SnapshotPort { sender }, handle))
}

fn collect<F>(receiver: &Receiver<SnapshotSection>, stages: usize, mut complete: F)
where
    F: FnMut(u64, Vec<SnapshotSection>),
{
    let mut pending: BTreeMap<u64, Vec<SnapshotSection>> = BTreeMap::new();
    while let Ok(section) = receiver.recv() {
        let id = section.id;
        let sections = pending.entry(id).or_default();
        sections.push(section);
        if sections.len() >= stages
            && let Some(sections) = pending.remove(&id)
        {
            complete(id, sections);
        }
    }
    for (id, sections) in pending {
        tracing::warn!(
            id,
            received = sections.len(),
            expected = stages,
            "snapshot incomplete at shutdown; not written"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sections_by_request_and_completes_when_all_stages_answered() {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let (port, handle) = collector(2, move |id, sections| {
            done_tx.send((id, sections.len())).unwrap();
        })
        .unwrap();
        let section = |id, stage: &str| SnapshotSection {
            id,
            stage: stage.to_owned(),
            state: Ok(Some(vec![1, 2, 3])),
        };
        port.submit(section(1, "a"));
        port.submit(section(2, "a"));
        port.submit(section(1, "b"));
        assert_eq!(done_rx.recv().unwrap(), (1, 2));
        port.submit(section(3, "a")); // never completed
        port.submit(section(2, "b"));
        assert_eq!(done_rx.recv().unwrap(), (2, 2));
        drop(port);
        handle.join().unwrap();
        assert!(done_rx.try_recv().is_err(), "request 3 must not complete");
    }
}
