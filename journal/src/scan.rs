//! Scanning a journal directory: segment discovery, header and frame verification, torn-tail
//! classification, and (for writers and [`recover`]) the repair that cuts a torn tail.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{JournalError, Result};
use crate::format::{
    self, FORMAT_VERSION, FrameFault, FrameMeta, HEADER_FIRST_SEQ_OFFSET, HeaderFault, SEAL_WORD,
    SEGMENT_HEADER_SIZE, SegmentHeader,
};
use crate::sys::{self, ReadMap, Slot};

/// Name of the writer's lock file in the journal directory.
pub(crate) const LOCK_FILE_NAME: &str = "journal.lock";

/// A torn tail: an invalid frame (or stray bytes) at the very end of the journal's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Segment index.
    pub segment: u64,
    /// Offset of the first bad byte's frame (where the data now ends).
    pub offset: u64,
    /// Sequence the cut record would have had: the next record appended gets it.
    pub seq: u64,
    /// What was wrong.
    pub fault: FrameFault,
    /// Non-zero bytes from `offset` to the last non-zero byte of the segment.
    pub bytes: u64,
    /// `true` when recovery zeroed those bytes; `false` when a reader only detected them.
    pub cut: bool,
}

/// A change recovery made to the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A torn tail was zeroed (see [`RecoveryReport::torn_tail`]).
    CutTornTail {
        /// The segment file.
        path: PathBuf,
        /// Where the zeroed range starts.
        offset: u64,
        /// Bytes zeroed.
        bytes: u64,
    },
    /// A segment file shorter than its capacity (physically truncated) was extended back.
    ExtendedFile {
        /// The segment file.
        path: PathBuf,
        /// Its length before.
        from_len: u64,
        /// Its length after (the capacity).
        to_len: u64,
    },
    /// A segment that had been started but holds no record after the cut was turned back
    /// into an unused spare (its `first_seq` zeroed).
    ResetSpare {
        /// The segment file.
        path: PathBuf,
    },
    /// A half-created segment (`*.seg.tmp`) left by a crash was removed.
    RemovedTempFile {
        /// The file.
        path: PathBuf,
    },
}

/// What a scan found (and, for writers and [`recover`], repaired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files holding records or being written (spares excluded).
    pub segments: usize,
    /// Pre-allocated segments not yet started.
    pub spare_segments: usize,
    /// Records in the journal.
    pub records: u64,
    /// First sequence present (earlier ones were pruned); 1 for a new journal.
    pub first_seq: u64,
    /// Last sequence present; `first_seq - 1` when the journal is empty.
    pub last_seq: u64,
    /// Frame bytes read and CRC-checked.
    pub bytes_scanned: u64,
    /// Time the scan (and repair) took.
    pub elapsed: Duration,
    /// The torn tail found, if any (cut, or only detected by a reader).
    pub torn_tail: Option<TornTail>,
    /// Changes made to the files, in order.
    pub repairs: Vec<Repair>,
}

impl RecoveryReport {
    fn empty() -> Self {
        Self {
            segments: 0,
            spare_segments: 0,
            records: 0,
            first_seq: 1,
            last_seq: 0,
            bytes_scanned: 0,
            elapsed: Duration::ZERO,
            torn_tail: None,
            repairs: Vec::new(),
        }
    }
}

/// Scans the journal in `dir`, verifies every record, cuts a torn tail (zeroing it, and
/// saying so in the report) and returns what it found. Takes the writer lock for the duration
/// (fails with [`JournalError::Locked`] while a writer runs). Changes nothing else: a corrupt
/// record followed by more data, or in an earlier segment, is an error and leaves every file
/// as it was.
pub fn recover(dir: impl AsRef<Path>) -> Result<RecoveryReport> {
    let dir = dir.as_ref();
    let _lock = lock_dir(dir)?;
    let scan = scan_dir(dir, ScanMode::Repair, &mut |_, _, _| {})?;
    Ok(scan.report)
}

/// Takes the exclusive writer lock of `dir` (`journal.lock`, released when the file closes).
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(JournalError::io("lock", &path, e)),
    }
}

