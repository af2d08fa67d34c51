//! The fast path: hand-written validating scanners for the exact shapes Binance sends on
//! its combined streams — spot `depthUpdate`, `trade` and `bookTicker`, and USD-M futures
//! `depthUpdate` — in Binance's field order, without whitespace or escapes.
//!
//! The contract is "accept or defer": a scanner returns `Some` only when the bytes are a
//! valid JSON document of that exact shape whose values all pass the same checks as the
//! general path (they call the same functions), so the result equals what the general path
//! returns; anything else — another shape, whitespace, an escape, a non-ASCII byte, any
//! invalid value — returns `None` and the general path decides (and picks the reject
//! reason). The differential tests (`tests/differential.rs`) check this on the whole
//! recording and on mutated real messages.
//!
//! Why it is faster: one forward pass with no tape, no string unescaping and no key
//! lookups; literals are compared as fixed-size arrays; integers and quotes are found eight
//! bytes at a time (SWAR, in safe code); decimal strings go straight to `parse_fixed`,
//! which also validates them; the stream name is matched against the connection's recent
//! stream names instead of being parsed again.

use aaiti_model::Side;

use super::{BinanceMarket, Ctx, Parsed, StreamKind, general, parse_stream};
use crate::{core::Level, text};

/// `'0'` in every byte.
const ZEROS: u64 = 0x3030_3030_3030_3030;
/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Bit 7 of every byte.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at `at` as a little-endian word; bytes past the end read as zero (neither a
/// digit nor a quote).
#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        Some(chunk) => u64::from_le_bytes(*chunk),
        None => {
            let mut word = [0u8; 8];
            let rest = bytes.get(at..).unwrap_or(&[]);
            word[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(word)
        }
    }
}

/// For `x = word ^ ZEROS`: bit 7 set in the lowest byte of `word` that is not an ASCII digit
/// (bits above it may be wrong; callers use `trailing_zeros` only). Zero iff all are digits.
#[inline(always)]
const fn non_digits(x: u64) -> u64 {
    (x.wrapping_add(0x7676_7676_7676_7676) | x) & HIGH
}

/// Value of eight digit values (`0..=9` per byte, first digit in the lowest byte).
#[inline(always)]
const fn eight_digits(x: u64) -> u64 {
    const PAIRS: u64 = 0x0000_00ff_0000_00ff;
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & PAIRS)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((x >> 16) & PAIRS).wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// Bit 7 set in the lowest byte of `word` equal to `byte` (bits above may be wrong).
#[inline(always)]
const fn find_byte(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * byte as u64);
    x.wrapping_sub(ONES) & !x & HIGH
}

