//! FIX 4.4 tag=value codec: framing, zero-copy parsing, encoding.
//!
//! # Wire format
//!
//! A message is `8=FIX.4.4<SOH>9=<BodyLength><SOH>` followed by the body and the trailer
//! `10=<CheckSum><SOH>`, where `<SOH>` is byte 0x01:
//!
//! * `BodyLength` counts the bytes from the one after the `<SOH>` that ends field 9 up to
//!   and including the `<SOH>` before `10=`; it is 1 to 7 ASCII digits, no sign.
//! * `CheckSum` is the sum of every byte before `10=` modulo 256, as exactly three ASCII
//!   digits (`007`).
//! * Every field is `<tag>=<value><SOH>`: `tag` a positive decimal number without leading
//!   zeros, `value` at least one byte and no `<SOH>` (this codec does not carry binary
//!   `data` fields, which FIX 4.4 allows only after a length field; none of the messages
//!   the gateway accepts has one).
//!
//! [`frame`] finds where a message ends in a receive buffer (so partial reads and several
//! messages in one read both work), [`Parser::parse`] indexes its fields without copying
//! into a [`Message`], and [`Encoder`] writes a message into a reused buffer, filling in
//! BodyLength and CheckSum. Nothing here allocates once the buffers are sized.
//!
//! In the same pass as it cuts the fields, the parser records where the tags the gateway
//! knows are (a crate-internal index: which are present, which repeated, the position of
//! each), so that the dictionary validates an order with bit masks and the application
//! layer reads its fields without another pass over them.

use aaiti_model::UnixNanos;

use super::dictionary;

/// The field separator.
pub const SOH: u8 = 0x01;

/// `10^n` for `n` in `0..=19`.
const POW10: [u64; 20] = {
    let mut table = [1_u64; 20];
    let mut n = 1;
    while n < table.len() {
        table[n] = table[n - 1] * 10;
        n += 1;
    }
    table
};

/// `"00" "01" ... "99"`: two digits per division when writing numbers.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0_u8; 200];
    let mut n = 0;
    while n < 100 {
        table[2 * n] = b'0' + (n / 10) as u8;
        table[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    table
};

/// The only BeginString accepted and sent.
pub const BEGIN_STRING: &[u8] = b"FIX.4.4";

/// `8=FIX.4.4<SOH>9=`: how every message starts.
const PREFIX: &[u8; 12] = b"8=FIX.4.4\x019=";

/// Bytes of the trailer `10=NNN<SOH>`.
const TRAILER_LEN: usize = 7;

/// Longest BeginString value looked at when deciding whether `8=...` is another FIX
/// version (`FIXT.1.1` is 8 bytes).
const MAX_BEGIN_STRING: usize = 16;

/// Most fields a message may have.
pub const MAX_FIELDS: usize = 256;

/// What [`frame`] found at the start of a buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A whole message of this many bytes (BodyLength and CheckSum verified).
    Complete(usize),
    /// The message is not complete yet: read more.
    Incomplete,
    /// Not a message: drop this many bytes (up to the next `8=FIX` or the end) and try
    /// again. FIX ignores garbled messages: no reject, no sequence number consumed.
    Garbled {
        /// Bytes to drop.
        skip: usize,
        /// Why.
        reason: Garbled,
    },
    /// A well-formed start with another BeginString (`8=FIX.4.2`...): the session must be
    /// ended (FIX 4.4 logs out and disconnects).
    WrongBeginString,
}

/// Why bytes were not a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Garbled {
    /// The bytes do not start with `8=`.
    NoBeginString,
    /// Field 9 is missing, not digits, zero, or above the limit.
    BadBodyLength,
    /// The trailer is not `10=NNN<SOH>` where BodyLength says it is.
    BadTrailer,
    /// The checksum does not match.
    BadCheckSum,
}

/// Finds the first message in `buf`. `max_len` bounds a message's total size: a longer
/// BodyLength is garbled (so a peer cannot make the receive buffer grow without bound).
pub fn frame(buf: &[u8], max_len: usize) -> Framing {
    if buf.is_empty() {
        return Framing::Incomplete;
    }
    // The fixed prefix, as far as we have it (a whole one compares as two words).
    let prefix_ok = match buf.first_chunk::<12>() {
        Some(head) => head == PREFIX,
        None => buf == &PREFIX[..buf.len()],
    };
    if !prefix_ok {
        if buf.len() >= 2 && &buf[..2] == b"8=" {
            // `8=` then something else: another BeginString, if it is a well-formed field.
            // Only the first MAX_BEGIN_STRING bytes are looked at, so the verdict does not
            // depend on how much of the stream has arrived.
            let window = &buf[2..buf.len().min(2 + MAX_BEGIN_STRING + 1)];
            if let Some(end) = memchr(SOH, window) {
                let value = &window[..end];
                if value != BEGIN_STRING && value.starts_with(b"FIX") {
                    return Framing::WrongBeginString;
                }
            } else if window.len() <= MAX_BEGIN_STRING {
                return Framing::Incomplete;
            }
        } else if buf.len() == 1 && buf[0] == b'8' {
            return Framing::Incomplete;
        }
        return garbled(buf, Garbled::NoBeginString);
    }
    if buf.len() < PREFIX.len() {
        return Framing::Incomplete;
    }
    // BodyLength digits.
    let digits_start = PREFIX.len();
    let mut body_len = 0_usize;
    let mut at = digits_start;
    loop {
        let Some(&byte) = buf.get(at) else {
            return if at - digits_start > 7 {
                garbled(buf, Garbled::BadBodyLength)
            } else {
                Framing::Incomplete
            };
        };
        match byte {
            b'0'..=b'9' if at - digits_start < 7 => {
                body_len = body_len * 10 + usize::from(byte - b'0');
            }
            SOH if at > digits_start => break,
            _ => return garbled(buf, Garbled::BadBodyLength),
        }
        at += 1;
    }
    let body_start = at + 1;
    let total = body_start + body_len + TRAILER_LEN;
    if body_len == 0 || total > max_len {
        return garbled(buf, Garbled::BadBodyLength);
    }
    if buf.len() < total {
        return Framing::Incomplete;
    }
    let trailer = &buf[body_start + body_len..total];
    if buf[body_start + body_len - 1] != SOH
        || &trailer[..3] != b"10="
        || trailer[6] != SOH
        || !trailer[3..6].iter().all(u8::is_ascii_digit)
    {
        return garbled(buf, Garbled::BadTrailer);
    }
    let stated = u32::from(trailer[3] - b'0') * 100
        + u32::from(trailer[4] - b'0') * 10
        + u32::from(trailer[5] - b'0');
    if stated != u32::from(checksum(&buf[..body_start + body_len])) {
        return garbled(buf, Garbled::BadCheckSum);
    }
    Framing::Complete(total)
}

/// Drops bytes up to the next possible message start after the first byte. Without one,
/// a tail that may be the beginning of the next message (`8`, `8=`, `8=F`, `8=FI`) is
/// kept, so that a message arriving right after garbage, split across reads, is not lost:
/// the skips (and so the messages found) are the same however the stream is cut.
fn garbled(buf: &[u8], reason: Garbled) -> Framing {
    const START: &[u8] = b"8=FIX";
    let skip = match find(&buf[1..], START) {
        Some(at) => at + 1,
        None => {
            let keep = (1..START.len())
                .rev()
                .find(|&n| n < buf.len() && buf.ends_with(&START[..n]))
                .unwrap_or(0);
            buf.len() - keep
        }
    };
    Framing::Garbled { skip, reason }
}

