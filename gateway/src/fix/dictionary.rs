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
//! * UTCTimestamp: [`parse_utc_timestamp`]. LocalMktDate: `YYYYMMDD`, a real date.
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
//! One pass over the fields with static tables built at compile time: per message type a
//! 1 KiB table says what each tag below 1024 is (header, body, NumInGroup, group field),
//! one shared 1 KiB table gives each tag's type; the seen-tags set is a 136-byte bitset on
//! the stack. Nothing allocates.

use super::Reject;
use super::codec::{Message, parse_date, parse_u64, parse_utc_timestamp};

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
// Tag sets
// ---------------------------------------------------------------------------------------

/// Words of a [`TagSet`]: tags 0..1024 then the 64 tags from 20000.
const WORDS: usize = 17;

/// A set of tags as a bitset: standard tags by number, the gateway's user-defined tags
/// after them. Built at compile time for the tables, on the stack for "seen".
#[derive(Copy, Clone)]
struct TagSet([u64; WORDS]);

impl TagSet {
    const EMPTY: Self = Self([0; WORDS]);

    /// The bit of `tag`, if the set can hold it.
    const fn slot(tag: u32) -> Option<usize> {
        if tag < 1024 {
            Some(tag as usize)
        } else if tag >= 20_000 && tag < 20_064 {
            Some(1024 + (tag - 20_000) as usize)
        } else {
            None
        }
    }

    const fn of(tags: &[u32]) -> Self {
        let mut set = Self::EMPTY;
        let mut i = 0;
        while i < tags.len() {
            let slot = Self::slot(tags[i]);
            assert!(slot.is_some(), "tag outside the TagSet range");
            if let Some(slot) = slot {
                set.0[slot / 64] |= 1 << (slot % 64);
            }
            i += 1;
        }
        set
    }

    fn contains(&self, tag: u32) -> bool {
        Self::slot(tag).is_some_and(|slot| self.0[slot / 64] & (1 << (slot % 64)) != 0)
    }

