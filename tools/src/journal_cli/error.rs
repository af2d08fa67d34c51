//! The CLI's error type and how errors map to exit codes.

use std::io;
use std::path::PathBuf;

use aaiti_journal::JournalError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// The path holds no journal.
    #[error("{path}: {reason}")]
    NoJournal {
        /// The path given.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The journal cannot be read (bad data or an I/O error; the variant says which).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A file or directory cannot be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    /// The configuration (instrument list) cannot be loaded.
    #[error(transparent)]
    Config(#[from] aaiti_core::config::ConfigError),
}

/// Exit code: problems found in the journal's data (`verify`), or a journal that cannot be
/// read because its data is bad.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: usage, configuration and I/O errors.
pub const EXIT_USAGE: u8 = 2;

impl CliError {
    /// The process exit code for this error: [`EXIT_PROBLEMS`] when the journal's contents
    /// are at fault, [`EXIT_USAGE`] otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoJournal { .. } => EXIT_PROBLEMS,
            Self::Journal(error) => match error {
                JournalError::EmptyFile { .. }
                | JournalError::NotAJournal { .. }
                | JournalError::TruncatedHeader { .. }
                | JournalError::UnsupportedVersion { .. }
                | JournalError::BadHeader { .. }
                | JournalError::CorruptFrame { .. }
                | JournalError::SequenceGap { .. }
                | JournalError::MissingSegment { .. }
                | JournalError::SeqPruned { .. } => EXIT_PROBLEMS,
                _ => EXIT_USAGE,
            },
            Self::Usage(_) | Self::Io { .. } | Self::Output(_) | Self::Config(_) => EXIT_USAGE,
        }
    }

    /// True when the error is a closed output pipe (`| head`): not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
