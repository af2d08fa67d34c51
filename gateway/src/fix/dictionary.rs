//! The FIX 4.4 dictionary the gateway validates inbound messages against (required fields,
//! data formats, value ranges, repeating groups).
//!
//! # What is checked
//!
//! [`classify`] sorts a MsgType (35) into the admin messages the session layer handles, the
//! application messages the gateway supports, the other FIX 4.4 (and user-defined `U...`)
//! types, which the gateway answers with a BusinessMessageReject (j) reason 3, and values
//! that are no MsgType at all, which get a session Reject (3) reason 11.
//!
//! [`validate`] checks one parsed message (the codec has already verified BeginString,
//! BodyLength, CheckSum, that 8, 9, 35 come first and 10 last, and that every field is
//! `tag=value` with a value) and returns the first problem as a session [`Reject`]:
//!
//! | reason | when |
//! |---:|---|
//! | 0 | a tag number no FIX 4.4 dictionary can define (see *Tag numbers*) |
//! | 1 | a required field is missing: header 49, 56, 34, 52; the message's own; 44 for limit and stop-limit orders, 99 for stop and stop-limit orders (D, G); 37 or 11 (H) |
//! | 2 | a tag this profile does not define for the message type |
//! | 3 | a tag in a user-defined range that the gateway does not define |
//! | 5 | a value outside its enumeration or range |
//! | 6 | a value that is not of the field's data type |
//! | 11 | not a FIX 4.4 MsgType |
//! | 13 | a tag appearing twice outside a repeating group |
//! | 14 | a standard header field after the first body field |
//! | 15 | a repeating group entry that does not start with the group's first field, a field out of the group's order or twice in one entry, or a group field outside its group |
//! | 16 | a NumInGroup of zero, or one that does not match the number of entries |
//!
//! Checks happen in message order (the first offending field wins), then the required
//! header fields, then the message's required and conditionally required fields.
//!
//! For the admin and supported application types every field is checked. For the other
//! (unsupported) types only the standard header is: the body is not read, the session
//! answers with a BusinessMessageReject.
//!
//! # Tag numbers
//!
//! * `1..=956`: the FIX 4.4 fields. One that the message's table below does not list is
//!   *not defined for this message type* (2).
//! * `5000..=9999` and `20000..=39999`: the user-defined ranges. The gateway defines
//!   20000 AdminReqID, 20001 AdminAction, 20002 AdminStatus and 20003 RiskState (see
//!   [`super::app`]); any other tag there is an *undefined tag* (3).
//! * everything else (`957..=4999`, `10000..=19999` — reserved for internal use — and
//!   `40000` up): *invalid tag number* (0).
//!
//! # The gateway's FIX 4.4 profile
//!
//! The tables list the fields the gateway reads for each message type, plus a few that it
//! accepts and ignores (Text, SecondaryClOrdID, Parties, ...). A FIX 4.4 field that the
//! standard allows in the message but that would change its meaning in a way the gateway
//! does not implement (MinQty, MaxFloor, ExpireDate, PegInstructions, ...) is rejected as
//! not defined for the message type rather than silently ignored.
//!
//! Standard header: 8, 9, 35, 49 SenderCompID, 56 TargetCompID, 34 MsgSeqNum, 52
//! SendingTime, and optionally 43 PossDupFlag, 97 PossResend, 122 OrigSendingTime, 50, 57,
//! 115, 116, 128, 129, 142, 143, 144, 145 (sub and location ids), 369
//! LastMsgSeqNumProcessed. Data fields (90/91 SecureData, 212/213 XmlData), NoHops (627) and
//! MessageEncoding (347) are not accepted.
//!
//! | MsgType | fields (required in bold) | groups |
//! |---|---|---|
//! | 0 Heartbeat | 112 | |
//! | 1 TestRequest | **112** | |
//! | 2 ResendRequest | **7**, **16** | |
//! | 3 Reject | **45**, 371, 372, 373, 58 | |
//! | 4 SequenceReset | **36**, 123 | |
//! | 5 Logout | 58 | |
//! | A Logon | **98**, **108**, 141, 383, 464, 553, 554, 789 | |
//! | D NewOrderSingle | **11**, **38**, **40**, **54**, **55**, **60**, 1, 18, 21, 44, 58, 59, 99, 126, 207, 526 | 453 |
//! | F OrderCancelRequest | **11**, **41**, **54**, **55**, **60**, 1, 37, 38, 58, 207, 526 | 453 |
//! | G OrderCancelReplaceRequest | **11**, **38**, **40**, **41**, **54**, **55**, **60**, 1, 18, 21, 37, 44, 58, 59, 99, 126, 207, 526 | 453 |
//! | H OrderStatusRequest | **54**, **55**, 1, 11, 37, 207, 790 | 453 |
//! | V MarketDataRequest | **262**, **263**, **264**, **267**, **146**, 265, 266 | 267 (269), 146 (55, 207) |
//! | AN RequestForPositions | **60**, **710**, **724**, 1, 55, 207, 263, 581, 715 | 453 |
//! | U1 AdminRequest | **20000**, **20001**, 1 | |
//!
//! Groups (first field = delimiter, then the order the fields must keep): 453 NoPartyIDs
//! (448, 447, 452), 267 NoMDEntryTypes (269), 146 NoRelatedSym (55, 207).
//!
//! FIX 4.4 makes Parties, Account, AccountType and ClearingBusinessDate required in
//! RequestForPositions; the gateway does not, because the session already identifies the
//! desk and its default account.
//!
//! # Data types
//!
//! * int: optional `-`, then digits (leading zeros allowed).
//! * SeqNum, Length, NumInGroup, TagNum and the non-negative counts (HeartBtInt,
//!   MarketDepth...): digits only, at most 18.
//! * Price, Qty, Amt, float: optional `-`, digits, then optionally `.` and digits: at least
//!   one digit on each side of the point (`.5` and `5.` are format errors), no exponent,
//!   no `+`, at most 64 bytes: exactly what [`aaiti_model::Price::parse`] accepts.
//! * char: one byte. Boolean: `Y` or `N`.
//! * UTCTimestamp: [`parse_utc_timestamp`](super::codec::parse_utc_timestamp).
//!   LocalMktDate: `YYYYMMDD`, a real date.
//! * MultipleValueString (18 ExecInst): single characters separated by single spaces.
//! * String: any bytes (the codec guarantees at least one and no SOH).
//!
//! Enumerations checked (the gateway's subset where it supports less than FIX 4.4):
//! 54 Side `1 2`; 40 OrdType `1 2 3 4`; 59 TimeInForce `0 1 3 4 6`; 21 HandlInst `1 2 3`;
//! 18 ExecInst every FIX 4.4 value (`0`-`9`, `A`-`Z` but `T`, `a`-`e`: unsupported ones are
//! the application layer's to refuse); 263 SubscriptionRequestType 0-2; 265 MDUpdateType
//! 0-1; 266 AggregatedBook and 43, 97, 123, 141, 464 Boolean; 269 MDEntryType `0`-`9`,
//! `A`-`C` (FIX 4.4's; the application layer refuses the ones it does not serve);
//! 98 EncryptMethod 0-6; 724 PosReqType 0-3; 581 AccountType 1, 2, 3, 6, 7, 8;
//! 373 SessionRejectReason 0-17, 99; 20001 AdminAction `H R K F S`.
//!
//! # Cost
//!
//! Two paths with the same answer, both on static tables built at compile time; nothing
//! allocates.
//!
//! * The short path, for a valid message of a served application type without repeating
//!   groups (every order): no loop over the fields. The parser has recorded which of the
//!   tags the gateway knows (59 of them, each a *column*) are present, which appear more
//!   than once and where (the codec's crate-internal `Index`); the message type's column
//!   masks (allowed, required, typed, NumInGroup) settle the structure in a few bit
//!   operations, the header order is checked on the header fields' positions, and then
//!   only the fields with a type other than String have their values checked, one loop
//!   per type. It answers only "valid"; anything else goes to the long path.
//! * The long path, field by field in message order, names the first problem: per
//!   message type a 2 KiB table gives each tag below 1024 its slot in 64-bit seen and
//!   required sets, its class (header, body, NumInGroup, group field) and its type.

use super::Reject;
use super::codec::{Field, Message, is_utc_timestamp, parse_date, parse_u64, value_word};

/// What kind of message a MsgType (35) is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MsgClass {
    /// A session message: 0, 1, 2, 3, 4, 5, A.
    Admin,
    /// An application message the gateway serves: D, F, G, H, V, AN and the user-defined
    /// U1 AdminRequest.
    Application,
    /// Any other FIX 4.4 MsgType, or a user-defined one (`U` and one to three letters or
    /// digits) other than U1: answered with a BusinessMessageReject (j), reason 3.
    Unsupported,
    /// Not a FIX 4.4 MsgType: a session Reject (3), reason 11.
    Invalid,
}

