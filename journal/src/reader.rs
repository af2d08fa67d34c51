//! Read-only access: iterate, seek by sequence (sparse index) and by time.

use std::path::{Path, PathBuf};

use aaiti_model::{Envelope, RecordError, UnixNanos};

use crate::error::{JournalError, Result};
use crate::format::{
    self, BLOB_HEADER_SIZE, FRAME_HEADER_SIZE, FrameMeta, SEGMENT_HEADER_SIZE, TYPE_ENVELOPE,
};
use crate::scan::{self, RecoveryReport, ScanMode};
use crate::sys::{ReadMap, Slot};

/// The sparse index takes an entry at least every this many records...
const INDEX_EVERY_RECORDS: u64 = 4096;
/// ...or this many bytes, and at the start of every segment.
const INDEX_EVERY_BYTES: usize = 64 * 1024;

/// One journal record, borrowed from a mapped segment.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    seq: u64,
    segment: u64,
    offset: u64,
    frame_type: u8,
    body: &'a [u8],
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("segment", &self.segment)
            .field("offset", &self.offset)
            .field("body", &self.body())
            .finish()
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBody<'a> {
    /// An [`Envelope`]'s header and used payload, as [`Envelope::as_bytes`] gave them.
    Envelope(&'a [u8]),
    /// A blob.
    Blob {
        /// Caller-defined kind.
        kind: u16,
        /// Receive time.
        ts_recv: UnixNanos,
        /// The data (8-byte aligned in the map).
        data: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// `bytes` is the whole frame, already verified.
    pub(crate) fn from_verified(
        segment: u64,
        offset: usize,
        frame_type: u8,
        bytes: &'a [u8],
        body_len: usize,
    ) -> Self {
        Self {
            seq: format::le_u64(bytes, 8),
            segment,
            offset: offset as u64,
            frame_type,
            body: &bytes[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + body_len],
        }
    }

    /// Journal sequence.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Index of the segment holding it.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Byte offset of the frame in its segment file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Receive timestamp (the envelope's `ts_recv`, or the blob's).
    pub fn ts_recv(&self) -> UnixNanos {
        match self.body() {
            FrameBody::Envelope(bytes) => UnixNanos(format::le_u64(bytes, 16)),
            FrameBody::Blob { ts_recv, .. } => ts_recv,
        }
    }

    /// The body.
    pub fn body(&self) -> FrameBody<'a> {
        if self.frame_type == TYPE_ENVELOPE {
            FrameBody::Envelope(self.body)
        } else {
            FrameBody::Blob {
                kind: format::le_u16(self.body, 8),
                ts_recv: UnixNanos(format::le_u64(self.body, 0)),
                data: &self.body[BLOB_HEADER_SIZE..],
            }
        }
    }

    /// The envelope bytes, if this is an envelope frame.
    pub fn envelope_bytes(&self) -> Option<&'a [u8]> {
        (self.frame_type == TYPE_ENVELOPE).then_some(self.body)
    }

    /// The envelope, copied out and validated ([`Envelope::from_bytes`]); `None` for blobs.
    pub fn envelope(&self) -> Option<Result<Envelope, RecordError>> {
        self.envelope_bytes().map(Envelope::from_bytes)
    }
}

/// A started segment as a reader sees it.
pub(crate) struct ReaderSegment {
    index: u64,
    map: ReadMap,
    path: PathBuf,
    first_seq: u64,
    last_seq: u64,
    /// End of verified data.
    end: usize,
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    seq: u64,
    segment: usize,
    offset: usize,
    /// Largest `ts_recv` of the records before this one (0 for none).
    max_ts_before: u64,
}

/// A read-only view of a journal as it was when opened: every record verified, a sparse
/// index for seeks. Never modifies a file (a torn tail is reported in
/// [`report`](Self::report), not cut). Appends made later are not visible; use a
/// [`Follower`](crate::Follower) to tail a live writer.
pub struct JournalReader {
    dir: PathBuf,
    segments: Vec<ReaderSegment>,
    index: Vec<IndexEntry>,
    report: RecoveryReport,
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("first_seq", &self.report.first_seq)
            .field("last_seq", &self.report.last_seq)
            .finish_non_exhaustive()
    }
}

