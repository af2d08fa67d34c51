//! `aaiti-model`: the vocabulary every AAITI crate shares.
//!
//! * [`fixed`]: fixed-point [`Price`] and [`Qty`] (`i64` mantissas, scale per instrument) with
//!   exact parsing from exchange decimal strings; notional maths in `i128`.
//! * [`ids`]: dense index newtypes ([`VenueId`], [`InstrumentId`], [`AccountId`], [`OrderId`],
//!   [`StreamId`]) and the fixed-width [`ClientOrderId`].
//! * [`time`]: [`UnixNanos`], nanoseconds since the epoch.
//! * [`order`]: [`Side`], [`OrderType`], [`TimeInForce`], [`OrderFlags`].
//! * [`instrument`]: the [`InstrumentRegistry`] built from configuration.
//! * [`records`]: the fixed-size `#[repr(C)]` [`bytemuck::Pod`] event records and the
//!   [`Envelope`] that rings carry and the journal stores byte for byte.
//!
//! The crate does no I/O and has no global state. Its limits: prices and quantities carry at
//! most 18 decimal places and must fit an `i64` mantissa at their instrument's scale.
//!
//! ```
//! use aaiti_model::{Envelope, Price, RecordHeader, Scale, StreamId, Trade, UnixNanos};
//!
//! let scale = Scale::new(2).unwrap();
//! let price = Price::parse(b"61737.63000000", scale).unwrap();
//! assert_eq!(price.mantissa(), 6_173_763);
//!
//! let trade = Trade { price, ..Trade::default() };
//! let header = RecordHeader::new(StreamId(1), 1, UnixNanos(10), UnixNanos(11));
//! let envelope = Envelope::new(header, &trade);
//! assert_eq!(envelope.payload::<Trade>().unwrap().price, price);
//! ```
#![forbid(unsafe_code)]

pub mod fixed;
pub mod ids;
pub mod instrument;
pub mod order;
pub mod records;
pub mod time;

pub use fixed::{
    FixedDisplay, FixedError, Price, Qty, Scale, notional, notional_at, parse_fixed, rescale,
    write_fixed,
};
pub use ids::{
    AccountId, ClientOrderId, ClientOrderIdError, InstrumentId, OrderId, StreamId, VenueId,
};
pub use instrument::{Instrument, InstrumentError, InstrumentRegistry, InstrumentSpec};
pub use order::{OrderFlags, OrderType, Side, TimeInForce};
pub use records::{
    BookAction, BookCheck, BookDelta, ChecksumMethod, Control, ControlAction, Envelope, FeedEvent,
    FeedEventKind, ModelEvent, ModelEventKind, OrderAction, OrderCommand, OrderEvent,
    OrderEventKind, Record, RecordError, RecordHeader, RecordKind, RejectReason, RiskEvent,
    RiskEventKind, Signal, TopOfBook, Trade, VenueAction, VenueReport, VenueReportKind,
    VenueRequest,
};
pub use time::UnixNanos;