/// The FIX checksum of `bytes`: their sum modulo 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0_u8, |sum, &byte| sum.wrapping_add(byte))
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// One field of a parsed message: its tag and where its value lies in the message.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    /// Tag number.
    pub tag: u32,
    /// Value start (byte offset in the message).
    pub start: u32,
    /// Value end (exclusive).
    pub end: u32,
}

/// Why a framed message's fields could not be read. Each maps to a FIX
/// SessionRejectReason (373) with the tag concerned as RefTagID (371).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A tag is not a positive decimal number (reason 0, invalid tag number).
    #[error("invalid tag number at byte {at}")]
    InvalidTag {
        /// Byte offset.
        at: usize,
    },
    /// A field has no value (reason 4, tag specified without a value).
    #[error("tag {tag} has no value")]
    EmptyValue {
        /// The tag.
        tag: u32,
    },
    /// More than [`MAX_FIELDS`] fields.
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    /// The message does not begin with fields 8, 9, 35 in this order (reason 14, tag
    /// specified out of required order).
    #[error("header field {tag} out of order")]
    HeaderOrder {
        /// The tag found or expected.
        tag: u32,
    },
    /// The CheckSum is not the last field (reason 14).
    #[error("CheckSum is not the last field")]
    TrailerOrder,
}

impl ParseError {
    /// The SessionRejectReason (373) code.
    pub const fn session_reject_reason(&self) -> u32 {
        match self {
            Self::InvalidTag { .. } => 0,
            Self::EmptyValue { .. } => 4,
            Self::TooManyFields => 5,
            Self::HeaderOrder { .. } | Self::TrailerOrder => 14,
        }
    }

    /// The tag concerned (RefTagID, 371), when there is one.
    pub const fn ref_tag(&self) -> Option<u32> {
        match *self {
            Self::EmptyValue { tag } | Self::HeaderOrder { tag } => Some(tag),
            Self::TrailerOrder => Some(10),
            Self::InvalidTag { .. } | Self::TooManyFields => None,
        }
    }
}

/// Indexes a framed message's fields into a reused table (no allocation after the first
/// use).
#[derive(Debug)]
pub struct Parser {
    /// [`MAX_FIELDS`] slots, allocated once: writing a slot is a store, where a `Vec` push
    /// also checks and updates its length and capacity.
    fields: Box<[Field]>,
    /// Where the tags the gateway knows are, filled in the same pass.
    index: Index,
}

/// Where the tags the gateway knows ([`dictionary::column`]: a column per tag, 1 to 63;
/// column 0 stands for every other tag) are in a parsed message, recorded by the parser
/// as it goes (a table load, two bit operations and a store per field). It lets the
/// dictionary check a message with bit masks instead of a loop over the fields, and the
/// application layer find a field without one.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    /// Bit `c`: a field with column `c` is present.
    pub(crate) present: u64,
    /// Bit `c`: more than one field has column `c`.
    pub(crate) repeated: u64,
    /// Per column, the position of its last field (valid where `present` says so).
    pub(crate) last: [u8; 64],
}

impl Index {
    const EMPTY: Self = Self {
        present: 0,
        repeated: 0,
        last: [0; 64],
    };
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// SOH in every byte.
const SOHS: u64 = 0x0101_0101_0101_0101;

/// The high bit (`0x80`) of each byte of `word` that is SOH, and possibly of a NUL that
/// follows a SOH in the word.
///
/// The SOH bytes are the zero bytes of `x = word ^ 0x0101...`, marked by the high bit of
/// `(x - 0x0101...) & !x`: three operations where an exact test takes six. The borrow out
/// of a zero byte may also mark the bytes above it that are 0x01 in `x` (NUL in the
/// message), never any other byte, and never across words. The parser gives the same
/// result with these marks: a mark at `p` can only follow a real SOH at `p - 1` (or
/// another such mark), so the field that starts at `p` has a NUL for its first byte, and
/// both with the mark (an empty field) and without it that field is an invalid tag at
/// `p`, where parsing stops.
#[inline(always)]
fn soh_marks(word: u64) -> u64 {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ SOHS;
    x.wrapping_sub(SOHS) & !x & HIGHS
}

/// The tag at the start of `word` (the four message bytes from a field's first byte,
/// little-endian), if it is one to three digits without a leading zero followed by `=`
/// (so below 1000): `(tag, digits)`. Anything else (a longer tag, an error) is `None`,
/// for the byte-by-byte path to decide. Every FIX 4.4 tag has at most three digits.
///
/// Two-digit tags, most of them, in one masked test; the others byte by byte with early
/// exits (a message's fields come in the same order every time, so the branches are
/// predicted; a branch-free form took about forty instructions for any tag).
#[inline]
fn tag_in_word(word: u32) -> Option<(u32, usize)> {
    // Two digits (most tags) in one test: `=` third, the first two bytes 0x30 to 0x39,
    // the first not `0`.
    let x = word ^ 0x003D_3030;
    if x & 0x00FF_F0F0 == 0 && ((x & 0x0F0F) + 0x0606) & 0xF0F0 == 0 && x & 0xFF != 0 {
        return Some(((x & 0xF) * 10 + ((x >> 8) & 0xF), 2));
    }
    let [b0, b1, b2, b3] = word.to_le_bytes();
    // `1`..=`9`: no leading zero.
    let first = b0.wrapping_sub(b'1');
    if first > 8 {
        return None;
    }
    let tag = u32::from(first) + 1;
    if b1 == b'=' {
        return Some((tag, 1));
    }
    let second = b1.wrapping_sub(b'0');
    if second > 9 {
        return None;
    }
    let tag = tag * 10 + u32::from(second);
    if b2 == b'=' {
        return Some((tag, 2));
    }
    let third = b2.wrapping_sub(b'0');
    if third > 9 || b3 != b'=' {
        return None;
    }
    Some((tag * 10 + u32::from(third), 3))
}

/// The four bytes at `at` as a little-endian word.
#[inline]
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at + 4)?;
    let mut word = [0; 4];
    word.copy_from_slice(chunk);
    Some(u32::from_le_bytes(word))
}

/// The tag starting at `at`, byte by byte: 1 to 9 digits without a leading zero, then
/// `=`. Returns the tag and the index of the `=`.
#[cold]
fn tag_slow(bytes: &[u8], tag_start: usize) -> Result<(u32, usize), ParseError> {
    let mut at = tag_start;
    let mut tag = 0_u32;
    while bytes.get(at) != Some(&b'=') || at == tag_start {
        let Some(&byte) = bytes.get(at) else {
            return Err(ParseError::InvalidTag { at: tag_start });
        };
        let digit = byte.wrapping_sub(b'0');
        if digit < 10 {
            if at - tag_start >= 9 || (digit == 0 && at == tag_start) {
                return Err(ParseError::InvalidTag { at: tag_start });
            }
            tag = tag * 10 + u32::from(digit);
            at += 1;
        } else {
            return Err(ParseError::InvalidTag { at: tag_start });
        }
    }
    Ok((tag, at))
}

impl Parser {
    /// A parser with room for [`MAX_FIELDS`] fields.
    pub fn new() -> Self {
        Self {
            fields: vec![Field::default(); MAX_FIELDS].into_boxed_slice(),
            index: Index::EMPTY,
        }
    }

