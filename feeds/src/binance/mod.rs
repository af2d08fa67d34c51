//! Binance spot and USD-M futures: combined-stream (and raw) `depthUpdate`, `trade`,
//! `aggTrade`, `bookTicker`, partial depth, the REST depth snapshot, and the documented
//! local order book procedure.
//!
//! # Book synchronisation
//!
//! Per instrument, as "How to manage a local order book correctly" says:
//!
//! * **Unsynced**: diffs are buffered (up to [`FeedConfig::max_buffered_updates`]) and
//!   [`BinanceFeed::needs_snapshot`] is true.
//! * **Snapshot** (`lastUpdateId`): spot — if it is older than the first buffered diff
//!   (`lastUpdateId < U`) it is discarded and another is requested; buffered diffs with
//!   `u <= lastUpdateId` are dropped. Futures — diffs with `u < lastUpdateId` are dropped and
//!   the first remaining must not start after `lastUpdateId`. The book is emitted (`Clear` +
//!   `Set`s), the remaining buffered diffs are applied, and `BookValid` is emitted.
//! * **Synced**: spot — the first diff must have `U <= lastUpdateId + 1 <= u`, every later one
//!   `U == previous u + 1`; diffs with `u <=` the book's id are stale and dropped. Futures —
//!   the first must have `U <= lastUpdateId <= u`, every later one `pu == previous u`.
//!   Anything else is a gap: `Gap` and `ResyncRequested` are emitted, the book goes back to
//!   Unsynced (keeping the offending diff buffered) until a new snapshot.

mod fast;
mod general;

use std::collections::VecDeque;

use aaiti_model::{
    InstrumentId, InstrumentRegistry, Price, Qty, Side, StreamId, TopOfBook, Trade, UnixNanos,
    VenueId,
};

use crate::{
    FeedHandler,
    buffer::RecordBuffer,
    config::FeedConfig,
    core::{FeedCore, Level},
    error::{FeedError, MessageKind, MessageOutcome, Reject, RejectReason},
    json::JsonParser,
    quality::TsClass,
    stats::FeedStats,
    symbols::SymbolTable,
};

/// Which Binance market a connection is on; it decides the message fields and the book
/// synchronisation rule.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinanceMarket {
    /// Spot (`stream.binance.com`): `U`/`u` chaining.
    Spot,
    /// USD-M futures (`fstream.binance.com`): `pu` chaining.
    UsdFutures,
}

/// What a combined stream's name says the payload is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum StreamKind {
    Depth,
    Partial,
    Trade,
    AggTrade,
    BookTicker,
}

/// Splits `btcusdt@depth@100ms` into the symbol and the stream kind.
fn parse_stream(name: &[u8]) -> Option<(&[u8], StreamKind)> {
    let at = name.iter().position(|&b| b == b'@')?;
    let (symbol, rest) = (&name[..at], &name[at + 1..]);
    if symbol.is_empty() {
        return None;
    }
    let (kind, speed) = match rest.iter().position(|&b| b == b'@') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let kind = match kind {
        b"depth" => StreamKind::Depth,
        b"depth5" | b"depth10" | b"depth20" => StreamKind::Partial,
        b"trade" => StreamKind::Trade,
        b"aggTrade" => StreamKind::AggTrade,
        b"bookTicker" => StreamKind::BookTicker,
        _ => return None,
    };
    if let Some(speed) = speed
        && (!matches!(kind, StreamKind::Depth | StreamKind::Partial)
            || !matches!(speed, b"100ms" | b"250ms" | b"500ms" | b"1000ms"))
    {
        return None;
    }
    Some((symbol, kind))
}

/// A decoded message; its price levels are in the handler's level scratch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Parsed {
    Depth {
        local: usize,
        event_ms: u64,
        first: u64,
        last: u64,
        prev: Option<u64>,
    },
    Snapshot {
        local: usize,
        last_update_id: u64,
        event_ms: Option<u64>,
    },
    Partial {
        local: usize,
        venue_seq: u64,
        event_ms: Option<u64>,
    },
    Trade {
        local: usize,
        event_ms: u64,
        trade_id: u64,
        price: i64,
        qty: i64,
        buyer_is_maker: bool,
        agg: bool,
    },
    Ticker {
        local: usize,
        event_ms: Option<u64>,
        update_id: u64,
        bid: i64,
        bid_qty: i64,
        ask: i64,
        ask_qty: i64,
    },
    Control {
        venue_error: bool,
    },
}

