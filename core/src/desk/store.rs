//! FIX sessions' sequence numbers and sent messages, journaled so that resends and sequence
//! numbers survive restarts.
//!
//! Each session has its own journal directory (`<data dir>/fix/<their CompID>-<our CompID>/`,
//! the `aaiti-journal` format) holding three kinds of blob:
//!
//! | kind | data | meaning |
//! |---:|---|---|
//! | 1 | `seq` (u64 LE), then the message's wire bytes | a message we sent with MsgSeqNum `seq` |
//! | 2 | `seq` (u64 LE) | the next MsgSeqNum expected from the peer is `seq` |
//! | 3 | (none) | both numbers back to 1, earlier messages forgotten |
//!
//! Opening replays the directory: the numbers are those after the last record, and the
//! newest application messages (up to the capacity) are kept in memory for resends.
//! A reset retires the segments before it.
//!
//! Segments are 16 MiB. The pages ahead of the writer are faulted in and the next segment
//! prepared by [`MessageStore::maintain`], which the acceptor calls when it is idle (no
//! helper thread per session); appends then take no page faults in the common case.

use std::io;
use std::path::Path;

use aaiti_gateway::fix::store::{MemoryStore, MessageStore};
use aaiti_journal::{
    Durability, FrameBody, JournalConfig, JournalReader, JournalWriter, Maintenance, PruneMode,
};
use aaiti_model::UnixNanos;

const KIND_SENT: u16 = 1;
const KIND_TARGET: u16 = 2;
const KIND_RESET: u16 = 3;

/// Segment size of a session journal.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Pages kept faulted in ahead of the writer, so appends do not take page faults (each a
/// few microseconds on a file mapping) while the engine answers an order.
const PREFAULT_WINDOW_BYTES: u64 = 4 << 20;
/// Appended bytes after which an idle [`MessageStore::maintain`] call does the work; below
/// it the call returns at once.
const MAINTAIN_AFTER_BYTES: usize = 64 << 10;

/// A [`MessageStore`] on a journal (see the [module docs](self)).
pub struct JournalStore {
    memory: MemoryStore,
    writer: JournalWriter,
    /// Journal sequence of the last reset (segments before it are retired).
    last_reset: u64,
    /// Bytes appended since the last maintenance.
    unmaintained_bytes: usize,
}

impl std::fmt::Debug for JournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalStore")
            .field("next_sender", &self.memory.next_sender_seq())
            .field("next_target", &self.memory.next_target_seq())
            .field("dir", &self.writer.dir())
            .finish()
    }
}

fn io_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

impl JournalStore {
    /// Opens (or creates) the store in `dir`, keeping up to `capacity` application messages
    /// in memory for resends, with the given durability.
    ///
    /// # Errors
    ///
    /// The journal cannot be opened or read.
    pub fn open(dir: &Path, durability: Durability, capacity: usize) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let config = JournalConfig {
            segment_size_bytes: SEGMENT_BYTES,
            durability,
            // Pre-faulting and the next segment are done by `maintain`, called when the
            // acceptor is idle: no helper thread per session.
            prefault: true,
            prefault_window_bytes: PREFAULT_WINDOW_BYTES,
            maintenance: Maintenance::Manual,
        };
        let mut writer = JournalWriter::open(dir, config).map_err(io_error)?;
        writer.maintain();
        let mut memory = MemoryStore::new(capacity);
        let mut last_reset = 0;
        let reader = JournalReader::open(dir).map_err(io_error)?;
        for frame in reader.iter() {
            let FrameBody::Blob { kind, data, .. } = frame.body() else {
                continue;
            };
            let seq = data
                .get(..8)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_le_bytes);
            match (kind, seq) {
                (KIND_SENT, Some(seq)) => memory.store_sent(seq, &data[8..])?,
                (KIND_TARGET, Some(seq)) => memory.set_next_target_seq(seq)?,
                (KIND_RESET, _) => {
                    memory.reset()?;
                    last_reset = frame.seq();
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: record {} is not a FIX store record",
                            dir.display(),
                            frame.seq()
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            memory,
            writer,
            last_reset,
            unmaintained_bytes: 0,
        })
    }

    fn append(&mut self, kind: u16, seq: Option<u64>, bytes: &[u8]) -> io::Result<()> {
        let len = seq.map_or(0, |_| 8) + bytes.len();
        self.writer
            .append_blob_with(kind, UnixNanos(crate::clock::now().0), len, |data| {
                if let Some(seq) = seq {
                    data[..8].copy_from_slice(&seq.to_le_bytes());
                    data[8..].copy_from_slice(bytes);
                }
            })
            .map_err(io_error)?;
        self.writer.commit().map_err(io_error)?;
        self.unmaintained_bytes += len;
        Ok(())
    }
}

impl MessageStore for JournalStore {
    fn next_sender_seq(&self) -> u64 {
        self.memory.next_sender_seq()
    }

    fn next_target_seq(&self) -> u64 {
        self.memory.next_target_seq()
    }

    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.append(KIND_TARGET, Some(seq), &[])?;
        self.memory.set_next_target_seq(seq)
    }

    fn store_sent(&mut self, seq: u64, bytes: &[u8]) -> io::Result<()> {
        self.append(KIND_SENT, Some(seq), bytes)?;
        self.memory.store_sent(seq, bytes)
    }

    fn sent(&mut self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()> {
        self.memory.sent(begin, end, each)
    }

    fn maintain(&mut self) {
        if self.unmaintained_bytes >= MAINTAIN_AFTER_BYTES {
            self.unmaintained_bytes = 0;
            self.writer.maintain();
        }
    }

    fn reset(&mut self) -> io::Result<()> {
        self.append(KIND_RESET, None, &[])?;
        self.memory.reset()?;
        let reset_seq = self.writer.last_seq();
        if reset_seq > self.last_reset {
            self.last_reset = reset_seq;
            // Everything before the reset is history nobody can ask for again.
            self.writer
                .prune_before(reset_seq, &PruneMode::Delete)
                .map_err(io_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aaiti-fixstore-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn message(msg_type: &[u8], seq: u64) -> Vec<u8> {
        let mut encoder = aaiti_gateway::fix::codec::Encoder::new(256);
        encoder.begin(msg_type);
        encoder.uint(34, seq);
        encoder.finish().to_vec()
    }

    fn collect(store: &mut JournalStore, begin: u64, end: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        store
            .sent(begin, end, &mut |seq, bytes| {
                out.push((seq, bytes.to_vec()))
            })
            .unwrap();
        out
    }

    #[test]
    fn numbers_and_messages_survive_a_reopen() {
        let dir = temp("reopen");
        {
            let mut store = JournalStore::open(&dir, Durability::None, 100).unwrap();
            assert_eq!((store.next_sender_seq(), store.next_target_seq()), (1, 1));
            store.store_sent(1, &message(b"A", 1)).unwrap();
            store.store_sent(2, &message(b"8", 2)).unwrap();
            store.set_next_target_seq(7).unwrap();
        }
        let mut store = JournalStore::open(&dir, Durability::None, 100).unwrap();
        assert_eq!((store.next_sender_seq(), store.next_target_seq()), (3, 7));
        let resend = collect(&mut store, 1, u64::MAX);
        // The logon is administrative: a resend gap-fills it, so the store need not keep it.
        assert_eq!(resend, vec![(2, message(b"8", 2))]);
        store.reset().unwrap();
        drop(store);
        let mut store = JournalStore::open(&dir, Durability::None, 100).unwrap();
        assert_eq!((store.next_sender_seq(), store.next_target_seq()), (1, 1));
        assert!(collect(&mut store, 1, u64::MAX).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