/// Whether a scan may change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// Read only (readers): a torn tail is reported, not cut; the rest of the last segment is
    /// not checked for stray bytes.
    Read,
    /// Writer lock held: also check that nothing follows the end of data, cut a torn tail,
    /// extend a short last file, reset started-but-empty segments after a cut.
    Repair,
}

/// A segment file with a valid header, mapped read-only.
pub(crate) struct SegmentFile {
    pub(crate) index: u64,
    pub(crate) path: PathBuf,
    pub(crate) header: SegmentHeader,
    pub(crate) file_len: u64,
    pub(crate) map: ReadMap,
    /// 0 for a spare.
    pub(crate) first_seq: u64,
}

impl SegmentFile {
    /// Opens and validates `path` as segment `index`; never modifies it.
    #[allow(
        unsafe_code,
        reason = "maps the segment read-only (contract of `ReadMap::map`)"
    )]
    pub(crate) fn open(index: u64, path: PathBuf) -> Result<Self> {
        let file = File::open(&path).map_err(|e| JournalError::io("open", &path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?
            .len();
        if file_len == 0 {
            return Err(JournalError::EmptyFile { path });
        }
        let mut head = [0u8; SEGMENT_HEADER_SIZE];
        let want = head
            .len()
            .min(usize::try_from(file_len).unwrap_or(usize::MAX));
        file.read_exact_at(&mut head[..want], 0)
            .map_err(|e| JournalError::io("read header", &path, e))?;
        let header = format::decode_header(&head[..want]).map_err(|fault| match fault {
            HeaderFault::NotAJournal { found } => JournalError::NotAJournal {
                path: path.clone(),
                found,
            },
            HeaderFault::Truncated { len } => JournalError::TruncatedHeader {
                path: path.clone(),
                len,
            },
            HeaderFault::Version { found } => JournalError::UnsupportedVersion {
                path: path.clone(),
                found,
                supported: FORMAT_VERSION,
            },
            HeaderFault::Corrupt { reason } => JournalError::BadHeader {
                path: path.clone(),
                reason: reason.into(),
            },
        })?;
        if header.index != index {
            return Err(JournalError::BadHeader {
                path,
                reason: format!(
                    "header says segment {} but the file name says {index}",
                    header.index
                ),
            });
        }
        if file_len > header.capacity {
            return Err(JournalError::BadHeader {
                path,
                reason: format!(
                    "file is {file_len} bytes, larger than its capacity of {}",
                    header.capacity
                ),
            });
        }
        let map_len = usize::try_from(file_len).map_err(|_| JournalError::BadHeader {
            path: path.clone(),
            reason: "file too large to map".into(),
        })?;
        // SAFETY: a journal segment, modified only through the publish protocol or by recovery
        // under the writer lock, and never truncated by this crate while mapped.
        let map = unsafe { ReadMap::map(&file, map_len) }
            .map_err(|e| JournalError::io("mmap", &path, e))?;
        let first_seq = map.load_first_seq();
        Ok(Self {
            index,
            path,
            header,
            file_len,
            map,
            first_seq,
        })
    }

    /// End of the region frames may occupy.
    pub(crate) fn limit(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_spare(&self) -> bool {
        self.first_seq == 0
    }

    /// Whether a frame (or anything non-zero) starts the data region.
    fn has_data(&self) -> bool {
        self.limit() >= SEGMENT_HEADER_SIZE + 4 && self.map.load_word(SEGMENT_HEADER_SIZE) != 0
    }
}

/// Segment files and leftovers in a directory.
pub(crate) struct Listing {
    /// `(index, path)`, sorted by index.
    pub(crate) segments: Vec<(u64, PathBuf)>,
    /// `journal-*.seg.tmp` files.
    pub(crate) temp_files: Vec<PathBuf>,
}

/// Lists `dir`'s segment files, sorted by index; fails if an index is missing in between.
pub(crate) fn list_dir(dir: &Path) -> Result<Listing> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("read directory", dir, e))?;
    let mut segments = Vec::new();
    let mut temp_files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = format::parse_segment_file_name(name) {
            segments.push((index, entry.path()));
        } else if name
            .strip_suffix(".tmp")
            .and_then(format::parse_segment_file_name)
            .is_some()
        {
            temp_files.push(entry.path());
        }
    }
    segments.sort_by_key(|(index, _)| *index);
    temp_files.sort();
    for pair in segments.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            return Err(JournalError::MissingSegment {
                dir: dir.to_path_buf(),
                missing: format::segment_file_name(pair[0].0 + 1),
            });
        }
    }
    Ok(Listing {
        segments,
        temp_files,
    })
}