/// What the decoders need from the handler.
struct Ctx<'c> {
    symbols: &'c SymbolTable,
    market: BinanceMarket,
    allow_unknown: bool,
    max_levels: usize,
    /// The instrument a REST snapshot (which does not name its symbol) belongs to.
    snapshot_target: Option<usize>,
}

/// A diff waiting for the snapshot.
#[derive(Copy, Clone, Debug)]
struct Pending {
    first: u64,
    last: u64,
    prev: Option<u64>,
    event_ms: u64,
    ts_recv: UnixNanos,
    levels: usize,
}

/// The synchronisation state of one instrument's book.
#[derive(Debug, Default)]
struct DepthSync {
    /// The book's update id once synchronised.
    book_id: Option<u64>,
    /// No diff applied since the snapshot (the first one has its own rule).
    awaiting_first: bool,
    pending: VecDeque<Pending>,
    pending_levels: VecDeque<Level>,
}

enum Verdict {
    Apply,
    Stale,
    Gap { venue_seq: u64, expected: u64 },
}

impl DepthSync {
    fn verdict(&self, market: BinanceMarket, book_id: u64, d: &Pending) -> Verdict {
        match market {
            BinanceMarket::Spot => {
                let next = book_id.saturating_add(1);
                if d.last <= book_id {
                    Verdict::Stale
                } else if (self.awaiting_first && d.first <= next) || d.first == next {
                    Verdict::Apply
                } else {
                    Verdict::Gap {
                        venue_seq: d.first,
                        expected: next,
                    }
                }
            }
            BinanceMarket::UsdFutures => {
                if self.awaiting_first {
                    if d.last < book_id {
                        Verdict::Stale
                    } else if d.first <= book_id {
                        Verdict::Apply
                    } else {
                        Verdict::Gap {
                            venue_seq: d.first,
                            expected: book_id,
                        }
                    }
                } else if d.prev == Some(book_id) {
                    Verdict::Apply
                } else {
                    Verdict::Gap {
                        venue_seq: d.prev.unwrap_or(0),
                        expected: book_id,
                    }
                }
            }
        }
    }

    fn buffer(&mut self, diff: Pending, levels: &[Level], max: usize, stats: &mut FeedStats) {
        while self.pending.len() >= max.max(1) {
            if let Some(old) = self.pending.pop_front() {
                self.pending_levels
                    .drain(..old.levels.min(self.pending_levels.len()));
                stats.buffer_overflows += 1;
            }
        }
        self.pending.push_back(diff);
        self.pending_levels.extend(levels.iter().copied());
        stats.updates_buffered += 1;
    }

    fn drop_front(&mut self) {
        if let Some(old) = self.pending.pop_front() {
            self.pending_levels
                .drain(..old.levels.min(self.pending_levels.len()));
        }
    }
}

/// Normalizer and book synchroniser for one Binance connection (spot or USD-M futures).
///
/// Messages are combined-stream envelopes (`{"stream":..,"data":..}`) or raw stream
/// payloads; the REST depth snapshot is fed with [`BinanceFeed::on_depth_snapshot`] (or
/// through `on_message` when the connection has a single instrument, or exactly one waiting
/// for a snapshot, as in a replay of a recording).
#[derive(Debug)]
pub struct BinanceFeed {
    core: FeedCore,
    market: BinanceMarket,
    parser: JsonParser,
    levels: Vec<Level>,
    books: Vec<DepthSync>,
    streams: fast::StreamCache,
}

impl BinanceFeed {
    /// A handler for a spot connection carrying the registry's instruments of `venue`.
    pub fn new_spot(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        Self::new(registry, venue, stream, config, BinanceMarket::Spot)
    }

    /// A handler for a USD-M futures connection.
    pub fn new_usd_futures(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        Self::new(registry, venue, stream, config, BinanceMarket::UsdFutures)
    }

    /// A handler for `market`.
    pub fn new(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
        market: BinanceMarket,
    ) -> Self {
        let name = match market {
            BinanceMarket::Spot => "binance-spot",
            BinanceMarket::UsdFutures => "binance-usdm",
        };
        let core = FeedCore::new(name, registry, venue, stream, config);
        let books = (0..core.symbols.len())
            .map(|_| DepthSync::default())
            .collect();
        Self {
            core,
            market,
            parser: JsonParser::new(),
            levels: Vec::new(),
            books,
            streams: fast::StreamCache::default(),
        }
    }

    /// The market.
    pub fn market(&self) -> BinanceMarket {
        self.market
    }

