//! Coinbase Exchange (`ws-feed.exchange.coinbase.com`): `snapshot`, `l2update`, `match`,
//! `last_match`, `ticker`, `subscriptions`, `heartbeat`, `error`; and Coinbase Advanced
//! Trade (`advanced-trade-ws.coinbase.com`): `l2_data` (level2) with its connection-wide
//! `sequence_num`, `heartbeats` and `subscriptions`.
//!
//! # Books
//!
//! Exchange `level2`: the `snapshot` makes the book valid, `l2update`s apply on top of it
//! (dropped while no snapshot has arrived). The channel has no sequence numbers, so a lost
//! update cannot be detected here; `venue_seq` of the deltas is a per-instrument counter of
//! book messages. Advanced Trade: every message carries `sequence_num`, one counter for the
//! connection; a jump is a gap for every book of the connection (`Gap` and
//! `ResyncRequested` each), which stay invalid until their next snapshot; `venue_seq` is the
//! `sequence_num`.

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
    json::{Doc, JsonParser, Val, put, required, unknown},
    quality::TsClass,
    symbols::SymbolTable,
    text,
};

/// One book event of a message; its levels are `levels[start..end]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct BookIr {
    local: usize,
    snapshot: bool,
    start: usize,
    end: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Parsed {
    /// Exchange `snapshot`/`l2update` or Advanced Trade `l2_data`: events in `entries`.
    Book {
        ts_event: Option<UnixNanos>,
        sequence: Option<u64>,
    },
    Trade {
        local: usize,
        trade: TradeIr,
        ts_event: UnixNanos,
    },
    Ticker {
        local: usize,
        top: TickerIr,
        ts_event: Option<UnixNanos>,
    },
    Control {
        venue_error: bool,
        sequence: Option<u64>,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct TradeIr {
    id: u64,
    price: i64,
    qty: i64,
    aggressor: Side,
    last: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct TickerIr {
    sequence: u64,
    bid: i64,
    bid_qty: i64,
    ask: i64,
    ask_qty: i64,
}

#[derive(Debug, Default, Clone)]
struct CoinbaseBook {
    synced: bool,
    messages: u64,
}

/// Normalizer for one Coinbase connection (Exchange or Advanced Trade market data).
#[derive(Debug)]
pub struct CoinbaseFeed {
    core: FeedCore,
    parser: JsonParser,
    levels: Vec<Level>,
    entries: Vec<BookIr>,
    books: Vec<CoinbaseBook>,
    /// Advanced Trade: the last `sequence_num`.
    sequence: Option<u64>,
}

impl CoinbaseFeed {
    /// A handler for the registry's instruments of `venue` (product ids: `BTC-USD`).
    pub fn new(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        let core = FeedCore::new("coinbase", registry, venue, stream, config);
        let n = core.symbols.len();
        Self {
            core,
            parser: JsonParser::new(),
            levels: Vec::new(),
            entries: Vec::new(),
            books: vec![CoinbaseBook::default(); n],
            sequence: None,
        }
    }

    /// Normalizes one message received at `ts_recv`.
    ///
    /// # Errors
    ///
    /// [`FeedError::Rejected`] for bad input (a `Rejected` event is appended, nothing else
    /// changes).
    pub fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        self.core.begin(ts_recv);
        let Self {
            core,
            parser,
            levels,
            entries,
            ..
        } = self;
        levels.clear();
        entries.clear();
        let ctx = Ctx {
            symbols: &core.symbols,
            config: &core.config,
        };
        let parsed = parser.parse(bytes, |doc| decode(doc, &ctx, levels, entries));
        match parsed {
            Ok(parsed) => Ok(self.apply(parsed, ts_recv, out)),
            Err(reject) => Err(self.core.reject(out, ts_recv, reject, None)),
        }
    }

    fn check_sequence(
        &mut self,
        sequence: Option<u64>,
        ts: (UnixNanos, UnixNanos),
        out: &mut RecordBuffer,
    ) {
        let Some(sequence) = sequence else { return };
        if let Some(previous) = self.sequence
            && sequence != previous.wrapping_add(1)
        {
            self.core.stats.gaps += 1;
            for local in 0..self.books.len() {
                if self.books[local].synced {
                    self.books[local].synced = false;
                    let expected = previous.wrapping_add(1);
                    self.core.gap_events(out, local, sequence, expected, ts);
                }
            }
        }
        self.sequence = Some(sequence);
    }

    fn apply(
        &mut self,
        parsed: Parsed,
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> MessageOutcome {
        match parsed {
            Parsed::Book { ts_event, sequence } => {
                let ts = (ts_event.unwrap_or(ts_recv), ts_recv);
                self.check_sequence(sequence, ts, out);
                let mut outcome = MessageOutcome::Control;
                for i in 0..self.entries.len() {
                    let entry = self.entries[i];
                    let local = entry.local;
                    let kind = if entry.snapshot {
                        MessageKind::BookSnapshot
                    } else {
                        MessageKind::BookUpdate
                    };
                    self.core.accepted(kind, Some(local), ts_recv);
                    let levels = &self.levels[entry.start..entry.end];
                    let book = &mut self.books[local];
                    if entry.snapshot {
                        book.messages += 1;
                        book.synced = true;
                        let seq = sequence.unwrap_or(book.messages);
                        self.core.snapshot(out, local, levels, seq, ts);
                        self.core.book_valid(out, local, seq, ts);
                        outcome = MessageOutcome::Applied(kind);
                    } else if book.synced {
                        book.messages += 1;
                        let seq = sequence.unwrap_or(book.messages);
                        self.core.stats.updates_applied += 1;
                        if ts_event.is_some() {
                            self.core.check_ts(out, local, TsClass::Book, ts);
                        }
                        self.core.update(out, local, levels.iter(), seq, true, ts);
                        outcome = MessageOutcome::Applied(kind);
                    } else {
                        self.core.stats.updates_dropped += 1;
                        outcome = MessageOutcome::Dropped(kind);
                    }
                }
                if self.entries.is_empty() {
                    self.core.accepted(MessageKind::Control, None, ts_recv);
                }
                outcome
            }
            Parsed::Trade {
                local,
                trade: t,
                ts_event,
            } => {
                self.core.accepted(MessageKind::Trade, Some(local), ts_recv);
                let trade = Trade {
                    instrument: self.core.symbols.entry(local).id,
                    aggressor: t.aggressor.code(),
                    _pad: [0; 3],
                    price: Price(t.price),
                    qty: Qty(t.qty),
                    trade_id: t.id,
                };
                let ts = (ts_event, ts_recv);
                self.core.trade(out, local, &trade, ts);
                // `last_match` replays the previous trade on subscription: not a time step.
                if !t.last {
                    self.core.check_ts(out, local, TsClass::Trade, ts);
                }
                MessageOutcome::Applied(MessageKind::Trade)
            }
            Parsed::Ticker {
                local,
                top: t,
                ts_event,
            } => {
                self.core
                    .accepted(MessageKind::Ticker, Some(local), ts_recv);
                let top = TopOfBook {
                    instrument: self.core.symbols.entry(local).id,
                    _pad: 0,
                    bid_price: Price(t.bid),
                    bid_qty: Qty(t.bid_qty),
                    ask_price: Price(t.ask),
                    ask_qty: Qty(t.ask_qty),
                    venue_seq: t.sequence,
                };
                let ts = (ts_event.unwrap_or(ts_recv), ts_recv);
                self.core.top_of_book(out, local, &top, ts);
                if ts_event.is_some() {
                    self.core.check_ts(out, local, TsClass::Ticker, ts);
                }
                MessageOutcome::Applied(MessageKind::Ticker)
            }
            Parsed::Control {
                venue_error,
                sequence,
            } => {
                self.check_sequence(sequence, (ts_recv, ts_recv), out);
                self.core.accepted(MessageKind::Control, None, ts_recv);
                if venue_error {
                    self.core.stats.venue_errors += 1;
                    tracing::warn!(feed = self.core.name, "venue reported an error");
                }
                MessageOutcome::Control
            }
        }
    }
}

struct Ctx<'c> {
    symbols: &'c SymbolTable,
    config: &'c FeedConfig,
}

impl Ctx<'_> {
    fn product(&self, symbol: Option<&[u8]>) -> Result<usize, Reject> {
        let symbol = required(symbol, "product_id")?;
        self.symbols
            .find(symbol)
            .ok_or(Reject::new(RejectReason::UnknownSymbol, "product_id"))
    }

    fn unknown(&self) -> Result<(), Reject> {
        unknown(self.config.allow_unknown_fields)
    }
}

fn decode(
    doc: Doc<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    entries: &mut Vec<BookIr>,
) -> Result<Parsed, Reject> {
    let root = doc.root();
    if !root.is_object() {
        return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
    }
    let (mut kind, mut channel) = (None, None);
    for (key, value) in root.object("message")? {
        match key {
            "type" => put(&mut kind, value.bytes("type")?, "type")?,
            "channel" => put(&mut channel, value.bytes("channel")?, "channel")?,
            _ => {}
        }
    }
    if let Some(channel) = channel {
        return decode_advanced(root, channel, ctx, levels, entries);
    }
    match required(kind, "type")? {
        b"snapshot" => decode_snapshot(root, ctx, levels, entries),
        b"l2update" => decode_l2update(root, ctx, levels, entries),
        b"match" => decode_match(root, ctx, false),
        b"last_match" => decode_match(root, ctx, true),
        b"ticker" => decode_ticker(root, ctx),
        b"subscriptions" | b"heartbeat" => Ok(Parsed::Control {
            venue_error: false,
            sequence: None,
        }),
        b"error" => Ok(Parsed::Control {
            venue_error: true,
            sequence: None,
        }),
        _ => Err(Reject::new(RejectReason::UnknownMessageType, "type")),
    }
}

fn side_levels(
    value: Val<'_, '_>,
    side: Side,
    local: usize,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    field: &'static str,
) -> Result<(), Reject> {
    let entry = ctx.symbols.entry(local);
    for item in value.array(field)? {
        let mut pair = item.array(field)?;
        if pair.len() != 2 {
            return Err(Reject::new(RejectReason::WrongType, field));
        }
        let (Some(price), Some(qty)) = (pair.next(), pair.next()) else {
            return Err(Reject::new(RejectReason::WrongType, field));
        };
        let price = text::price(price.bytes(field)?, entry.price_scale)
            .map_err(|r| Reject::new(r, field))?;
        let qty =
            text::qty(qty.bytes(field)?, entry.qty_scale).map_err(|r| Reject::new(r, field))?;
        push_level(levels, Level { side, price, qty }, ctx, field)?;
    }
    Ok(())
}

#[inline]
fn push_level(
    levels: &mut Vec<Level>,
    level: Level,
    ctx: &Ctx<'_>,
    field: &'static str,
) -> Result<(), Reject> {
    if levels.len() >= ctx.config.max_levels_per_message {
        return Err(Reject::new(RejectReason::TooLarge, field));
    }
    levels.push(level);
    Ok(())
}

fn decode_snapshot(
    root: Val<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    entries: &mut Vec<BookIr>,
) -> Result<Parsed, Reject> {
    let (mut product, mut bids, mut asks, mut time) = (None, None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "type" => {}
            "product_id" => put(&mut product, value.bytes("product_id")?, "product_id")?,
            "bids" => put(&mut bids, value, "bids")?,
            "asks" => put(&mut asks, value, "asks")?,
            "time" => put(&mut time, value.bytes("time")?, "time")?,
            _ => ctx.unknown()?,
        }
    }
    let local = ctx.product(product)?;
    let ts_event = time
        .map(text::iso8601)
        .transpose()
        .map_err(|r| Reject::new(r, "time"))?;
    side_levels(
        required(bids, "bids")?,
        Side::Buy,
        local,
        ctx,
        levels,
        "bids",
    )?;
    side_levels(
        required(asks, "asks")?,
        Side::Sell,
        local,
        ctx,
        levels,
        "asks",
    )?;
    entries.push(BookIr {
        local,
        snapshot: true,
        start: 0,
        end: levels.len(),
    });
    Ok(Parsed::Book {
        ts_event,
        sequence: None,
    })
}

