//! [`FeedCore`]: what every venue handler shares — record numbering, emission helpers,
//! reject accounting and logging, and the data-quality checks.

use aaiti_model::{
    BookAction, BookCheck, BookDelta, ChecksumMethod, FeedEvent, FeedEventKind, InstrumentId,
    InstrumentRegistry, Price, Qty, Record, RecordHeader, Side, StreamId, TopOfBook, Trade,
    UnixNanos, VenueId,
};

use crate::{
    buffer::RecordBuffer,
    config::FeedConfig,
    error::{FeedError, MessageKind, Reject},
    quality::{InstrumentQuality, TsClass},
    stats::{FeedStats, RejectLog},
    symbols::SymbolTable,
};

/// `FeedEvent::instrument` for events about the whole feed.
pub(crate) const WHOLE_FEED: InstrumentId = InstrumentId(u32::MAX);

/// One price level of a venue message, already in fixed point.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub(crate) side: Side,
    pub(crate) price: i64,
    pub(crate) qty: i64,
}

/// State and helpers shared by the venue handlers.
#[derive(Debug)]
pub(crate) struct FeedCore {
    pub(crate) name: &'static str,
    pub(crate) venue: VenueId,
    pub(crate) stream: StreamId,
    pub(crate) config: FeedConfig,
    pub(crate) symbols: SymbolTable,
    pub(crate) stats: FeedStats,
    seq: u64,
    log: RejectLog,
    quality: Vec<InstrumentQuality>,
    feed_last_recv_ns: u64,
    feed_stale: bool,
}

impl FeedCore {
    pub(crate) fn new(
        name: &'static str,
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        let symbols = SymbolTable::new(registry, venue);
        let quality = vec![InstrumentQuality::default(); symbols.len()];
        Self {
            name,
            venue,
            stream,
            config,
            symbols,
            stats: FeedStats::default(),
            seq: 0,
            log: RejectLog::new(),
            quality,
            feed_last_recv_ns: 0,
            feed_stale: false,
        }
    }

    /// The `seq` of the last record emitted (records are numbered 1, 2, 3...).
    pub(crate) fn last_seq(&self) -> u64 {
        self.seq
    }

    /// Appends one record with the next sequence number.
    #[inline]
    pub(crate) fn push<R: Record>(
        &mut self,
        out: &mut RecordBuffer,
        ts_event: UnixNanos,
        ts_recv: UnixNanos,
        record: &R,
    ) {
        self.seq += 1;
        self.stats.records += 1;
        out.push(
            RecordHeader::new(self.stream, self.seq, ts_event, ts_recv),
            record,
        );
    }

