//! Engine state snapshots tagged with the journal sequence they cover.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{JournalError, Result};
use crate::format;
use crate::sys;

/// First 8 bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"AAITISNP";
/// Snapshot format version.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Size of the snapshot header.
pub const SNAPSHOT_HEADER_SIZE: usize = 40;

/// A loaded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last journal sequence whose effect the state includes: replay from the next one.
    pub covered_seq: u64,
    /// The file.
    pub path: PathBuf,
    /// The engine's serialized state.
    pub state: Vec<u8>,
}

/// A snapshot file skipped while looking for the latest valid one.
#[derive(Debug)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub error: JournalError,
}

/// Result of [`SnapshotStore::load_latest`].
#[derive(Debug)]
pub struct LatestSnapshot {
    /// The newest valid snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Newer snapshots that were skipped (corrupt, or ahead of the journal), newest first.
    pub skipped: Vec<SkippedSnapshot>,
}

/// Snapshots in the `snapshots/` subdirectory of a journal directory, one file per snapshot
/// (`snapshot-{covered_seq:020}.snap`), each written atomically (temporary file, `fsync`,
/// rename, directory `fsync`).
///
/// File layout (integers little-endian):
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | magic `AAITISNP` |
/// | 8 | 4 | version (1) |
/// | 12 | 4 | header size (40) |
/// | 16 | 8 | `covered_seq` |
/// | 24 | 8 | state length `n` |
/// | 32 | 4 | CRC-32C of the state |
/// | 36 | 4 | CRC-32C of bytes 0..36 |
/// | 40 | n | state |
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// The store of the journal in `journal_dir` (creates `snapshots/` if missing).
    ///
    /// # Errors
    ///
    /// I/O errors creating the directory.
    pub fn open(journal_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = journal_dir.as_ref().join("snapshots");
        fs::create_dir_all(&dir).map_err(|e| JournalError::io("create directory", &dir, e))?;
        Ok(Self { dir })
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot of `state` covering the journal up to `covered_seq`, durably and
    /// atomically; returns its path.
    ///
    /// # Errors
    ///
    /// I/O errors (a partial temporary file may remain; it is ignored and overwritten).
    pub fn write(&self, covered_seq: u64, state: &[u8]) -> Result<PathBuf> {
        let name = snapshot_file_name(covered_seq);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| JournalError::io("create", &tmp, e))?;
        file.write_all(&encode_header(covered_seq, state))
            .and_then(|()| file.write_all(state))
            .and_then(|()| file.sync_all())
            .map_err(|e| JournalError::io("write snapshot", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        sys::sync_dir(&self.dir).map_err(|e| JournalError::io("fsync directory", &self.dir, e))?;
        Ok(path)
    }

    /// Snapshot files by covered sequence, oldest first (not validated).
    ///
    /// # Errors
    ///
    /// I/O errors reading the directory.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| JournalError::io("read directory", &self.dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| JournalError::io("read directory", &self.dir, e))?;
            if let Some(seq) = entry
                .file_name()
                .to_str()
                .and_then(parse_snapshot_file_name)
            {
                found.push((seq, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Reads and validates one snapshot file.
    ///
    /// # Errors
    ///
    /// [`JournalError::BadSnapshot`] naming what is wrong; I/O errors.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| JournalError::io("read", path, e))?;
        let bad = |reason: String| JournalError::BadSnapshot {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < SNAPSHOT_HEADER_SIZE {
            return Err(bad(format!(
                "truncated header ({} bytes, 40 needed)",
                bytes.len()
            )));
        }
        if bytes[..8] != SNAPSHOT_MAGIC {
            return Err(bad("not a snapshot (wrong magic)".into()));
        }
        let version = format::le_u32(&bytes, 8);
        if version != SNAPSHOT_VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {SNAPSHOT_VERSION}"
            )));
        }
        if crc32c::crc32c(&bytes[..36]) != format::le_u32(&bytes, 36) {
            return Err(bad("header CRC mismatch".into()));
        }
        let covered_seq = format::le_u64(&bytes, 16);
        let len = format::le_u64(&bytes, 24);
        let actual = (bytes.len() - SNAPSHOT_HEADER_SIZE) as u64;
        if len != actual {
            return Err(bad(format!("state is {actual} bytes, header says {len}")));
        }
        let state = &bytes[SNAPSHOT_HEADER_SIZE..];
        if crc32c::crc32c(state) != format::le_u32(&bytes, 32) {
            return Err(bad("state CRC mismatch".into()));
        }
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_snapshot_file_name);
        if named.is_some_and(|seq| seq != covered_seq) {
            return Err(bad(format!(
                "file name disagrees with covered sequence {covered_seq}"
            )));
        }
        Ok(Snapshot {
            covered_seq,
            path: path.to_path_buf(),
            state: state.to_vec(),
        })
    }

    /// The newest valid snapshot; corrupt newer ones are skipped and reported (never a
    /// silent fallback).
    ///
    /// # Errors
    ///
    /// I/O errors listing the directory.
    pub fn load_latest(&self) -> Result<LatestSnapshot> {
        self.load_latest_at_most(u64::MAX)
    }

    /// The newest valid snapshot covering at most `max_seq` (pass the journal's last
    /// sequence: a snapshot ahead of the journal, possible after losing the journal's tail in
    /// an OS crash under the `none` policy, cannot be resumed from and is skipped).
    ///
    /// # Errors
    ///
    /// I/O errors listing the directory.
    pub fn load_latest_at_most(&self, max_seq: u64) -> Result<LatestSnapshot> {
        let mut skipped = Vec::new();
        for (seq, path) in self.list()?.into_iter().rev() {
            if seq > max_seq {
                let reason = format!("covers sequence {seq}, beyond the journal's last {max_seq}");
                let error = JournalError::BadSnapshot {
                    path: path.clone(),
                    reason,
                };
                skipped.push(SkippedSnapshot { path, error });
                continue;
            }
            match self.load(&path) {
                Ok(snapshot) => {
                    return Ok(LatestSnapshot {
                        snapshot: Some(snapshot),
                        skipped,
                    });
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "skipping a bad snapshot");
                    skipped.push(SkippedSnapshot { path, error });
                }
            }
        }
        Ok(LatestSnapshot {
            snapshot: None,
            skipped,
        })
    }

    /// Deletes snapshots older than the newest `keep` valid ones (`keep >= 1`; corrupt ones
    /// newer than those are left for inspection). Returns the deleted paths.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn prune(&self, keep: usize) -> Result<Vec<PathBuf>> {
        let keep = keep.max(1);
        let mut valid = 0;
        let mut deleted = Vec::new();
        for (_, path) in self.list()?.into_iter().rev() {
            if valid >= keep {
                fs::remove_file(&path).map_err(|e| JournalError::io("remove", &path, e))?;
                deleted.push(path);
            } else if self.load(&path).is_ok() {
                valid += 1;
            }
        }
        if !deleted.is_empty() {
            sys::sync_dir(&self.dir)
                .map_err(|e| JournalError::io("fsync directory", &self.dir, e))?;
        }
        Ok(deleted)
    }
}

fn encode_header(covered_seq: u64, state: &[u8]) -> [u8; SNAPSHOT_HEADER_SIZE] {
    let mut out = [0u8; SNAPSHOT_HEADER_SIZE];
    out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(SNAPSHOT_HEADER_SIZE as u32).to_le_bytes());
    out[16..24].copy_from_slice(&covered_seq.to_le_bytes());
    out[24..32].copy_from_slice(&(state.len() as u64).to_le_bytes());
    out[32..36].copy_from_slice(&crc32c::crc32c(state).to_le_bytes());
    let crc = crc32c::crc32c(&out[..36]);
    out[36..40].copy_from_slice(&crc.to_le_bytes());
    out
}

fn snapshot_file_name(covered_seq: u64) -> String {
    format!("snapshot-{covered_seq:020}.snap")
}

fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
