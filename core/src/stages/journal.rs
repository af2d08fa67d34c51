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

use aaiti_journal::{JournalError, JournalWriter};
use aaiti_model::{Envelope, RecordHeader};

use crate::runtime::{Emitter, Stage};

/// See the module docs.
pub struct JournalStage {
    writer: JournalWriter,
    /// Last journaled sequence per stream id when the run started (65,536 entries).
    journaled_through: Vec<u64>,
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
            journaled_through,
            completed: 0,
            appended: 0,
            commits: 0,
            errors: 0,
            last_error: None,
        }
    }

    fn append(&mut self, event: &Envelope) {
        match self.writer.append_envelope(event) {
            Ok(_) => self.appended += 1,
            Err(error) => self.failed(&error),
        }
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
        if event.header.flags & RecordHeader::FLAG_REPLAY == 0 {
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
        ]
    }
}
