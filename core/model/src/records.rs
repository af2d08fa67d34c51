//! Event records: the fixed-size `#[repr(C)]` [`Pod`] structs that travel through the rings
//! and into the journal, and the [`Envelope`] that carries one of them.
//!
//! # Layout
//!
//! An [`Envelope`] is 192 bytes, 64-byte aligned (three cache lines):
//!
//! | offset | size | field         | meaning                                              |
//! |-------:|-----:|---------------|------------------------------------------------------|
//! | 0      | 8    | `seq`         | `u64` LE, the record's number within its stream, from 1 |
//! | 8      | 8    | `ts_event`    | `u64` LE ns since epoch: venue or client time         |
//! | 16     | 8    | `ts_recv`     | `u64` LE ns since epoch: when AAITI received it       |
//! | 24     | 2    | `kind`        | `u16` LE [`RecordKind`] code                          |
//! | 26     | 2    | `stream`      | `u16` LE [`StreamId`] of the producer                 |
//! | 28     | 2    | `payload_len` | `u16` LE bytes of payload in use (the kind's size)    |
//! | 30     | 2    | `flags`       | `u16` LE header flags ([`RecordHeader::FLAG_REPLAY`]) |
//! | 32     | 160  | payload       | the record struct, then unused bytes                  |
//!
//! Only `32 + payload_len` bytes are meaningful: producers write just those and the journal
//! stores just those ([`Envelope::as_bytes`]); the rest of the slot may hold stale bytes from
//! an earlier record and is never read.
//!
//! Every multi-byte integer is little-endian (the only byte order AAITI runs on; asserted at
//! compile time). Payload layouts are given on each record type; all are 8-byte aligned
//! with explicit padding, so every bit pattern is a valid struct and readers validate enum
//! codes with [`Envelope::validate`].
//!
//! # Stability
//!
//! Kind codes, field offsets and enum codes are part of the journal format. New fields go
//! into padding or at the end of a payload (bumping the journal's format version); codes are
//! never reused.

use bytemuck::{Pod, Zeroable};

use crate::{
    AccountId, ClientOrderId, InstrumentId, OrderFlags, OrderId, OrderType, Price, Qty, Side,
    StreamId, TimeInForce, UnixNanos, VenueId,
};

const _: () = assert!(
    cfg!(target_endian = "little"),
    "AAITI's record format is little-endian"
);

/// Size of the [`RecordHeader`] in bytes.
pub const HEADER_SIZE: usize = 32;
/// Payload bytes an [`Envelope`] can carry.
pub const PAYLOAD_CAPACITY: usize = 160;
/// Size of an [`Envelope`] (a ring slot) in bytes.
pub const ENVELOPE_SIZE: usize = HEADER_SIZE + PAYLOAD_CAPACITY;

/// The common header of every record (see the module docs for the byte layout).
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RecordHeader {
    /// Number of this record within its stream: 1, 2, 3... without gaps.
    pub seq: u64,
    /// Venue or client time.
    pub ts_event: UnixNanos,
    /// Our receive time.
    pub ts_recv: UnixNanos,
    /// [`RecordKind`] code.
    pub kind: u16,
    /// The producer of the record.
    pub stream: StreamId,
    /// Payload bytes in use.
    pub payload_len: u16,
    /// Header flags.
    pub flags: u16,
}

const _: () = assert!(size_of::<RecordHeader>() == HEADER_SIZE);

impl RecordHeader {
    /// The record is being re-applied from the journal during recovery: stages rebuild state
    /// from it but must not send anything to the outside world.
    pub const FLAG_REPLAY: u16 = 1;

    /// A header; `kind` and `payload_len` are filled in by [`Envelope::new`]/[`Envelope::set`].
    pub const fn new(stream: StreamId, seq: u64, ts_event: UnixNanos, ts_recv: UnixNanos) -> Self {
        Self {
            seq,
            ts_event,
            ts_recv,
            kind: 0,
            stream,
            payload_len: 0,
            flags: 0,
        }
    }

    /// Header of a record a stage derives from `cause`: its stream and sequence, the cause's
    /// timestamps and its replay flag (a record re-derived during recovery is not journaled
    /// again; deriving it still advances the stage's sequence, so numbering continues as
    /// before).
    pub const fn derived(stream: StreamId, seq: u64, cause: &RecordHeader) -> Self {
        let mut header = Self::new(stream, seq, cause.ts_event, cause.ts_recv);
        header.flags = cause.flags & Self::FLAG_REPLAY;
        header
    }
}

/// A record type that an [`Envelope`] can carry.
pub trait Record: Pod {
    /// Its kind code.
    const KIND: RecordKind;

    /// Checks the fields that not every bit pattern makes valid (enum codes, flag bits).
    fn validate(&self) -> Result<(), RecordError>;
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than a header, or than the header's `payload_len` says.
    #[error("record truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The kind code is not one this version knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    /// The payload length does not match the kind's size.
    #[error("{kind:?} record has payload_len {got}, expected {expected}")]
    PayloadLength {
        /// Kind.
        kind: RecordKind,
        /// Size of the kind.
        expected: usize,
        /// Header value.
        got: usize,
    },
    /// A field holds a value outside its domain.
    #[error("{kind:?} record field `{field}` has invalid value {value}")]
    BadField {
        /// Kind.
        kind: RecordKind,
        /// Field name.
        field: &'static str,
        /// Raw value.
        value: u64,
    },
}

crate::order::wire_enum!(
    /// What an envelope carries. Codes are stable (journal format).
    RecordKind: u16 {
        /// [`BookDelta`].
        BookDelta = 1 => "book_delta",
        /// [`Trade`].
        Trade = 2 => "trade",
        /// [`TopOfBook`].
        TopOfBook = 3 => "top_of_book",
        /// [`FeedEvent`].
        FeedEvent = 4 => "feed_event",
        /// [`BookCheck`].
        BookCheck = 5 => "book_check",
        /// [`OrderCommand`].
        OrderCommand = 10 => "order_command",
        /// [`OrderEvent`].
        OrderEvent = 11 => "order_event",
        /// [`VenueReport`].
        VenueReport = 12 => "venue_report",
        /// [`VenueRequest`].
        VenueRequest = 13 => "venue_request",
        /// [`RiskEvent`].
        RiskEvent = 20 => "risk_event",
        /// [`Signal`].
        Signal = 30 => "signal",
        /// [`ModelEvent`].
        ModelEvent = 31 => "model_event",
        /// [`Control`].
        Control = 40 => "control",
    }
);