    /// Indexes `bytes`, one whole message as [`frame`] delimited it.
    ///
    /// # Errors
    ///
    /// A field that is not `tag=value<SOH>`, or header fields out of order.
    pub fn parse<'a>(&'a mut self, bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        // Fields end at SOHs: the SOH bytes of each 8-byte word are marked at once, and the
        // fields are cut from the marks. Where the next field starts thus never waits for
        // the current one's tag to be read (with a search per field, each field's end
        // depended on a load at its start: a chain of load latencies), and no chain of
        // instructions links the words (gathering the marks of 64 bytes into one mask
        // first was slower for it).
        let len = bytes.len();
        let fields: &mut [Field] = &mut self.fields;
        let index = &mut self.index;
        let mut count = 0_usize;
        let mut start = 0_usize;
        let mut base = 0_usize;
        let (mut present, mut repeated) = (0_u64, 0_u64);
        while base < len {
            // The high bit of each SOH byte of the eight from `base` (see `soh_marks`).
            let mut sohs = match word_at(bytes, base) {
                Some(word) => soh_marks(word),
                // The last bytes, the zero bytes past the end (which could be marked)
                // dropped.
                None => soh_marks(value_word(bytes, base)) & !(u64::MAX << (8 * (len - base))),
            };
            while sohs != 0 {
                let end = base + (sohs.trailing_zeros() / 8) as usize;
                sohs &= sohs - 1;
                // `tag=` from one word (a SOH is no digit, so a well-formed tag's `=` lies
                // before `end`), else byte by byte, which also finds every error.
                let (tag, equals, column) = match u32_at(bytes, start).and_then(tag_in_word) {
                    Some((tag, digits)) => (tag, start + digits, dictionary::short_column(tag)),
                    None => {
                        let (tag, equals) = tag_slow(bytes, start)?;
                        (tag, equals, dictionary::column_of(tag))
                    }
                };
                if equals + 1 >= end {
                    return Err(ParseError::EmptyValue { tag });
                }
                let Some(slot) = fields.get_mut(count) else {
                    return Err(ParseError::TooManyFields);
                };
                *slot = Field {
                    tag,
                    start: equals as u32 + 1,
                    end: end as u32,
                };
                // Columns are below 64.
                let column = column % 64;
                let bit = 1 << column;
                repeated |= present & bit;
                present |= bit;
                // Below MAX_FIELDS, so it fits.
                index.last[column] = count as u8;
                count += 1;
                start = end + 1;
            }
            base += 8;
        }
        if start < len {
            // Bytes after the last SOH: a field without its end.
            let (tag, _) = tag_slow(bytes, start)?;
            return Err(ParseError::EmptyValue { tag });
        }
        index.present = present;
        index.repeated = repeated;
        let fields = &fields[..count];
        for (position, expected) in [8_u32, 9, 35].into_iter().enumerate() {
            if fields.get(position).map(|f| f.tag) != Some(expected) {
                return Err(ParseError::HeaderOrder { tag: expected });
            }
        }
        // CheckSum once, last (after the header, whose error comes first).
        const CHECKSUM: u64 = 1 << dictionary::column(10);
        if repeated & CHECKSUM != 0 || fields.last().map(|f| f.tag) != Some(10) {
            return Err(ParseError::TrailerOrder);
        }
        Ok(Message {
            bytes,
            fields,
            index,
        })
    }
}

/// A parsed message: the bytes and their field index.
#[derive(Copy, Clone, Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    fields: &'a [Field],
    index: &'a Index,
}

impl<'a> Message<'a> {
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every field, in message order (header, body, trailer).
    pub fn fields(&self) -> &'a [Field] {
        self.fields
    }

    /// Where the known tags are (see [`Index`]).
    pub(crate) fn index(&self) -> &'a Index {
        self.index
    }

    /// The value of the last field with column `column`, if there is one.
    #[inline(always)]
    pub(crate) fn value_in_column(&self, column: usize) -> Option<&'a [u8]> {
        if self.index.present >> (column % 64) & 1 == 0 {
            return None;
        }
        let field = self.fields.get(usize::from(self.index.last[column % 64]))?;
        self.bytes.get(field.start as usize..field.end as usize)
    }

    /// The last field with column `column` ([`dictionary::column`]), if there is one.
    #[inline]
    pub(crate) fn last_in_column(&self, column: usize) -> Option<&'a Field> {
        if self.index.present >> (column % 64) & 1 == 0 {
            return None;
        }
        self.fields.get(usize::from(self.index.last[column % 64]))
    }

    /// The value of `field`.
    pub fn value(&self, field: &Field) -> &'a [u8] {
        &self.bytes[field.start as usize..field.end as usize]
    }

    /// Eight bytes of `field`'s value from byte `at` of the value, as a little-endian
    /// word, zero past the value's end: one load from the message and a mask where the
    /// message has eight bytes there (every field but the last few bytes of a message:
    /// a value is followed at least by its SOH and the 7-byte trailer), else
    /// [`value_word`]. For checking and copying short values a word at a time.
    #[inline]
    pub(crate) fn value_word(&self, field: &Field, at: usize) -> u64 {
        let (start, end) = (field.start as usize, field.end as usize);
        let len = end.saturating_sub(start);
        if at >= len {
            return 0;
        }
        match word_at(self.bytes, start + at) {
            Some(word) if len - at >= 8 => word,
            Some(word) => word & ((1 << (8 * (len - at))) - 1),
            None => value_word(self.bytes.get(start..end).unwrap_or_default(), at),
        }
    }

    /// The MsgType (35).
    pub fn msg_type(&self) -> &'a [u8] {
        self.value(&self.fields[2])
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.tag == tag)
            .map(|f| self.value(f))
    }

    /// Index of the first field with `tag`.
    pub fn position(&self, tag: u32) -> Option<usize> {
        self.fields.iter().position(|f| f.tag == tag)
    }

    /// The first value of `tag` as a non-negative integer.
    ///
    /// # Errors
    ///
    /// [`FieldError::Format`] if it is not digits (or overflows).
    pub fn get_u64(&self, tag: u32) -> Result<Option<u64>, FieldError> {
        self.get(tag)
            .map(|value| parse_u64(value).ok_or(FieldError::Format { tag }))
            .transpose()
    }

    /// The first value of `tag` as a single character.
    ///
    /// # Errors
    ///
    /// [`FieldError::Format`] if it is longer than one byte.
    pub fn get_char(&self, tag: u32) -> Result<Option<u8>, FieldError> {
        self.get(tag)
            .map(|value| match value {
                [byte] => Ok(*byte),
                _ => Err(FieldError::Format { tag }),
            })
            .transpose()
    }

    /// The first value of `tag` as a UTCTimestamp.
    ///
    /// # Errors
    ///
    /// [`FieldError::Format`] if it is not `YYYYMMDD-HH:MM:SS[.s...]`.
    pub fn get_timestamp(&self, tag: u32) -> Result<Option<UnixNanos>, FieldError> {
        self.get(tag)
            .map(|value| parse_utc_timestamp(value).ok_or(FieldError::Format { tag }))
            .transpose()
    }

    /// MsgSeqNum (34).
    ///
    /// # Errors
    ///
    /// Missing or not a number.
    pub fn seq_num(&self) -> Result<u64, FieldError> {
        self.get_u64(34)?.ok_or(FieldError::Missing { tag: 34 })
    }
}

