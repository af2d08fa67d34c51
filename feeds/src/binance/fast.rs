//! The fast path: hand-written validating scanners for the exact shapes Binance sends on
//! its combined streams — spot `depthUpdate`, `trade` and `bookTicker`, and USD-M futures
//! `depthUpdate` — in Binance's field order, without whitespace or escapes.
//!
//! The contract is "accept or defer": a scanner returns `Some` only when the bytes are a
//! valid JSON document of that exact shape whose values all pass the same checks as the
//! general path (they call the same functions), so the result equals what the general path
//! returns; anything else — another shape, whitespace, an escape, a non-ASCII byte, any
//! invalid value — returns `None` and the general path decides (and picks the reject
//! reason). The differential tests (`tests/differential.rs`) check this on mutated real
//! messages.
//!
//! Why it is faster: one forward pass with no tape, no string unescaping and no key
//! lookups; decimal strings go straight to `parse_fixed`, which also validates them.

use aaiti_model::Side;

use super::{BinanceMarket, Ctx, Parsed, StreamKind, general, parse_stream};
use crate::{core::Level, text};

/// A forward-only cursor over the message bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes `expected` exactly.
    #[inline(always)]
    fn lit(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at + expected.len();
        if self.bytes.get(self.at..end)? == expected {
            self.at = end;
            Some(())
        } else {
            None
        }
    }

    #[inline(always)]
    fn next_byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// The bytes up to the next `"`, which is consumed. The caller validates the content
    /// (a decimal parser accepts no `\`, control or non-ASCII byte, so an escaped quote can
    /// never be mistaken for the end).
    #[inline(always)]
    fn until_quote(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.at..)?;
        let len = rest.iter().position(|&b| b == b'"')?;
        self.at += len + 1;
        Some(&rest[..len])
    }

    /// A JSON string of printable ASCII without escapes, after its opening quote.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let text = self.until_quote()?;
        text.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
            .then_some(text)
    }

    /// A JSON integer `0 | [1-9][0-9]*` of at most 19 digits (so it fits a `u64`).
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.at..)?;
        let len = rest
            .iter()
            .take(20)
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len().min(20));
        if len == 0 || len > 19 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        let mut value = 0u64;
        for &b in &rest[..len] {
            value = value * 10 + u64::from(b - b'0');
        }
        self.at += len;
        Some(value)
    }

    #[inline(always)]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    #[inline(always)]
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Tries the fast path; `None` means "ask the general path".
#[inline]
pub(super) fn parse(bytes: &[u8], ctx: &Ctx<'_>, levels: &mut Vec<Level>) -> Option<Parsed> {
    let mut c = Cursor { bytes, at: 0 };
    c.lit(br#"{"stream":""#)?;
    let stream = c.plain_string()?;
    c.lit(br#","data":{"#)?;
    let (stream_symbol, kind) = parse_stream(stream)?;
    match (kind, ctx.market) {
        (StreamKind::Depth, market) => depth(&mut c, ctx, stream_symbol, market, levels),
        (StreamKind::Trade, BinanceMarket::Spot) => trade(&mut c, ctx, stream_symbol),
        (StreamKind::BookTicker, BinanceMarket::Spot) => ticker(&mut c, ctx, stream_symbol),
        _ => None,
    }
}

#[inline]
fn symbol(c: &mut Cursor<'_>, ctx: &Ctx<'_>, stream_symbol: &[u8]) -> Option<usize> {
    let symbol = c.plain_string()?;
    general::resolve(ctx, symbol, Some(stream_symbol)).ok()
}

#[inline]
fn depth(
    c: &mut Cursor<'_>,
    ctx: &Ctx<'_>,
    stream_symbol: &[u8],
    market: BinanceMarket,
    levels: &mut Vec<Level>,
) -> Option<Parsed> {
    c.lit(br#""e":"depthUpdate","E":"#)?;
    let event_ms = general::event_time(c.uint()?, "E").ok()?;
    if market == BinanceMarket::UsdFutures {
        c.lit(br#","T":"#)?;
        c.uint()?;
    }
    c.lit(br#","s":""#)?;
    let local = symbol(c, ctx, stream_symbol)?;
    c.lit(br#","U":"#)?;
    let first = c.uint()?;
    c.lit(br#","u":"#)?;
    let last = c.uint()?;
    general::update_range(first, last).ok()?;
    let prev = if market == BinanceMarket::UsdFutures {
        c.lit(br#","pu":"#)?;
        Some(c.uint()?)
    } else {
        None
    };
    c.lit(br#","b":"#)?;
    side_levels(c, ctx, local, Side::Buy, levels)?;
    c.lit(br#","a":"#)?;
    side_levels(c, ctx, local, Side::Sell, levels)?;
    c.lit(b"}}")?;
    c.at_end().then_some(Parsed::Depth {
        local,
        event_ms,
        first,
        last,
        prev,
    })
}

#[inline]
fn side_levels(
    c: &mut Cursor<'_>,
    ctx: &Ctx<'_>,
    local: usize,
    side: Side,
    levels: &mut Vec<Level>,
) -> Option<()> {
    let entry = ctx.symbols.entry(local);
    let (price_scale, qty_scale) = (entry.price_scale, entry.qty_scale);
    c.lit(b"[")?;
    if c.lit(b"]").is_some() {
        return Some(());
    }
    loop {
        c.lit(br#"[""#)?;
        let price = text::price(c.until_quote()?, price_scale).ok()?;
        c.lit(br#",""#)?;
        let qty = text::qty(c.until_quote()?, qty_scale).ok()?;
        c.lit(b"]")?;
        if levels.len() >= ctx.max_levels {
            return None;
        }
        levels.push(Level { side, price, qty });
        match c.next_byte()? {
            b',' => {}
            b']' => return Some(()),
            _ => return None,
        }
    }
}

#[inline]
fn trade(c: &mut Cursor<'_>, ctx: &Ctx<'_>, stream_symbol: &[u8]) -> Option<Parsed> {
    c.lit(br#""e":"trade","E":"#)?;
    let event_ms = general::event_time(c.uint()?, "E").ok()?;
    c.lit(br#","s":""#)?;
    let local = symbol(c, ctx, stream_symbol)?;
    c.lit(br#","t":"#)?;
    let trade_id = c.uint()?;
    let entry = ctx.symbols.entry(local);
    c.lit(br#","p":""#)?;
    let price = text::price(c.until_quote()?, entry.price_scale).ok()?;
    c.lit(br#","q":""#)?;
    let qty = text::trade_qty(c.until_quote()?, entry.qty_scale).ok()?;
    c.lit(br#","T":"#)?;
    c.uint()?;
    c.lit(br#","m":"#)?;
    let buyer_is_maker = c.boolean()?;
    c.lit(br#","M":"#)?;
    c.boolean()?;
    c.lit(b"}}")?;
    c.at_end().then_some(Parsed::Trade {
        local,
        event_ms,
        trade_id,
        price,
        qty,
        buyer_is_maker,
        agg: false,
    })
}

#[inline]
fn ticker(c: &mut Cursor<'_>, ctx: &Ctx<'_>, stream_symbol: &[u8]) -> Option<Parsed> {
    c.lit(br#""u":"#)?;
    let update_id = c.uint()?;
    c.lit(br#","s":""#)?;
    let local = symbol(c, ctx, stream_symbol)?;
    let entry = ctx.symbols.entry(local);
    let (ps, qs) = (entry.price_scale, entry.qty_scale);
    c.lit(br#","b":""#)?;
    let bid = text::price(c.until_quote()?, ps).ok()?;
    c.lit(br#","B":""#)?;
    let bid_qty = text::qty(c.until_quote()?, qs).ok()?;
    c.lit(br#","a":""#)?;
    let ask = text::price(c.until_quote()?, ps).ok()?;
    c.lit(br#","A":""#)?;
    let ask_qty = text::qty(c.until_quote()?, qs).ok()?;
    c.lit(b"}}")?;
    c.at_end().then_some(Parsed::Ticker {
        local,
        event_ms: None,
        update_id,
        bid,
        bid_qty,
        ask,
        ask_qty,
    })
}
