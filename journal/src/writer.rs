//! The single writer: recovery on open, zero-copy appends into the mapped segment, rolls,
//! group commit and retention.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use aaiti_model::{Envelope, UnixNanos};

use crate::config::{Durability, JournalConfig};
use crate::error::{JournalError, Result};
use crate::format::{
    self, BLOB_HEADER_SIZE, FRAME_HEADER_SIZE, MAX_BODY_LEN, SEGMENT_HEADER_SIZE, TYPE_BLOB,
    TYPE_ENVELOPE,
};
use crate::maintain::{Maintainer, POSITION_GRANULE_SHIFT, SpareSpec};
use crate::scan::{self, End, RecoveryReport, ScanMode};
use crate::segment::{self, WritableSegment};
use crate::sys;

/// What [`JournalWriter::prune_before`] does with a segment it retires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneMode {
    /// Delete the file.
    Delete,
    /// Move it into this directory (created if missing; copied then deleted across
    /// file systems).
    ArchiveTo(PathBuf),
}

/// A segment retired by [`JournalWriter::prune_before`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedSegment {
    /// Segment index.
    pub index: u64,
    /// Where it was.
    pub path: PathBuf,
    /// Its first sequence.
    pub first_seq: u64,
    /// Its last sequence (`first_seq - 1` if it held none).
    pub last_seq: u64,
    /// Where it went, when archived.
    pub archived_to: Option<PathBuf>,
}

/// Counters describing the writer's work so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records appended since open.
    pub appended: u64,
    /// Segment rolls.
    pub rolls: u64,
    /// Rolls that had to create the next segment inline (the helper was not ahead).
    pub inline_segment_creations: u64,
    /// Longest time a roll took (waiting for or creating the next segment), in nanoseconds.
    pub roll_ns_max: u64,
    /// `msync` rounds done by [`JournalWriter::commit`].
    pub syncs: u64,
}

/// A segment the writer finished (kept for retention and, until synced, for durability).
struct Closed {
    index: u64,
    path: PathBuf,
    first_seq: u64,
    last_seq: u64,
}

/// A finished segment whose tail is not yet synced.
struct PendingSync {
    segment: WritableSegment,
    from: usize,
    to: usize,
}

/// The segment being appended to.
struct Active {
    segment: WritableSegment,
    first_seq: u64,
    /// Next frame offset.
    pos: usize,
    /// No more frames fit (or recovery found it sealed): the next append rolls.
    sealed: bool,
    /// Bytes before this are synced (0 for a new segment: its header must be synced too).
    synced_to: usize,
}

/// The journal's single writer. See the crate docs for the format, the durability levels and
/// the recovery rules.
///
/// Appends are not thread-safe by design (`&mut self`): one journal stage owns the writer.
pub struct JournalWriter {
    dir: PathBuf,
    config: JournalConfig,
    active: Active,
    next_seq: u64,
    durable_seq: u64,
    closed: VecDeque<Closed>,
    pending: Vec<PendingSync>,
    last_sync: Instant,
    unsynced_records: u64,
    maintainer: Maintainer,
    report: RecoveryReport,
    stats: WriterStats,
    poisoned: bool,
    /// Largest frame a new segment holds.
    max_frame_len: usize,
    _lock: File,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("segment", &self.active.segment.index)
            .field("pos", &self.active.pos)
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Opens (creating if needed) the journal in `dir`: takes the writer lock, recovers (scans
    /// every segment, verifies every record, cuts a torn tail and reports it) and positions
    /// after the last valid record.
    ///
    /// # Errors
    ///
    /// [`JournalError::Config`] for a bad configuration, [`JournalError::Locked`] if another
    /// writer runs, the header and corruption errors of [`recover`](crate::recover) (nothing is
    /// changed then), and I/O errors.
    pub fn open(dir: impl AsRef<Path>, config: JournalConfig) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| JournalError::io("create directory", &dir, e))?;
        let lock = scan::lock_dir(&dir)?;
        let scan = scan::scan_dir(&dir, ScanMode::Repair, &mut |_, _, _| {})?;
        let report = scan.report;
        let next_seq = report.last_seq + 1;