/// A field's value does not fit its type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Required and missing (SessionRejectReason 1).
    #[error("required tag {tag} missing")]
    Missing {
        /// The tag.
        tag: u32,
    },
    /// Wrong format for its type (SessionRejectReason 6).
    #[error("incorrect data format for tag {tag}")]
    Format {
        /// The tag.
        tag: u32,
    },
    /// A value outside the tag's range or enumeration (SessionRejectReason 5).
    #[error("value is incorrect (out of range) for tag {tag}")]
    Range {
        /// The tag.
        tag: u32,
    },
}

impl FieldError {
    /// The SessionRejectReason (373) code.
    pub const fn session_reject_reason(&self) -> u32 {
        match self {
            Self::Missing { .. } => 1,
            Self::Format { .. } => 6,
            Self::Range { .. } => 5,
        }
    }

    /// The tag concerned (RefTagID, 371).
    pub const fn tag(&self) -> u32 {
        match *self {
            Self::Missing { tag } | Self::Format { tag } | Self::Range { tag } => tag,
        }
    }
}

/// Digits as a `u64` (no sign, no spaces, at most 19 digits).
pub fn parse_u64(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0_u64, |n, &byte| {
        byte.is_ascii_digit()
            .then(|| n * 10 + u64::from(byte - b'0'))
    })
}

/// A FIX UTCTimestamp, `YYYYMMDD-HH:MM:SS` with optional `.sss`, `.ssssss` or
/// `.sssssssss`, as nanoseconds since the Unix epoch (years 1970 to 2262).
#[inline]
pub fn parse_utc_timestamp(value: &[u8]) -> Option<UnixNanos> {
    let parts = timestamp_parts(value)?;
    let days = days_from_civil(parts.year, parts.month, parts.day);
    let seconds = days * 86_400 + parts.second_of_day;
    seconds
        .checked_mul(1_000_000_000)?
        .checked_add(parts.nanos)
        .map(UnixNanos)
}

/// True if [`parse_utc_timestamp`] accepts `value`: the same checks without the date
/// arithmetic (the dictionary checks two timestamps in every order and keeps neither),
/// with few branches: the date and the time of day are two words whose digits, colons
/// and ranges are checked together. The conversion cannot fail after the checks:
/// 2262-12-31 is below 2^64 ns.
#[inline(always)]
pub(crate) fn is_utc_timestamp(value: &[u8]) -> bool {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LENGTHS: u32 = 1 << 17 | 1 << 21 | 1 << 24 | 1 << 27;
    let len = value.len();
    let (Some(date), Some(time), Some(last)) = (
        word_at(value, 0),
        word_at(value, 9),
        value.last_chunk::<8>(),
    ) else {
        return false;
    };
    // `YYYYMMDD` and `HH:MM:SS` as digit values, zero where the colons must be.
    let d = date ^ 0x3030_3030_3030_3030;
    let t = time ^ 0x3030_3A30_303A_3030;
    let mut bad = (d.wrapping_add(0x7676_7676_7676_7676) | d) & HIGHS;
    bad |= (t.wrapping_add(0x7676_7676_7676_7676) | t) & HIGHS;
    bad |= t & 0x0000_FF00_00FF_0000;
    // Digit pairs: lane k holds `10 * digit(k) + digit(k + 1)` (at most 99 when digits).
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    let t = t.wrapping_mul(10).wrapping_add(t >> 8);
    // Hour (lane 0) at most 23, minute (lane 3) 59, second (lane 6) 60, month (lane 4 of
    // the date) 12, day (lane 6) 31: each lane plus 127 minus its limit reaches bit 7
    // only above the limit, and never carries out of its byte.
    bad |= ((t & 0x00FF_0000_FF00_00FF) + 0x0043_0000_4400_0068) & 0x0080_0000_8000_0080;
    let month_day = d & 0x00FF_00FF_0000_0000;
    bad |= (month_day + 0x0060_0073_0000_0000) & 0x0080_0080_0000_0000;
    // Month and day not zero: plus 127, a lane reaches bit 7 unless it is zero.
    bad |= !(month_day + 0x007F_007F_0000_0000) & 0x0080_0080_0000_0000;
    let year = (d & 0xFF) * 100 + ((d >> 16) & 0xFF);
    // Nothing after the seconds, or `.` then 3, 6 or 9 digits: the last eight bytes hold
    // all of them but the first of nine (byte 18), checked apart.
    let fraction = len == 17 || {
        let digits = (len.saturating_sub(18) as u32).min(8);
        let x = (u64::from_le_bytes(*last) ^ 0x3030_3030_3030_3030)
            .checked_shr(8 * (8 - digits))
            .unwrap_or(0);
        (value.get(17) == Some(&b'.'))
            & all_below_ten(x)
            & value.get(18).is_some_and(u8::is_ascii_digit)
    };
    let ok = (bad == 0)
        & (len < 32 && LENGTHS >> (len % 32) & 1 != 0)
        & fraction
        & (value[8] == b'-')
        & (1970..=2262).contains(&year);
    // The month's length only matters from the 29th.
    let (month, day) = ((d >> 32) & 0xFF, (d >> 48) & 0xFF);
    ok && (day <= 28 || day <= days_in_month(year, month))
}

/// A UTCTimestamp's checked fields.
struct TimestampParts {
    year: u64,
    month: u64,
    day: u64,
    second_of_day: u64,
    nanos: u64,
}

/// Reads and checks the first 17 bytes of a UTCTimestamp, `YYYYMMDD-HH:MM:SS`: `(year,
/// month, day, second of the day)`.
#[inline(always)]
fn date_and_time(value: &[u8]) -> Option<(u64, u64, u64, u64)> {
    // The date and the time of day are eight bytes each: checked and converted as two
    // words (this runs twice for every order: SendingTime and TransactTime).
    let date = word_at(value, 0)?;
    let time = word_at(value, 9)?;
    if value[8] != b'-' {
        return None;
    }
    // `YYYYMMDD`: every byte a digit.
    let date = date ^ 0x3030_3030_3030_3030;
    // `HH:MM:SS`: digits, and zero where the colons must be.
    let time = time ^ 0x3030_3A30_303A_3030;
    if !all_below_ten(date) || !all_below_ten(time) || time & 0x0000_FF00_00FF_0000 != 0 {
        return None;
    }
    // Digit pairs: lane 2k holds `10 * digit(2k) + digit(2k + 1)`.
    let date = date * 10 + (date >> 8);
    let time = time * 10 + (time >> 8);
    let lane = |word: u64, index: u32| (word >> (8 * index)) & 0xFF;
    let year = lane(date, 0) * 100 + lane(date, 2);
    let (month, day) = (lane(date, 4), lane(date, 6));
    let (hour, minute, second) = (lane(time, 0), lane(time, 3), lane(time, 6));
    if !(1970..=2262).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some((year, month, day, hour * 3_600 + minute * 60 + second))
}

/// Reads and checks a UTCTimestamp (see [`parse_utc_timestamp`]).
#[inline(always)]
fn timestamp_parts(value: &[u8]) -> Option<TimestampParts> {
    let (year, month, day, second_of_day) = date_and_time(value)?;
    let nanos = match value.len() {
        17 => 0,
        21 | 24 | 27 if value[17] == b'.' => {
            let mut nanos = 0;
            for &byte in &value[18..] {
                let digit = byte.wrapping_sub(b'0');
                if digit > 9 {
                    return None;
                }
                nanos = nanos * 10 + u64::from(digit);
            }
            nanos * POW10[27 - value.len()]
        }
        _ => return None,
    };
    Some(TimestampParts {
        year,
        month,
        day,
        second_of_day,
        nanos,
    })
}