    /// Normalizes one message received at `ts_recv`, appending its records to `out`.
    ///
    /// # Errors
    ///
    /// [`FeedError::Rejected`] for bad input; a `Rejected` event is appended and nothing
    /// else changes.
    pub fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        self.core.begin(ts_recv);
        match self.decode(bytes, None) {
            Ok(parsed) => Ok(self.apply(parsed, ts_recv, out)),
            Err(reject) => Err(self.core.reject(out, ts_recv, reject, None)),
        }
    }

    /// Applies a REST depth snapshot (`GET /api/v3/depth`, `/fapi/v1/depth`) for
    /// `instrument`.
    ///
    /// # Errors
    ///
    /// As [`BinanceFeed::on_message`]; `UnknownSymbol` if the instrument is not on this
    /// connection, `UnknownMessageType` if the bytes are not a depth snapshot.
    pub fn on_depth_snapshot(
        &mut self,
        instrument: InstrumentId,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        self.core.begin(ts_recv);
        let Some(local) = self.core.symbols.find_id(instrument) else {
            let reject = Reject::new(RejectReason::UnknownSymbol, "instrument");
            return Err(self.core.reject(out, ts_recv, reject, None));
        };
        match self.decode(bytes, Some(local)) {
            Ok(parsed @ Parsed::Snapshot { .. }) => Ok(self.apply(parsed, ts_recv, out)),
            Ok(_) => {
                let reject = Reject::new(RejectReason::UnknownMessageType, "snapshot");
                Err(self.core.reject(out, ts_recv, reject, Some(local)))
            }
            Err(reject) => Err(self.core.reject(out, ts_recv, reject, Some(local))),
        }
    }

    /// True while `instrument`'s book waits for a snapshot (at start and after a gap).
    pub fn needs_snapshot(&self, instrument: InstrumentId) -> bool {
        self.core
            .symbols
            .find_id(instrument)
            .is_some_and(|local| self.books[local].book_id.is_none())
    }

    /// The instruments waiting for a snapshot.
    pub fn instruments_needing_snapshot(&self) -> impl Iterator<Item = InstrumentId> + '_ {
        self.core
            .symbols
            .ids()
            .zip(&self.books)
            .filter(|(_, b)| b.book_id.is_none())
            .map(|(id, _)| id)
    }

    /// The book's update id (`lastUpdateId` or the last applied `u`) if synchronised.
    pub fn book_update_id(&self, instrument: InstrumentId) -> Option<u64> {
        self.core
            .symbols
            .find_id(instrument)
            .and_then(|local| self.books[local].book_id)
    }

    /// Decodes a message. `snapshot_target`: whose book a REST snapshot is; `None`: the
    /// connection's only instrument, or the only one waiting for a snapshot.
    fn decode(
        &mut self,
        bytes: &mut [u8],
        snapshot_target: Option<usize>,
    ) -> Result<Parsed, Reject> {
        let Self {
            core,
            market,
            parser,
            levels,
            books,
            streams,
        } = self;
        let mut ctx = Ctx {
            symbols: &core.symbols,
            market: *market,
            allow_unknown: core.config.allow_unknown_fields,
            max_levels: core.config.max_levels_per_message,
            snapshot_target,
        };
        levels.clear();
        if core.config.fast_path {
            if let Some(parsed) = fast::parse(bytes, &ctx, streams, levels) {
                core.stats.fast_path_hits += 1;
                return Ok(parsed);
            }
            core.stats.fast_path_fallbacks += 1;
            levels.clear();
        }
        if ctx.snapshot_target.is_none() {
            ctx.snapshot_target = default_snapshot_target(books);
        }
        parser.parse(bytes, |doc| general::decode(doc, &ctx, levels))
    }

    fn apply(
        &mut self,
        parsed: Parsed,
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> MessageOutcome {
        match parsed {
            Parsed::Depth {
                local,
                event_ms,
                first,
                last,
                prev,
            } => {
                let diff = Pending {
                    first,
                    last,
                    prev,
                    event_ms,
                    ts_recv,
                    levels: self.levels.len(),
                };
                self.core
                    .accepted(MessageKind::BookUpdate, Some(local), ts_recv);
                let ts = (UnixNanos::from_millis(event_ms), ts_recv);
                self.core.check_ts(out, local, TsClass::Book, ts);
                self.on_diff(local, diff, out)
            }
            Parsed::Snapshot {
                local,
                last_update_id,
                event_ms,
            } => {
                self.core
                    .accepted(MessageKind::BookSnapshot, Some(local), ts_recv);
                let ts_event = event_ms.map_or(ts_recv, UnixNanos::from_millis);
                self.on_snapshot(local, last_update_id, (ts_event, ts_recv), out)
            }
            Parsed::Partial {
                local,
                venue_seq,
                event_ms,
            } => {
                self.core
                    .accepted(MessageKind::PartialBook, Some(local), ts_recv);
                let ts_event = event_ms.map_or(ts_recv, UnixNanos::from_millis);
                let ts = (ts_event, ts_recv);
                if event_ms.is_some() {
                    self.core.check_ts(out, local, TsClass::Book, ts);
                }
                self.core.snapshot(out, local, &self.levels, venue_seq, ts);
                MessageOutcome::Applied(MessageKind::PartialBook)
            }
            Parsed::Trade {
                local,
                event_ms,
                trade_id,
                price,
                qty,
                buyer_is_maker,
                agg,
            } => {
                let kind = if agg {
                    MessageKind::AggTrade
                } else {
                    MessageKind::Trade
                };
                self.core.accepted(kind, Some(local), ts_recv);
                let trade = Trade {
                    instrument: self.core.symbols.entry(local).id,
                    aggressor: if buyer_is_maker {
                        Side::Sell
                    } else {
                        Side::Buy
                    }
                    .code(),
                    _pad: [0; 3],
                    price: Price(price),
                    qty: Qty(qty),
                    trade_id,
                };
                let ts = (UnixNanos::from_millis(event_ms), ts_recv);
                self.core.trade(out, local, &trade, ts);
                self.core.check_ts(out, local, TsClass::Trade, ts);
                MessageOutcome::Applied(kind)
            }
            Parsed::Ticker {
                local,
                event_ms,
                update_id,
                bid,
                bid_qty,
                ask,
                ask_qty,
            } => {
                self.core
                    .accepted(MessageKind::Ticker, Some(local), ts_recv);
                let top = TopOfBook {
                    instrument: self.core.symbols.entry(local).id,
                    _pad: 0,
                    bid_price: Price(bid),
                    bid_qty: Qty(bid_qty),
                    ask_price: Price(ask),
                    ask_qty: Qty(ask_qty),
                    venue_seq: update_id,
                };
                let ts = (event_ms.map_or(ts_recv, UnixNanos::from_millis), ts_recv);
                self.core.top_of_book(out, local, &top, ts);
                if event_ms.is_some() {
                    self.core.check_ts(out, local, TsClass::Ticker, ts);
                }
                MessageOutcome::Applied(MessageKind::Ticker)
            }
            Parsed::Control { venue_error } => {
                self.core.accepted(MessageKind::Control, None, ts_recv);
                if venue_error {
                    self.core.stats.venue_errors += 1;
                    tracing::warn!(feed = self.core.name, "venue reported an error");
                }
                MessageOutcome::Control
            }
        }
    }

    fn on_diff(&mut self, local: usize, diff: Pending, out: &mut RecordBuffer) -> MessageOutcome {
        let kind = MessageKind::BookUpdate;
        let book = &mut self.books[local];
        let Some(book_id) = book.book_id else {
            book.buffer(
                diff,
                &self.levels,
                self.core.config.max_buffered_updates,
                &mut self.core.stats,
            );
            return MessageOutcome::Buffered(kind);
        };
        let ts = (UnixNanos::from_millis(diff.event_ms), diff.ts_recv);
        match book.verdict(self.market, book_id, &diff) {
            Verdict::Stale => {
                self.core.stats.updates_dropped += 1;
                MessageOutcome::Dropped(kind)
            }
            Verdict::Apply => {
                book.book_id = Some(diff.last);
                book.awaiting_first = false;
                self.core.stats.updates_applied += 1;
                self.core
                    .update(out, local, self.levels.iter(), diff.last, true, ts);
                MessageOutcome::Applied(kind)
            }
            Verdict::Gap {
                venue_seq,
                expected,
            } => {
                book.book_id = None;
                book.buffer(
                    diff,
                    &self.levels,
                    self.core.config.max_buffered_updates,
                    &mut self.core.stats,
                );
                self.core.gap(out, local, venue_seq, expected, ts);
                MessageOutcome::Buffered(kind)
            }
        }
    }

    fn on_snapshot(
        &mut self,
        local: usize,
        id: u64,
        ts: (UnixNanos, UnixNanos),
        out: &mut RecordBuffer,
    ) -> MessageOutcome {
        let kind = MessageKind::BookSnapshot;
        let book = &mut self.books[local];
        // A snapshot while synchronised replaces the book; nothing is buffered then.
        let too_old = match self.market {
            BinanceMarket::Spot => {
                let too_old = book.pending.front().is_some_and(|first| id < first.first);
                if !too_old {
                    while book.pending.front().is_some_and(|p| p.last <= id) {
                        book.drop_front();
                        self.core.stats.updates_dropped += 1;
                    }
                }
                too_old
            }
            BinanceMarket::UsdFutures => {
                while book.pending.front().is_some_and(|p| p.last < id) {
                    book.drop_front();
                    self.core.stats.updates_dropped += 1;
                }
                book.pending.front().is_some_and(|first| first.first > id)
            }
        };
        if too_old {
            self.core.stats.snapshots_discarded += 1;
            tracing::info!(
                feed = self.core.name,
                last_update_id = id,
                "snapshot older than the buffered diffs: requesting another"
            );
            self.core.resync_requested(out, local, id, ts);
            return MessageOutcome::Dropped(kind);
        }
        self.core.snapshot(out, local, &self.levels, id, ts);
        let book = &mut self.books[local];
        book.book_id = Some(id);
        book.awaiting_first = true;
        // Apply the buffered diffs with the same rules as live ones.
        while let Some(&diff) = book.pending.front() {
            let book_id = book.book_id.unwrap_or(id);
            let diff_ts = (UnixNanos::from_millis(diff.event_ms), diff.ts_recv);
            match book.verdict(self.market, book_id, &diff) {
                Verdict::Stale => {
                    self.core.stats.updates_dropped += 1;
                    book.drop_front();
                }
                Verdict::Apply => {
                    book.book_id = Some(diff.last);
                    book.awaiting_first = false;
                    self.core.stats.updates_applied += 1;
                    let levels = book.pending_levels.range(..diff.levels);
                    self.core
                        .update(out, local, levels, diff.last, true, diff_ts);
                    book.drop_front();
                }
                Verdict::Gap {
                    venue_seq,
                    expected,
                } => {
                    book.book_id = None;
                    self.core.gap(out, local, venue_seq, expected, diff_ts);
                    return MessageOutcome::Applied(kind);
                }
            }
        }
        let book_id = book.book_id.unwrap_or(id);
        self.core.book_valid(out, local, book_id, ts);
        MessageOutcome::Applied(kind)
    }
}