impl RecordKind {
    /// Payload size of this kind in bytes.
    pub const fn payload_len(self) -> usize {
        match self {
            Self::BookDelta => size_of::<BookDelta>(),
            Self::Trade => size_of::<Trade>(),
            Self::TopOfBook => size_of::<TopOfBook>(),
            Self::FeedEvent => size_of::<FeedEvent>(),
            Self::BookCheck => size_of::<BookCheck>(),
            Self::OrderCommand => size_of::<OrderCommand>(),
            Self::OrderEvent => size_of::<OrderEvent>(),
            Self::VenueReport => size_of::<VenueReport>(),
            Self::VenueRequest => size_of::<VenueRequest>(),
            Self::RiskEvent => size_of::<RiskEvent>(),
            Self::Signal => size_of::<Signal>(),
            Self::ModelEvent => size_of::<ModelEvent>(),
            Self::Control => size_of::<Control>(),
        }
    }
}

/// One ring slot: a header and up to [`PAYLOAD_CAPACITY`] bytes of payload.
#[repr(C, align(64))]
#[derive(Copy, Clone, Pod, Zeroable)]
pub struct Envelope {
    /// The header.
    pub header: RecordHeader,
    payload: [u64; PAYLOAD_CAPACITY / 8],
}

const _: () = assert!(size_of::<Envelope>() == ENVELOPE_SIZE);
const _: () = assert!(align_of::<Envelope>() == 64);

impl Default for Envelope {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("payload", &self.payload_bytes())
            .finish()
    }
}

impl Envelope {
    /// An envelope carrying `record`.
    #[inline]
    pub fn new<R: Record>(header: RecordHeader, record: &R) -> Self {
        let mut envelope = Self::zeroed();
        envelope.set(header, record);
        envelope
    }

    /// Overwrites this envelope (typically a ring slot) with `header` and `record`, writing
    /// only the bytes in use.
    #[inline]
    pub fn set<R: Record>(&mut self, mut header: RecordHeader, record: &R) {
        const { assert!(size_of::<R>() <= PAYLOAD_CAPACITY && align_of::<R>() <= 8) };
        header.kind = R::KIND.code();
        header.payload_len = size_of::<R>() as u16;
        self.header = header;
        bytemuck::bytes_of_mut(&mut self.payload)[..size_of::<R>()]
            .copy_from_slice(bytemuck::bytes_of(record));
    }

    /// Copies `other`'s meaningful bytes into `self` (header and used payload only).
    #[inline]
    pub fn copy_from(&mut self, other: &Self) {
        let len = usize::from(other.header.payload_len).min(PAYLOAD_CAPACITY);
        self.header = other.header;
        bytemuck::bytes_of_mut(&mut self.payload)[..len]
            .copy_from_slice(&bytemuck::bytes_of(&other.payload)[..len]);
    }

    /// The kind, if the code is known.
    #[inline]
    pub fn kind(&self) -> Result<RecordKind, RecordError> {
        RecordKind::try_from(self.header.kind).map_err(RecordError::UnknownKind)
    }

    /// The payload as `R`, or `None` if this envelope carries another kind.
    #[inline]
    pub fn payload<R: Record>(&self) -> Option<&R> {
        if self.header.kind != R::KIND.code() {
            return None;
        }
        bytemuck::try_from_bytes(&bytemuck::bytes_of(&self.payload)[..size_of::<R>()]).ok()
    }

    /// The payload bytes in use (clamped to the capacity).
    #[inline]
    pub fn payload_bytes(&self) -> &[u8] {
        let len = usize::from(self.header.payload_len).min(PAYLOAD_CAPACITY);
        &bytemuck::bytes_of(&self.payload)[..len]
    }

    /// Header and payload in use: the bytes the journal stores.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let len = HEADER_SIZE + usize::from(self.header.payload_len).min(PAYLOAD_CAPACITY);
        &bytemuck::bytes_of(self)[..len]
    }

    /// Reads an envelope back from [`Envelope::as_bytes`] output and validates it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() < HEADER_SIZE {
            return Err(RecordError::Truncated {
                len: bytes.len(),
                needed: HEADER_SIZE,
            });
        }
        let mut envelope = Self::zeroed();
        let header: RecordHeader = bytemuck::pod_read_unaligned(&bytes[..HEADER_SIZE]);
        let len = usize::from(header.payload_len);
        if len > PAYLOAD_CAPACITY {
            return Err(RecordError::Truncated {
                len: PAYLOAD_CAPACITY,
                needed: len,
            });
        }
        let needed = HEADER_SIZE + len;
        if bytes.len() < needed {
            return Err(RecordError::Truncated {
                len: bytes.len(),
                needed,
            });
        }
        envelope.header = header;
        bytemuck::bytes_of_mut(&mut envelope.payload)[..len]
            .copy_from_slice(&bytes[HEADER_SIZE..needed]);
        envelope.validate()?;
        Ok(envelope)
    }

    /// Checks kind, payload length and the payload's enum codes.
    pub fn validate(&self) -> Result<(), RecordError> {
        let kind = self.kind()?;
        let expected = kind.payload_len();
        if usize::from(self.header.payload_len) != expected {
            return Err(RecordError::PayloadLength {
                kind,
                expected,
                got: usize::from(self.header.payload_len),
            });
        }
        match kind {
            RecordKind::BookDelta => self.validate_as::<BookDelta>(),
            RecordKind::Trade => self.validate_as::<Trade>(),
            RecordKind::TopOfBook => self.validate_as::<TopOfBook>(),
            RecordKind::FeedEvent => self.validate_as::<FeedEvent>(),
            RecordKind::BookCheck => self.validate_as::<BookCheck>(),
            RecordKind::OrderCommand => self.validate_as::<OrderCommand>(),
            RecordKind::OrderEvent => self.validate_as::<OrderEvent>(),
            RecordKind::VenueReport => self.validate_as::<VenueReport>(),
            RecordKind::VenueRequest => self.validate_as::<VenueRequest>(),
            RecordKind::RiskEvent => self.validate_as::<RiskEvent>(),
            RecordKind::Signal => self.validate_as::<Signal>(),
            RecordKind::ModelEvent => self.validate_as::<ModelEvent>(),
            RecordKind::Control => self.validate_as::<Control>(),
        }
    }

    fn validate_as<R: Record>(&self) -> Result<(), RecordError> {
        match self.payload::<R>() {
            Some(record) => record.validate(),
            None => Err(RecordError::UnknownKind(self.header.kind)),
        }
    }
}

