//! Per-handler counters ([`FeedStats`]) and the rate limiter of reject logging.

use crate::error::{MessageKind, RejectReason};

/// Counters kept by a feed handler. Plain integers: a handler lives on one thread; copy
/// them out with `stats()` to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Messages passed to `on_message` (accepted or not).
    pub messages: u64,
    /// Records appended to output buffers.
    pub records: u64,
    accepted: [u64; MessageKind::ALL.len()],
    rejected: [u64; RejectReason::COUNT],
    /// Book updates applied to a synchronised book.
    pub updates_applied: u64,
    /// Book updates buffered while waiting for a snapshot.
    pub updates_buffered: u64,
    /// Book updates dropped: older than the book (stale per the venue's rule) or arriving
    /// while the book waits for a snapshot that the venue sends unprompted.
    pub updates_dropped: u64,
    /// Buffered updates discarded because the buffer was full.
    pub buffer_overflows: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Snapshots discarded as too old to synchronise with the buffered updates.
    pub snapshots_discarded: u64,
    /// Sequence gaps detected.
    pub gaps: u64,
    /// Resynchronisations requested.
    pub resyncs_requested: u64,
    /// `BookValid` events emitted.
    pub books_valid: u64,
    /// `Crossed` events emitted.
    pub crossed: u64,
    /// `Stale` events emitted.
    pub stale: u64,
    /// `OutOfOrderTimestamp` events emitted.
    pub out_of_order: u64,
    /// `OutlierPrice` events emitted.
    pub outliers: u64,
    /// Binance messages normalized by the fast path.
    pub fast_path_hits: u64,
    /// Binance messages the fast path handed to the general path.
    pub fast_path_fallbacks: u64,
    /// Kraken levels flagged as republished (`"r"`).
    pub republished_levels: u64,
    /// Kraken levels removed because they fell beyond the subscribed depth.
    pub truncated_levels: u64,
    /// Venue error messages (Binance `error`, Coinbase `error`, Kraken `error` status).
    pub venue_errors: u64,
}

impl FeedStats {
    /// Messages rejected for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()]
    }

    /// Messages rejected for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Messages of `kind` accepted (applied, buffered, dropped or control).
    pub fn accepted(&self, kind: MessageKind) -> u64 {
        self.accepted[kind.index()]
    }

    /// Messages accepted, all kinds.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.iter().sum()
    }

    pub(crate) fn count_rejected(&mut self, reason: RejectReason) -> u64 {
        let slot = &mut self.rejected[reason.index()];
        *slot += 1;
        *slot
    }

    pub(crate) fn count_accepted(&mut self, kind: MessageKind) {
        self.accepted[kind.index()] += 1;
    }
}

/// Logs each reject reason at most once per interval of receive time, reporting how many
/// were suppressed in between.
#[derive(Clone, Debug)]
pub(crate) struct RejectLog {
    last_ns: [Option<u64>; RejectReason::COUNT],
    suppressed: [u64; RejectReason::COUNT],
}

impl RejectLog {
    pub(crate) fn new() -> Self {
        Self {
            last_ns: [None; RejectReason::COUNT],
            suppressed: [0; RejectReason::COUNT],
        }
    }

    /// `Some(suppressed since the last log line)` if this one should be logged.
    pub(crate) fn admit(
        &mut self,
        reason: RejectReason,
        now_ns: u64,
        interval_ns: u64,
    ) -> Option<u64> {
        let i = reason.index();
        let due = match self.last_ns[i] {
            None => true,
            Some(last) => now_ns.saturating_sub(last) >= interval_ns || now_ns < last,
        };
        if due {
            self.last_ns[i] = Some(now_ns);
            Some(std::mem::take(&mut self.suppressed[i]))
        } else {
            self.suppressed[i] += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_log_is_rate_limited_per_reason() {
        let mut log = RejectLog::new();
        let r = RejectReason::Malformed;
        assert_eq!(log.admit(r, 0, 10), Some(0));
        assert_eq!(log.admit(r, 5, 10), None);
        assert_eq!(log.admit(r, 9, 10), None);
        assert_eq!(log.admit(RejectReason::Truncated, 9, 10), Some(0));
        assert_eq!(log.admit(r, 10, 10), Some(2));
        assert_eq!(log.admit(r, 11, 10), None);
    }
}