/// The book a REST snapshot without a symbol belongs to: the connection's only instrument,
/// or the only one waiting for a snapshot.
fn default_snapshot_target(books: &[DepthSync]) -> Option<usize> {
    if books.len() == 1 {
        return Some(0);
    }
    let mut waiting = books
        .iter()
        .enumerate()
        .filter(|(_, b)| b.book_id.is_none());
    match (waiting.next(), waiting.next()) {
        (Some((local, _)), None) => Some(local),
        _ => None,
    }
}

impl FeedHandler for BinanceFeed {
    fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        BinanceFeed::on_message(self, bytes, ts_recv, out)
    }

    crate::core::delegate_to_feed_core!();

    fn is_book_valid(&self, instrument: InstrumentId) -> bool {
        self.book_update_id(instrument).is_some()
    }

    fn request_resync(
        &mut self,
        instrument: InstrumentId,
        now: UnixNanos,
        out: &mut RecordBuffer,
    ) -> bool {
        let Some(local) = self.core.symbols.find_id(instrument) else {
            return false;
        };
        let book = &mut self.books[local];
        let id = book.book_id.take().unwrap_or(0);
        book.pending.clear();
        book.pending_levels.clear();
        self.core.resync_requested(out, local, id, (now, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(
            parse_stream(b"btcusdt@depth@100ms"),
            Some((&b"btcusdt"[..], StreamKind::Depth))
        );
        assert_eq!(
            parse_stream(b"btcusdt@depth"),
            Some((&b"btcusdt"[..], StreamKind::Depth))
        );
        assert_eq!(
            parse_stream(b"btcusdt@depth20@100ms"),
            Some((&b"btcusdt"[..], StreamKind::Partial))
        );
        assert_eq!(
            parse_stream(b"btcusdt@bookTicker"),
            Some((&b"btcusdt"[..], StreamKind::BookTicker))
        );
        assert_eq!(
            parse_stream(b"btcusdt@aggTrade"),
            Some((&b"btcusdt"[..], StreamKind::AggTrade))
        );
        assert_eq!(parse_stream(b"btcusdt@trade@100ms"), None);
        assert_eq!(parse_stream(b"btcusdt@kline_1m"), None);
        assert_eq!(parse_stream(b"@trade"), None);
        assert_eq!(parse_stream(b"btcusdt"), None);
    }
}