fn check<T: TryFrom<u8>>(
    kind: RecordKind,
    field: &'static str,
    code: u8,
) -> Result<(), RecordError> {
    T::try_from(code)
        .map(|_| ())
        .map_err(|_| RecordError::BadField {
            kind,
            field,
            value: u64::from(code),
        })
}

fn check_u16<T: TryFrom<u16>>(
    kind: RecordKind,
    field: &'static str,
    code: u16,
) -> Result<(), RecordError> {
    T::try_from(code)
        .map(|_| ())
        .map_err(|_| RecordError::BadField {
            kind,
            field,
            value: u64::from(code),
        })
}

// ---------------------------------------------------------------------------------------------
// Market data
// ---------------------------------------------------------------------------------------------

crate::order::wire_enum!(
    /// What a [`BookDelta`] does to the book.
    BookAction: u8 {
        /// Set the level at `price` on `side` to `qty` (insert or replace).
        Set = 1 => "set",
        /// Remove the level at `price` on `side`.
        Delete = 2 => "delete",
        /// Remove every level (both sides): a snapshot follows.
        Clear = 3 => "clear",
    }
);

/// One L2 level change.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `instrument` |
/// | 4 | 1 | `side` ([`Side`] code; 0 for `Clear`) |
/// | 5 | 1 | `action` ([`BookAction`] code) |
/// | 6 | 1 | `flags` ([`BookDelta::FLAG_SNAPSHOT`], [`BookDelta::FLAG_LAST`]) |
/// | 7 | 1 | padding (0) |
/// | 8 | 8 | `price` mantissa |
/// | 16 | 8 | `qty` mantissa |
/// | 24 | 8 | `venue_seq`: the venue's update id |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BookDelta {
    /// Instrument.
    pub instrument: InstrumentId,
    /// [`Side`] code.
    pub side: u8,
    /// [`BookAction`] code.
    pub action: u8,
    /// Flags.
    pub flags: u8,
    /// Padding.
    pub _pad: u8,
    /// Level price.
    pub price: Price,
    /// New level quantity (ignored for `Delete` and `Clear`).
    pub qty: Qty,
    /// The venue's sequence / update id of the message this change came from.
    pub venue_seq: u64,
}

impl BookDelta {
    /// Part of a full snapshot.
    pub const FLAG_SNAPSHOT: u8 = 1;
    /// Last change of its venue message: the book is consistent after applying it.
    pub const FLAG_LAST: u8 = 2;
}

impl Record for BookDelta {
    const KIND: RecordKind = RecordKind::BookDelta;

    fn validate(&self) -> Result<(), RecordError> {
        check::<BookAction>(Self::KIND, "action", self.action)?;
        if self.action != BookAction::Clear.code() {
            check::<Side>(Self::KIND, "side", self.side)?;
        }
        Ok(())
    }
}

/// A trade print.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `instrument` |
/// | 4 | 1 | `aggressor` ([`Side`] code of the taker; 0 if the venue does not say) |
/// | 5 | 3 | padding (0) |
/// | 8 | 8 | `price` mantissa |
/// | 16 | 8 | `qty` mantissa |
/// | 24 | 8 | `trade_id` (venue's) |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Trade {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Taker side code, 0 if unknown.
    pub aggressor: u8,
    /// Padding.
    pub _pad: [u8; 3],
    /// Price.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Venue trade id.
    pub trade_id: u64,
}

impl Record for Trade {
    const KIND: RecordKind = RecordKind::Trade;

    fn validate(&self) -> Result<(), RecordError> {
        if self.aggressor != 0 {
            check::<Side>(Self::KIND, "aggressor", self.aggressor)?;
        }
        Ok(())
    }
}

/// Best bid and offer.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `instrument` |
/// | 4 | 4 | padding (0) |
/// | 8 | 8 | `bid_price` |
/// | 16 | 8 | `bid_qty` (0: no bid) |
/// | 24 | 8 | `ask_price` |
/// | 32 | 8 | `ask_qty` (0: no ask) |
/// | 40 | 8 | `venue_seq` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct TopOfBook {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Padding.
    pub _pad: u32,
    /// Best bid price.
    pub bid_price: Price,
    /// Best bid quantity; 0 when there is no bid.
    pub bid_qty: Qty,
    /// Best ask price.
    pub ask_price: Price,
    /// Best ask quantity; 0 when there is no ask.
    pub ask_qty: Qty,
    /// Venue update id.
    pub venue_seq: u64,
}

impl Record for TopOfBook {
    const KIND: RecordKind = RecordKind::TopOfBook;

    fn validate(&self) -> Result<(), RecordError> {
        Ok(())
    }
}

crate::order::wire_enum!(
    /// What a [`FeedEvent`] reports about a feed or a book.
    FeedEventKind: u16 {
        /// The book is synchronised and may be traded on.
        BookValid = 1 => "book_valid",
        /// A sequence gap: the book is invalid until resynchronised.
        Gap = 2 => "gap",
        /// The venue's checksum disagrees with our book: invalid until resynchronised.
        ChecksumMismatch = 3 => "checksum_mismatch",
        /// A resynchronisation (new snapshot) was requested.
        ResyncRequested = 4 => "resync_requested",
        /// Best bid at or above best ask.
        Crossed = 5 => "crossed",
        /// No message for longer than the configured staleness limit.
        Stale = 6 => "stale",
        /// `ts_event` went backwards.
        OutOfOrderTimestamp = 7 => "out_of_order_timestamp",
        /// A price far outside the recent range.
        OutlierPrice = 8 => "outlier_price",
        /// A message was rejected (unparseable, unknown type or symbol, absurd value).
        Rejected = 9 => "rejected",
        /// A connection came up.
        Connected = 10 => "connected",
        /// A connection went down.
        Disconnected = 11 => "disconnected",
        /// Switched to the backup feed.
        Failover = 12 => "failover",
        /// Switched back to the primary feed.
        Failback = 13 => "failback",
    }
);