/// Classifies a MsgType value.
pub fn classify(msg_type: &[u8]) -> MsgClass {
    match msg_type {
        b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A" => MsgClass::Admin,
        b"D" | b"F" | b"G" | b"H" | b"V" | b"AN" | b"U1" => MsgClass::Application,
        _ if is_fix44_msg_type(msg_type) || is_user_defined_msg_type(msg_type) => {
            MsgClass::Unsupported
        }
        _ => MsgClass::Invalid,
    }
}

/// Every MsgType FIX 4.4 defines: `0`-`9`, the upper-case letters but `I`, `O` and `U`, all
/// lower-case letters, `AA`-`AZ` and `BA`-`BH`.
fn is_fix44_msg_type(msg_type: &[u8]) -> bool {
    match *msg_type {
        [c] => {
            c.is_ascii_digit()
                || c.is_ascii_lowercase()
                || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'O' | b'U'))
        }
        [b'A', c] => c.is_ascii_uppercase(),
        [b'B', c] => (b'A'..=b'H').contains(&c),
        _ => false,
    }
}

/// FIX reserves MsgTypes beginning with `U` for user-defined messages.
fn is_user_defined_msg_type(msg_type: &[u8]) -> bool {
    matches!(msg_type, [b'U', rest @ ..] if (1..=3).contains(&rest.len())
        && rest.iter().all(u8::is_ascii_alphanumeric))
}

/// Highest tag FIX 4.4 defines (LegInterestAccrualDate).
const MAX_FIX44_TAG: u32 = 956;

/// The tags the gateway defines in the user-defined range (see [`super::app`]).
const GATEWAY_TAGS: std::ops::RangeInclusive<u32> = 20_000..=20_003;

// ---------------------------------------------------------------------------------------
// Data types
// ---------------------------------------------------------------------------------------

/// How a field's value is checked.
#[derive(Copy, Clone, Debug)]
enum Ty {
    /// Any bytes.
    Str,
    /// Digits only (SeqNum, Length, NumInGroup, non-negative int).
    Count,
    /// Signed decimal (Price, Qty, Amt, float).
    Decimal,
    /// One byte.
    Char,
    /// `Y` or `N`.
    Bool,
    /// UTCTimestamp.
    Timestamp,
    /// LocalMktDate.
    Date,
    /// One of the bytes of this mask (built by [`chars`]).
    CharIn(u128),
    /// A non-negative int whose bit is set in the mask (values 0..128).
    IntIn(u128),
    /// Single characters from the mask, separated by single spaces.
    CharsIn(u128),
}

/// A mask of int values for [`Ty::IntIn`].
const fn ints(values: &[u32]) -> u128 {
    let mut mask = 0;
    let mut i = 0;
    while i < values.len() {
        mask |= 1 << values[i];
        i += 1;
    }
    mask
}

/// A mask of ASCII bytes for [`Ty::CharIn`] and [`Ty::CharsIn`] (a bit test rather than a
/// search of the set).
const fn chars(set: &[u8]) -> u128 {
    let mut mask = 0;
    let mut i = 0;
    while i < set.len() {
        mask |= 1 << set[i];
        i += 1;
    }
    mask
}

/// True if `byte` is in a [`chars`] mask (as two 64-bit halves: a 128-bit shift is a
/// handful of instructions).
#[inline(always)]
fn in_chars(mask: u128, byte: u8) -> bool {
    let half = match byte {
        0..64 => mask as u64,
        64..128 => (mask >> 64) as u64,
        _ => return false,
    };
    half >> (byte % 64) & 1 != 0
}

/// Every FIX 4.4 ExecInst value.
const EXEC_INST: u128 = chars(b"0123456789ABCDEFGHIJKLMNOPQRSUVWXYZabcde");

/// Every distinct type of the tables, indexed by [`ty_index`].
const TYPES: [Ty; 20] = [
    Ty::Str,
    Ty::Count,
    Ty::Decimal,
    Ty::Bool,
    Ty::Timestamp,
    Ty::Date,
    Ty::Char,
    Ty::CharsIn(EXEC_INST),
    Ty::CharIn(chars(b"123")),
    Ty::CharIn(chars(b"1234")),
    Ty::CharIn(chars(b"12")),
    Ty::CharIn(chars(b"01346")),
    Ty::CharIn(chars(b"0123456789ABC")),
    Ty::CharIn(chars(b"HRKFS")),
    Ty::IntIn(ints(&[0, 1, 2, 3, 4, 5, 6])),
    Ty::IntIn(ints(&[0, 1, 2])),
    Ty::IntIn(ints(&[0, 1])),
    Ty::IntIn(ints(&[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 99,
    ])),
    Ty::IntIn(ints(&[1, 2, 3, 6, 7, 8])),
    Ty::IntIn(ints(&[0, 1, 2, 3])),
];

/// The type of every tag the tables allow, as an index into [`TYPES`].
const fn ty_index(tag: u32) -> u8 {
    match tag {
        7 | 16 | 34 | 36 | 45 | 108 | 146 | 264 | 267 | 369 | 371 | 383 | 452 | 453 | 789 => 1,
        38 | 44 | 99 => 2,
        43 | 97 | 123 | 141 | 266 | 464 => 3,
        52 | 60 | 122 | 126 => 4,
        715 => 5,
        447 => 6,
        18 => 7,
        21 => 8,
        40 => 9,
        54 => 10,
        59 => 11,
        269 => 12,
        20_001 => 13,
        98 => 14,
        263 => 15,
        265 => 16,
        373 => 17,
        581 => 18,
        724 => 19,
        _ => 0,
    }
}

/// Digits only, 1 to 18 of them.
fn is_count(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 18 && value.iter().all(u8::is_ascii_digit)
}

/// `[-]digits[.digits]`, at most 64 bytes (the fixed-point parser's limit).
fn is_decimal(value: &[u8]) -> bool {
    let unsigned = match value {
        [b'-', rest @ ..] => rest,
        _ => value,
    };
    let len = unsigned.len();
    if (1..=8).contains(&len) {
        return is_short_decimal(value_word(unsigned, 0), len);
    }
    if value.len() > 64 || len == 0 {
        return false;
    }
    // One pass: digits, and at most one point with a digit on each side.
    let mut dot = usize::MAX;
    for (index, &byte) in unsigned.iter().enumerate() {
        if byte.wrapping_sub(b'0') > 9 {
            if byte != b'.' || dot != usize::MAX {
                return false;
            }
            dot = index;
        }
    }
    dot == usize::MAX || (dot > 0 && dot + 1 < len)
}

/// [`is_decimal`] for a field's value: one word from the message for values of up to
/// eight bytes after the sign (prices and quantities nearly always).
#[inline(always)]
fn is_decimal_field(msg: &Message<'_>, field: &Field) -> bool {
    let len = field.end.saturating_sub(field.start) as usize;
    let first = msg.value_word(field, 0);
    let sign = usize::from(first as u8 == b'-');
    let unsigned = len - sign.min(len);
    if (1..=8).contains(&unsigned) {
        let word = if sign == 1 {
            msg.value_word(field, 1)
        } else {
            first
        };
        is_short_decimal(word, unsigned)
    } else {
        is_decimal(msg.value(field))
    }
}

/// [`is_decimal`] for 1 to 8 bytes without a sign, given as a word (zero past them):
/// every byte that is not a digit must be a point, there is at most one, and it is
/// neither first nor last.
#[inline(always)]
fn is_short_decimal(word: u64, len: usize) -> bool {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte of the value.
    let valid = HIGHS >> (8 * (8 - len));
    let x = word ^ 0x3030_3030_3030_3030;
    // Exact per byte: the low seven bits plus 0x76 reach the high bit from 10 up, and a
    // byte with the high bit set is no digit either.
    let not_digit = (((x & 0x7F7F_7F7F_7F7F_7F7F) + 0x7676_7676_7676_7676) | x) & valid;
    let y = word ^ 0x2E2E_2E2E_2E2E_2E2E;
    let dot = !(((y & 0x7F7F_7F7F_7F7F_7F7F) + 0x7F7F_7F7F_7F7F_7F7F) | y) & valid;
    let ends = 0x80 | (0x80 << (8 * (len - 1)));
    not_digit == dot && dot.count_ones() <= 1 && dot & ends == 0
}

fn reject(reason: u32, tag: u32, text: &'static str) -> Reject {
    Reject {
        reason,
        ref_tag: Some(tag),
        text,
    }
}

/// What is wrong with a value: kept to one byte so that a check returns in a register;
/// the caller builds the [`Reject`] (off the hot path).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Bad {
    /// Reason 5: value is incorrect (out of range) for this tag.
    Range,
    /// Reason 6: incorrect data format for value.
    Format,
}