/// How a segment's data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A zero length word, or the end of the file.
    Clean,
    /// The seal word: the writer moved on.
    Sealed,
    /// A torn tail (cut in repair mode).
    Torn,
}

/// One segment after scanning.
pub(crate) struct ScannedSegment {
    pub(crate) file: SegmentFile,
    pub(crate) frames: u64,
    /// `first_seq - 1` when the segment holds no frame (or is a spare).
    pub(crate) last_seq: u64,
    /// Offset where the data ends (the next frame goes here, or the seal is here).
    pub(crate) end: usize,
    pub(crate) end_kind: End,
}

/// Result of [`scan_dir`].
pub(crate) struct Scan {
    /// All segments, in index order; spares (if any) last.
    pub(crate) segments: Vec<ScannedSegment>,
    pub(crate) report: RecoveryReport,
}

/// Scans (and in [`ScanMode::Repair`] repairs) the journal in `dir`. `on_frame(segment
/// position, offset, frame)` is called for every valid frame, in order.
pub(crate) fn scan_dir(
    dir: &Path,
    mode: ScanMode,
    on_frame: &mut dyn FnMut(usize, usize, &FrameMeta),
) -> Result<Scan> {
    let started = Instant::now();
    let listing = list_dir(dir)?;
    let mut report = RecoveryReport::empty();
    if mode == ScanMode::Repair {
        for path in &listing.temp_files {
            fs::remove_file(path).map_err(|e| JournalError::io("remove", path, e))?;
            tracing::warn!(path = %path.display(), "removed a half-created journal segment");
            report
                .repairs
                .push(Repair::RemovedTempFile { path: path.clone() });
        }
    }
    let mut files = Vec::with_capacity(listing.segments.len());
    for (index, path) in listing.segments {
        files.push(SegmentFile::open(index, path)?);
    }
    // A live writer starts segments in index order; re-reading `first_seq` from the last
    // segment to the first (acquire loads) gives a consistent view: if a segment is seen
    // started, every earlier one is too.
    for file in files.iter_mut().rev() {
        file.first_seq = file.map.load_first_seq();
    }
    check_spares_last(&files, mode)?;
    // The last segment with data: a bad frame there (or after it) may be a torn tail.
    let last_with_data = files.iter().rposition(|f| !f.is_spare() && f.has_data());

    let mut segments: Vec<ScannedSegment> = Vec::with_capacity(files.len());
    let mut expected = files
        .first()
        .map_or(1, |f| if f.is_spare() { 1 } else { f.first_seq });
    report.first_seq = expected;
    let mut torn: Option<TornTail> = None;
    for (pos, file) in files.into_iter().enumerate() {
        // Segments after the last one holding data hold nothing; a started one among them
        // may be the writer's next segment, or left over from a roll the crash interrupted
        // (repair resets those).
        let after_data = last_with_data.is_none_or(|last| pos > last);
        if file.is_spare() || torn.is_some() {
            segments.push(ScannedSegment {
                file,
                frames: 0,
                last_seq: expected - 1,
                end: SEGMENT_HEADER_SIZE,
                end_kind: End::Clean,
            });
            continue;
        }
        if file.first_seq != expected && !after_data {
            return Err(JournalError::SequenceGap {
                path: file.path.clone(),
                segment: file.index,
                expected,
                found: file.first_seq,
            });
        }
        let is_tail = last_with_data.is_none_or(|last| pos >= last);
        let outcome = scan_segment(&file, pos, expected, on_frame);
        report.bytes_scanned += (outcome.end - SEGMENT_HEADER_SIZE) as u64;
        expected += outcome.frames;
        let mut scanned = ScannedSegment {
            frames: outcome.frames,
            last_seq: expected - 1,
            end: outcome.end,
            end_kind: outcome.end_kind,
            file,
        };
        match outcome.bad {
            Some(fault) if !is_tail => {
                return Err(JournalError::CorruptFrame {
                    path: scanned.file.path.clone(),
                    segment: scanned.file.index,
                    offset: scanned.end as u64,
                    seq: expected,
                    fault,
                    next_valid: None,
                });
            }
            Some(fault) => torn = Some(classify_tail(&scanned, expected, fault)?),
            None if mode == ScanMode::Repair && is_tail => {
                if let Some(tail) = check_after_end(&scanned, expected)? {
                    scanned.end_kind = End::Torn;
                    torn = Some(tail);
                }
            }
            None => {}
        }
        segments.push(scanned);
    }

    if mode == ScanMode::Repair {
        repair(&mut segments, torn.as_mut(), &mut report)?;
    }
    report.segments = segments.iter().filter(|s| !s.file.is_spare()).count();
    report.spare_segments = segments.iter().filter(|s| s.file.is_spare()).count();
    report.last_seq = expected - 1;
    report.records = report.last_seq + 1 - report.first_seq;
    report.torn_tail = torn;
    report.elapsed = started.elapsed();
    Ok(Scan { segments, report })
}

