//! The general Binance decoder over simd-json's tape: any field order, escapes, whitespace,
//! raw and combined streams, every message type. It defines what is accepted and why a
//! message is rejected; the fast path only ever agrees with it.

use aaiti_model::Side;

use super::{BinanceMarket, Ctx, Parsed, StreamKind, parse_stream};
use crate::{
    core::Level,
    error::{Reject, RejectReason},
    json::{Doc, Val, put, required, unknown},
    text,
};

/// Decodes one message into `Parsed`, its levels into `levels` (cleared by the caller).
pub(super) fn decode(
    doc: Doc<'_, '_>,
    ctx: &Ctx<'_>,
    levels: &mut Vec<Level>,
) -> Result<Parsed, Reject> {
    let root = doc.root();
    if !root.is_object() {
        return Err(Reject::new(RejectReason::UnknownMessageType, "message"));
    }
    let mut stream = None;
    let mut data = None;
    let mut event = None;
    let (mut snapshot, mut ticker, mut control, mut error) = (false, false, false, false);
    let mut count = 0;
    for (key, value) in root.object("message")? {
        count += 1;
        match key {
            "stream" => put(&mut stream, value, "stream")?,
            "data" => put(&mut data, value, "data")?,
            "e" => put(&mut event, value, "e")?,
            "lastUpdateId" => snapshot = true,
            "u" => ticker = true,
            "result" | "id" => control = true,
            "error" | "code" | "msg" => error = true,
            _ => {}
        }
    }
    if stream.is_some() || data.is_some() {
        let name = required(stream, "stream")?.bytes("stream")?;
        let data = required(data, "data")?;
        if count != 2 {
            unknown(ctx.allow_unknown)?;
        }
        let (symbol, kind) =
            parse_stream(name).ok_or(Reject::new(RejectReason::UnknownMessageType, "stream"))?;
        if !data.is_object() {
            return Err(Reject::new(RejectReason::WrongType, "data"));
        }
        return match kind {
            StreamKind::Depth => decode_depth(data, ctx, Some(symbol), false, levels),
            StreamKind::Partial => match ctx.market {
                BinanceMarket::Spot => decode_snapshot(data, ctx, Some(symbol), levels),
                BinanceMarket::UsdFutures => decode_depth(data, ctx, Some(symbol), true, levels),
            },
            StreamKind::Trade => decode_trade(data, ctx, Some(symbol), false),
            StreamKind::AggTrade => decode_trade(data, ctx, Some(symbol), true),
            StreamKind::BookTicker => decode_ticker(data, ctx, Some(symbol)),
        };
    }
    if let Some(event) = event {
        return match event.bytes("e")? {
            b"depthUpdate" => decode_depth(root, ctx, None, false, levels),
            b"trade" => decode_trade(root, ctx, None, false),
            b"aggTrade" => decode_trade(root, ctx, None, true),
            b"bookTicker" => decode_ticker(root, ctx, None),
            _ => Err(Reject::new(RejectReason::UnknownMessageType, "e")),
        };
    }
    if snapshot {
        return decode_snapshot(root, ctx, None, levels);
    }
    if ticker {
        return decode_ticker(root, ctx, None);
    }
    if control || error {
        return Ok(Parsed::Control { venue_error: error });
    }
    Err(Reject::new(RejectReason::UnknownMessageType, "message"))
}

/// The instrument of a message: its `s` field, which must name the stream's symbol.
pub(super) fn resolve(
    ctx: &Ctx<'_>,
    symbol: &[u8],
    stream_symbol: Option<&[u8]>,
) -> Result<usize, Reject> {
    if let Some(stream_symbol) = stream_symbol
        && !stream_symbol.eq_ignore_ascii_case(symbol)
    {
        return Err(Reject::new(RejectReason::Inconsistent, "s"));
    }
    ctx.symbols
        .find(symbol)
        .ok_or(Reject::new(RejectReason::UnknownSymbol, "s"))
}

/// Checks an event time in milliseconds.
pub(super) fn event_time(ms: u64, field: &'static str) -> Result<u64, Reject> {
    text::millis(ms)
        .map(|_| ms)
        .map_err(|reason| Reject::new(reason, field))
}

/// Checks a diff's update id range.
pub(super) fn update_range(first: u64, last: u64) -> Result<(), Reject> {
    if first > last {
        return Err(Reject::new(RejectReason::Inconsistent, "U"));
    }
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
        let mut pair = item.array(field)?;
        if pair.len() != 2 {
            return Err(Reject::new(RejectReason::WrongType, field));
        }
        let (Some(price), Some(qty)) = (pair.next(), pair.next()) else {
            return Err(Reject::new(RejectReason::WrongType, field));
        };
        let price = text::price(price.bytes(field)?, entry.price_scale)
            .map_err(|reason| Reject::new(reason, field))?;
        let qty = text::qty(qty.bytes(field)?, entry.qty_scale)
            .map_err(|reason| Reject::new(reason, field))?;
        if levels.len() >= ctx.max_levels {
            return Err(Reject::new(RejectReason::TooLarge, field));
        }
        levels.push(Level { side, price, qty });
    }
    Ok(())
}