        let started: Vec<_> = scan
            .segments
            .iter()
            .filter(|s| !s.file.is_spare())
            .collect();
        let mut closed = VecDeque::new();
        let active = match started.split_last() {
            Some((tail, earlier)) => {
                for s in earlier {
                    closed.push_back(Closed {
                        index: s.file.index,
                        path: s.file.path.clone(),
                        first_seq: s.file.first_seq,
                        last_seq: s.last_seq,
                    });
                }
                let full = tail.end + 8 > tail.file.limit();
                let segment =
                    segment::open_writable(tail.file.index, tail.file.path.clone(), tail.end)?;
                Active {
                    segment,
                    first_seq: tail.file.first_seq,
                    pos: tail.end,
                    sealed: tail.end_kind == End::Sealed || full,
                    synced_to: tail.end,
                }
            }
            None => {
                // A new journal (or only spares): start the first segment.
                let index = scan.segments.first().map_or(0, |s| s.file.index);
                let mut segment = segment::prepare(&dir, index, config.segment_size_bytes)?;
                segment.map.activate(next_seq);
                segment
                    .map
                    .flush(0, SEGMENT_HEADER_SIZE)
                    .map_err(|e| JournalError::io("msync", &segment.path, e))?;
                Active {
                    segment,
                    first_seq: next_seq,
                    pos: SEGMENT_HEADER_SIZE,
                    sealed: false,
                    synced_to: 0,
                }
            }
        };
        drop(scan.segments);