/// The eight bytes at `at` as a little-endian word.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at + 8)?;
    let mut word = [0; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_le_bytes(word))
}

/// The eight bytes of `value` from `at` as a little-endian
/// word, zero past its end, without a variable-length copy: whole words where there are
/// eight bytes, else words that overlap (their shared bytes are equal, so OR joins them).
#[inline]
pub(crate) fn value_word(value: &[u8], at: usize) -> u64 {
    let rest = value.get(at..).unwrap_or_default();
    if let Some(chunk) = rest.first_chunk::<8>() {
        return u64::from_le_bytes(*chunk);
    }
    if rest.is_empty() {
        return 0;
    }
    if let Some(last) = value.last_chunk::<8>() {
        // Eight bytes end the value: drop the ones before `at`.
        return u64::from_le_bytes(*last) >> (8 * (8 - rest.len()));
    }
    // Fewer than eight bytes in all.
    let len = rest.len();
    match (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
        (Some(head), Some(tail)) => {
            u64::from(u32::from_le_bytes(*head))
                | (u64::from(u32::from_le_bytes(*tail)) << (8 * (len - 4)))
        }
        _ => match (rest.first(), rest.get(len / 2), rest.last()) {
            (Some(&first), Some(&middle), Some(&last)) => {
                u64::from(first)
                    | (u64::from(middle) << (8 * (len / 2)))
                    | (u64::from(last) << (8 * (len - 1)))
            }
            _ => 0,
        },
    }
}

/// True if every byte of `x` is at most 9. A byte of 10 or more either has its high bit
/// set or gets it by adding 0x76; a carry out of a bad byte only ever adds to a result
/// that is already non-zero.
#[inline]
fn all_below_ten(x: u64) -> bool {
    (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080 == 0
}

/// A FIX LocalMktDate (`YYYYMMDD`, e.g. ClearingBusinessDate 715) as midnight UTC of that
/// day (years 1970 to 2262).
pub fn parse_date(value: &[u8]) -> Option<UnixNanos> {
    if value.len() != 8 {
        return None;
    }
    let (year, month, day) = (
        parse_u64(&value[0..4])?,
        parse_u64(&value[4..6])?,
        parse_u64(&value[6..8])?,
    );
    if !(1970..=2262).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    days_from_civil(year, month, day)
        .checked_mul(86_400_000_000_000)
        .map(UnixNanos)
}

#[inline]
fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

#[inline]
fn days_in_month(year: u64, month: u64) -> u64 {
    // February's leap rule only matters for its 29th, so most dates skip it.
    const DAYS: [u8; 13] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days = u64::from(DAYS[month as usize % DAYS.len()]);
    days + u64::from(month == 2 && is_leap(year))
}

/// Days from 1970-01-01 to a date already checked to lie in 1970..=2262.
#[inline]
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    aaiti_model::time::days_from_civil(year as i64, month as u32, day as u32) as u64
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let (year, month, day) = aaiti_model::time::civil_from_days(days as i64);
    (year as u64, u64::from(month), u64::from(day))
}

/// Writes messages into one reused buffer, computing BodyLength and CheckSum.
///
/// ```
/// use aaiti_gateway::fix::codec::Encoder;
/// let mut encoder = Encoder::new(1024);
/// encoder.begin(b"0");
/// encoder.str(49, b"AAITI");
/// encoder.str(56, b"DESK");
/// encoder.uint(34, 2);
/// let message = encoder.finish();
/// assert!(message.starts_with(b"8=FIX.4.4\x019="));
/// ```
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
    /// Where the body (`35=`...) starts: the header prefix is written right before it.
    body_start: usize,
    /// Where the finished message starts.
    message_start: usize,
    /// The last date written by `timestamp` (days since the epoch) and its `YYYYMMDD`:
    /// nearly every timestamp of a session falls on the same day.
    day: Option<(u64, [u8; 8])>,
}

/// Room kept in front of the body for `8=FIX.4.4<SOH>9=NNNNNNN<SOH>`.
const HEADER_ROOM: usize = PREFIX.len() + 8;