fn decode_depth(
    data: Val<'_, '_>,
    ctx: &Ctx<'_>,
    stream_symbol: Option<&[u8]>,
    partial: bool,
    levels: &mut Vec<Level>,
) -> Result<Parsed, Reject> {
    let futures = ctx.market == BinanceMarket::UsdFutures;
    let (mut e, mut time, mut tx_time, mut symbol) = (None, None, None, None);
    let (mut first, mut last, mut prev, mut bids, mut asks) = (None, None, None, None, None);
    for (key, value) in data.object("data")? {
        match key {
            "e" => put(&mut e, value.bytes("e")?, "e")?,
            "E" => put(&mut time, value.u64("E")?, "E")?,
            "s" => put(&mut symbol, value.bytes("s")?, "s")?,
            "U" => put(&mut first, value.u64("U")?, "U")?,
            "u" => put(&mut last, value.u64("u")?, "u")?,
            "b" => put(&mut bids, value, "b")?,
            "a" => put(&mut asks, value, "a")?,
            "T" if futures => put(&mut tx_time, value.u64("T")?, "T")?,
            "pu" if futures => put(&mut prev, value.u64("pu")?, "pu")?,
            _ => unknown(ctx.allow_unknown)?,
        }
    }
    if required(e, "e")? != b"depthUpdate" {
        return Err(Reject::new(RejectReason::Inconsistent, "e"));
    }
    let event_ms = event_time(required(time, "E")?, "E")?;
    let local = resolve(ctx, required(symbol, "s")?, stream_symbol)?;
    let (first, last) = (required(first, "U")?, required(last, "u")?);
    update_range(first, last)?;
    let prev = if futures {
        Some(required(prev, "pu")?)
    } else {
        None
    };
    let (bids, asks) = (required(bids, "b")?, required(asks, "a")?);
    levels_of(bids, Side::Buy, local, ctx, levels, "b")?;
    levels_of(asks, Side::Sell, local, ctx, levels, "a")?;
    Ok(if partial {
        Parsed::Partial {
            local,
            venue_seq: last,
            event_ms: Some(event_ms),
        }
    } else {
        Parsed::Depth {
            local,
            event_ms,
            first,
            last,
            prev,
        }
    })
}

fn decode_snapshot(
    data: Val<'_, '_>,
    ctx: &Ctx<'_>,
    stream_symbol: Option<&[u8]>,
    levels: &mut Vec<Level>,
) -> Result<Parsed, Reject> {
    let futures = ctx.market == BinanceMarket::UsdFutures;
    let (mut id, mut time, mut tx_time, mut bids, mut asks) = (None, None, None, None, None);
    for (key, value) in data.object("data")? {
        match key {
            "lastUpdateId" => put(&mut id, value.u64("lastUpdateId")?, "lastUpdateId")?,
            "bids" => put(&mut bids, value, "bids")?,
            "asks" => put(&mut asks, value, "asks")?,
            "E" if futures => put(&mut time, value.u64("E")?, "E")?,
            "T" if futures => put(&mut tx_time, value.u64("T")?, "T")?,
            _ => unknown(ctx.allow_unknown)?,
        }
    }
    let id = required(id, "lastUpdateId")?;
    let event_ms = time.map(|ms| event_time(ms, "E")).transpose()?;
    let local = match stream_symbol {
        Some(symbol) => ctx
            .symbols
            .find_ignore_case(symbol)
            .ok_or(Reject::new(RejectReason::UnknownSymbol, "stream"))?,
        // A REST snapshot does not name its symbol: the handler says whose it is.
        None => ctx
            .snapshot_target
            .ok_or(Reject::new(RejectReason::Inconsistent, "lastUpdateId"))?,
    };
    let (bids, asks) = (required(bids, "bids")?, required(asks, "asks")?);
    levels_of(bids, Side::Buy, local, ctx, levels, "bids")?;
    levels_of(asks, Side::Sell, local, ctx, levels, "asks")?;
    Ok(if stream_symbol.is_some() {
        Parsed::Partial {
            local,
            venue_seq: id,
            event_ms,
        }
    } else {
        Parsed::Snapshot {
            local,
            last_update_id: id,
            event_ms,
        }
    })
}