/// Feed and book health: synchronisation state changes and data-quality findings.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `instrument` (`u32::MAX`: the whole feed) |
/// | 4 | 2 | `kind` ([`FeedEventKind`]) |
/// | 6 | 2 | `venue` |
/// | 8 | 8 | `venue_seq`: the venue sequence / update id concerned |
/// | 16 | 8 | `expected`: e.g. the sequence expected after a gap, or a limit |
/// | 24 | 8 | `value`: e.g. the price found, a reject reason code, an age in ns |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FeedEvent {
    /// Instrument, or `u32::MAX` for the whole feed.
    pub instrument: InstrumentId,
    /// [`FeedEventKind`] code.
    pub kind: u16,
    /// Venue.
    pub venue: VenueId,
    /// Venue sequence concerned.
    pub venue_seq: u64,
    /// Expected value or limit.
    pub expected: u64,
    /// Observed value.
    pub value: i64,
}

impl Record for FeedEvent {
    const KIND: RecordKind = RecordKind::FeedEvent;

    fn validate(&self) -> Result<(), RecordError> {
        check_u16::<FeedEventKind>(Self::KIND, "kind", self.kind)
    }
}

crate::order::wire_enum!(
    /// How a venue computes a [`BookCheck`] checksum.
    ChecksumMethod: u8 {
        /// Kraken WebSocket v1 and v2: CRC32 (IEEE) of the top 10 asks then top 10 bids, each
        /// level's price and quantity as digits without the decimal point or leading zeros.
        KrakenCrc32 = 1 => "kraken_crc32",
    }
);

/// A venue's checksum of its book, to verify against ours after the preceding deltas.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `instrument` |
/// | 4 | 4 | `checksum` |
/// | 8 | 1 | `method` ([`ChecksumMethod`]) |
/// | 9 | 1 | `depth`: levels per side covered |
/// | 10 | 6 | padding (0) |
/// | 16 | 8 | `venue_seq` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BookCheck {
    /// Instrument.
    pub instrument: InstrumentId,
    /// The venue's checksum.
    pub checksum: u32,
    /// [`ChecksumMethod`] code.
    pub method: u8,
    /// Levels per side.
    pub depth: u8,
    /// Padding.
    pub _pad: [u8; 6],
    /// Venue sequence of the update it follows.
    pub venue_seq: u64,
}

impl Record for BookCheck {
    const KIND: RecordKind = RecordKind::BookCheck;

    fn validate(&self) -> Result<(), RecordError> {
        check::<ChecksumMethod>(Self::KIND, "method", self.method)
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

crate::order::wire_enum!(
    /// What an [`OrderCommand`] asks for.
    OrderAction: u8 {
        /// Place a new order.
        New = 1 => "new",
        /// Cancel an order.
        Cancel = 2 => "cancel",
        /// Replace (amend) an order's price and/or quantity.
        Replace = 3 => "replace",
        /// Report an order's status.
        Status = 4 => "status",
    }
);

/// A command from the desk, a strategy or an admin.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `action` ([`OrderAction`]) |
/// | 1 | 1 | `side` ([`Side`]) |
/// | 2 | 1 | `order_type` ([`OrderType`]) |
/// | 3 | 1 | `time_in_force` ([`TimeInForce`]) |
/// | 4 | 1 | `flags` ([`OrderFlags`]) |
/// | 5 | 3 | padding (0) |
/// | 8 | 4 | `account` |
/// | 12 | 4 | `instrument` |
/// | 16 | 8 | `order_id` (target of cancel/replace/status when known; else 0) |
/// | 24 | 8 | `price` (limit price) |
/// | 32 | 8 | `stop_price` |
/// | 40 | 8 | `qty` |
/// | 48 | 8 | `expire_at` (GTD) |
/// | 56 | 40 | `client_order_id` |
/// | 96 | 40 | `orig_client_order_id` (cancel/replace target) |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OrderCommand {
    /// [`OrderAction`] code.
    pub action: u8,
    /// [`Side`] code.
    pub side: u8,
    /// [`OrderType`] code.
    pub order_type: u8,
    /// [`TimeInForce`] code.
    pub time_in_force: u8,
    /// [`OrderFlags`] bits.
    pub flags: u8,
    /// Padding.
    pub _pad: [u8; 3],
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Target order for cancel/replace/status, 0 if identified by `orig_client_order_id`.
    pub order_id: OrderId,
    /// Limit price (Limit and StopLimit).
    pub price: Price,
    /// Trigger price (Stop and StopLimit).
    pub stop_price: Price,
    /// Quantity (new total quantity for Replace).
    pub qty: Qty,
    /// Expiry for GTD.
    pub expire_at: UnixNanos,
    /// This command's client order id.
    pub client_order_id: ClientOrderId,
    /// The order a Cancel/Replace refers to.
    pub orig_client_order_id: ClientOrderId,
}

impl OrderCommand {
    /// Typed action.
    pub fn action(&self) -> Option<OrderAction> {
        OrderAction::try_from(self.action).ok()
    }
    /// Typed side.
    pub fn side(&self) -> Option<Side> {
        Side::try_from(self.side).ok()
    }
    /// Typed order type.
    pub fn order_type(&self) -> Option<OrderType> {
        OrderType::try_from(self.order_type).ok()
    }
    /// Typed time in force.
    pub fn time_in_force(&self) -> Option<TimeInForce> {
        TimeInForce::try_from(self.time_in_force).ok()
    }
    /// Typed flags.
    pub fn flags(&self) -> OrderFlags {
        OrderFlags(self.flags)
    }
}

impl Record for OrderCommand {
    const KIND: RecordKind = RecordKind::OrderCommand;

    fn validate(&self) -> Result<(), RecordError> {
        check::<OrderAction>(Self::KIND, "action", self.action)?;
        if self.action == OrderAction::New.code() || self.action == OrderAction::Replace.code() {
            check::<Side>(Self::KIND, "side", self.side)?;
            check::<OrderType>(Self::KIND, "order_type", self.order_type)?;
            check::<TimeInForce>(Self::KIND, "time_in_force", self.time_in_force)?;
        }
        if OrderFlags(self.flags).has_unknown_bits() {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "flags",
                value: u64::from(self.flags),
            });
        }
        Ok(())
    }
}