    /// Adds `tag`; false if it was already there. Tags the set cannot hold never reach it
    /// (the tag number check runs first), and count as new.
    fn insert(&mut self, tag: u32) -> bool {
        let Some(slot) = Self::slot(tag) else {
            return true;
        };
        let word = &mut self.0[slot / 64];
        let bit = 1 << (slot % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }
}

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

/// True if `byte` is in a [`chars`] mask.
#[inline]
fn in_chars(mask: u128, byte: u8) -> bool {
    byte < 128 && mask & (1 << byte) != 0
}

/// Every FIX 4.4 ExecInst value.
const EXEC_INST: u128 = chars(b"0123456789ABCDEFGHIJKLMNOPQRSUVWXYZabcde");

/// Every distinct type of the tables, indexed by [`ty_index`].
static TYPES: [Ty; 20] = [
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

/// [`ty_index`] of the tags below 1024, looked up instead of matched (a match over this
/// many sparse values is a chain of comparisons on every field).
const TYPE_OF: [u8; 1024] = {
    let mut table = [0_u8; 1024];
    let mut tag = 0;
    while tag < 1024 {
        table[tag] = ty_index(tag as u32);
        tag += 1;
    }
    table
};

/// The type of a tag.
#[inline]
fn ty(tag: u32) -> &'static Ty {
    let index = match TYPE_OF.get(tag as usize) {
        Some(&index) => index,
        None => ty_index(tag),
    };
    &TYPES[usize::from(index) % TYPES.len()]
}

/// Digits only, 1 to 18 of them.
fn is_count(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 18 && value.iter().all(u8::is_ascii_digit)
}

/// `[-]digits[.digits]`, at most 64 bytes (the fixed-point parser's limit).
fn is_decimal(value: &[u8]) -> bool {
    if value.len() > 64 {
        return false;
    }
    let unsigned = value.strip_prefix(b"-").unwrap_or(value);
    // One pass: digits, and at most one point with a digit on each side.
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

fn reject(reason: u32, tag: u32, text: &'static str) -> Reject {
    Reject {
        reason,
        ref_tag: Some(tag),
        text,
    }
}

/// Checks one value against its tag's type.
#[inline]
fn check_value(tag: u32, value: &[u8]) -> Result<(), Reject> {
    let format = || reject(6, tag, "incorrect data format for value");
    let range = || reject(5, tag, "value is incorrect (out of range) for this tag");
    match *ty(tag) {
        Ty::Str => Ok(()),
        Ty::Count => is_count(value).then_some(()).ok_or_else(format),
        Ty::Decimal => is_decimal(value).then_some(()).ok_or_else(format),
        Ty::Char => (value.len() == 1).then_some(()).ok_or_else(format),
        Ty::Bool => match value {
            b"Y" | b"N" => Ok(()),
            [_] => Err(range()),
            _ => Err(format()),
        },
        Ty::Timestamp => parse_utc_timestamp(value).map(|_| ()).ok_or_else(format),
        Ty::Date => parse_date(value).map(|_| ()).ok_or_else(format),
        Ty::CharIn(set) => match value {
            [byte] if in_chars(set, *byte) => Ok(()),
            [_] => Err(range()),
            _ => Err(format()),
        },
        Ty::IntIn(mask) => match parse_u64(value) {
            Some(n) if n < 128 && mask & (1 << n) != 0 => Ok(()),
            Some(_) => Err(range()),
            None => Err(format()),
        },
        Ty::CharsIn(set) => {
            // "A B C": odd length, a character at every even index, spaces between.
            if value.len().is_multiple_of(2) {
                return Err(format());
            }
            for (index, byte) in value.iter().enumerate() {
                if index % 2 == 1 {
                    if *byte != b' ' {
                        return Err(format());
                    }
                } else if *byte == b' ' {
                    return Err(format());
                } else if !in_chars(set, *byte) {
                    return Err(range());
                }
            }
            Ok(())
        }
    }
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

/// One message type's table.
struct MsgSpec {
    /// What each tag below 1024 is in this message ([`IN_HEADER`], [`IN_BODY`],
    /// [`GROUP_COUNT`], [`GROUP_FIELD`] bits): one load per field instead of several set
    /// lookups.
    class: [u8; 1024],
    /// Body tags allowed outside groups (NumInGroup tags included), for the tags above
    /// 1024 (the gateway's user-defined ones).
    body: TagSet,
    required: &'static [u32],
    groups: &'static [&'static GroupSpec],
    rule: Rule,
}

impl MsgSpec {
    fn group(&self, count_tag: u32) -> Option<&'static GroupSpec> {
        self.groups.iter().copied().find(|g| g.count == count_tag)
    }
}

/// A standard header field.
const IN_HEADER: u8 = 1;
/// A body field outside groups.
const IN_BODY: u8 = 2;
/// The NumInGroup field of a repeating group.
const GROUP_COUNT: u8 = 4;
/// A field of a repeating group.
const GROUP_FIELD: u8 = 8;

const HEADER_TAGS: &[u32] = &[
    8, 9, 35, 34, 43, 49, 50, 52, 56, 57, 97, 115, 116, 122, 128, 129, 142, 143, 144, 145, 369,
];

/// The class byte of every tag below 1024 for a message with these body tags and groups.
const fn class_table(body: &[u32], groups: &[&GroupSpec]) -> [u8; 1024] {
    let mut table = [0_u8; 1024];
    let mut i = 0;
    while i < HEADER_TAGS.len() {
        table[HEADER_TAGS[i] as usize] |= IN_HEADER;
        i += 1;
    }
    i = 0;
    while i < body.len() {
        if body[i] < 1024 {
            table[body[i] as usize] |= IN_BODY;
        }
        i += 1;
    }
    i = 0;
    while i < groups.len() {
        table[groups[i].count as usize] |= GROUP_COUNT;
        let mut j = 0;
        while j < groups[i].fields.len() {
            table[groups[i].fields[j] as usize] |= GROUP_FIELD;
            j += 1;
        }
        i += 1;
    }
    table
}

/// Classes for the unsupported types: only the header is known.
static HEADER_CLASS: [u8; 1024] = class_table(&[], &[]);

/// The tags the codec checks (first three fields).
const FRAMING_TAGS: TagSet = TagSet::of(&[8, 9, 35]);

/// Required in every message's standard header.
const HEADER_REQUIRED: [u32; 4] = [49, 56, 34, 52];

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

const fn spec(
    body: &[u32],
    required: &'static [u32],
    groups: &'static [&'static GroupSpec],
    rule: Rule,
) -> MsgSpec {
    MsgSpec {
        class: class_table(body, groups),
        body: TagSet::of(body),
        required,
        groups,
        rule,
    }
}