fn decode_trade(
    data: Val<'_, '_>,
    ctx: &Ctx<'_>,
    stream_symbol: Option<&[u8]>,
    agg: bool,
) -> Result<Parsed, Reject> {
    let (mut e, mut time, mut symbol, mut id, mut price, mut qty) =
        (None, None, None, None, None, None);
    let (mut trade_time, mut maker, mut best, mut first, mut last) = (None, None, None, None, None);
    let (mut buyer_order, mut seller_order, mut kind) = (None, None, None);
    let spot = ctx.market == BinanceMarket::Spot;
    for (key, value) in data.object("data")? {
        match key {
            "e" => put(&mut e, value.bytes("e")?, "e")?,
            "E" => put(&mut time, value.u64("E")?, "E")?,
            "s" => put(&mut symbol, value.bytes("s")?, "s")?,
            "t" if !agg => put(&mut id, value.u64("t")?, "t")?,
            "a" if agg => put(&mut id, value.u64("a")?, "a")?,
            "p" => put(&mut price, value.bytes("p")?, "p")?,
            "q" => put(&mut qty, value.bytes("q")?, "q")?,
            "T" => put(&mut trade_time, value.u64("T")?, "T")?,
            "m" => put(&mut maker, value.bool("m")?, "m")?,
            "M" => put(&mut best, value.bool("M")?, "M")?,
            "f" if agg => put(&mut first, value.u64("f")?, "f")?,
            "l" if agg => put(&mut last, value.u64("l")?, "l")?,
            // Order ids of older spot trade messages.
            "b" if !agg && spot => put(&mut buyer_order, value.u64("b")?, "b")?,
            "a" if !agg && spot => put(&mut seller_order, value.u64("a")?, "a")?,
            // Futures trades say whether the trade was a market or a liquidation order.
            "X" if !spot => put(&mut kind, value.bytes("X")?, "X")?,
            _ => unknown(ctx.allow_unknown)?,
        }
    }
    let expected: &[u8] = if agg { b"aggTrade" } else { b"trade" };
    if required(e, "e")? != expected {
        return Err(Reject::new(RejectReason::Inconsistent, "e"));
    }
    let event_ms = event_time(required(time, "E")?, "E")?;
    let local = resolve(ctx, required(symbol, "s")?, stream_symbol)?;
    let trade_id = required(id, if agg { "a" } else { "t" })?;
    required(trade_time, "T")?;
    let buyer_is_maker = required(maker, "m")?;
    if spot {
        required(best, "M")?;
    }
    if agg {
        required(first, "f")?;
        required(last, "l")?;
    }
    let entry = ctx.symbols.entry(local);
    let price = text::price(required(price, "p")?, entry.price_scale)
        .map_err(|reason| Reject::new(reason, "p"))?;
    let qty = text::trade_qty(required(qty, "q")?, entry.qty_scale)
        .map_err(|reason| Reject::new(reason, "q"))?;
    Ok(Parsed::Trade {
        local,
        event_ms,
        trade_id,
        price,
        qty,
        buyer_is_maker,
        agg,
    })
}

fn decode_ticker(
    data: Val<'_, '_>,
    ctx: &Ctx<'_>,
    stream_symbol: Option<&[u8]>,
) -> Result<Parsed, Reject> {
    let futures = ctx.market == BinanceMarket::UsdFutures;
    let (mut e, mut time, mut tx_time, mut id, mut symbol) = (None, None, None, None, None);
    let (mut bid, mut bid_qty, mut ask, mut ask_qty) = (None, None, None, None);
    for (key, value) in data.object("data")? {
        match key {
            "u" => put(&mut id, value.u64("u")?, "u")?,
            "s" => put(&mut symbol, value.bytes("s")?, "s")?,
            "b" => put(&mut bid, value.bytes("b")?, "b")?,
            "B" => put(&mut bid_qty, value.bytes("B")?, "B")?,
            "a" => put(&mut ask, value.bytes("a")?, "a")?,
            "A" => put(&mut ask_qty, value.bytes("A")?, "A")?,
            "e" if futures => put(&mut e, value.bytes("e")?, "e")?,
            "E" if futures => put(&mut time, value.u64("E")?, "E")?,
            "T" if futures => put(&mut tx_time, value.u64("T")?, "T")?,
            _ => unknown(ctx.allow_unknown)?,
        }
    }
    if futures && required(e, "e")? != b"bookTicker" {
        return Err(Reject::new(RejectReason::Inconsistent, "e"));
    }
    let event_ms = match (futures, time) {
        (true, time) => Some(event_time(required(time, "E")?, "E")?),
        (false, _) => None,
    };
    let update_id = required(id, "u")?;
    let local = resolve(ctx, required(symbol, "s")?, stream_symbol)?;
    let entry = ctx.symbols.entry(local);
    let (ps, qs) = (entry.price_scale, entry.qty_scale);
    let bid = text::price(required(bid, "b")?, ps).map_err(|r| Reject::new(r, "b"))?;
    let bid_qty = text::qty(required(bid_qty, "B")?, qs).map_err(|r| Reject::new(r, "B"))?;
    let ask = text::price(required(ask, "a")?, ps).map_err(|r| Reject::new(r, "a"))?;
    let ask_qty = text::qty(required(ask_qty, "A")?, qs).map_err(|r| Reject::new(r, "A"))?;
    Ok(Parsed::Ticker {
        local,
        event_ms,
        update_id,
        bid,
        bid_qty,
        ask,
        ask_qty,
    })
}