impl Encoder {
    /// An encoder whose buffer starts with room for `capacity` bytes (it grows if a message
    /// needs more).
    pub fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER_ROOM + 64));
        buf.resize(HEADER_ROOM, 0);
        Self {
            buf,
            body_start: HEADER_ROOM,
            message_start: 0,
            day: None,
        }
    }

    /// Starts a message of type `msg_type` (field 35).
    pub fn begin(&mut self, msg_type: &[u8]) {
        self.buf.truncate(HEADER_ROOM);
        self.body_start = HEADER_ROOM;
        self.str(35, msg_type);
    }

    fn tag(&mut self, tag: u32) {
        // Tags are constants of one to five digits: each arm appends a constant-size array
        // (one capacity check, plain stores) rather than going through the integer writer.
        let digit = |n: u32| b'0' + (n % 10) as u8;
        match tag {
            0..=9 => self.buf.extend_from_slice(&[digit(tag), b'=']),
            10..=99 => self
                .buf
                .extend_from_slice(&[digit(tag / 10), digit(tag), b'=']),
            100..=999 => {
                self.buf
                    .extend_from_slice(&[digit(tag / 100), digit(tag / 10), digit(tag), b'='])
            }
            1_000..=9_999 => self.buf.extend_from_slice(&[
                digit(tag / 1_000),
                digit(tag / 100),
                digit(tag / 10),
                digit(tag),
                b'=',
            ]),
            _ => {
                push_u64(&mut self.buf, u64::from(tag));
                self.buf.push(b'=');
            }
        }
    }

    /// A field with raw bytes (must not contain SOH; the caller's values come from
    /// validated inputs or constants).
    pub fn str(&mut self, tag: u32, value: &[u8]) {
        self.tag(tag);
        self.buf.extend_from_slice(value);
        self.buf.push(SOH);
    }

    /// An unsigned integer field.
    pub fn uint(&mut self, tag: u32, value: u64) {
        self.tag(tag);
        let mut text = [0; NUMBER_TEXT];
        let from = write_digits(&mut text, NUMBER_END, value);
        put_number(&mut self.buf, &text, from);
        self.buf.push(SOH);
    }

    /// A signed integer field.
    pub fn int(&mut self, tag: u32, value: i64) {
        self.tag(tag);
        let mut text = [0; NUMBER_TEXT];
        let mut from = write_digits(&mut text, NUMBER_END, value.unsigned_abs());
        if value < 0 {
            from -= 1;
            text[from] = b'-';
        }
        put_number(&mut self.buf, &text, from);
        self.buf.push(SOH);
    }

    /// A single-character field.
    pub fn char(&mut self, tag: u32, value: u8) {
        self.tag(tag);
        self.buf.push(value);
        self.buf.push(SOH);
    }

    /// A boolean field (`Y`/`N`).
    pub fn bool(&mut self, tag: u32, value: bool) {
        self.char(tag, if value { b'Y' } else { b'N' });
    }

    /// A decimal field from a fixed-point mantissa with `places` decimals (exact, trailing
    /// zeros of the fraction dropped).
    pub fn decimal(&mut self, tag: u32, mantissa: i64, places: u8) {
        self.tag(tag);
        let mut text = [0; NUMBER_TEXT];
        let magnitude = mantissa.unsigned_abs();
        let places = usize::from(places.min(19));
        let (whole, mut fraction) = split_decimal(magnitude, places);
        let mut from = NUMBER_END;
        if fraction != 0 {
            let mut digits = places;
            while fraction.is_multiple_of(10) {
                fraction /= 10;
                digits -= 1;
            }
            from = write_digits_exact(&mut text, from, fraction, digits);
            from -= 1;
            text[from] = b'.';
        }
        from = write_digits(&mut text, from, whole);
        if mantissa < 0 {
            from -= 1;
            text[from] = b'-';
        }
        put_number(&mut self.buf, &text, from);
        self.buf.push(SOH);
    }

    /// A UTCTimestamp field with milliseconds (`YYYYMMDD-HH:MM:SS.sss`).
    pub fn timestamp(&mut self, tag: u32, time: UnixNanos) {
        self.tag(tag);
        let seconds = time.0 / 1_000_000_000;
        let millis = (time.0 % 1_000_000_000) / 1_000_000;
        let day = seconds / 86_400;
        let date = match self.day {
            Some((cached, date)) if cached == day => date,
            _ => {
                let date = date_text(day);
                self.day = Some((day, date));
                date
            }
        };
        let of_day = seconds % 86_400;
        let mut text = *b"00000000-00:00:00.000";
        text[..8].copy_from_slice(&date);
        for (at, value) in [
            (9, of_day / 3_600),
            (12, of_day % 3_600 / 60),
            (15, of_day % 60),
        ] {
            let pair = value as usize * 2;
            text[at] = DIGIT_PAIRS[pair];
            text[at + 1] = DIGIT_PAIRS[pair + 1];
        }
        text[18] = b'0' + (millis / 100) as u8;
        let pair = (millis % 100) as usize * 2;
        text[19] = DIGIT_PAIRS[pair];
        text[20] = DIGIT_PAIRS[pair + 1];
        self.buf.extend_from_slice(&text);
        self.buf.push(SOH);
    }

    /// A LocalMktDate field (`YYYYMMDD`), the UTC date of `time`.
    pub fn date(&mut self, tag: u32, time: UnixNanos) {
        self.tag(tag);
        self.buf
            .extend_from_slice(&date_text(time.0 / 86_400_000_000_000));
        self.buf.push(SOH);
    }

    /// Finishes the message: writes BeginString and BodyLength before the body and the
    /// CheckSum after it. The slice is valid until the next `begin`.
    pub fn finish(&mut self) -> &[u8] {
        let body_len = self.buf.len() - self.body_start;
        let mut digits = [0_u8; 8];
        let mut n = body_len;
        let mut count = 0;
        loop {
            digits[7 - count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let header_len = PREFIX.len() + count + 1;
        let start = self.body_start - header_len;
        self.buf[start..start + PREFIX.len()].copy_from_slice(PREFIX);
        self.buf[start + PREFIX.len()..start + PREFIX.len() + count]
            .copy_from_slice(&digits[8 - count..]);
        self.buf[self.body_start - 1] = SOH;
        let sum = checksum(&self.buf[start..]);
        self.buf.extend_from_slice(b"10=");
        self.buf.push(b'0' + sum / 100);
        self.buf.push(b'0' + sum / 10 % 10);
        self.buf.push(b'0' + sum % 10);
        self.buf.push(SOH);
        self.message_start = start;
        &self.buf[start..]
    }

    /// The last finished message.
    pub fn message(&self) -> &[u8] {
        &self.buf[self.message_start..]
    }
}

fn push_u64(buf: &mut Vec<u8>, value: u64) {
    let mut text = [0; NUMBER_TEXT];
    let from = write_digits(&mut text, NUMBER_END, value);
    put_number(buf, &text, from);
}

/// `(magnitude / 10^places, magnitude % 10^places)` with a constant divisor in every arm
/// (a multiplication, where a divisor known only at run time is a hardware division).
#[inline]
fn split_decimal(magnitude: u64, places: usize) -> (u64, u64) {
    macro_rules! split {
        ($($places:literal)*) => {
            match places {
                $($places => (magnitude / POW10[$places], magnitude % POW10[$places]),)*
                _ => (0, magnitude),
            }
        };
    }
    split!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18)
}

/// Scratch for writing a number backwards: it ends at `NUMBER_END`, at most 22 bytes
/// long (`-0.` and 19 digits), so a 32-byte window from its start always fits.
const NUMBER_TEXT: usize = 64;
const NUMBER_END: usize = 32;

/// Writes the digits of `value` (no leading zeros) backwards, ending before `end`;
/// returns where they start. Two digits per division.
#[inline]
fn write_digits(text: &mut [u8; NUMBER_TEXT], mut end: usize, mut value: u64) -> usize {
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        end -= 2;
        text[end] = DIGIT_PAIRS[pair];
        text[end + 1] = DIGIT_PAIRS[pair + 1];
    }
    if value >= 10 {
        let pair = value as usize * 2;
        end -= 2;
        text[end] = DIGIT_PAIRS[pair];
        text[end + 1] = DIGIT_PAIRS[pair + 1];
    } else {
        end -= 1;
        text[end] = b'0' + value as u8;
    }
    end
}

/// Writes exactly `count` digits of `value` (`value < 10^count`, zero-padded) backwards,
/// ending before `end`; returns where they start.
#[inline]
fn write_digits_exact(text: &mut [u8; NUMBER_TEXT], end: usize, value: u64, count: usize) -> usize {
    let start = end - count;
    let written = write_digits(text, end, value);
    for byte in &mut text[start..written] {
        *byte = b'0';
    }
    start
}

/// Appends `text[from..NUMBER_END]` by copying a fixed 32-byte window and trimming the
/// excess: a constant-size copy is a couple of vector moves, where a variable one is a
/// call to `memmove` (a quarter of the time of an ExecutionReport before this).
#[inline]
fn put_number(buf: &mut Vec<u8>, text: &[u8; NUMBER_TEXT], from: usize) {
    let from = from.min(NUMBER_END);
    buf.extend_from_slice(&text[from..from + 32]);
    buf.truncate(buf.len() - (32 - (NUMBER_END - from)));
}

