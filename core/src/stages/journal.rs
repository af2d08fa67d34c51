//! The journal stage: appends every record that reaches it to the memory-mapped journal and
//! group-commits at the end of each batch under the configured durability.
//!
//! It runs after the stages that derive records (book today; strategy, risk and the order
//! manager later) and before anything that talks to the outside world, so a record leaves
//! the engine only after it and its cause are journaled.
//!
//! Records flagged [`RecordHeader::FLAG_REPLAY`] are being rebuilt from the journal during
//! recovery. Those the journal already holds (sequence at most the stream's last journaled
//! one) are not appended again; a derived record the journal lacks (a crash came between its
//! cause and it) is appended, unflagged, so every stream stays complete.
//!
//! The runtime's own records ([`RUNTIME_STREAM`]: snapshot requests) are not journaled. At a
//! snapshot request the stage's section is a [`JournalMark`]: the journal sequence the
//! snapshot covers and each stream's last journaled sequence at that point. Retention
//! ([`PruneRequest`]) retires segments a snapshot covers, between batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aaiti_journal::{JournalError, JournalWriter, PruneMode};
use aaiti_model::{Envelope, RecordHeader};
use serde::{Deserialize, Serialize};

use crate::runtime::{Emitter, RUNTIME_STREAM, Stage};

/// The journal stage's snapshot section: where the snapshot stands in the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalMark {
    /// Journal sequence of the last record whose effect the snapshot includes.
    pub covered_seq: u64,
    /// Last journaled sequence of every stream that has one, by stream id.
    pub streams: Vec<(u16, u64)>,
}

/// Asks the journal stage to retire segments (see [`JournalWriter::prune_before`]); set by
/// the snapshot writer once a snapshot covering them is durable.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    through_seq: Arc<AtomicU64>,
    mode: PruneMode,
}

impl PruneRequest {
    /// A request handle retiring segments with `mode`.
    pub fn new(mode: PruneMode) -> Self {
        Self {
            through_seq: Arc::new(AtomicU64::new(0)),
            mode,
        }
    }

    /// Segments whose every record is at most `seq` may go.
    pub fn retire_through(&self, seq: u64) {
        self.through_seq.fetch_max(seq, Ordering::Release);
    }
}

/// See the module docs.
pub struct JournalStage {
    writer: JournalWriter,
    /// Last journaled sequence per stream id when the run started (65,536 entries).
    journaled_through: Vec<u64>,
    /// Last journaled sequence per stream id now.
    through: Vec<u64>,
    prune: Option<PruneRequest>,
    pruned_through: u64,
    pruned_segments: u64,
    /// Replayed records appended because the journal lacked them.
    completed: u64,
    appended: u64,
    commits: u64,
    errors: u64,
    last_error: Option<String>,
}

impl JournalStage {
    /// Journals through `writer` (already opened and recovered); `journaled_through[stream]`
    /// is the last sequence of each stream already in the journal (shorter tables mean 0).
    pub fn new(writer: JournalWriter, mut journaled_through: Vec<u64>) -> Self {
        journaled_through.resize(usize::from(u16::MAX) + 1, 0);
        Self {
            writer,
            through: journaled_through.clone(),
            journaled_through,
            prune: None,
            pruned_through: 0,
            pruned_segments: 0,
            completed: 0,
            appended: 0,
            commits: 0,
            errors: 0,
            last_error: None,
        }
    }

    /// Retires segments when `prune` asks (between batches).
    pub fn with_retention(mut self, prune: PruneRequest) -> Self {
        self.prune = Some(prune);
        self
    }

    fn append(&mut self, event: &Envelope) {
        match self.writer.append_envelope(event) {
            Ok(_) => {
                self.appended += 1;
                let last = &mut self.through[event.header.stream.index()];
                *last = (*last).max(event.header.seq);
            }
            Err(error) => self.failed(&error),
        }
    }

    #[cold]
    fn retire(&mut self, through_seq: u64) {
        let Some(prune) = &self.prune else {
            return;
        };
        match self.writer.prune_before(through_seq, &prune.mode) {
            Ok(segments) => {
                self.pruned_segments += segments.len() as u64;
                for segment in &segments {
                    tracing::info!(
                        segment = segment.index,
                        last_seq = segment.last_seq,
                        archived_to = ?segment.archived_to,
                        "retired a journal segment covered by a snapshot"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "journal retention failed; will retry"),
        }
        self.pruned_through = through_seq;
    }

    fn failed(&mut self, error: &JournalError) {
        self.errors += 1;
        if self.last_error.is_none() {
            tracing::error!(%error, "journal write failed; the run is no longer recoverable past this point");
            self.last_error = Some(error.to_string());
        }
    }
}

impl Stage for JournalStage {
    fn name(&self) -> &str {
        "journal"
    }

    #[inline]
    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        if event.header.stream == RUNTIME_STREAM {
            // The runtime's own (snapshot requests): not part of the record.
        } else if event.header.flags & RecordHeader::FLAG_REPLAY == 0 {
            self.append(event);
        } else if event.header.seq > self.journaled_through[event.header.stream.index()] {
            let mut missing = *event;
            missing.header.flags &= !RecordHeader::FLAG_REPLAY;
            self.append(&missing);
            self.completed += 1;
        }
        out.emit(event);
    }

    fn on_batch_end(&mut self, _out: &mut Emitter<'_>) {
        match self.writer.commit() {
            Ok(_) => self.commits += 1,
            Err(error) => self.failed(&error),
        }
        if let Some(prune) = &self.prune {
            let wanted = prune.through_seq.load(Ordering::Acquire);
            if wanted > self.pruned_through {
                self.retire(wanted);
            }
        }
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mark = JournalMark {
            covered_seq: self.writer.last_seq(),
            streams: self
                .through
                .iter()
                .enumerate()
                .filter(|(_, seq)| **seq > 0)
                .map(|(stream, seq)| (stream as u16, *seq))
                .collect(),
        };
        postcard::to_stdvec(&mark)
            .map(Some)
            .map_err(|error| error.to_string())
    }

    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {
        if let Err(error) = self.writer.commit() {
            self.failed(&error);
        }
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("appended".to_owned(), self.appended),
            ("completed_on_recovery".to_owned(), self.completed),
            ("commits".to_owned(), self.commits),
            ("errors".to_owned(), self.errors),
            ("last_seq".to_owned(), self.writer.last_seq()),
            ("durable_seq".to_owned(), self.writer.durable_seq()),
            ("pruned_segments".to_owned(), self.pruned_segments),
        ]
    }
}
