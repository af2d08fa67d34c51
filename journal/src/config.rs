//! Writer configuration: segment size, durability policy, pre-faulting and maintenance.

use std::time::Duration;

use crate::error::{JournalError, Result};
use crate::format::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};

/// When appended records become durable. See the crate docs ("Durability") for what each
/// level survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Never `msync`: a record is in the page cache once [`append`](crate::JournalWriter)
    /// returns, so it survives a crash of the process but not of the OS or machine.
    None,
    /// Group commit: [`commit`](crate::JournalWriter::commit) syncs when `ms` milliseconds
    /// have passed since the last sync or `records` records were appended since (0 disables
    /// a trigger; at least one must be non-zero).
    Interval {
        /// Longest time between syncs, in milliseconds.
        ms: u32,
        /// Most records between syncs.
        records: u32,
    },
    /// Every [`commit`](crate::JournalWriter::commit) syncs: the records appended before it are
    /// on disk when it returns.
    Sync,
}

/// Who prepares the next segment and pre-faults pages ahead of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// A helper thread owned by the writer (default): it creates the next segment as soon as
    /// the writer starts a new one, and keeps `prefault_window_bytes` ahead of the write
    /// position faulted in.
    Background,
    /// Nothing runs unless the owner calls [`maintain`](crate::JournalWriter::maintain) off
    /// its hot path; a roll without a prepared segment creates one inline.
    Manual,
}

/// Configuration of a [`JournalWriter`](crate::JournalWriter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size of each new segment file, header included: a multiple of 4096 between 64 KiB and
    /// 1 TiB. Existing segments keep the size they were created with.
    pub segment_size_bytes: u64,
    /// The durability policy.
    pub durability: Durability,
    /// Pre-fault pages ahead of the writer (`MADV_POPULATE_WRITE`), so appends do not take
    /// first-touch page faults.
    pub prefault: bool,
    /// How far ahead of the write position pages are kept faulted in.
    pub prefault_window_bytes: u64,
    /// Who does segment preparation and pre-faulting.
    pub maintenance: Maintenance,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_size_bytes: 256 << 20,
            durability: Durability::None,
            prefault: true,
            prefault_window_bytes: 32 << 20,
            maintenance: Maintenance::Background,
        }
    }
}

impl JournalConfig {
    /// Checks the values; the error names the field and what is accepted.
    pub fn validate(&self) -> Result<()> {
        let size = self.segment_size_bytes;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) || !size.is_multiple_of(4096) {
            return Err(JournalError::Config {
                key: "segment_size_bytes",
                reason: format!(
                    "is {size}; use a multiple of 4096 between {MIN_SEGMENT_SIZE} and \
                     {MAX_SEGMENT_SIZE}"
                ),
            });
        }
        if usize::try_from(size).is_err() {
            return Err(JournalError::Config {
                key: "segment_size_bytes",
                reason: format!("is {size}, more than this platform can map"),
            });
        }
        if let Durability::Interval { ms: 0, records: 0 } = self.durability {
            return Err(JournalError::Config {
                key: "durability",
                reason: "interval needs `ms` > 0 or `records` > 0 (or use `sync`)".into(),
            });
        }
        if self.prefault && self.prefault_window_bytes < 4096 {
            return Err(JournalError::Config {
                key: "prefault_window_bytes",
                reason: format!("is {}; use at least 4096", self.prefault_window_bytes),
            });
        }
        Ok(())
    }

    /// The interval policy's time trigger, if any.
    pub(crate) fn interval(&self) -> Option<(Option<Duration>, Option<u64>)> {
        match self.durability {
            Durability::Interval { ms, records } => Some((
                (ms > 0).then(|| Duration::from_millis(u64::from(ms))),
                (records > 0).then_some(u64::from(records)),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_name_their_key() {
        let bad = |config: JournalConfig| match config.validate() {
            Err(JournalError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        };
        let base = JournalConfig::default();
        assert!(base.validate().is_ok());
        assert_eq!(
            bad(JournalConfig {
                segment_size_bytes: 1000,
                ..base.clone()
            }),
            "segment_size_bytes"
        );
        assert_eq!(
            bad(JournalConfig {
                segment_size_bytes: (1 << 20) + 8,
                ..base.clone()
            }),
            "segment_size_bytes"
        );
        assert_eq!(
            bad(JournalConfig {
                durability: Durability::Interval { ms: 0, records: 0 },
                ..base.clone()
            }),
            "durability"
        );
        assert_eq!(
            bad(JournalConfig {
                prefault_window_bytes: 0,
                ..base
            }),
            "prefault_window_bytes"
        );
    }
}