fn decode_l2update(
    root: Val<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    entries: &mut Vec<BookIr>,
) -> Result<Parsed, Reject> {
    let (mut product, mut changes, mut time) = (None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "type" => {}
            "product_id" => put(&mut product, value.bytes("product_id")?, "product_id")?,
            "changes" => put(&mut changes, value, "changes")?,
            "time" => put(&mut time, value.bytes("time")?, "time")?,
            _ => ctx.unknown()?,
        }
    }
    let local = ctx.product(product)?;
    let ts_event = text::iso8601(required(time, "time")?).map_err(|r| Reject::new(r, "time"))?;
    let entry = ctx.symbols.entry(local);
    let field = "changes";
    for change in required(changes, field)?.array(field)? {
        let mut parts = change.array(field)?;
        if parts.len() != 3 {
            return Err(Reject::new(RejectReason::WrongType, field));
        }
        let (Some(side), Some(price), Some(qty)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Reject::new(RejectReason::WrongType, field));
        };
        let side = match side.bytes(field)? {
            b"buy" => Side::Buy,
            b"sell" => Side::Sell,
            _ => return Err(Reject::new(RejectReason::Inconsistent, field)),
        };
        let price = text::price(price.bytes(field)?, entry.price_scale)
            .map_err(|r| Reject::new(r, field))?;
        let qty =
            text::qty(qty.bytes(field)?, entry.qty_scale).map_err(|r| Reject::new(r, field))?;
        push_level(levels, Level { side, price, qty }, ctx, field)?;
    }
    entries.push(BookIr {
        local,
        snapshot: false,
        start: 0,
        end: levels.len(),
    });
    Ok(Parsed::Book {
        ts_event: Some(ts_event),
        sequence: None,
    })
}