crate::order::wire_enum!(
    /// What happened to an order.
    OrderEventKind: u8 {
        /// Received, not yet acknowledged by the venue.
        PendingNew = 1 => "pending_new",
        /// Accepted and working (FIX ExecType New).
        Accepted = 2 => "accepted",
        /// Rejected; see `reject_reason`.
        Rejected = 3 => "rejected",
        /// Partially filled; `last_*` describe the fill.
        PartiallyFilled = 4 => "partially_filled",
        /// Completely filled.
        Filled = 5 => "filled",
        /// Cancel requested, not yet confirmed.
        PendingCancel = 6 => "pending_cancel",
        /// Canceled.
        Canceled = 7 => "canceled",
        /// Replace requested, not yet confirmed.
        PendingReplace = 8 => "pending_replace",
        /// Replaced.
        Replaced = 9 => "replaced",
        /// Expired (IOC remainder, Day end, GTD time).
        Expired = 10 => "expired",
        /// A cancel or replace was rejected; the order is unchanged.
        CancelRejected = 11 => "cancel_rejected",
        /// A stop order's trigger price traded; it is now a market or limit order.
        Triggered = 12 => "triggered",
    }
);

crate::order::wire_enum!(
    /// Why an order, cancel or replace was rejected. Codes are stable (journal format).
    RejectReason: u16 {
        /// Not rejected.
        None = 0 => "none",
        /// The instrument is not in the registry.
        UnknownInstrument = 1 => "unknown_instrument",
        /// The account is unknown or not allowed for this session.
        UnknownAccount = 2 => "unknown_account",
        /// Quantity is zero, negative or off lot.
        InvalidQuantity = 3 => "invalid_quantity",
        /// Price is missing, non-positive or off tick.
        InvalidPrice = 4 => "invalid_price",
        /// Notional below the instrument's minimum.
        BelowMinNotional = 5 => "below_min_notional",
        /// Client order id already used in this account/session.
        DuplicateClientOrderId = 6 => "duplicate_client_order_id",
        /// Cancel/replace/status target not found.
        UnknownOrder = 7 => "unknown_order",
        /// The order is already done.
        TooLateToCancel = 8 => "too_late_to_cancel",
        /// Order type, time in force or flags combination not supported.
        UnsupportedOrder = 9 => "unsupported_order",
        /// Order quantity above the limit.
        MaxOrderQty = 20 => "max_order_qty",
        /// Order notional above the limit.
        MaxOrderNotional = 21 => "max_order_notional",
        /// Price outside the band around the reference price.
        PriceBand = 22 => "price_band",
        /// Resulting position above the limit.
        MaxPosition = 23 => "max_position",
        /// Gross exposure above the limit.
        MaxGrossExposure = 24 => "max_gross_exposure",
        /// Net exposure above the limit.
        MaxNetExposure = 25 => "max_net_exposure",
        /// Too many open orders.
        MaxOpenOrders = 26 => "max_open_orders",
        /// Order rate throttle.
        RateLimited = 27 => "rate_limited",
        /// Would trade against the account's own resting order.
        SelfTrade = 28 => "self_trade",
        /// Not enough balance.
        InsufficientBalance = 29 => "insufficient_balance",
        /// Not enough margin.
        InsufficientMargin = 30 => "insufficient_margin",
        /// Instrument disabled.
        InstrumentDisabled = 31 => "instrument_disabled",
        /// Venue disabled.
        VenueDisabled = 32 => "venue_disabled",
        /// Trading halted (account or global).
        TradingHalted = 33 => "trading_halted",
        /// Account or instrument is reduce-only.
        ReduceOnly = 34 => "reduce_only",
        /// Kill switch engaged.
        KillSwitch = 35 => "kill_switch",
        /// Max drawdown halt.
        DrawdownHalt = 36 => "drawdown_halt",
        /// Concentration limit.
        Concentration = 37 => "concentration",
        /// Correlation-aware exposure limit.
        CorrelatedExposure = 38 => "correlated_exposure",
        /// Post-only order would take liquidity.
        PostOnlyWouldCross = 50 => "post_only_would_cross",
        /// Fill-or-kill order could not be filled in full.
        FillOrKillUnfilled = 51 => "fill_or_kill_unfilled",
        /// No liquidity for a market order.
        NoLiquidity = 52 => "no_liquidity",
        /// The venue rejected the order.
        VenueReject = 53 => "venue_reject",
        /// The session's role may not do this.
        NotAuthorized = 60 => "not_authorized",
        /// The book is invalid (resyncing): nothing trades on it.
        BookInvalid = 61 => "book_invalid",
    }
);

/// An execution report: a change of an order's state.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `kind` ([`OrderEventKind`]) |
/// | 1 | 1 | `side` ([`Side`]) |
/// | 2 | 1 | `liquidity` (0 unknown, 1 maker, 2 taker) |
/// | 3 | 1 | padding (0) |
/// | 4 | 2 | `reject_reason` ([`RejectReason`]) |
/// | 6 | 2 | padding (0) |
/// | 8 | 4 | `account` |
/// | 12 | 4 | `instrument` |
/// | 16 | 8 | `order_id` |
/// | 24 | 8 | `exec_id` (unique per fill / event) |
/// | 32 | 8 | `price` (the order's limit price) |
/// | 40 | 8 | `last_price` (this fill) |
/// | 48 | 8 | `last_qty` (this fill) |
/// | 56 | 8 | `cum_qty` |
/// | 64 | 8 | `leaves_qty` |
/// | 72 | 8 | `avg_price` (at the price scale, truncated toward zero) |
/// | 80 | 8 | `fee` (this fill, quote asset, at the price scale) |
/// | 88 | 40 | `client_order_id` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OrderEvent {
    /// [`OrderEventKind`] code.
    pub kind: u8,
    /// [`Side`] code.
    pub side: u8,
    /// 0 unknown, 1 maker, 2 taker.
    pub liquidity: u8,
    /// Padding.
    pub _pad: u8,
    /// [`RejectReason`] code.
    pub reject_reason: u16,
    /// Padding.
    pub _pad2: u16,
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Order.
    pub order_id: OrderId,
    /// Execution id.
    pub exec_id: u64,
    /// Order limit price.
    pub price: Price,
    /// Fill price.
    pub last_price: Price,
    /// Fill quantity.
    pub last_qty: Qty,
    /// Filled so far.
    pub cum_qty: Qty,
    /// Still open.
    pub leaves_qty: Qty,
    /// Average fill price.
    pub avg_price: Price,
    /// Fee of this fill.
    pub fee: i64,
    /// Client order id.
    pub client_order_id: ClientOrderId,
}

impl Record for OrderEvent {
    const KIND: RecordKind = RecordKind::OrderEvent;

