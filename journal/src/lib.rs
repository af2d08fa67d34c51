//! `aaiti-journal`: AAITI's append-only, memory-mapped event journal, with recovery,
//! readers, a live follower, snapshots and retention.
//!
//! The journal stage appends every [`Envelope`](aaiti_model::Envelope) it takes off the ring
//! (the same bytes as the ring slot, copied straight into the mapped segment) and
//! variable-length blobs such as FIX messages. Each record gets a journal-global sequence
//! number `1, 2, 3, ...` without gaps across segments (distinct from an envelope's
//! per-stream `seq`).
//!
//! ```
//! use aaiti_journal::{JournalConfig, JournalReader, JournalWriter};
//! use aaiti_model::{Envelope, RecordHeader, StreamId, Trade, UnixNanos};
//!
//! # fn main() -> Result<(), aaiti_journal::JournalError> {
//! let dir = std::env::temp_dir().join(format!("aaiti-journal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let config = JournalConfig { segment_size_bytes: 1 << 20, ..JournalConfig::default() };
//! let mut writer = JournalWriter::open(&dir, config)?;
//! let header = RecordHeader::new(StreamId(1), 1, UnixNanos(10), UnixNanos(11));
//! let seq = writer.append_envelope(&Envelope::new(header, &Trade::default()))?;
//! writer.append_blob(7, UnixNanos(12), b"8=FIX.4.4|35=D|...")?;
//! writer.commit()?; // the group-commit point: before acknowledging the batch
//! drop(writer);
//!
//! let reader = JournalReader::open(&dir)?;
//! let frame = reader.get(seq)?;
//! let envelope = frame.envelope().expect("an envelope frame").expect("valid");
//! assert_eq!(envelope.payload::<Trade>(), Some(&Trade::default()));
//! assert_eq!(reader.last_seq(), 2);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//!
//! A journal is a directory holding segment files `journal-{index:08}.seg` (index from 0,
//! contiguous; the names sort in order), the writer's lock file `journal.lock`, and
//! `snapshots/` ([`SnapshotStore`]). Segments are pre-allocated to their full size with
//! `posix_fallocate` when created, so a data region is zero until written.
//!
//! ## Segment header (64 bytes)
//!
//! All integers are little-endian.
//!
//! | offset | size | field | meaning |
//! |---:|---:|---|---|
//! | 0 | 8 | magic | `AAITIJNL` |
//! | 8 | 4 | `format_version` | 1 ([`FORMAT_VERSION`]); another version is an error |
//! | 12 | 4 | `header_size` | 64: the first frame starts here |
//! | 16 | 8 | `segment_index` | equals the index in the file name |
//! | 24 | 8 | `capacity` | file size in bytes (multiple of 8, 64 KiB ..= 1 TiB) |
//! | 32 | 8 | `created_unix_ns` | creation time |
//! | 40 | 4 | `flags` | 0 |
//! | 44 | 4 | `header_crc` | CRC-32C of bytes 0..44 |
//! | 48 | 8 | reserved | 0 |
//! | 56 | 8 | `first_seq` | journal sequence of the first frame; 0 = spare, not started |
//!
//! Segments are created ahead of time as spares (`first_seq` 0). The writer starts one by
//! storing `first_seq` (one atomic 8-byte store, which is why it is outside the CRC; it is
//! checked against the first frame's sequence and the previous segment's last instead).
//!
//! ## Frame (8-byte aligned, from offset 64)
//!
//! | offset | size | field | meaning |
//! |---:|---:|---|---|
//! | 0 | 3 | `body_len` | body bytes (24-bit); with byte 3 this is the *length word* |
//! | 3 | 1 | `frame_type` | 1 = envelope, 2 = blob |
//! | 4 | 4 | `crc` | CRC-32C of bytes `8..end`, register started at `!word` (see below) |
//! | 8 | 8 | `seq` | journal sequence |
//! | 16 | `body_len` | body | see below |
//! | 16 + `body_len` | 0..7 | padding | zero, up to `end`, the next multiple of 8 |
//!
//! A frame's size is `end = align8(16 + body_len)`; the next frame starts at `end`.
//! The CRC is CRC-32C (Castagnoli, reflected, polynomial `0x82F63B78`) of bytes `8..end`
//! (sequence, body and padding) with the register initialised to the bitwise NOT of the
//! length word instead of the usual `0xFFFF_FFFF`, and the usual final NOT: in terms of the
//! `crc32c` crate, `crc32c_append(word, &frame[8..end])`. One pass thus covers the length
//! word as well (a different word yields a different CRC for the same bytes).
//! A zero length word marks the end of data (never written for a record: every type has a
//! non-zero code). The word `0xFF00_0000` (type 255) *seals* the segment: the writer moved on
//! to the next segment file; nothing follows it. A writer that reaches the end of a segment
//! with fewer than 8 bytes left moves on without a seal.
//!
//! Envelope body (type 1): exactly [`Envelope::as_bytes`](aaiti_model::Envelope::as_bytes),
//! the 32-byte [`RecordHeader`](aaiti_model::RecordHeader) (per-stream `seq` at 0, `ts_event`
//! at 8, `ts_recv` at 16, `kind` at 24, `stream` at 26, `payload_len` at 28, `flags` at 30)
//! and `payload_len` payload bytes (layouts in `aaiti_model::records`); `body_len` must be
//! `32 + payload_len` with `payload_len <= 160`.
//!
//! Blob body (type 2):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | `ts_recv` (ns since the epoch) |
//! | 8 | 2 | `kind` (caller-defined) |
//! | 10 | 6 | reserved, 0 |
//! | 16 | `body_len - 16` | data |
//!
//! # The publish protocol (concurrent readers of the mapped files)
//!
//! The writer writes a frame's bytes `4..end` (CRC, sequence, body, padding) into its
//! shared mapping while the frame's length word is still zero, then stores the length word
//! with `Release` ordering. Readers map the files read-only (in this process or another),
//! load a length word atomically (`Relaxed` load, then an `Acquire` fence when it is
//! non-zero) and only then read the frame. Published bytes are never written again, so
//! readers never see a frame change; a zero word means "not yet". Starting a spare segment
//! (`first_seq`) uses the same protocol. Files must not be modified by anything else, or
//! truncated while mapped.
//!
//! # Durability ([`Durability`])
//!
//! An append returns once the frame is in the shared mapping, i.e. in the OS page cache.
//! [`JournalWriter::commit`] is the group-commit point the journal stage calls at the end of
//! each ring batch, before acknowledging anything in it; it `msync`s (`MS_SYNC`, which on
//! Linux also syncs the file's metadata needed to read the data back) according to policy.
//!
//! | policy | syncs | survives a process crash | survives an OS crash / power loss |
//! |---|---|---|---|
//! | `none` | never | everything appended | nothing guaranteed since the last sync the OS happened to do (dirty pages are written back within ~30 s by default) |
//! | `interval` | at `commit` when `ms` elapsed or `records` appended since the last sync | everything appended | everything up to [`durable_seq`](JournalWriter::durable_seq): at most the interval is lost |
//! | `sync` | at every `commit` | everything appended | everything committed (acknowledged) |
//!
//! A torn write (power loss mid-frame) is detected by the CRC and cut by recovery. An OS
//! crash or power loss can also leave *later* pages of unsynced data on disk while an
//! earlier page was lost (the OS writes dirty pages back in any order); recovery then finds
//! a bad frame followed by a valid one and, by the rule below, stops with an error naming
//! both rather than guess. Under `interval` and `sync` none of those records had been
//! acknowledged; cutting them takes an explicit operator decision, for which this crate has
//! no tool yet (see "Limits").
//!
//! # Recovery ([`recover`], and [`JournalWriter::open`])
//!
//! Every segment is scanned in order: headers checked (magic, version, CRC, index, size),
//! every frame's length word, CRC, body structure and sequence continuity (within and
//! across segments) verified.
//!
//! * A bad frame (partial length word, bad length, truncated, CRC or sequence mismatch) that
//!   is the last data of the journal, or stray non-zero bytes after the end of data, is a
//!   **torn tail**: it is zeroed to the end of the non-zero bytes, synced, and reported
//!   ([`RecoveryReport::torn_tail`], [`Repair::CutTornTail`], a `tracing` warning). The
//!   writer continues with the cut record's sequence. A physically truncated last file is
//!   extended back to its capacity ([`Repair::ExtendedFile`]).
//! * A bad frame followed by any valid frame, or in a segment before the last one holding
//!   data, is [`JournalError::CorruptFrame`] naming file, segment, offset and sequence, and
//!   nothing is changed. Missing sequences between segments are
//!   [`JournalError::SequenceGap`], a missing file [`JournalError::MissingSegment`].
//! * A file that is empty, not a journal, truncated inside its header or from another format
//!   version is an error ([`JournalError::EmptyFile`], [`JournalError::NotAJournal`],
//!   [`JournalError::TruncatedHeader`], [`JournalError::UnsupportedVersion`],
//!   [`JournalError::BadHeader`]); nothing is changed. No input makes this crate panic.
//! * Leftovers of a crash while creating or starting a segment are cleaned up and reported
//!   ([`Repair::RemovedTempFile`], [`Repair::ResetSpare`]).
//!
//! [`JournalReader`] runs the same checks without changing anything: a torn tail is only
//! reported (`cut: false`) and the data ends before it.
//!
//! Resuming from a snapshot: load the newest valid snapshot
//! ([`SnapshotStore::load_latest_at_most`] with the journal's last sequence), then replay
//! [`JournalReader::seek_seq`]`(covered_seq + 1)`. Once a snapshot covers old segments,
//! [`JournalWriter::prune_before`] deletes or archives them.
//!
//! # Errors
//!
//! Everything returns [`JournalError`], whose variants name the file, segment, offset and
//! sequence concerned. Which calls fail, and how:
//!
//! * [`JournalWriter::open`]: [`JournalError::Config`] (bad configuration, naming the field),
//!   [`JournalError::Locked`] (another writer), the header and corruption errors listed under
//!   "Recovery" (files untouched), I/O errors.
//! * [`JournalWriter::append_envelope`] / [`append_blob`](JournalWriter::append_blob):
//!   [`JournalError::RecordTooLarge`] (nothing written), I/O errors creating the next segment
//!   at a roll (retried on the next append), [`JournalError::Poisoned`] after a failed sync.
//! * [`JournalWriter::commit`] / [`sync`](JournalWriter::sync): `msync` errors, after which the
//!   writer is poisoned (a failed `msync` may have dropped dirty pages: reopen to recover).
//! * [`JournalReader::open`], [`recover`], [`Follower::open`]: as the writer's open;
//!   [`JournalReader::seek_seq`] / [`get`](JournalReader::get):
//!   [`JournalError::SeqOutOfRange`]; [`Follower::poll`]: [`JournalError::CorruptFrame`] for
//!   a published frame that fails its checks, [`JournalError::SeqPruned`] when retention
//!   removed the next segment under a follower that fell behind.
//! * [`SnapshotStore`]: [`JournalError::BadSnapshot`] for a damaged file (skipped and reported
//!   by [`SnapshotStore::load_latest`]), I/O errors.
//!
//! No input (file contents, sizes, names) makes this crate panic; internal invariants are
//! checked with `assert!` (bounds of the mapped region) and `debug_assert!` (an envelope is
//! valid before it is journaled).
//!
//! # Performance
//!
//! Page faults dominate the cost of appending through a map: the first write to a page of a
//! pre-allocated file makes the kernel allocate and zero a page-cache page and mark it dirty
//! (about a microsecond per 4 KiB, i.e. one fault per ~50 small records). The writer
//! therefore keeps the pages ahead of its position faulted in (`MADV_POPULATE_WRITE`, which
//! faults pages writable without touching their contents, so it is safe while the writer
//! writes nearby) and prepares the next segment (fallocate, header, fsync, rename, mmap)
//! ahead of time. That work runs on a helper thread ([`Maintenance::Background`], default)
//! or in [`JournalWriter::maintain`] ([`Maintenance::Manual`]) when the owner prefers to
//! schedule it; finished segments are unmapped there too, off the append path.
//!
//! Measured on the 2-core development VM (`benches/append.rs`, 512 MiB per run, quiet
//! machine; the VM's own timer noise puts about 100-400 ns at p99.9):
//!
//! | 64 B records, `none` | records/s | per-append p99.9 |
//! |---|---:|---:|
//! | default (helper pre-faulting), flat out | 41.8 M | 1.8 us (the writer outruns the helper and faults) |
//! | default, paced at 5 / 10 M/s | - | 180 ns (2.3-2.4 us with pre-faulting off) |
//! | into pages pre-faulted before the burst | 56.9 M | 70 ns |
//! | pre-faulting off | 18.8 M | 2.3 us |
//! | `BufWriter<File>` with the same frames | 25.9 M | 60 ns (a write(2) every 1 MiB) |
//!
//! Bursts beyond the OS dirty-page limits (a few GB) run at the disk's write bandwidth.
//! `sync` commits cost one `msync` (~105 us p50 here); recovery scans at ~4 GB/s (1 GiB
//! journal opened in ~0.26 s with a warm page cache).
//!
//! # Limits
//!
//! * One writer per directory (`journal.lock`, `flock`), Linux only (`posix_fallocate`,
//!   `MADV_POPULATE_WRITE` from Linux 5.14; without it pre-faulting switches itself off).
//! * A body is at most 16 MiB - 1 and must fit a segment.
//! * Opening scans and CRC-checks the whole journal (see the recovery benchmark); there is
//!   no persisted index.
//! * Pages pre-faulted long before the writer reaches them (a very slow writer) may be
//!   written back and write-protected again by the OS, costing a fault on the append path;
//!   under `interval`/`sync` such pages may be written twice (zeros, then data).
//! * A reader cannot tell a length word zeroed by corruption in the last segment from the
//!   next frame a live writer is still writing, so [`JournalReader`] ends the data there;
//!   recovery ([`recover`], [`JournalWriter::open`]) checks what follows and reports it.
//! * A [`Follower`] must keep up with retention: a segment pruned before it got there is
//!   [`JournalError::SeqPruned`].
//! * Opening a writer also reads the unused rest of the active segment (to check it is
//!   zero), which costs up to a segment's size of reads.
//! * There is no "truncate after sequence N" operation yet for the operator who decides to
//!   drop unacknowledged records after a power loss (see "Durability").
#![deny(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests unwrap and panic on failure"
    )
)]

mod config;
mod error;
mod follower;
mod format;
mod maintain;
mod reader;
mod scan;
mod segment;
mod snapshot;
mod sys;
mod writer;

pub use config::{Durability, JournalConfig, Maintenance};
pub use error::{JournalError, Result};
pub use follower::Follower;
pub use format::{
    BLOB_HEADER_SIZE, FORMAT_VERSION, FRAME_ALIGN, FRAME_HEADER_SIZE, FrameFault, MAX_BODY_LEN,
    MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC,
};
pub use reader::{Frame, FrameBody, Frames, JournalReader};
pub use scan::{RecoveryReport, Repair, TornTail, recover};
pub use snapshot::{
    LatestSnapshot, SNAPSHOT_HEADER_SIZE, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, SkippedSnapshot,
    Snapshot, SnapshotStore,
};
pub use writer::{JournalWriter, PruneMode, PrunedSegment, WriterStats};