fn decode_match(root: Val<'_, '_>, ctx: &Ctx<'_>, last: bool) -> Result<Parsed, Reject> {
    let (mut id, mut side, mut size, mut price, mut product, mut time, mut sequence) =
        (None, None, None, None, None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "type" => {}
            "trade_id" => put(&mut id, value.u64("trade_id")?, "trade_id")?,
            "maker_order_id" | "taker_order_id" => {
                value.str("order id")?;
            }
            // Present on authenticated connections.
            "profile_id" | "user_id" | "taker_user_id" | "taker_profile_id" | "maker_user_id"
            | "maker_profile_id" | "taker_fee_rate" | "maker_fee_rate" => {}
            "side" => put(&mut side, value.bytes("side")?, "side")?,
            "size" => put(&mut size, value.bytes("size")?, "size")?,
            "price" => put(&mut price, value.bytes("price")?, "price")?,
            "product_id" => put(&mut product, value.bytes("product_id")?, "product_id")?,
            "sequence" => put(&mut sequence, value.u64("sequence")?, "sequence")?,
            "time" => put(&mut time, value.bytes("time")?, "time")?,
            _ => ctx.unknown()?,
        }
    }
    let local = ctx.product(product)?;
    let entry = ctx.symbols.entry(local);
    // `side` is the maker's: the taker (aggressor) is on the other side.
    let aggressor = match required(side, "side")? {
        b"buy" => Side::Sell,
        b"sell" => Side::Buy,
        _ => return Err(Reject::new(RejectReason::Inconsistent, "side")),
    };
    let price = text::price(required(price, "price")?, entry.price_scale)
        .map_err(|r| Reject::new(r, "price"))?;
    let qty = text::trade_qty(required(size, "size")?, entry.qty_scale)
        .map_err(|r| Reject::new(r, "size"))?;
    let ts_event = text::iso8601(required(time, "time")?).map_err(|r| Reject::new(r, "time"))?;
    required(sequence, "sequence")?;
    let trade = TradeIr {
        id: required(id, "trade_id")?,
        price,
        qty,
        aggressor,
        last,
    };
    Ok(Parsed::Trade {
        local,
        trade,
        ts_event,
    })
}

