//! Platform details behind one door: `posix_fallocate`, memory maps, `msync`, `madvise`, and
//! the atomic accesses that implement the publish protocol on mapped memory.
//!
//! # The publish protocol on mapped memory
//!
//! A frame's bytes `4..end` are written with ordinary stores into the writer's mapping while
//! its length word (bytes `0..4`) is still zero; then the length word is written with a
//! `Release` store. Readers (their own read-only mappings, in this or another process) load a
//! length word with a `Relaxed` atomic load followed by an `Acquire` fence (`Relaxed` because
//! only "sufficiently small" relaxed atomic loads are defined on read-only memory), and only
//! after seeing it non-zero form a `&[u8]` over the frame. Published bytes are never written
//! again, so those shared slices never observe a write. Every access to a length word and to
//! the header's `first_seq` is atomic; nothing else is ever read before its publication except
//! by recovery, which holds the writer lock (no writer is running).
#![allow(
    unsafe_code,
    reason = "memory maps and atomics on mapped memory; see each SAFETY note"
)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::format::{self, FrameFault, HEADER_FIRST_SEQ_OFFSET, SEAL_WORD, WordInfo};

/// Allocates `len` bytes of disk for `file` (extending it), so appends through a map never
/// hit `ENOSPC`/`SIGBUS` and the file's size is final from the start.
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor is valid for the duration of the call (borrowed from `file`);
    // posix_fallocate has no memory-safety preconditions.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The writer's mapping of one segment.
///
/// Tracks `published_end`: bytes below it belong to published frames (or the header) and are
/// never handed out mutably again.
pub(crate) struct WriteMap {
    raw: Arc<MmapRaw>,
    published_end: usize,
}

impl WriteMap {
    /// Maps `file` (opened read-write) shared and writable.
    ///
    /// # Safety
    ///
    /// The caller holds the journal's writer lock and maps each segment file writable at most
    /// once, so this map's slices alias no other writable memory; `published_end` is the end of
    /// the data recovery verified, and every byte after it is zero.
    pub(crate) unsafe fn map(file: &File, published_end: usize) -> io::Result<Self> {
        let raw = MmapOptions::new().map_raw(file)?;
        if published_end > raw.len() || !raw.as_ptr().addr().is_multiple_of(8) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        Ok(Self {
            raw: Arc::new(raw),
            published_end,
        })
    }

    /// Mapped length (the segment's capacity).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// A handle that can pre-fault pages of this map and nothing else.
    pub(crate) fn prefault_handle(&self) -> PrefaultHandle {
        PrefaultHandle(Arc::clone(&self.raw))
    }

    /// The unpublished frame at `off` of `len` bytes, without its length word: the returned
    /// slice starts at frame byte 4.
    #[inline]
    pub(crate) fn frame_mut(&mut self, off: usize, len: usize) -> &mut [u8] {
        assert!(
            off >= self.published_end
                && off.is_multiple_of(8)
                && len >= 8
                && len <= self.raw.len()
                && off <= self.raw.len() - len,
            "frame {off}+{len} outside the unpublished part of the segment"
        );
        // SAFETY: the range is inside the mapping, which lives as long as `self.raw`. It lies at
        // or after `published_end`, so no reader reads it (readers read a frame only after its
        // length word, excluded from this slice, is published) and `&mut self` excludes any
        // other slice of this map; the prefault handle never touches contents, and no other
        // writable map of the file exists (contract of `map`).
        unsafe { std::slice::from_raw_parts_mut(self.raw.as_mut_ptr().add(off + 4), len - 4) }
    }

    /// Publishes the frame at `off` ending at `end`: `Release`-stores its length word.
    #[inline]
    pub(crate) fn publish(&mut self, off: usize, word: u32, end: usize) {
        assert!(off >= self.published_end && off < end && end <= self.raw.len());
        self.store_word(off, word);
        self.published_end = end;
    }

    /// Writes the seal word at `off` (no frame follows in this segment).
    pub(crate) fn seal(&mut self, off: usize) {
        assert!(off >= self.published_end && off + 8 <= self.raw.len());
        self.store_word(off, SEAL_WORD);
        self.published_end = off + 8;
    }

    #[inline]
    fn store_word(&self, off: usize, word: u32) {
        debug_assert!(off.is_multiple_of(8));
        // SAFETY: `off + 4 <= len` (checked by the callers' asserts), the address is 8-aligned
        // (page-aligned map, 8-aligned offset), the memory is mapped writable for the life of
        // `self.raw`, and every access to a length word, here and in readers, is atomic.
        let word_ref = unsafe { AtomicU32::from_ptr(self.raw.as_mut_ptr().add(off).cast()) };
        word_ref.store(word, Ordering::Release);
    }

    /// Sets the header's `first_seq` (activates a spare segment).
    pub(crate) fn activate(&mut self, first_seq: u64) {
        // SAFETY: offset 56 is inside the 64-byte header, 8-aligned, mapped writable for the
        // life of `self.raw`; every access to `first_seq` is atomic.
        let field = unsafe {
            AtomicU64::from_ptr(self.raw.as_mut_ptr().add(HEADER_FIRST_SEQ_OFFSET).cast())
        };
        field.store(first_seq, Ordering::Release);
    }

