//! [`Failover`]: a primary and a backup connection, one of them forwarded downstream.

use aaiti_model::{
    BookCheck, BookDelta, Envelope, FeedEvent, FeedEventKind, InstrumentId, Record, RecordHeader,
    RecordKind, StreamId, TopOfBook, Trade, UnixNanos,
};

use super::{LiveError, LiveFeed, ws::Connection};
use crate::RecordBuffer;

const MS: u64 = 1_000_000;

/// Failover settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// The stream everything forwarded is renumbered into.
    pub stream: StreamId,
    /// The active feed is stale when it has had no message for this long (or is not open);
    /// then, if the other is fresh, the failover switches.
    pub failover_after_ms: u64,
    /// On the backup, switch back once the primary has been fresh for this long.
    pub failback_after_ms: u64,
}

/// Which connection is forwarded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ActiveFeed {
    /// The primary.
    Primary,
    /// The backup.
    Backup,
}

/// Counters of a failover.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverStats {
    /// Switches to the backup.
    pub failovers: u64,
    /// Switches back to the primary.
    pub failbacks: u64,
    /// Records forwarded.
    pub forwarded: u64,
    /// Records of the standby connection dropped.
    pub standby_dropped: u64,
}

/// A primary and a backup [`Connection`] (a second connection to the same venue, or another
/// venue's connection for the same asset), both polled; only the active one's records go
/// downstream.
///
/// * Starts on the primary. When the primary has been stale for
///   [`FailoverConfig::failover_after_ms`] and the backup is fresh, a `Failover` event is
///   emitted and the backup becomes active; back on the primary (`Failback`) once the
///   primary has been fresh for [`FailoverConfig::failback_after_ms`] (or at once if the
///   backup goes stale while the primary is fresh).
/// * On each switch the newly active connection resynchronises its books
///   ([`Connection::resync`]): downstream sees `ResyncRequested` for each instrument, then
///   the snapshot and `BookValid`, so nothing trades on a book half built from two feeds.
///   Records the new active feed produced in the poll that decided the switch are dropped.
/// * Forwarded records are renumbered `1, 2, 3...` in [`FailoverConfig::stream`] (the
///   header's `stream` and `seq`; timestamps and payloads unchanged), so downstream sees one
///   gap-free stream whichever connection is active. `Failover`/`Failback` events carry the
///   new active venue and, in `value`, 1 for the primary or 2 for the backup.
/// * With two venues, instrument ids differ between them: downstream must map them (the
///   events say which venue is active).
#[derive(Debug)]
pub struct Failover<P, B> {
    primary: Connection<P>,
    backup: Connection<B>,
    config: FailoverConfig,
    active: ActiveFeed,
    primary_scratch: RecordBuffer,
    backup_scratch: RecordBuffer,
    seq: u64,
    started_ns: Option<u64>,
    primary_fresh_since: Option<u64>,
    stats: FailoverStats,
}

impl<P: LiveFeed, B: LiveFeed> Failover<P, B> {
    /// A failover starting on `primary`.
    ///
    /// # Errors
    ///
    /// [`LiveError::BadConfig`] if `failover_after_ms` is 0.
    pub fn new(
        primary: Connection<P>,
        backup: Connection<B>,
        config: FailoverConfig,
    ) -> Result<Self, LiveError> {
        if config.failover_after_ms == 0 {
            return Err(LiveError::BadConfig {
                key: "failover_after_ms",
                reason: "must be above 0",
            });
        }
        Ok(Self {
            primary,
            backup,
            config,
            active: ActiveFeed::Primary,
            primary_scratch: RecordBuffer::with_capacity(1024),
            backup_scratch: RecordBuffer::with_capacity(1024),
            seq: 0,
            started_ns: None,
            primary_fresh_since: None,
            stats: FailoverStats::default(),
        })
    }

    /// Which connection is forwarded.
    pub fn active(&self) -> ActiveFeed {
        self.active
    }

    /// The primary connection.
    pub fn primary(&self) -> &Connection<P> {
        &self.primary
    }

    /// The backup connection.
    pub fn backup(&self) -> &Connection<B> {
        &self.backup
    }

    /// The primary connection, mutably.
    pub fn primary_mut(&mut self) -> &mut Connection<P> {
        &mut self.primary
    }

    /// The backup connection, mutably.
    pub fn backup_mut(&mut self) -> &mut Connection<B> {
        &mut self.backup
    }

    /// The counters.
    pub fn stats(&self) -> &FailoverStats {
        &self.stats
    }

