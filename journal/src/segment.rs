//! Creating (or re-opening) the segment files a writer appends to.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{JournalError, Result};
use crate::format::{self, SEGMENT_HEADER_SIZE, SegmentHeader};
use crate::scan::SegmentFile;
use crate::sys::{self, WriteMap};

/// A segment file mapped for appending.
pub(crate) struct WritableSegment {
    pub(crate) index: u64,
    pub(crate) path: PathBuf,
    pub(crate) map: WriteMap,
    /// Keeps the descriptor (and with it the file's identity) for the map's lifetime.
    _file: File,
}

impl WritableSegment {
    /// The segment's capacity (mapped length).
    pub(crate) fn capacity(&self) -> usize {
        self.map.len()
    }
}

/// The segment file `index` in `dir`, ready to be started: an existing spare is opened, a
/// missing one is created (pre-allocated with `posix_fallocate`, header written and synced,
/// then renamed into place so a half-created segment never carries a segment name).
///
/// Must only be called by the writer that holds the journal lock (or its helper thread).
pub(crate) fn prepare(dir: &Path, index: u64, capacity: u64) -> Result<WritableSegment> {
    let path = dir.join(format::segment_file_name(index));
    if path.exists() {
        let existing = SegmentFile::open(index, path.clone())?;
        if !existing.is_spare() || existing.file_len != existing.header.capacity {
            return Err(JournalError::BadHeader {
                path,
                reason: "expected an unused, full-size spare segment here".into(),
            });
        }
        drop(existing);
        return open_writable(index, path, SEGMENT_HEADER_SIZE);
    }
    let tmp = dir.join(format!("{}.tmp", format::segment_file_name(index)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| JournalError::io("create", &tmp, e))?;
    sys::fallocate(&file, capacity).map_err(|e| JournalError::io("fallocate", &tmp, e))?;
    let header = SegmentHeader {
        index,
        capacity,
        created_unix_ns: aaiti_model::UnixNanos::from_system_time(std::time::SystemTime::now()).0,
    };
    file.write_all_at(&header.encode(0), 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io("write segment header", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
    sys::sync_dir(dir).map_err(|e| JournalError::io("fsync directory", dir, e))?;
    map_writable(index, path, file, SEGMENT_HEADER_SIZE)
}

/// Opens an existing segment for appending after `published_end` (recovery verified
/// everything before it and that everything after it is zero).
pub(crate) fn open_writable(
    index: u64,
    path: PathBuf,
    published_end: usize,
) -> Result<WritableSegment> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io("open", &path, e))?;
    map_writable(index, path, file, published_end)
}

#[allow(
    unsafe_code,
    reason = "maps a segment writable (contract of `WriteMap::map`)"
)]
fn map_writable(
    index: u64,
    path: PathBuf,
    file: File,
    published_end: usize,
) -> Result<WritableSegment> {
    // SAFETY: only the writer holding the journal lock (or its helper, on the writer's behalf)
    // calls this, once per segment file; `published_end` comes from recovery's scan.
    let map = unsafe { WriteMap::map(&file, published_end) }
        .map_err(|e| JournalError::io("mmap", &path, e))?;
    Ok(WritableSegment {
        index,
        path,
        map,
        _file: file,
    })
}