/// The session Reject for a value of `tag` that failed its check.
#[cold]
fn bad_value(bad: Bad, tag: u32) -> Reject {
    match bad {
        Bad::Range => reject(5, tag, "value is incorrect (out of range) for this tag"),
        Bad::Format => reject(6, tag, "incorrect data format for value"),
    }
}

/// `Ok` if `good`, else `bad`.
#[inline]
fn verdict(good: bool, bad: Bad) -> Result<(), Bad> {
    if good { Ok(()) } else { Err(bad) }
}

/// Checks one value against its type ([`TYPES`] index `ty`, from the tag's [`Entry`]).
/// One arm per type with the type a constant, so that each arm is that type's check alone
/// (its masks immediate operands) and the dispatch a jump table.
#[inline(always)]
fn check_value(ty: usize, msg: &Message<'_>, field: &Field) -> Result<(), Bad> {
    let value = msg.value(field);
    macro_rules! dispatch {
        ($($index:literal)*) => {
            match ty {
                $($index => check_ty(const { TYPES[$index] }, value, msg, field),)*
                // Not a type index (the tables only hold `ty_index` values).
                _ => Ok(()),
            }
        };
    }
    dispatch!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19)
}

/// [`check_value`] out of line, for the long path of [`validate`].
#[inline(never)]
fn check_value_cold(ty: usize, msg: &Message<'_>, field: &Field) -> Result<(), Bad> {
    check_value(ty, msg, field)
}

