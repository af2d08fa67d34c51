//! Kraken WebSocket v1 (`wss://ws.kraken.com`): `book-N` and `trade` channel messages,
//! which are JSON arrays `[channelID, payload..., channelName, pair]`, and the event
//! objects (`heartbeat`, `systemStatus`, `subscriptionStatus`, `pong`, `error`).

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
    json::{Doc, JsonParser, Val, put, unknown},
    quality::TsClass,
    symbols::SymbolTable,
    text,
};

/// Depths Kraken v1 offers for `book` subscriptions.
const DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

/// One decoded trade (levels scratch holds nothing for trades).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct TradeIr {
    price: i64,
    qty: i64,
    side: Side,
    time: UnixNanos,
    id: Option<u64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Parsed {
    Snapshot {
        local: usize,
        depth: usize,
        ts_event: Option<UnixNanos>,
    },
    Update {
        local: usize,
        depth: usize,
        checksum: Option<u32>,
        ts_event: Option<UnixNanos>,
        republished: u32,
    },
    Trades {
        local: usize,
    },
    Control {
        venue_error: bool,
    },
}

/// Normalizer for one Kraken WebSocket v1 connection (book and trade channels).
#[derive(Debug)]
pub struct KrakenV1Feed {
    core: FeedCore,
    parser: JsonParser,
    levels: Vec<Level>,
    trades: Vec<TradeIr>,
    books: Vec<KrakenBook>,
    trade_counts: Vec<u64>,
    scratch: Scratch,
}

impl KrakenV1Feed {
    /// A handler for the registry's instruments of `venue` (symbols as Kraken v1 writes
    /// them: `XBT/USD`).
    pub fn new(
        registry: &InstrumentRegistry,
        venue: VenueId,
        stream: StreamId,
        config: FeedConfig,
    ) -> Self {
        let core = FeedCore::new("kraken-v1", registry, venue, stream, config);
        let n = core.symbols.len();
        Self {
            core,
            parser: JsonParser::new(),
            levels: Vec::new(),
            trades: Vec::new(),
            books: (0..n).map(|_| KrakenBook::default()).collect(),
            trade_counts: vec![0; n],
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
            trades,
            ..
        } = self;
        levels.clear();
        trades.clear();
        let ctx = Ctx {
            symbols: &core.symbols,
            config: &core.config,
        };
        let parsed = parser.parse(bytes, |doc| decode(doc, &ctx, levels, trades));
        match parsed {
            Ok(parsed) => Ok(self.apply(parsed, ts_recv, out)),
            Err(reject) => Err(self.core.reject(out, ts_recv, reject, None)),
        }
    }

    /// True once the instrument's book has its snapshot (and no resync was requested since).
    pub fn is_synced(&self, instrument: InstrumentId) -> bool {
        self.core
            .symbols
            .find_id(instrument)
            .is_some_and(|local| self.books[local].synced)
    }

