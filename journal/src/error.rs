//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::format::FrameFault;

/// Everything that can go wrong in the journal. Each variant names the file and, for bad
/// data, the segment, offset and sequence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "fallocate", "msync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration is invalid.
    #[error("invalid journal configuration: `{key}` {reason}")]
    Config {
        /// The configuration field.
        key: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// Another writer holds the journal's lock file.
    #[error("{path}: the journal is locked by another writer")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{path}: empty file where a journal segment was expected")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The file does not start with the segment magic.
    #[error("{path}: not a journal segment (starts with {found:02x?}, expected \"AAITIJNL\")")]
    NotAJournal {
        /// The file.
        path: PathBuf,
        /// Its first bytes (zero-filled if shorter).
        found: [u8; 8],
    },
    /// The file is shorter than a segment header.
    #[error("{path}: truncated segment header ({len} bytes, 64 needed)")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The segment was written by another format version.
    #[error("{path}: journal format version {found}, this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The segment header is damaged or inconsistent.
    #[error("{path}: bad segment header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A frame is invalid and cannot be a torn tail: more data follows it, or it is not in the
    /// last segment. Recovery stops here and changes nothing.
    #[error(
        "{path}: corrupt record in segment {segment} at offset {offset} (sequence {seq}): \
         {fault}{}",
        next_valid.map(|(o, s)| format!("; a valid record (sequence {s}) follows at offset {o}"))
            .unwrap_or_default()
    )]
    CorruptFrame {
        /// The segment file.
        path: PathBuf,
        /// Segment index.
        segment: u64,
        /// Byte offset of the bad frame in the file.
        offset: u64,
        /// Sequence the frame should have.
        seq: u64,
        /// What is wrong with it.
        fault: FrameFault,
        /// Offset and sequence of a valid frame found after it, if any.
        next_valid: Option<(u64, u64)>,
    },
    /// Sequences do not continue from one segment to the next (records are missing).
    #[error(
        "{path}: segment {segment} starts at sequence {found} but the previous segment ends \
         at {}; records are missing",
        expected.saturating_sub(1)
    )]
    SequenceGap {
        /// The later segment.
        path: PathBuf,
        /// Its index.
        segment: u64,
        /// The sequence expected.
        expected: u64,
        /// The segment's first sequence.
        found: u64,
    },
    /// A segment index is missing between two present ones.
    #[error("{dir}: segment file {missing} is missing between existing segments")]
    MissingSegment {
        /// The journal directory.
        dir: PathBuf,
        /// The missing file name.
        missing: String,
    },
    /// A record is larger than a segment can hold or the frame format can describe.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Body length asked for.
        len: usize,
        /// Largest body accepted.
        max: usize,
    },
    /// The sequence is not in the journal.
    #[error("sequence {seq} is not in the journal (it holds {first}..={last})")]
    SeqOutOfRange {
        /// The sequence asked for.
        seq: u64,
        /// First sequence present.
        first: u64,
        /// Last sequence present (`first - 1` when empty).
        last: u64,
    },
    /// The sequence was pruned from the journal.
    #[error("sequence {seq} was pruned (the journal starts at {first})")]
    SeqPruned {
        /// The sequence asked for.
        seq: u64,
        /// First sequence present.
        first: u64,
    },
    /// A snapshot file is damaged.
    #[error("{path}: bad snapshot: {reason}")]
    BadSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The writer failed earlier (an I/O error left the mapped segment in an unknown state)
    /// and refuses further appends; reopen the journal to recover.
    #[error("the journal writer failed earlier and must be reopened")]
    Poisoned,
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`JournalError`].
pub type Result<T, E = JournalError> = std::result::Result<T, E>;
