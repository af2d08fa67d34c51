//! Engine snapshots: what a snapshot file holds, how the running engine writes them, and how
//! recovery picks one.
//!
//! # Taking a snapshot
//!
//! A timer (every `[journal] snapshot_interval_s`) and a clean stop (`snapshot_on_stop`)
//! ask the pipeline for a snapshot: a request record flows through every stage behind the
//! events before it, and each stage serializes its state when the request reaches it (see
//! [`crate::runtime::snapshot`]). The journal stage's part is a [`JournalMark`]: the last
//! journal sequence the states include. The collector thread assembles the parts into an
//! [`EngineSnapshot`] and writes it with the journal's
//! [`SnapshotStore`] (temporary file, fsync, rename), then deletes
//! snapshots beyond `snapshots_keep` and, under `retention = "delete" | "archive"`, asks the
//! journal stage to retire the segments every kept snapshot covers.
//!
//! # File format
//!
//! The file is the journal's snapshot container (`AAITISNP` header with the covered sequence
//! and CRC-32C of the state, documented in [`SnapshotStore`]), whose state bytes are the
//! [postcard](https://postcard.jamesmunns.com/wire-format) encoding of [`EngineSnapshot`],
//! fields in declaration order:
//!
//! | field | postcard type | meaning |
//! |---|---|---|
//! | `format` | varint u32 | [`ENGINE_SNAPSHOT_FORMAT`]; another value is refused |
//! | `taken_unix_ns` | varint u64 | wall-clock time the file was assembled |
//! | `covered_seq` | varint u64 | equals the container's covered sequence |
//! | `streams` | seq of (varint u16, varint u64) | each stream's last journaled sequence |
//! | `sections` | seq of (string, bytes) | each stage's name and its own postcard state |
//!
//! A stage's section is the stage's business (its `snapshot`/`restore`); each checks what it
//! reads and refuses a state that does not fit the configuration (another instrument list,
//! say) with a message, and recovery then stops rather than run on a wrong state.
//!
//! # Recovery
//!
//! [`load_for_recovery`] takes the newest snapshot whose CRCs verify and that the journal
//! still reaches; the engine restores every stage from it and replays only the journal after
//! `covered_seq`. Without a usable snapshot it replays the whole journal, which is possible
//! only while the journal still starts at sequence 1.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aaiti_journal::{JournalReader, SnapshotStore};
use serde::{Deserialize, Serialize};

use crate::config::Retention;
use crate::runtime::snapshot::SnapshotSection;
use crate::stages::journal::{JournalMark, PruneRequest};

/// Version of [`EngineSnapshot`]'s layout.
pub const ENGINE_SNAPSHOT_FORMAT: u32 = 1;

/// Name of the journal stage, whose section is the [`JournalMark`].
pub const JOURNAL_STAGE: &str = "journal";

/// The state bytes of a snapshot file (see the module docs for the encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// [`ENGINE_SNAPSHOT_FORMAT`].
    pub format: u32,
    /// When it was assembled (wall clock; informational).
    pub taken_unix_ns: u64,
    /// Last journal sequence the states include.
    pub covered_seq: u64,
    /// Each stream's last journaled sequence at that point.
    pub streams: Vec<(u16, u64)>,
    /// Each stateful stage's name and state.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl EngineSnapshot {
    /// Decodes and checks the format version.
    ///
    /// # Errors
    ///
    /// Not an engine snapshot of this format.
    pub fn decode(state: &[u8]) -> Result<Self, String> {
        let snapshot: Self = postcard::from_bytes(state)
            .map_err(|error| format!("not an engine snapshot: {error}"))?;
        if snapshot.format != ENGINE_SNAPSHOT_FORMAT {
            return Err(format!(
                "engine snapshot format {} (this build reads {ENGINE_SNAPSHOT_FORMAT})",
                snapshot.format
            ));
        }
        Ok(snapshot)
    }

    /// Assembles a snapshot from the stages' sections.
    ///
    /// # Errors
    ///
    /// A stage could not save its state, or the journal stage gave no position.
    pub fn assemble(sections: Vec<SnapshotSection>) -> Result<Self, String> {
        let mut mark = None;
        let mut states = Vec::with_capacity(sections.len());
        for section in sections {
            let state = section
                .state
                .map_err(|error| format!("stage {}: {error}", section.stage))?;
            if section.stage == JOURNAL_STAGE {
                mark = state.and_then(|bytes| postcard::from_bytes::<JournalMark>(&bytes).ok());
            } else if let Some(state) = state {
                states.push((section.stage, state));
            }
        }
        let mark = mark.ok_or_else(|| "the journal stage gave no position".to_owned())?;
        Ok(Self {
            format: ENGINE_SNAPSHOT_FORMAT,
            taken_unix_ns: crate::clock::now().0,
            covered_seq: mark.covered_seq,
            streams: mark.streams,
            sections: states,
        })
    }
}