impl JournalReader {
    /// Opens the journal in `dir` read-only, verifying every record and building the index.
    ///
    /// # Errors
    ///
    /// I/O errors (a missing directory included), the header errors
    /// ([`JournalError::NotAJournal`], [`JournalError::UnsupportedVersion`], ...),
    /// [`JournalError::CorruptFrame`] and [`JournalError::SequenceGap`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let mut index: Vec<IndexEntry> = Vec::new();
        let mut max_ts = 0u64;
        let mut on_frame = |segment: usize, offset: usize, meta: &FrameMeta| {
            let take = index.last().is_none_or(|last| {
                last.segment != segment
                    || meta.seq - last.seq >= INDEX_EVERY_RECORDS
                    || offset - last.offset >= INDEX_EVERY_BYTES
            });
            if take {
                index.push(IndexEntry {
                    seq: meta.seq,
                    segment,
                    offset,
                    max_ts_before: max_ts,
                });
            }
            max_ts = max_ts.max(meta.ts_recv);
        };
        let scan = scan::scan_dir(&dir, ScanMode::Read, &mut on_frame)?;
        // Spares come last, so positions of started segments are unchanged by the filter.
        let segments = scan
            .segments
            .into_iter()
            .filter(|s| !s.file.is_spare())
            .map(|s| ReaderSegment {
                index: s.file.index,
                first_seq: s.file.first_seq,
                last_seq: s.last_seq,
                end: s.end,
                path: s.file.path,
                map: s.file.map,
            })
            .collect();
        Ok(Self {
            dir,
            segments,
            index,
            report: scan.report,
        })
    }

    /// What the scan found: counts, sequence range, a torn tail if any (not cut).
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// First sequence present.
    pub fn first_seq(&self) -> u64 {
        self.report.first_seq
    }

    /// Last sequence present (`first_seq() - 1` when empty).
    pub fn last_seq(&self) -> u64 {
        self.report.last_seq
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.report.records
    }

    /// Whether the journal holds no record.
    pub fn is_empty(&self) -> bool {
        self.report.records == 0
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segment files holding the records: `(index, path, first_seq, last_seq)`.
    pub fn segments(&self) -> impl Iterator<Item = (u64, &Path, u64, u64)> {
        self.segments
            .iter()
            .map(|s| (s.index, s.path.as_path(), s.first_seq, s.last_seq))
    }

    /// Every record, in sequence order.
    pub fn iter(&self) -> Frames<'_> {
        Frames {
            reader: self,
            segment: 0,
            offset: SEGMENT_HEADER_SIZE,
            next_seq: self.first_seq(),
        }
    }

    /// Records from `seq` on (`seq` may be `last_seq() + 1`: an empty iterator).
    ///
    /// # Errors
    ///
    /// [`JournalError::SeqOutOfRange`] outside `first_seq()..=last_seq() + 1`.
    pub fn seek_seq(&self, seq: u64) -> Result<Frames<'_>> {
        if seq < self.first_seq() || seq > self.last_seq() + 1 {
            return Err(JournalError::SeqOutOfRange {
                seq,
                first: self.first_seq(),
                last: self.last_seq(),
            });
        }
        let at = self.index.partition_point(|e| e.seq <= seq);
        let mut frames = match at.checked_sub(1).map(|i| self.index[i]) {
            Some(entry) => Frames {
                reader: self,
                segment: entry.segment,
                offset: entry.offset,
                next_seq: entry.seq,
            },
            None => self.iter(),
        };
        // Bounded by the index spacing.
        while frames.next_seq < seq && frames.skip_one() {}
        Ok(frames)
    }

    /// The record with sequence `seq`.
    ///
    /// # Errors
    ///
    /// [`JournalError::SeqOutOfRange`] if it is not in the journal.
    pub fn get(&self, seq: u64) -> Result<Frame<'_>> {
        self.seek_seq(seq)?
            .next()
            .ok_or(JournalError::SeqOutOfRange {
                seq,
                first: self.first_seq(),
                last: self.last_seq(),
            })
    }

    /// Records from the first one whose `ts_recv >= ts`, in journal order.
    ///
    /// Records are appended in `ts_recv` order per stream but interleave across streams, so
    /// the journal is not globally sorted by time: the result starts at the first record (in
    /// sequence order) stamped `ts` or later, and records after it may still be earlier than
    /// `ts` (filter them if you need a strict time range). The index keeps the largest
    /// timestamp seen before each entry, which is monotone, so the seek is a binary search
    /// plus a scan of at most one index interval.
    pub fn seek_time(&self, ts: UnixNanos) -> Frames<'_> {
        let at = self.index.partition_point(|e| e.max_ts_before < ts.0);
        let mut frames = match at.checked_sub(1).map(|i| self.index[i]) {
            Some(entry) => Frames {
                reader: self,
                segment: entry.segment,
                offset: entry.offset,
                next_seq: entry.seq,
            },
            None => self.iter(),
        };
        loop {
            let here = frames.clone();
            match frames.next() {
                Some(frame) if frame.ts_recv() < ts => {}
                Some(_) | None => return here,
            }
        }
    }
}

/// Iterator over records (from [`JournalReader::iter`], [`JournalReader::seek_seq`],
/// [`JournalReader::seek_time`]).
#[derive(Clone)]
pub struct Frames<'r> {
    reader: &'r JournalReader,
    segment: usize,
    offset: usize,
    next_seq: u64,
}

impl<'r> Frames<'r> {
    /// Sequence of the record `next` returns.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Position of the next frame: `(segment position, offset, frame bytes, body length,
    /// type)`, moving to the next segment at the end of one.
    fn locate(&mut self) -> Option<(&'r ReaderSegment, usize, &'r [u8], usize, u8)> {
        loop {
            let segment = self.reader.segments.get(self.segment)?;
            if self.offset >= segment.end {
                self.segment += 1;
                self.offset = SEGMENT_HEADER_SIZE;
                continue;
            }
            return match segment.map.slot(self.offset, segment.end) {
                Slot::Frame { info, bytes, .. } => {
                    Some((segment, self.offset, bytes, info.body_len, info.frame_type))
                }
                // The scan verified everything before `end`: unreachable unless the file
                // changed under us (outside the protocol). End the iteration.
                _ => {
                    self.segment = self.reader.segments.len();
                    None
                }
            };
        }
    }

    fn skip_one(&mut self) -> bool {
        match self.locate() {
            Some((_, offset, bytes, _, _)) => {
                self.offset = offset + bytes.len();
                self.next_seq += 1;
                true
            }
            None => false,
        }
    }
}

impl<'r> Iterator for Frames<'r> {
    type Item = Frame<'r>;

    fn next(&mut self) -> Option<Frame<'r>> {
        let (segment, offset, bytes, body_len, frame_type) = self.locate()?;
        let frame = Frame::from_verified(segment.index, offset, frame_type, bytes, body_len);
        debug_assert_eq!(frame.seq, self.next_seq);
        self.offset = offset + bytes.len();
        self.next_seq += 1;
        Some(frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.reader.last_seq() + 1).saturating_sub(self.next_seq);
        let left = usize::try_from(left).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Frames<'_> {}