static HEARTBEAT: MsgSpec = spec(&[112], &[], &[], Rule::None);
static TEST_REQUEST: MsgSpec = spec(&[112], &[112], &[], Rule::None);
static RESEND_REQUEST: MsgSpec = spec(&[7, 16], &[7, 16], &[], Rule::None);
static SESSION_REJECT: MsgSpec = spec(&[45, 371, 372, 373, 58], &[45], &[], Rule::None);
static SEQUENCE_RESET: MsgSpec = spec(&[36, 123], &[36], &[], Rule::None);
static LOGOUT: MsgSpec = spec(&[58], &[], &[], Rule::None);
static LOGON: MsgSpec = spec(
    &[98, 108, 141, 383, 464, 553, 554, 789],
    &[98, 108],
    &[],
    Rule::None,
);
static NEW_ORDER_SINGLE: MsgSpec = spec(
    &[
        1, 11, 18, 21, 38, 40, 44, 54, 55, 58, 59, 60, 99, 126, 207, 453, 526,
    ],
    &[11, 54, 55, 60, 38, 40],
    &[&PARTIES],
    Rule::OrderPrices,
);
static ORDER_CANCEL_REQUEST: MsgSpec = spec(
    &[1, 11, 37, 38, 41, 54, 55, 58, 60, 207, 453, 526],
    &[41, 11, 55, 54, 60],
    &[&PARTIES],
    Rule::None,
);
static ORDER_CANCEL_REPLACE_REQUEST: MsgSpec = spec(
    &[
        1, 11, 18, 21, 37, 38, 40, 41, 44, 54, 55, 58, 59, 60, 99, 126, 207, 453, 526,
    ],
    &[41, 11, 55, 54, 60, 38, 40],
    &[&PARTIES],
    Rule::OrderPrices,
);
static ORDER_STATUS_REQUEST: MsgSpec = spec(
    &[1, 11, 37, 54, 55, 207, 453, 790],
    &[55, 54],
    &[&PARTIES],
    Rule::OrderReference,
);
static MARKET_DATA_REQUEST: MsgSpec = spec(
    &[262, 263, 264, 265, 266, 267, 146],
    &[262, 263, 264, 267, 146],
    &[&MD_ENTRY_TYPES, &RELATED_SYM],
    Rule::None,
);
static REQUEST_FOR_POSITIONS: MsgSpec = spec(
    &[1, 55, 60, 207, 263, 453, 581, 710, 715, 724],
    &[710, 724, 60],
    &[&PARTIES],
    Rule::None,
);
static ADMIN_REQUEST: MsgSpec = spec(&[1, 20_000, 20_001], &[20_000, 20_001], &[], Rule::None);

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

/// Validates a parsed inbound message against the gateway's FIX 4.4 profile (see the
/// module docs for every check and its order).
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
    let spec = match classify(msg.msg_type()) {
        MsgClass::Invalid => return Err(reject(11, 35, "invalid MsgType")),
        MsgClass::Unsupported => None,
        MsgClass::Admin | MsgClass::Application => spec_for(msg.msg_type()),
    };
    // 8, 9 and 35 are the parser's to place; a second one is a duplicate.
    let mut seen = FRAMING_TAGS;
    let mut in_header = true;
    let mut group: Option<OpenGroup> = None;
    let mut ord_type = None;
    let classes = spec.map_or(&HEADER_CLASS, |spec| &spec.class);
    for field in &fields[3..fields.len() - 1] {
        let tag = field.tag;
        let value = msg.value(field);
        let class = match classes.get(tag as usize) {
            Some(&class) => class,
            None if spec.is_some_and(|spec| spec.body.contains(tag)) => IN_BODY,
            None => 0,
        };
        if spec.is_none() && class & IN_HEADER == 0 {
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
                    check_value(tag, value)?;
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
                    check_value(tag, value)?;
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
        if !seen.insert(tag) {
            return Err(reject(13, tag, "tag appears more than once"));
        }
        check_value(tag, value)?;
        if tag == 40 {
            ord_type = value.first().copied();
        }
        if class & GROUP_COUNT != 0
            && let Some(group_spec) = spec.and_then(|s| s.group(tag))
        {
            let declared = parse_u64(value).unwrap_or(0);
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
    if let Some(&tag) = HEADER_REQUIRED.iter().find(|&&t| !seen.contains(t)) {
        return Err(missing(tag));
    }
    let Some(spec) = spec else {
        return Ok(());
    };
    if let Some(&tag) = spec.required.iter().find(|&&t| !seen.contains(t)) {
        return Err(missing(tag));
    }
    match spec.rule {
        Rule::None => {}
        Rule::OrderPrices => {
            if matches!(ord_type, Some(b'2' | b'4')) && !seen.contains(44) {
                return Err(missing(44));
            }
            if matches!(ord_type, Some(b'3' | b'4')) && !seen.contains(99) {
                return Err(missing(99));
            }
        }
        Rule::OrderReference => {
            if !seen.contains(37) && !seen.contains(11) {
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

    #[test]
    fn class_tables_match_the_specs() {
        for msg_type in [
            "0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "V", "AN", "U1",
        ] {
            let spec = spec_for(msg_type.as_bytes()).unwrap();
            for group in spec.groups {
                let class = spec.class[group.count as usize];
                assert_eq!(class & (GROUP_COUNT | IN_BODY), GROUP_COUNT | IN_BODY);
                for &field in group.fields {
                    assert_ne!(spec.class[field as usize] & GROUP_FIELD, 0);
                }
            }
            for &tag in HEADER_TAGS {
                assert_ne!(spec.class[tag as usize] & IN_HEADER, 0);
                assert_eq!(HEADER_CLASS[tag as usize], IN_HEADER);
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