/// What the snapshot writer did during a run (for the run summary).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotLog {
    /// Snapshots written.
    pub written: u64,
    /// Snapshots that could not be assembled or written.
    pub failed: u64,
    /// The last one written: its file.
    pub last_path: Option<String>,
    /// Its covered journal sequence.
    pub last_covered_seq: u64,
    /// Its size in bytes.
    pub last_bytes: u64,
    /// Time to encode and write it durably, in milliseconds.
    pub last_write_ms: f64,
    /// The last error.
    pub last_error: Option<String>,
}

/// Writes assembled snapshots and applies retention; runs on the collector thread.
pub struct SnapshotWriter {
    store: SnapshotStore,
    keep: usize,
    retention: Retention,
    prune: Option<PruneRequest>,
    log: Arc<Mutex<SnapshotLog>>,
}

impl SnapshotWriter {
    /// A writer into `store` keeping `keep` snapshots; with a retention other than `Keep`,
    /// `prune` retires the segments the oldest kept snapshot covers.
    pub fn new(
        store: SnapshotStore,
        keep: usize,
        retention: Retention,
        prune: Option<PruneRequest>,
    ) -> Self {
        Self {
            store,
            keep: keep.max(1),
            retention,
            prune,
            log: Arc::new(Mutex::new(SnapshotLog::default())),
        }
    }

    /// The shared log.
    pub fn log(&self) -> Arc<Mutex<SnapshotLog>> {
        Arc::clone(&self.log)
    }

    /// Writes the snapshot of request `id` from its sections.
    pub fn complete(&mut self, id: u64, sections: Vec<SnapshotSection>) {
        let started = Instant::now();
        let result = self.write(sections);
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok((path, covered_seq, bytes)) => {
                log.written += 1;
                log.last_path = Some(path.display().to_string());
                log.last_covered_seq = covered_seq;
                log.last_bytes = bytes;
                log.last_write_ms = started.elapsed().as_secs_f64() * 1e3;
                tracing::info!(
                    id,
                    covered_seq,
                    bytes,
                    ms = log.last_write_ms,
                    path = %path.display(),
                    "snapshot written"
                );
            }
            Err(error) => {
                log.failed += 1;
                tracing::warn!(id, %error, "snapshot not written");
                log.last_error = Some(error);
            }
        }
    }

    fn write(&mut self, sections: Vec<SnapshotSection>) -> Result<(PathBuf, u64, u64), String> {
        let snapshot = EngineSnapshot::assemble(sections)?;
        let bytes = postcard::to_stdvec(&snapshot).map_err(|error| error.to_string())?;
        let path = self
            .store
            .write(snapshot.covered_seq, &bytes)
            .map_err(|error| error.to_string())?;
        self.store
            .prune(self.keep)
            .map_err(|error| error.to_string())?;
        if self.retention != Retention::Keep
            && let Some(prune) = &self.prune
        {
            let oldest = self
                .store
                .list()
                .map_err(|error| error.to_string())?
                .first()
                .map_or(0, |(seq, _)| *seq);
            prune.retire_through(oldest);
        }
        Ok((path, snapshot.covered_seq, bytes.len() as u64))
    }
}

/// The snapshot recovery starts from, if any.
pub struct Chosen {
    /// The decoded snapshot.
    pub snapshot: EngineSnapshot,
    /// Its file.
    pub path: PathBuf,
}

/// Picks the snapshot to recover from: the newest valid one the journal reaches. Fails when
/// neither a snapshot nor the whole journal can rebuild the state.
///
/// # Errors
///
/// The journal was pruned past every usable snapshot, or the newest usable snapshot is of
/// another format (the message says what to do).
pub fn load_for_recovery(
    store: &SnapshotStore,
    reader: &JournalReader,
) -> anyhow::Result<Option<Chosen>> {
    let latest = store.load_latest_at_most(reader.last_seq())?;
    for skipped in &latest.skipped {
        tracing::warn!(path = %skipped.path.display(), error = %skipped.error, "snapshot skipped");
    }
    let journal_starts_at = reader.first_seq();
    match latest.snapshot {
        Some(found) => {
            let snapshot = EngineSnapshot::decode(&found.state).map_err(|error| {
                anyhow::anyhow!(
                    "snapshot {} cannot be used: {error}; move it out of {} to rebuild from the \
                     journal alone",
                    found.path.display(),
                    store.dir().display()
                )
            })?;
            if snapshot.covered_seq.saturating_add(1) < journal_starts_at {
                anyhow::bail!(
                    "snapshot {} covers the journal up to sequence {}, but the journal now starts \
                     at {journal_starts_at} (older segments were retired): the records between \
                     are gone",
                    found.path.display(),
                    snapshot.covered_seq
                );
            }
            Ok(Some(Chosen {
                snapshot,
                path: found.path,
            }))
        }
        None if journal_starts_at > 1 && !reader.is_empty() => anyhow::bail!(
            "the journal in {} starts at sequence {journal_starts_at} (older segments were \
             retired) and no usable snapshot covers them",
            reader.dir().display()
        ),
        None => Ok(None),
    }
}