fn decode_ticker(root: Val<'_, '_>, ctx: &Ctx<'_>) -> Result<Parsed, Reject> {
    let (mut sequence, mut product, mut bid, mut ask, mut bid_size, mut ask_size, mut time) =
        (None, None, None, None, None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "type" => {}
            "sequence" => put(&mut sequence, value.u64("sequence")?, "sequence")?,
            "product_id" => put(&mut product, value.bytes("product_id")?, "product_id")?,
            "best_bid" => put(&mut bid, value.bytes("best_bid")?, "best_bid")?,
            "best_ask" => put(&mut ask, value.bytes("best_ask")?, "best_ask")?,
            "best_bid_size" => put(
                &mut bid_size,
                value.bytes("best_bid_size")?,
                "best_bid_size",
            )?,
            "best_ask_size" => put(
                &mut ask_size,
                value.bytes("best_ask_size")?,
                "best_ask_size",
            )?,
            "time" => put(&mut time, value.bytes("time")?, "time")?,
            "price" | "open_24h" | "volume_24h" | "low_24h" | "high_24h" | "volume_30d"
            | "side" | "last_size" => {
                value.str("ticker field")?;
            }
            "trade_id" => {
                value.u64("trade_id")?;
            }
            _ => ctx.unknown()?,
        }
    }
    let local = ctx.product(product)?;
    let entry = ctx.symbols.entry(local);
    let (ps, qs) = (entry.price_scale, entry.qty_scale);
    let bid =
        text::price(required(bid, "best_bid")?, ps).map_err(|r| Reject::new(r, "best_bid"))?;
    let ask =
        text::price(required(ask, "best_ask")?, ps).map_err(|r| Reject::new(r, "best_ask"))?;
    let size = |text: Option<&[u8]>, field| {
        text.map_or(Ok(0), |t| {
            text::qty(t, qs).map_err(|r| Reject::new(r, field))
        })
    };
    let bid_qty = size(bid_size, "best_bid_size")?;
    let ask_qty = size(ask_size, "best_ask_size")?;
    let ts_event = time
        .map(text::iso8601)
        .transpose()
        .map_err(|r| Reject::new(r, "time"))?;
    let top = TickerIr {
        sequence: required(sequence, "sequence")?,
        bid,
        bid_qty,
        ask,
        ask_qty,
    };
    Ok(Parsed::Ticker {
        local,
        top,
        ts_event,
    })
}

