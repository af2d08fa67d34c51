//! Kraken WebSocket v2 (`wss://ws.kraken.com/v2`): `book` and `trade` channels, whose
//! prices and quantities are JSON numbers (read back as their exact text, never through a
//! float), `heartbeat`/`status` channels and method responses.

use aaiti_model::{
    InstrumentId, InstrumentRegistry, Price, Qty, Side, StreamId, Trade, UnixNanos, VenueId,
};

use super::{KrakenBook, Scratch, apply_snapshot, apply_update};
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

/// Depths Kraken v2 offers for `book` subscriptions.
const DEPTHS: [u64; 5] = [10, 25, 100, 500, 1000];

/// One book entry of a message (`data[i]`); its levels are `levels[start..end]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct BookIr {
    local: usize,
    checksum: u32,
    ts_event: Option<UnixNanos>,
    start: usize,
    end: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct TradeIr {
    local: usize,
    price: i64,
    qty: i64,
    side: Side,
    id: u64,
    time: UnixNanos,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Parsed {
    Book {
        snapshot: bool,
    },
    Trades,
    /// A `book` subscription acknowledged at this depth.
    Subscribed {
        local: usize,
        depth: usize,
    },
    Control {
        venue_error: bool,
    },
}

/// Normalizer for one Kraken WebSocket v2 connection (book and trade channels).
#[derive(Debug)]
pub struct KrakenV2Feed {
    core: FeedCore,
    parser: JsonParser,
    levels: Vec<Level>,
    entries: Vec<BookIr>,
    trades: Vec<TradeIr>,
    books: Vec<KrakenBook>,
    depths: Vec<usize>,
    scratch: Scratch,
}

impl KrakenV2Feed {
    /// A handler for the registry's instruments of `venue` (symbols as Kraken v2 writes
    /// them: `BTC/USD`). Book depth is [`FeedConfig::kraken_v2_default_depth`] until a
    /// subscribe acknowledgement gives it.
    pub fn new(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        let depth = usize::from(config.kraken_v2_default_depth);
        let core = FeedCore::new("kraken-v2", registry, venue, stream, config);
        let n = core.symbols.len();
        Self {
            core,
            parser: JsonParser::new(),
            levels: Vec::new(),
            entries: Vec::new(),
            trades: Vec::new(),
            books: (0..n).map(|_| KrakenBook::default()).collect(),
            depths: vec![depth; n],
            scratch: Scratch::default(),
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
            trades,
            ..
        } = self;
        levels.clear();
        entries.clear();
        trades.clear();
        let ctx = Ctx {
            symbols: &core.symbols,
            config: &core.config,
        };
        let mut sinks = Sinks {
            levels,
            entries,
            trades,
        };
        let parsed = parser.parse_keeping_numbers(bytes, |doc| decode(doc, &ctx, &mut sinks));
        match parsed {
            Ok(parsed) => Ok(self.apply(parsed, ts_recv, out)),
            Err(reject) => Err(self.core.reject(out, ts_recv, reject, None)),
        }
    }

    /// The book depth used for `instrument` (from the subscribe acknowledgement).
    pub fn depth(&self, instrument: InstrumentId) -> Option<usize> {
        self.core
            .symbols
            .find_id(instrument)
            .map(|local| self.depths[local])
    }

    fn apply(
        &mut self,
        parsed: Parsed,
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> MessageOutcome {
        match parsed {
            Parsed::Book { snapshot } => {
                let kind = if snapshot {
                    MessageKind::BookSnapshot
                } else {
                    MessageKind::BookUpdate
                };
                let mut outcome = MessageOutcome::Applied(kind);
                for i in 0..self.entries.len() {
                    let entry = self.entries[i];
                    let local = entry.local;
                    self.core.accepted(kind, Some(local), ts_recv);
                    let ts = (entry.ts_event.unwrap_or(ts_recv), ts_recv);
                    let levels = &self.levels[entry.start..entry.end];
                    let depth = self.depths[local];
                    let book = &mut self.books[local];
                    let checksum = Some(entry.checksum);
                    outcome = if snapshot {
                        apply_snapshot(
                            &mut self.core,
                            out,
                            local,
                            book,
                            levels,
                            depth,
                            checksum,
                            ts,
                            &mut self.scratch,
                        )
                    } else {
                        if entry.ts_event.is_some() {
                            self.core.check_ts(out, local, TsClass::Book, ts);
                        }
                        apply_update(
                            &mut self.core,
                            out,
                            local,
                            book,
                            levels,
                            depth,
                            checksum,
                            ts,
                            &mut self.scratch,
                        )
                    };
                }
                if self.entries.is_empty() {
                    self.core.accepted(kind, None, ts_recv);
                }
                outcome
            }
            Parsed::Trades => {
                self.core.accepted(MessageKind::Trade, None, ts_recv);
                for i in 0..self.trades.len() {
                    let t = self.trades[i];
                    let trade = Trade {
                        instrument: self.core.symbols.entry(t.local).id,
                        aggressor: t.side.code(),
                        _pad: [0; 3],
                        price: Price(t.price),
                        qty: Qty(t.qty),
                        trade_id: t.id,
                    };
                    let ts = (t.time, ts_recv);
                    self.core.accepted_instrument(t.local, ts_recv);
                    self.core.trade(out, t.local, &trade, ts);
                    self.core.check_ts(out, t.local, TsClass::Trade, ts);
                }
                MessageOutcome::Applied(MessageKind::Trade)
            }
            Parsed::Subscribed { local, depth } => {
                self.core.accepted(MessageKind::Control, None, ts_recv);
                self.depths[local] = depth;
                MessageOutcome::Control
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
}

struct Ctx<'c> {
    symbols: &'c SymbolTable,
    config: &'c FeedConfig,
}

struct Sinks<'s> {
    levels: &'s mut Vec<Level>,
    entries: &'s mut Vec<BookIr>,
    trades: &'s mut Vec<TradeIr>,
}

fn decode(doc: Doc<'_, '_>, ctx: &Ctx<'_>, sinks: &mut Sinks<'_>) -> Result<Parsed, Reject> {
    let root = doc.root();
    if !root.is_object() {
        return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
    }
    let (mut channel, mut kind, mut data, mut method, mut success, mut result) =
        (None, None, None, None, None, None);
    for (key, value) in root.object("message")? {
        match key {
            "channel" => put(&mut channel, value.bytes("channel")?, "channel")?,
            "type" => put(&mut kind, value.bytes("type")?, "type")?,
            "data" => put(&mut data, value, "data")?,
            "method" => put(&mut method, value.bytes("method")?, "method")?,
            "success" => put(&mut success, value.bool("success")?, "success")?,
            "result" => put(&mut result, value, "result")?,
            _ => {}
        }
    }
    if let Some(method) = method {
        return decode_response(method, success, result, ctx);
    }
    match required(channel, "channel")? {
        b"book" => {
            let snapshot = match required(kind, "type")? {
                b"snapshot" => true,
                b"update" => false,
                _ => return Err(Reject::new(RejectReason::UnknownMessageType, "type")),
            };
            check_keys(root, &["channel", "type", "data"], ctx)?;
            for entry in required(data, "data")?.array("data")? {
                decode_book_entry(entry, snapshot, ctx, sinks)?;
            }
            Ok(Parsed::Book { snapshot })
        }
        b"trade" => {
            if !matches!(required(kind, "type")?, b"snapshot" | b"update") {
                return Err(Reject::new(RejectReason::UnknownMessageType, "type"));
            }
            check_keys(root, &["channel", "type", "data"], ctx)?;
            for entry in required(data, "data")?.array("data")? {
                decode_trade(entry, ctx, sinks)?;
            }
            Ok(Parsed::Trades)
        }
        b"heartbeat" | b"status" => Ok(Parsed::Control { venue_error: false }),
        _ => Err(Reject::new(RejectReason::UnknownMessageType, "channel")),
    }
}

/// Rejects keys other than `allowed` (unless configured to ignore them).
fn check_keys(object: Val<'_, '_>, allowed: &[&str], ctx: &Ctx<'_>) -> Result<(), Reject> {
    for (key, _) in object.object("message")? {
        if !allowed.contains(&key) {
            unknown(ctx.config.allow_unknown_fields)?;
        }
    }
    Ok(())
}

fn decode_response(
    method: &[u8],
    success: Option<bool>,
    result: Option<Val<'_, '_>>,
    ctx: &Ctx<'_>,
) -> Result<Parsed, Reject> {
    if !matches!(method, b"subscribe" | b"unsubscribe" | b"pong") {
        return Err(Reject::new(RejectReason::UnknownMessageType, "method"));
    }
    if success == Some(false) {
        return Ok(Parsed::Control { venue_error: true });
    }
    if method == b"subscribe"
        && let Some(result) = result
        && result.is_object()
    {
        let (mut channel, mut depth, mut symbol) = (None, None, None);
        for (key, value) in result.object("result")? {
            match key {
                "channel" => channel = Some(value.bytes("channel")?),
                "depth" => depth = Some(value.u64("depth")?),
                "symbol" => symbol = Some(value.bytes("symbol")?),
                _ => {}
            }
        }
        if let (Some(b"book"), Some(depth), Some(symbol)) = (channel, depth, symbol) {
            let depth = DEPTHS
                .iter()
                .find(|&&d| d == depth)
                .ok_or(Reject::new(RejectReason::Inconsistent, "depth"))?;
            let local = ctx
                .symbols
                .find(symbol)
                .ok_or(Reject::new(RejectReason::UnknownSymbol, "symbol"))?;
            return Ok(Parsed::Subscribed {
                local,
                depth: *depth as usize,
            });
        }
    }
    Ok(Parsed::Control { venue_error: false })
}

fn decode_book_entry(
    entry: Val<'_, '_>,
    snapshot: bool,
    ctx: &Ctx<'_>,
    sinks: &mut Sinks<'_>,
) -> Result<(), Reject> {
    let (mut symbol, mut bids, mut asks, mut checksum, mut time) = (None, None, None, None, None);
    for (key, value) in entry.object("data")? {
        match key {
            "symbol" => put(&mut symbol, value.bytes("symbol")?, "symbol")?,
            "bids" => put(&mut bids, value, "bids")?,
            "asks" => put(&mut asks, value, "asks")?,
            "checksum" => put(&mut checksum, value.u64("checksum")?, "checksum")?,
            "timestamp" => put(&mut time, value.bytes("timestamp")?, "timestamp")?,
            _ => unknown(ctx.config.allow_unknown_fields)?,
        }
    }
    let local = ctx
        .symbols
        .find(required(symbol, "symbol")?)
        .ok_or(Reject::new(RejectReason::UnknownSymbol, "symbol"))?;
    let checksum = u32::try_from(required(checksum, "checksum")?)
        .map_err(|_| Reject::new(RejectReason::NumberOutOfRange, "checksum"))?;
    let ts_event = time
        .map(text::iso8601)
        .transpose()
        .map_err(|r| Reject::new(r, "timestamp"))?;
    if !snapshot && ts_event.is_none() {
        return Err(Reject::new(RejectReason::MissingField, "timestamp"));
    }
    let start = sinks.levels.len();
    // Asks first then bids, the order of Kraken's checksum (the book does not care).
    levels_of(
        required(asks, "asks")?,
        Side::Sell,
        local,
        ctx,
        sinks.levels,
        "asks",
    )?;
    levels_of(
        required(bids, "bids")?,
        Side::Buy,
        local,
        ctx,
        sinks.levels,
        "bids",
    )?;
    sinks.entries.push(BookIr {
        local,
        checksum,
        ts_event,
        start,
        end: sinks.levels.len(),
    });
    Ok(())
}

fn levels_of(
    value: Val<'_, '_>,
    side: Side,
    local: usize,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    field: &'static str,
) -> Result<(), Reject> {
    let entry = ctx.symbols.entry(local);
    for item in value.array(field)? {
        let (mut price, mut qty) = (None, None);
        for (key, value) in item.object(field)? {
            match key {
                "price" => put(&mut price, value.number_text("price")?, "price")?,
                "qty" => put(&mut qty, value.number_text("qty")?, "qty")?,
                _ => unknown(ctx.config.allow_unknown_fields)?,
            }
        }
        let price = text::price(required(price, "price")?, entry.price_scale)
            .map_err(|r| Reject::new(r, "price"))?;
        let qty =
            text::qty(required(qty, "qty")?, entry.qty_scale).map_err(|r| Reject::new(r, "qty"))?;
        if levels.len() >= ctx.config.max_levels_per_message {
            return Err(Reject::new(RejectReason::TooLarge, field));
        }
        levels.push(Level { side, price, qty });
    }
    Ok(())
}

fn decode_trade(entry: Val<'_, '_>, ctx: &Ctx<'_>, sinks: &mut Sinks<'_>) -> Result<(), Reject> {
    let (mut symbol, mut side, mut price, mut qty, mut kind, mut id, mut time) =
        (None, None, None, None, None, None, None);
    for (key, value) in entry.object("data")? {
        match key {
            "symbol" => put(&mut symbol, value.bytes("symbol")?, "symbol")?,
            "side" => put(&mut side, value.bytes("side")?, "side")?,
            "price" => put(&mut price, value.number_text("price")?, "price")?,
            "qty" => put(&mut qty, value.number_text("qty")?, "qty")?,
            "ord_type" => put(&mut kind, value.bytes("ord_type")?, "ord_type")?,
            "trade_id" => put(&mut id, value.u64("trade_id")?, "trade_id")?,
            "timestamp" => put(&mut time, value.bytes("timestamp")?, "timestamp")?,
            _ => unknown(ctx.config.allow_unknown_fields)?,
        }
    }
    let local = ctx
        .symbols
        .find(required(symbol, "symbol")?)
        .ok_or(Reject::new(RejectReason::UnknownSymbol, "symbol"))?;
    let side = match required(side, "side")? {
        b"buy" => Side::Buy,
        b"sell" => Side::Sell,
        _ => return Err(Reject::new(RejectReason::Inconsistent, "side")),
    };
    if !matches!(required(kind, "ord_type")?, b"market" | b"limit") {
        return Err(Reject::new(RejectReason::Inconsistent, "ord_type"));
    }
    let entry = ctx.symbols.entry(local);
    let price = text::price(required(price, "price")?, entry.price_scale)
        .map_err(|r| Reject::new(r, "price"))?;
    let qty = text::trade_qty(required(qty, "qty")?, entry.qty_scale)
        .map_err(|r| Reject::new(r, "qty"))?;
    let time =
        text::iso8601(required(time, "timestamp")?).map_err(|r| Reject::new(r, "timestamp"))?;
    let id = required(id, "trade_id")?;
    if sinks.trades.len() >= ctx.config.max_levels_per_message {
        return Err(Reject::new(RejectReason::TooLarge, "data"));
    }
    sinks.trades.push(TradeIr {
        local,
        price,
        qty,
        side,
        id,
        time,
    });
    Ok(())
}

impl FeedHandler for KrakenV2Feed {
    fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        KrakenV2Feed::on_message(self, bytes, ts_recv, out)
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
        let book = &mut self.books[local];
        book.synced = false;
        let seq = book.messages;
        self.core.resync_requested(out, local, seq, (now, now));
        true
    }
}