/// A forward-only cursor over the message bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes the literal `expected` exactly.
    #[inline(always)]
    fn lit<const N: usize>(&mut self, expected: &[u8; N]) -> Option<()> {
        let chunk = self.bytes.get(self.at..)?.first_chunk::<N>()?;
        if chunk == expected {
            self.at += N;
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
        let start = self.at;
        let mut i = start;
        loop {
            if i >= self.bytes.len() {
                return None;
            }
            let found = find_byte(load8(self.bytes, i), b'"');
            if found != 0 {
                let end = i + (found.trailing_zeros() / 8) as usize;
                if end >= self.bytes.len() {
                    return None;
                }
                self.at = end + 1;
                return self.bytes.get(start..end);
            }
            i += 8;
        }
    }

    /// A JSON string of printable ASCII without escapes, after its opening quote.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let text = self.until_quote()?;
        text.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
            .then_some(text)
    }

    /// Consumes `expected` followed by its closing quote: a string known to be plain.
    #[inline(always)]
    fn known_string(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at + expected.len();
        if self.bytes.get(self.at..end)? == expected && self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            Some(())
        } else {
            None
        }
    }

    /// The number of digits at the cursor (up to 24; the callers accept at most 19).
    #[inline(always)]
    fn digit_run(&self) -> usize {
        let mut len = 0;
        loop {
            let mask = non_digits(load8(self.bytes, self.at + len) ^ ZEROS);
            if mask != 0 {
                return len + (mask.trailing_zeros() / 8) as usize;
            }
            len += 8;
            if len > 16 {
                return len;
            }
        }
    }

    /// A JSON integer `0 | [1-9][0-9]*` of at most 19 digits (so it fits a `u64`).
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let len = self.uint_len()?;
        let mut value = 0u64;
        let mut i = self.at;
        let head = len % 8;
        if head > 0 {
            // The first `head` digits: shift the others out of an eight-digit word.
            let word = load8(self.bytes, i) ^ ZEROS;
            value = eight_digits(word << (8 * (8 - head)));
            i += head;
        }
        while i < self.at + len {
            value = value * 100_000_000 + eight_digits(load8(self.bytes, i) ^ ZEROS);
            i += 8;
        }
        self.at += len;
        Some(value)
    }

    /// Skips a JSON integer as [`Cursor::uint`] accepts it, without its value.
    #[inline(always)]
    fn skip_uint(&mut self) -> Option<()> {
        self.at += self.uint_len()?;
        Some(())
    }

    #[inline(always)]
    fn uint_len(&self) -> Option<usize> {
        let len = self.digit_run();
        let leading_zero = len > 1 && self.bytes.get(self.at) == Some(&b'0');
        (len > 0 && len <= 19 && !leading_zero).then_some(len)
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

/// A stream name seen on this connection, resolved.
#[derive(Debug)]
struct Known {
    name: Box<[u8]>,
    local: usize,
    kind: StreamKind,
}

/// The connection's recently seen stream names, most recent first. A connection carries a
/// few streams per instrument; names beyond the capacity are resolved on every message.
#[derive(Debug, Default)]
pub(super) struct StreamCache {
    known: Vec<Known>,
}

impl StreamCache {
    const CAPACITY: usize = 32;

    /// Matches the stream name at the cursor (after the opening quote) and consumes it with
    /// its closing quote.
    #[inline(always)]
    fn lookup(&mut self, c: &mut Cursor<'_>, ctx: &Ctx<'_>) -> Option<(usize, StreamKind)> {
        if let Some(first) = self.known.first()
            && c.known_string(&first.name).is_some()
        {
            return Some((first.local, first.kind));
        }
        self.lookup_slow(c, ctx)
    }

    #[cold]
    fn lookup_slow(&mut self, c: &mut Cursor<'_>, ctx: &Ctx<'_>) -> Option<(usize, StreamKind)> {
        if let Some(i) = (1..self.known.len()).find(|&i| {
            let end = c.at + self.known[i].name.len();
            c.bytes.get(c.at..end) == Some(&self.known[i].name[..])
                && c.bytes.get(end) == Some(&b'"')
        }) {
            c.at += self.known[i].name.len() + 1;
            let hit = self.known.remove(i);
            let found = (hit.local, hit.kind);
            self.known.insert(0, hit);
            return Some(found);
        }
        let name = c.plain_string()?;
        let (symbol, kind) = parse_stream(name)?;
        // The stream's instrument; the message's `s` must then be exactly its symbol.
        let local = ctx.symbols.find_ignore_case(symbol)?;
        if self.known.len() == Self::CAPACITY {
            self.known.pop();
        }
        self.known.insert(
            0,
            Known {
                name: name.into(),
                local,
                kind,
            },
        );
        Some((local, kind))
    }
}

/// Tries the fast path; `None` means "ask the general path".
#[inline]
pub(super) fn parse(
    bytes: &[u8],
    ctx: &Ctx<'_>,
    cache: &mut StreamCache,
    levels: &mut Vec<Level>,
) -> Option<Parsed> {
    let mut c = Cursor { bytes, at: 0 };
    c.lit(br#"{"stream":""#)?;
    let (local, kind) = cache.lookup(&mut c, ctx)?;
    c.lit(br#","data":{"#)?;
    match (kind, ctx.market) {
        (StreamKind::Depth, market) => depth(&mut c, ctx, local, market, levels),
        (StreamKind::Trade, BinanceMarket::Spot) => trade(&mut c, ctx, local),
        (StreamKind::BookTicker, BinanceMarket::Spot) => ticker(&mut c, ctx, local),
        _ => None,
    }
}

/// The `"s"` value: exactly the stream's instrument symbol. (The general path checks the
/// stream name against `s` ignoring case and then looks `s` up exactly; symbols are unique
/// per venue, so both find `local`.)
#[inline(always)]
fn symbol(c: &mut Cursor<'_>, ctx: &Ctx<'_>, local: usize) -> Option<()> {
    c.known_string(&ctx.symbols.entry(local).symbol)
}

#[inline]
fn depth(
    c: &mut Cursor<'_>,
    ctx: &Ctx<'_>,
    local: usize,
    market: BinanceMarket,
    levels: &mut Vec<Level>,
) -> Option<Parsed> {
    c.lit(br#""e":"depthUpdate","E":"#)?;
    let event_ms = general::event_time(c.uint()?, "E").ok()?;
    if market == BinanceMarket::UsdFutures {
        c.lit(br#","T":"#)?;
        c.skip_uint()?;
    }
    c.lit(br#","s":""#)?;
    symbol(c, ctx, local)?;
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
fn trade(c: &mut Cursor<'_>, ctx: &Ctx<'_>, local: usize) -> Option<Parsed> {
    c.lit(br#""e":"trade","E":"#)?;
    let event_ms = general::event_time(c.uint()?, "E").ok()?;
    c.lit(br#","s":""#)?;
    symbol(c, ctx, local)?;
    c.lit(br#","t":"#)?;
    let trade_id = c.uint()?;
    let entry = ctx.symbols.entry(local);
    c.lit(br#","p":""#)?;
    let price = text::price(c.until_quote()?, entry.price_scale).ok()?;
    c.lit(br#","q":""#)?;
    let qty = text::trade_qty(c.until_quote()?, entry.qty_scale).ok()?;
    c.lit(br#","T":"#)?;
    c.skip_uint()?;
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
fn ticker(c: &mut Cursor<'_>, ctx: &Ctx<'_>, local: usize) -> Option<Parsed> {
    c.lit(br#""u":"#)?;
    let update_id = c.uint()?;
    c.lit(br#","s":""#)?;
    symbol(c, ctx, local)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uint(text: &[u8]) -> Option<(u64, usize)> {
        let mut c = Cursor { bytes: text, at: 0 };
        c.uint().map(|v| (v, c.at))
    }

    #[test]
    fn integers() {
        assert_eq!(uint(b"0,"), Some((0, 1)));
        assert_eq!(uint(b"7"), Some((7, 1)));
        assert_eq!(uint(b"1723161255208,"), Some((1_723_161_255_208, 13)));
        assert_eq!(uint(b"12345678}"), Some((12_345_678, 8)));
        assert_eq!(uint(b"123456789"), Some((123_456_789, 9)));
        assert_eq!(
            uint(b"1234567890123456789,"),
            Some((1_234_567_890_123_456_789, 19))
        );
        assert_eq!(
            uint(b"9999999999999999999"),
            Some((9_999_999_999_999_999_999, 19))
        );
        assert_eq!(uint(b"12345678901234567890"), None);
        assert_eq!(uint(b"01"), None);
        assert_eq!(uint(b"-1"), None);
        assert_eq!(uint(b""), None);
        assert_eq!(uint(b"\xb0"), None);
        for n in [
            1u64,
            9,
            10,
            99,
            100,
            1_000_000,
            99_999_999,
            100_000_000,
            4_294_967_296,
            u64::MAX / 2,
        ] {
            let text = format!("{n}]");
            assert_eq!(uint(text.as_bytes()), Some((n, text.len() - 1)), "{n}");
        }
    }

    #[test]
    fn quotes() {
        for text in [
            &b"abc\"x"[..],
            b"\"",
            b"0123456789abcdef\"",
            b"01234567\"",
            b"0123456\"",
        ] {
            let mut c = Cursor { bytes: text, at: 0 };
            let end = text.iter().position(|&b| b == b'"').unwrap();
            assert_eq!(c.until_quote(), Some(&text[..end]));
            assert_eq!(c.at, end + 1);
        }
        assert_eq!(
            Cursor {
                bytes: b"abc",
                at: 0
            }
            .until_quote(),
            None
        );
        assert_eq!(Cursor { bytes: b"", at: 0 }.until_quote(), None);
        assert_eq!(
            Cursor {
                bytes: b"\xa2\xa2",
                at: 0
            }
            .until_quote(),
            None
        );
    }
}