    fn apply(
        &mut self,
        parsed: Parsed,
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> MessageOutcome {
        match parsed {
            Parsed::Snapshot {
                local,
                depth,
                ts_event,
            } => {
                self.core
                    .accepted(MessageKind::BookSnapshot, Some(local), ts_recv);
                let ts = (ts_event.unwrap_or(ts_recv), ts_recv);
                apply_snapshot(
                    &mut self.core,
                    out,
                    local,
                    &mut self.books[local],
                    &self.levels,
                    depth,
                    None,
                    ts,
                    &mut self.scratch,
                )
            }
            Parsed::Update {
                local,
                depth,
                checksum,
                ts_event,
                republished,
            } => {
                self.core.stats.republished_levels += u64::from(republished);
                self.core
                    .accepted(MessageKind::BookUpdate, Some(local), ts_recv);
                let ts = (ts_event.unwrap_or(ts_recv), ts_recv);
                if ts_event.is_some() {
                    self.core.check_ts(out, local, TsClass::Book, ts);
                }
                apply_update(
                    &mut self.core,
                    out,
                    local,
                    &mut self.books[local],
                    &self.levels,
                    depth,
                    checksum,
                    ts,
                    &mut self.scratch,
                )
            }
            Parsed::Trades { local } => {
                self.core.accepted(MessageKind::Trade, Some(local), ts_recv);
                let instrument = self.core.symbols.entry(local).id;
                for i in 0..self.trades.len() {
                    let t = self.trades[i];
                    self.trade_counts[local] += 1;
                    let trade = Trade {
                        instrument,
                        aggressor: t.side.code(),
                        _pad: [0; 3],
                        price: Price(t.price),
                        qty: Qty(t.qty),
                        trade_id: t.id.unwrap_or(self.trade_counts[local]),
                    };
                    let ts = (t.time, ts_recv);
                    self.core.trade(out, local, &trade, ts);
                    self.core.check_ts(out, local, TsClass::Trade, ts);
                }
                MessageOutcome::Applied(MessageKind::Trade)
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

fn decode(
    doc: Doc<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    trades: &mut Vec<TradeIr>,
) -> Result<Parsed, Reject> {
    let root = doc.root();
    if root.is_object() {
        return decode_event(root);
    }
    let items = root
        .array("message")
        .map_err(|_| Reject::new(RejectReason::UnknownMessageType, "message"))?;
    let n = items.len();
    if n < 4 {
        return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
    }
    let items: ItemsVec<'_, '_> = ItemsVec::collect(items)?;
    items.get(0)?.u64("channelID")?;
    let name = items.get(n - 2)?.bytes("channelName")?;
    let pair = items.get(n - 1)?.bytes("pair")?;
    let payload = 1..n - 2;
    if let Some(depth) = name.strip_prefix(b"book-") {
        let depth = text::unsigned(depth)
            .and_then(|d| DEPTHS.iter().copied().find(|&x| x as u64 == d))
            .ok_or(Reject::new(RejectReason::UnknownMessageType, "channelName"))?;
        let local = ctx
            .symbols
            .find(pair)
            .ok_or(Reject::new(RejectReason::UnknownSymbol, "pair"))?;
        if payload.len() > 2 {
            return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
        }
        decode_book(&items, payload, local, depth, ctx, levels)
    } else if name == b"trade" {
        let local = ctx
            .symbols
            .find(pair)
            .ok_or(Reject::new(RejectReason::UnknownSymbol, "pair"))?;
        if payload.len() != 1 {
            return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
        }
        decode_trades(items.get(1)?, local, ctx, trades)
    } else {
        Err(Reject::new(RejectReason::UnknownMessageType, "channelName"))
    }
}

/// The (at most five) top-level array elements, by position.
struct ItemsVec<'t, 'a> {
    items: [Option<Val<'t, 'a>>; 5],
}

impl<'t, 'a> ItemsVec<'t, 'a> {
    fn collect(items: crate::json::Items<'t, 'a>) -> Result<Self, Reject> {
        let mut out = [None; 5];
        for (i, item) in items.enumerate() {
            *out.get_mut(i)
                .ok_or(Reject::new(RejectReason::UnknownMessageType, "message"))? = Some(item);
        }
        Ok(Self { items: out })
    }

    fn get(&self, i: usize) -> Result<Val<'t, 'a>, Reject> {
        self.items
            .get(i)
            .copied()
            .flatten()
            .ok_or(Reject::new(RejectReason::UnknownMessageType, "message"))
    }
}

fn decode_event(root: Val<'_, '_>) -> Result<Parsed, Reject> {
    let mut event = None;
    let mut status = None;
    for (key, value) in root.object("message")? {
        match key {
            "event" => put(&mut event, value.bytes("event")?, "event")?,
            "status" => put(&mut status, value, "status")?,
            _ => {}
        }
    }
    let event = event.ok_or(Reject::new(RejectReason::UnknownMessageType, "event"))?;
    let error = status.is_some_and(|s| s.str("status").is_ok_and(|s| s == "error"));
    match event {
        b"heartbeat" | b"pong" | b"systemStatus" | b"subscriptionStatus" => {
            Ok(Parsed::Control { venue_error: error })
        }
        b"error" => Ok(Parsed::Control { venue_error: true }),
        _ => Err(Reject::new(RejectReason::UnknownMessageType, "event")),
    }
}

fn decode_book(
    items: &ItemsVec<'_, '_>,
    payload: std::ops::Range<usize>,
    local: usize,
    depth: usize,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
) -> Result<Parsed, Reject> {
    let (mut asks_snap, mut bids_snap, mut asks, mut bids, mut checksum) =
        (None, None, None, None, None);
    let mut update_objects = 0;
    for i in payload {
        let mut any = false;
        for (key, value) in items.get(i)?.object("book")? {
            any = true;
            match key {
                "as" => put(&mut asks_snap, value, "as")?,
                "bs" => put(&mut bids_snap, value, "bs")?,
                "a" => put(&mut asks, value, "a")?,
                "b" => put(&mut bids, value, "b")?,
                "c" => put(&mut checksum, value.bytes("c")?, "c")?,
                _ => unknown(ctx.config.allow_unknown_fields)?,
            }
        }
        if !any {
            return Err(Reject::new(RejectReason::MissingField, "book"));
        }
        update_objects += 1;
    }
    let snapshot = asks_snap.is_some() || bids_snap.is_some();
    if snapshot && (asks.is_some() || bids.is_some() || checksum.is_some() || update_objects != 1) {
        return Err(Reject::new(RejectReason::Inconsistent, "book"));
    }
    let mut meta = LevelMeta::default();
    let mut side_levels =
        |value: Option<Val<'_, '_>>, side: Side, field: &'static str| -> Result<(), Reject> {
            if let Some(value) = value {
                levels_of(value, side, local, ctx, levels, &mut meta, field)?;
            }
            Ok(())
        };
    if snapshot {
        side_levels(asks_snap, Side::Sell, "as")?;
        side_levels(bids_snap, Side::Buy, "bs")?;
        return Ok(Parsed::Snapshot {
            local,
            depth,
            ts_event: meta.latest,
        });
    }
    if asks.is_none() && bids.is_none() {
        return Err(Reject::new(RejectReason::MissingField, "a"));
    }
    side_levels(asks, Side::Sell, "a")?;
    side_levels(bids, Side::Buy, "b")?;
    let checksum = checksum
        .map(|c| {
            text::unsigned(c)
                .ok_or(Reject::new(RejectReason::BadNumber, "c"))
                .and_then(|v| {
                    u32::try_from(v).map_err(|_| Reject::new(RejectReason::NumberOutOfRange, "c"))
                })
        })
        .transpose()?;
    Ok(Parsed::Update {
        local,
        depth,
        checksum,
        ts_event: meta.latest,
        republished: meta.republished,
    })
}

/// What the levels of a book message say besides prices and quantities.
#[derive(Default)]
struct LevelMeta {
    /// The latest level timestamp (the message's event time).
    latest: Option<UnixNanos>,
    /// Levels flagged `"r"`.
    republished: u32,
}

fn levels_of(
    value: Val<'_, '_>,
    side: Side,
    local: usize,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
    meta: &mut LevelMeta,
    field: &'static str,
) -> Result<(), Reject> {
    let entry = ctx.symbols.entry(local);
    for item in value.array(field)? {
        let mut parts = item.array(field)?;
        let len = parts.len();
        if !(3..=4).contains(&len) {
            return Err(Reject::new(RejectReason::WrongType, field));
        }
        let (Some(price), Some(qty), Some(time)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Reject::new(RejectReason::WrongType, field));
        };
        if let Some(flag) = parts.next()
            && flag.bytes(field)? != b"r"
        {
            return Err(Reject::new(RejectReason::Inconsistent, field));
        }
        meta.republished += u32::from(len == 4);
        let price = text::price(price.bytes(field)?, entry.price_scale)
            .map_err(|r| Reject::new(r, field))?;
        let qty =
            text::qty(qty.bytes(field)?, entry.qty_scale).map_err(|r| Reject::new(r, field))?;
        let time = text::unix_seconds(time.bytes(field)?).map_err(|r| Reject::new(r, field))?;
        meta.latest = Some(meta.latest.map_or(time, |t| t.max(time)));
        if levels.len() >= ctx.config.max_levels_per_message {
            return Err(Reject::new(RejectReason::TooLarge, field));
        }
        levels.push(Level { side, price, qty });
    }
    Ok(())
}

fn decode_trades(
    value: Val<'_, '_>,
    local: usize,
    ctx: &Ctx<'_>,
    trades: &mut Vec<TradeIr>,
) -> Result<Parsed, Reject> {
    let entry = ctx.symbols.entry(local);
    let field = "trade";
    for item in value.array(field)? {
        let mut parts = item.array(field)?;
        if !(6..=7).contains(&parts.len()) {
            return Err(Reject::new(RejectReason::WrongType, field));
        }
        let (Some(price), Some(qty), Some(time), Some(side), Some(kind), Some(misc)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Reject::new(RejectReason::WrongType, field));
        };
        let id = parts.next().map(|id| id.u64(field)).transpose()?;
        let price = text::price(price.bytes(field)?, entry.price_scale)
            .map_err(|r| Reject::new(r, field))?;
        let qty = text::trade_qty(qty.bytes(field)?, entry.qty_scale)
            .map_err(|r| Reject::new(r, field))?;
        let time = text::unix_seconds(time.bytes(field)?).map_err(|r| Reject::new(r, field))?;
        let side = match side.bytes(field)? {
            b"b" => Side::Buy,
            b"s" => Side::Sell,
            _ => return Err(Reject::new(RejectReason::Inconsistent, field)),
        };
        if !matches!(kind.bytes(field)?, b"l" | b"m") {
            return Err(Reject::new(RejectReason::Inconsistent, field));
        }
        misc.bytes(field)?;
        if trades.len() >= ctx.config.max_levels_per_message {
            return Err(Reject::new(RejectReason::TooLarge, field));
        }
        trades.push(TradeIr {
            price,
            qty,
            side,
            time,
            id,
        });
    }
    Ok(Parsed::Trades { local })
}

impl FeedHandler for KrakenV1Feed {
    fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError> {
        KrakenV1Feed::on_message(self, bytes, ts_recv, out)
    }

    crate::core::delegate_to_feed_core!();

    fn is_book_valid(&self, instrument: InstrumentId) -> bool {
        self.is_synced(instrument)
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