/// `YYYYMMDD` of a day count since 1970-01-01.
fn date_text(days: u64) -> [u8; 8] {
    let (year, month, day) = civil_from_days(days);
    let mut text = [b'0'; 8];
    let year = year.min(9_999) as usize;
    for (at, value) in [
        (0, year / 100),
        (2, year % 100),
        (4, month as usize),
        (6, day as usize),
    ] {
        text[at] = DIGIT_PAIRS[value * 2];
        text[at + 1] = DIGIT_PAIRS[value * 2 + 1];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(text: &str) -> Vec<u8> {
        text.replace('|', "\x01").into_bytes()
    }

    /// A message with correct BodyLength and CheckSum from its body (`35=...|`).
    fn message(body: &str) -> Vec<u8> {
        let body = fix(body);
        let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
        out.extend_from_slice(&body);
        let sum = checksum(&out);
        out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        out
    }

    #[test]
    fn frames_whole_partial_and_back_to_back_messages() {
        let one = message("35=0|49=A|56=B|34=2|52=20240101-00:00:00.000|");
        assert_eq!(frame(&one, 4096), Framing::Complete(one.len()));
        for cut in 0..one.len() {
            assert_eq!(
                frame(&one[..cut], 4096),
                Framing::Incomplete,
                "cut at {cut}"
            );
        }
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(frame(&two, 4096), Framing::Complete(one.len()));
    }

    #[test]
    fn garbled_input_is_skipped_to_the_next_message() {
        let good = message("35=0|49=A|56=B|34=2|");
        let mut bad = good.clone();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'9' {
            b'0'
        } else {
            bad[last] + 1
        };
        assert_eq!(
            frame(&bad, 4096),
            Framing::Garbled {
                skip: bad.len(),
                reason: Garbled::BadCheckSum
            }
        );
        let mut noise = b"hello".to_vec();
        noise.extend_from_slice(&good);
        assert_eq!(
            frame(&noise, 4096),
            Framing::Garbled {
                skip: 5,
                reason: Garbled::NoBeginString
            }
        );
        assert!(matches!(
            frame(b"8=FIX.4.4\x019=12x\x01", 4096),
            Framing::Garbled {
                reason: Garbled::BadBodyLength,
                ..
            }
        ));
        assert!(matches!(
            frame(&good, 20),
            Framing::Garbled {
                reason: Garbled::BadBodyLength,
                ..
            }
        ));
        assert_eq!(
            frame(b"8=FIX.4.2\x019=5\x01", 4096),
            Framing::WrongBeginString
        );
    }

    /// The parser as first written (byte by byte): the optimised one must agree with it.
    fn parse_reference(bytes: &[u8]) -> Result<Vec<Field>, ParseError> {
        let mut fields = Vec::new();
        let mut at = 0_usize;
        while at < bytes.len() {
            let mut tag = 0_u32;
            let tag_start = at;
            while let Some(&byte) = bytes.get(at) {
                if byte == b'=' {
                    break;
                }
                if !byte.is_ascii_digit()
                    || (at == tag_start && byte == b'0')
                    || at - tag_start >= 9
                {
                    return Err(ParseError::InvalidTag { at: tag_start });
                }
                tag = tag * 10 + u32::from(byte - b'0');
                at += 1;
            }
            if at == tag_start || at >= bytes.len() {
                return Err(ParseError::InvalidTag { at: tag_start });
            }
            let start = at + 1;
            let Some(len) = memchr(SOH, &bytes[start..]) else {
                return Err(ParseError::EmptyValue { tag });
            };
            if len == 0 {
                return Err(ParseError::EmptyValue { tag });
            }
            if fields.len() == MAX_FIELDS {
                return Err(ParseError::TooManyFields);
            }
            fields.push(Field {
                tag,
                start: start as u32,
                end: (start + len) as u32,
            });
            at = start + len + 1;
        }
        for (index, expected) in [8_u32, 9, 35].into_iter().enumerate() {
            if fields.get(index).map(|f| f.tag) != Some(expected) {
                return Err(ParseError::HeaderOrder { tag: expected });
            }
        }
        if fields.last().map(|f| f.tag) != Some(10)
            || fields[..fields.len() - 1].iter().any(|f| f.tag == 10)
        {
            return Err(ParseError::TrailerOrder);
        }
        Ok(fields)
    }

    #[test]
    fn optimised_parser_agrees_with_the_reference() {
        let seeds = [
            message("35=D|49=DESK|56=AAITI|34=12|52=20240101-12:30:45.123|11=abc|10=1|"),
            message("35=0|49=A|56=B|34=2|52=20240101-00:00:00|112=a-long-test-request-id|"),
            fix("8=FIX.4.4|9=5|35=0|10=000|"),
        ];
        // NUL too: the SOH search may mark a NUL after a SOH (see `soh_bits`).
        let alphabet = b"0123456789=\x01=\x01\x00\x00AD.-|";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parser = Parser::new();
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % (bytes.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            let ours = parser.parse(&bytes).map(|m| m.fields().to_vec());
            assert_eq!(
                ours,
                parse_reference(&bytes),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // More fields than the limit.
        let many = message(&"35=0|".repeat(300));
        assert_eq!(
            parser.parse(&many).map(|_| ()),
            Err(ParseError::TooManyFields)
        );
        assert_eq!(
            parse_reference(&many).map(|_| ()),
            Err(ParseError::TooManyFields)
        );
    }

    #[test]
    fn padded_words_read_every_length() {
        let bytes: Vec<u8> = (1..=20).collect();
        for len in 1..=bytes.len() {
            let value = &bytes[..len];
            for at in 0..len {
                let mut expected = [0_u8; 8];
                let end = len.min(at + 8);
                expected[..end - at].copy_from_slice(&value[at..end]);
                assert_eq!(
                    value_word(value, at),
                    u64::from_le_bytes(expected),
                    "{len} {at}"
                );
            }
        }
    }

    /// The validation-only timestamp check accepts exactly what the converter accepts.
    #[test]
    fn timestamp_check_agrees_with_the_parser() {
        let seeds: [&[u8]; 6] = [
            b"20240101-12:30:45",
            b"20240229-23:59:60.123",
            b"19700101-00:00:00.000001",
            b"22621231-23:59:59.999999999",
            b"20230228-00:00:00.5",
            b"20241231-12:00:00.1234",
        ];
        let alphabet = b"0123456789-:.x\x00";
        let mut state = 0x853C_49E6_748F_EA9B_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..50_000 {
            let mut value = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 3) {
                let at = (next() as usize) % (value.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < value.len() => value[at] = byte,
                    1 => value.insert(at, byte),
                    _ => value.truncate(at),
                }
            }
            assert_eq!(
                is_utc_timestamp(&value),
                parse_utc_timestamp(&value).is_some(),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
    }

    /// Every month and day number around the limits, in leap and common years, and every
    /// hour, minute and second around theirs: the check and the converter agree.
    #[test]
    fn timestamp_check_agrees_on_every_date_and_time_edge() {
        for year in [1969, 1970, 2000, 2023, 2024, 2100, 2262, 2263] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for time in ["00:00:00", "23:59:60.999", "12:30:45.123456"] {
                        let value = format!("{year:04}{month:02}{day:02}-{time}");
                        assert_eq!(
                            is_utc_timestamp(value.as_bytes()),
                            parse_utc_timestamp(value.as_bytes()).is_some(),
                            "{value}"
                        );
                    }
                }
            }
        }
        for hour in 0..30 {
            for minute in (0..70).step_by(7).chain([59, 60]) {
                for second in [0, 9, 59, 60, 61, 69, 99] {
                    let value = format!("20240229-{hour:02}:{minute:02}:{second:02}");
                    assert_eq!(
                        is_utc_timestamp(value.as_bytes()),
                        parse_utc_timestamp(value.as_bytes()).is_some(),
                        "{value}"
                    );
                }
            }
        }
    }

    /// A NUL right after a SOH (which the SOH search may mark as one) gives the error the
    /// byte-by-byte parser gives.
    #[test]
    fn nul_after_a_field_is_an_invalid_tag() {
        let mut parser = Parser::new();
        for body in [
            "35=0|\0|49=A|",
            "35=0|\0\0\0|49=A|",
            "35=0|\x0049=A|",
            "35=0|49=A|\0",
            "35=0|49=\0\0|",
            "35=0|4\0=A|",
        ] {
            let bytes = message(body);
            assert_eq!(
                parser.parse(&bytes).map(|m| m.fields().to_vec()),
                parse_reference(&bytes),
                "{body:?}"
            );
        }
    }

    #[test]
    fn timestamps_reject_what_they_must() {
        for bad in [
            &b"2024010112:00:00"[..],
            b"20240101-12:00:0x",
            b"2024a101-12:00:00",
            b"20240101-12-00:00",
            b"19691231-23:59:59",
            b"22630101-00:00:00",
            b"20240101-12:00:00.12345",
            b"20240101-12:00:00,123",
            b"20240101-12:00:00.12a",
            b"20241301-00:00:00",
            b"20240100-00:00:00",
            b"20240101-00:60:00",
            b"20240101-00:00:61",
        ] {
            assert_eq!(
                parse_utc_timestamp(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_utc_timestamp(b"20240101-12:30:45.123456789"),
            Some(UnixNanos(1_704_112_245_123_456_789))
        );
        assert_eq!(
            parse_utc_timestamp(b"20240101-12:30:45.000001"),
            Some(UnixNanos(1_704_112_245_000_001_000))
        );
        assert_eq!(
            parse_date(b"20240229"),
            Some(UnixNanos(1_709_164_800_000_000_000))
        );
        assert_eq!(parse_date(b"20230229"), None);
        assert_eq!(parse_date(b"2024022"), None);
    }

    #[test]
    fn decimals_and_dates_encode_exactly() {
        let mut encoder = Encoder::new(256);
        encoder.begin(b"0");
        encoder.decimal(1, i64::MIN, 0);
        encoder.decimal(2, i64::MAX, 18);
        encoder.decimal(3, 0, 8);
        encoder.decimal(4, -5, 19);
        encoder.decimal(5, 1_000, 3);
        encoder.decimal(6, 12_345, 2);
        encoder.date(7, UnixNanos(1_709_251_199_999_000_000));
        let bytes = encoder.finish().to_vec();
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(msg.get(1), Some(&b"-9223372036854775808"[..]));
        assert_eq!(msg.get(2), Some(&b"9.223372036854775807"[..]));
        assert_eq!(msg.get(3), Some(&b"0"[..]));
        assert_eq!(msg.get(4), Some(&b"-0.0000000000000000005"[..]));
        assert_eq!(msg.get(5), Some(&b"1"[..]));
        assert_eq!(msg.get(6), Some(&b"123.45"[..]));
        assert_eq!(msg.get(7), Some(&b"20240229"[..]));
        for tag in [1_u32, 7, 11, 99, 100, 999, 1000, 20_001, 999_999_999] {
            encoder.begin(b"0");
            encoder.uint(tag, 1);
            let bytes = encoder.finish().to_vec();
            let msg = parser.parse(&bytes).unwrap();
            assert_eq!(msg.fields()[3].tag, tag);
        }
    }

    #[test]
    fn garbage_then_a_message_cut_in_its_begin_string_is_not_lost() {
        let good = message("35=0|49=A|56=B|34=2|");
        for cut in 1..6 {
            // Garbage, then the first `cut` bytes of a message: the tail is kept.
            let mut first = b"\x00junk".to_vec();
            first.extend_from_slice(&good[..cut]);
            let Framing::Garbled { skip, .. } = frame(&first, 4096) else {
                panic!("cut {cut}");
            };
            assert_eq!(skip, 5, "cut {cut}");
            let mut rest = first[skip..].to_vec();
            rest.extend_from_slice(&good[cut..]);
            assert_eq!(
                frame(&rest, 4096),
                Framing::Complete(good.len()),
                "cut {cut}"
            );
        }
        // Another version is recognised from its first bytes only.
        let long = b"8=FIXFIXFIXFIXFIXFIX\x01".to_vec();
        assert!(matches!(frame(&long, 4096), Framing::Garbled { .. }));
        assert_eq!(frame(&long[..10], 4096), Framing::Incomplete);
    }

    #[test]
    fn parses_fields_in_place() {
        let bytes = message("35=D|49=DESK|56=AAITI|34=12|52=20240101-12:30:45.123|11=abc|");
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(msg.msg_type(), b"D");
        assert_eq!(msg.get(11), Some(&b"abc"[..]));
        assert_eq!(msg.seq_num(), Ok(12));
        assert_eq!(
            msg.get_timestamp(52),
            Ok(Some(UnixNanos(1_704_112_245_123_000_000)))
        );
        assert_eq!(msg.get(999), None);
    }

    #[test]
    fn parse_errors_name_the_reject_reason() {
        let mut parser = Parser::new();
        let bytes = message("35=D|49=|");
        assert_eq!(
            parser.parse(&bytes).unwrap_err(),
            ParseError::EmptyValue { tag: 49 }
        );
        let bytes = message("35=D|4x9=A|");
        assert_eq!(parser.parse(&bytes).unwrap_err().session_reject_reason(), 0);
        let bytes = fix("8=FIX.4.4|35=D|9=5|10=000|");
        assert_eq!(
            parser.parse(&bytes).unwrap_err(),
            ParseError::HeaderOrder { tag: 9 }
        );
    }

    #[test]
    fn encoder_round_trips_through_the_parser() {
        let mut encoder = Encoder::new(256);
        encoder.begin(b"8");
        encoder.str(49, b"AAITI");
        encoder.uint(34, 1234);
        encoder.int(99, -5);
        encoder.decimal(44, 6_500_012_000, 5);
        encoder.decimal(38, 100_000, 5);
        encoder.decimal(31, -1, 2);
        encoder.timestamp(60, UnixNanos(1_704_112_245_123_456_789));
        let bytes = encoder.finish().to_vec();
        assert_eq!(frame(&bytes, 4096), Framing::Complete(bytes.len()));
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(msg.get(44), Some(&b"65000.12"[..]));
        assert_eq!(msg.get(38), Some(&b"1"[..]));
        assert_eq!(msg.get(31), Some(&b"-0.01"[..]));
        assert_eq!(msg.get(99), Some(&b"-5"[..]));
        assert_eq!(msg.get(60), Some(&b"20240101-12:30:45.123"[..]));
        // A second message reuses the buffer.
        encoder.begin(b"0");
        encoder.uint(34, 2);
        let again = encoder.finish();
        assert_eq!(frame(again, 4096), Framing::Complete(again.len()));
    }

    #[test]
    fn timestamps_round_trip_across_dates() {
        let mut encoder = Encoder::new(128);
        for nanos in [
            0_u64,
            951_782_400_000_000_000,   // 2000-02-29
            1_709_251_199_999_000_000, // 2024-02-29 23:59:59.999
            4_102_444_800_000_000_000, // 2100-01-01
        ] {
            encoder.begin(b"0");
            encoder.timestamp(52, UnixNanos(nanos));
            let bytes = encoder.finish().to_vec();
            let mut parser = Parser::new();
            let msg = parser.parse(&bytes).unwrap();
            assert_eq!(msg.get_timestamp(52), Ok(Some(UnixNanos(nanos))));
        }
        assert_eq!(parse_utc_timestamp(b"20230229-00:00:00"), None);
        assert_eq!(parse_utc_timestamp(b"20240101-24:00:00"), None);
        assert_eq!(parse_utc_timestamp(b"20240101-00:00:00.1"), None);
        assert!(parse_utc_timestamp(b"20240101-00:00:00.123456").is_some());
    }
}