    fn validate(&self) -> Result<(), RecordError> {
        check::<OrderEventKind>(Self::KIND, "kind", self.kind)?;
        check::<Side>(Self::KIND, "side", self.side)?;
        check_u16::<RejectReason>(Self::KIND, "reject_reason", self.reject_reason)?;
        if self.liquidity > 2 {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "liquidity",
                value: u64::from(self.liquidity),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Risk, signals, control
// ---------------------------------------------------------------------------------------------

crate::order::wire_enum!(
    /// What a [`RiskEvent`] reports.
    RiskEventKind: u16 {
        /// A pre-trade check rejected an order.
        CheckRejected = 1 => "check_rejected",
        /// A limit was breached by the portfolio (not by one order).
        LimitBreach = 2 => "limit_breach",
        /// Max drawdown reached.
        Drawdown = 3 => "drawdown",
        /// Maintenance margin breached.
        MarginCall = 4 => "margin_call",
        /// Kill switch engaged or released.
        KillSwitch = 5 => "kill_switch",
        /// VaR above its limit.
        VarBreach = 6 => "var_breach",
        /// Trading state changed (active, reduce-only, halted).
        TradingState = 7 => "trading_state",
        /// Limits changed by an admin.
        LimitsChanged = 8 => "limits_changed",
        /// A venue report the order manager refused (fill after cancel, overfill, duplicate
        /// execution id...): the order is unchanged. `value` is the kind of illegal
        /// transition (0 unknown order, 1 retired order, 2 not at venue, 3 invalid state,
        /// 4 fill after done, 5 overfill, 6 duplicate execution id, 7 invalid fill, 8 fill
        /// outside limit, 9 replace below filled), `limit` the report (1 ack, 2 fill,
        /// 3 canceled, 4 replaced, 5 rejected, 6 expired, 7 cancel rejected).
        IllegalReport = 9 => "illegal_report",
    }
);

/// A risk decision or breach.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 2 | `kind` ([`RiskEventKind`]) |
/// | 2 | 2 | `reason` ([`RejectReason`]) |
/// | 4 | 1 | `action` (0 alert only, 1 reduce-only, 2 halt, 3 cancel all, 4 flatten) |
/// | 5 | 3 | padding (0) |
/// | 8 | 4 | `account` (`u32::MAX`: global) |
/// | 12 | 4 | `instrument` (`u32::MAX`: all) |
/// | 16 | 8 | `order_id` (0: none) |
/// | 24 | 8 | `value`: observed value (mantissa or basis points, per kind) |
/// | 32 | 8 | `limit`: the limit it was checked against |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RiskEvent {
    /// [`RiskEventKind`] code.
    pub kind: u16,
    /// [`RejectReason`] code.
    pub reason: u16,
    /// Action taken.
    pub action: u8,
    /// Padding.
    pub _pad: [u8; 3],
    /// Account, or `u32::MAX` for global.
    pub account: AccountId,
    /// Instrument, or `u32::MAX` for all.
    pub instrument: InstrumentId,
    /// Order concerned, 0 if none.
    pub order_id: OrderId,
    /// Observed value.
    pub value: i64,
    /// Limit.
    pub limit: i64,
}

impl RiskEvent {
    /// Highest `action` code.
    pub const MAX_ACTION: u8 = 4;
}

impl Record for RiskEvent {
    const KIND: RecordKind = RecordKind::RiskEvent;

    fn validate(&self) -> Result<(), RecordError> {
        check_u16::<RiskEventKind>(Self::KIND, "kind", self.kind)?;
        check_u16::<RejectReason>(Self::KIND, "reason", self.reason)?;
        if self.action > Self::MAX_ACTION {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "action",
                value: u64::from(self.action),
            });
        }
        Ok(())
    }
}

crate::order::wire_enum!(
    /// What a live venue reported about an order ([`VenueReport::kind`]).
    VenueReportKind: u8 {
        /// The order is working.
        Accepted = 1 => "accepted",
        /// The order was refused; nothing of it traded.
        Rejected = 2 => "rejected",
        /// A fill.
        Fill = 3 => "fill",
        /// Canceled on request.
        Canceled = 4 => "canceled",
        /// Expired (IOC or market remainder, venue expiry).
        Expired = 5 => "expired",
        /// A replace took effect.
        Replaced = 6 => "replaced",
        /// A cancel or replace was refused; the order is unchanged.
        CancelRejected = 7 => "cancel_rejected",
    }
);

/// What a live venue (an exchange adapter) said about one of the engine's orders. It enters
/// the pipeline as a source record on the venue stream, so it is journaled before the order
/// manager acts on it and a replay of the journal sees the same reports in the same order.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `kind` ([`VenueReportKind`]) |
/// | 1 | 1 | `liquidity` (0 unknown, 1 maker, 2 taker) |
/// | 2 | 1 | `kept_priority` (replaced: 1 if the order kept its queue position) |
/// | 3 | 1 | padding (0) |
/// | 4 | 2 | `reason` ([`RejectReason`], rejects) |
/// | 6 | 2 | padding (0) |
/// | 8 | 2 | `venue` |
/// | 10 | 2 | padding (0) |
/// | 12 | 4 | `instrument` |
/// | 16 | 8 | `order_id` (the engine's) |
/// | 24 | 8 | `exec_id` (fills: the venue's trade id) |
/// | 32 | 8 | `price` (fill price; replaced: new limit price) |
/// | 40 | 8 | `qty` (fill quantity; replaced: new total quantity) |
/// | 48 | 8 | `leaves` (open quantity after the event) |
/// | 56 | 8 | `cum` (filled so far, this fill included) |
/// | 64 | 8 | `fee` (this fill, quote asset at the price scale; negative: rebate) |
/// | 72 | 8 | `venue_ts` (the venue's time of the event) |
/// | 80 | 8 | `venue_order_id` (the venue's id, 0 if unknown) |
/// | 88 | 2 | `venue_error` (the venue's error code, as `i16`; 0 none) |
/// | 90 | 6 | padding (0) |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct VenueReport {
    /// [`VenueReportKind`] code.
    pub kind: u8,
    /// 0 unknown, 1 maker, 2 taker.
    pub liquidity: u8,
    /// Replaced: 1 if the order kept its queue position.
    pub kept_priority: u8,
    /// Padding.
    pub _pad0: u8,
    /// [`RejectReason`] code (rejects and cancel rejects).
    pub reason: u16,
    /// Padding.
    pub _pad1: u16,
    /// The venue.
    pub venue: VenueId,
    /// Padding.
    pub _pad3: u16,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The engine's order id.
    pub order_id: OrderId,
    /// Fills: the venue's execution (trade) id.
    pub exec_id: u64,
    /// Fill price, or the new limit price of a replace.
    pub price: Price,
    /// Fill quantity, or the new total quantity of a replace.
    pub qty: Qty,
    /// Open quantity after the event.
    pub leaves: Qty,
    /// Filled quantity so far.
    pub cum: Qty,
    /// Fee of this fill in the quote asset at the price scale (negative: rebate).
    pub fee: i64,
    /// The venue's time of the event.
    pub venue_ts: UnixNanos,
    /// The venue's order id (0 if unknown).
    pub venue_order_id: u64,
    /// The venue's error code (0: none).
    pub venue_error: i16,
    /// Padding.
    pub _pad2: [u8; 6],
}