    /// Appends a [`FeedEvent`].
    #[allow(
        clippy::too_many_arguments,
        reason = "the event's fields, named at the call"
    )]
    pub(crate) fn event(
        &mut self,
        out: &mut RecordBuffer,
        ts: (UnixNanos, UnixNanos),
        instrument: InstrumentId,
        kind: FeedEventKind,
        venue_seq: u64,
        expected: u64,
        value: i64,
    ) {
        let event = FeedEvent {
            instrument,
            kind: kind.code(),
            venue: self.venue,
            venue_seq,
            expected,
            value,
        };
        self.push(out, ts.0, ts.1, &event);
    }

    /// Start of a message: counts it and clears the feed-level staleness.
    #[inline]
    pub(crate) fn begin(&mut self, ts_recv: UnixNanos) {
        self.stats.messages += 1;
        self.feed_last_recv_ns = ts_recv.0;
        self.feed_stale = false;
    }

    /// An accepted message for `local` (if any): counts it and clears its staleness.
    #[inline]
    pub(crate) fn accepted(&mut self, kind: MessageKind, local: Option<usize>, ts_recv: UnixNanos) {
        self.stats.count_accepted(kind);
        if let Some(q) = local.and_then(|l| self.quality.get_mut(l)) {
            q.last_recv_ns = ts_recv.0;
            q.stale = false;
        }
    }

    /// A message for `local` was accepted: clears its staleness (for messages that carry
    /// several instruments; [`FeedCore::accepted`] counts the message itself).
    #[inline]
    pub(crate) fn accepted_instrument(&mut self, local: usize, ts_recv: UnixNanos) {
        if let Some(q) = self.quality.get_mut(local) {
            q.last_recv_ns = ts_recv.0;
            q.stale = false;
        }
    }

    /// Rejects a message: counts it, logs it (rate-limited), emits a `Rejected` event.
    #[cold]
    pub(crate) fn reject(
        &mut self,
        out: &mut RecordBuffer,
        ts_recv: UnixNanos,
        reject: Reject,
        local: Option<usize>,
    ) -> FeedError {
        let count = self.stats.count_rejected(reject.reason);
        if let Some(suppressed) =
            self.log
                .admit(reject.reason, ts_recv.0, self.config.reject_log_interval_ns)
        {
            tracing::warn!(
                feed = self.name,
                venue = self.venue.0,
                reason = reject.reason.name(),
                field = reject.field,
                total = count,
                suppressed,
                "market data message rejected"
            );
        }
        let instrument = local.map_or(WHOLE_FEED, |l| self.symbols.entry(l).id);
        self.event(
            out,
            (ts_recv, ts_recv),
            instrument,
            FeedEventKind::Rejected,
            0,
            0,
            i64::from(reject.reason.code()),
        );
        FeedError::Rejected(reject)
    }

    /// Reports `ts_event` going backwards for this instrument and stream class.
    #[inline]
    pub(crate) fn check_ts(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        class: TsClass,
        ts: (UnixNanos, UnixNanos),
    ) {
        let Some(q) = self.quality.get_mut(local) else {
            return;
        };
        if let Some(previous) = q.check_ts(class, ts.0.0) {
            self.stats.out_of_order += 1;
            let instrument = self.symbols.entry(local).id;
            self.event(
                out,
                ts,
                instrument,
                FeedEventKind::OutOfOrderTimestamp,
                0,
                previous,
                ts.0.0 as i64,
            );
        }
    }

    /// Reports a price far from the instrument's reference.
    #[inline]
    pub(crate) fn check_price(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        price: i64,
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        let (band, reanchor) = (
            self.config.outlier_band_bps,
            self.config.outlier_reanchor_after,
        );
        let Some(q) = self.quality.get_mut(local) else {
            return;
        };
        if let Some(reference) = q.check_price(price, band, reanchor) {
            self.stats.outliers += 1;
            let instrument = self.symbols.entry(local).id;
            self.event(
                out,
                ts,
                instrument,
                FeedEventKind::OutlierPrice,
                venue_seq,
                reference as u64,
                price,
            );
        }
    }

    /// Emits a top of book and checks it for crossing and outliers.
    pub(crate) fn top_of_book(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        top: &TopOfBook,
        ts: (UnixNanos, UnixNanos),
    ) {
        self.push(out, ts.0, ts.1, top);
        let (bid, ask) = (top.bid_price.0, top.ask_price.0);
        if bid > 0 && ask > 0 {
            if bid >= ask {
                self.stats.crossed += 1;
                self.event(
                    out,
                    ts,
                    top.instrument,
                    FeedEventKind::Crossed,
                    top.venue_seq,
                    ask as u64,
                    bid,
                );
            }
            let mid = bid / 2 + ask / 2 + (bid % 2 + ask % 2) / 2;
            self.check_price(out, local, mid, top.venue_seq, ts);
        }
    }

    /// Emits a trade and checks its price.
    pub(crate) fn trade(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        trade: &Trade,
        ts: (UnixNanos, UnixNanos),
    ) {
        self.push(out, ts.0, ts.1, trade);
        self.check_price(out, local, trade.price.0, trade.trade_id, ts);
    }

    /// Emits a snapshot: `Clear`, then a `Set` per level with a positive quantity, all
    /// flagged `FLAG_SNAPSHOT`, the last one also `FLAG_LAST`.
    pub(crate) fn snapshot(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        levels: &[Level],
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        let instrument = self.symbols.entry(local).id;
        let count = levels.iter().filter(|l| l.qty > 0).count();
        let clear_flags =
            BookDelta::FLAG_SNAPSHOT | if count == 0 { BookDelta::FLAG_LAST } else { 0 };
        let clear = BookDelta {
            instrument,
            side: 0,
            action: BookAction::Clear.code(),
            flags: clear_flags,
            venue_seq,
            ..BookDelta::default()
        };
        self.push(out, ts.0, ts.1, &clear);
        let mut remaining = count;
        for level in levels.iter().filter(|l| l.qty > 0) {
            remaining -= 1;
            let flags = BookDelta::FLAG_SNAPSHOT
                | if remaining == 0 {
                    BookDelta::FLAG_LAST
                } else {
                    0
                };
            self.delta(out, instrument, level, flags, venue_seq, ts);
        }
        self.stats.snapshots_applied += 1;
    }

    /// Emits the deltas of one update message; the last one carries `FLAG_LAST` when
    /// `ends_message`.
    pub(crate) fn update<'l>(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        levels: impl ExactSizeIterator<Item = &'l Level>,
        venue_seq: u64,
        ends_message: bool,
        ts: (UnixNanos, UnixNanos),
    ) {
        let instrument = self.symbols.entry(local).id;
        let mut remaining = levels.len();
        for level in levels {
            remaining -= 1;
            let flags = if remaining == 0 && ends_message {
                BookDelta::FLAG_LAST
            } else {
                0
            };
            self.delta(out, instrument, level, flags, venue_seq, ts);
        }
    }

    /// One `Set` (or `Delete` for quantity 0) delta.
    #[inline]
    pub(crate) fn delta(
        &mut self,
        out: &mut RecordBuffer,
        instrument: InstrumentId,
        level: &Level,
        flags: u8,
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        let action = if level.qty == 0 {
            BookAction::Delete
        } else {
            BookAction::Set
        };
        let delta = BookDelta {
            instrument,
            side: level.side.code(),
            action: action.code(),
            flags,
            _pad: 0,
            price: Price(level.price),
            qty: Qty(level.qty),
            venue_seq,
        };
        self.push(out, ts.0, ts.1, &delta);
    }

    /// Emits a Kraken-style checksum record.
    pub(crate) fn book_check(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        checksum: u32,
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        let check = BookCheck {
            instrument: self.symbols.entry(local).id,
            checksum,
            method: ChecksumMethod::KrakenCrc32.code(),
            depth: 10,
            _pad: [0; 6],
            venue_seq,
        };
        self.push(out, ts.0, ts.1, &check);
    }

    /// `BookValid` for `local`.
    pub(crate) fn book_valid(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        self.stats.books_valid += 1;
        let instrument = self.symbols.entry(local).id;
        self.event(
            out,
            ts,
            instrument,
            FeedEventKind::BookValid,
            venue_seq,
            0,
            0,
        );
    }

    /// `ResyncRequested` for `local`.
    pub(crate) fn resync_requested(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        venue_seq: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        self.stats.resyncs_requested += 1;
        let instrument = self.symbols.entry(local).id;
        self.event(
            out,
            ts,
            instrument,
            FeedEventKind::ResyncRequested,
            venue_seq,
            0,
            0,
        );
    }

    /// `Gap` then `ResyncRequested` for `local`, counting one gap.
    pub(crate) fn gap(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        venue_seq: u64,
        expected: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        self.stats.gaps += 1;
        self.gap_events(out, local, venue_seq, expected, ts);
    }

    /// `Gap` then `ResyncRequested` for `local`, without counting (a connection-wide gap
    /// reported on each of its books counts once).
    pub(crate) fn gap_events(
        &mut self,
        out: &mut RecordBuffer,
        local: usize,
        venue_seq: u64,
        expected: u64,
        ts: (UnixNanos, UnixNanos),
    ) {
        let instrument = self.symbols.entry(local).id;
        tracing::warn!(
            feed = self.name,
            instrument = instrument.0,
            venue_seq,
            expected,
            "sequence gap: book invalid, resync requested"
        );
        self.event(
            out,
            ts,
            instrument,
            FeedEventKind::Gap,
            venue_seq,
            expected,
            venue_seq as i64,
        );
        self.resync_requested(out, local, venue_seq, ts);
    }

    /// Staleness check at `now`: one `Stale` event for the feed and one per instrument
    /// that went quiet, until they hear again. Returns the number of events emitted.
    pub(crate) fn tick(&mut self, now: UnixNanos, out: &mut RecordBuffer) -> usize {
        let limit = self.config.stale_after_ns;
        let mut emitted = 0;
        if self.feed_last_recv_ns != 0 && !self.feed_stale {
            let age = now.0.saturating_sub(self.feed_last_recv_ns);
            if age > limit {
                self.feed_stale = true;
                self.stats.stale += 1;
                self.event(
                    out,
                    (now, now),
                    WHOLE_FEED,
                    FeedEventKind::Stale,
                    0,
                    limit,
                    age as i64,
                );
                emitted += 1;
            }
        }
        for local in 0..self.quality.len() {
            let q = &mut self.quality[local];
            if q.last_recv_ns == 0 || q.stale {
                continue;
            }
            let age = now.0.saturating_sub(q.last_recv_ns);
            if age > limit {
                q.stale = true;
                self.stats.stale += 1;
                let instrument = self.symbols.entry(local).id;
                self.event(
                    out,
                    (now, now),
                    instrument,
                    FeedEventKind::Stale,
                    0,
                    limit,
                    age as i64,
                );
                emitted += 1;
            }
        }
        emitted
    }
}

/// The [`FeedHandler`](crate::FeedHandler) methods every venue handler answers from its
/// [`FeedCore`] (a field named `core`): expand inside the `impl FeedHandler` block.
macro_rules! delegate_to_feed_core {
    () => {
        fn on_tick(
            &mut self,
            now: aaiti_model::UnixNanos,
            out: &mut $crate::RecordBuffer,
        ) -> usize {
            self.core.tick(now, out)
        }

        fn stats(&self) -> &$crate::FeedStats {
            &self.core.stats
        }

        fn venue(&self) -> aaiti_model::VenueId {
            self.core.venue
        }

        fn stream(&self) -> aaiti_model::StreamId {
            self.core.stream
        }

        fn last_seq(&self) -> u64 {
            self.core.last_seq()
        }
    };
}
pub(crate) use delegate_to_feed_core;
