//! Why a venue message is rejected ([`RejectReason`], [`FeedError`]) and what an accepted one
//! did ([`MessageOutcome`], [`MessageKind`]).

use aaiti_model::fixed::FixedError;

/// Why a message was rejected. The code ([`RejectReason::code`]) is carried in the
/// `value` of the [`aaiti_model::FeedEvent`] of kind `Rejected`; codes are stable and dense
/// from 1.
#[repr(u16)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The JSON ends early (unclosed string, object or array).
    Truncated = 1,
    /// Not JSON: a syntax error, invalid UTF-8, garbage.
    Malformed = 2,
    /// Valid JSON of a message type, channel or stream this handler does not know.
    UnknownMessageType = 3,
    /// A field the message type does not have (see [`crate::FeedConfig::allow_unknown_fields`]).
    UnknownField = 4,
    /// The same field twice in one object.
    DuplicateField = 5,
    /// A required field is absent.
    MissingField = 6,
    /// A field has the wrong JSON type (a number where a string is expected, ...).
    WrongType = 7,
    /// A decimal text that is not a plain decimal: exponent, sign where none is allowed,
    /// empty, stray characters, or a JSON number where an exact decimal is needed.
    BadNumber = 8,
    /// A value beyond what the instrument's fixed-point scale or the field's integer type
    /// can hold.
    NumberOutOfRange = 9,
    /// More significant decimals than the instrument's scale (would have to be rounded).
    TooManyDecimals = 10,
    /// A negative quantity, or a zero quantity where the message needs a positive one.
    InvalidQuantity = 11,
    /// A price that is zero or negative.
    InvalidPrice = 12,
    /// A symbol that is not in the instrument registry for this venue.
    UnknownSymbol = 13,
    /// A timestamp that does not parse or is out of range.
    BadTimestamp = 14,
    /// Fields that contradict each other (stream name vs symbol, first id after last id,
    /// an unknown side or enum value).
    Inconsistent = 15,
    /// More levels or bytes than the configured limits.
    TooLarge = 16,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [Self; 16] = [
        Self::Truncated,
        Self::Malformed,
        Self::UnknownMessageType,
        Self::UnknownField,
        Self::DuplicateField,
        Self::MissingField,
        Self::WrongType,
        Self::BadNumber,
        Self::NumberOutOfRange,
        Self::TooManyDecimals,
        Self::InvalidQuantity,
        Self::InvalidPrice,
        Self::UnknownSymbol,
        Self::BadTimestamp,
        Self::Inconsistent,
        Self::TooLarge,
    ];

    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// The stable code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The reason with this code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// Dense index (`code - 1`) for counter arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize - 1
    }

    /// A lowercase name for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Malformed => "malformed",
            Self::UnknownMessageType => "unknown_message_type",
            Self::UnknownField => "unknown_field",
            Self::DuplicateField => "duplicate_field",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::BadNumber => "bad_number",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::TooManyDecimals => "too_many_decimals",
            Self::InvalidQuantity => "invalid_quantity",
            Self::InvalidPrice => "invalid_price",
            Self::UnknownSymbol => "unknown_symbol",
            Self::BadTimestamp => "bad_timestamp",
            Self::Inconsistent => "inconsistent",
            Self::TooLarge => "too_large",
        }
    }

    /// The reason for a decimal text that [`aaiti_model::fixed::parse_fixed`] refused.
    pub(crate) fn from_fixed(error: &FixedError) -> Self {
        match error {
            FixedError::TooManyDecimals { .. } => Self::TooManyDecimals,
            FixedError::Overflow { .. } | FixedError::ScaleOutOfRange { .. } => {
                Self::NumberOutOfRange
            }
            FixedError::Empty
            | FixedError::TooLong { .. }
            | FixedError::InvalidChar { .. }
            | FixedError::UnexpectedEnd { .. } => Self::BadNumber,
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rejected message: the reason and the field (or message part) it was found in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: RejectReason,
    /// Where: a field name such as `"b"` or `"price"`, or a message part such as `"json"`.
    pub field: &'static str,
}

impl Reject {
    /// A rejection for `reason` found at `field`.
    pub const fn new(reason: RejectReason, field: &'static str) -> Self {
        Self { reason, field }
    }
}

/// Errors of the feed handlers' `on_message`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The message was rejected and nothing but a `Rejected` [`aaiti_model::FeedEvent`] was
    /// emitted; the handler's state (books, sequences) is unchanged.
    #[error("message rejected: {} (at `{}`)", .0.reason, .0.field)]
    Rejected(Reject),
}

impl FeedError {
    /// The reject reason.
    pub const fn reason(&self) -> RejectReason {
        match self {
            Self::Rejected(reject) => reject.reason,
        }
    }
}

/// What kind of venue message was handled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// A full book snapshot (Binance REST depth, Coinbase `snapshot`, Kraken `as`/`bs`).
    BookSnapshot,
    /// A partial-depth book (Binance `depth5/10/20`): a self-contained top-N snapshot.
    PartialBook,
    /// An incremental book update (Binance `depthUpdate`, Coinbase `l2update`, Kraken `a`/`b`).
    BookUpdate,
    /// A trade (Binance `trade`, Coinbase `match`/`last_match`, Kraken `trade`).
    Trade,
    /// An aggregated trade (Binance `aggTrade`).
    AggTrade,
    /// Best bid/offer (Binance `bookTicker`, Coinbase `ticker`).
    Ticker,
    /// Heartbeats, subscription acknowledgements, status and venue error messages.
    Control,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::BookSnapshot,
        Self::PartialBook,
        Self::BookUpdate,
        Self::Trade,
        Self::AggTrade,
        Self::Ticker,
        Self::Control,
    ];

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// What an accepted message did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Normalized: its records were appended (possibly none, e.g. an empty update).
    Applied(MessageKind),
    /// A book update held back until the book is synchronised (Binance before its snapshot).
    Buffered(MessageKind),
    /// Valid but not applied: a book update older than the book, an update for a book
    /// waiting for its snapshot, or a snapshot too old to synchronise with.
    Dropped(MessageKind),
    /// Heartbeat, subscription or status message: nothing to emit.
    Control,
}

impl MessageOutcome {
    /// The message's kind.
    pub const fn kind(&self) -> MessageKind {
        match *self {
            Self::Applied(kind) | Self::Buffered(kind) | Self::Dropped(kind) => kind,
            Self::Control => MessageKind::Control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_and_round_trip() {
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
            assert_eq!(usize::from(reason.code()), i + 1);
            assert_eq!(RejectReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(RejectReason::from_code(17), None);
        for (i, kind) in MessageKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