impl VenueReport {
    /// Typed kind.
    pub fn kind(&self) -> Option<VenueReportKind> {
        VenueReportKind::try_from(self.kind).ok()
    }
}

impl Record for VenueReport {
    const KIND: RecordKind = RecordKind::VenueReport;

    fn validate(&self) -> Result<(), RecordError> {
        check::<VenueReportKind>(Self::KIND, "kind", self.kind)?;
        check_u16::<RejectReason>(Self::KIND, "reason", self.reason)?;
        if self.liquidity > 2 {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "liquidity",
                value: u64::from(self.liquidity),
            });
        }
        Ok(())
    }
}

crate::order::wire_enum!(
    /// What the engine asks a live venue ([`VenueRequest::action`]).
    VenueAction: u8 {
        /// Place the order.
        New = 1 => "new",
        /// Cancel it.
        Cancel = 2 => "cancel",
    }
);

/// An order request for a live venue, written by the trading stage once pre-trade risk has
/// accepted it. The router sends it to the venue's adapter only after the journal holds it
/// (write-ahead), so after a crash the journal knows every order the venue may have.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `action` ([`VenueAction`]) |
/// | 1 | 1 | `side` ([`Side`]) |
/// | 2 | 1 | `order_type` ([`OrderType`]) |
/// | 3 | 1 | `time_in_force` ([`TimeInForce`]) |
/// | 4 | 1 | `flags` ([`OrderFlags`] bits) |
/// | 5 | 3 | padding (0) |
/// | 8 | 4 | `account` |
/// | 12 | 4 | `instrument` |
/// | 16 | 8 | `order_id` |
/// | 24 | 8 | `price` |
/// | 32 | 8 | `stop_price` |
/// | 40 | 8 | `qty` (open quantity to place) |
/// | 48 | 8 | `expire_at` |
/// | 56 | 2 | `venue` |
/// | 58 | 6 | padding (0) |
/// | 64 | 40 | `client_order_id` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct VenueRequest {
    /// [`VenueAction`] code.
    pub action: u8,
    /// [`Side`] code.
    pub side: u8,
    /// [`OrderType`] code.
    pub order_type: u8,
    /// [`TimeInForce`] code.
    pub time_in_force: u8,
    /// [`OrderFlags`] bits.
    pub flags: u8,
    /// Padding.
    pub _pad0: [u8; 3],
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The engine's order id.
    pub order_id: OrderId,
    /// Limit price.
    pub price: Price,
    /// Trigger price.
    pub stop_price: Price,
    /// Quantity to place.
    pub qty: Qty,
    /// Expiry (GTD).
    pub expire_at: UnixNanos,
    /// The venue.
    pub venue: VenueId,
    /// Padding.
    pub _pad1: [u8; 6],
    /// The order's client order id.
    pub client_order_id: ClientOrderId,
}

impl Record for VenueRequest {
    const KIND: RecordKind = RecordKind::VenueRequest;

    fn validate(&self) -> Result<(), RecordError> {
        check::<VenueAction>(Self::KIND, "action", self.action)?;
        if self.action == VenueAction::New.code() {
            check::<Side>(Self::KIND, "side", self.side)?;
            check::<OrderType>(Self::KIND, "order_type", self.order_type)?;
            check::<TimeInForce>(Self::KIND, "time_in_force", self.time_in_force)?;
        }
        Ok(())
    }
}

/// A model prediction.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `model` (registry index) |
/// | 4 | 4 | `model_version` |
/// | 8 | 4 | `instrument` |
/// | 12 | 4 | `horizon_ms` |
/// | 16 | 8 | `prediction` (`f64` LE) |
/// | 24 | 8 | `confidence` (`f64` LE, 0..=1) |
/// | 32 | 4 | `flags` ([`Signal::FLAG_SHADOW`], [`Signal::FLAG_ENSEMBLE`]) |
/// | 36 | 4 | `feature_count` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Signal {
    /// Model index.
    pub model: u32,
    /// Model version.
    pub model_version: u32,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Prediction horizon.
    pub horizon_ms: u32,
    /// Predicted value (e.g. forward return).
    pub prediction: f64,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// Flags.
    pub flags: u32,
    /// Number of features the model was given.
    pub feature_count: u32,
}

impl Signal {
    /// From a shadow model: journaled and scored, never traded.
    pub const FLAG_SHADOW: u32 = 1;
    /// An ensemble's combined prediction.
    pub const FLAG_ENSEMBLE: u32 = 2;
}

impl Record for Signal {
    const KIND: RecordKind = RecordKind::Signal;

    fn validate(&self) -> Result<(), RecordError> {
        if !self.prediction.is_finite() || !(0.0..=1.0).contains(&self.confidence) {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "prediction/confidence",
                value: self.prediction.to_bits(),
            });
        }
        Ok(())
    }
}

crate::order::wire_enum!(
    /// What a [`ModelEvent`] reports.
    ModelEventKind: u8 {
        /// A model version was swapped in: `version` the new one, `previous` the old one.
        Swapped = 1 => "swapped",
        /// A swap was refused (the version does not load or does not fit): the old version
        /// keeps serving. `version` the refused one, `previous` the serving one.
        SwapRefused = 2 => "swap_refused",
        /// Drift past a threshold: `subject` what drifted (a feature's input position, or
        /// `u32::MAX - 2` predictions' PSI, `u32::MAX - 1` their mean shift in reference
        /// standard deviations, `u32::MAX` their standard deviation ratio), `value` the
        /// measure, `threshold` the threshold passed, `level` 1 warn / 2 alert, `count` the
        /// observations evaluated.
        Drift = 3 => "drift",
        /// Live accuracy: `value` the information coefficient (correlation of predictions
        /// with realised forward returns), `threshold` the hit rate (share of predictions
        /// with the realised return's sign), `count` the predictions scored so far.
        Accuracy = 4 => "accuracy",
    }
);