/// Spares (segments never started) may only come after every started segment, and (checked
/// under the writer lock only: a live writer may start a spare and append to it while a
/// reader looks) hold no data.
fn check_spares_last(files: &[SegmentFile], mode: ScanMode) -> Result<()> {
    if let Some(first_spare) = files.iter().position(SegmentFile::is_spare)
        && let Some(later) = files[first_spare..].iter().find(|f| !f.is_spare())
    {
        return Err(JournalError::BadHeader {
            path: later.path.clone(),
            reason: format!(
                "segment {} holds records but the earlier segment {} was never started",
                later.index, files[first_spare].index
            ),
        });
    }
    if mode == ScanMode::Read {
        return Ok(());
    }
    if let Some(spare) = files.iter().find(|f| f.is_spare() && f.has_data()) {
        return Err(JournalError::BadHeader {
            path: spare.path.clone(),
            reason: "segment was never started (first_seq 0) but holds data".into(),
        });
    }
    Ok(())
}

struct SegmentOutcome {
    frames: u64,
    end: usize,
    end_kind: End,
    bad: Option<FrameFault>,
}

/// Verifies the frames of one segment from `expected`; stops at the end of data or the first
/// bad frame.
#[allow(
    unsafe_code,
    reason = "reads the last bytes of a short file (see SAFETY)"
)]
fn scan_segment(
    file: &SegmentFile,
    pos: usize,
    first: u64,
    on_frame: &mut dyn FnMut(usize, usize, &FrameMeta),
) -> SegmentOutcome {
    let limit = file.limit();
    let mut off = SEGMENT_HEADER_SIZE;
    let mut expected = first;
    loop {
        let (end_kind, bad) = match file.map.slot(off, limit) {
            Slot::Empty => (End::Clean, None),
            Slot::Seal => (End::Sealed, None),
            Slot::Partial { available } => {
                // SAFETY: fewer than 4 bytes before the end of a short file: no writer appends
                // to a file shorter than its capacity (writers extend it first).
                let rest = unsafe { file.map.bytes_unpublished(off, available) };
                if rest.iter().all(|&b| b == 0) {
                    (End::Clean, None)
                } else {
                    (
                        End::Torn,
                        Some(FrameFault::PartialWord {
                            available: available as u64,
                        }),
                    )
                }
            }
            Slot::Bad { fault } => (End::Torn, Some(fault)),
            Slot::Frame { word, info, bytes } => {
                match format::verify_frame(bytes, word, info, expected) {
                    Ok(meta) => {
                        on_frame(pos, off, &meta);
                        off += info.frame_len;
                        expected += 1;
                        continue;
                    }
                    Err(fault) => (End::Torn, Some(fault)),
                }
            }
        };
        return SegmentOutcome {
            frames: expected - first,
            end: off,
            end_kind,
            bad,
        };
    }
}