        let spec = SpareSpec {
            dir: dir.clone(),
            index: active.segment.index + 1,
            capacity: config.segment_size_bytes,
        };
        let maintainer = Maintainer::start(
            config.maintenance,
            config.prefault,
            usize::try_from(config.prefault_window_bytes).unwrap_or(usize::MAX),
            active.segment.map.prefault_handle(),
            active.pos,
            spec,
        )?;
        let max_frame_len = (config.segment_size_bytes as usize - SEGMENT_HEADER_SIZE)
            .min(format::frame_len(MAX_BODY_LEN));
        Ok(Self {
            dir,
            config,
            active,
            next_seq,
            durable_seq: next_seq - 1,
            closed,
            pending: Vec::new(),
            last_sync: Instant::now(),
            unsynced_records: 0,
            maintainer,
            report,
            stats: WriterStats::default(),
            poisoned: false,
            max_frame_len,
            _lock: lock,
        })
    }

    /// Appends an envelope: its header and used payload ([`Envelope::as_bytes`]) are copied
    /// straight from the slot into the mapped segment. Returns the record's journal sequence.
    ///
    /// # Errors
    ///
    /// [`JournalError::Poisoned`] after an earlier I/O failure; I/O errors of a roll.
    #[inline]
    pub fn append_envelope(&mut self, envelope: &Envelope) -> Result<u64> {
        debug_assert!(
            envelope.validate().is_ok(),
            "journaling an invalid envelope"
        );
        let body = envelope.as_bytes();
        self.append_frame(TYPE_ENVELOPE, body.len(), |out| out.copy_from_slice(body))
    }

    /// Appends a blob (a variable-length record such as a FIX message) of caller-defined
    /// `kind`, stamped `ts_recv`. Returns its journal sequence.
    ///
    /// # Errors
    ///
    /// [`JournalError::RecordTooLarge`] if it does not fit a segment; as
    /// [`append_envelope`](Self::append_envelope) otherwise.
    #[inline]
    pub fn append_blob(&mut self, kind: u16, ts_recv: UnixNanos, data: &[u8]) -> Result<u64> {
        self.append_frame(TYPE_BLOB, BLOB_HEADER_SIZE + data.len(), |body| {
            let (head, out) = body.split_at_mut(BLOB_HEADER_SIZE);
            write_blob_header(head, kind, ts_recv);
            out.copy_from_slice(data);
        })
    }

    /// Appends a blob of `len` bytes that `fill` writes in place into the mapped segment
    /// (the buffer it gets is exactly `len` bytes, zeroed). If `fill` panics, nothing is
    /// published and the next append overwrites the partial bytes (a crash in between
    /// leaves them after the end of data, where recovery cuts them as a torn tail).
    ///
    /// # Errors
    ///
    /// As [`append_blob`](Self::append_blob).
    #[inline]
    pub fn append_blob_with(
        &mut self,
        kind: u16,
        ts_recv: UnixNanos,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64> {
        self.append_frame(TYPE_BLOB, BLOB_HEADER_SIZE + len, |body| {
            let (head, data) = body.split_at_mut(BLOB_HEADER_SIZE);
            write_blob_header(head, kind, ts_recv);
            data.fill(0);
            fill(data);
        })
    }

    #[inline]
    fn append_frame(
        &mut self,
        frame_type: u8,
        body_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let frame_len = format::frame_len(body_len);
        if body_len > MAX_BODY_LEN || frame_len > self.max_frame_len {
            return Err(JournalError::RecordTooLarge {
                len: body_len,
                max: (self.max_frame_len - FRAME_HEADER_SIZE).min(MAX_BODY_LEN),
            });
        }
        if self.active.sealed || frame_len > self.active.segment.capacity() - self.active.pos {
            self.roll(frame_len)?;
        }
        let off = self.active.pos;
        let seq = self.next_seq;
        let word = format::frame_word(frame_type, body_len);
        let frame = self.active.segment.map.frame_mut(off, frame_len);
        // `frame` starts at frame byte 4: CRC at 0..4, sequence at 4..12, body from 12.
        // Padding (< 8 bytes) is zeroed by clearing the last 8 bytes before the body is
        // written: one store instead of a variable-length fill.
        let last_word = frame.len() - 8;
        frame[last_word..].copy_from_slice(&[0u8; 8]);
        let (head, rest) = frame.split_at_mut(12);
        head[4..12].copy_from_slice(&seq.to_le_bytes());
        fill(&mut rest[..body_len]);
        let crc = format::frame_crc(word, &frame[4..]);
        frame[0..4].copy_from_slice(&crc.to_le_bytes());
        let end = off + frame_len;
        self.active.segment.map.publish(off, word, end);
        self.active.pos = end;
        self.next_seq = seq + 1;
        self.unsynced_records += 1;
        self.stats.appended += 1;
        if (off ^ end) >> POSITION_GRANULE_SHIFT != 0 {
            self.maintainer.publish_offset(end);
        }
        Ok(seq)
    }

    /// Seals the active segment and starts the next one (prepared ahead by maintenance, or
    /// created here).
    #[cold]
    fn roll(&mut self, frame_len: usize) -> Result<()> {
        let started = Instant::now();
        let result = self.roll_inner(frame_len);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.roll_ns_max = self.stats.roll_ns_max.max(took);
        result
    }

    fn roll_inner(&mut self, frame_len: usize) -> Result<()> {
        // Bounded: a spare made with another configuration may be too small; the next one
        // after it has the configured size, which `max_frame_len` checked.
        for _ in 0..3 {
            let spec = SpareSpec {
                dir: self.dir.clone(),
                index: self.active.segment.index + 1,
                capacity: self.config.segment_size_bytes,
            };
            let (mut next, populated_to, inline) = self.maintainer.take_spare(&spec)?;
            if !self.active.sealed && self.active.pos + 8 <= self.active.segment.capacity() {
                self.active.segment.map.seal(self.active.pos);
            }
            next.map.activate(self.next_seq);
            let handle = next.map.prefault_handle();
            let fits = frame_len <= next.capacity() - SEGMENT_HEADER_SIZE;
            let new = Active {
                segment: next,
                first_seq: self.next_seq,
                pos: SEGMENT_HEADER_SIZE,
                sealed: false,
                synced_to: 0,
            };
            let old = std::mem::replace(&mut self.active, new);
            self.closed.push_back(Closed {
                index: old.segment.index,
                path: old.segment.path.clone(),
                first_seq: old.first_seq,
                last_seq: self.next_seq - 1,
            });
            if self.config.durability == Durability::None {
                self.maintainer.retire(old.segment);
            } else {
                let to = (old.pos + 8).min(old.segment.capacity());
                self.pending.push(PendingSync {
                    from: old.synced_to,
                    to,
                    segment: old.segment,
                });
            }
            let next_spec = SpareSpec {
                index: spec.index + 1,
                ..spec
            };
            self.maintainer.rolled(handle, populated_to, next_spec);
            self.stats.rolls += 1;
            self.stats.inline_segment_creations += u64::from(inline);
            if fits {
                return Ok(());
            }
            // Too small for this frame: the next round seals it empty and moves on.
        }
        Err(JournalError::RecordTooLarge {
            len: frame_len,
            max: self.max_frame_len,
        })
    }

    /// The group-commit point: call it at the end of each batch of appends, before
    /// acknowledging them. Under [`Durability::Sync`] it syncs now; under
    /// [`Durability::Interval`] when the interval or record count is due; under
    /// [`Durability::None`] never. Returns [`durable_seq`](Self::durable_seq).
    ///
    /// # Errors
    ///
    /// I/O errors of `msync`; the writer is then poisoned (a failed `msync` may have dropped
    /// dirty pages, so nothing after the last durable sequence can be trusted).
    pub fn commit(&mut self) -> Result<u64> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        match self.config.durability {
            Durability::None => self.durable_seq = self.next_seq - 1,
            Durability::Sync => self.sync_now()?,
            Durability::Interval { .. } => {
                if let Some((every, records)) = self.config.interval() {
                    let due = records.is_some_and(|r| self.unsynced_records >= r)
                        || every.is_some_and(|d| self.last_sync.elapsed() >= d);
                    if due && self.durable_seq < self.next_seq - 1 {
                        self.sync_now()?;
                    }
                }
            }
        }
        Ok(self.durable_seq)
    }

    /// Syncs everything appended so far, whatever the policy.
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit).
    pub fn sync(&mut self) -> Result<u64> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        self.sync_now()?;
        Ok(self.durable_seq)
    }

    fn sync_now(&mut self) -> Result<()> {
        // Oldest first: a later segment is never durable while an earlier one is not.
        for pending in std::mem::take(&mut self.pending) {
            let len = pending.to.saturating_sub(pending.from);
            if let Err(e) = pending.segment.map.flush(pending.from, len) {
                self.poisoned = true;
                return Err(JournalError::io("msync", &pending.segment.path, e));
            }
            self.maintainer.retire(pending.segment);
        }
        let from = self.active.synced_to;
        if let Err(e) = self.active.segment.map.flush(from, self.active.pos - from) {
            self.poisoned = true;
            return Err(JournalError::io("msync", &self.active.segment.path, e));
        }
        self.active.synced_to = self.active.pos;
        self.durable_seq = self.next_seq - 1;
        self.unsynced_records = 0;
        self.last_sync = Instant::now();
        self.stats.syncs += 1;
        Ok(())
    }

    /// Manual maintenance ([`Maintenance::Manual`](crate::Maintenance::Manual)): prepares the
    /// next segment and pre-faults ahead of the write position, inline. Call it off the hot
    /// path (between batches, when idle). With a background helper it does nothing.
    pub fn maintain(&mut self) {
        if self.config.maintenance == crate::Maintenance::Manual {
            self.maintainer.run_inline();
        }
    }

    /// Retires whole segments whose every record is `<= seq` (typically the sequence the
    /// newest snapshot covers): deletes them or moves them to an archive directory. Never
    /// touches the active segment. Segments go oldest first; readers that have them mapped
    /// keep reading them.
    ///
    /// # Errors
    ///
    /// I/O errors; segments retired before the error stay retired.
    pub fn prune_before(&mut self, seq: u64, mode: &PruneMode) -> Result<Vec<PrunedSegment>> {
        if let PruneMode::ArchiveTo(archive) = mode {
            fs::create_dir_all(archive)
                .map_err(|e| JournalError::io("create directory", archive, e))?;
        }
        let mut pruned = Vec::new();
        while let Some(front) = self.closed.front() {
            if front.last_seq > seq || self.pending.iter().any(|p| p.segment.index == front.index) {
                break;
            }
            let archived_to = match mode {
                PruneMode::Delete => {
                    fs::remove_file(&front.path)
                        .map_err(|e| JournalError::io("remove", &front.path, e))?;
                    None
                }
                PruneMode::ArchiveTo(archive) => Some(archive_file(&front.path, archive)?),
            };
            if let Some(front) = self.closed.pop_front() {
                pruned.push(PrunedSegment {
                    index: front.index,
                    path: front.path,
                    first_seq: front.first_seq,
                    last_seq: front.last_seq,
                    archived_to,
                });
            }
        }
        if !pruned.is_empty() {
            sys::sync_dir(&self.dir)
                .map_err(|e| JournalError::io("fsync directory", &self.dir, e))?;
        }
        Ok(pruned)
    }

    /// The sequence the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last sequence appended (0 if none ever was).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The highest sequence durable under the configured policy: synced to disk under
    /// `interval`/`sync`; under `none`, everything appended (it survives a process crash).
    pub fn durable_seq(&self) -> u64 {
        match self.config.durability {
            Durability::None => self.next_seq - 1,
            _ => self.durable_seq,
        }
    }

    /// What recovery found and repaired when the writer opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Counters.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being written.
    pub fn active_segment(&self) -> u64 {
        self.active.segment.index
    }
}

/// The 16-byte blob header: `ts_recv`, `kind`, 6 reserved zero bytes.
#[inline]
fn write_blob_header(head: &mut [u8], kind: u16, ts_recv: UnixNanos) {
    head[0..8].copy_from_slice(&ts_recv.0.to_le_bytes());
    head[8..10].copy_from_slice(&kind.to_le_bytes());
    head[10..BLOB_HEADER_SIZE].fill(0);
}

/// Moves `path` into `archive` (rename, or copy + sync + remove across file systems).
fn archive_file(path: &Path, archive: &Path) -> Result<PathBuf> {
    let name = path.file_name().unwrap_or_default();
    let target = archive.join(name);
    match fs::rename(path, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            fs::copy(path, &target).map_err(|e| JournalError::io("copy", path, e))?;
            File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(|e| JournalError::io("fsync", &target, e))?;
            fs::remove_file(path).map_err(|e| JournalError::io("remove", path, e))?;
        }
        Err(e) => return Err(JournalError::io("rename", path, e)),
    }
    sys::sync_dir(archive).map_err(|e| JournalError::io("fsync directory", archive, e))?;
    Ok(target)
}
