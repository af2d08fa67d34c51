//! Finding the journal (data directory or journal directory), opening it read-only, and
//! progress bars.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aaiti_journal::JournalReader;
use indicatif::{ProgressBar, ProgressStyle};

use super::error::CliError;

/// Whether a file name is a journal segment's (`journal-<digits>.seg`).
pub(crate) fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("journal-")
        .and_then(|rest| rest.strip_suffix(".seg"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn has_segments(dir: &Path) -> Result<bool, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CliError::Io {
        op: "read directory",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CliError::Io {
            op: "read directory",
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_name().to_str().is_some_and(is_segment_name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The journal directory for `path`: `path/journal` when `path` is a data directory holding
/// one, else `path` itself if it holds segment files.
///
/// With `allow_empty` (`tail -f`, waiting for a writer), a directory without segments is
/// accepted as the journal directory.
///
/// # Errors
///
/// [`CliError::Io`] if `path` cannot be read, [`CliError::NoJournal`] if it is a file or a
/// directory without a journal.
pub fn resolve_journal_dir(path: &Path, allow_empty: bool) -> Result<PathBuf, CliError> {
    let meta = std::fs::metadata(path).map_err(|source| CliError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(CliError::NoJournal {
            path: path.to_path_buf(),
            reason: "is a file; pass the data directory or the journal directory that holds \
                     the journal-*.seg files"
                .into(),
        });
    }
    let nested = path.join("journal");
    if nested.is_dir() && !has_segments(path)? {
        if allow_empty || has_segments(&nested)? {
            return Ok(nested);
        }
        return Err(CliError::NoJournal {
            path: nested,
            reason: "holds no journal-*.seg segment files".into(),
        });
    }
    if allow_empty || has_segments(path)? {
        return Ok(path.to_path_buf());
    }
    Err(CliError::NoJournal {
        path: path.to_path_buf(),
        reason: "is neither a journal directory (no journal-*.seg files) nor a data directory \
                 (no journal/ subdirectory)"
            .into(),
    })
}

/// Opens the journal under `path` read-only (every record is CRC-checked on open), with a
/// spinner on a terminal.
///
/// # Errors
///
/// As [`resolve_journal_dir`] and [`JournalReader::open`].
pub fn open_reader(path: &Path, progress: bool) -> Result<JournalReader, CliError> {
    let dir = resolve_journal_dir(path, false)?;
    let spinner = Progress::spinner(progress, format!("verifying {}", dir.display()));
    let reader = JournalReader::open(&dir);
    spinner.finish();
    let reader = reader?;
    if let Some(t) = &reader.report().torn_tail {
        // Data ends before it; the command still runs on what precedes it.
        eprintln!(
            "aaiti-journal: warning: {}: torn tail at segment {} offset {} (sequence {}): {:?}; \
             the records shown end before it (`verify` for details)",
            t.path.display(),
            t.segment,
            t.offset,
            t.seq,
            t.fault
        );
    }
    Ok(reader)
}

/// A progress bar on stderr, shown only when stderr is a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    pending: u64,
}

/// Records between progress bar updates.
const PROGRESS_BATCH: u64 = 4096;

impl Progress {
    fn enabled(wanted: bool) -> bool {
        wanted && std::io::stderr().is_terminal()
    }

    /// A bar over `len` records.
    pub(crate) fn bar(wanted: bool, len: u64, label: &str) -> Self {
        let bar = Self::enabled(wanted).then(|| {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} records ({per_sec}, eta {eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label.to_owned());
            bar
        });
        Self { bar, pending: 0 }
    }

    /// A spinner for work of unknown length.
    pub(crate) fn spinner(wanted: bool, label: String) -> Self {
        let bar = Self::enabled(wanted).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_message(label);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, pending: 0 }
    }

    /// One more record done.
    #[inline]
    pub(crate) fn tick(&mut self) {
        if self.bar.is_some() {
            self.pending += 1;
            if self.pending >= PROGRESS_BATCH {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(self.pending);
        }
        self.pending = 0;
    }

    /// Removes the bar.
    pub(crate) fn finish(mut self) {
        self.flush();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert!(is_segment_name("journal-00000000.seg"));
        assert!(!is_segment_name("journal-.seg"));
        assert!(!is_segment_name("journal-00000000.seg.tmp"));
        assert!(!is_segment_name("journal.lock"));
    }
}