/// A bad frame in the segment holding the last data: a torn tail unless a valid frame
/// follows it (then a hard error).
#[allow(unsafe_code, reason = "reads past a torn frame (see SAFETY)")]
fn classify_tail(segment: &ScannedSegment, seq: u64, fault: FrameFault) -> Result<TornTail> {
    let file = &segment.file;
    // SAFETY: a bad frame is never published by a live writer (it publishes whole frames and
    // cuts torn ones when it opens, before appending), so no writer appends here.
    let bytes = unsafe { file.map.bytes_unpublished(0, file.limit()) };
    if let Some(next_valid) = find_valid_frame(bytes, segment.end + format::FRAME_ALIGN) {
        return Err(JournalError::CorruptFrame {
            path: file.path.clone(),
            segment: file.index,
            offset: segment.end as u64,
            seq,
            fault,
            next_valid: Some(next_valid),
        });
    }
    Ok(TornTail {
        path: file.path.clone(),
        segment: file.index,
        offset: segment.end as u64,
        seq,
        fault,
        bytes: nonzero_extent(&bytes[segment.end..]) as u64,
        cut: false,
    })
}

/// Repair mode, last segment with clean data: anything non-zero after the end of data is a
/// torn tail (stray bytes of an unfinished frame) or, if it holds a valid frame, corruption.
/// A seal followed by stray bytes is cut with them (the writer then continues there).
#[allow(
    unsafe_code,
    reason = "reads past the end of data under the writer lock"
)]
fn check_after_end(segment: &ScannedSegment, seq: u64) -> Result<Option<TornTail>> {
    let file = &segment.file;
    let from = match segment.end_kind {
        End::Sealed => segment.end + 4,
        End::Clean | End::Torn => segment.end,
    };
    // SAFETY: repair mode holds the writer lock: no writer appends to the segment.
    let bytes = unsafe { file.map.bytes_unpublished(0, file.limit()) };
    let from = from.min(bytes.len());
    let Some(first) = first_nonzero(&bytes[from..]) else {
        return Ok(None);
    };
    let fault = FrameFault::DataAfterEnd {
        first_nonzero: (from + first) as u64,
    };
    if let Some(next_valid) = find_valid_frame(bytes, segment.end) {
        return Err(JournalError::CorruptFrame {
            path: file.path.clone(),
            segment: file.index,
            offset: segment.end as u64,
            seq,
            fault,
            next_valid: Some(next_valid),
        });
    }
    Ok(Some(TornTail {
        path: file.path.clone(),
        segment: file.index,
        offset: segment.end as u64,
        seq,
        fault,
        bytes: nonzero_extent(&bytes[segment.end.min(bytes.len())..]) as u64,
        cut: false,
    }))
}

/// The first CRC-valid frame at an 8-aligned offset `>= from`: `(offset, seq)`.
fn find_valid_frame(bytes: &[u8], from: usize) -> Option<(u64, u64)> {
    let mut off = format::align_frame(from);
    while off + format::FRAME_HEADER_SIZE <= bytes.len() {
        let word = format::le_u32(bytes, off);
        if word != 0
            && word != SEAL_WORD
            && let Ok(info) = format::decode_word(word)
            && info.frame_len <= bytes.len() - off
        {
            let frame = &bytes[off..off + info.frame_len];
            if format::le_u32(frame, 4) == format::frame_crc(word, &frame[8..]) {
                return Some((off as u64, format::le_u64(frame, 8)));
            }
        }
        off += format::FRAME_ALIGN;
    }
    None
}

/// Index of the first non-zero byte.
pub(crate) fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let (head, words, _) = bytemuck::pod_align_to::<u8, u64>(bytes);
    if let Some(i) = head.iter().position(|&b| b != 0) {
        return Some(i);
    }
    let mut base = head.len();
    for chunk in words.chunks(64) {
        if chunk.iter().fold(0, |acc, &w| acc | w) != 0 {
            let i = chunk.iter().position(|&w| w != 0).unwrap_or(0);
            let at = base + i * 8;
            return bytes[at..].iter().position(|&b| b != 0).map(|j| at + j);
        }
        base += chunk.len() * 8;
    }
    bytes[base..].iter().position(|&b| b != 0).map(|j| base + j)
}