    /// Polls both connections, switches if due, and appends the active one's records
    /// (renumbered) to `out`. Returns the active feed after the poll.
    ///
    /// # Errors
    ///
    /// [`LiveError::GaveUp`] when both connections have given up.
    pub fn poll(
        &mut self,
        now: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<ActiveFeed, LiveError> {
        let now_ns = now.0;
        let started = *self.started_ns.get_or_insert(now_ns);
        self.primary_scratch.clear();
        self.backup_scratch.clear();
        let primary = self.primary.poll(now, &mut self.primary_scratch);
        let backup = self.backup.poll(now, &mut self.backup_scratch);
        if let (Err(e), Err(_)) = (&primary, &backup) {
            return Err(LiveError::GaveUp {
                attempts: match e {
                    LiveError::GaveUp { attempts } => *attempts,
                    _ => 0,
                },
            });
        }
        let window_ns = self.config.failover_after_ms * MS;
        // Before the first message, "stale" counts from the start.
        let grace = now_ns.saturating_sub(started) <= window_ns;
        let primary_fresh = self.primary.is_fresh(now, window_ns);
        let backup_fresh = self.backup.is_fresh(now, window_ns);
        if primary_fresh {
            self.primary_fresh_since.get_or_insert(now_ns);
        } else {
            self.primary_fresh_since = None;
        }
        let switch_to = match self.active {
            ActiveFeed::Primary if !primary_fresh && !grace && backup_fresh => {
                Some(ActiveFeed::Backup)
            }
            ActiveFeed::Backup if primary_fresh => {
                let fresh_for = now_ns.saturating_sub(self.primary_fresh_since.unwrap_or(now_ns));
                let due = fresh_for >= self.config.failback_after_ms * MS;
                (due || !backup_fresh).then_some(ActiveFeed::Primary)
            }
            _ => None,
        };
        match self.active {
            ActiveFeed::Primary => {
                forward(
                    &self.primary_scratch,
                    &mut self.seq,
                    self.config.stream,
                    &mut self.stats,
                    out,
                );
                self.stats.standby_dropped += self.backup_scratch.len() as u64;
            }
            ActiveFeed::Backup => {
                forward(
                    &self.backup_scratch,
                    &mut self.seq,
                    self.config.stream,
                    &mut self.stats,
                    out,
                );
                self.stats.standby_dropped += self.primary_scratch.len() as u64;
            }
        }
        if let Some(target) = switch_to {
            self.switch(target, now, out);
        }
        Ok(self.active)
    }

    fn switch(&mut self, target: ActiveFeed, now: UnixNanos, out: &mut RecordBuffer) {
        self.active = target;
        let (kind, venue, value) = match target {
            ActiveFeed::Backup => {
                self.stats.failovers += 1;
                (FeedEventKind::Failover, self.backup.handler().venue(), 2)
            }
            ActiveFeed::Primary => {
                self.stats.failbacks += 1;
                (FeedEventKind::Failback, self.primary.handler().venue(), 1)
            }
        };
        tracing::warn!(?target, "feed switched");
        self.seq += 1;
        out.push(
            RecordHeader::new(self.config.stream, self.seq, now, now),
            &FeedEvent {
                instrument: InstrumentId(u32::MAX),
                kind: kind.code(),
                venue,
                venue_seq: self.stats.failovers + self.stats.failbacks,
                expected: 0,
                value,
            },
        );
        self.stats.forwarded += 1;
        let scratch = match target {
            ActiveFeed::Backup => {
                self.backup_scratch.clear();
                self.backup.resync(now, &mut self.backup_scratch);
                &self.backup_scratch
            }
            ActiveFeed::Primary => {
                self.primary_scratch.clear();
                self.primary.resync(now, &mut self.primary_scratch);
                &self.primary_scratch
            }
        };
        forward(
            scratch,
            &mut self.seq,
            self.config.stream,
            &mut self.stats,
            out,
        );
    }
}

fn forward(
    records: &RecordBuffer,
    seq: &mut u64,
    stream: StreamId,
    stats: &mut FailoverStats,
    out: &mut RecordBuffer,
) {
    for envelope in records {
        let mut header = envelope.header;
        header.stream = stream;
        header.seq = *seq + 1;
        let pushed = match envelope.kind() {
            Ok(RecordKind::BookDelta) => push_as::<BookDelta>(envelope, header, out),
            Ok(RecordKind::Trade) => push_as::<Trade>(envelope, header, out),
            Ok(RecordKind::TopOfBook) => push_as::<TopOfBook>(envelope, header, out),
            Ok(RecordKind::FeedEvent) => push_as::<FeedEvent>(envelope, header, out),
            Ok(RecordKind::BookCheck) => push_as::<BookCheck>(envelope, header, out),
            // Feed handlers produce only market-data records.
            _ => false,
        };
        if pushed {
            *seq += 1;
            stats.forwarded += 1;
        } else {
            debug_assert!(false, "a feed produced a non-market-data record");
        }
    }
}

fn push_as<R: Record>(envelope: &Envelope, header: RecordHeader, out: &mut RecordBuffer) -> bool {
    match envelope.payload::<R>() {
        Some(record) => {
            out.push(header, record);
            true
        }
        None => false,
    }
}