/// Checks one value against a type.
#[inline(always)]
fn check_ty(ty: Ty, value: &[u8], msg: &Message<'_>, field: &Field) -> Result<(), Bad> {
    match ty {
        Ty::Str => Ok(()),
        Ty::Count => verdict(is_count(value), Bad::Format),
        Ty::Decimal => verdict(is_decimal_field(msg, field), Bad::Format),
        Ty::Char => verdict(value.len() == 1, Bad::Format),
        Ty::Bool => match value {
            b"Y" | b"N" => Ok(()),
            [_] => Err(Bad::Range),
            _ => Err(Bad::Format),
        },
        Ty::Timestamp => verdict(is_utc_timestamp(value), Bad::Format),
        Ty::Date => verdict(parse_date(value).is_some(), Bad::Format),
        Ty::CharIn(set) => match value {
            [byte] => verdict(in_chars(set, *byte), Bad::Range),
            _ => Err(Bad::Format),
        },
        Ty::IntIn(mask) => match parse_u64(value) {
            Some(n) => verdict(n < 128 && mask & (1 << n) != 0, Bad::Range),
            None => Err(Bad::Format),
        },
        Ty::CharsIn(set) => {
            // "A B C": odd length, a character at every even index, spaces between.
            if value.len().is_multiple_of(2) {
                return Err(Bad::Format);
            }
            for (index, byte) in value.iter().enumerate() {
                if index % 2 == 1 {
                    if *byte != b' ' {
                        return Err(Bad::Format);
                    }
                } else if *byte == b' ' {
                    return Err(Bad::Format);
                } else if !in_chars(set, *byte) {
                    return Err(Bad::Range);
                }
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------

/// The tags that have a column in the parser's [`Index`](super::codec::Index): the
/// framing fields, the standard header and every field of the application messages the
/// gateway serves (the admin messages' own fields do not need one: those messages take
/// the field-by-field path). A tag's column is its position here + 1; column 0 stands for
/// every other tag. At most 63.
const COLUMN_TAGS: [u32; 59] = [
    // Framing.
    8, 9, 35, 10, //
    // Standard header.
    49, 56, 34, 52, 43, 50, 57, 97, 115, 116, 122, 128, 129, 142, 143, 144, 145, 369, //
    // Application bodies.
    1, 11, 18, 21, 37, 38, 40, 41, 44, 54, 55, 58, 59, 60, 99, 126, 207, 453, 526, 790, 146, 262,
    263, 264, 265, 266, 267, 581, 710, 715, 724, 20_000, 20_001, //
    // Repeating group fields.
    447, 448, 452, 269,
];

// Columns fit in the index's 64-bit masks, and no tag has two.
const _: () = {
    assert!(COLUMN_TAGS.len() < 64);
    let mut index = 0;
    while index < COLUMN_TAGS.len() {
        assert!(
            column(COLUMN_TAGS[index]) == index + 1,
            "a tag listed twice"
        );
        index += 1;
    }
};

/// The column of `tag` (0: none), for building tables.
pub(crate) const fn column(tag: u32) -> usize {
    let mut index = 0;
    while index < COLUMN_TAGS.len() {
        if COLUMN_TAGS[index] == tag {
            return index + 1;
        }
        index += 1;
    }
    0
}

/// [`column`] of every tag below 1024.
static COLUMNS: [u8; 1024] = {
    let mut table = [0_u8; 1024];
    let mut index = 0;
    while index < COLUMN_TAGS.len() {
        let tag = COLUMN_TAGS[index] as usize;
        if tag < 1024 {
            table[tag] = (index + 1) as u8;
        }
        index += 1;
    }
    table
};

/// The column of `tag`, as the parser looks it up for every field (a table load).
#[inline(always)]
pub(crate) fn column_of(tag: u32) -> usize {
    match COLUMNS.get(tag as usize) {
        Some(&column) => usize::from(column),
        None => high_column(tag),
    }
}

/// [`column_of`] for a tag of at most three digits (the parser's common case): the table
/// without the bounds check.
#[inline(always)]
pub(crate) fn short_column(tag: u32) -> usize {
    usize::from(COLUMNS[tag as usize % COLUMNS.len()])
}

/// [`column`] of the tags from 1024 on (the gateway's user-defined ones).
#[cold]
fn high_column(tag: u32) -> usize {
    const ADMIN_REQ_ID: usize = column(20_000);
    const ADMIN_ACTION: usize = column(20_001);
    match tag {
        20_000 => ADMIN_REQ_ID,
        20_001 => ADMIN_ACTION,
        _ => 0,
    }
}

/// The columns of `tags` as a mask; `None` if one has no column.
const fn columns_of(tags: &[u32]) -> Option<u64> {
    let mut mask = 0;
    let mut index = 0;
    while index < tags.len() {
        let column = column(tags[index]);
        if column == 0 {
            return None;
        }
        mask |= 1 << column;
        index += 1;
    }
    Some(mask)
}

/// The columns of the standard header fields but the framing ones.
const HEADER_COLUMNS: u64 = match columns_of(HEADER_TAGS) {
    Some(mask) => mask & !FRAMING_COLUMNS,
    None => panic!("every header tag has a column"),
};

/// The columns of 8, 9, 35 and 10, present in every parsed message.
const FRAMING_COLUMNS: u64 = match columns_of(&[8, 9, 35, 10]) {
    Some(mask) => mask,
    None => panic!("the framing tags have columns"),
};

/// What the short path of [`validate`] needs of a message type: masks of columns.
#[derive(Copy, Clone, Debug)]
struct Columns {
    /// The fields allowed outside repeating groups: framing, header, body.
    allowed: u64,
    /// The required fields.
    required: u64,
    /// The fields with a value to check (type other than String).
    typed: u64,
    /// The NumInGroup fields (a message with one takes the long path).
    groups: u64,
}

/// [`Columns`] of a message type with these body tags; `None` if one has no column (then
/// every message of the type takes the long path).
const fn spec_columns(body: &[u32], required: &[u32], groups: &[&GroupSpec]) -> Option<Columns> {
    let Some(body_columns) = columns_of(body) else {
        return None;
    };
    let Some(required_columns) = columns_of(required) else {
        return None;
    };
    let Some(header_required) = columns_of(&[49, 56, 34, 52]) else {
        return None;
    };
    let allowed = FRAMING_COLUMNS | HEADER_COLUMNS | body_columns;
    let mut typed = 0;
    let mut col = 1;
    while col <= COLUMN_TAGS.len() {
        if allowed & (1 << col) != 0 && ty_index(COLUMN_TAGS[col - 1]) != 0 {
            typed |= 1 << col;
        }
        col += 1;
    }
    let mut group_columns = 0;
    let mut index = 0;
    while index < groups.len() {
        group_columns |= 1 << column(groups[index].count);
        index += 1;
    }
    Some(Columns {
        allowed,
        required: required_columns | header_required,
        typed,
        groups: group_columns,
    })
}

/// The columns of the tags of type `ty` ([`TYPES`] index), for the short path's value
/// checks: one loop per type, its check inlined, instead of a dispatch per field.
const fn columns_of_type(ty: u8) -> u64 {
    let mut mask = 0;
    let mut index = 0;
    while index < COLUMN_TAGS.len() {
        if ty_index(COLUMN_TAGS[index]) == ty {
            mask |= 1 << (index + 1);
        }
        index += 1;
    }
    mask
}

// ---------------------------------------------------------------------------------------
// Message tables
// ---------------------------------------------------------------------------------------

/// A repeating group: its NumInGroup tag and its fields, the delimiter first, in the order
/// entries must keep.
#[derive(Debug)]
struct GroupSpec {
    count: u32,
    fields: &'static [u32],
}

impl GroupSpec {
    fn position(&self, tag: u32) -> Option<usize> {
        self.fields.iter().position(|&t| t == tag)
    }
}

/// A conditional requirement beyond the fixed required list.
#[derive(Copy, Clone, Debug)]
enum Rule {
    None,
    /// 44 for OrdType 2 and 4, 99 for OrdType 3 and 4 (D, G).
    OrderPrices,
    /// 37 or 11 (H).
    OrderReference,
}

/// What one tag is in one message type, packed in 16 bits so that a field costs one load:
///
/// | bits | meaning |
/// |---|---|
/// | 0-5 | the tag's slot: its bit in the message type's 64-bit sets (seen, required) |
/// | 6-9 | its class: [`IN_HEADER`], [`IN_BODY`], [`GROUP_COUNT`], [`GROUP_FIELD`] |
/// | 10-14 | its type, an index into [`TYPES`] (fewer than 32) |
///
/// `0` (no class): the tag is not defined for the message type.
type Entry = u16;

const SLOT_MASK: Entry = 0x3F;
const CLASS_SHIFT: u32 = 6;
const TYPE_SHIFT: u32 = 10;

/// A standard header field.
const IN_HEADER: u8 = 1;
/// A body field outside groups.
const IN_BODY: u8 = 2;
/// The NumInGroup field of a repeating group.
const GROUP_COUNT: u8 = 4;
/// A field of a repeating group.
const GROUP_FIELD: u8 = 8;

/// The class bits of an entry.
#[inline]
const fn class_of(entry: Entry) -> u8 {
    (entry >> CLASS_SHIFT) as u8 & 0xF
}

/// The slot bit of an entry.
#[inline]
const fn bit_of(entry: Entry) -> u64 {
    1 << (entry & SLOT_MASK)
}

/// The standard header, the four required fields first: a header tag's slot is its index
/// here, the same in every message type, so the required header fields are bits 0-3.
const HEADER_TAGS: &[u32] = &[
    49, 56, 34, 52, 8, 9, 35, 43, 50, 57, 97, 115, 116, 122, 128, 129, 142, 143, 144, 145, 369,
];

/// Required in every message's standard header (the first slots).
const HEADER_REQUIRED: u64 = 0b1111;

/// The slots of the tags the codec checks (8, 9, 35), set before the first body field so
/// that a second one is a duplicate.
const FRAMING_SEEN: u64 = 0b111_0000;

/// Entries of tags at or above this number (the gateway's user-defined tags) are kept in a
/// short list rather than the table.
const TABLE_TAGS: usize = 1024;

/// Room for user-defined tags in one message type.
const MAX_HIGH: usize = 4;

/// One message type's table, built at compile time by [`spec`].
struct MsgSpec {
    /// The entry of every tag below [`TABLE_TAGS`].
    entries: [Entry; TABLE_TAGS],
    /// `(tag, entry)` for the tags above (tag 0: an unused place).
    high: [(u32, Entry); MAX_HIGH],
    /// The tag of each slot (for naming a missing one).
    slot_tags: [u32; 64],
    /// The slots that must be seen: the header's four, then the message's own in the order
    /// they are reported when missing (the lowest missing slot is named).
    required: u64,
    groups: &'static [&'static GroupSpec],
    rule: Rule,
    /// False for the table of the types the gateway does not serve: only the header is
    /// checked.
    served: bool,
    /// For the short path of [`validate`]; `None`: always the long one.
    columns: Option<Columns>,
}

impl MsgSpec {
    /// The entry of `tag` in this message type.
    #[inline]
    fn entry(&self, tag: u32) -> Entry {
        match self.entries.get(tag as usize) {
            Some(&entry) => entry,
            None => self
                .high
                .iter()
                .find(|&&(t, _)| t == tag)
                .map_or(0, |&(_, entry)| entry),
        }
    }

    /// True if `seen` holds `tag` (one of this type's tags).
    fn has(&self, seen: u64, tag: u32) -> bool {
        let entry = self.entry(tag);
        class_of(entry) != 0 && seen & bit_of(entry) != 0
    }

    fn group(&self, count_tag: u32) -> Option<&'static GroupSpec> {
        self.groups.iter().copied().find(|g| g.count == count_tag)
    }
}

const fn contains(tags: &[u32], tag: u32) -> bool {
    let mut i = 0;
    while i < tags.len() {
        if tags[i] == tag {
            return true;
        }
        i += 1;
    }
    false
}

/// The tables of a message type: every header tag, then the required body tags in their
/// order, then the other body tags, then the group fields each get the next slot; a tag's
/// entry says its slot, class and type. Tables that do not fit fail the build.
const fn spec(
    body: &[u32],
    required: &[u32],
    groups: &'static [&'static GroupSpec],
    rule: Rule,
    served: bool,
) -> MsgSpec {
    let mut entries = [0; TABLE_TAGS];
    let mut high = [(0, 0); MAX_HIGH];
    let mut slot_tags = [0; 64];
    let mut required_slots = HEADER_REQUIRED;
    let mut slot = 0;
    // One list of (tag, class) in slot order.
    let mut order = [(0_u32, 0_u8); 64];
    let mut i = 0;
    while i < HEADER_TAGS.len() {
        order[slot] = (HEADER_TAGS[i], IN_HEADER);
        slot += 1;
        i += 1;
    }
    i = 0;
    while i < required.len() {
        assert!(
            contains(body, required[i]),
            "a required tag must be a body tag"
        );
        order[slot] = (required[i], IN_BODY);
        required_slots |= 1 << slot;
        slot += 1;
        i += 1;
    }
    i = 0;
    while i < body.len() {
        if !contains(required, body[i]) {
            order[slot] = (body[i], IN_BODY);
            slot += 1;
        }
        i += 1;
    }
    i = 0;
    while i < groups.len() {
        let mut j = 0;
        while j < groups[i].fields.len() {
            assert!(
                !contains(body, groups[i].fields[j]),
                "a group field is not also a body field"
            );
            order[slot] = (groups[i].fields[j], GROUP_FIELD);
            slot += 1;
            j += 1;
        }
        i += 1;
    }
    let mut high_len = 0;
    i = 0;
    while i < slot {
        let (tag, mut class) = order[i];
        let mut g = 0;
        while g < groups.len() {
            if groups[g].count == tag {
                assert!(class == IN_BODY, "a NumInGroup tag is a body tag");
                class |= GROUP_COUNT;
            }
            g += 1;
        }
        let entry = i as Entry
            | ((class as Entry) << CLASS_SHIFT)
            | ((ty_index(tag) as Entry) << TYPE_SHIFT);
        if (tag as usize) < TABLE_TAGS {
            assert!(entries[tag as usize] == 0, "a tag listed twice");
            entries[tag as usize] = entry;
        } else {
            high[high_len] = (tag, entry);
            high_len += 1;
        }
        slot_tags[i] = tag;
        i += 1;
    }
    MsgSpec {
        entries,
        high,
        slot_tags,
        required: required_slots,
        groups,
        rule,
        served,
        columns: if served {
            spec_columns(body, required, groups)
        } else {
            None
        },
    }
}

const PARTIES: GroupSpec = GroupSpec {
    count: 453,
    fields: &[448, 447, 452],
};
const MD_ENTRY_TYPES: GroupSpec = GroupSpec {
    count: 267,
    fields: &[269],
};
const RELATED_SYM: GroupSpec = GroupSpec {
    count: 146,
    fields: &[55, 207],
};

/// The types the gateway does not serve: only the standard header is known.
static HEADER_ONLY: MsgSpec = spec(&[], &[], &[], Rule::None, false);

static HEARTBEAT: MsgSpec = spec(&[112], &[], &[], Rule::None, true);
static TEST_REQUEST: MsgSpec = spec(&[112], &[112], &[], Rule::None, true);
static RESEND_REQUEST: MsgSpec = spec(&[7, 16], &[7, 16], &[], Rule::None, true);
static SESSION_REJECT: MsgSpec = spec(&[45, 371, 372, 373, 58], &[45], &[], Rule::None, true);
static SEQUENCE_RESET: MsgSpec = spec(&[36, 123], &[36], &[], Rule::None, true);
static LOGOUT: MsgSpec = spec(&[58], &[], &[], Rule::None, true);
static LOGON: MsgSpec = spec(
    &[98, 108, 141, 383, 464, 553, 554, 789],
    &[98, 108],
    &[],
    Rule::None,
    true,
);
static NEW_ORDER_SINGLE: MsgSpec = spec(
    &[
        1, 11, 18, 21, 38, 40, 44, 54, 55, 58, 59, 60, 99, 126, 207, 453, 526,
    ],
    &[11, 54, 55, 60, 38, 40],
    &[&PARTIES],
    Rule::OrderPrices,
    true,
);
static ORDER_CANCEL_REQUEST: MsgSpec = spec(
    &[1, 11, 37, 38, 41, 54, 55, 58, 60, 207, 453, 526],
    &[41, 11, 55, 54, 60],
    &[&PARTIES],
    Rule::None,
    true,
);
static ORDER_CANCEL_REPLACE_REQUEST: MsgSpec = spec(
    &[
        1, 11, 18, 21, 37, 38, 40, 41, 44, 54, 55, 58, 59, 60, 99, 126, 207, 453, 526,
    ],
    &[41, 11, 55, 54, 60, 38, 40],
    &[&PARTIES],
    Rule::OrderPrices,
    true,
);
static ORDER_STATUS_REQUEST: MsgSpec = spec(
    &[1, 11, 37, 54, 55, 207, 453, 790],
    &[55, 54],
    &[&PARTIES],
    Rule::OrderReference,
    true,
);
static MARKET_DATA_REQUEST: MsgSpec = spec(
    &[262, 263, 264, 265, 266, 267, 146],
    &[262, 263, 264, 267, 146],
    &[&MD_ENTRY_TYPES, &RELATED_SYM],
    Rule::None,
    true,
);
static REQUEST_FOR_POSITIONS: MsgSpec = spec(
    &[1, 55, 60, 207, 263, 453, 581, 710, 715, 724],
    &[710, 724, 60],
    &[&PARTIES],
    Rule::None,
    true,
);
static ADMIN_REQUEST: MsgSpec = spec(
    &[1, 20_000, 20_001],
    &[20_000, 20_001],
    &[],
    Rule::None,
    true,
);

/// The table of a served MsgType (exactly the [`MsgClass::Admin`] and
/// [`MsgClass::Application`] ones).
fn spec_for(msg_type: &[u8]) -> Option<&'static MsgSpec> {
    Some(match msg_type {
        b"0" => &HEARTBEAT,
        b"1" => &TEST_REQUEST,
        b"2" => &RESEND_REQUEST,
        b"3" => &SESSION_REJECT,
        b"4" => &SEQUENCE_RESET,
        b"5" => &LOGOUT,
        b"A" => &LOGON,
        b"D" => &NEW_ORDER_SINGLE,
        b"F" => &ORDER_CANCEL_REQUEST,
        b"G" => &ORDER_CANCEL_REPLACE_REQUEST,
        b"H" => &ORDER_STATUS_REQUEST,
        b"V" => &MARKET_DATA_REQUEST,
        b"AN" => &REQUEST_FOR_POSITIONS,
        b"U1" => &ADMIN_REQUEST,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Reason 0 or 3 for tag numbers outside what FIX 4.4 and the gateway define (see the
/// module docs).
fn check_tag_number(tag: u32) -> Result<(), Reject> {
    match tag {
        1..=MAX_FIX44_TAG => Ok(()),
        _ if GATEWAY_TAGS.contains(&tag) => Ok(()),
        5_000..=9_999 | 20_000..=39_999 => Err(reject(3, tag, "undefined tag")),
        _ => Err(reject(0, tag, "invalid tag number")),
    }
}

/// A repeating group being read.
struct OpenGroup {
    spec: &'static GroupSpec,
    declared: u64,
    entries: u64,
    /// Position in `spec.fields` of the last field of the current entry.
    last: usize,
}

impl OpenGroup {
    fn close(&self) -> Result<(), Reject> {
        if self.entries == self.declared {
            Ok(())
        } else {
            Err(reject(
                16,
                self.spec.count,
                "incorrect NumInGroup count for repeating group",
            ))
        }
    }
}

/// The type bits of an entry, as an index into [`TYPES`].
#[inline]
const fn type_of(entry: Entry) -> usize {
    (entry >> TYPE_SHIFT) as usize & 0x1F
}

/// Validates a parsed inbound message against the gateway's FIX 4.4 profile (see the
/// module docs for every check and its order).
///
/// Two paths with the same answer. The short one proves a message valid with the
/// parser's (crate-internal) index of where the known tags are: every field allowed in
/// the message type and none twice, the header fields first, the required fields
/// present, no repeating group, then the values with a type checked; it answers only
/// "valid". Anything else (a problem, a repeating group, a tag without a column, an admin
/// or unsupported message type) takes the long path, which reads the fields in order and
/// names the first problem.
///
/// # Errors
///
/// The first problem found, as the session Reject to send.
pub fn validate(msg: &Message<'_>) -> Result<(), Reject> {
    let fields = msg.fields();
    if fields.len() < 4 {
        // The parser never hands out fewer (8, 9, 35, 10); stay total anyway.
        return Err(reject(1, 35, "required tag missing"));
    }
    let spec = match spec_for(msg.msg_type()) {
        Some(spec) => spec,
        None if classify(msg.msg_type()) == MsgClass::Invalid => {
            return Err(reject(11, 35, "invalid MsgType"));
        }
        None => &HEADER_ONLY,
    };
    if let Some(columns) = &spec.columns
        && is_valid_by_columns(msg, spec, columns)
    {
        return Ok(());
    }
    validate_in_order(msg, spec)
}

/// The short path of [`validate`]: true only if the long path would find nothing wrong.
///
/// Why it agrees: with no column repeated and every one allowed in the type (column 0,
/// the tags without one, never is), each field is a header or body field of the type
/// appearing once, so the long path finds no undefined tag, duplicate or group field
/// outside its group; with no NumInGroup, no group opens; 8, 9, 35 are the first three
/// fields (the parser checked) and the other `h` header fields all lie before position
/// `3 + h`, so they are positions 3 to `2 + h`, before every body field; the typed values
/// pass the same checks; the required fields and the order rules hold.
#[inline]
fn is_valid_by_columns(msg: &Message<'_>, spec: &MsgSpec, columns: &Columns) -> bool {
    const ORD_TYPE: usize = column(40);
    const PRICE: u64 = 1 << column(44);
    const STOP_PRICE: u64 = 1 << column(99);
    const ORDER_ID: u64 = 1 << column(37);
    const CL_ORD_ID: u64 = 1 << column(11);
    let index = msg.index();
    let present = index.present;
    if index.repeated != 0
        || present & !columns.allowed != 0
        || present & columns.groups != 0
        || columns.required & !present != 0
    {
        return false;
    }
    // The header fields but 8, 9, 35: `count` of them, all before position `3 + count`.
    let (mut rest, mut count, mut last) = (present & HEADER_COLUMNS, 0, 0);
    while rest != 0 {
        let column = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        count += 1;
        last = last.max(usize::from(index.last[column % 64]));
    }
    if last >= 3 + count {
        return false;
    }
    let typed = present & columns.typed;
    macro_rules! check_types {
        ($($ty:literal)*) => {$(
            let mut rest = typed & const { columns_of_type($ty) };
            while rest != 0 {
                let column = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let Some(field) = msg.last_in_column(column) else {
                    return false;
                };
                let value = msg.value(field);
                if check_ty(const { TYPES[$ty] }, value, msg, field).is_err() {
                    return false;
                }
            }
        )*};
    }
    // Type 0, String, has nothing to check. The types of the order messages' fields
    // first; the others, skipped together when none is there.
    check_types!(1 2 3 4 7 8 9 10 11);
    const OTHER_TYPES: u64 = {
        let others = [5, 6, 12, 13, 14, 15, 16, 17, 18, 19];
        let mut mask = 0;
        let mut index = 0;
        while index < others.len() {
            mask |= columns_of_type(others[index]);
            index += 1;
        }
        mask
    };
    if typed & OTHER_TYPES != 0 {
        check_types!(5 6 12 13 14 15 16 17 18 19);
    }
    match spec.rule {
        Rule::None => true,
        Rule::OrderPrices => {
            let ord_type = msg
                .last_in_column(ORD_TYPE)
                .and_then(|field| msg.value(field).first().copied());
            !(matches!(ord_type, Some(b'2' | b'4')) && present & PRICE == 0
                || matches!(ord_type, Some(b'3' | b'4')) && present & STOP_PRICE == 0)
        }
        Rule::OrderReference => present & (ORDER_ID | CL_ORD_ID) != 0,
    }
}

/// The long path of [`validate`]: the fields in order, the first problem named.
#[inline(never)]
fn validate_in_order(msg: &Message<'_>, spec: &MsgSpec) -> Result<(), Reject> {
    let fields = msg.fields();
    // 8, 9 and 35 are the parser's to place; a second one is a duplicate.
    let mut seen = FRAMING_SEEN;
    let mut in_header = true;
    let mut group: Option<OpenGroup> = None;
    let mut ord_type = None;
    for field in fields.get(3..fields.len() - 1).unwrap_or_default() {
        let tag = field.tag;
        let entry = spec.entry(tag);
        let class = class_of(entry);
        if !spec.served && class & IN_HEADER == 0 {
            // Unsupported type: the body is not ours to check.
            in_header = false;
            continue;
        }
        if tag > MAX_FIX44_TAG {
            check_tag_number(tag)?;
        }
        if let Some(open) = &mut group {
            match open.spec.position(tag) {
                Some(0) if open.entries < open.declared => {
                    open.entries += 1;
                    open.last = 0;
                    check_value_cold(type_of(entry), msg, field)
                        .map_err(|bad| bad_value(bad, tag))?;
                    continue;
                }
                Some(0) => {
                    return Err(reject(
                        16,
                        open.spec.count,
                        "more repeating group entries than NumInGroup",
                    ));
                }
                Some(position) if open.entries > 0 && position > open.last => {
                    open.last = position;
                    check_value_cold(type_of(entry), msg, field)
                        .map_err(|bad| bad_value(bad, tag))?;
                    continue;
                }
                Some(_) => {
                    return Err(reject(15, tag, "repeating group fields out of order"));
                }
                None => {
                    open.close()?;
                    group = None;
                }
            }
        }
        if class & IN_HEADER != 0 {
            if !in_header {
                return Err(reject(14, tag, "tag specified out of required order"));
            }
        } else {
            in_header = false;
            if class & IN_BODY == 0 {
                return Err(if class & GROUP_FIELD != 0 {
                    reject(15, tag, "repeating group field outside its group")
                } else {
                    reject(2, tag, "tag not defined for this message type")
                });
            }
        }
        // A header or body tag: it has a slot of its own.
        let bit = bit_of(entry);
        if seen & bit != 0 {
            return Err(reject(13, tag, "tag appears more than once"));
        }
        seen |= bit;
        check_value_cold(type_of(entry), msg, field).map_err(|bad| bad_value(bad, tag))?;
        if tag == 40 {
            ord_type = msg.value(field).first().copied();
        }
        if class & GROUP_COUNT != 0
            && let Some(group_spec) = spec.group(tag)
        {
            let declared = parse_u64(msg.value(field)).unwrap_or(0);
            if declared == 0 {
                return Err(reject(16, tag, "NumInGroup must be positive"));
            }
            group = Some(OpenGroup {
                spec: group_spec,
                declared,
                entries: 0,
                last: 0,
            });
        }
    }
    if let Some(open) = &group {
        open.close()?;
    }
    let missing = |tag| reject(1, tag, "required tag missing");
    // The lowest missing slot: the header's in order, then the message's own in order.
    let absent = spec.required & !seen;
    if absent != 0 {
        return Err(missing(
            spec.slot_tags[absent.trailing_zeros() as usize % 64],
        ));
    }
    match spec.rule {
        Rule::None => {}
        Rule::OrderPrices => {
            if matches!(ord_type, Some(b'2' | b'4')) && !spec.has(seen, 44) {
                return Err(missing(44));
            }
            if matches!(ord_type, Some(b'3' | b'4')) && !spec.has(seen, 99) {
                return Err(missing(99));
            }
        }
        Rule::OrderReference => {
            if !spec.has(seen, 37) && !spec.has(seen, 11) {
                return Err(missing(11));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::{Parser, checksum};

    /// A framed message from its body after 35 (`D|49=...|`), `|` for SOH.
    fn message(msg_type: &str, body: &str) -> Vec<u8> {
        let body = format!("35={msg_type}|{body}").replace('|', "\x01");
        let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
        out.extend_from_slice(body.as_bytes());
        let sum = checksum(&out);
        out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        out
    }

    const HEADER_FIELDS: &str = "49=DESK|56=AAITI|34=7|52=20240101-12:00:00.000|";

    fn check(msg_type: &str, body: &str) -> Result<(), Reject> {
        let bytes = message(msg_type, &format!("{HEADER_FIELDS}{body}"));
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        validate(&msg)
    }

    fn reason(result: Result<(), Reject>) -> (u32, Option<u32>) {
        let reject = result.unwrap_err();
        (reject.reason, reject.ref_tag)
    }

    const ORDER: &str = "11=A1|55=BTCUSDT|54=1|60=20240101-12:00:00|38=0.5|40=2|44=65000.5|";

    #[test]
    fn classifies_every_msg_type() {
        for admin in ["0", "1", "2", "3", "4", "5", "A"] {
            assert_eq!(classify(admin.as_bytes()), MsgClass::Admin, "{admin}");
        }
        for app in ["D", "F", "G", "H", "V", "AN", "U1"] {
            assert_eq!(classify(app.as_bytes()), MsgClass::Application, "{app}");
        }
        for other in [
            "6", "7", "8", "9", "B", "E", "J", "R", "Z", "a", "j", "z", "AA", "AE", "AZ", "BA",
            "BH", "U2", "UX9",
        ] {
            assert_eq!(classify(other.as_bytes()), MsgClass::Unsupported, "{other}");
        }
        for invalid in ["I", "O", "U", "BI", "CA", "AAA", "", "a1", "U1234", "Ü"] {
            assert_eq!(classify(invalid.as_bytes()), MsgClass::Invalid, "{invalid}");
        }
    }

    #[test]
    fn accepts_valid_messages_of_every_supported_type() {
        let ok = [
            ("0", ""),
            ("0", "112=T1|"),
            ("1", "112=T1|"),
            ("2", "7=1|16=0|"),
            ("3", "45=3|371=44|372=D|373=5|58=bad|"),
            ("4", "36=10|123=Y|"),
            ("5", "58=bye|"),
            ("A", "98=0|108=30|141=Y|553=desk|554=secret|"),
            ("D", ORDER),
            (
                "D",
                "1=acct|11=A1|21=1|55=BTCUSDT|207=binance|54=2|60=20240101-12:00:00.123456|\
                 38=1|40=4|44=1|99=2|59=6|126=20240102-00:00:00|18=6 E|453=2|448=X|447=D|\
                 452=3|448=Y|452=11|526=S|58=text|",
            ),
            ("D", "11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=1|"),
            ("D", "11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=3|99=5|"),
            (
                "F",
                "41=A1|11=A2|55=BTCUSDT|54=1|60=20240101-12:00:00|37=5|",
            ),
            (
                "G",
                "41=A1|11=A2|55=BTCUSDT|54=1|60=20240101-12:00:00|38=1|40=2|44=1|",
            ),
            ("H", "11=A1|55=BTCUSDT|54=1|"),
            ("H", "37=12|55=BTCUSDT|54=1|790=R|"),
            (
                "V",
                "262=M1|263=1|264=10|265=1|266=Y|267=2|269=0|269=1|146=2|55=BTCUSDT|\
                 207=binance|55=ETHUSDT|",
            ),
            (
                "AN",
                "710=P1|724=0|60=20240101-12:00:00|715=20240101|1=acct|581=1|263=0|",
            ),
            ("U1", "20000=R1|20001=K|1=acct|"),
            // Unsupported types: only the header is checked.
            ("E", "9999=x|1=2|1=3|"),
        ];
        for (msg_type, body) in ok {
            assert_eq!(check(msg_type, body), Ok(()), "{msg_type} {body}");
        }
    }

    #[test]
    fn reason_0_invalid_tag_number() {
        assert_eq!(
            reason(check("D", &format!("{ORDER}957=x|"))),
            (0, Some(957))
        );
        assert_eq!(
            reason(check("D", &format!("{ORDER}10000=x|"))),
            (0, Some(10_000))
        );
        assert_eq!(
            reason(check("0", "40000=x|")),
            (0, Some(40_000)),
            "checked for every type"
        );
    }

    #[test]
    fn reason_1_required_tag_missing() {
        let header = "56=AAITI|34=7|52=20240101-12:00:00|";
        let bytes = message("0", header);
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(reason(validate(&msg)), (1, Some(49)));
        assert_eq!(reason(check("1", "")), (1, Some(112)));
        assert_eq!(reason(check("2", "7=1|")), (1, Some(16)));
        assert_eq!(reason(check("3", "")), (1, Some(45)));
        assert_eq!(reason(check("4", "123=N|")), (1, Some(36)));
        assert_eq!(reason(check("A", "98=0|")), (1, Some(108)));
        assert_eq!(
            reason(check("D", "55=S|54=1|60=20240101-12:00:00|38=1|40=1|")),
            (1, Some(11))
        );
        assert_eq!(
            reason(check("D", "11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=2|")),
            (1, Some(44)),
            "limit orders need a price"
        );
        assert_eq!(
            reason(check(
                "D",
                "11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=4|44=1|"
            )),
            (1, Some(99)),
            "stop-limit orders need a stop price"
        );
        assert_eq!(
            reason(check(
                "G",
                "11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=3|41=B|"
            )),
            (1, Some(99))
        );
        assert_eq!(
            reason(check("F", "11=A|55=S|54=1|60=20240101-12:00:00|")),
            (1, Some(41))
        );
        assert_eq!(reason(check("H", "55=S|54=1|")), (1, Some(11)));
        assert_eq!(
            reason(check("V", "262=M|263=0|264=1|267=1|269=0|")),
            (1, Some(146))
        );
        assert_eq!(
            reason(check("AN", "710=P|60=20240101-12:00:00|")),
            (1, Some(724))
        );
        assert_eq!(reason(check("U1", "20000=R|")), (1, Some(20_001)));
    }

    #[test]
    fn reason_2_tag_not_defined_for_the_message_type() {
        assert_eq!(reason(check("0", "58=x|")), (2, Some(58)));
        assert_eq!(
            reason(check("D", &format!("{ORDER}110=1|"))),
            (2, Some(110)),
            "MinQty is FIX 4.4 but not in the profile"
        );
        assert_eq!(
            reason(check("U1", "20000=R|20001=H|20003=x|")),
            (2, Some(20_003))
        );
        assert_eq!(reason(check("A", "98=0|108=30|627=1|")), (2, Some(627)));
    }

    #[test]
    fn reason_3_undefined_user_tag() {
        assert_eq!(
            reason(check("D", &format!("{ORDER}5001=x|"))),
            (3, Some(5001))
        );
        assert_eq!(
            reason(check("D", &format!("{ORDER}20004=x|"))),
            (3, Some(20_004))
        );
    }

    #[test]
    fn reason_5_value_out_of_range() {
        let base = "11=A|55=S|60=20240101-12:00:00|38=1|";
        let cases = [
            ("54=3|40=1|", 54),
            ("54=1|40=5|", 40),
            ("54=1|40=1|59=2|", 59),
            ("54=1|40=1|21=4|", 21),
            ("54=1|40=1|18=6 T|", 18),
        ];
        for (fields, tag) in cases {
            let body = format!("{base}{fields}");
            assert_eq!(reason(check("D", &body)), (5, Some(tag)), "{body}");
        }
        assert_eq!(reason(check("A", "98=7|108=30|")), (5, Some(98)));
        assert_eq!(reason(check("A", "98=0|108=30|141=X|")), (5, Some(141)));
        assert_eq!(reason(check("4", "36=2|123=y|")), (5, Some(123)));
        assert_eq!(
            reason(check("V", "262=M|263=3|264=1|267=1|269=0|146=1|55=S|")),
            (5, Some(263))
        );
        assert_eq!(
            reason(check(
                "V",
                "262=M|263=1|264=1|265=2|267=1|269=0|146=1|55=S|"
            )),
            (5, Some(265))
        );
        assert_eq!(
            reason(check("V", "262=M|263=0|264=1|267=1|269=D|146=1|55=S|")),
            (5, Some(269))
        );
        assert_eq!(
            reason(check("AN", "710=P|724=4|60=20240101-12:00:00|")),
            (5, Some(724))
        );
        assert_eq!(reason(check("3", "45=1|373=18|")), (5, Some(373)));
        assert_eq!(reason(check("U1", "20000=R|20001=X|")), (5, Some(20_001)));
    }

    #[test]
    fn reason_6_incorrect_data_format() {
        let cases = [
            ("38=1e5", 38),
            ("38=.5", 38),
            ("38=5.", 38),
            ("38=+5", 38),
            ("38=1.2.3", 38),
            ("38=--1", 38),
            ("60=20240101-12:00", 60),
            ("60=20240230-12:00:00", 60),
            ("18=6E", 18),
            ("18= 6", 18),
            ("18=6  E", 18),
            ("54=11", 54),
        ];
        for (field, tag) in cases {
            let mut body = ORDER.replace("38=0.5|", "").replace("54=1|", "");
            if tag == 60 {
                body = body.replace("60=20240101-12:00:00|", "");
            }
            if tag != 38 {
                body.push_str("38=1|");
            }
            if tag != 54 {
                body.push_str("54=1|");
            }
            body.push_str(field);
            body.push('|');
            assert_eq!(reason(check("D", &body)), (6, Some(tag)), "{body}");
        }
        assert_eq!(reason(check("2", "7=-1|16=0|")), (6, Some(7)));
        assert_eq!(reason(check("A", "98=0|108=3x|")), (6, Some(108)));
        assert_eq!(reason(check("A", "98=0|108=30|141=YES|")), (6, Some(141)));
        assert_eq!(
            reason(check(
                "AN",
                "710=P|724=0|60=20240101-12:00:00|715=20241301|"
            )),
            (6, Some(715))
        );
        let bytes = message("0", "49=A|56=B|34=x|52=20240101-12:00:00|");
        let mut parser = Parser::new();
        assert_eq!(
            reason(validate(&parser.parse(&bytes).unwrap())),
            (6, Some(34))
        );
    }

    #[test]
    fn reason_11_invalid_msg_type() {
        assert_eq!(reason(check("I", "")), (11, Some(35)));
        assert_eq!(reason(check("ZZ", "")), (11, Some(35)));
    }

    #[test]
    fn reason_13_tag_appears_more_than_once() {
        assert_eq!(reason(check("D", &format!("{ORDER}55=X|"))), (13, Some(55)));
        assert_eq!(reason(check("0", "49=AGAIN|")), (13, Some(49)));
        assert_eq!(reason(check("0", "35=0|")), (13, Some(35)));
        assert_eq!(
            reason(check("E", "34=8|")),
            (13, Some(34)),
            "header duplicates are checked for unsupported types too"
        );
    }

    #[test]
    fn reason_14_header_field_after_the_body() {
        let bytes = message("1", "49=A|56=B|112=T|34=1|52=20240101-12:00:00|");
        let mut parser = Parser::new();
        assert_eq!(
            reason(validate(&parser.parse(&bytes).unwrap())),
            (14, Some(34))
        );
    }

    #[test]
    fn reason_15_repeating_group_order() {
        // An entry must start with the delimiter.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=1|447=D|448=X|"))),
            (15, Some(447))
        );
        // Fields keep the group's order within an entry.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=1|448=X|452=3|447=D|"))),
            (15, Some(447))
        );
        // A field twice in one entry.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=1|448=X|447=D|447=D|"))),
            (15, Some(447))
        );
        // A group field outside its group.
        assert_eq!(
            reason(check("D", &format!("{ORDER}448=X|"))),
            (15, Some(448))
        );
        assert_eq!(
            reason(check(
                "V",
                "262=M|263=0|264=1|267=1|269=0|146=1|55=S|262=N|"
            )),
            (13, Some(262))
        );
        assert_eq!(
            reason(check(
                "V",
                "262=M|263=0|264=1|146=1|55=S|267=1|269=0|207=X|"
            )),
            (15, Some(207))
        );
    }

    #[test]
    fn reason_16_num_in_group_count() {
        // Fewer entries than declared.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=2|448=X|"))),
            (16, Some(453))
        );
        // Fewer, with the group followed by a body field.
        assert_eq!(
            reason(check("V", "262=M|263=0|264=1|267=2|269=0|146=1|55=S|")),
            (16, Some(267))
        );
        // More entries than declared.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=1|448=X|448=Y|"))),
            (16, Some(453))
        );
        // Zero.
        assert_eq!(
            reason(check("V", "262=M|263=0|264=1|267=0|146=1|55=S|")),
            (16, Some(267))
        );
        // Declared, no entry at all.
        assert_eq!(
            reason(check("D", &format!("{ORDER}453=1|"))),
            (16, Some(453))
        );
    }

    /// The short path of `validate` never calls a message valid that the long path
    /// rejects: messages of every type, valid and mutated field by field (fields dropped,
    /// repeated, moved, values replaced, tags added), checked both ways.
    #[test]
    fn the_short_path_agrees_with_the_long_one() {
        let seeds = [
            ("D", ORDER.to_owned()),
            (
                "D",
                "1=acct|11=A1|21=1|55=BTCUSDT|207=binance|54=2|60=20240101-12:00:00.123456|\
                 38=1|40=4|44=1|99=2|59=6|126=20240102-00:00:00|18=6 E|526=S|58=text|"
                    .to_owned(),
            ),
            (
                "D",
                "50=T|11=A|55=S|54=1|60=20240101-12:00:00|38=1|40=3|99=5|".to_owned(),
            ),
            (
                "F",
                "41=A1|11=A2|55=BTCUSDT|54=1|60=20240101-12:00:00|37=5|".to_owned(),
            ),
            (
                "G",
                "41=A1|11=A2|55=BTCUSDT|54=1|60=20240101-12:00:00|38=1|40=2|44=1|".to_owned(),
            ),
            ("H", "11=A1|55=BTCUSDT|54=1|790=R|".to_owned()),
            ("H", "37=12|55=BTCUSDT|54=1|".to_owned()),
            (
                "AN",
                "710=P1|724=0|60=20240101-12:00:00|715=20240101|1=acct|581=1|263=0|".to_owned(),
            ),
            ("U1", "20000=R1|20001=K|1=acct|".to_owned()),
            (
                "V",
                "262=M1|263=1|264=10|265=1|266=Y|267=1|269=0|146=1|55=S|".to_owned(),
            ),
            ("0", "112=T|".to_owned()),
        ];
        let values = [
            "0",
            "1",
            "2",
            "3",
            "4",
            "6",
            "E",
            "Y",
            "N",
            "x",
            "-1.5",
            "1.",
            "6 E",
            "6 T",
            "20240101-12:00:00",
            "20240230-12:00:00",
            "20240101-24:00:00.000",
            "20241301",
            "12345678901234567890",
            "A1",
            "BTCUSDT",
        ];
        let tags = [
            1, 11, 18, 21, 34, 37, 38, 40, 41, 43, 44, 49, 50, 52, 54, 55, 56, 58, 59, 60, 97, 99,
            122, 126, 207, 447, 448, 452, 453, 526, 581, 710, 715, 724, 790, 957, 5001, 20_000,
            20_001, 20_002, 269, 146, 112, 35, 9, 8,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut parser = Parser::new();
        let (mut valid, mut checked) = (0, 0);
        for round in 0..20_000 {
            let (msg_type, body) = &seeds[round % seeds.len()];
            let mut fields: Vec<String> = format!("{HEADER_FIELDS}{body}")
                .split('|')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            for _ in 0..next(4) {
                let at = next(fields.len() + 1);
                match next(5) {
                    0 if !fields.is_empty() => {
                        fields.remove(at.min(fields.len() - 1));
                    }
                    1 if !fields.is_empty() => {
                        let copy = fields[next(fields.len())].clone();
                        fields.insert(at, copy);
                    }
                    2 if fields.len() > 1 => {
                        let (a, b) = (next(fields.len()), next(fields.len()));
                        fields.swap(a, b);
                    }
                    3 if !fields.is_empty() => {
                        let i = at.min(fields.len() - 1);
                        let tag = fields[i].split('=').next().unwrap_or("58").to_owned();
                        fields[i] = format!("{tag}={}", values[next(values.len())]);
                    }
                    _ => fields.insert(
                        at,
                        format!("{}={}", tags[next(tags.len())], values[next(values.len())]),
                    ),
                }
            }
            let body = fields.iter().map(|f| format!("{f}|")).collect::<String>();
            let bytes = message(msg_type, &body);
            let Ok(msg) = parser.parse(&bytes) else {
                continue;
            };
            let Some(spec) = spec_for(msg.msg_type()) else {
                continue;
            };
            checked += 1;
            let short = spec
                .columns
                .as_ref()
                .is_some_and(|columns| is_valid_by_columns(&msg, spec, columns));
            let long = validate_in_order(&msg, spec);
            if short {
                valid += 1;
                assert_eq!(long, Ok(()), "{msg_type} {body}");
            }
            assert_eq!(validate(&msg), long, "{msg_type} {body}");
        }
        // The mutations leave enough messages valid, and the short path takes them.
        assert!(checked > 15_000 && valid > 2_000, "{checked} {valid}");
    }

    /// The parser's lookups give every tag the column the list gives it.
    #[test]
    fn column_lookups_match_the_list() {
        for tag in (0..2048).chain(19_990..20_010).chain([u32::MAX]) {
            assert_eq!(column_of(tag), column(tag), "{tag}");
            if tag < 1000 {
                assert_eq!(short_column(tag), column(tag), "{tag}");
            }
        }
        assert_ne!(column(20_001), 0);
        assert_eq!(column(112), 0, "admin message fields have no column");
    }

    #[test]
    fn class_tables_match_the_specs() {
        for msg_type in [
            "0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "V", "AN", "U1",
        ] {
            let spec = spec_for(msg_type.as_bytes()).unwrap();
            let class = |tag| class_of(spec.entry(tag));
            for group in spec.groups {
                assert_eq!(class(group.count), GROUP_COUNT | IN_BODY);
                for &field in group.fields {
                    assert_eq!(class(field), GROUP_FIELD);
                }
            }
            // Every tag with a class has a slot of its own, named back by `slot_tags`, and
            // the type `ty_index` gives it.
            let mut slots = 0_u64;
            for tag in (1..1024).chain(20_000..20_010) {
                let entry = spec.entry(tag);
                if class_of(entry) == 0 {
                    assert_eq!(entry, 0, "{msg_type} {tag}");
                    continue;
                }
                assert_eq!(slots & bit_of(entry), 0, "{msg_type} {tag}: slot taken");
                slots |= bit_of(entry);
                assert_eq!(spec.slot_tags[usize::from(entry & SLOT_MASK)], tag);
                assert_eq!(type_of(entry), usize::from(ty_index(tag)));
            }
            assert_eq!(
                spec.required & !slots,
                0,
                "{msg_type}: required without a slot"
            );
            for (slot, &tag) in HEADER_TAGS.iter().enumerate() {
                assert_eq!(class(tag), IN_HEADER);
                assert_eq!(usize::from(spec.entry(tag) & SLOT_MASK), slot);
                assert_eq!(HEADER_ONLY.entry(tag), spec.entry(tag));
            }
        }
        // The fixed slots the validation relies on.
        for (bits, tags) in [
            (HEADER_REQUIRED, &[49, 56, 34, 52][..]),
            (FRAMING_SEEN, &[8, 9, 35]),
        ] {
            let expected = tags
                .iter()
                .fold(0, |set, &tag| set | bit_of(HEADER_ONLY.entry(tag)));
            assert_eq!(bits, expected);
        }
        assert_eq!(
            (1..1024).filter(|&tag| HEADER_ONLY.entry(tag) != 0).count(),
            HEADER_TAGS.len()
        );
    }

    /// The one-word check of short decimals agrees with the byte loop.
    #[test]
    fn short_decimals_agree_with_the_loop() {
        fn by_bytes(unsigned: &[u8]) -> bool {
            let mut dot = None;
            for (index, &byte) in unsigned.iter().enumerate() {
                if byte == b'.' && dot.is_none() {
                    dot = Some(index);
                } else if !byte.is_ascii_digit() {
                    return false;
                }
            }
            match dot {
                None => !unsigned.is_empty(),
                Some(at) => at > 0 && at + 1 < unsigned.len(),
            }
        }
        let alphabet = b"0159.-/:\x00\xAE";
        for len in 1..=4 {
            let mut digits = vec![0_usize; len];
            loop {
                let value: Vec<u8> = digits.iter().map(|&d| alphabet[d]).collect();
                assert_eq!(
                    is_short_decimal(value_word(&value, 0), len),
                    by_bytes(&value),
                    "{value:?}"
                );
                let Some(at) = digits.iter().position(|&d| d + 1 < alphabet.len()) else {
                    break;
                };
                digits[at] += 1;
                digits[..at].fill(0);
            }
        }
        for value in [
            "12345678", "1234.678", "1.345678", "1234567.", ".2345678", "12.45.78",
        ] {
            assert_eq!(
                is_short_decimal(value_word(value.as_bytes(), 0), 8),
                by_bytes(value.as_bytes())
            );
        }
    }

    /// Decimals read from the message a word at a time, signed and not, short and long,
    /// at the end of the message too, agree with the slice check.
    #[test]
    fn decimal_fields_agree_with_the_slice_check() {
        let mut parser = Parser::new();
        for value in [
            "1",
            "-1",
            "0.5",
            "-0.5",
            ".5",
            "5.",
            "-",
            "--1",
            "12345678",
            "-12345678",
            "1234567.8",
            "-1234.5678",
            "123456789",
            "1.2.3",
            "1e5",
            "+1",
            "-.5",
        ] {
            for trailing in ["", "58=x|"] {
                let body = format!(
                    "{HEADER_FIELDS}11=A|55=S|54=1|60=20240101-12:00:00|40=1|{trailing}38={value}|"
                );
                let bytes = message("D", &body);
                let msg = parser.parse(&bytes).unwrap();
                let field = msg.fields().iter().find(|f| f.tag == 38).unwrap();
                assert_eq!(
                    is_decimal_field(&msg, field),
                    is_decimal(value.as_bytes()),
                    "{value}"
                );
            }
        }
    }

    #[test]
    fn decimals_follow_the_fixed_point_grammar() {
        for good in ["0", "-1", "00012.5", "1.000000", "-0.00000001"] {
            assert!(is_decimal(good.as_bytes()), "{good}");
        }
        for bad in ["", "-", ".5", "5.", "1e5", "+1", "1.2.3", " 1", "1,5"] {
            assert!(!is_decimal(bad.as_bytes()), "{bad}");
        }
        assert!(!is_decimal(&[b'1'; 65]));
    }
}