/// Length from the start of `bytes` to just after its last non-zero byte.
fn nonzero_extent(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

/// Repair mode: cut the torn tail, reset started segments that cannot be the writer's,
/// extend short files.
fn repair(
    segments: &mut [ScannedSegment],
    torn: Option<&mut TornTail>,
    report: &mut RecoveryReport,
) -> Result<()> {
    if let Some(torn) = torn
        && let Some(segment) = segments.iter_mut().find(|s| s.file.index == torn.segment)
    {
        let path = segment.file.path.clone();
        let file = open_for_repair(&path)?;
        zero_range(&file, torn.offset, torn.bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| JournalError::io("zero torn tail", &path, e))?;
        torn.cut = true;
        segment.end_kind = End::Clean;
        tracing::warn!(
            path = %path.display(),
            offset = torn.offset,
            seq = torn.seq,
            bytes = torn.bytes,
            fault = %torn.fault,
            "cut a torn tail from the journal"
        );
        report.repairs.push(Repair::CutTornTail {
            path,
            offset: torn.offset,
            bytes: torn.bytes,
        });
    }
    // A started segment without records is legitimate only right after a sealed (or full)
    // segment it continues: the writer rolled and crashed before its first record. Any other
    // (a roll interrupted before the previous segment was sealed, or left behind by a cut)
    // goes back to being a spare.
    let mut previous: Option<usize> = None;
    let mut resetting = false;
    for pos in 0..segments.len() {
        if segments[pos].file.is_spare() {
            continue;
        }
        if segments[pos].frames > 0 {
            previous = Some(pos);
            continue;
        }
        let legitimate = !resetting
            && previous.is_none_or(|p| {
                let prev = &segments[p];
                let closed = prev.end_kind == End::Sealed || prev.end + 8 > prev.file.limit();
                closed && segments[pos].file.first_seq == prev.last_seq + 1
            });
        if legitimate {
            previous = Some(pos);
            continue;
        }
        resetting = true;
        let path = segments[pos].file.path.clone();
        let file = open_for_repair(&path)?;
        file.write_all_at(&[0u8; 8], HEADER_FIRST_SEQ_OFFSET as u64)
            .and_then(|()| file.sync_data())
            .map_err(|e| JournalError::io("reset spare", &path, e))?;
        segments[pos].file.first_seq = 0;
        tracing::warn!(path = %path.display(), "reset an empty started segment to a spare");
        report.repairs.push(Repair::ResetSpare { path });
    }
    // A physically truncated file: extend it back so appends never touch unmapped pages.
    for segment in segments.iter_mut() {
        let capacity = segment.file.header.capacity;
        if segment.file.file_len < capacity {
            let path = segment.file.path.clone();
            let file = open_for_repair(&path)?;
            sys::fallocate(&file, capacity)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io("fallocate", &path, e))?;
            tracing::warn!(path = %path.display(), from = segment.file.file_len, to = capacity,
                "extended a truncated journal segment back to its capacity");
            report.repairs.push(Repair::ExtendedFile {
                path,
                from_len: segment.file.file_len,
                to_len: capacity,
            });
            segment.file.file_len = capacity;
        }
    }
    Ok(())
}

fn open_for_repair(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io("open for repair", path, e))
}

/// Writes `len` zero bytes at `offset`.
fn zero_range(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let zeros = [0u8; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_nonzero_finds_every_position() {
        let mut buf = vec![0u8; 3000];
        assert_eq!(first_nonzero(&buf), None);
        for at in [0, 1, 7, 8, 63, 64, 511, 512, 513, 2999] {
            buf.fill(0);
            buf[at] = 1;
            assert_eq!(first_nonzero(&buf), Some(at), "at {at}");
            assert_eq!(
                first_nonzero(&buf[1..]),
                at.checked_sub(1),
                "at {at} unaligned"
            );
            assert_eq!(nonzero_extent(&buf), at + 1);
        }
    }
}