    /// `msync(MS_SYNC)` of `off..off + len` (rounded out to pages).
    pub(crate) fn flush(&self, off: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.raw.flush_range(off, len)
    }
}

/// Pre-faults pages of a writer's map (`MADV_POPULATE_WRITE`); never reads or writes contents.
#[derive(Clone)]
pub(crate) struct PrefaultHandle(Arc<MmapRaw>);

impl PrefaultHandle {
    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Faults in `off..off + len` writable, as if written, without changing a byte.
    pub(crate) fn populate_write(&self, off: usize, len: usize) -> io::Result<()> {
        if len == 0 || off >= self.0.len() {
            return Ok(());
        }
        let len = len.min(self.0.len() - off);
        self.0.advise_range(Advice::PopulateWrite, off, len)
    }
}

/// What is at a frame position, read through the publish protocol.
pub(crate) enum Slot<'a> {
    /// A zero length word: no frame (yet).
    Empty,
    /// The seal word.
    Seal,
    /// Fewer than 4 bytes remain before `limit`.
    Partial { available: usize },
    /// A published frame that fits before `limit` (not yet verified).
    Frame {
        word: u32,
        info: WordInfo,
        bytes: &'a [u8],
    },
    /// The length word is invalid or announces a frame running past `limit`.
    Bad { fault: FrameFault },
}

/// A read-only mapping of a segment file (never modifies it).
pub(crate) struct ReadMap {
    raw: MmapRaw,
}

impl ReadMap {
    /// Maps `file` read-only, `len` bytes (`len > 0`, at most the file's length).
    ///
    /// # Safety
    ///
    /// The file is a journal segment modified only through the publish protocol (or by
    /// recovery while no writer runs) and is never truncated while mapped.
    pub(crate) unsafe fn map(file: &File, len: usize) -> io::Result<Self> {
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        if !raw.as_ptr().addr().is_multiple_of(8) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        Ok(Self { raw })
    }

    /// Mapped length.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// Loads the length word at `off` (`Relaxed`, then an `Acquire` fence when non-zero).
    #[inline]
    pub(crate) fn load_word(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.raw.len());
        // SAFETY: in bounds and 4-aligned (asserted; the map is page-aligned); mapped for the
        // life of `self.raw`; all accesses to length words are atomic. A relaxed load of a
        // register-sized atomic is defined on read-only memory (std `atomic` docs).
        let word = unsafe { AtomicU32::from_ptr(self.raw.as_ptr().add(off).cast_mut().cast()) }
            .load(Ordering::Relaxed);
        if word != 0 {
            fence(Ordering::Acquire);
        }
        word
    }

    /// Loads the header's `first_seq` (0 for a spare segment).
    pub(crate) fn load_first_seq(&self) -> u64 {
        assert!(HEADER_FIRST_SEQ_OFFSET + 8 <= self.raw.len());
        // SAFETY: in bounds (asserted), 8-aligned, mapped for the life of `self.raw`;
        // `first_seq` is only ever accessed atomically. Relaxed, as for `load_word`.
        let first_seq = unsafe {
            AtomicU64::from_ptr(
                self.raw
                    .as_ptr()
                    .add(HEADER_FIRST_SEQ_OFFSET)
                    .cast_mut()
                    .cast(),
            )
        }
        .load(Ordering::Relaxed);
        if first_seq != 0 {
            fence(Ordering::Acquire);
        }
        first_seq
    }

    /// Reads the slot at `off`; `limit` is where the segment's data ends (capacity or a short
    /// file's length).
    #[inline]
    pub(crate) fn slot(&self, off: usize, limit: usize) -> Slot<'_> {
        let limit = limit.min(self.raw.len());
        if off >= limit {
            return Slot::Partial { available: 0 };
        }
        if limit - off < 4 {
            return Slot::Partial {
                available: limit - off,
            };
        }
        let word = self.load_word(off);
        if word == 0 {
            return Slot::Empty;
        }
        if word == SEAL_WORD {
            return Slot::Seal;
        }
        let info = match format::decode_word(word) {
            Ok(info) => info,
            Err(fault) => return Slot::Bad { fault },
        };
        if info.frame_len > limit - off {
            let fault = FrameFault::Truncated {
                frame_len: info.frame_len as u64,
                available: (limit - off) as u64,
            };
            return Slot::Bad { fault };
        }
        // SAFETY: `off..off + frame_len` is inside the mapping (checked against `limit`). The
        // non-zero length word was loaded with acquire semantics above, so the writer's
        // Release store published every byte of this frame, and published bytes are never
        // written again (protocol); the slice lives no longer than the map.
        let bytes =
            unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off), info.frame_len) };
        Slot::Frame { word, info, bytes }
    }

    /// Bytes `off..off + len` whatever their state (bounds are clamped to the map).
    ///
    /// # Safety
    ///
    /// No writer is appending to this segment while the slice lives: the caller holds the
    /// writer lock, or found a frame no live writer could have published (a torn one).
    pub(crate) unsafe fn bytes_unpublished(&self, off: usize, len: usize) -> &[u8] {
        let off = off.min(self.raw.len());
        let len = len.min(self.raw.len() - off);
        // SAFETY: in bounds (clamped); the caller guarantees nobody writes the range while the
        // slice lives; the slice lives no longer than the map.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off), len) }
    }
}