/// An event of the model layer: swaps, drift alerts, live accuracy.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `kind` ([`ModelEventKind`]) |
/// | 1 | 1 | `level` (0 ok, 1 warn, 2 alert) |
/// | 2 | 2 | padding (0) |
/// | 4 | 4 | `model` (index in `[[signals.models]]`) |
/// | 8 | 4 | `version` |
/// | 12 | 4 | `instrument` |
/// | 16 | 4 | `subject` (per kind) |
/// | 20 | 4 | `previous` (previous version, swaps) |
/// | 24 | 8 | `value` (`f64` LE, per kind) |
/// | 32 | 8 | `threshold` (`f64` LE, per kind) |
/// | 40 | 8 | `count` |
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ModelEvent {
    /// [`ModelEventKind`] code.
    pub kind: u8,
    /// 0 ok, 1 warn, 2 alert.
    pub level: u8,
    /// Padding.
    pub _pad: u16,
    /// Model index.
    pub model: u32,
    /// Model version.
    pub version: u32,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Per kind.
    pub subject: u32,
    /// Previous version (swaps).
    pub previous: u32,
    /// Per kind.
    pub value: f64,
    /// Per kind.
    pub threshold: f64,
    /// Per kind.
    pub count: u64,
}

impl ModelEvent {
    /// Typed kind.
    pub fn kind(&self) -> Option<ModelEventKind> {
        ModelEventKind::try_from(self.kind).ok()
    }
}

impl Record for ModelEvent {
    const KIND: RecordKind = RecordKind::ModelEvent;

    fn validate(&self) -> Result<(), RecordError> {
        check::<ModelEventKind>(Self::KIND, "kind", self.kind)?;
        if self.level > 2 {
            return Err(RecordError::BadField {
                kind: Self::KIND,
                field: "level",
                value: u64::from(self.level),
            });
        }
        Ok(())
    }
}

crate::order::wire_enum!(
    /// A control action.
    ControlAction: u16 {
        /// Drain every ring and stop every thread.
        Shutdown = 1 => "shutdown",
        /// Halt trading (account in `account`, or global).
        Halt = 2 => "halt",
        /// Resume trading.
        Resume = 3 => "resume",
        /// Swap a model (`text` names the model and version).
        ModelSwap = 4 => "model_swap",
        /// Engage the kill switch: halt, cancel all; `arg` = 1 also flattens.
        KillSwitch = 5 => "kill_switch",
        /// Write a state snapshot now.
        Snapshot = 6 => "snapshot",
        /// Engine time tick with no other event (drives timers on engine time).
        Tick = 7 => "tick",
        /// An admin asks for the current risk state; changes nothing (the trading stage
        /// answers the requester, matched by the record's stream and sequence).
        RiskReport = 8 => "risk_report",
        /// One piece of a risk limits change: the UTF-8 text of a risk configuration
        /// (`[risk]` and `[[accounts]]` TOML), 64 bytes per record in `text` (the last
        /// piece zero-padded). `arg` = first piece's sequence number << 32 | piece index
        /// << 16 | piece count. The pieces of one change are consecutive on their stream;
        /// the change applies, whole or not at all, when its last piece arrives.
        LimitsChunk = 9 => "limits_chunk",
        /// A desk asks for an order's state; changes nothing. `account` is the order's
        /// account, `arg` its order id (0: unknown), `text` its client order id
        /// (zero-padded; used when `arg` is 0).
        OrderStatus = 10 => "order_status",
        /// A desk session's logon (`arg` 1), logout (2) or refused logon (3), for the audit
        /// trail; changes nothing. `text`: the peer's CompID, a space, and the reason.
        DeskSession = 11 => "desk_session",
    }
);

/// A control command.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 2 | `action` ([`ControlAction`]) |
/// | 2 | 2 | padding (0) |
/// | 4 | 4 | `account` (`u32::MAX`: all) |
/// | 8 | 8 | `arg` (action-specific) |
/// | 16 | 64 | `text` (UTF-8, zero-padded; action-specific) |
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Control {
    /// [`ControlAction`] code.
    pub action: u16,
    /// Padding.
    pub _pad: u16,
    /// Account, or `u32::MAX` for all.
    pub account: AccountId,
    /// Action-specific argument.
    pub arg: u64,
    /// Action-specific text.
    pub text: [u8; 64],
}

impl Default for Control {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl Control {
    /// All accounts.
    pub const ALL_ACCOUNTS: AccountId = AccountId(u32::MAX);

    /// A control record with no text.
    pub fn new(action: ControlAction, account: AccountId, arg: u64) -> Self {
        Self {
            action: action.code(),
            account,
            arg,
            ..Self::zeroed()
        }
    }

    /// Typed action.
    pub fn action(&self) -> Option<ControlAction> {
        ControlAction::try_from(self.action).ok()
    }
}

impl Record for Control {
    const KIND: RecordKind = RecordKind::Control;

    fn validate(&self) -> Result<(), RecordError> {
        check_u16::<ControlAction>(Self::KIND, "action", self.action)
    }
}

// Layouts are part of the journal format: assert them.
const _: () = {
    assert!(size_of::<BookDelta>() == 32);
    assert!(size_of::<Trade>() == 32);
    assert!(size_of::<TopOfBook>() == 48);
    assert!(size_of::<FeedEvent>() == 32);
    assert!(size_of::<BookCheck>() == 24);
    assert!(size_of::<OrderCommand>() == 136);
    assert!(size_of::<OrderEvent>() == 128);
    assert!(size_of::<RiskEvent>() == 40);
    assert!(size_of::<Signal>() == 40);
    assert!(size_of::<ModelEvent>() == 48);
    assert!(size_of::<VenueReport>() == 96);
    assert!(size_of::<VenueRequest>() == 104);
    assert!(std::mem::offset_of!(VenueRequest, client_order_id) == 64);
    assert!(size_of::<Control>() == 80);
    assert!(std::mem::offset_of!(OrderCommand, client_order_id) == 56);
    assert!(std::mem::offset_of!(OrderCommand, orig_client_order_id) == 96);
    assert!(std::mem::offset_of!(OrderEvent, client_order_id) == 88);
    assert!(std::mem::offset_of!(RecordHeader, kind) == 24);
    assert!(std::mem::offset_of!(Envelope, payload) == HEADER_SIZE);
};
