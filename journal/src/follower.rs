//! Tailing a live writer through the mapped segment files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{JournalError, Result};
use crate::format::{self, SEGMENT_HEADER_SIZE};
use crate::reader::Frame;
use crate::scan::{self, SegmentFile};
use crate::sys::Slot;

/// Tails a journal that a writer (in this or another process) is appending to.
///
/// It maps segments read-only and polls the next frame's length word (an atomic load with
/// acquire semantics: a non-zero word means the whole frame is published). At a seal it moves
/// to the next segment file and waits for the writer to start it. Every frame is CRC-checked.
/// Polling never blocks and makes no system call while the writer is idle inside a segment.
pub struct Follower {
    dir: PathBuf,
    current: Option<SegmentFile>,
    /// Index of the segment `current` is (or the one to open).
    index: u64,
    offset: usize,
    next_seq: u64,
    from_seq: u64,
    /// `current`'s `first_seq` was seen non-zero.
    started: bool,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("dir", &self.dir)
            .field("segment", &self.index)
            .field("offset", &self.offset)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Follows the journal in `dir`, yielding records from sequence `from_seq` on (1 for
    /// everything). The directory may not hold a segment yet.
    ///
    /// # Errors
    ///
    /// I/O and header errors; [`JournalError::SeqPruned`] if `from_seq` was pruned.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let listing = scan::list_dir(&dir)?;
        let mut start: Option<SegmentFile> = None;
        let mut first_available = None;
        for (index, path) in &listing.segments {
            let file = SegmentFile::open(*index, path.clone())?;
            if file.is_spare() {
                break;
            }
            first_available.get_or_insert(file.first_seq);
            if file.first_seq > from_seq.max(1) {
                break;
            }
            start = Some(file);
        }
        let follower = match start {
            Some(file) => Self {
                index: file.index,
                next_seq: file.first_seq,
                current: Some(file),
                started: true,
                dir,
                offset: SEGMENT_HEADER_SIZE,
                from_seq,
            },
            None => {
                if let Some(first) = first_available {
                    return Err(JournalError::SeqPruned {
                        seq: from_seq,
                        first,
                    });
                }
                // Nothing started yet: wait for the first segment.
                let index = listing.segments.first().map_or(0, |(index, _)| *index);
                Self {
                    dir,
                    current: None,
                    index,
                    offset: SEGMENT_HEADER_SIZE,
                    next_seq: 0,
                    from_seq,
                    started: false,
                }
            }
        };
        Ok(follower)
    }

    /// Sequence of the next record this follower will return (0 until the first segment
    /// is found).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next record if the writer has published it, else `None` (poll again later).
    ///
    /// # Errors
    ///
    /// [`JournalError::CorruptFrame`] for a published frame that fails its checks (never
    /// produced by a correct writer), header and I/O errors opening the next segment.
    pub fn poll(&mut self) -> Result<Option<Frame<'_>>> {
        match self.advance()? {
            Some(offset) => Ok(self.frame_at(offset)),
            None => Ok(None),
        }
    }

    /// Like [`poll`](Self::poll) but waits up to `timeout` for a record (spinning briefly,
    /// then yielding, then sleeping 50 us between polls).
    ///
    /// # Errors
    ///
    /// As [`poll`](Self::poll).
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>> {
        let deadline = Instant::now() + timeout;
        let mut spins = 0u32;
        let found = loop {
            if let Some(offset) = self.advance()? {
                break Some(offset);
            }
            if Instant::now() >= deadline {
                break None;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins < 128 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        };
        Ok(found.and_then(|offset| self.frame_at(offset)))
    }

    fn frame_at(&self, offset: usize) -> Option<Frame<'_>> {
        let file = self.current.as_ref()?;
        match file.map.slot(offset, file.limit()) {
            Slot::Frame { info, bytes, .. } => Some(Frame::from_verified(
                file.index,
                offset,
                info.frame_type,
                bytes,
                info.body_len,
            )),
            _ => None,
        }
    }

    /// Moves to the next record at or after `from_seq`; returns its offset in `current`.
    fn advance(&mut self) -> Result<Option<usize>> {
        loop {
            let Some(file) = &self.current else {
                if !self.open_next()? {
                    return Ok(None);
                }
                continue;
            };
            if !self.started {
                let first_seq = file.map.load_first_seq();
                if first_seq == 0 {
                    return Ok(None);
                }
                if self.next_seq != 0 && first_seq != self.next_seq {
                    return Err(JournalError::SequenceGap {
                        path: file.path.clone(),
                        segment: file.index,
                        expected: self.next_seq,
                        found: first_seq,
                    });
                }
                self.next_seq = first_seq;
                self.started = true;
            }
            let limit = file.limit();
            // The writer seals a segment only when 8 bytes are left for the seal.
            let full = self.offset + 8 > limit;
            let slot = if full {
                Slot::Seal
            } else {
                file.map.slot(self.offset, limit)
            };
            match slot {
                Slot::Empty => return Ok(None),
                Slot::Seal => {
                    self.current = None;
                    self.index += 1;
                    self.offset = SEGMENT_HEADER_SIZE;
                    self.started = false;
                }
                Slot::Partial { available } => {
                    return Err(self.corrupt(format::FrameFault::PartialWord {
                        available: available as u64,
                    }));
                }
                Slot::Bad { fault } => return Err(self.corrupt(fault)),
                Slot::Frame { word, info, bytes } => {
                    if let Err(fault) = format::verify_frame(bytes, word, info, self.next_seq) {
                        return Err(self.corrupt(fault));
                    }
                    let offset = self.offset;
                    self.offset += info.frame_len;
                    self.next_seq += 1;
                    if self.next_seq > self.from_seq {
                        return Ok(Some(offset));
                    }
                }
            }
        }
    }

    /// Opens segment `self.index` if it exists; `false` if not yet.
    fn open_next(&mut self) -> Result<bool> {
        let path = self.dir.join(format::segment_file_name(self.index));
        if !path.exists() {
            // Normal before the writer created its first segment. If later segments exist,
            // retention removed this one under us: this follower fell too far behind.
            if self.next_seq != 0
                && let Some((index, later)) = scan::list_dir(&self.dir)?
                    .segments
                    .into_iter()
                    .find(|(i, _)| *i > self.index)
            {
                let first = SegmentFile::open(index, later)?.first_seq;
                return Err(JournalError::SeqPruned {
                    seq: self.next_seq,
                    first,
                });
            }
            return Ok(false);
        }
        self.current = Some(SegmentFile::open(self.index, path)?);
        self.started = false;
        Ok(true)
    }

    fn corrupt(&self, fault: format::FrameFault) -> JournalError {
        JournalError::CorruptFrame {
            path: self
                .current
                .as_ref()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            segment: self.index,
            offset: self.offset as u64,
            seq: self.next_seq,
            fault,
            next_valid: None,
        }
    }
}