/// Advanced Trade: `{"channel":..,"client_id":..,"timestamp":..,"sequence_num":..,"events":[..]}`.
fn decode_advanced(
    root: Val<'_, '_>,
    channel: &[u8],
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    entries: &mut Vec<BookIr>,
) -> Result<Parsed, Reject> {
    let (mut time, mut sequence, mut events) = (None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "channel" => {}
            "client_id" => {
                value.str("client_id")?;
            }
            "timestamp" => put(&mut time, value.bytes("timestamp")?, "timestamp")?,
            "sequence_num" => put(&mut sequence, value.u64("sequence_num")?, "sequence_num")?,
            "events" => put(&mut events, value, "events")?,
            _ => ctx.unknown()?,
        }
    }
    let sequence = Some(required(sequence, "sequence_num")?);
    let ts_event =
        text::iso8601(required(time, "timestamp")?).map_err(|r| Reject::new(r, "timestamp"))?;
    let events = required(events, "events")?;
    match channel {
        b"l2_data" => {
            for event in events.array("events")? {
                decode_l2_event(event, ctx, levels, entries)?;
            }
            Ok(Parsed::Book {
                ts_event: Some(ts_event),
                sequence,
            })
        }
        b"heartbeats" | b"subscriptions" => {
            events.array("events")?;
            Ok(Parsed::Control {
                venue_error: false,
                sequence,
            })
        }
        _ => Err(Reject::new(RejectReason::UnknownMessageType, "channel")),
    }
}

fn decode_l2_event(
    event: Val<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    entries: &mut Vec<BookIr>,
) -> Result<(), Reject> {
    let (mut kind, mut product, mut updates) = (None, None, None);
    for (key, value) in event.object("events")? {
        match key {
            "type" => put(&mut kind, value.bytes("type")?, "type")?,
            "product_id" => put(&mut product, value.bytes("product_id")?, "product_id")?,
            "updates" => put(&mut updates, value, "updates")?,
            _ => ctx.unknown()?,
        }
    }
    let snapshot = match required(kind, "type")? {
        b"snapshot" => true,
        b"update" => false,
        _ => return Err(Reject::new(RejectReason::UnknownMessageType, "type")),
    };
    let local = ctx.product(product)?;
    let entry = ctx.symbols.entry(local);
    let start = levels.len();
    for update in required(updates, "updates")?.array("updates")? {
        let (mut side, mut time, mut price, mut qty) = (None, None, None, None);
        for (key, value) in update.object("updates")? {
            match key {
                "side" => put(&mut side, value.bytes("side")?, "side")?,
                "event_time" => put(&mut time, value.bytes("event_time")?, "event_time")?,
                "price_level" => put(&mut price, value.bytes("price_level")?, "price_level")?,
                "new_quantity" => put(&mut qty, value.bytes("new_quantity")?, "new_quantity")?,
                _ => ctx.unknown()?,
            }
        }
        let side = match required(side, "side")? {
            b"bid" => Side::Buy,
            b"offer" | b"ask" => Side::Sell,
            _ => return Err(Reject::new(RejectReason::Inconsistent, "side")),
        };
        text::iso8601(required(time, "event_time")?).map_err(|r| Reject::new(r, "event_time"))?;
        let price = text::price(required(price, "price_level")?, entry.price_scale)
            .map_err(|r| Reject::new(r, "price_level"))?;
        let qty = text::qty(required(qty, "new_quantity")?, entry.qty_scale)
            .map_err(|r| Reject::new(r, "new_quantity"))?;
        push_level(levels, Level { side, price, qty }, ctx, "updates")?;
    }
    entries.push(BookIr {
        local,
        snapshot,
        start,
        end: levels.len(),
    });
    Ok(())
}

impl FeedHandler for CoinbaseFeed {
    fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        CoinbaseFeed::on_message(self, bytes, ts_recv, out)
    }

    crate::core::delegate_to_feed_core!();

    fn is_book_valid(&self, instrument: InstrumentId) -> bool {
        self.core
            .symbols
            .find_id(instrument)
            .is_some_and(|local| self.books[local].synced)
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
        self.books[local].synced = false;
        let seq = self.books[local].messages;
        self.core.resync_requested(out, local, seq, (now, now));
        true
    }
}
